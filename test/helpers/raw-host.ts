// Drives the native host frame by frame and word by word (docs/host-protocol.md), so tests can put
// frames and shared-lane posts in orders HostProcess never would, and watch what the host does.
// The host runs with test/fixtures/host_gate.c preloaded, which reports when its reader goes to sleep
// and can hold it between its look at the lane and its next polling read: events, never timers.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readlinkSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import path from 'node:path';
import type { Duplex, Writable } from 'node:stream';
import { after, before } from 'node:test';
import { hostAddon } from '../../src/host/host-addon.js';
import { mapLane, type SharedMapping } from '../../src/host/shared-lane.js';
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
import { buildFixture, tempDir } from './fixtures.js';

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

let gateLibrary: Promise<string> | undefined;
/** The gate preloaded into every raw host, built once per test process. */
function gate(): Promise<string> {
  gateLibrary ??= buildFixture(tempDir(), { source: 'host_gate', name: 'host-gate', manifest: null }).then((dir) => path.join(dir, 'libhost-gate.so'));
  return gateLibrary;
}

/** Resolves once `ready()` holds, checking each time `signal` fires; rejects when `gone()` holds first or after the hang guard. */
function waitFor(ready: () => boolean, gone: () => boolean, signal: { waiter: (() => void) | undefined }, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const guard = setTimeout(() => settle(new Error(`${what}: never happened`)), HANG_GUARD_MS);
    const settle = (err?: Error) => {
      clearTimeout(guard);
      signal.waiter = undefined;
      if (err) reject(err);
      else resolve();
    };
    const check = () => {
      if (ready()) settle();
      else if (gone()) settle(new Error(`${what}: the host exited first`));
      else signal.waiter = check;
    };
    check();
  });
}

/**
 * For a suite of raw hosts of the thread-safe concurrency fixture: builds it (as `name`) before the
 * suite, stops every host started after it, and returns the starter.
 */
export function concurrencyHosts(name: string): () => Promise<RawHost> {
  let library: string;
  const hosts: RawHost[] = [];
  before(async () => {
    const dir = await buildFixture(tempDir(), { source: 'concurrency', name, defines: { THREAD_SAFE: '1' } });
    library = path.join(dir, `lib${name}.so`);
  });
  after(async () => {
    await Promise.all(hosts.map((h) => h.stop()));
  });
  return async () => {
    const host = await RawHost.start(library);
    hosts.push(host);
    return host;
  };
}

/** The context text of a call whose input is `input` (fixtures read flat fields anywhere in it). */
export function context(input: Record<string, unknown>): string {
  return JSON.stringify({ input, workspace_root: null, config: {} });
}

/** One unsandboxed host with its lane, spoken to directly. */
export class RawHost {
  /** Bytes written to fd 3 so far (mod 2^32): what the parent's FrameChannel would count for REQ_AFTER. */
  bytesSent = 0;
  private readonly frames: Frame[] = [];
  private waiter: (() => void) | undefined;
  private exited = false;
  private lane!: SharedMapping;
  // The gate's news: the received-byte count of its last sleep report, and holds not yet awaited.
  private asleepAfter: number | undefined;
  private holds = 0;
  private readonly gateNews: { waiter: (() => void) | undefined } = { waiter: undefined };

