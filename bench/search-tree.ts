// A generated source tree for the code-search rows: deterministic, text only, with a known number of hits.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const WORDS = ['const', 'let', 'return', 'function', 'value', 'result', 'index', 'buffer', 'await', 'config', 'error', 'plugin', 'string', 'number', 'if', 'else', 'for', 'while'];

/** Writes `files` files of `lines` lines under root; every 97th line holds `needle`. Returns the matching line count. */
export function generateSearchTree(root: string, files: number, lines: number, needle: string): number {
  let seed = 12345;
  const next = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed;
  };
  let matches = 0;
  let counter = 0;
  for (let f = 0; f < files; f++) {
    const dir = path.join(root, `pkg${f % 40}`, `mod${f % 7}`);
    mkdirSync(dir, { recursive: true });
    const out: string[] = [];
    for (let l = 0; l < lines; l++) {
      const words: string[] = [];
      const count = 4 + (next() % 10);
      for (let w = 0; w < count; w++) words.push(WORDS[next() % WORDS.length] as string);
      if (++counter % 97 === 0) {
        words.splice(next() % words.length, 0, needle);
        matches++;
      }
      out.push(`${'  '.repeat(next() % 4)}${words.join(' ')};`);
    }
    writeFileSync(path.join(dir, `file${f}.ts`), `${out.join('\n')}\n`);
  }
  return matches;
}
