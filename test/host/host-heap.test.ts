// The host's heap across big calls: kept for the next call, given back once the host is idle.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { type IsolatedPlugin, PluginLoader } from '../../src/index.js';
import { buildFixture, tempDir } from '../helpers/fixtures.js';
import { until } from '../helpers/markers.js';

const MiB = 1024 * 1024;
const PAGE = 4096;
const SIZE = 4 * MiB;

/** Minor page faults of a whole process, all threads (/proc/PID/stat field 10). */
function minorFaults(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
}

function residentBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  return Number(line?.[1]) * 1024;
}

describe('isolated host heap', { skip: process.platform !== 'linux' && 'reads /proc' }, () => {
  let plugin: IsolatedPlugin;
  // The host starts with the first call.
  const hostPid = () => plugin.hostPid as number;
  // A big request and a big result: each a fresh buffer of SIZE in the host.
  const bigCall = () => plugin.execute({ input: { mode: 'big', size: SIZE, pad: 'p'.repeat(SIZE) } as never, workspace_root: null, config: {} });

  before(async () => {
    const root = tempDir();
    const dir = await buildFixture(root, { source: 'heap', name: 'heap' });
    plugin = (await new PluginLoader({ pluginsDirs: [root], defaultDirs: false, readConfig: false, isolation: 'process', sandbox: 'off', maxOutputBytes: 4 * SIZE }).loadPlugin(dir)) as IsolatedPlugin;
  });

  after(() => plugin.close());

  it('reuses the memory of one big call for the next instead of faulting it in again', async () => {
    await bigCall();
    const before = minorFaults(hostPid());
    const result = await bigCall();
    assert.equal((result.output as string).length, SIZE);
    // Given back to the kernel, the two buffers would fault in 2 * SIZE / PAGE pages (2048) again.
    const faults = minorFaults(hostPid()) - before;
    assert.ok(faults < SIZE / PAGE / 4, `${faults} page faults for a call whose buffers the heap had kept`);
  });

  it('gives the kept memory back once the host is idle', async () => {
    await bigCall();
    const kept = residentBytes(hostPid());
    assert.ok(kept > 2 * SIZE, `host RSS ${kept} after a big call`);
    // No event says the host trimmed its heap: look after each loop turn until its RSS drops.
    await until(() => residentBytes(hostPid()) < kept - SIZE, 'the idle host giving its heap back');
  });
});
