// The published bin runs dist/cli/main.js and what it imports, bundled as CommonJS (scripts/bundle-cli.mjs),
// from V8's code cache (src/cli/bin.cts): it must answer as the modules do, and still load only what a command needs.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import Module from 'node:module';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { REPO_ROOT, buildFixture, runCli, tempDir, tempHome } from '../helpers/fixtures.js';

const BIN = path.join(REPO_ROOT, (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { bin: { skillplug: string } }).bin.skillplug);

describe('the bundled bin', () => {
  let plugins: string;
  let workspace: string;

  before(async () => {
    plugins = tempDir();
    workspace = tempDir();
    await buildFixture(plugins, { source: 'echo', name: 'echo' });
  });

  it('answers every command as the modules it was built from', async () => {
    const commands = [
      ['--version'],
      ['help'],
      ['list', '--plugins-dir', plugins, '--workspace', workspace, '--json'],
      ['list', '--plugins-dir', plugins, '--workspace', workspace],
      ['run', 'echo', '--plugins-dir', plugins, '--workspace', workspace, '--input', '{"text":"hi"}', '--json'],
      ['run', 'nope', '--plugins-dir', plugins, '--workspace', workspace, '--json'],
      ['inspect', 'echo', '--plugins-dir', plugins, '--workspace', workspace, '--json'],
      ['validate', path.join(plugins, 'echo'), '--json'],
      ['list', '--no-such-flag'],
    ];
    for (const args of commands) {
      const [bundled, modules] = await Promise.all([runCli(args, { cwd: workspace, cli: BIN }), runCli(args, { cwd: workspace })]);
      assert.deepEqual(bundled, modules, args.join(' '));
    }
  });

  it("list loads neither the SDK bundle nor koffi nor ajv, nor Node's fs/promises or (writing to a pipe) net", async () => {
    const dir = tempDir();
    const report = path.join(dir, 'loaded.json');
    const preload = path.join(dir, 'preload.cjs');
    writeFileSync(preload, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(report)}, JSON.stringify({ files: Object.keys(require.cache), builtins: process.moduleLoadList })));\n`);
    const r = await runCli(['list', '--plugins-dir', plugins, '--json'], { cwd: workspace, cli: BIN, env: { NODE_OPTIONS: `--require ${preload}` } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { plugins: unknown[] }).plugins.length, 1);
    const { files, builtins } = JSON.parse(readFileSync(report, 'utf8')) as { files: string[]; builtins: string[] };
    assert.ok(files.includes(BIN), 'the probe saw the bin load');
    for (const part of ['mcp-sdk.cjs', `${path.sep}koffi${path.sep}`, `${path.sep}ajv${path.sep}`]) assert.ok(!files.some((f) => f.includes(part)), `list loaded ${part}`);
    for (const builtin of ['fs/promises', 'net']) assert.ok(!builtins.includes(`NativeModule ${builtin}`), `list loaded node:${builtin}`);
  });

  it('also runs required as a CommonJS module, as the bin does where Node keeps the compile cache itself', async () => {
    const args = ['list', '--plugins-dir', plugins, '--workspace', workspace, '--json'];
    const required = await runCli(args, { cwd: workspace, cli: path.join(path.dirname(BIN), 'skillplug.cjs') });
    assert.equal(required.code, 0, required.stderr);
    assert.deepEqual(required, await runCli(args, { cwd: workspace }));
  });

  it('is ASCII, which V8 holds as a one-byte string, faster to read at each start', () => {
    const bundle = readFileSync(path.join(path.dirname(BIN), 'skillplug.cjs'));
    assert.equal(bundle.findIndex((byte) => byte > 0x7f), -1);
  });

  it('keeps one code cache per bundle build, and replaces one V8 will not take', async () => {
    const cache = tempDir();
    const env = { SKILLPLUG_CACHE_DIR: cache };
    const args = ['list', '--plugins-dir', plugins, '--workspace', workspace, '--json'];
    const expected = await runCli(args, { cwd: workspace });
    assert.deepEqual(await runCli(args, { cwd: workspace, cli: BIN, env }), expected);
    if ('enableCompileCache' in Module) {
      // Node keeps the cache itself here.
      assert.ok(existsSync(path.join(cache, 'compile-cache')));
      return;
    }
    const dir = path.join(cache, 'code-cache');
    const written = readdirSync(dir);
    assert.equal(written.filter((f) => f.startsWith('skillplug-')).length, 1, written.join(', '));
    const file = path.join(dir, written.find((f) => f.startsWith('skillplug-')) as string);
    writeFileSync(file, 'not a code cache');
    assert.deepEqual(await runCli(args, { cwd: workspace, cli: BIN, env }), expected);
    assert.notEqual(readFileSync(file, 'utf8'), 'not a code cache', 'the rejected cache was written anew');
    assert.deepEqual(readdirSync(dir), written);
  });

  it('serves a plugin over MCP from the SDK bundle', async () => {
    const transport = new StdioClientTransport({ command: process.execPath, args: [BIN, 'serve', '--plugins-dir', plugins, '--workspace', workspace], env: { ...(process.env as Record<string, string>), HOME: tempHome() }, stderr: 'pipe' });
    const client = new Client({ name: 'bundle-test', version: '1.0.0' });
    await client.connect(transport);
    try {
      assert.deepEqual((await client.listTools()).tools.map((t) => t.name), ['echo']);
      const result = await client.callTool({ name: 'echo', arguments: { text: 'hi' } });
      assert.notEqual(result.isError, true, JSON.stringify(result));
    } finally {
      await client.close();
    }
  });
});
