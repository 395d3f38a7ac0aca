// A FIFO the release_gate fixture blocks on, so a test decides exactly when a plugin call returns.
import { execFileSync } from 'node:child_process';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { tempDir } from './fixtures.js';

/** A fresh FIFO for the release_gate fixture's `gate` input. */
export function gate(): string {
  const fifo = path.join(tempDir(), 'gate');
  execFileSync('mkfifo', [fifo]);
  return fifo;
}

/** Lets the fixture blocked on `fifo` go (opening for writing waits until it has opened it for reading). */
export async function release(fifo: string): Promise<void> {
  const handle = await open(fifo, 'w');
  await handle.write('x');
  await handle.close();
}
