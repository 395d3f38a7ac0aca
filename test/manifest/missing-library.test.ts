// A missing library is explained by what the plugin dir holds instead, in the error's data and message.
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { ErrorCode, PluginError, PluginLoader } from '../../src/index.js';
import { validatePlugin } from '../../src/manifest/index.js';
import { buildFixture, tempDir, tempHome } from '../helpers/fixtures.js';

const manifest = (name: string) => ({ name, description: 'd', version: '1.0.0', abi_version: 1 });

// A compiled fixture library moved to where a build left it instead of where the plugin's name calls for it.
async function misplaced(parent: string, name: string, to: string, extra: Record<string, string> = {}): Promise<string> {
  const dir = await buildFixture(parent, { source: 'echo', name, manifest: manifest(name) });
  mkdirSync(path.dirname(path.join(dir, to)), { recursive: true });
  renameSync(path.join(dir, `lib${name}.so`), path.join(dir, to));
  for (const [file, text] of Object.entries(extra)) writeFileSync(path.join(dir, file), text);
  return dir;
}

describe('missing library diagnosis', () => {
  let parent: string;
  const dirs: Record<string, string> = {};

  before(async () => {
    parent = tempDir();
    const cdylib = '[package]\nname = "crate"\nversion = "0.1.0"\n\n[lib]\ncrate-type = ["cdylib"]\n';
    dirs.debug = await misplaced(parent, 'debugged', 'target/debug/libdebugged.so', { 'Cargo.toml': cdylib });
    dirs.rlib = await misplaced(parent, 'rusty', 'target/release/librusty.rlib', { 'Cargo.toml': '[package]\nname = "rusty"\nversion = "0.1.0"\n' });
    dirs.renamed = await misplaced(parent, 'wanted', 'libsomething_else.so');
    dirs.builddir = await misplaced(parent, 'cmaked', 'build/libcmaked.so', { 'CMakeLists.txt': '' });
    dirs.unbuilt = path.join(parent, 'unbuilt');
    mkdirSync(dirs.unbuilt);
    writeFileSync(path.join(dirs.unbuilt, 'plugin.json'), JSON.stringify(manifest('unbuilt')));
    writeFileSync(path.join(dirs.unbuilt, 'Makefile'), 'all:\n');
  });

  const expected: [string, string, string][] = [
    ['debug', 'cargo-debug-build', 'target/debug/libdebugged.so'],
    ['rlib', 'rlib-crate-type', 'target/release/librusty.rlib'],
    ['renamed', 'name-mismatch', 'libsomething_else.so'],
    ['builddir', 'build-dir', 'build/libcmaked.so'],
    ['unbuilt', 'not-built', 'Makefile'],
  ];

  for (const [key, reason, found] of expected) {
    it(`${key}: validate says ${reason}, naming ${found}`, async () => {
      const { errors } = await validatePlugin(dirs[key] as string);
      assert.equal(errors.length, 1);
      assert.equal(errors[0]?.code, ErrorCode.INVALID_STRUCTURE);
      assert.equal(errors[0]?.data?.reason, reason);
      assert.deepEqual(errors[0]?.data?.found, [found]);
    });
  }

  it('loading carries the same facts in the error data', async () => {
    const loader = new PluginLoader({ defaultDirs: false, readConfig: false, home: tempHome(), pluginsDirs: [parent] });
    await assert.rejects(loader.loadPlugin(dirs.debug as string), (err: unknown) => {
      assert.ok(err instanceof PluginError);
      assert.equal(err.code, ErrorCode.INVALID_STRUCTURE);
      assert.equal(err.data?.reason, 'cargo-debug-build');
      assert.ok(Array.isArray(err.data?.tried));
      return true;
    });
  });
});
