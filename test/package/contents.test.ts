// What `npm pack` ships: the built library, the C sources skillplug compiles on first use, no maps into sources it does not ship.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../helpers/fixtures.js';

describe('package contents', () => {
  it('ships dist, the host, pump and sandbox launcher sources and the SDKs, and no source maps or dev scripts', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO_ROOT, encoding: 'utf8' });
    const files = (JSON.parse(out) as { files: { path: string }[] }[])[0]?.files.map((f) => f.path) ?? [];
    for (const needed of ['dist/index.js', 'dist/index.d.ts', 'dist/cli/bin.cjs', 'dist/cli/skillplug.cjs', 'dist/cli/mcp-sdk.cjs', 'src/host/skillplug-host.c', 'src/abi/pump.c', 'src/sandbox/skillplug-launch.c', 'sdk/c/vtcode_plugin.h', 'README.md']) {
      assert.ok(files.includes(needed), `${needed} is shipped`);
    }
    assert.deepEqual(files.filter((f) => f.endsWith('.map')), [], 'no source maps pointing at sources that are not shipped');
    assert.deepEqual(files.filter((f) => f.startsWith('scripts/') || f.startsWith('test/') || f.startsWith('build/')), [], 'no dev-only files');
  });

  it("resolves import 'skillplug' through package.json's exports to dist/index.js", () => {
    assert.equal(import.meta.resolve('skillplug'), pathToFileURL(path.join(REPO_ROOT, 'dist', 'index.js')).href);
  });
});
