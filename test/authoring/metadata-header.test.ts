// plugin.json is a template plugin's one place for its metadata: the library reports what it says.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { PluginLoader } from '../../src/index.js';
import { buildPlugin } from '../../src/authoring/build.js';
import { METADATA_HEADER, metadataHeader } from '../../src/authoring/metadata-header.js';
import { scaffoldPlugin } from '../../src/authoring/scaffold.js';
import { tempDir } from '../helpers/fixtures.js';

const run = promisify(execFile);
const hasCargo = await run('cargo', ['--version']).then(
  () => true,
  () => false,
);
const cargoEnv = (): NodeJS.ProcessEnv => {
  const env = { ...process.env };
  delete env.CARGO_TARGET_DIR;
  return env;
};

async function reportedMetadata(pluginsDir: string, dir: string): Promise<{ version: string; description: string; thread_safe: boolean }> {
  const loader = new PluginLoader({ pluginsDirs: [pluginsDir], defaultDirs: false, readConfig: false });
  const plugin = await loader.loadPlugin(dir);
  await plugin.close();
  return plugin.metadata;
}

function setManifest(dir: string, change: (manifest: Record<string, unknown>) => void): void {
  const file = path.join(dir, 'plugin.json');
  const manifest = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  change(manifest);
  writeFileSync(file, JSON.stringify(manifest, null, 2));
}

describe('metadata written once, in plugin.json', () => {
  it("the template Makefile and skillplug build write the same header, whatever plugin.json's text holds", async () => {
    const parent = tempDir();
    const { dir } = await scaffoldPlugin({ name: 'tricky', lang: 'c', dir: parent });
    // Quotes, backslashes, a trigraph, CRLF, non-ASCII, an escaped tab and no final newline.
    const text = '{\r\n  "name": "tricky",\r\n  "description": "say \\"hi\\" \\\\ ??= é\\t😀",\r\n  "version": "1.0.0", "abi_version": 1\r\n}';
    writeFileSync(path.join(dir, 'plugin.json'), text);
    await run('make', [METADATA_HEADER], { cwd: dir });
    assert.equal(readFileSync(path.join(dir, METADATA_HEADER), 'utf8'), metadataHeader(text));
    await run('make', [], { cwd: dir });
    const metadata = await reportedMetadata(parent, dir);
    assert.equal(metadata.description, 'say "hi" \\ ??= é\t😀');
  });

  it('a scaffolded C plugin has no metadata in its code: a new version in plugin.json is what the rebuilt plugin reports', async () => {
    const parent = tempDir();
    const { dir } = await scaffoldPlugin({ name: 'c-once', lang: 'c', dir: parent, description: 'First words.' });
    const source = readFileSync(path.join(dir, 'plugin.c'), 'utf8');
    for (const literal of ['0.1.0', 'First words.', '"c-once"']) assert.ok(!source.includes(literal), `plugin.c repeats ${literal}`);
    await run('make', [], { cwd: dir });
    assert.equal((await reportedMetadata(parent, dir)).version, '0.1.0');
    setManifest(dir, (m) => {
      m.version = '0.2.0';
      m.description = 'Second words.';
    });
    await run('make', [], { cwd: dir });
    assert.deepEqual(await reportedMetadata(parent, dir).then((m) => [m.version, m.description, m.thread_safe]), ['0.2.0', 'Second words.', true]);
    // skillplug build writes the header itself, so it is right even when make would not remake it.
    setManifest(dir, (m) => (m.version = '0.3.0'));
    rmSync(path.join(dir, METADATA_HEADER));
    const built = await buildPlugin({ dir, out: path.join(parent, 'out') });
    assert.equal((await reportedMetadata(path.join(parent, 'out'), built.pluginDir)).version, '0.3.0');
  });

  it('skillplug build writes the header for plain C sources built with cc', async () => {
    const parent = tempDir();
    const { dir } = await scaffoldPlugin({ name: 'plain-cc', lang: 'c', dir: parent });
    rmSync(path.join(dir, 'Makefile'));
    setManifest(dir, (m) => (m.version = '7.0.0'));
    const built = await buildPlugin({ dir, out: path.join(parent, 'out') });
    assert.equal(built.tool, 'cc');
    assert.equal((await reportedMetadata(path.join(parent, 'out'), built.pluginDir)).version, '7.0.0');
  });

  it('a scaffolded Rust plugin takes its metadata from plugin.json, and cargo refuses a plugin.json that cannot be metadata', { skip: hasCargo ? false : 'cargo is not installed' }, async () => {
    const parent = tempDir();
    const { dir } = await scaffoldPlugin({ name: 'rust-once', lang: 'rust', dir: parent, description: 'First words.' });
    const source = readFileSync(path.join(dir, 'src', 'lib.rs'), 'utf8');
    for (const literal of ['0.1.0', 'First words.', '"rust-once"']) assert.ok(!source.includes(literal), `lib.rs repeats ${literal}`);
    setManifest(dir, (m) => (m.version = '4.5.6'));
    await run('cargo', ['build', '--release', '--offline', '--quiet'], { cwd: dir, env: cargoEnv() });
    assert.deepEqual(await reportedMetadata(parent, dir).then((m) => [m.version, m.thread_safe]), ['4.5.6', true]);
    setManifest(dir, (m) => (m.thread_safe = 'yes'));
    const failed = await run('cargo', ['build', '--release', '--offline', '--quiet'], { cwd: dir, env: cargoEnv() }).then(
      () => undefined,
      (err: { stderr: string }) => err.stderr,
    );
    assert.ok(failed !== undefined, 'the build fails');
    assert.match(failed, /plugin\.json: "thread_safe" must be true or false/);
  });
});
