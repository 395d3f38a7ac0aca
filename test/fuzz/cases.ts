// Case generators for the fuzz suite: plugin results, plugin.json files and JSON-RPC lines, all from a seeded Prng.
import assert from 'node:assert/strict';
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { ErrorCode, PluginError } from '../../src/index.js';
import type { Prng } from '../helpers/prng.js';

/** Every error code skillplug may give; anything else (or E_INTERNAL) breaks an invariant. */
export const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode).filter((c) => c !== ErrorCode.INTERNAL));

/** Open file descriptors of this process. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Child processes of this process. */
export function childPids(): number[] {
  try {
    return readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The outcome of one call: 'ok', 'ok:failed' (success false) or the error code; throws on a broken invariant. */
export async function outcomeOf(call: Promise<{ success: boolean }>, what: string): Promise<string> {
  try {
    const result = await call;
    return result.success ? 'ok' : 'ok:failed';
  } catch (err) {
    assert.ok(err instanceof PluginError, `${what}: not a PluginError: ${String(err)}`);
    assert.ok(KNOWN_CODES.has(err.code), `${what}: code ${err.code}: ${err.message}`);
    return err.code;
  }
}

/** Counts outcomes by code; written to SKILLPLUG_FUZZ_REPORT (one JSON line per suite) when set. */
export class Tally {
  readonly counts: Record<string, number> = {};
  constructor(readonly suite: string) {}
  add(outcome: string): void {
    this.counts[outcome] = (this.counts[outcome] ?? 0) + 1;
  }
  get total(): number {
    return Object.values(this.counts).reduce((a, b) => a + b, 0);
  }
  report(): void {
    const file = process.env.SKILLPLUG_FUZZ_REPORT;
    if (file) appendFileSync(file, `${JSON.stringify({ suite: this.suite, counts: this.counts })}\n`);
  }
}

/** What the fuzz fixture is told to return (see test/fixtures/fuzz.c). */
export interface ResultCase {
  kind: string;
  input: { pre?: string; head?: string; rep?: number; hex?: string; tail?: string; post?: string; sleep_ms?: number; n?: number };
}

const hex = (text: string | Buffer): string => (typeof text === 'string' ? Buffer.from(text, 'utf8') : text).toString('hex');

const ODD_STRINGS = ['', 'plain', '\\u0000', 'a\\u0000b', '\\ud800', '\\udfff\\ud800', '\\u001b[31mred', '\\n\\r\\t', '💥', '\\"', '\\\\', '__proto__', 'constructor'];

/** A random JSON text (possibly with escapes JSON allows but UTF-16 dislikes: lone surrogates, NUL). */
export function jsonText(prng: Prng, depth = 0): string {
  const roll = depth > 4 ? prng.int(5) : prng.int(8);
  switch (roll) {
    case 0:
      return prng.pick(['0', '-0', '1e400', '-1e400', '1.5e-400', '123456789012345678901234567890', '3.14', '-7']);
    case 1:
      return `"${prng.pick(ODD_STRINGS)}${prng.chance(0.3) ? 'x'.repeat(prng.int(300)) : ''}"`;
    case 2:
      return prng.pick(['true', 'false', 'null']);
    case 3:
      return `"${prng.pick(ODD_STRINGS)}"`;
    case 4:
      return '{}';
    case 5:
    case 6:
      return `{${Array.from({ length: prng.int(4) }, () => `"${prng.pick(ODD_STRINGS)}":${jsonText(prng, depth + 1)}`).join(',')}}`;
    default:
      return `[${Array.from({ length: prng.int(4) }, () => jsonText(prng, depth + 1)).join(',')}]`;
  }
}

function filesText(prng: Prng): string {
  const odd = ['"../../etc/passwd"', '"/etc/shadow"', '""', '5', 'null', '"a\\u0000b"', '"\\ud800"', `"${'d/'.repeat(2000)}f"`, '"ok.txt"', '"\\u001b]0;title\\u0007"', '{}', '[]'];
  if (prng.chance(0.15)) return prng.pick(['{}', '"x"', '5', 'null']);
  return `[${Array.from({ length: prng.int(4) }, () => prng.pick(odd)).join(',')}]`;
}

function envelope(prng: Prng, output: string): string {
  const success = prng.chance(0.8) ? 'true' : prng.pick(['false', '"yes"', '1', 'null']);
  const error = prng.pick(['null', 'null', '"it failed"', '5', '"\\ud800"']);
  const files = filesText(prng);
  const members = [`"success":${success}`, `"output":${output}`, `"error":${error}`, `"files":${files}`];
  if (prng.chance(0.1)) members.splice(prng.int(members.length), 1);
  if (prng.chance(0.1)) members.push(`"${prng.pick(ODD_STRINGS)}":${jsonText(prng)}`);
  return `{${members.join(',')}}`;
}

/** One plugin result to fuzz with; `maxOutputBytes` sizes the huge cases around the limit. */
export function resultCase(prng: Prng, maxOutputBytes: number, allowDeep = true): ResultCase {
  const kind = prng.pick(['valid', 'valid', 'valid', 'bytes', 'truncated', 'deep', 'huge', 'badutf8', 'shape', 'nul', 'empty']);
  switch (kind) {
    case 'valid':
      return { kind, input: { hex: hex(envelope(prng, jsonText(prng))) } };
    case 'bytes':
      return { kind, input: { hex: hex(prng.bytes(prng.int(200))) } };
    case 'truncated': {
      const text = envelope(prng, jsonText(prng));
      return { kind, input: { hex: hex(text.slice(0, prng.int(text.length))) } };
    }
    case 'deep': {
      if (!allowDeep) return resultCase(prng, maxOutputBytes, false);
      const [head, tail] = prng.pick([['[', ']'], ['{"a":', '}'], ['[{"b":', '}]']]) as [string, string];
      const rep = prng.pick([10, 100, 1000, 5000, 10_000]);
      return { kind, input: { pre: hex('{"success":true,"output":'), head: hex(head), rep, hex: hex('1'), tail: hex(tail), post: hex(',"error":null,"files":[]}') } };
    }
    case 'huge': {
      const rep = prng.pick([maxOutputBytes - 64, maxOutputBytes, maxOutputBytes + 1, Math.floor(maxOutputBytes / 3)]);
      return { kind, input: { pre: hex('{"success":true,"output":"'), head: hex('x'), rep, hex: '', post: hex('","error":null,"files":[]}') } };
    }
    case 'badutf8': {
      const bad = prng.pick([Buffer.of(0xff), Buffer.of(0xed, 0xa0, 0x80), Buffer.of(0xc3), Buffer.of(0xf4, 0x90, 0x80, 0x80), Buffer.of(0xc0, 0xaf)]);
      return { kind, input: { hex: hex(Buffer.concat([Buffer.from('{"success":true,"output":"'), bad, Buffer.from('","error":null,"files":[]}')])) } };
    }
    case 'shape':
      return { kind, input: { hex: hex(prng.pick(['[]', 'null', '"str"', '{}', '5', '\ufeff{"success":true,"output":{},"error":null,"files":[]}', ' {"success":true,"output":1,"error":null,"files":[]} ', '{"success":true,"output":{},"error":null,"files":[]}{}', '{"__proto__":{"success":true},"output":{},"files":[]}'])) } };
    case 'nul': {
      const text = envelope(prng, jsonText(prng));
      const at = prng.int(text.length + 1);
      return { kind, input: { hex: hex(`${text.slice(0, at)}\u0000${text.slice(at)}`) } };
    }
    default:
      return { kind, input: { hex: '' } };
  }
}

/** A plugin.json text: a valid one, mutated. */
export function manifestText(prng: Prng, name: string): string {
  const base: Record<string, unknown> = {
    name,
    description: 'fuzzed',
    version: '1.0.0',
    input_schema: { type: 'object', properties: { q: { type: 'string' } } },
  };
  const fields = ['name', 'description', 'version', 'input_schema', 'output_schema', 'permissions', 'allowed_tools', 'when_to_use', 'author', 'abi_version'];
  const values = () =>
    prng.pick<unknown>([
      null, 5, -1, '', 'x'.repeat(prng.pick([10, 100_000])), [], {}, true, '\u0000', '\ud800', '../x', name,
      { type: 'array' }, { type: 'object', properties: { a: true } }, { type: 'object', $id: 'dup' }, { $ref: '#/definitions/missing' },
      { type: 'object', properties: { a: { type: 'string', pattern: '(' } } }, { network: 'yes' }, { read: ['/', '..'] },
    ]);
  for (let i = prng.int(3); i > 0; i--) {
    const field = prng.pick(fields);
    if (prng.chance(0.3)) delete base[field];
    else base[field] = values();
  }
  let text = JSON.stringify(base);
  const mutation = prng.int(8);
  if (mutation === 0) text = text.slice(0, prng.int(text.length));
  else if (mutation === 1) {
    // Past 64 levels plugin.json is refused before any schema compiles (E_INVALID_MANIFEST).
    const depth = prng.pick([20, 200, 1000, 10_000]);
    text = JSON.stringify({ ...base, input_schema: { type: 'object', properties: { deep: { type: 'object' } } } }).replace('"deep":{"type":"object"}', `"deep":${'{"items":'.repeat(depth)}{}${'}'.repeat(depth)}`);
  } else if (mutation === 2) {
    const at = prng.int(text.length);
    text = text.slice(0, at) + String.fromCharCode(prng.int(256)) + text.slice(at + 1);
  } else if (mutation === 3) text = `\ufeff${text}`;
  return text;
}

/** A JSON-RPC line a hostile or broken client might send (no trailing newline). */
export function jsonRpcLine(prng: Prng, counter: number): string {
  const id = prng.pick<unknown>([counter, `s${counter}`, null, {}, [], 1.5, -counter, 'x'.repeat(1000), true]);
  const method = prng.pick<unknown>(['ping', 'tools/list', 'tools/call', 'initialize', 'nope', 5, null, '', 'notifications/cancelled', 'resources/list']);
  const params = prng.pick<unknown>([undefined, {}, 5, 'x', [], null, { name: 'fuzz', arguments: { hex: '7b7d' } }, { name: 'fuzz', arguments: 5 }, { name: 5 }, { _meta: { progressToken: {} } }]);
  const message: Record<string, unknown> = { jsonrpc: prng.pick(['2.0', '2.0', '2.0', '1.0', 2, undefined]), id, method };
  if (params !== undefined) message.params = params;
  if (prng.chance(0.15)) delete message.id;
  if (prng.chance(0.1)) delete message.method;
  let text = JSON.stringify(message);
  switch (prng.int(8)) {
    case 0:
      return text.slice(0, prng.int(text.length));
    case 1:
      return `[${text},${text}]`;
    case 2:
      return prng.bytes(prng.int(100)).toString('latin1').replace(/\n/g, ' ');
    case 3:
    {
      const depth = prng.pick([10, 2000, 50_000]);
      return `${text.slice(0, -1)},"params":${'['.repeat(depth)}${prng.chance(0.5) ? ']'.repeat(depth) : ''}}`;
    }
    case 4:
      text = JSON.stringify({ ...message, params: { name: 'fuzz', arguments: { deep: JSON.parse(`${'['.repeat(1500)}${']'.repeat(1500)}`) } } });
      return text;
    default:
      return text;
  }
}
