import { closeSync, constants as fsConstants, fstatSync, openSync, readSync } from 'node:fs';

// The one way skillplug reads a file that someone else may have planted (plugin.json, config, lock,
// keys, signatures, statements): never blocks, never reads more than a bound. Imports nothing of
// skillplug's, so every layer can use it.

/** Config, lock, key, signature and statement files larger than this are refused unread. */
export const MAX_SMALL_FILE_BYTES = 1024 * 1024;

/** Why a small-file read failed: an errno-style `code`; `size` is the size found when it was too large. */
export interface SmallFileError extends NodeJS.ErrnoException {
  size?: number;
}

function readError(message: string, code: string, size?: number): SmallFileError {
  return Object.assign(new Error(message), size === undefined ? { code } : { code, size });
}

// Files read here are mostly a few hundred bytes: each is read into this one buffer and copied out.
const SCRATCH_BYTES = 64 * 1024;
let scratch: Buffer | undefined;

// Non-blocking, so a FIFO swapped in cannot block; not following a link, so none can point the read elsewhere.
const LISTED_OPEN_FLAGS = fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0) | (fsConstants.O_NOFOLLOW ?? 0);

/**
 * Reads a small regular file without ever blocking: opened non-blocking and checked with fstat, so
 * a FIFO (or device) planted where a manifest, config, lock or signature file belongs fails at once.
 * Throws an errno-style {@link SmallFileError}: `ENOENT` when missing, `ENOTREG` when not a regular
 * file, `EFBIG` when over `maxBytes` (also when it grows past it while being read), or whatever
 * open/read reported.
 */
export function readSmallRegularFileSync(file: string, maxBytes: number = MAX_SMALL_FILE_BYTES): Buffer {
  const fd = openSync(file, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) throw readError(`${file} is not a regular file`, 'ENOTREG');
    if (info.size > maxBytes) throw readError(`${file} is ${info.size} bytes, over ${maxBytes}`, 'EFBIG', info.size);
    return readToEnd(fd, file, info.size, maxBytes);
  } finally {
    closeSync(fd);
  }
}

/**
 * {@link readSmallRegularFileSync} of a file that a listing of its dir has just shown to be a regular
 * file, as UTF-8 text, without the fstat the listing made redundant and decoded straight from the read
 * buffer (a scan reads hundreds of manifests; a copy of each one's bytes would be garbage at once).
 * Opened non-blocking and not following a link, so whatever may have been swapped in since cannot block
 * the read or make it unbounded; read once. Only a read that ends the file within `maxBytes` is taken as
 * its content: on anything else (an error, an empty file, one larger than the first read) the file is
 * read again the full way, whose answer stands.
 */
export function readListedRegularTextSync(file: string, maxBytes: number = MAX_SMALL_FILE_BYTES): string {
  const length = readListedOnce(file, maxBytes);
  return length > 0 ? (scratch as Buffer).toString('utf8', 0, length) : readSmallRegularFileSync(file, maxBytes).toString('utf8');
}

// The one read of a listed file into the scratch buffer: its length when that read ended the file within maxBytes, else 0.
function readListedOnce(file: string, maxBytes: number): number {
  let fd: number;
  try {
    fd = openSync(file, LISTED_OPEN_FLAGS);
  } catch {
    return 0;
  }
  const buffer = (scratch ??= Buffer.allocUnsafe(SCRATCH_BYTES));
  const asked = Math.min(buffer.length, maxBytes + 1);
  let length = 0;
  try {
    length = readSync(fd, buffer, 0, asked, 0);
  } catch {
    length = 0;
  } finally {
    closeSync(fd);
  }
  // A regular file's read comes up short only at its end.
  return length < asked ? length : 0;
}

// One read in the common case: asked for a byte more than fstat reported, a shorter read is the end.
function readToEnd(fd: number, file: string, size: number, maxBytes: number): Buffer {
  const fitsScratch = size < SCRATCH_BYTES;
  let buffer = fitsScratch ? (scratch ??= Buffer.allocUnsafe(SCRATCH_BYTES)) : Buffer.allocUnsafe(size + 1);
  let length = 0;
  for (;;) {
    const n = readSync(fd, buffer, length, buffer.length - length, length);
    length += n;
    if (length > maxBytes) throw readError(`${file} grew past ${maxBytes} bytes while being read`, 'EFBIG', length);
    if (n === 0 || length < buffer.length) break;
    // Full: the file grew since fstat. Keep reading, still within the bound.
    const grown = Buffer.allocUnsafe(Math.min(buffer.length * 2, maxBytes + 1));
    buffer.copy(grown, 0, 0, length);
    buffer = grown;
  }
  return buffer === scratch ? Buffer.from(buffer.subarray(0, length)) : buffer.subarray(0, length);
}

/** The errno-style code of a failed read, for messages. */
export function readErrorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}
