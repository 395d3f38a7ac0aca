// What dev's watcher treats as a change: source files, not build output or editors' scratch files.
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { buildPlugin } from '../../src/authoring/build.js';
import { devLoop, isWatchNoise, ownBuildLoader } from '../../src/authoring/dev.js';
import { scaffoldPlugin } from '../../src/authoring/scaffold.js';
import { PluginLoader } from '../../src/index.js';
import { runCli, tempDir } from '../helpers/fixtures.js';

describe('dev watcher', () => {
  it('ignores build output and the files editors write while saving', () => {
    for (const noise of ['plugin_meta.h', 'target/release/libx.so', 'dist/x/plugin.json', 'build/a.o', '.git/index', 'src/.lib.rs.swp', 'plugin.c.swx', '4913', 'src/4913', 'plugin.c~', '#plugin.c#', 'src/.#lib.rs', 'plugin.c___jb_tmp___', 'a.c.orig', 'x.kate-swp', 'libx.so']) {
      assert.equal(isWatchNoise(noise), true, noise);
    }
  });

  it('reports sources, manifests and build files as changes', () => {
    for (const source of ['plugin.c', 'src/lib.rs', 'plugin.json', 'Makefile', 'Cargo.toml', 'include/vtcode_plugin.h', 'src/target.rs', 'dist.c', 'README.md']) {
      assert.equal(isWatchNoise(source), false, source);
    }
  });
});

const ECHO_EXECUTE = `#include <unistd.h>
VTCODE_EXPORT const char *vtcode_plugin_execute(const char *ctx) {
  if (vtcode_json_bool(ctx, "input.hang", 0)) for (;;) pause();
  return vtcode_result_ok(ctx);
}
`;

/** A scaffolded C project whose plugin returns its whole context (and hangs when asked). */
async function echoProject(parent: string, name: string): Promise<string> {
  const { dir } = await scaffoldPlugin({ name, lang: 'c', dir: parent });
  const source = path.join(dir, 'plugin.c');
  const text = readFileSync(source, 'utf8');
  writeFileSync(source, text.slice(0, text.indexOf('VTCODE_EXPORT const char *vtcode_plugin_execute')) + ECHO_EXECUTE);
  const manifest = JSON.parse(readFileSync(path.join(dir, 'plugin.json'), 'utf8')) as Record<string, unknown>;
  delete manifest.input_schema;
  writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify(manifest, null, 2));
  return dir;
}

function homeRequiringSignatures(): string {
  const home = tempDir('skillplug-home-');
  mkdirSync(path.join(home, '.vtcode'));
  writeFileSync(path.join(home, '.vtcode', 'skillplug.json'), JSON.stringify({ require_signature: true }));
  return home;
}

describe('dev flags', () => {
  it('takes --workspace, --config, --input-file and --timeout like run', async () => {
    const parent = tempDir();
    const dir = await echoProject(parent, 'echo-flags');
    const workspace = tempDir('skillplug-ws-');
    const inputFile = path.join(parent, 'input.json');
    writeFileSync(inputFile, JSON.stringify({ from: 'file' }));
    const r = await runCli(['dev', dir, '--once', '--input-file', inputFile, '--config', '{"level":3}', '--workspace', workspace]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const context = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))).output;
    assert.deepEqual(context, { input: { from: 'file' }, workspace_root: realpathSync(workspace), config: { level: 3 } });
    // The plugin never returns, so only the deadline --timeout sets can end the call.
    const hung = await runCli(['dev', dir, '--once', '--input', '{"hang":true}', '--timeout', '300']);
    assert.equal(hung.code, 1);
    assert.match(hung.stdout, /error\[E_TIMEOUT\]/);
    const both = await runCli(['dev', dir, '--once', '--input', '{}', '--input-file', inputFile, '--json']);
    assert.equal(both.code, 2);
  });
});

describe('dev and required signatures', () => {
  it('runs the unsigned plugin it built itself, saying so once on stderr; run on the same files still needs the signature', async () => {
    const parent = tempDir();
    const dir = await echoProject(parent, 'own-build');
    const home = homeRequiringSignatures();
    const r = await runCli(['dev', dir, '--once', '--input', '{}'], { env: { HOME: home } });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stderr.match(/UNSIGNED/g)?.length, 1, r.stderr);
    assert.ok(!r.stdout.includes('UNSIGNED'), 'the notice goes to stderr');
    const ran = await runCli(['run', path.join(dir, 'dist', 'own-build'), '--plugins-dir', path.join(dir, 'dist'), '--json'], { env: { HOME: home } });
    assert.equal(JSON.parse(ran.stdout).error.code, 'E_SIGNATURE');
  });

  it('exempts only the dir its build wrote and only the bytes it wrote there', async () => {
    const parent = tempDir();
    const out = path.join(parent, 'out');
    const mine = await buildPlugin({ dir: await echoProject(parent, 'mine'), out });
    const other = await buildPlugin({ dir: await echoProject(parent, 'other'), out });
    const policy = { readConfig: false, requireSignature: true };
    const own = await ownBuildLoader(mine, policy).loadPlugin(mine.pluginDir);
    await own.close();
    // Another plugin beside it, in the same trusted dir, built the same way.
    await assert.rejects(ownBuildLoader(mine, policy).loadPlugin(other.pluginDir), { code: 'E_SIGNATURE' });
    // Its own dir after the build: a library changed since is no longer what dev built.
    appendFileSync(mine.libraryPath, Buffer.from([0]));
    await assert.rejects(ownBuildLoader(mine, policy).loadPlugin(mine.pluginDir), { code: 'E_SIGNATURE' });
  });

  it('says it once per dev session, not on every rebuild', async () => {
    const parent = tempDir();
    const dir = await echoProject(parent, 'watched-policy');
    const home = homeRequiringSignatures();
    const notices: string[] = [];
    const results: string[] = [];
    let onResult: (() => void) | undefined;
    const controller = new AbortController();
    const loop = devLoop({
      dir,
      input: {},
      loader: { home, requireSignature: true },
      write: (line) => {
        if (/^[✔✘] /.test(line)) {
          results.push(line);
          onResult?.();
        }
      },
      notice: (line) => notices.push(line),
      signal: controller.signal,
    });
    const nextResult = (count: number): Promise<void> =>
      new Promise((resolve) => {
        onResult = () => {
          if (results.length >= count) resolve();
        };
        onResult();
      });
    await nextResult(1);
    const manifest = path.join(dir, 'plugin.json');
    writeFileSync(manifest, readFileSync(manifest, 'utf8').replace('0.1.0', '0.1.1'));
    await nextResult(2);
    controller.abort();
    assert.equal(await loop, 0);
    assert.ok(results.every((line) => line.startsWith('✔')), results.join('\n'));
    assert.equal(notices.length, 1);
  });
});

describe('ownBuild loader option', () => {
  it('refuses a malformed exemption up front instead of failing at load', () => {
    for (const ownBuild of [null, 'dir', { dir: 1, manifestSha256: 'a'.repeat(64), librarySha256: 'a'.repeat(64) }, { dir: '/x', manifestSha256: 'nothex', librarySha256: 'a'.repeat(64) }]) {
      assert.throws(() => new PluginLoader({ readConfig: false, ownBuild: ownBuild as never }), { code: 'E_USAGE' }, JSON.stringify(ownBuild));
    }
  });
});
