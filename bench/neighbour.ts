// The busy neighbour: a process the bench starts beside a row, spinning on one core for the whole row.
import { spawn } from 'node:child_process';

/** A running neighbour. */
export interface Neighbour {
  pid: number;
  /** Kills it and resolves once it is reaped, so its CPU time lands in this process's cutime before the next reading. */
  stop(): Promise<void>;
}

/** Starts the compiled spinner (bench/spin.c) and resolves once it says it is spinning. */
export async function startNeighbour(spinner: string): Promise<Neighbour> {
  const child = spawn(spinner, [], { stdio: ['ignore', 'pipe', 'ignore'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the busy neighbour exited with ${code}`)));
  });
  child.stdout.resume();
  return {
    pid: child.pid as number,
    stop: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}
