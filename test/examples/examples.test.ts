// The example skills, built the way `npm install` builds them, doing their real work on a known tree.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { PluginLoader, type JsonObject, type PluginResult } from '../../src/index.js';
import { buildPlugin } from '../../src/authoring/build.js';
import { REPO_ROOT, runCli, tempDir } from '../helpers/fixtures.js';

const hasCargo = await promisify(execFile)('cargo', ['--version']).then(
  () => true,
  () => false,
);

describe('example skills', () => {
  let out: string;
  let ws: string;
  let loader: PluginLoader;

  before(async () => {
    out = tempDir();
    for (const name of ['hello', 'code-search', ...(hasCargo ? ['file-stats'] : [])]) await buildPlugin({ dir: path.join(REPO_ROOT, 'examples', name), out });
    ws = tempDir();
    const write = (file: string, content: string | Buffer) => {
      mkdirSync(path.dirname(path.join(ws, file)), { recursive: true });
      writeFileSync(path.join(ws, file), content);
    };
    write('.gitignore', 'build/\n*.log\n# comment\n');
    write('a.ts', 'const needle = 1;\nconst hay = 2;\n');
    write('b.ts', 'no trailing newline NEEDLE');
    write('c.py', '');
    write('sub/d.rs', 'fn main() { /* needle */ }\n');
    write('bin.dat', Buffer.from([0x6e, 0x65, 0x65, 0x64, 0x6c, 0x65, 0, 1, 2, 0x0a]));
    write('bad-utf8.txt', Buffer.concat([Buffer.from('needle '), Buffer.from([0xff, 0xfe]), Buffer.from(' end\n')]));
    write('build/ignored.ts', 'needle\n');
    write('node_modules/m.js', 'needle\n');
    write('.git/HEAD', 'needle\n');
    write('debug.log', 'needle\n');
    symlinkSync('/etc', path.join(ws, 'link'));
    loader = new PluginLoader({ pluginsDirs: [out], defaultDirs: false, readConfig: false, workspace: ws });
  });

  async function call(name: string, input: JsonObject): Promise<PluginResult> {
    const plugin = await loader.loadPlugin(path.join(out, name));
    try {
      return await plugin.execute({ input, workspace_root: ws, config: {} });
    } finally {
      await plugin.close();
    }
  }

  it('hello greets', async () => {
    assert.deepEqual((await call('hello', { name: 'Ada' })).output, { greeting: 'Hello, Ada!' });
    assert.deepEqual((await call('hello', {})).output, { greeting: 'Hello, world!' });
  });

  it('file-stats counts files and lines per language, skipping ignored dirs and symlinks', { skip: hasCargo ? false : 'cargo is not installed' }, async () => {
    const result = await call('file-stats', { top: 2 });
    assert.equal(result.success, true, result.error ?? '');
    const out = result.output as {
      files: number;
      lines: number;
      languages: { language: string; files: number; lines: number }[];
      largest: { path: string }[];
      skipped_entries: number;
      truncated: boolean;
    };
    const byLang = Object.fromEntries(out.languages.map((l) => [l.language, [l.files, l.lines]]));
    assert.deepEqual(byLang, { TypeScript: [2, 3], Other: [1, 3], Rust: [1, 1], Text: [1, 1], Python: [1, 0], Binary: [1, 0] });
    assert.equal(out.files, 7, 'the six sources and .gitignore');
    assert.equal(out.skipped_entries, 4, '.git, node_modules, build/ and *.log');
    assert.equal(out.largest.length, 2);
    assert.equal(out.truncated, false);
    const all = await call('file-stats', { include_ignored: true });
    assert.equal((all.output as { files: number }).files, 11);
    const escaping = await call('file-stats', { path: '..' });
    assert.equal(escaping.success, false);
    assert.match(escaping.error ?? '', /leaves the workspace/);
  });

  it('file-stats is thread-safe and declares an input schema', { skip: hasCargo ? false : 'cargo is not installed' }, async () => {
    const plugin = await loader.loadPlugin(path.join(out, 'file-stats'));
    try {
      assert.equal(plugin.metadata.thread_safe, true);
      assert.equal((plugin.manifest.input_schema as { type: string }).type, 'object');
      const results = await Promise.all([1, 2, 3].map(() => plugin.execute({ input: {}, workspace_root: ws, config: {} })));
      assert.ok(results.every((r) => (r.output as { files: number }).files === 7));
    } finally {
      await plugin.close();
    }
  });

  it('code-search finds literal patterns, case-insensitively on request, with valid UTF-8 snippets', async () => {
    const exact = (await call('code-search', { patterns: ['needle'] })).output as { matches: { path: string; line: number; text: string }[]; files_scanned: number };
    const where = exact.matches.map((m) => `${m.path}:${m.line}`).sort();
    assert.deepEqual(where, ['a.ts:1', 'bad-utf8.txt:1', 'debug.log:1', 'build/ignored.ts:1', 'sub/d.rs:1'].sort());
    assert.equal(exact.matches.find((m) => m.path === 'bad-utf8.txt')?.text, 'needle ?? end');
    const folded = (await call('code-search', { patterns: ['NEEDLE'], ignore_case: true })).output as { matches: unknown[] };
    assert.equal(folded.matches.length, 6);
    const capped = (await call('code-search', { patterns: ['needle', 'hay'], max_results: 2 })).output as { matches: unknown[]; truncated: boolean };
    assert.equal(capped.matches.length, 2);
    assert.equal(capped.truncated, true);
    const bad = await call('code-search', { patterns: ['x'], path: '../..' });
    assert.equal(bad.success, false);
  });

  it('code-search over many files (scanned on threads when cores are free) answers as one plain pass in walk order would', async () => {
    // Inside the workspace (the sandbox lets the plugin read only that), after the tests above ran on it.
    const expected = new Map<string, number[]>();
    // More dirs than a batch holds (128), and files beside them, so batches end while dirs holding their files are still read.
    for (let i = 0; i < 300; i++) {
      const file = i % 10 === 0 ? `many/f${i}.txt` : `many/d${i % 150}/f${i}.txt`;
      // Lines long enough for the 16-byte search steps; a match on the last line, without a newline, on every 5th file.
      const lines = Array.from({ length: 40 }, (_, n) => (n % 11 === i % 11 ? `${'x'.repeat(n)} the needle_42 is here` : `${'y'.repeat(n + 20)} needle_4 no`));
      if (i % 5 === 0) lines.push('ends with needle_42');
      mkdirSync(path.join(ws, path.dirname(file)), { recursive: true });
      writeFileSync(path.join(ws, file), i % 5 === 0 ? lines.join('\n') : `${lines.join('\n')}\n`);
      expected.set(file, lines.flatMap((l, n) => (l.includes('needle_42') ? [n + 1] : [])));
    }
    const search = async (input: JsonObject) => {
      const plugin = await loader.loadPlugin(path.join(out, 'code-search'));
      try {
        return (await plugin.execute({ input: { ...input, path: 'many' }, workspace_root: ws, config: {} })).output as { matches: { path: string; line: number }[]; files_scanned: number; truncated: boolean };
      } finally {
        await plugin.close();
      }
    };
    const all = await search({ patterns: ['needle_42'], max_results: 100000 });
    const got = new Map<string, number[]>();
    for (const m of all.matches) got.set(m.path, [...(got.get(m.path) ?? []), m.line]);
    assert.deepEqual(new Map([...got].sort()), new Map([...expected].filter(([, l]) => l.length > 0).sort()));
    assert.equal(all.files_scanned, 300);
    assert.equal(all.truncated, false);
    // Truncated: exactly the first matches of the full answer, every time.
    for (let run = 0; run < 3; run++) {
      const some = await search({ patterns: ['needle_42'], max_results: 25 });
      assert.deepEqual(some.matches, all.matches.slice(0, 25));
      assert.equal(some.truncated, true);
    }
  });

  it('code-search answers calls that run at once as it answers each alone (it keeps memory between calls)', async () => {
    let needle0 = 0;
    for (let i = 0; i < 60; i++) {
      const lines = Array.from({ length: 50 }, (_, n) => (n % 7 === i % 7 ? `line ${n} with needle_${i % 3}` : `plain ${n}`));
      needle0 += lines.filter((l) => l.endsWith('needle_0')).length;
      mkdirSync(path.join(ws, 'at-once', `d${i % 9}`), { recursive: true });
      writeFileSync(path.join(ws, 'at-once', `d${i % 9}`, `f${i}.txt`), lines.join('\n'));
    }
    const inputs: JsonObject[] = [
      { patterns: ['needle_0'], max_results: 100000, path: 'at-once' },
      { patterns: ['needle_1', 'needle_2'], max_results: 100000, path: 'at-once' },
      { patterns: ['NEEDLE'], ignore_case: true, max_results: 17, path: 'at-once' },
      { patterns: ['needle'], path: '../..' },
    ];
    const plugin = await new PluginLoader({ pluginsDirs: [out], defaultDirs: false, readConfig: false, workspace: ws, maxConcurrency: 4 }).loadPlugin(path.join(out, 'code-search'));
    try {
      const alone: PluginResult[] = [];
      for (const input of inputs) alone.push(await plugin.execute({ input, workspace_root: ws, config: {} }));
      assert.equal(((alone[0] as PluginResult).output as { matches: unknown[] }).matches.length, needle0);
      for (let round = 0; round < 6; round++) {
        const together = await Promise.all([...inputs, ...inputs].map((input) => plugin.execute({ input, workspace_root: ws, config: {} })));
        assert.deepEqual(together, [...alone, ...alone]);
      }
    } finally {
      await plugin.close();
    }
  });

  it('code-search rejects input outside its schema before running', async () => {
    const plugin = await loader.loadPlugin(path.join(out, 'code-search'));
    try {
      await assert.rejects(plugin.execute({ input: { patterns: [] }, workspace_root: ws, config: {} }), /input_schema/);
    } finally {
      await plugin.close();
    }
  });

  it('the demo runs the examples and shows a crash and a timeout contained', async () => {
    const r = await runCli(['demo']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /Hello, agent!/);
    assert.match(r.stdout, /crash: error\[E_CRASHED\] \(SIGSEGV\)/);
    assert.match(r.stdout, /hang: error\[E_TIMEOUT\]/);
    assert.match(r.stdout, /Where next/);
  });
});
