import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_RESULT_DEPTH, decodeResult, detachReturned, encodeContextText, firstInvalidUtf8, nestedDeeperThan, parseResultText, validateMetadata } from '../../src/abi/codec.js';
import { ErrorCode, PluginError } from '../../src/index.js';

const origin = { plugin: 'p', path: '/p' };
const bytes = (s: string | number[]) => ({ kind: 'bytes' as const, bytes: typeof s === 'string' ? new TextEncoder().encode(s) : Uint8Array.from(s) });
const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof PluginError);
    return err.code;
  }
  return 'no error';
};

describe('ABI codec', () => {
  it('encodes a context as JSON text', () => {
    const text = encodeContextText({ input: { s: 'é' }, workspace_root: null, config: {} }, origin);
    assert.deepEqual(JSON.parse(text), { input: { s: 'é' }, workspace_root: null, config: {} });
  });

  it('names the offset of the first invalid UTF-8 byte, agreeing with the strict decoder on what is valid', () => {
    const cases: [number[], number][] = [
      [[0x7b, 0x7d], 2],
      [[0x22, 0xc3, 0xa9, 0xff], 3], // 0xFF is never UTF-8
      [[0x61, 0x80], 1], // a stray continuation byte
      [[0xc0, 0xaf], 0], // an overlong '/'
      [[0x61, 0xed, 0xa0, 0x80], 1], // a surrogate
      [[0xf4, 0x90, 0x80, 0x80], 0], // past U+10FFFF
      [[0x61, 0x62, 0xe2, 0x82], 2], // truncated at the end
      [[0xf0, 0x9f, 0x98, 0x80], 4],
    ];
    const strict = new TextDecoder('utf-8', { fatal: true });
    for (const [input, expected] of cases) {
      const data = Uint8Array.from(input);
      assert.equal(firstInvalidUtf8(data), expected, JSON.stringify(input));
      const valid = (() => {
        try {
          strict.decode(data);
          return true;
        } catch {
          return false;
        }
      })();
      assert.equal(valid, expected === data.length, `decoder and scanner agree on ${JSON.stringify(input)}`);
    }
    try {
      decodeResult(bytes([0x7b, 0x22, 0xff, 0x22, 0x7d]), origin);
      assert.fail('invalid UTF-8 was accepted');
    } catch (err) {
      assert.ok(err instanceof PluginError && err.code === ErrorCode.INVALID_UTF8);
      assert.equal(err.data?.offset, 2);
    }
  });

  it('defaults config and workspace_root', () => {
    assert.deepEqual(JSON.parse(encodeContextText({ input: {} } as never, origin)), { input: {}, workspace_root: null, config: {} });
  });

  it('refuses contexts that are not JSON objects', () => {
    assert.equal(code(() => encodeContextText(null as never, origin)), ErrorCode.INVALID_INPUT);
    assert.equal(code(() => encodeContextText({ input: 'x' } as never, origin)), ErrorCode.INVALID_INPUT);
    assert.equal(code(() => encodeContextText({ input: {}, config: [] } as never, origin)), ErrorCode.INVALID_INPUT);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.equal(code(() => encodeContextText({ input: cyclic } as never, origin)), ErrorCode.INVALID_INPUT);
  });

  it('decodes results and reports each kind of bad result', () => {
    assert.deepEqual(decodeResult(bytes('{"success":true,"output":{"a":1},"files":[]}'), origin), { success: true, output: { a: 1 }, error: null, files: [] });
    assert.equal(code(() => decodeResult(bytes([0x7b, 0xff, 0x7d]), origin)), ErrorCode.INVALID_UTF8);
    assert.equal(code(() => decodeResult(bytes('nope'), origin)), ErrorCode.INVALID_JSON);
    assert.equal(code(() => decodeResult(bytes('[]'), origin)), ErrorCode.INVALID_RESULT);
    assert.equal(code(() => decodeResult(bytes('{"success":true,"files":[]}'), origin)), ErrorCode.INVALID_RESULT);
    assert.equal(code(() => decodeResult(bytes('{"success":true,"output":1}'), origin)), ErrorCode.INVALID_RESULT);
    assert.equal(code(() => decodeResult(bytes('{"success":1,"output":1,"files":[]}'), origin)), ErrorCode.INVALID_RESULT);
    assert.equal(code(() => decodeResult(bytes('{"success":true,"output":1,"files":[3]}'), origin)), ErrorCode.INVALID_RESULT);
    assert.equal(code(() => decodeResult(bytes('{"success":true,"output":1,"files":[],"error":5}'), origin)), ErrorCode.INVALID_RESULT);
  });

  it('decodes text already known to be UTF-8 the same way', () => {
    assert.deepEqual(decodeResult({ kind: 'text', text: '{"success":false,"output":null,"error":"x","files":["a"]}' }, origin), { success: false, output: null, error: 'x', files: ['a'] });
    assert.equal(code(() => decodeResult({ kind: 'text', text: '{' }, origin)), ErrorCode.INVALID_JSON);
  });

  it('detaches a returned string from its memory without changing how it decodes', () => {
    const memory = new TextEncoder().encode('{"success":true,"output":"é","files":[]}');
    const text = detachReturned({ kind: 'bytes', bytes: memory });
    const bad = detachReturned(bytes([0x7b, 0xff, 0x7d]));
    memory.fill(0x20);
    assert.deepEqual(decodeResult(text as { kind: 'text'; text: string }, origin), { success: true, output: 'é', error: null, files: [] });
    assert.equal(bad.kind, 'bytes');
    assert.equal(code(() => decodeResult(bad as { kind: 'bytes'; bytes: Uint8Array }, origin)), ErrorCode.INVALID_UTF8);
    assert.deepEqual(detachReturned({ kind: 'null' }), { kind: 'null' });
  });

  it('validates metadata, defaulting thread_safe to false', () => {
    const m = validateMetadata({ name: 'n', description: '', version: '1', abi_version: 1 }, origin);
    assert.equal(m.thread_safe, false);
    assert.equal(code(() => validateMetadata({ name: 'n', description: 'd', version: '1' }, origin)), ErrorCode.INVALID_METADATA);
    assert.equal(code(() => validateMetadata({ name: 'n', description: 'd', version: '1', abi_version: 1, thread_safe: 'yes' }, origin)), ErrorCode.INVALID_METADATA);
    assert.equal(code(() => validateMetadata({ name: 'n', description: 'd', version: '1', abi_version: 1, allowed_tools: [1] }, origin)), ErrorCode.INVALID_METADATA);
  });
});

