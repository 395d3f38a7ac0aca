#!/usr/bin/env node
// Import-graph check for src/: fails on a cycle between files, a cycle between folders, or an import
// that points up the layer order below. Std only. Usage: node scripts/check-imports.mjs [--json] [srcDir]
// The layer order is documented in docs/architecture.md; keep the two in step.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Units of src/, lowest first. A unit is a folder of src/ or a file at its root (without `.ts`).
 * A unit may import only units on a LOWER line; units on the same line do not import each other.
 */
export const LAYERS = [
  ['errors', 'version', 'churn-table'],
  ['terminal', 'toolchain', 'safe-read'],
  ['abi'],
  ['manifest'],
  ['sandbox'],
  ['config', 'discovery'],
  ['signing'],
  ['plugin'],
  ['in-process', 'host'],
  ['loader'],
  ['authoring', 'tools'],
  ['cli'],
  ['index'],
];

const IMPORT_PATTERNS = [
  // import … from '…' and export … from '…', braces spanning lines included
  /^\s*(?:import|export)\b[^;'"]*?\bfrom\s*['"]([^'"]+)['"]/gm,
  // import '…' (side effects only)
  /^\s*import\s*['"]([^'"]+)['"]/gm,
  // import('…'): a lazy load is still a dependency
  /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
];

function stripComments(text) {
  // Good enough for this code base: strings holding '//' or '/*' are not followed by an import keyword.
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

function listTs(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...listTs(full));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

/** The relative imports of one source text, as specifiers. */
export function importsOf(text) {
  const code = stripComments(text);
  const found = new Set();
  for (const pattern of IMPORT_PATTERNS) for (const m of code.matchAll(pattern)) found.add(m[1]);
  return [...found].filter((s) => s.startsWith('.'));
}

/** The unit (folder or root file) a src-relative path belongs to. */
export function unitOf(rel) {
  const parts = rel.split('/');
  return parts.length === 1 ? parts[0].replace(/\.ts$/, '') : parts[0];
}

function resolveSpecifier(fromAbs, spec) {
  const target = path.resolve(path.dirname(fromAbs), spec);
  return target.replace(/\.js$/, '.ts');
}

/** Cycles (each a list of nodes, first repeated last) in a graph given as Map<node, Set<node>>. */
export function findCycles(graph) {
  // Tarjan's strongly connected components; each component of size > 1 (or a self-loop) is reported.
  let index = 0;
  const stack = [];
  const onStack = new Set();
  const idx = new Map();
  const low = new Map();
  const cycles = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || graph.get(v)?.has(v)) cycles.push(pathThrough(graph, new Set(component), v));
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) visit(v);
  return cycles;
}

// One concrete cycle inside a strongly connected component, for a readable report.
function pathThrough(graph, component, start) {
  const prev = new Map([[start, null]]);
  const queue = [start];
  while (queue.length) {
    const v = queue.shift();
    for (const w of [...(graph.get(v) ?? [])].sort()) {
      if (!component.has(w)) continue;
      if (w === start) {
        const cycle = [];
        for (let u = v; u !== null; u = prev.get(u)) cycle.unshift(u);
        return [...cycle, start];
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

/** Checks a source tree; returns the problems found (empty when clean) and the edges counted. */
export function checkTree(srcDir, layers = LAYERS) {
  const rank = new Map();
  layers.forEach((line, i) => {
    for (const unit of line) rank.set(unit, i);
  });
  const problems = [];
  const fileGraph = new Map();
  const unitGraph = new Map();
  const unitEdgeExample = new Map();
  let edges = 0;
  for (const file of listTs(srcDir)) {
    const rel = path.relative(srcDir, file).split(path.sep).join('/');
    const from = unitOf(rel);
    if (!rank.has(from)) problems.push({ kind: 'unknown-unit', text: `${rel}: unit '${from}' is not in the layer order` });
    const targets = new Set();
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const target = resolveSpecifier(file, spec);
      const targetRel = path.relative(srcDir, target).split(path.sep).join('/');
      if (targetRel.startsWith('..')) continue; // outside src/ (none today)
      if (!existsSync(target)) {
        problems.push({ kind: 'unresolved', text: `${rel}: '${spec}' names no file of src/` });
        continue;
      }
      targets.add(targetRel);
      edges++;
      const to = unitOf(targetRel);
      if (to === from) continue;
      if (!unitGraph.has(from)) unitGraph.set(from, new Set());
      unitGraph.get(from).add(to);
      if (!unitEdgeExample.has(`${from}>${to}`)) unitEdgeExample.set(`${from}>${to}`, `${rel} -> ${targetRel}`);
      if (rank.has(from) && rank.has(to)) {
        if (rank.get(to) > rank.get(from)) problems.push({ kind: 'upward', text: `upward import: ${rel} -> ${targetRel} ('${from}' is below '${to}')` });
        else if (rank.get(to) === rank.get(from)) problems.push({ kind: 'sideways', text: `sideways import: ${rel} -> ${targetRel} ('${from}' and '${to}' share a layer)` });
      }
    }
    fileGraph.set(rel, targets);
  }
  for (const cycle of findCycles(fileGraph)) problems.push({ kind: 'file-cycle', text: `file cycle: ${cycle.join(' -> ')}` });
  for (const cycle of findCycles(unitGraph)) {
    const via = cycle.slice(0, -1).map((u, i) => unitEdgeExample.get(`${u}>${cycle[i + 1]}`));
    problems.push({ kind: 'folder-cycle', text: `folder cycle: ${cycle.join(' -> ')} (${via.join('; ')})` });
  }
  return { problems, files: fileGraph.size, edges };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const dirArg = args.find((a) => a !== '--json');
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const srcDir = path.resolve(dirArg ?? path.join(root, 'src'));
  const { problems, files, edges } = checkTree(srcDir);
  if (json) console.log(JSON.stringify({ files, edges, problems }));
  else if (problems.length) {
    for (const p of problems) console.error(`check-imports: ${p.text}`);
    console.error(`check-imports: ${problems.length} problem(s) in ${files} files; the layer order is in scripts/check-imports.mjs and docs/architecture.md`);
  } else console.log(`check-imports: ${files} files, ${edges} imports, no cycles, every import points down the layers`);
  process.exit(problems.length ? 1 : 0);
}
