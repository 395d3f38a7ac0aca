// An MCP stdio transport (the SDK's Transport interface) that survives hostile traffic: the SDK's own
// closes itself on a line over 10 MiB and drops malformed JSON-RPC without an answer, so a client waits forever.
import type { Readable, Writable } from 'node:stream';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ErrorCode as JsonRpcError, JSONRPCMessageSchema, type JSONRPCMessage, type RequestId } from '@modelcontextprotocol/sdk/types.js';

/** Deepest nesting of arrays and objects accepted in one JSON-RPC message. */
export const MAX_MESSAGE_DEPTH = 1000;
// How much of an oversize line is kept to find its request id in.
const EDGE_BYTES = 4096;

/** Options for {@link BoundedStdioTransport}. */
export interface BoundedStdioOptions {
  /** Longest accepted message (one line, without its newline), in bytes. */
  maxMessageBytes: number;
  /** Deepest accepted nesting. Default {@link MAX_MESSAGE_DEPTH}. */
  maxDepth?: number;
  stdin?: Readable;
  stdout?: Writable;
}

type Rejection = { code: number; message: string; id: RequestId | null; data?: Record<string, unknown> };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function validId(value: unknown): value is RequestId {
  return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));
}

/** Nesting depth of a parsed JSON value, without recursion (the value may be 100 000 levels deep). */
function depthExceeds(value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (typeof v !== 'object' || v === null) continue;
    if (depth > limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
  }
  return false;
}

/**
 * The id of a request too large to parse, read from the edges of its line: a top-level `"id"` that is
 * the first member or the last (the SDK client writes it last). Null when neither edge shows it.
 */
export function idFromEdges(head: string, tail: string): RequestId | null {
  const literal = /^(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|"(?:[^"\\]|\\.)*")/;
  const first = /^\s*\{\s*"id"\s*:\s*/.exec(head);
  const last = /"id"\s*:\s*(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|"(?:[^"\\]|\\.)*")\s*\}\s*$/.exec(tail);
  const text = first ? literal.exec(head.slice(first[0].length))?.[1] : last?.[1];
  if (text === undefined) return null;
  try {
    const id: unknown = JSON.parse(text);
    return validId(id) ? id : null;
  } catch {
    return null;
  }
}

/** Why a parsed line is not a JSON-RPC 2.0 message the server can take, or undefined when it is. */
function rejection(value: unknown, maxDepth: number): Rejection | undefined {
  if (Array.isArray(value)) return { code: JsonRpcError.InvalidRequest, message: 'Invalid Request: batches are not supported (MCP sends one message per line).', id: null };
  if (!isRecord(value)) return { code: JsonRpcError.InvalidRequest, message: 'Invalid Request: a message must be a JSON object.', id: null };
  const id = validId(value.id) ? value.id : null;
  if (value.jsonrpc !== '2.0') return { code: JsonRpcError.InvalidRequest, message: 'Invalid Request: "jsonrpc" must be "2.0".', id };
  if ('method' in value) {
    if (typeof value.method !== 'string') return { code: JsonRpcError.InvalidRequest, message: 'Invalid Request: "method" must be a string.', id };
    if ('id' in value && id === null) return { code: JsonRpcError.InvalidRequest, message: 'Invalid Request: "id" must be a string or a number.', id };
    if ('params' in value && typeof value.params !== 'object') return { code: JsonRpcError.InvalidParams, message: 'Invalid params: "params" must be an object.', id };
    if (depthExceeds(value.params, maxDepth - 1)) return { code: JsonRpcError.InvalidParams, message: `Invalid params: nested deeper than ${maxDepth} levels.`, id, data: { maxDepth } };
  } else if (id === null || !('result' in value || 'error' in value)) {
    return { code: JsonRpcError.InvalidRequest, message: 'Invalid Request: a message needs a "method", or an "id" with a "result" or an "error".', id };
  } else if (depthExceeds(value, maxDepth)) {
    return { code: JsonRpcError.InvalidRequest, message: `Invalid Request: nested deeper than ${maxDepth} levels.`, id, data: { maxDepth } };
  }
  const parsed = JSONRPCMessageSchema.safeParse(value);
  if (!parsed.success) return { code: 'method' in value ? JsonRpcError.InvalidParams : JsonRpcError.InvalidRequest, message: `Invalid message: ${parsed.error.issues[0]?.message ?? 'not JSON-RPC'}.`, id };
  return undefined;
}

/**
 * Reads newline-delimited JSON-RPC from stdin with a bound on each line and answers what it cannot
 * take (JSON-RPC 2.0: -32700 parse error, -32600 invalid request, -32602 invalid params) instead of
 * dropping it or closing. Notifications (no id) that are malformed get no answer, as JSON-RPC says.
 */
