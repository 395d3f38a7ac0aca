// The busy neighbour comes from a launcher, so the bench process itself does not fork before each busy window.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startNeighbour } from '../../bench/neighbour.js';
import { REPO_ROOT, tempDir } from '../helpers/fixtures.js';

const run = promisify(execFile);
const parentOf = (pid: number): number => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1]);

describe('bench neighbour', { skip: process.platform !== 'linux' ? 'reads /proc' : false }, () => {
  it('starts spinners from one launcher (not from this process) and reaps each on stop', async () => {
    const spinner = path.join(tempDir(), 'spin');
    await run(process.env.CC ?? 'cc', ['-O2', '-o', spinner, path.join(REPO_ROOT, 'bench', 'spin.c')]);
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
});
