// What the CLI loads to start: a command pays only for the modules its output needs.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli, tempDir } from '../helpers/fixtures.js';

// Written at exit by a preload: the built-in modules and the CommonJS files the process loaded.
async function loadedBy(args: string[]): Promise<{ builtins: string[]; files: string[] }> {
  const dir = tempDir();
  const report = path.join(dir, 'loaded.json');
  const preload = path.join(dir, 'preload.cjs');
  writeFileSync(preload, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(report)}, JSON.stringify({ builtins: process.moduleLoadList, files: Object.keys(require.cache) })));\n`);
  // From an empty workspace: only the plugins the test made are found.
  const r = await runCli(args, { cwd: dir, env: { NODE_OPTIONS: `--require ${preload}` } });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(readFileSync(report, 'utf8')) as { builtins: string[]; files: string[] };
}

describe('CLI start-up', () => {
  it('list loads no crypto, child_process, net, ajv, koffi or MCP SDK when no plugin needs them', async () => {
    const plugins = tempDir();
    for (const name of ['a', 'b']) {
      mkdirSync(path.join(plugins, name));
      writeFileSync(path.join(plugins, name, 'plugin.json'), JSON.stringify({ name, description: 'd', version: '1' }));
      writeFileSync(path.join(plugins, name, `lib${name}.so`), '');
    }
    const { builtins, files } = await loadedBy(['list', '--plugins-dir', plugins, '--json']);
    // net: process.stdout on a pipe is a net.Socket, so writing the output must not create it.
    for (const builtin of ['crypto', 'child_process', 'net']) assert.ok(!builtins.includes(`NativeModule ${builtin}`), `list loaded node:${builtin}`);
    for (const pkg of ['ajv', 'koffi', '@modelcontextprotocol']) assert.ok(!files.some((f) => f.includes(`${path.sep}node_modules${path.sep}${pkg}${path.sep}`)), `list loaded ${pkg}`);
  });

  it('the same probe sees crypto load once a plugin carries a signature to check', async () => {
    const plugins = tempDir();
    mkdirSync(path.join(plugins, 'signed'));
    writeFileSync(path.join(plugins, 'signed', 'plugin.json'), JSON.stringify({ name: 'signed', description: 'd', version: '1' }));
    writeFileSync(path.join(plugins, 'signed', 'libsigned.so'), '');
    writeFileSync(path.join(plugins, 'signed', 'plugin.json.minisig'), 'not a signature');
    const { builtins } = await loadedBy(['list', '--plugins-dir', plugins, '--json']);
    assert.ok(builtins.includes('NativeModule crypto'));
  });
});
