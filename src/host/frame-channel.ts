import type { Duplex } from 'node:stream';

/** Told once per corked tick, just before its frames leave, so a last frame can join them. */
export interface TickEnd {
  atTickEnd(): void;
}

/**
 * The parent's end of fd 3 and its only writer. Every frame goes through {@link send}, which alone
 * adds to {@link bytesSent}: that count orders shared-lane posts among frames (docs/host-protocol.md, rule 3).
 */
export class FrameChannel {
  private corked = false;
  // Bytes written to fd 3 so far, modulo 2^32.
  private sent = 0;

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
    this.socket.write(frame, written);
  }

  // Writes made in the same tick (many callers answering one batch of results) leave in one writev.
  corkUntilTick(tickEnd: TickEnd): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    process.nextTick(() => {
      this.corked = false;
      tickEnd.atTickEnd();
      this.socket.uncork();
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
