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
  // The tick's frames and write callbacks, written together at its end (one buffer, one write).
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private callbacks: (() => void)[] = [];
  private tickEnd: TickEnd | undefined;

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

  /** Writes one frame (at the end of the tick when corked); `written` runs once it has been written. */
  send(frame: Buffer, written?: () => void): void {
    this.sent = (this.sent + frame.length) >>> 0;
    this.framesInTick++;
    if (!this.corked) {
      this.socket.write(frame, written);
      return;
    }
    this.batch.push(frame);
    this.batchBytes += frame.length;
    if (written) this.callbacks.push(written);
  }

  // Frames sent in the same tick (many callers answering one batch of results) leave in one write,
  // which costs the stream one request instead of one per frame.
  corkUntilTick(tickEnd: TickEnd): void {
    if (this.corked) return;
    this.corked = true;
    this.framesInTick = 0;
    this.tickEnd = tickEnd;
    process.nextTick(this.endTick);
  }

  private readonly endTick = (): void => {
    const tickEnd = this.tickEnd as TickEnd;
    // Still corked: a frame sent here joins the batch, in order.
    tickEnd.atTickEnd();
    this.corked = false;
    this.flush();
    const frames = this.framesInTick;
    if (frames === 0) return;
    // Written at once unless the socket's buffer was full; then once the last of them is.
    if (this.socket.writableLength === 0) tickEnd.afterTick(frames);
    else this.socket.write(EMPTY, () => tickEnd.afterTick(frames));
  };

  private flush(): void {
    const { batch, callbacks } = this;
    if (batch.length === 0) return;
    const data = batch.length === 1 ? (batch[0] as Buffer) : Buffer.concat(batch, this.batchBytes);
    batch.length = 0;
    this.batchBytes = 0;
    if (callbacks.length === 0) {
      this.socket.write(data);
      return;
    }
    this.callbacks = [];
    this.socket.write(data, () => {
      for (const written of callbacks) written();
    });
  }

  /** Ends the host's input: it exits once it has read everything before. */
  end(): void {
    this.flush();
    this.socket.end();
  }

  /** Drops the socket once the host is gone. */
  destroy(): void {
    this.batch.length = 0;
    this.callbacks = [];
    this.socket.destroy();
  }
}
