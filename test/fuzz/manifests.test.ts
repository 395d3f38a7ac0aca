// Seeded fuzz of plugin.json files through discovery, validation and loading: bad files are reported, never thrown.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { PluginLoader, planTools, validatePluginStructure } from '../../src/index.js';
import { parseManifestText } from '../../src/manifest/index.js';
import { buildFixture, tempDir, tempHome } from '../helpers/fixtures.js';
import { Prng, fuzzSettings } from '../helpers/prng.js';
import { KNOWN_CODES, Tally, manifestText, outcomeOf } from './cases.js';

const { seed, cases } = fuzzSettings(20, 1 / 5);
// Plugins per discovery round: each round is a fresh trusted dir.
const PER_ROUND = 10;

describe(`fuzz: plugin.json (seed ${seed})`, () => {
  let library: string;
  before(async () => {
    library = path.join(await buildFixture(tempDir(), { source: 'fuzz', name: 'fuzz' }), 'libfuzz.so');
  });

  it(`discovers, validates and loads ${cases} mutated manifests without throwing`, async () => {
    const prng = new Prng(seed + 4);
    const tally = new Tally('manifests');
    for (let done = 0; done < cases; done += PER_ROUND) {
      const root = tempDir();
      for (let i = 0; i < Math.min(PER_ROUND, cases - done); i++) {
        const dir = path.join(root, `p${i}`);
        mkdirSync(dir);
        copyFileSync(library, path.join(dir, 'libfuzz.so'));
        const text = manifestText(prng, 'fuzz');
        writeFileSync(path.join(dir, 'plugin.json'), text);
        const reading = parseManifestText(text, path.join(dir, 'plugin.json'));
        for (const issue of reading.issues) assert.equal(typeof issue.message, 'string');
        // What `skillplug validate` runs: every problem comes back as a coded issue.
        for (const issue of await validatePluginStructure(dir)) assert.ok(KNOWN_CODES.has(issue.code), `validate gave ${issue.code}`);
      }
      const loader = new PluginLoader({ pluginsDirs: [root], home: tempHome(), defaultDirs: false, isolation: 'none', onWarning: () => undefined });
      const found = await loader.discoverPlugins();
      assert.equal(found.length, Math.min(PER_ROUND, cases - done));
      assert.doesNotThrow(() => planTools(found));
      for (const p of found) {
        for (const e of p.errors) assert.ok(KNOWN_CODES.has(e.code), `discovery gave ${e.code}`);
        if (p.status !== 'ok') {
          tally.add(`discovery:${p.errors[0]?.code ?? p.status}`);
          continue;
        }
        let plugin: Awaited<ReturnType<PluginLoader['loadPlugin']>> | undefined;
        const outcome = await outcomeOf(
          loader.loadPlugin(p.path).then((loaded) => {
            plugin = loaded;
            return { success: true };
          }),
          `loading ${p.path}`,
        );
        await plugin?.close();
        tally.add(`load:${outcome}`);
      }
    }
    tally.report();
  });
});
