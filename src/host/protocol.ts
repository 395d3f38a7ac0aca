// The wire format between skillplug and its native host; mirrors the comment atop skillplug-host.c.
import type { ReturnedString } from '../abi/codec.js';

/** Host-to-parent frame kinds. */
export const HostMessage = { READY: 1, LOAD_ERROR: 2, RESULT: 3, CANCEL_ACK: 4, SHARED_RESULT: 5 } as const;
/** Parent-to-host frame kinds. */
export const HostRequest = { EXECUTE: 1, CONFIGURE: 2, CANCEL: 3, EXECUTE_ALONE: 4, SHARED_WAKE: 5 } as const;

/** The shared lane's layout (fd 6): indices of its 32-bit words, then where the two data areas lie. */
export const SharedWord = {
  REQ_SEQ: 0,
  REQ_LEN: 1,
  RESP_SEQ: 2,
  RESP_LEN: 3,
  HOST_POLLING: 4,
  PARENT_POLLING: 5,
  REQ_AFTER: 6,
  HOST_MAPPED: 7,
  SPIN_MICROS: 8,
  READER_AWAY: 9,
  PARENT_WATCHES: 10,
  BATCH: 11,
} as const;
/** READER_AWAY's low two bits: where the host's reader is (the rest counts its trips away). */
export const ReaderAway = { HOME: 0, QUICK_CALL: 1, SLOW_CALL: 2 } as const;
/** Offset of the request area (a context in UTF-8). */
export const SHARED_REQ = 4096;
/** Size of each data area. */
export const SHARED_AREA_BYTES = 64 * 1024;
/** Offset of the response area (a returned string, as in a RESULT payload). */
export const SHARED_RESP = SHARED_REQ + SHARED_AREA_BYTES;
/** Size of the shared file. */
export const SHARED_BYTES = SHARED_RESP + SHARED_AREA_BYTES;
/** Reasons in a LOAD_ERROR frame. */
export const LoadErrorReason = { DLOPEN: 1, SYMBOL: 2, SANDBOX: 4 } as const;

const RET_BYTES = 0;
const RET_NULL = 1;
const RET_TOO_LARGE = 2;
const RET_NOT_FREEABLE = 3;

/** Size of every frame header. */
export const HEADER_BYTES = 16;
/** Longest metadata string the host sends in READY (MAX_METADATA_BYTES in skillplug-host.c). */
export const HOST_METADATA_BYTES = 1024 * 1024;
/** Largest READY payload: version, has_free, then a returned string (tag and length before the bytes). */
export const READY_PAYLOAD_BYTES = 8 + 12 + HOST_METADATA_BYTES;

// Long payloads in several chunks are joined into one kept buffer, reused once released: fresh memory costs a page fault per 4 KiB (~10 µs on some VMs).
const SPARE_MIN_BYTES = 64 * 1024;
const SPARE_MAX_BYTES = 4 * 1024 * 1024;
let spare: Buffer | undefined;

/** One frame from the host. */
export interface Frame {
  kind: number;
  id: number;
  payload: Buffer;
}

/** A frame the host should never send: the channel is not to be trusted any more. */
export class ProtocolViolation extends Error {}

/** A whole EXECUTE request, header and UTF-8 context in one buffer (one write per call). */
export function executeFrame(id: number, context: string): Buffer {
  const length = Buffer.byteLength(context);
  const frame = Buffer.allocUnsafe(HEADER_BYTES + length);
  frame.writeUInt32LE(HostRequest.EXECUTE, 0);
  frame.writeUInt32LE(id, 4);
  // A context is far below 4 GiB (a JS string is), so the length's high word is 0: no BigInt per call.
  frame.writeUInt32LE(length, 8);
  frame.writeUInt32LE(0, 12);
  frame.write(context, HEADER_BYTES, 'utf8');
  return frame;
}

/** Turns an EXECUTE frame not yet written into EXECUTE_ALONE: no other call is in flight, so a pooled host may run it on its reader. */
export function markAlone(frame: Buffer): void {
  frame.writeUInt32LE(HostRequest.EXECUTE_ALONE, 0);
}

/** A CONFIGURE request: how many worker threads a thread-safe plugin's host should run. */
export function configureFrame(workers: number): Buffer {
  const frame = Buffer.allocUnsafe(HEADER_BYTES + 4);
  frame.writeUInt32LE(HostRequest.CONFIGURE, 0);
  frame.writeUInt32LE(0, 4);
  frame.writeBigUInt64LE(4n, 8);
  frame.writeUInt32LE(workers, HEADER_BYTES);
  return frame;
}

/** SHARED_WAKE: wakes a host that went to sleep on fd 3 just as a call was posted in the shared region. */
export const SHARED_WAKE_FRAME: Buffer = (() => {
  const frame = Buffer.alloc(HEADER_BYTES);
  frame.writeUInt32LE(HostRequest.SHARED_WAKE, 0);
  return frame;
})();

