// The busy neighbour: a process the bench starts beside a row, spinning on one core for the whole row.
// Started by a small launcher (bench/spin.c, "launcher" mode) that lives for the whole bench, so the bench
// itself forks once, not before every busy window: a fork write-protects the forking process's whole heap,
// and the page faults that follow would be charged to the row measured next.
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { createInterface } from 'node:readline';

/** A running neighbour. */
export interface Neighbour {
  pid: number;
  /** Kills it and resolves once it is reaped (by the launcher, outside any measured window). */
  stop(): Promise<void>;
}

interface Launcher {
  child: ChildProcessByStdio<Writable, Readable, null>;
  ask(command: string): Promise<string>;
}

const launchers = new Map<string, Launcher>();

function launcherFor(spinner: string): Launcher {
  const known = launchers.get(spinner);
  if (known) return known;
  const child = spawn(spinner, ['launcher'], { stdio: ['pipe', 'pipe', 'ignore'] });
  const waiting: ((line: string) => void)[] = [];
  // Referenced only while an answer is awaited: the launcher must not keep the bench alive.
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

/** Starts a spinner (compiled bench/spin.c) through the launcher and resolves once it runs. */
export async function startNeighbour(spinner: string): Promise<Neighbour> {
  const launcher = launcherFor(spinner);
  const answer = await launcher.ask('start');
  const pid = Number(answer);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`the busy neighbour did not start: ${answer}`);
  return {
    pid,
    stop: async () => {
      const stopped = await launcher.ask(`stop ${pid}`);
      if (stopped !== 'stopped') throw new Error(`the busy neighbour ${pid} did not stop: ${stopped}`);
    },
  };
}
