// What dev's watcher treats as a change: source files, not build output or editors' scratch files.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isWatchNoise } from '../../src/authoring/dev.js';

describe('dev watcher', () => {
  it('ignores build output and the files editors write while saving', () => {
    for (const noise of ['target/release/libx.so', 'dist/x/plugin.json', 'build/a.o', '.git/index', 'src/.lib.rs.swp', 'plugin.c.swx', '4913', 'src/4913', 'plugin.c~', '#plugin.c#', 'src/.#lib.rs', 'plugin.c___jb_tmp___', 'a.c.orig', 'x.kate-swp', 'libx.so']) {
      assert.equal(isWatchNoise(noise), true, noise);
    }
  });

  it('reports sources, manifests and build files as changes', () => {
    for (const source of ['plugin.c', 'src/lib.rs', 'plugin.json', 'Makefile', 'Cargo.toml', 'include/vtcode_plugin.h', 'src/target.rs', 'dist.c', 'README.md']) {
      assert.equal(isWatchNoise(source), false, source);
    }
  });
});
