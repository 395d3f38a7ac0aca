// Orders a test's calls by events, never by sleeps: a fixture call creates `started(name)` when it
// begins (its "started" input) and holds until `release()` creates the file named by `until`.
import { existsSync, watch, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './fixtures.js';

// Only a guard against a test hanging forever; nothing is asserted about how long anything takes.
const HANG_GUARD_MS = 120_000;

/** One test's call markers (see the file comment). */
export class CallMarkers {
  readonly dir = tempDir('skillplug-markers-');
  /** The file a held call waits for: pass it as the call's "until" input. */
  readonly until = path.join(this.dir, 'release');

  /** The marker a call creates when it starts: pass it as the call's "started" input. */
  started(name: string | number): string {
    return path.join(this.dir, `started-${name}`);
  }

  /** Resolves once every named call has started: each marker's creation is a file-system event here. */
  waitStarted(...names: (string | number)[]): Promise<void> {
    const all = () => names.every((n) => existsSync(this.started(n)));
    if (all()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const settle = (err?: Error): void => {
        watcher.close();
        clearTimeout(guard);
        if (err) reject(err);
        else resolve();
      };
      const watcher = watch(this.dir, () => {
        if (all()) settle();
      });
      watcher.on('error', settle);
      const guard = setTimeout(() => settle(new Error(`calls ${names.join(', ')} never started (markers in ${this.dir})`)), HANG_GUARD_MS);
      // A marker created before the watch began sends no event: look once more now that it runs.
      if (all()) settle();
    });
  }

  /** Lets every held call return. */
  release(): void {
    writeFileSync(this.until, '');
  }
}

/**
 * Resolves once `check()` holds, for a state change with no event of its own: it looks again after
 * every turn of the event loop (each turn handles whatever I/O arrived), never after a timed sleep.
 */
export async function until(check: () => boolean, what: string): Promise<void> {
  // Only a guard against a hang; nothing is asserted about time.
  const guard = Date.now() + HANG_GUARD_MS;
  while (!check()) {
    if (Date.now() > guard) throw new Error(`${what} never happened`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}
