import { closeSync, constants as fsConstants, fstatSync, openSync, readSync } from 'node:fs';

/** Config, lock, key, signature and statement files larger than this are refused unread. */
export const MAX_SMALL_FILE_BYTES = 1024 * 1024;

/**
 * Reads a small regular file without ever blocking: opened non-blocking and checked with fstat, so
 * a FIFO (or device) planted where a config, lock or signature file belongs fails at once.
 * Throws an errno-style error: `ENOENT` when missing, `ENOTREG` when not a regular file, `EFBIG`
 * when over `maxBytes`, or whatever open/read reported.
 */
export function readSmallRegularFileSync(file: string, maxBytes: number = MAX_SMALL_FILE_BYTES): Buffer {
  const fd = openSync(file, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) throw Object.assign(new Error(`${file} is not a regular file`), { code: 'ENOTREG' });
    if (info.size > maxBytes) throw Object.assign(new Error(`${file} is over ${maxBytes} bytes`), { code: 'EFBIG' });
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.max(4096, info.size + 1 - total));
      const n = readSync(fd, chunk, 0, chunk.length, total);
      if (n === 0) break;
      total += n;
      // The file grew since fstat: still bounded.
      if (total > maxBytes) throw Object.assign(new Error(`${file} grew over ${maxBytes} bytes`), { code: 'EFBIG' });
      chunks.push(chunk.subarray(0, n));
    }
    return Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}

/** The errno-style code of a failed read, for messages. */
export function readErrorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}
