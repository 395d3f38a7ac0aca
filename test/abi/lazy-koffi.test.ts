// The public entry point must not load koffi's native addon; in-process plugins load it when used.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT, buildFixture, tempDir } from '../helpers/fixtures.js';

const INDEX_URL = new URL(`file://${path.join(REPO_ROOT, 'build', 'src', 'index.js')}`).href;

function koffiLoadedAfter(body: string): boolean {
  const script = `
    const skillplug = await import(${JSON.stringify(INDEX_URL)});
    ${body}
    const { createRequire } = await import('node:module');
    const cache = createRequire(import.meta.url).cache;
    console.log(JSON.stringify(Object.keys(cache).some((k) => k.includes('koffi'))));`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout.trim()) as boolean;
}

describe('koffi loads lazily', () => {
  it('importing skillplug does not load koffi', () => {
    assert.equal(koffiLoadedAfter(''), false);
  });

  it('abiStructTypes() loads it and returns the same struct types every time', () => {
    assert.equal(koffiLoadedAfter('const a = skillplug.abiStructTypes(); if (a !== skillplug.abiStructTypes() || !a.PluginMetadataFFI || !a.PluginResultFFI) process.exit(3);'), true);
  });

  it('an isolated plugin calling through its shared lane loads neither koffi nor the pump', { skip: process.platform !== 'linux' && 'the lane is Linux-only' }, async () => {
    const root = tempDir();
    const dir = await buildFixture(root, { source: 'echo', name: 'echo' });
    // The same build as INDEX_URL: a tuning module from dist/ would be another copy, which the loader never reads.
    const tuningUrl = new URL(`file://${path.join(REPO_ROOT, 'build', 'src', 'host', 'tuning.js')}`).href;
    const body = `
      const { hostTuning } = await import(${JSON.stringify(tuningUrl)});
      hostTuning.sharedAfterLoneCalls = 0;
      const loader = new skillplug.PluginLoader({ pluginsDirs: [${JSON.stringify(root)}], defaultDirs: false, readConfig: false, isolation: 'process', sandbox: 'off', pollMicros: 200 });
      const plugin = await loader.loadPlugin(${JSON.stringify(dir)});
      for (let i = 0; i < 100000 && !plugin.host?.lane.up; i++) await plugin.execute({ input: { i }, workspace_root: null, config: {} });
      if (!plugin.host?.lane.up) process.exit(4);
      await plugin.close();`;
    assert.equal(koffiLoadedAfter(body), false);
  });
});
