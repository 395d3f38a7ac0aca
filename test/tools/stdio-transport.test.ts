// skillplug serve's stdin under hostile traffic: oversize lines and malformed JSON-RPC get answers, and the server stays up.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { idFromEdges } from '../../src/tools/stdio-transport.js';
import { tempDir } from '../helpers/fixtures.js';
import { RawServe } from '../helpers/raw-serve.js';

const MiB = 1024 * 1024;

describe('serve: message size limit', () => {
  it('takes a message over the SDK transport\'s 10 MiB default when the limit allows it', async () => {
    const serve = new RawServe(['--plugins-dir', tempDir(), '--workspace', tempDir()]);
    try {
      const answer = await serve.request(1, 'ping', { pad: 'x'.repeat(11 * MiB) });
      assert.deepEqual(answer.result, {});
      assert.deepEqual((await serve.request(2, 'ping')).result, {});
    } finally {
      assert.equal((await serve.close()).code, 0);
    }
  });

  it('answers a message over --max-message-mb with -32600 and its id, and keeps serving', async () => {
    const serve = new RawServe(['--plugins-dir', tempDir(), '--workspace', tempDir(), '--max-message-mb', '1']);
    try {
      // The id last, as the SDK client writes it; sent in pieces so the line spans many reads.
      const big = `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"x","arguments":{"pad":"${'y'.repeat(2 * MiB)}"}},"id":7}\n`;
      for (let at = 0; at < big.length; at += 256 * 1024) await serve.write(big.slice(at, at + 256 * 1024));
      const tooBig = await serve.next();
      assert.equal(tooBig.id, 7);
      assert.equal(tooBig.error?.code, -32600);
      assert.equal(tooBig.error?.data?.maxMessageBytes, MiB);
      // An oversize line whose id is not at an edge is answered with id null.
      await serve.write(`{"jsonrpc":"2.0","params":{"pad":"${'z'.repeat(2 * MiB)}"},"id":8,"method":"ping"}\n`);
      const anonymous = await serve.next();
      assert.equal(anonymous.id, null);
      assert.equal(anonymous.error?.code, -32600);
      assert.deepEqual((await serve.request(9, 'ping')).result, {});
    } finally {
      assert.equal((await serve.close()).code, 0);
    }
  });

  it('refuses a --max-message-mb that is not a positive whole number', async () => {
    const serve = new RawServe(['--max-message-mb', '0']);
    const exit = await serve.exited;
    assert.equal(exit.code, 2);
  });

  it('finds the id of an oversize request at either edge of its line', () => {
    assert.equal(idFromEdges('{"id": 12, "method":"x","params":{"a":', ''), 12);
    assert.equal(idFromEdges('{"jsonrpc":"2.0","method":"x","params":{"a":', '"b"}}, "id":"req-1" }'), 'req-1');
    assert.equal(idFromEdges('{"method":"x","params":{"id":3,', '"q":1}}'), null);
    assert.equal(idFromEdges('[1,2', '3]'), null);
  });
});

describe('serve: malformed JSON-RPC', () => {
  let serve: RawServe;
  before(() => {
    serve = new RawServe(['--plugins-dir', tempDir(), '--workspace', tempDir()]);
  });
  after(async () => {
    assert.equal((await serve.close()).code, 0);
  });

  const cases: Array<{ what: string; line: string; code: number; id: unknown }> = [
    { what: 'not JSON', line: '{"jsonrpc":"2.0","id":1,', code: -32700, id: null },
    { what: 'no method', line: '{"jsonrpc":"2.0","id":2}', code: -32600, id: 2 },
    { what: 'jsonrpc 1.0', line: '{"jsonrpc":"1.0","id":3,"method":"ping"}', code: -32600, id: 3 },
    { what: 'no jsonrpc', line: '{"id":4,"method":"ping"}', code: -32600, id: 4 },
    { what: 'a batch', line: '[{"jsonrpc":"2.0","id":5,"method":"ping"}]', code: -32600, id: null },
    { what: 'an empty batch', line: '[]', code: -32600, id: null },
    { what: 'a bare number', line: '5', code: -32600, id: null },
    { what: 'params: 5', line: '{"jsonrpc":"2.0","id":6,"method":"ping","params":5}', code: -32602, id: 6 },
    { what: 'params: "text"', line: '{"jsonrpc":"2.0","id":7,"method":"tools/list","params":"text"}', code: -32602, id: 7 },
    { what: 'method: 5', line: '{"jsonrpc":"2.0","id":8,"method":5}', code: -32600, id: 8 },
    { what: 'id: null on a request', line: '{"jsonrpc":"2.0","id":null,"method":"ping"}', code: -32600, id: null },
    { what: 'id: an object', line: '{"jsonrpc":"2.0","id":{},"method":"ping"}', code: -32600, id: null },
    { what: 'over-deep params', line: `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"x","arguments":{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}}}`, code: -32602, id: 9 },
    { what: 'a response without result or error', line: '{"jsonrpc":"2.0","id":10}', code: -32600, id: 10 },
    { what: 'NUL and a lone surrogate', line: '{"jsonrpc":"2.0","id":11,"method":"\\u0000\\ud800"}', code: -32601, id: 11 },
  ];
  for (const c of cases) {
    it(`answers ${c.what} with ${c.code} and stays up`, async () => {
      await serve.write(`${c.line}\n`);
      const answer = await serve.next();
      assert.equal(answer.error?.code, c.code, JSON.stringify(answer));
      assert.equal(answer.id, c.id);
      assert.deepEqual((await serve.request('alive', 'ping')).result, {});
    });
  }

  it('ignores blank lines and answers nothing to a malformed notification, then still serves', async () => {
    await serve.write('\n\r\n{"jsonrpc":"2.0","method":"notifications/initialized","params":7}\n');
    const answer = await serve.request('after', 'ping');
    assert.deepEqual(answer.result, {});
  });
});
