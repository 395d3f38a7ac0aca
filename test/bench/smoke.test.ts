// A short run of the benchmark so it cannot rot: it checks the report's shape and that every row has a latency
// and a CPU figure in both conditions, never what the figures are (a benchmark, not a timed test).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { BenchResult } from '../../bench/report.js';
import { REPO_ROOT, tempDir } from '../helpers/fixtures.js';

const run = promisify(execFile);

describe('benchmark suite (smoke run)', () => {
  it('measures every row idle and beside the busy neighbour, with latency and CPU per call, and prints the targets', async () => {
    const json = path.join(tempDir(), 'bench.json');
    const { stdout } = await run(process.execPath, ['--expose-gc', path.join(REPO_ROOT, 'build', 'bench', 'run.js'), '--smoke', '--json', json], {
      cwd: REPO_ROOT,
      maxBuffer: 16 * 1024 * 1024,
    });
    const result = JSON.parse(readFileSync(json, 'utf8')) as BenchResult;
    assert.equal(result.smoke, true);
    assert.ok(result.machine.cores > 0 && result.machine.cpuModel.length > 0 && result.machine.kernel.length > 0);

    const ids = result.rows.map((r) => r.id);
    assert.equal(new Set(ids).size, ids.length, 'row ids are unique');
    for (const id of [
      'serial.koffiAsync',
      'serial.koffiSync',
      'serial.none',
      'serial.none0',
      'serial.process',
      'serial.extismMain',
      'serial.extismWorker',
      'serial.mcp',
      'serial.defaults',
      'wait.koffiAsync',
      'wait.none',
      'wait.process',
      'wait.cThread',
      'wait.cProcess',
      'flight.cfloorMany',
      'flight.isolated1',
      'flight.isolatedSome',
      'flight.isolatedMany',
      'flight.extismWorker',
      'ablation.noSharedLane',
      'ablation.noLoneCalls',
      'ablation.noAdaptiveSpin',
      'payload.process',
      'start.node',
      'start.run',
      'start.serve',
      'start.list',
      'search.grep',
    ]) {
      assert.ok(ids.includes(id), `row ${id}`);
    }
    for (const row of result.rows) {
      for (const condition of ['idle', 'busy'] as const) {
        assert.equal(row[condition].length, result.rounds, `${row.id} ${condition}: one sample per round`);
        for (const sample of row[condition]) {
          assert.ok(Number.isFinite(sample.us) && sample.us > 0, `${row.id} ${condition}: latency`);
          assert.ok(Number.isFinite(sample.cpuUs) && sample.cpuUs >= 0, `${row.id} ${condition}: CPU per call`);
          assert.ok(Number.isFinite(sample.otherCores) && Number.isFinite(sample.neighbourCores), `${row.id} ${condition}: load`);
        }
      }
      // Only busy rows had the neighbour beside them.
      assert.ok(row.idle.every((s) => s.neighbourCores === 0), `${row.id}: no neighbour when idle`);
    }

    // Every tool searching the generated tree found the same lines.
    const counts = result.search.counts;
    for (const [tool, count] of Object.entries(counts)) assert.equal(count, counts.generated, tool);
    assert.ok('search.grep' in counts);

    assert.match(stdout, /### Issue 16 targets/);
    assert.match(stdout, /Hold only on an idle machine/);
    // Each issue 16 target has an idle and a busy cell, each with a computed value.
    const targetLines = stdout.split('\n').filter((l) => l.includes('raw koffi .async()') && l.startsWith('| ') && l.includes('×'));
    assert.ok(targetLines.length >= 5);
    for (const line of targetLines) assert.equal(line.split('|').length, 5, line);
  });
});