/** A CANCEL request for a call the host has queued but not started. */
export function cancelFrame(id: number): Buffer {
  const frame = Buffer.alloc(HEADER_BYTES);
  frame.writeUInt32LE(HostRequest.CANCEL, 0);
  frame.writeUInt32LE(id, 4);
  return frame;
}

/** Decodes a returned string at `offset` of a payload. */
export function decodeReturned(payload: Buffer, offset: number): ReturnedString {
  if (payload.length < offset + 4) throw new ProtocolViolation('truncated returned string');
  const tag = payload.readUInt32LE(offset);
  if (tag === RET_BYTES) return { kind: 'bytes', bytes: payload.subarray(offset + 4) };
  if (tag === RET_NULL) return { kind: 'null' };
  if (tag === RET_TOO_LARGE && payload.length >= offset + 12) return { kind: 'too-large', length: Number(payload.readBigUInt64LE(offset + 4)) };
  if (tag === RET_NOT_FREEABLE && payload.length >= offset + 8) return { kind: 'not-freeable', writable: payload.readUInt32LE(offset + 4) === 2 };
  throw new ProtocolViolation(`unknown returned-string tag ${tag}`);
}

/**
 * Reassembles frames from stream chunks without quadratic copying: chunks are kept as they come
 * and joined once per frame.
 */
export class FrameReader {
  private readonly chunks: Buffer[] = [];
  // Bytes of chunks[0] already consumed: frames are read in place, without a view per step.
  private offset = 0;
  private size = 0;
  private pendingLength = -1;
  private pendingKind = 0;
  private pendingId = 0;
  // The memory of the last joined payload taken from the spare (or made to become it), until released.
  private lent: ArrayBufferLike | undefined;

  constructor(private readonly maxPayload: number) {}

  /** Whether a frame's payload lies in memory the reader lends (see {@link release}). */
  isLent(payload: Buffer): boolean {
    return this.lent !== undefined && payload.buffer === this.lent;
  }

  /** Hands a payload back once nothing refers to its bytes, so its memory can hold the next long one (unreleased ones are never reused). */
  release(payload: Buffer): void {
    if (!this.isLent(payload)) return;
    const whole = Buffer.from(payload.buffer);
    this.lent = undefined;
    if (!spare || spare.length < whole.length) spare = whole;
  }

  /** Adds a chunk and returns every frame it completes. Throws {@link ProtocolViolation}. */
  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.size += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.pendingLength < 0) {
        if (this.size < HEADER_BYTES) break;
        let header = this.chunks[0] as Buffer;
        let at = this.offset;
        if (header.length - at < HEADER_BYTES) {
          header = this.take(HEADER_BYTES);
          at = 0;
        } else {
          this.skip(HEADER_BYTES);
        }
        this.pendingKind = header.readUInt32LE(at);
        this.pendingId = header.readUInt32LE(at + 4);
        // Two 32-bit halves: exact below 2^53, far beyond any limit, and no BigInt per frame.
        const length = header.readUInt32LE(at + 12) * 2 ** 32 + header.readUInt32LE(at + 8);
        if (length > this.maxPayload) throw new ProtocolViolation(`frame of ${length} bytes exceeds the ${this.maxPayload}-byte limit`);
        this.pendingLength = length;
      }
      if (this.size < this.pendingLength) break;
      frames.push({ kind: this.pendingKind, id: this.pendingId, payload: this.take(this.pendingLength) });
      this.pendingLength = -1;
    }
    return frames;
  }

  // Consumes n bytes that lie within the first chunk.
  private skip(n: number): void {
    this.offset += n;
    this.size -= n;
    if (this.offset === (this.chunks[0] as Buffer).length) {
      this.chunks.shift();
      this.offset = 0;
    }
  }

  // The next n bytes: a view when they lie in one chunk, else a copy.
  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0] as Buffer;
    if (first.length - this.offset >= n) {
      const out = first.subarray(this.offset, this.offset + n);
      this.skip(n);
      return out;
    }
    const out = this.joinBuffer(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0] as Buffer;
      const use = Math.min(chunk.length - this.offset, n - filled);
      chunk.copy(out, filled, this.offset, this.offset + use);
      filled += use;
      this.skip(use);
    }
    return out;
  }

  // Room to join n bytes: the spare when it fits, else fresh memory (rounded up, to fit a slightly longer next one).
  private joinBuffer(n: number): Buffer {
    if (n < SPARE_MIN_BYTES || n > SPARE_MAX_BYTES) return Buffer.allocUnsafe(n);
    let whole = spare;
    if (whole && whole.length >= n) spare = undefined;
    else whole = Buffer.allocUnsafeSlow(Math.min(SPARE_MAX_BYTES, Math.ceil(n / SPARE_MIN_BYTES) * SPARE_MIN_BYTES));
    this.lent = whole.buffer;
    return whole.subarray(0, n);
  }
}
