// The import-graph check (scripts/check-imports.mjs, run by `npm run lint`) against tiny fixture trees and src/ itself.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import ts from 'typescript';
import { REPO_ROOT } from '../helpers/fixtures.js';

const SCRIPT = path.join(REPO_ROOT, 'scripts', 'check-imports.mjs');
const scratch = mkdtempSync(path.join(os.tmpdir(), 'skillplug-imports-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

interface Verdict {
  status: number | null;
  kinds: string[];
  edges: number;
}

/** Writes a src tree ({ 'abi/a.ts': text }) and runs the check on it. */
function check(files: Record<string, string>): Verdict {
  const dir = mkdtempSync(path.join(scratch, 'src-'));
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), text);
  }
  return run(dir);
}

function run(dir?: string): Verdict {
  const result = spawnSync(process.execPath, [SCRIPT, '--json', ...(dir ? [dir] : [])], { encoding: 'utf8' });
  const report = JSON.parse(result.stdout) as { edges: number; problems: { kind: string }[] };
  return { status: result.status, kinds: report.problems.map((p) => p.kind).sort(), edges: report.edges };
}

describe('scripts/check-imports.mjs', () => {
  it('passes src/ as it is', () => {
    const verdict = run();
    assert.deepEqual(verdict.kinds, []);
    assert.equal(verdict.status, 0);
  });

  it('finds in every file of src/ the same relative imports as TypeScript does', async () => {
    const { importsOf } = (await import(pathToFileURL(SCRIPT).href)) as { importsOf: (text: string) => string[] };
    const files = readdirSync(path.join(REPO_ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    assert.ok(files.length > 40);
    for (const file of files) {
      const text = readFileSync(path.join(REPO_ROOT, 'src', file), 'utf8');
      const byTypeScript = new Set(ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName).filter((f) => f.startsWith('.')));
      assert.deepEqual(new Set(importsOf(text)), byTypeScript, file);
    }
  });

  it('passes a tree whose imports all point down, counting every import form', () => {
    const verdict = check({
      'errors.ts': 'export const E = 1;\n',
      'abi/codec.ts': "import { E } from '../errors.js';\nexport const C = E;\n",
      'abi/types.ts': 'export {};\n',
      'abi/native.ts': 'export {};\n',
      'manifest/index.ts': "import type {\n  C,\n} from '../abi/codec.js';\nexport * from '../errors.js';\nimport '../abi/types.js';\nexport const lazy = () => import('../abi/native.js');\n",
      'loader/index.ts': "// import { X } from '../cli/main.js';\nexport { C } from '../abi/codec.js';\n",
    });
    assert.deepEqual(verdict.kinds, []);
    assert.equal(verdict.status, 0);
    assert.equal(verdict.edges, 6);
  });

  it('fails on a cycle between two files of one folder', () => {
    const verdict = check({
      'abi/codec.ts': "import { T } from './types.js';\nexport const C = T;\n",
      'abi/types.ts': "import type { C } from './codec.js';\nexport const T = 1;\n",
    });
    assert.deepEqual(verdict.kinds, ['file-cycle']);
    assert.equal(verdict.status, 1);
  });

  it('fails on a cycle between folders, naming the upward import too', () => {
    const verdict = check({
      'abi/types.ts': "import type { M } from '../manifest/index.js';\nexport const T = 1;\n",
      'manifest/index.ts': "import { C } from '../abi/codec.js';\nexport const M = C;\n",
      'abi/codec.ts': 'export const C = 1;\n',
    });
    assert.deepEqual(verdict.kinds, ['folder-cycle', 'upward']);
    assert.equal(verdict.status, 1);
  });

  it('fails on an import up the layers, between folders of one layer, to a missing file, and from a folder not in the order', () => {
    const verdict = check({
      'manifest/index.ts': "import { L } from '../loader/index.js';\nimport { G } from './gone.js';\nexport const M = L + G;\n",
      'loader/index.ts': 'export const L = 1;\n',
      'in-process/index.ts': "import { H } from '../host/isolated.js';\nexport const I = H;\n",
      'host/isolated.ts': 'export const H = 1;\n',
      'newfolder/x.ts': 'export const X = 1;\n',
    });
    assert.deepEqual(verdict.kinds, ['sideways', 'unknown-unit', 'unresolved', 'upward']);
    assert.equal(verdict.status, 1);
  });
});

describe('docs/architecture.md', () => {
  it('lists the layers the check enforces, top first', async () => {
    const { LAYERS } = (await import(pathToFileURL(SCRIPT).href)) as { LAYERS: string[][] };
    const doc = readFileSync(path.join(REPO_ROOT, 'docs', 'architecture.md'), 'utf8');
    const block = /```text\n([\s\S]*?)\n```/.exec(doc)?.[1] ?? '';
    const documented = block.split('\n').map((line) => line.trim().split(/\s+/));
    assert.deepEqual(documented, [...LAYERS].reverse());
  });
});