describe('result nesting depth', () => {
  const nested = (depth: number) => `{"success":true,"output":{"v":${'['.repeat(depth)}${']'.repeat(depth)}},"error":null,"files":[]}`;

  it('refuses a result nested deeper than MAX_RESULT_DEPTH with E_INVALID_RESULT, as text and as bytes', () => {
    assert.equal(code(() => decodeResult({ kind: 'text', text: nested(10_000) }, origin)), ErrorCode.INVALID_RESULT);
    assert.equal(code(() => decodeResult(bytes(nested(MAX_RESULT_DEPTH)), origin)), ErrorCode.INVALID_RESULT);
    assert.equal(code(() => parseResultText(nested(10_000), origin)), ErrorCode.INVALID_RESULT);
  });

  it('accepts nesting within the limit', () => {
    assert.equal(code(() => decodeResult({ kind: 'text', text: nested(MAX_RESULT_DEPTH - 3) }, origin)), 'no error');
  });

  it('counts nesting through object values as through arrays, own properties only', () => {
    const deep = JSON.parse(`${'{"a":[0,'.repeat(25)}1${']}'.repeat(25)}`);
    assert.equal(nestedDeeperThan(deep, 49), true);
    assert.equal(nestedDeeperThan(deep, 50), false);
    const inherits = Object.create({ inherited: deep });
    inherits.own = { flat: true };
    assert.equal(nestedDeeperThan(inherits, 2), false);
  });
});

describe('nestedDeeperThan', () => {
  const chain = (depth: number, wrap: (inner: unknown) => unknown): unknown => {
    let value: unknown = 0;
    for (let i = 0; i < depth; i++) value = wrap(value);
    return value;
  };

  it('counts arrays and objects, mixed, a scalar nesting nothing', () => {
    assert.equal(nestedDeeperThan('text', 0), false);
    assert.equal(nestedDeeperThan(null, 0), false);
    assert.equal(nestedDeeperThan({}, 0), true);
    assert.equal(nestedDeeperThan({ a: 1, b: 'x' }, 1), false);
    for (const wrap of [(v: unknown) => [v], (v: unknown) => ({ v }), (v: unknown) => ({ a: 1, list: [2, v] })]) assert.equal(nestedDeeperThan(chain(10, wrap), 9), true);
    assert.equal(nestedDeeperThan(chain(10, (v) => [v]), 10), false);
    assert.equal(nestedDeeperThan(chain(10, (v) => ({ v })), 10), false);
    assert.equal(nestedDeeperThan(chain(5, (v) => ({ a: 1, list: [2, v] })), 10), false);
    assert.equal(nestedDeeperThan(chain(5, (v) => ({ a: 1, list: [2, v] })), 9), true);
  });

  it('finds the deep branch among shallow siblings, and counts only own properties', () => {
    assert.equal(nestedDeeperThan({ a: {}, b: [[]], c: { d: chain(8, (v) => [v]) } }, 9), true);
    assert.equal(nestedDeeperThan({ a: {}, b: [[]], c: { d: chain(8, (v) => [v]) } }, 10), false);
    const inherited = Object.create({ deep: chain(20, (v) => [v]) }) as Record<string, unknown>;
    inherited.own = 1;
    assert.equal(nestedDeeperThan(inherited, 1), false);
  });
});
