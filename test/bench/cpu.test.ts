// The bench's CPU accounting must see work done in child processes, alive or reaped, and leave out the neighbour.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { processCpuUs, treeCpuUs } from '../../bench/cpu.js';

/** /proc/<pid>/stat counts 10 ms ticks for reaped children. */
const TICK_US = 10_000;
// A fixed amount of work (not of time): the child reports the CPU it used, then waits for stdin to close.
const WORKER = `let x = 0; for (let i = 0; i < 1e8; i++) x += i % 7; const u = process.cpuUsage(); process.stdout.write(String(u.user + u.system) + '\\n'); process.stdin.resume(); process.stdin.on('end', () => process.exit(x > 0 ? 0 : 1));`;

function startWorker(): { pid: number; reported: Promise<number>; finish: () => Promise<void> } {
  const child = spawn(process.execPath, ['-e', WORKER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const reported = new Promise<number>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  return {
    pid: child.pid as number,
    reported,
    finish: async () => {
      child.stdin.end();
      await exited;
    },
  };
}

describe('bench CPU accounting', () => {
  it('counts a live child and, once reaped, the same child through cutime', async () => {
    const before = treeCpuUs('start');
    const worker = startWorker();
    const reported = await worker.reported;
    const whileAlive = treeCpuUs('end') - before;
    assert.ok(whileAlive >= reported, `alive: counted ${whileAlive} µs, the child used ${reported} µs`);
    await worker.finish();
    const afterReaped = treeCpuUs('end') - before;
    assert.ok(afterReaped >= reported - 2 * TICK_US, `reaped (utime and stime are truncated to ticks each): counted ${afterReaped} µs, the child used ${reported} µs`);
  });

  it('leaves out an excluded process and its time while it is alive', async () => {
    const worker = startWorker();
    const reported = await worker.reported;
    const excluded = new Set([worker.pid]);
    const withIt = treeCpuUs('end');
    const withoutIt = treeCpuUs('end', excluded);
    assert.ok(withIt - withoutIt >= reported - TICK_US, `the excluded child's ${reported} µs were left out`);
    assert.ok(processCpuUs(worker.pid) >= reported);
    await worker.finish();
  });
});
