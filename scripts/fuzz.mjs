#!/usr/bin/env node
// Long fuzz and chaos run: `npm run fuzz -- --seed N --cases M`. Runs test/fuzz with that seed and case
// count, then prints the outcomes per suite and code. Needs `npm run build && npm run build:test` first.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { seed: { type: 'string' }, cases: { type: 'string' } } });
const seed = values.seed ?? String(Date.now() % 1_000_000_000);
const cases = values.cases ?? '2000';
for (const [flag, value] of [['--seed', seed], ['--cases', cases]]) {
  if (!/^\d+$/.test(value)) {
    console.error(`fuzz: ${flag} takes a whole number, got ${JSON.stringify(value)}`);
    process.exit(2);
  }
}
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const scratch = mkdtempSync(path.join(os.tmpdir(), 'skillplug-fuzz-'));
const report = path.join(scratch, 'outcomes.jsonl');
const started = performance.now();
const child = spawn(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=3600000', path.join(root, 'build', 'test', 'fuzz')], {
  stdio: 'inherit',
  env: { ...process.env, SKILLPLUG_FUZZ_SEED: seed, SKILLPLUG_FUZZ_CASES: cases, SKILLPLUG_FUZZ_REPORT: report },
});
const code = await new Promise((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
const seconds = ((performance.now() - started) / 1000).toFixed(1);
let lines = [];
try {
  lines = readFileSync(report, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
} catch {
  // No suite got far enough to report.
}
rmSync(scratch, { recursive: true, force: true });
console.log(`\nfuzz: seed ${seed}, --cases ${cases}, ${seconds} s, tests ${code === 0 ? 'passed' : 'FAILED'}`);
for (const { suite, counts } of lines.sort((a, b) => a.suite.localeCompare(b.suite))) {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const parts = Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`);
  console.log(`  ${suite.padEnd(28)} ${String(total).padStart(7)}  ${parts.join(', ')}`);
}
process.exit(code);