  private constructor(
    readonly child: ChildProcess,
    private readonly channel: Duplex,
    private readonly wake: Writable,
    private readonly gateSocket: Socket,
  ) {
    let pending = Buffer.alloc(0);
    gateSocket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        if (pending[0] === 0x48 /* H */) {
          this.holds++;
          pending = pending.subarray(1);
        } else if (pending[0] === 0x53 /* S */ && pending.length >= 5) {
          this.asleepAfter = pending.readUInt32LE(1);
          pending = pending.subarray(5);
        } else {
          break;
        }
      }
      this.gateNews.waiter?.();
    });
    gateSocket.on('error', () => undefined);
    const reader = new FrameReader(READY_PAYLOAD_BYTES + HEADER_BYTES);
    channel.on('data', (chunk: Buffer) => {
      this.frames.push(...reader.push(chunk));
      this.waiter?.();
    });
    child.on('exit', () => {
      this.exited = true;
      this.waiter?.();
      this.gateNews.waiter?.();
    });
  }

  /** Spawns a host for the library with the lane on and the gate preloaded, waits for READY and maps the lane. */
  static async start(libraryPath: string): Promise<RawHost> {
    const [binary, tools, gateLibrary] = await Promise.all([ensureHostBinary(), hostAddon(), gate()]);
    const server = createServer();
    const gatePath = path.join(tempDir('skillplug-gate-'), 'gate.sock');
    server.listen(gatePath);
    await once(server, 'listening');
    // The gate connects from the host's start-up code, before the host's main() runs.
    const connected = once(server, 'connection') as Promise<[Socket]>;
    const child = spawn(binary, [libraryPath, String(1 << 20), '0', String(process.pid), 'lane'], {
      stdio: ['ignore', 'ignore', 'inherit', 'pipe', 'pipe', 'pipe', 'ignore'],
      detached: true,
      env: { ...process.env, SKILLPLUG_TEST_GATE: gatePath, LD_PRELOAD: [gateLibrary, process.env.LD_PRELOAD].filter(Boolean).join(':') },
    });
    const [gateSocket] = await Promise.race([connected, once(child, 'exit').then(() => Promise.reject(new Error('the host exited before its gate connected')))]);
    server.close();
    const wake = (child.stdio as unknown as Writable[])[5] as Writable;
    wake.on('error', () => undefined);
    const host = new RawHost(child, child.stdio[3] as Duplex, wake, gateSocket);
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

  /** Writes frames on fd 3 in one write (as FrameChannel's cork does), counting their bytes as its send() does; resolves once they are in the socket. */
  send(...frames: Buffer[]): Promise<void> {
    const bytes = Buffer.concat(frames);
    this.bytesSent = (this.bytesSent + bytes.length) >>> 0;
    // A failed write shows as the host's exit, which next() reports.
    return new Promise((resolve) => this.channel.write(bytes, () => resolve()));
  }

  execute(id: number, input: Record<string, unknown>): Promise<void> {
    return this.send(RawHost.executeFrame(id, input));
  }

  configure(workers: number): Promise<void> {
    return this.send(configureFrame(workers));
  }

  cancel(id: number): Promise<void> {
    return this.send(cancelFrame(id));
  }

  sharedWake(): Promise<void> {
    return this.send(SHARED_WAKE_FRAME);
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

  /** Says this side reads READER_AWAY after the frames it writes (PARENT_WATCHES, rule 7), as HostProcess does once it maps the lane. */
  watchReader(): void {
    Atomics.store(this.lane.words, SharedWord.PARENT_WATCHES, 1);
  }

  /** Sets the BATCH word: the host's threads follow it the next time they handle a frame or run a call. */
  setBatch(on: boolean): void {
    Atomics.store(this.lane.words, SharedWord.BATCH, on ? 1 : 0);
  }

  /** READER_AWAY: the reader's trips away << 2 | where it is (ReaderAway). */
  get readerAway(): number {
    return Atomics.load(this.lane.words, SharedWord.READER_AWAY);
  }

  /** Whether the host's reader is polling (HOST_POLLING); when it is not, a post needs SHARED_WAKE. */
  get hostPolling(): boolean {
    return Atomics.load(this.lane.words, SharedWord.HOST_POLLING) === 1;
  }

  /** Lets the host's idle reader poll fd 3 and the lane for `micros` before it sleeps, as a spin lease does. */
  leaseSpin(micros: number): void {
    Atomics.store(this.lane.words, SharedWord.SPIN_MICROS, micros);
  }

  /**
   * Resolves once the host's reader has read every byte sent so far and gone to sleep on fd 3 for
   * more (it clears HOST_POLLING first), as the gate reports; it stays asleep until the next send.
   */
  hostAsleep(): Promise<void> {
    return waitFor(() => this.asleepAfter === this.bytesSent, () => this.exited, this.gateNews, 'the host asleep after every frame sent');
  }

  /**
   * Asks the gate to hold the reader's next polling read of fd 3 (made only with a spin lease), which
   * comes right after a look at the lane that found no post due; resolves once the gate can see the ask.
   */
  holdNextPoll(): Promise<void> {
    return new Promise((resolve) => this.gateSocket.write('h', () => resolve()));
  }

  /** Resolves once the gate holds the polling read asked for; `release()` then lets it read. */
  async held(): Promise<void> {
    await waitFor(() => this.holds > 0, () => this.exited, this.gateNews, 'a held polling read');
    this.holds--;
  }

  /** Lets a held polling read go on. */
  release(): void {
    this.gateSocket.write('g');
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
    this.gateSocket.destroy();
    this.lane?.unmap();
  }
}
