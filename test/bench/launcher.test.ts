// The bench's launcher starts its neighbours and the programs its rows run, so the bench process itself does not fork in a row.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { runProgram } from '../../bench/launcher.js';
import { startNeighbour } from '../../bench/neighbour.js';
import { REPO_ROOT, tempDir } from '../helpers/fixtures.js';

const run = promisify(execFile);
const parentOf = (pid: number): number => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1]);

describe('bench launcher', { skip: process.platform !== 'linux' ? 'reads /proc' : false }, () => {
  let spinner: string;
  before(async () => {
    spinner = path.join(tempDir(), 'spin');
    await run(process.env.CC ?? 'cc', ['-O2', '-o', spinner, path.join(REPO_ROOT, 'bench', 'spin.c')]);
  });

  it('starts spinners from one launcher (not from this process) and reaps each on stop', async () => {
    const first = await startNeighbour(spinner);
    const second = await startNeighbour(spinner);
    const launcher = parentOf(first.pid);
    assert.notEqual(launcher, process.pid, 'the spinner is not a child of the bench');
    assert.equal(parentOf(launcher), process.pid, 'its launcher is');
    assert.equal(parentOf(second.pid), launcher, 'one launcher for every neighbour');
    await first.stop();
    await second.stop();
    assert.equal(existsSync(`/proc/${first.pid}`), false, 'reaped, not left a zombie');
    assert.equal(existsSync(`/proc/${second.pid}`), false);
  });

  it('runs a program in a dir with the env values that differ, returns its stdout, and rejects a failing one', async () => {
    const dir = tempDir();
    const out = await runProgram(spinner, 'sh', ['-c', 'printf "%s %s" "$BENCH_X" "$(pwd)"'], { cwd: dir, env: { ...process.env, BENCH_X: 'y z' } });
    assert.equal(out, `y z ${dir}`);
    await assert.rejects(runProgram(spinner, 'sh', ['-c', 'exit 3']), /exit 3/);
  });
});
