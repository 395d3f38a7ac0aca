// Seeded fuzz of JSON-RPC lines against skillplug serve: each is answered well-formed or not at all, and serve stays up.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildFixture, tempDir } from '../helpers/fixtures.js';
import { Prng, fuzzSettings } from '../helpers/prng.js';
import { RawServe, type Answer } from '../helpers/raw-serve.js';
import { Tally, jsonRpcLine } from './cases.js';

const { seed, cases } = fuzzSettings(40, 1 / 2);

function assertWellFormed(answer: Answer, line: string): void {
  assert.equal(answer.jsonrpc, '2.0', `answer to ${line.slice(0, 200)}`);
  assert.ok('id' in answer, 'an answer has an id (null when unknown)');
  if (answer.error) assert.ok(Number.isInteger(answer.error.code) && typeof answer.error.message === 'string');
  else assert.ok('result' in answer, `neither result nor error: ${JSON.stringify(answer).slice(0, 200)}`);
}

describe(`fuzz: JSON-RPC against serve (seed ${seed})`, () => {
  it(`answers ${cases} hostile lines well-formed and keeps serving`, async () => {
    const root = tempDir();
    await buildFixture(root, { source: 'fuzz', name: 'fuzz' });
    const serve = new RawServe(['--plugins-dir', root, '--workspace', tempDir(), '--sandbox', 'off', '--max-message-mb', '1']);
    const tally = new Tally('jsonrpc/serve');
    const prng = new Prng(seed + 3);
    try {
      for (let i = 0; i < cases; i++) {
        const line = jsonRpcLine(prng, i);
        await serve.write(`${line}\n`);
        // A ping after each line: everything answered before it must be well-formed, and it must come.
        await serve.write(`${JSON.stringify({ jsonrpc: '2.0', id: `alive-${i}`, method: 'ping' })}\n`);
        for (;;) {
          const answer = await serve.next();
          if (answer.id === `alive-${i}`) break;
          if ((answer as { method?: string }).method !== undefined) continue;
          assertWellFormed(answer, line);
          tally.add(answer.error ? String(answer.error.code) : 'result');
        }
        tally.add('line');
      }
    } finally {
      assert.equal((await serve.close()).code, 0);
      tally.report();
    }
  });
});
