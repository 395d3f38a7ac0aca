// Builds the example plugins into the repo's git-ignored .vtcode/plugins (run by `npm install`).
// A missing compiler skips that example with a note: installing must never fail over a demo.
// `node scripts/build-examples.mjs EXAMPLES_DIR OUT_DIR` builds every project in EXAMPLES_DIR instead (tests).
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { buildPlugin } = await import(path.join(root, 'dist', 'authoring', 'build.js'));

const [examplesArg, outArg] = process.argv.slice(2);
const examplesDir = examplesArg ? path.resolve(examplesArg) : path.join(root, 'examples');
const examples = examplesArg ? (await readdir(examplesDir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort() : ['hello', 'code-search', 'file-stats'];
const out = outArg ? path.resolve(outArg) : path.join(root, '.vtcode', 'plugins');
await mkdir(out, { recursive: true });

// The message's first line is only "<command> failed in <dir> (exit N):"; the reason is in the tool's last lines.
function skipReason(message) {
  const lines = message.split('\n').map((line) => line.trimEnd()).filter((line) => line.trim() !== '');
  if (lines.length <= 1) return lines[0] ?? 'unknown error';
  return `${lines[0]}\n${lines.slice(1).slice(-6).map((line) => `    ${line}`).join('\n')}`;
}

let failed = 0;
for (const name of examples) {
  const started = Date.now();
  try {
    const built = await buildPlugin({ dir: path.join(examplesDir, name), out });
    console.log(`skillplug: built example ${name} with ${built.tool} in ${Date.now() - started} ms -> ${path.relative(root, built.pluginDir)}`);
  } catch (err) {
    failed++;
    console.warn(`skillplug: skipped example ${name}: ${skipReason(String(err?.message ?? err))}`);
  }
}
if (failed > 0) console.warn('skillplug: some examples were not built; "npx skillplug demo" shows what it can.');
