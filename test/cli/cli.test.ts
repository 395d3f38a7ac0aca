import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { CLI_PATH, buildFixture, runCli, tempDir, tempHome } from '../helpers/fixtures.js';

describe('cli', () => {
  let plugins: string;
  let workspace: string;
  let marker: string;

  before(async () => {
    const base = tempDir();
    plugins = path.join(base, 'plugins');
    workspace = path.join(base, 'ws');
    mkdirSync(plugins);
    mkdirSync(workspace);
    marker = path.join(base, 'marker');
    await Promise.all([
      buildFixture(plugins, { source: 'echo', name: 'echo' }),
      buildFixture(plugins, { source: 'heap', name: 'heap' }),
      buildFixture(plugins, { source: 'abi_mismatch', name: 'abi2' }),
      buildFixture(plugins, { source: 'marker', name: 'marker' }),
      buildFixture(plugins, { source: 'echo', name: 'broken', manifest: '{"name":"broken"}' }),
    ]);
  });

  const common = () => ['--plugins-dir', plugins, '--workspace', workspace];

  it('list --json prints one document with every plugin and runs none of them', async () => {
    const r = await runCli(['list', ...common(), '--json'], { env: { SKILLPLUG_TEST_MARKER: marker } });
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.ok(doc.trusted_dirs.includes(plugins));
    const names = doc.plugins.map((p: { name: string }) => p.name).sort();
    assert.deepEqual(names, ['abi2', 'broken', 'echo', 'heap', 'marker']);
    const broken = doc.plugins.find((p: { name: string }) => p.name === 'broken');
    assert.equal(broken.status, 'error');
    assert.ok(broken.errors.some((e: { code: string; field?: string }) => e.code === 'E_INVALID_MANIFEST' && e.field === 'description'));
    for (const p of doc.plugins) assert.deepEqual(Object.keys(p).sort(), ['description', 'errors', 'name', 'path', 'permissions', 'status', 'version']);
    assert.equal(existsSync(marker), false);
  });

  it('list ends quietly when its reader stops reading (list | head), with no stack trace', async () => {
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [CLI_PATH, 'list', ...common(), '--json'], { env: { ...process.env, HOME: tempHome() }, stdio: ['ignore', 'pipe', 'pipe'] });
    // Closed before the CLI writes a byte (Node starts first), so its first write meets EPIPE.
    child.stdout.destroy();
    const err: Buffer[] = [];
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const [code] = (await once(child, 'close')) as [number | null];
    assert.equal(Buffer.concat(err).toString(), '');
    assert.equal(code, 0);
  });

  it('list finds plugins in the workspace default dir', async () => {
    const ws = tempDir();
    await buildFixture(path.join(ws, '.vtcode', 'plugins'), { source: 'echo', name: 'local' });
    const r = await runCli(['list', '--json'], { cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).plugins.map((p: { name: string }) => p.name), ['local']);
  });

  it('list prints readable text', async () => {
    const r = await runCli(['list', ...common()]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /echo 1\.0\.0/);
    assert.match(r.stdout, /E_INVALID_MANIFEST/);
  });

  it('validate reports valid and invalid plugins with exit 0 and 1', async () => {
    const ok = await runCli(['validate', path.join(plugins, 'echo'), '--json']);
    assert.equal(ok.code, 0);
    const okDoc = JSON.parse(ok.stdout);
    assert.equal(okDoc.valid, true);
    assert.deepEqual(okDoc.errors, []);
    // The fixture's plugin.json has no abi_version: valid for skillplug, a warning for VT Code.
    assert.deepEqual(okDoc.warnings.map((w: { code: string }) => w.code), ['W_VTCODE_ABI_VERSION']);
    const bad = await runCli(['validate', path.join(plugins, 'broken'), '--json']);
    assert.equal(bad.code, 1);
    const doc = JSON.parse(bad.stdout);
    assert.equal(doc.valid, false);
    assert.deepEqual(doc.errors.map((e: { field?: string }) => e.field).sort(), ['description', 'version']);
    const missing = await runCli(['validate', path.join(plugins, 'none'), '--json']);
    assert.equal(missing.code, 3);
    assert.equal(JSON.parse(missing.stdout).error.code, 'E_NOT_FOUND');
  });

  it('inspect --json shows library metadata, manifest and library facts', async () => {
    const r = await runCli(['inspect', 'echo', ...common(), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.equal(doc.metadata.name, 'echo');
    assert.equal(doc.metadata.thread_safe, false);
    assert.equal(doc.manifest.author, 'tests');
    assert.equal(doc.library.path, path.join(plugins, 'echo', 'libecho.so'));
    assert.match(doc.library.sha256, /^[0-9a-f]{64}$/);
    assert.ok(doc.library.size > 0);
  });

  it('run --json prints the PluginResult with the canonical workspace as workspace_root', async () => {
    const r = await runCli(['run', 'echo', ...common(), '--input', '{"q":1}', '--config', '{"c":2}', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.deepEqual(doc.output.ctx, { input: { q: 1 }, workspace_root: workspace, config: { c: 2 } });
  });

  it('run accepts a path, --input - and --input-file', async () => {
    const viaStdin = await runCli(['run', path.join(plugins, 'echo'), ...common(), '--input', '-', '--json'], { input: '{"from":"stdin"}' });
    assert.equal(viaStdin.code, 0, viaStdin.stderr);
    assert.deepEqual(JSON.parse(viaStdin.stdout).output.ctx.input, { from: 'stdin' });
    const file = path.join(tempDir(), 'in.json');
    writeFileSync(file, '{"from":"file"}');
    const viaFile = await runCli(['run', 'echo', ...common(), '--input-file', file, '--json']);
    assert.deepEqual(JSON.parse(viaFile.stdout).output.ctx.input, { from: 'file' });
  });

  it('exit 1 when the plugin reports failure', async () => {
    const r = await runCli(['run', 'heap', ...common(), '--input', '{"mode":"fail"}', '--json']);
    assert.equal(r.code, 1);
    assert.equal(JSON.parse(r.stdout).error, 'it went wrong');
    // Without --json, a failure with the ABI's empty output prints nothing on stdout (the reason goes to stderr).
    const text = await runCli(['run', 'heap', ...common(), '--input', '{"mode":"fail"}']);
    assert.equal(text.code, 1);
    assert.equal(text.stdout, '');
    assert.ok(text.stderr.length > 0);
  });

  it('exit 2 for usage errors', async () => {
    for (const args of [['run', 'echo', ...common(), '--input', 'not json'], ['run', 'echo', ...common(), '--input', '[1]'], ['run'], ['frobnicate'], ['run', 'echo', '--bogus']]) {
      const r = await runCli([...args, '--json']);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.equal(JSON.parse(r.stdout).error.code, 'E_USAGE');
    }
  });

  it('exit 3 for plugins that cannot load, with the facts as data', async () => {
    const notFound = await runCli(['run', 'nope', ...common(), '--json']);
    assert.equal(notFound.code, 3);
    assert.equal(JSON.parse(notFound.stdout).error.code, 'E_NOT_FOUND');
    const abi = await runCli(['run', 'abi2', ...common(), '--json']);
    assert.equal(abi.code, 3);
    assert.deepEqual(JSON.parse(abi.stdout).error, { ...JSON.parse(abi.stdout).error, code: 'E_ABI_MISMATCH', data: { expected: 1, found: 2 } });
    const outside = await runCli(['run', path.join(tempDir(), 'x'), ...common(), '--json']);
    assert.equal(outside.code, 3);
  });

  it('exit 4 when the plugin fails while running', async () => {
    const r = await runCli(['run', 'heap', ...common(), '--input', '{"mode":"notjson"}', '--json']);
    assert.equal(r.code, 4);
    assert.equal(JSON.parse(r.stdout).error.code, 'E_INVALID_JSON');
  });

  it('prints errors as skillplug: error[CODE] on stderr without --json', async () => {
    const r = await runCli(['run', 'abi2', ...common()]);
    assert.equal(r.code, 3);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^skillplug: error\[E_ABI_MISMATCH\]: /);
  });

  it('streams a result of tens of MiB', async () => {
    const size = 24 * 1024 * 1024;
    const r = await runCli(['run', 'heap', ...common(), '--input', JSON.stringify({ mode: 'big', size }), '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).output.length, size);
  });

  it('demo does not fail', async () => {
    const r = await runCli(['demo']);
    assert.equal(r.code, 0, r.stderr);
  });
});
