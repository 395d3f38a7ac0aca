import type { Duplex } from 'node:stream';

const EMPTY = Buffer.alloc(0);

/** Told once per corked tick, just before its frames leave (so a last frame can join them), and once they have left. */
export interface TickEnd {
  atTickEnd(): void;
  /** `frames` were written in the tick; runs once all of them are in the kernel's hands. */
  afterTick(frames: number): void;
}

/**
 * The parent's end of fd 3 and its only writer. Every frame goes through {@link send}, which alone
 * adds to {@link bytesSent}: that count orders shared-lane posts among frames (docs/host-protocol.md, rule 3).
 */
export class FrameChannel {
  private corked = false;
  // Bytes written to fd 3 so far, modulo 2^32.
  private sent = 0;
  private framesInTick = 0;

  constructor(
    private readonly socket: Duplex,
    onData: (chunk: Buffer) => void,
  ) {
    socket.on('data', onData);
    socket.on('error', () => undefined);
  }

  /** Bytes written to fd 3 so far, modulo 2^32 (what a post stores in REQ_AFTER). */
  get bytesSent(): number {
    return this.sent;
  }

  /** Writes one frame; `written` runs once it has been written. */
  send(frame: Buffer, written?: () => void): void {
    this.sent = (this.sent + frame.length) >>> 0;
    this.framesInTick++;
    this.socket.write(frame, written);
  }

  // Writes made in the same tick (many callers answering one batch of results) leave in one writev.
  corkUntilTick(tickEnd: TickEnd): void {
    if (this.corked) return;
    this.corked = true;
    this.framesInTick = 0;
    this.socket.cork();
    process.nextTick(() => {
      this.corked = false;
      tickEnd.atTickEnd();
      this.socket.uncork();
      const frames = this.framesInTick;
      if (frames === 0) return;
      // Written at once unless the socket's buffer was full; then once the last of them is.
      if (this.socket.writableLength === 0) tickEnd.afterTick(frames);
      else this.socket.write(EMPTY, () => tickEnd.afterTick(frames));
    });
  }

  /** Ends the host's input: it exits once it has read everything before. */
  end(): void {
    this.socket.end();
  }

  /** Drops the socket once the host is gone. */
  destroy(): void {
    this.socket.destroy();
  }
}
