// Drives the native host frame by frame and word by word (docs/host-protocol.md), so tests can put
// frames and shared-lane posts in orders HostProcess never would, and watch what the host does.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readlinkSync } from 'node:fs';
import type { Duplex, Writable } from 'node:stream';
import { laneAddon, mapLane, type SharedMapping } from '../../src/host/host-process.js';
import {
  FrameReader,
  HEADER_BYTES,
  HostMessage,
  READY_PAYLOAD_BYTES,
  SHARED_REQ,
  SHARED_RESP,
  SHARED_WAKE_FRAME,
  SharedWord,
  cancelFrame,
  configureFrame,
  decodeReturned,
  executeFrame,
  type Frame,
} from '../../src/host/protocol.js';
import { ensureHostBinary } from '../../src/toolchain.js';

// Only a guard against a test hanging forever; nothing is asserted about how long anything takes.
const HANG_GUARD_MS = 120_000;

/** A frame as a test reads it: the kind's name and the result or status it carries. */
export interface SeenFrame {
  kind: keyof typeof HostMessage;
  id: number;
  /** RESULT: the plugin's result text; CANCEL_ACK: 0 dropped, 1 running or done. */
  value?: string | number;
}

const KIND_NAMES = new Map(Object.entries(HostMessage).map(([name, kind]) => [kind, name as keyof typeof HostMessage]));

/** The context text of a call whose input is `input` (fixtures read flat fields anywhere in it). */
export function context(input: Record<string, unknown>): string {
  return JSON.stringify({ input, workspace_root: null, config: {} });
}

/** One unsandboxed host with its lane, spoken to directly. */
export class RawHost {
  /** Bytes written to fd 3 so far (mod 2^32): what HostProcess would store in REQ_AFTER. */
  bytesSent = 0;
  private readonly frames: Frame[] = [];
  private waiter: (() => void) | undefined;
  private exited = false;
  private lane!: SharedMapping;

  private constructor(
    readonly child: ChildProcess,
    private readonly channel: Duplex,
    private readonly wake: Writable,
  ) {
    const reader = new FrameReader(READY_PAYLOAD_BYTES + HEADER_BYTES);
    channel.on('data', (chunk: Buffer) => {
      this.frames.push(...reader.push(chunk));
      this.waiter?.();
    });
    child.on('exit', () => {
      this.exited = true;
      this.waiter?.();
    });
  }

  /** Spawns a host for the library with the lane on, waits for READY and maps the lane. */
  static async start(libraryPath: string): Promise<RawHost> {
    const [binary, tools] = await Promise.all([ensureHostBinary(), laneAddon()]);
    const child = spawn(binary, [libraryPath, String(1 << 20), '0', String(process.pid), 'lane'], {
      stdio: ['ignore', 'ignore', 'inherit', 'pipe', 'pipe', 'pipe', 'ignore'],
      detached: true,
    });
    const wake = (child.stdio as unknown as Writable[])[5] as Writable;
    wake.on('error', () => undefined);
    const host = new RawHost(child, child.stdio[3] as Duplex, wake);
    const ready = await host.next();
    if (ready.kind !== 'READY') throw new Error(`expected READY, got ${ready.kind}`);
    // The host maps its lane before it loads the plugin, so it is there once READY is.
    const file = `/proc/${child.pid}/fd/6`;
    if (!readlinkSync(file).startsWith('/memfd:skillplug-lane')) throw new Error('the host holds no lane at fd 6');
    const fd = openSync(file, 'r+');
    try {
      const lane = mapLane(tools, fd);
      if (!lane) throw new Error('could not map the lane');
      host.lane = lane;
    } finally {
      closeSync(fd);
    }
    return host;
  }

  /** Writes frames on fd 3 in one write (as HostProcess's cork does), counting their bytes as its send() does. */
  send(...frames: Buffer[]): void {
    const bytes = Buffer.concat(frames);
    this.bytesSent = (this.bytesSent + bytes.length) >>> 0;
    this.channel.write(bytes);
  }

