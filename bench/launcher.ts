// A small helper process (bench/spin.c in "launcher" mode) that starts every process the bench needs
// during its rows: busy neighbours and the programs some rows run. The bench forks once, to start it:
// a fork write-protects the whole heap of the process that forks, and the page faults that follow
// (tens of µs each on this VM) would be charged to whatever row is measured next.
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';

interface Launcher {
  child: ChildProcessByStdio<Writable, Readable, null>;
  ask(command: string): Promise<string>;
}

const launchers = new Map<string, Launcher>();
let runs = 0;

/** The launcher built from bench/spin.c at `spinner`, started on first use; it never keeps the bench alive. */
export function launcherFor(spinner: string): Launcher {
  const known = launchers.get(spinner);
  if (known) return known;
  const child = spawn(spinner, ['launcher'], { stdio: ['pipe', 'pipe', 'ignore'] });
  const waiting: ((line: string) => void)[] = [];
  // Referenced only while an answer is awaited.
  const output = child.stdout as unknown as { ref(): void; unref(): void };
  createInterface({ input: child.stdout }).on('line', (line) => {
    waiting.shift()?.(line);
    if (waiting.length === 0) output.unref();
  });
  child.once('exit', (code) => {
    launchers.delete(spinner);
    for (const answer of waiting.splice(0)) answer(`exited ${code}`);
  });
  child.unref();
  (child.stdin as unknown as { unref(): void }).unref();
  output.unref();
  const launcher: Launcher = {
    child,
    ask: (command) =>
      new Promise((resolve) => {
        waiting.push(resolve);
        output.ref();
        child.stdin.write(`${command}\n`);
      }),
  };
  launchers.set(spinner, launcher);
  return launcher;
}

/**
 * Runs a program through the launcher and resolves with its stdout (stdin and stderr are /dev/null);
 * rejects on a non-zero exit. `env` values that differ from this process's are passed through env(1).
 */
export async function runProgram(spinner: string, command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const overrides = Object.entries(options.env ?? {})
    .filter(([key, value]) => value !== undefined && process.env[key] !== value)
    .map(([key, value]) => `${key}=${value}`);
  const argv = overrides.length > 0 ? ['env', ...overrides, command, ...args] : [command, ...args];
  if (argv.some((a) => /[\t\n]/.test(a)) || options.cwd?.includes('\t')) throw new Error(`a launcher argument holds a tab or newline: ${argv.join(' ')}`);
  const out = path.join(os.tmpdir(), `skillplug-bench-run-${process.pid}-${runs++}`);
  try {
    const answer = await launcherFor(spinner).ask(['run', out, options.cwd ?? '-', ...argv].join('\t'));
    if (answer !== 'exit 0') throw new Error(`${argv.join(' ')}: ${answer}`);
    return readFileSync(out, 'utf8');
  } finally {
    rmSync(out, { force: true });
  }
}
