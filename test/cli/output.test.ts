// writeOut writes straight to fd 1 until process.stdout is in use; what that write cannot finish goes to the stream.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';

const OUTPUT_MODULE = new URL('../../src/cli/output.js', import.meta.url).href;
// Far more than any pipe or socket buffer takes at once, so the first write cannot finish it.
const CHUNK_LINES = 8 * 1024;

// What a child writes with writeOut to its stdout, a pipe Node made non-blocking: each chunk of lines, then "end".
async function writtenThrough(lines: string[]): Promise<string> {
  const script = `
    import { writeOut } from ${JSON.stringify(OUTPUT_MODULE)};
    // Node makes a pipe non-blocking when it opens process.stdout on it, as any other module of the process may.
    process.stdout;
    for (const line of ${JSON.stringify(lines)}) await writeOut(line.repeat(${CHUNK_LINES}));
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
  return Buffer.concat(out).toString();
}

describe('writeOut', () => {
  it('keeps every byte in order when stdout is a non-blocking pipe that fills up', async () => {
    for (const lines of [
      [`A${'x'.repeat(1022)}\n`, `B${'x'.repeat(1022)}\n`],
      // Not ASCII: written whole, not in pieces of the reused buffer.
      [`\u00e9${'\u2713'.repeat(340)}\n`, `B${'x'.repeat(1022)}\n`],
    ]) {
      const text = await writtenThrough(lines);
      const expected = `${lines.map((line) => line.repeat(CHUNK_LINES)).join('')}end\n`;
      assert.equal(text.length, expected.length, JSON.stringify(lines[0]?.slice(0, 2)));
      assert.ok(text === expected, 'the output is the chunks in order');
    }
  });
});
