import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { REPO_ROOT, buildFixture, runCli, tempDir } from '../helpers/fixtures.js';

// test/docs/snippets.test.ts skips this block (it needs a plugin that asks for more than the default); this test runs it.
const MARKER = 'test/cli/readme-permissions.test.ts runs it';

/** The sh block after the marker, as argument lists (single quotes only, comments dropped). */
function snippetCommands(): string[][] {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const after = readme.slice(readme.indexOf(MARKER) + MARKER.length);
  const block = /```sh\n([\s\S]*?)```/.exec(after)?.[1] ?? '';
  return block
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter(Boolean)
    .map((line) => [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? ''));
}

describe('README: the permissions snippet', () => {
  let home: string;
  let workspace: string;

  before(async () => {
    const base = tempDir();
    home = path.join(base, 'home');
    workspace = path.join(base, 'ws');
    mkdirSync(workspace, { recursive: true });
    const permissions = { network: true, fs_read: ['/data/sets'], fs_write: ['${workspace}/out'] };
    await buildFixture(path.join(home, '.vtcode', 'plugins'), { source: 'echo', name: 'my-plugin', manifest: { name: 'my-plugin', description: 'd', version: '1', permissions } });
  });

  it('runs as documented: refused before the grant, runs after it, revocable', async () => {
    const commands = snippetCommands();
    assert.deepEqual(commands.map((c) => c.slice(0, 2)), [
      ['skillplug', 'inspect'],
      ['skillplug', 'grant'],
      ['skillplug', 'run'],
      ['skillplug', 'list'],
      ['skillplug', 'revoke'],
      ['skillplug', 'revoke'],
    ]);
    const codes: number[] = [];
    const outputs: string[] = [];
    for (const [, ...args] of commands) {
      const r = await runCli(args, { cwd: workspace, env: { HOME: home, SKILLPLUG_CACHE_DIR: path.join(home, 'cache') } });
      codes.push(r.code);
      outputs.push(r.stdout);
    }
    assert.deepEqual(codes, [3, 0, 0, 0, 0, 0], outputs.join('\n'));
    assert.match(outputs[0] as string, /NOT GRANTED: +network/);
    assert.match(outputs[3] as string, /needs grant: read \/data\/sets \(/, 'the one-run grant is gone; the stored network and write grants remain');
    assert.equal(JSON.parse(readFileSync(path.join(home, '.vtcode', 'skillplug.json'), 'utf8')).plugins['my-plugin'], undefined);
  });
});
