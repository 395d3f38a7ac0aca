import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseLogLine } from '../../src/abi/plugin-log.js';
import { FIXTURES_DIR, REPO_ROOT, tempDir } from '../helpers/fixtures.js';

const run = promisify(execFile);

describe('C SDK helpers (sdk/c/vtcode_plugin.h)', () => {
  let checked: Promise<Record<string, string>> | undefined;
  let checkStderr = '';
  // One build and run of the check program serves every test below.
  const runCheck = (): Promise<Record<string, string>> =>
    (checked ??= (async () => {
      const exe = path.join(tempDir(), 'sdk_c_check');
      await run(process.env.CC ?? 'cc', ['-std=c99', '-Wall', '-Wextra', '-Wconversion', '-Werror', '-I', path.join(REPO_ROOT, 'sdk', 'c'), '-o', exe, path.join(FIXTURES_DIR, 'sdk_c_check.c')]);
      const { stdout, stderr } = await run(exe);
      checkStderr = stderr;
      return Object.fromEntries(stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    })());

  it('reads the context and builds valid result JSON', async () => {
    const lines = await runCheck();
    assert.equal(lines.name, 'A"dé😀');
    assert.equal(lines.n, '42.5');
    assert.equal(lines.flag, '1');
    assert.equal(lines.missing, '-1');
    assert.equal(lines.ws, '(null)');
    assert.equal(lines.nested, '1:{"k":[1,{"x":"]"}]}');
    assert.equal(lines.list1, 'two, three');
    assert.equal(lines.list2, '0');
    assert.equal(JSON.parse(lines.quote as string), 'tab\there "q" \\ \u0001');
    assert.deepEqual(JSON.parse(lines.ok as string), { success: true, output: { a: 1 }, error: null, files: [] });
    assert.deepEqual(JSON.parse(lines.error as string), { success: false, output: {}, error: 'bad "thing"', files: [] });
    assert.deepEqual(JSON.parse(lines.files as string).files, ['a.txt', 'dir/b "c".md']);
    assert.equal(lines.malformed, '0');
  });

  it('never writes invalid UTF-8: quoting and unescaping replace it with U+FFFD, and say where it was', async () => {
    const lines = await runCheck();
    assert.equal(JSON.parse(lines.quote_bad as string), 'a\uFFFDb\uFFFD\uFFFDc\uFFFD\uFFFD\uFFFDd😀');
    assert.equal(lines.invalid_at, '4,2');
    assert.equal(lines.lone, 'x\uFFFDy');
  });

  it('writes log lines skillplug parses: one line each, with the level prefix', async () => {
    await runCheck();
    assert.deepEqual(checkStderr.trimEnd().split('\n').map(parseLogLine), [
      { level: 'info', structured: true, message: 'indexed 7 files in two lines' },
      { level: 'error', structured: true, message: 'disk full' },
      { level: 'info', structured: true, message: 'an unknown level is info' },
    ]);
  });

  it('writes nested JSON with commas, escapes and numbers right, and turns a writer mistake into a failure result', async () => {
    const lines = await runCheck();
    assert.deepEqual(JSON.parse(lines.writer as string), {
      n: -42,
      big: 2 ** 64, // what 18446744073709551615 parses to
      pi: 3.25,
      nan: null,
      list: ['q"\n\u0001', true, null, {}, [1, 2], 'bad\uFFFD'],
    });
    const mistake = JSON.parse(lines.mistake as string) as { success: boolean; error: string };
    assert.equal(mistake.success, false);
    assert.ok(mistake.error.length > 0);
    assert.equal(lines.unclosed, '(null)');
    assert.notEqual(lines.unclosed_error, '(null)');
    assert.equal(lines.deep_error, '1');
    assert.deepEqual(JSON.parse(lines.result as string), { success: true, output: { text: 'ok' }, error: null, files: [] });
  });
});
