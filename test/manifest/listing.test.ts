// Discovery answers the library and signature lookups from one listing of each plugin dir: the
// answers must be the ones the lookups give, whatever the dir holds.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync, type Dirent } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { findLibrarySync } from '../../src/manifest/index.js';
import { childPath, listedEntry } from '../../src/manifest/listing.js';
import { hasSignatures, signatureLikeEntries } from '../../src/signing/files.js';
import { tempDir } from '../helpers/fixtures.js';

const listing = (dir: string): Dirent[] => readdirSync(dir, { withFileTypes: true });

/** What a plugin dir holds: `files` (name -> content), `links` (name -> target) and `dirs`. */
interface Layout {
  files?: Record<string, string>;
  links?: Record<string, string>;
  dirs?: string[];
}

function pluginDir(layout: Layout): string {
  const dir = path.join(tempDir(), 'p');
  mkdirSync(dir);
  for (const d of layout.dirs ?? []) mkdirSync(path.join(dir, d), { recursive: true });
  for (const [name, content] of Object.entries(layout.files ?? {})) writeFileSync(path.join(dir, name), content);
  for (const [name, target] of Object.entries(layout.links ?? {})) symlinkSync(target, path.join(dir, name));
  return dir;
}

describe('one listing of a plugin dir', () => {
  it('childPath is path.join for every dir, taking the short way only for a dir in normal form', () => {
    for (const dir of ['/a/b', '/', '/a/b/', '/a//b', '/a/./b', '/a/../b', '/a/.', '/a/..', '/a/.hidden', '/a/..b', 'rel/dir', '.', '', '/a/b.c']) {
      assert.equal(childPath(dir, 'plugin.json'), path.join(dir, 'plugin.json'), JSON.stringify(dir));
    }
  });

  it('lists a name exactly, asks about a name that differs in case or is not ASCII, and rules out the rest', () => {
    const dir = pluginDir({ files: { 'plugin.json': '{}', 'LIBx.so': '', 'k\u212Aa.so': '' } });
    const entries = listing(dir);
    assert.equal((listedEntry(entries, 'plugin.json') as Dirent).name, 'plugin.json');
    assert.equal(listedEntry(entries, 'libx.so'), 'ask');
    assert.equal(listedEntry(entries, 'libzz.so'), 'ask', 'a non-ASCII name could fold onto any ASCII one');
    assert.equal(listedEntry(listing(pluginDir({ files: { 'plugin.json': '{}' } })), 'libzz.so'), undefined);
  });

  it('finds the library the lookups find, however it is laid out', () => {
    const layouts: Layout[] = [
      { files: { 'libp.so': '' } },
      { files: { 'p.so': '' } },
      { files: { 'build.so': '' }, links: { 'libp.so': 'build.so' } },
      { links: { 'libp.so': 'missing.so' } },
      { dirs: ['libp.so'] },
      { files: { 'LIBP.SO': '' } },
      { dirs: ['target/release'], files: { 'target/release/libp.so': '' } },
      { files: { 'other.so': '' } },
    ];
    for (const layout of layouts) {
      const dir = pluginDir(layout);
      assert.deepEqual(findLibrarySync(dir, 'p', listing(dir)), findLibrarySync(dir, 'p'), JSON.stringify(layout));
    }
    const dashed = pluginDir({ files: { 'libmy_tool.so': '' } });
    assert.deepEqual(findLibrarySync(dashed, 'my-tool', listing(dashed)), findLibrarySync(dashed, 'my-tool'));
  });

  it('sees a signature or statement exactly when the lookups see one', () => {
    const layouts: Layout[] = [
      { files: {} },
      { files: { 'plugin.json.minisig': '' } },
      { files: { 'libp.so.minisig': '' } },
      { files: { 'skillplug-statement.json': '' } },
      { files: { 'skillplug-statement.json.minisig': '' } },
      { links: { 'plugin.json.minisig': 'missing' } },
      { files: { real: '' }, links: { 'plugin.json.minisig': 'real' } },
      { dirs: ['skillplug-statement.json'] },
      { files: { 'PLUGIN.JSON.MINISIG': '' } },
      { files: { 'Skillplug-Statement.JSON': '' } },
      { files: { 'libP.so.minisig': '' } },
      { files: { 'k\u212Aa.minisig': '' } },
    ];
    for (const layout of layouts) {
      const dir = pluginDir({ ...layout, files: { 'plugin.json': '{}', 'libp.so': '', ...layout.files } });
      for (const library of [path.join(dir, 'libp.so'), path.join(dir, 'target', 'release', 'libp.so')]) {
        assert.equal(hasSignatures(dir, library, listing(dir)), hasSignatures(dir, library), `${JSON.stringify(layout)} ${library}`);
        // What a scan keeps of the listing answers as the whole listing does.
        assert.equal(hasSignatures(dir, library, signatureLikeEntries(listing(dir))), hasSignatures(dir, library), `kept entries: ${JSON.stringify(layout)} ${library}`);
      }
    }
    const cargo = pluginDir({ dirs: ['target/release'], files: { 'plugin.json': '{}', 'target/release/libp.so': '', 'target/release/libp.so.minisig': '' } });
    const built = path.join(cargo, 'target', 'release', 'libp.so');
    assert.equal(hasSignatures(cargo, built, listing(cargo)), true);
  });
});