  execute(id: number, input: Record<string, unknown>): void {
    this.send(RawHost.executeFrame(id, input));
  }

  configure(workers: number): void {
    this.send(configureFrame(workers));
  }

  cancel(id: number): void {
    this.send(cancelFrame(id));
  }

  sharedWake(): void {
    this.send(SHARED_WAKE_FRAME);
  }

  static executeFrame(id: number, input: Record<string, unknown>): Buffer {
    return executeFrame(id, context(input));
  }

  /** A byte on fd 5: the standby reads fd 3 while the reader runs a lone call. */
  wakeStandby(): void {
    this.wake.write(Buffer.from([1]));
  }

  /** Posts a call in the lane, to be taken once the host has handled `after` bytes of frames (default: all sent so far). */
  post(id: number, input: Record<string, unknown>, after = this.bytesSent): void {
    const length = this.lane.bytes.write(context(input), SHARED_REQ, 'utf8');
    Atomics.store(this.lane.words, SharedWord.REQ_LEN, length);
    Atomics.store(this.lane.words, SharedWord.REQ_AFTER, after | 0);
    Atomics.store(this.lane.words, SharedWord.REQ_SEQ, id | 0);
  }

  /** Whether the host's reader is polling (HOST_POLLING); when it is not, a post needs SHARED_WAKE. */
  get hostPolling(): boolean {
    return Atomics.load(this.lane.words, SharedWord.HOST_POLLING) === 1;
  }

  /** Resolves once the host's reader has gone to sleep on fd 3 (it clears HOST_POLLING first). */
  async hostAsleep(): Promise<void> {
    const guard = Date.now() + HANG_GUARD_MS;
    while (this.hostPolling) {
      if (Date.now() > guard) throw new Error('the host never stopped polling');
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  /** The result text of the call answered in the lane (after its SHARED_RESULT frame). */
  laneResult(id: number): string {
    if (Atomics.load(this.lane.words, SharedWord.RESP_SEQ) !== (id | 0)) throw new Error(`no lane result for call ${id}`);
    const length = Atomics.load(this.lane.words, SharedWord.RESP_LEN);
    const returned = decodeReturned(Buffer.from(this.lane.bytes.subarray(SHARED_RESP, SHARED_RESP + length)), 0);
    if (returned.kind !== 'bytes') throw new Error(`call ${id} returned ${returned.kind}`);
    return Buffer.from(returned.bytes).toString('utf8');
  }

  /** The next frame from the host, decoded. */
  async next(): Promise<SeenFrame> {
    let hung = false;
    const guard = setTimeout(() => {
      hung = true;
      this.waiter?.();
    }, HANG_GUARD_MS);
    try {
      while (this.frames.length === 0) {
        if (this.exited) throw new Error('the host exited');
        if (hung) throw new Error('no frame from the host');
        await new Promise<void>((resolve) => (this.waiter = resolve));
        this.waiter = undefined;
      }
    } finally {
      clearTimeout(guard);
    }
    const frame = this.frames.shift() as Frame;
    const kind = KIND_NAMES.get(frame.kind as 1) ?? (`kind ${frame.kind}` as keyof typeof HostMessage);
    if (frame.kind === HostMessage.RESULT) {
      const returned = decodeReturned(frame.payload, 0);
      return { kind, id: frame.id, value: returned.kind === 'bytes' ? Buffer.from(returned.bytes).toString('utf8') : returned.kind };
    }
    if (frame.kind === HostMessage.CANCEL_ACK) return { kind, id: frame.id, value: frame.payload.readUInt32LE(0) };
    return { kind, id: frame.id };
  }

  /** Kills the host (it may be held in a call) and waits for its exit. */
  async stop(): Promise<void> {
    if (!this.exited) {
      const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.child.kill('SIGKILL');
      await gone;
    }
    this.lane?.unmap();
  }
}
