// writeOut writes straight to fd 1 until process.stdout is in use; what that write cannot finish goes to the stream.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';

const OUTPUT_MODULE = new URL('../../src/cli/output.js', import.meta.url).href;
// Far more than any pipe or socket buffer takes at once, so the first write cannot finish it.
const CHUNK_LINES = 8 * 1024;
const line = (tag: string): string => `${tag}${'x'.repeat(1022)}\n`;

describe('writeOut', () => {
  it('keeps every byte in order when stdout is a non-blocking pipe that fills up', async () => {
    const script = `
      import { writeOut } from ${JSON.stringify(OUTPUT_MODULE)};
      // Node makes a pipe non-blocking when it opens process.stdout on it, as any other module of the process may.
      process.stdout;
      await writeOut(${JSON.stringify(line('A'))}.repeat(${CHUNK_LINES}));
      await writeOut(${JSON.stringify(line('B'))}.repeat(${CHUNK_LINES}));
      await writeOut('end\\n');
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const [code] = (await once(child, 'close')) as [number | null];
    assert.equal(Buffer.concat(err).toString(), '');
    assert.equal(code, 0);
    const text = Buffer.concat(out).toString();
    assert.equal(text.length, 2 * CHUNK_LINES * 1024 + 4);
    assert.ok(text === `${line('A').repeat(CHUNK_LINES)}${line('B').repeat(CHUNK_LINES)}end\n`, 'the output is the chunks in order');
  });
});
