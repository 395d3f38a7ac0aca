// Orders a test's calls by events, never by sleeps: a fixture call creates `started(name)` when it
// begins (its "started" input) and holds until `release()` creates the file named by `until`.
import { existsSync, writeFileSync } from 'node:fs';
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

  /** Resolves once every named call has started. */
  async waitStarted(...names: (string | number)[]): Promise<void> {
    const guard = Date.now() + HANG_GUARD_MS;
    while (!names.every((n) => existsSync(this.started(n)))) {
      if (Date.now() > guard) throw new Error(`calls ${names.join(', ')} never started (markers in ${this.dir})`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }

  /** Lets every held call return. */
  release(): void {
    writeFileSync(this.until, '');
  }
}

/** Resolves once `check()` holds, looking every few ms (an event with no callback to wait on). */
export async function until(check: () => boolean, what: string): Promise<void> {
  const guard = Date.now() + HANG_GUARD_MS;
  while (!check()) {
    if (Date.now() > guard) throw new Error(`${what} never happened`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
