// What skillplug scaffolds and builds, checked against VT Code's own loader and listing rules.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ErrorCode } from '../../src/index.js';
import { buildPlugin } from '../../src/authoring/build.js';
import { rejectsWithCode } from '../helpers/assertions.js';
import { runCli, tempDir } from '../helpers/fixtures.js';
import { vtcodeListingCandidates, vtcodeLoaderCandidates, vtcodeMetadataProblems, vtcodeView } from '../helpers/vtcode-rules.js';

const run = promisify(execFile);
const cleanEnv = (): NodeJS.ProcessEnv => ({ ...process.env, CARGO_TARGET_DIR: undefined });
const hasCargo = await run('cargo', ['--version']).then(
  () => true,
  () => false,
);

describe('VT Code reads what skillplug writes', () => {
  it('encodes VT Code’s candidate names as its source has them (the loader’s fallbacks end in a doubled extension)', () => {
    assert.deepEqual(vtcodeLoaderCandidates('my-plugin', 'linux'), ['libmy-plugin.so', 'my-plugin.so', 'my-plugin.so.so', 'libmy-plugin.so.so']);
    assert.deepEqual(vtcodeLoaderCandidates('my-plugin', 'win32'), ['my-plugin.dll', 'libmy-plugin.dll', 'my-plugin.dll.dll', 'libmy-plugin.dll.dll']);
    assert.ok(!vtcodeListingCandidates('my-plugin', 'linux').includes('libmy_plugin.so'), 'Cargo’s underscore name is not among them');
  });

  it('a C plugin from new + build is listed and loadable by VT Code’s rules', async () => {
    const parent = tempDir();
    assert.equal((await runCli(['new', 'c-compat', '--lang', 'c', '--dir', parent])).code, 0);
    const project = path.join(parent, 'c-compat');
    assert.deepEqual(vtcodeMetadataProblems(JSON.parse(readFileSync(path.join(project, 'plugin.json'), 'utf8'))), []);
    const built = await runCli(['build', project, '--json']);
    assert.equal(built.code, 0, built.stderr);
    const dist = JSON.parse(built.stdout).pluginDir as string;
    assert.deepEqual(vtcodeView(dist), { listed: true, problems: [], loaderLibrary: 'libc-compat.so' });
    const validated = JSON.parse((await runCli(['validate', dist, '--json'])).stdout);
    assert.deepEqual(validated, { valid: true, errors: [], warnings: [] });
  });

  it('a Rust plugin with a hyphenated name is laid out under VT Code’s name, not Cargo’s', { skip: hasCargo ? false : 'cargo is not installed' }, async () => {
    const parent = tempDir();
    assert.equal((await runCli(['new', 'rs-compat', '--lang', 'rust', '--dir', parent])).code, 0);
    const project = path.join(parent, 'rs-compat');
    assert.deepEqual(vtcodeMetadataProblems(JSON.parse(readFileSync(path.join(project, 'plugin.json'), 'utf8'))), []);
    const built = await runCli(['build', project, '--json'], { env: cleanEnv() });
    assert.equal(built.code, 0, built.stderr);
    assert.ok(existsSync(path.join(project, 'target', 'release', 'librs_compat.so')), 'cargo names it with underscores');
    const dist = JSON.parse(built.stdout).pluginDir as string;
    assert.deepEqual(vtcodeView(dist), { listed: true, problems: [], loaderLibrary: 'librs-compat.so' });
    assert.deepEqual(JSON.parse((await runCli(['validate', dist, '--json'])).stdout).warnings, []);
    // The project dir itself loads in skillplug (it looks in target/release) but not in VT Code: validate says so.
    const project_ = JSON.parse((await runCli(['validate', project, '--json'])).stdout);
    assert.equal(project_.valid, true);
    assert.deepEqual(project_.warnings.map((w: { code: string }) => w.code), ['W_VTCODE_LIBRARY_NAME']);
    assert.equal(vtcodeView(project).listed, false);
  });

  it('new warns when the name is outside VT Code’s rule, and scaffolds it anyway', async () => {
    const parent = tempDir();
    const r = await runCli(['new', 'Shouty_Name', '--lang', 'c', '--dir', parent]);
    assert.equal(r.code, 0);
    assert.match(r.stderr, /W_VTCODE_NAME/);
    assert.ok(existsSync(path.join(parent, 'Shouty_Name', 'plugin.json')));
    assert.doesNotMatch((await runCli(['new', 'quiet-name', '--lang', 'c', '--dir', parent])).stderr, /W_VTCODE_NAME/);
  });

  it('build adds abi_version to a plugin.json without one, keeping every other field', async () => {
    const dir = path.join(tempDir(), 'no-abi');
    mkdirSync(dir);
    const manifest = { name: 'no-abi', description: 'd', version: '2.0.0', author: 'me', custom: { keep: [1, 2] } };
    writeFileSync(path.join(dir, 'plugin.json'), `{"__proto__":{"kept":true},${JSON.stringify(manifest).slice(1)}`);
    writeFileSync(path.join(dir, 'no-abi.c'), '#include "vtcode_plugin.h"\nVTCODE_PLUGIN_EXPORT_VERSION()\n');
    const result = await buildPlugin({ dir });
    const written = JSON.parse(readFileSync(path.join(result.pluginDir, 'plugin.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(written), ['__proto__', 'name', 'description', 'version', 'abi_version', 'author', 'custom']);
    assert.equal(written.abi_version, 1);
    assert.deepEqual(written.custom, manifest.custom);
    assert.deepEqual(vtcodeMetadataProblems(written), []);
  });

  it('build refuses an abi_version other than 1 instead of shipping it', async () => {
    const dir = path.join(tempDir(), 'abi-two');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify({ name: 'abi-two', description: 'd', version: '1', abi_version: 2 }));
    writeFileSync(path.join(dir, 'abi-two.c'), '#include "vtcode_plugin.h"\nVTCODE_PLUGIN_EXPORT_VERSION()\n');
    await rejectsWithCode(buildPlugin({ dir }), ErrorCode.INVALID_MANIFEST);
  });
});
