// A seconds-long run of the benchmark suite so it cannot rot; it asserts shape, never timings.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { REPO_ROOT, tempDir } from '../helpers/fixtures.js';

const run = promisify(execFile);

describe('benchmark suite (smoke run)', () => {
  it('runs every row and reports a table and raw numbers', async () => {
    const json = path.join(tempDir(), 'bench.json');
    const { stdout } = await run(process.execPath, ['--expose-gc', path.join(REPO_ROOT, 'build', 'bench', 'run.js'), '--smoke', '--json', json], {
      cwd: REPO_ROOT,
      maxBuffer: 16 * 1024 * 1024,
      timeout: 300_000,
    });
    for (const row of ['C host, dlopen + call', 'raw koffi .async()', "isolation 'process'", 'process per call']) assert.ok(stdout.includes(row), row);
    assert.match(stdout, /Targets \(issue 7\):/);
    const raw = JSON.parse(readFileSync(json, 'utf8')) as { samples: Record<string, number[]>; smoke: boolean };
    assert.equal(raw.smoke, true);
    for (const key of ['serial.cfloor', 'serial.none', 'serial.process', 'flight.process', 'big.process', 'cold.process']) {
      assert.ok((raw.samples[key]?.length ?? 0) > 0 && raw.samples[key]?.every((v) => Number.isFinite(v) && v > 0), key);
    }
  });
});
