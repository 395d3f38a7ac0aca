import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cacheDir } from '../toolchain.js';

const live = new Set<string>();
process.once('exit', () => {
  for (const dir of live) rmSync(dir, { recursive: true, force: true });
});

/** A library copy in a private 0700 dir: what is loaded is exactly the bytes that were verified. */
export interface PrivateCopy {
  path: string;
  /** Removes the copy; call once nothing has it loaded. */
  dispose(): void;
}

/** Writes verified bytes to a fresh 0700 directory, keeping the library's file name. */
export async function writePrivateCopy(bytes: Uint8Array, fileName: string): Promise<PrivateCopy> {
  // Under the user's cache, not /tmp: /tmp is often mounted noexec, which dlopen refuses.
  const parent = path.join(cacheDir(), 'loaded');
  await mkdir(parent, { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(path.join(parent, 'lib-'));
  live.add(dir);
  const file = path.join(dir, fileName);
  await writeFile(file, bytes, { mode: 0o500, flag: 'wx' });
  return {
    path: file,
    dispose: () => {
      live.delete(dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
