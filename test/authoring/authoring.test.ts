import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { PluginLoader, type IsolationMode } from '../../src/index.js';
import { buildPlugin } from '../../src/authoring/build.js';
import { CLI_PATH, REPO_ROOT, runCli, tempDir } from '../helpers/fixtures.js';

const run = promisify(execFile);
const cleanEnv = (): NodeJS.ProcessEnv => {
  const env = { ...process.env };
  delete env.CARGO_TARGET_DIR;
  return env;
};
const hasCargo = await run('cargo', ['--version']).then(
  () => true,
  () => false,
);
const skipRust = hasCargo ? false : 'cargo is not installed';

describe('skillplug new / build / dev', () => {
  it('scaffolds a C plugin that builds with make and then validates and runs', async () => {
    const parent = tempDir();
    const created = await runCli(['new', 'c-tool', '--lang', 'c', '--dir', parent, '--description', 'Counts "bytes"']);
    assert.equal(created.code, 0, created.stderr);
    const dir = path.join(parent, 'c-tool');
    const before = await runCli(['validate', dir, '--json']);
    assert.equal(before.code, 1, 'not built yet');
    assert.deepEqual(JSON.parse(before.stdout).errors.map((e: { code: string }) => e.code), ['E_INVALID_STRUCTURE']);
    await run('make', [], { cwd: dir });
    const valid = await runCli(['validate', dir, '--json']);
    assert.equal(valid.code, 0, valid.stdout);
    const r = await runCli(['run', dir, '--plugins-dir', parent, '--input', '{"text":"héllo"}', '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).output, { bytes: 6 });
    const inspect = JSON.parse((await runCli(['inspect', dir, '--plugins-dir', parent, '--json'])).stdout);
    assert.equal(inspect.metadata.description, 'Counts "bytes"');
  });

  it('scaffolds a Rust plugin that builds with cargo, validates, runs, and turns a panic into a failed result', { skip: skipRust }, async () => {
    const parent = tempDir();
    assert.equal((await runCli(['new', 'rust-tool', '--lang', 'rust', '--dir', parent])).code, 0);
    const dir = path.join(parent, 'rust-tool');
    const lib = path.join(dir, 'src', 'lib.rs');
    writeFileSync(lib, readFileSync(lib, 'utf8').replace('let text = ', 'if ctx.input.get("text").and_then(Value::as_str) == Some("panic") { panic!("deliberate"); }\n        let text = '));
    await run('cargo', ['build', '--release', '--offline', '--quiet'], { cwd: dir, env: cleanEnv() });
    assert.equal((await runCli(['validate', dir, '--json'])).code, 0);
    for (const isolation of ['process', 'none'] as IsolationMode[]) {
      const loader = new PluginLoader({ pluginsDirs: [parent], defaultDirs: false, readConfig: false, isolation });
      const plugin = await loader.loadPlugin(dir);
      try {
        assert.equal(plugin.metadata.thread_safe, true);
        assert.deepEqual((await plugin.execute({ input: { text: 'héllo' }, workspace_root: null, config: {} })).output, { chars: 5 });
        const panicked = await plugin.execute({ input: { text: 'panic' }, workspace_root: null, config: {} });
        assert.equal(panicked.success, false);
        // The message, then where the panic happened (the SDK's panic hook records it).
        assert.match(panicked.error ?? '', /^plugin panicked: deliberate at src\/lib\.rs:\d+:\d+$/);
        assert.equal((await plugin.execute({ input: { text: 'ok' }, workspace_root: null, config: {} })).success, true, 'still usable after a panic');
      } finally {
        await plugin.close();
      }
    }
    const built = await runCli(['build', dir, '--json'], { env: cleanEnv() });
    assert.equal(built.code, 0, built.stderr);
    const result = JSON.parse(built.stdout);
    assert.equal(result.tool, 'cargo');
    assert.ok(existsSync(path.join(dir, 'dist', 'rust-tool', 'librust-tool.so')));
    assert.equal((await runCli(['validate', result.pluginDir, '--json'])).code, 0);
  });

  it('builds plain C sources with cc and the SDK when there is no Makefile', async () => {
    const dir = path.join(tempDir(), 'plain');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify({ name: 'plain', description: 'd', version: '1' }));
    writeFileSync(
      path.join(dir, 'plain.c'),
      `#include "vtcode_plugin.h"
VTCODE_PLUGIN_EXPORT_VERSION()
VTCODE_PLUGIN_EXPORT_FREE()
VTCODE_EXPORT const char *vtcode_plugin_metadata(void) { return vtcode_strdup("{\\"name\\":\\"plain\\",\\"description\\":\\"d\\",\\"version\\":\\"1\\",\\"abi_version\\":1}"); }
VTCODE_EXPORT const char *vtcode_plugin_execute(const char *ctx) { (void)ctx; return vtcode_result_ok("{\\"plain\\":true}"); }
`,
    );
    const out = tempDir();
    const built = await buildPlugin({ dir, out });
    assert.equal(built.tool, 'cc');
    const loader = new PluginLoader({ pluginsDirs: [out], defaultDirs: false, readConfig: false });
    const plugin = await loader.loadPlugin(built.pluginDir);
    assert.deepEqual((await plugin.execute({ input: {}, workspace_root: null, config: {} })).output, { plain: true });
    await plugin.close();
  });

  it('reports a failing build with E_BUILD_FAILED and exit 1', async () => {
    const dir = path.join(tempDir(), 'broken');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify({ name: 'broken', description: 'd', version: '1' }));
    writeFileSync(path.join(dir, 'broken.c'), 'this is not C;\n');
    const r = await runCli(['build', dir, '--json']);
    assert.equal(r.code, 1);
    assert.equal(JSON.parse(r.stdout).error.code, 'E_BUILD_FAILED');
    assert.match(JSON.parse(r.stdout).error.message, /broken\.c/);
  });

  it('refuses bad names and existing dirs', async () => {
    const parent = tempDir();
    assert.equal((await runCli(['new', '../escape', '--dir', parent])).code, 2);
    assert.equal((await runCli(['new', 'x', '--lang', 'cobol', '--dir', parent])).code, 2);
    assert.equal((await runCli(['new', 'x', '--dir', parent])).code, 0);
    assert.equal((await runCli(['new', 'x', '--dir', parent])).code, 2);
  });

  it('refuses names cargo cannot build for Rust, and the Rust README names the library cargo makes', async () => {
    const parent = tempDir();
    for (const name of ['9lives', 'test', 'std']) {
      const r = await runCli(['new', name, '--lang', 'rust', '--dir', parent, '--json']);
      assert.equal(r.code, 2, name);
      assert.equal(JSON.parse(r.stdout).error.code, 'E_USAGE', name);
    }
    assert.equal((await runCli(['new', '9lives', '--lang', 'c', '--dir', parent])).code, 0, 'C has no such rule');
    assert.equal((await runCli(['new', 'my-tool', '--lang', 'rust', '--dir', parent])).code, 0);
    const readme = readFileSync(path.join(parent, 'my-tool', 'README.md'), 'utf8');
    assert.ok(readme.includes('target/release/libmy_tool.so'), 'cargo turns "-" into "_" in the library name');
  });

  it('dev --once builds, loads and runs with timings', async () => {
    const parent = tempDir();
    await runCli(['new', 'once', '--dir', parent]);
    const r = await runCli(['dev', path.join(parent, 'once'), '--once', '--input', '{"text":"abc"}']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /✔ once: built with make in \d+ ms · loaded in \d+ ms · ran in \d+ ms/);
    assert.match(r.stdout, /"bytes": 3/);
  });

  it('dev watches the sources and re-runs on every save', async () => {
    const parent = tempDir();
    await runCli(['new', 'watched', '--dir', parent]);
    const dir = path.join(parent, 'watched');
    const child = spawn(process.execPath, [CLI_PATH, 'dev', dir, '--input', '{"text":"abc"}'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    // Resolves on the output that matches (each chunk is an event); fails at once if dev ends first.
    const printed = (pattern: RegExp): Promise<void> =>
      new Promise((resolve, reject) => {
        const settle = (err?: Error): void => {
          child.stdout.off('data', look);
          child.off('close', ended);
          clearTimeout(guard);
          if (err) reject(err);
          else resolve();
        };
        const look = (): void => {
          if (pattern.test(out)) settle();
        };
        const ended = (): void => settle(new Error(`dev ended before printing ${pattern}:\n${out}`));
        // Only a guard against a hang (a watch that never fires); nothing is asserted about time.
        const guard = setTimeout(() => settle(new Error(`dev never printed ${pattern}:\n${out}`)), 120_000);
        child.stdout.on('data', look);
        child.once('close', ended);
        look();
      });
    try {
      await printed(/watching/);
      const source = path.join(dir, 'plugin.c');
      writeFileSync(source, readFileSync(source, 'utf8').replace('{\\"bytes\\":%zu}', '{\\"bytes\\":%zu,\\"edited\\":true}'));
      await printed(/"edited": true/);
    } finally {
      child.kill('SIGINT');
    }
  });
});
