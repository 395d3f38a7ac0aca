// The busy neighbour: a process the bench starts beside a row, spinning on one core for the whole row,
// started by the bench's launcher (bench/launcher.ts), so the bench does not fork before every busy window.
import { launcherFor } from './launcher.js';

/** A running neighbour. */
export interface Neighbour {
  pid: number;
  /** Kills it and resolves once it is reaped (by the launcher, outside any measured window). */
  stop(): Promise<void>;
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