export class BoundedStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private readonly stdin: Readable;
  private readonly stdout: Writable;
  private readonly maxBytes: number;
  private readonly maxDepth: number;
  private chunks: Buffer[] = [];
  private length = 0;
  // Inside a line already known to be too long: its bytes are skipped up to the newline.
  private skipping = false;
  private head = '';
  private tail = '';
  private closed = false;
  // Requests read and not yet answered; `settled()` waits for them.
  private readonly unanswered = new Set<RequestId>();
  private settledWaiters: (() => void)[] = [];

  constructor(options: BoundedStdioOptions) {
    this.maxBytes = options.maxMessageBytes;
    this.maxDepth = options.maxDepth ?? MAX_MESSAGE_DEPTH;
    this.stdin = options.stdin ?? process.stdin;
    this.stdout = options.stdout ?? process.stdout;
  }

  async start(): Promise<void> {
    this.stdin.on('data', this.onData);
    this.stdin.on('error', this.onStreamError);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stdin.off('data', this.onData);
    this.stdin.off('error', this.onStreamError);
    if (this.stdin.listenerCount('data') === 0) this.stdin.pause();
    this.chunks = [];
    this.onclose?.();
  }

  /** Resolves once every request read so far has been answered and its answer handed to stdout. */
  settled(): Promise<void> {
    return this.unanswered.size === 0 ? Promise.resolve() : new Promise((resolve) => this.settledWaiters.push(resolve));
  }

  private answered(id: RequestId): void {
    if (!this.unanswered.delete(id) || this.unanswered.size > 0) return;
    const waiters = this.settledWaiters;
    this.settledWaiters = [];
    for (const wake of waiters) wake();
  }

  send(message: JSONRPCMessage): Promise<void> {
    const answers = 'id' in message && !('method' in message) ? (message.id as RequestId) : undefined;
    return this.write(message).finally(() => {
      if (answers !== undefined) this.answered(answers);
    });
  }

  private write(message: JSONRPCMessage): Promise<void> {
    let line: string;
    try {
      line = `${JSON.stringify(message)}\n`;
    } catch (err) {
      // An answer that cannot be written still answers its request, so the client never waits forever.
      if (!('id' in message) || 'method' in message) return Promise.reject(err);
      line = `${JSON.stringify({ jsonrpc: '2.0', id: message.id, error: { code: JsonRpcError.InternalError, message: `The answer could not be serialized: ${String(err)}` } })}\n`;
    }
    return new Promise((resolve) => {
      if (this.stdout.write(line)) resolve();
      else this.stdout.once('drain', resolve);
    });
  }

  private readonly onStreamError = (error: Error): void => {
    this.onerror?.(error);
  };

  private readonly onData = (data: Buffer): void => {
    let chunk = data;
    while (chunk.length > 0 && !this.closed) {
      const newline = chunk.indexOf(10);
      const part = newline < 0 ? chunk : chunk.subarray(0, newline);
      if (!this.skipping && this.length + part.length > this.maxBytes) {
        this.skipping = true;
        this.head = Buffer.concat([...this.chunks, part.subarray(0, EDGE_BYTES)]).subarray(0, EDGE_BYTES).toString('utf8');
        this.chunks = [];
        this.length = 0;
      }
      if (this.skipping) this.tail = (this.tail + part.subarray(-EDGE_BYTES).toString('latin1')).slice(-EDGE_BYTES);
      else {
        this.chunks.push(part);
        this.length += part.length;
      }
      if (newline < 0) return;
      chunk = chunk.subarray(newline + 1);
      if (this.skipping) {
        this.skipping = false;
        const id = idFromEdges(this.head, this.tail);
        this.head = this.tail = '';
        this.reject({ code: JsonRpcError.InvalidRequest, message: `Invalid Request: the message is larger than the ${this.maxBytes}-byte limit (serve --max-message-mb).`, id, data: { maxMessageBytes: this.maxBytes } });
        continue;
      }
      const line = Buffer.concat(this.chunks, this.length);
      this.chunks = [];
      this.length = 0;
      this.take(line.toString('utf8'));
    }
  };

  private take(text: string): void {
    if (text.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      this.reject({ code: JsonRpcError.ParseError, message: 'Parse error: the line is not valid JSON.', id: null });
      return;
    }
    const problem = rejection(value, this.maxDepth);
    if (!problem) {
      if (isRecord(value) && typeof value.method === 'string' && validId(value.id)) this.unanswered.add(value.id);
      // The server sends nothing for a request its client cancelled: it counts as answered.
      if (isRecord(value) && value.method === 'notifications/cancelled' && isRecord(value.params) && validId(value.params.requestId)) this.answered(value.params.requestId);
      this.onmessage?.(value as JSONRPCMessage);
      return;
    }
    // A well-formed notification expects no answer, even to an error.
    if (problem.id === null && isRecord(value) && value.jsonrpc === '2.0' && typeof value.method === 'string' && !('id' in value)) {
      this.onerror?.(new Error(problem.message));
      return;
    }
    this.reject(problem);
  }

  private reject(problem: Rejection): void {
    const error = { code: problem.code, message: problem.message, ...(problem.data ? { data: problem.data } : {}) };
    void this.send({ jsonrpc: '2.0', id: problem.id, error } as unknown as JSONRPCMessage);
  }
}
