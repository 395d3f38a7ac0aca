// Seeded fuzz of plugin results in both isolation modes: every call settles with a result or a coded error.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { PluginLoader, type NativePluginTrait } from '../../src/index.js';
import { buildFixture, runCli, tempDir, tempHome } from '../helpers/fixtures.js';
import { Prng, fuzzSettings } from '../helpers/prng.js';
import { KNOWN_CODES, Tally, childPids, fdCount, outcomeOf, resultCase } from './cases.js';

const MAX_OUTPUT = 64 * 1024;
const { seed, cases } = fuzzSettings(150);

describe(`fuzz: plugin results (seed ${seed}, ${cases} cases per mode)`, () => {
  let root: string;
  let dir: string;
  before(async () => {
    root = tempDir();
    dir = await buildFixture(root, { source: 'fuzz', name: 'fuzz' });
  });

  for (const isolation of ['process', 'none'] as const) {
    it(`isolation ${isolation}: every call settles with a result or a known code, no fd or process left`, async () => {
      const tally = new Tally(`results/${isolation}`);
      const loader = new PluginLoader({ pluginsDirs: [root], home: tempHome(), defaultDirs: false, isolation, sandbox: 'off', maxOutputBytes: MAX_OUTPUT });
      let plugin: NativePluginTrait = await loader.loadPlugin(dir);
      await plugin.execute({ input: { hex: '7b7d' }, workspace_root: null, config: {} }).catch(() => undefined);
      const fds = fdCount();
      const prng = new Prng(seed + (isolation === 'none' ? 1 : 0));
      try {
        for (let i = 0; i < cases; i++) {
          const c = resultCase(prng, MAX_OUTPUT);
          const what = `case ${i} (${c.kind}, seed ${seed})`;
          const outcome = await outcomeOf(plugin.execute({ input: c.input as never, workspace_root: null, config: {} }), what);
          tally.add(`${outcome}`);
          if (outcome === 'E_QUARANTINED') {
            await plugin.close();
            plugin = await loader.loadPlugin(dir);
          }
        }
      } finally {
        await plugin.close();
        tally.report();
      }
      assert.equal(tally.total, cases);
      assert.ok(fdCount() <= fds, `fds grew from ${fds} to ${fdCount()}`);
      assert.deepEqual(childPids(), []);
    });
  }

  it('run --json prints exactly one JSON document on stdout whatever the plugin returns', async () => {
    const prng = new Prng(seed + 2);
    // A CLI run costs a Node start-up: one in the short run, one per 200 cases in a long one.
    const runs = Math.max(1, Math.floor(cases / 200));
    const tally = new Tally('results/run --json');
    for (let i = 0; i < runs; i++) {
      const c = resultCase(prng, MAX_OUTPUT);
      const r = await runCli(['run', dir, '--plugins-dir', root, '--sandbox', 'off', '--json', '--input', JSON.stringify(c.input)]);
      const doc = JSON.parse(r.stdout) as { error?: { code: string } };
      assert.ok(r.stdout.endsWith('\n'), 'stdout ends its one document with a newline');
      assert.ok([0, 1, 4].includes(r.code), `exit ${r.code} for ${c.kind}: ${r.stderr}`);
      if (doc.error) assert.ok(KNOWN_CODES.has(doc.error.code), `run --json gave ${doc.error.code}`);
      tally.add(doc.error?.code ?? `exit ${r.code}`);
    }
    tally.report();
  });

  // Nesting is bounded where results enter (1000 levels), so this is a coded error, not a stack overflow.
  it('run --json answers a result nested 10,000 deep with E_INVALID_RESULT', async () => {
    const hex = (t: string) => Buffer.from(t).toString('hex');
    const input = { pre: hex('{"success":true,"output":'), head: hex('['), rep: 10_000, hex: hex('1'), tail: hex(']'), post: hex(',"error":null,"files":[]}') };
    const r = await runCli(['run', dir, '--plugins-dir', root, '--sandbox', 'off', '--json', '--input', JSON.stringify(input)]);
    assert.equal((JSON.parse(r.stdout) as { error?: { code: string } }).error?.code, 'E_INVALID_RESULT');
  });
});

