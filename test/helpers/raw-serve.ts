// Drives `skillplug serve` with raw lines on its stdin, so tests can send what no well-behaved client would.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { CLI_PATH, tempHome } from './fixtures.js';

/** A JSON-RPC answer line as read back. */
export type Answer = { jsonrpc: string; id?: unknown; result?: unknown; error?: { code: number; message: string; data?: Record<string, unknown> } };

/** A running `skillplug serve` spoken to line by line. */
export class RawServe {
  readonly child: ChildProcessWithoutNullStreams;
  stderr = '';
  private buffered = '';
  private readonly lines: string[] = [];
  private waiter: (() => void) | undefined;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [CLI_PATH, 'serve', ...args], { env: { ...process.env, HOME: tempHome(), ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (d: Buffer) => {
      this.buffered += d.toString('utf8');
      let nl: number;
      while ((nl = this.buffered.indexOf('\n')) >= 0) {
        this.lines.push(this.buffered.slice(0, nl));
        this.buffered = this.buffered.slice(nl + 1);
      }
      this.waiter?.();
    });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    // A write to a server that died must fail the test through `next`, not crash the runner.
    this.child.stdin.on('error', () => undefined);
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => {
      resolve({ code, signal });
      this.waiter?.();
    }));
  }

  /** Writes raw bytes (add the newline yourself); resolves once they are handed to the pipe. */
  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve) => {
      // A server that stopped reading never drains: its exit ends the wait, and `next` then reports it.
      if (this.child.stdin.write(data)) resolve();
      else {
        this.child.stdin.once('drain', () => resolve());
        void this.exited.then(() => resolve());
      }
    });
  }

  /** The next line the server writes, parsed; rejects if the server exits first. */
  async next(): Promise<Answer> {
    while (this.lines.length === 0) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`skillplug serve exited (${this.child.exitCode ?? this.child.signalCode}); stderr: ${this.stderr}`);
      await new Promise<void>((resolve) => (this.waiter = resolve));
      this.waiter = undefined;
    }
    return JSON.parse(this.lines.shift() as string) as Answer;
  }

  /** Sends a request and waits for the answer with its id (notifications in between are skipped). */
  async request(id: number | string, method: string, params?: unknown): Promise<Answer> {
    await this.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) })}\n`);
    for (;;) {
      const answer = await this.next();
      if (answer.id === id) return answer;
    }
  }

  /** Ends stdin and waits for the server to exit. */
  async close(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.child.stdin.end();
    return this.exited;
  }
}
