// Whether processes exist or have exited, for tests that check nothing a plugin started is left behind.
import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { FIXTURES_DIR, tempDir } from './fixtures.js';

/** True while a process with this pid exists (a zombie counts until it is reaped). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// Only a guard against a test hanging forever on a process that never exits; nothing is asserted about time.
const HANG_GUARD_MS = 120_000;

let watcher: Promise<string> | undefined;

/** test/fixtures/exit_watch.c, compiled once per test process. */
function exitWatcher(): Promise<string> {
  watcher ??= (async () => {
    const binary = path.join(tempDir('skillplug-exit-watch-'), 'exit_watch');
    await promisify(execFile)(process.env.CC ?? 'cc', ['-O1', '-o', binary, path.join(FIXTURES_DIR, 'exit_watch.c')]);
    return binary;
  })();
  return watcher;
}

/**
 * Resolves once every one of these processes has exited (a zombie counts as exited), whoever their
 * parent is: the kernel tells a pidfd, so this waits for an event instead of polling `alive`. Rejects
 * if they are still running after a generous guard, with `what` in the message, and kills them then
 * so that a failed test leaves nothing running.
 */
export async function exited(pids: number[], what: string): Promise<void> {
  const child = spawn(await exitWatcher(), pids.map(String), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const guard = setTimeout(() => child.kill('SIGKILL'), HANG_GUARD_MS);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(guard);
      if (code === 0) return resolve();
      if (signal !== 'SIGKILL') return reject(new Error(`${what}: could not watch pids ${pids.join(', ')} (exit ${code}): ${stderr.trim()}`));
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // It exited meanwhile.
        }
      }
      reject(new Error(`${what}: pids ${pids.join(', ')} still ran after ${HANG_GUARD_MS / 1000} s`));
    });
  });
}
