// Builds the example plugins into the repo's git-ignored .vtcode/plugins (run by `npm install`).
// A missing compiler skips that example with a note: installing must never fail over a demo.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { buildPlugin } = await import(path.join(root, 'dist', 'authoring', 'build.js'));

const examples = ['hello', 'code-search', 'file-stats'];
const out = path.join(root, '.vtcode', 'plugins');
await mkdir(out, { recursive: true });
let failed = 0;
for (const name of examples) {
  const started = Date.now();
  try {
    const built = await buildPlugin({ dir: path.join(root, 'examples', name), out });
    console.log(`skillplug: built example ${name} with ${built.tool} in ${Date.now() - started} ms -> ${path.relative(root, built.pluginDir)}`);
  } catch (err) {
    failed++;
    console.warn(`skillplug: skipped example ${name}: ${err.message.split('\n')[0]}`);
  }
}
if (failed > 0) console.warn('skillplug: some examples were not built; "npx skillplug demo" shows what it can.');
