import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { FIXTURES_DIR, REPO_ROOT, tempDir } from '../helpers/fixtures.js';

const run = promisify(execFile);

describe('C SDK helpers (sdk/c/vtcode_plugin.h)', () => {
  it('reads the context and builds valid result JSON', async () => {
    const exe = path.join(tempDir(), 'sdk_c_check');
    await run(process.env.CC ?? 'cc', ['-std=c99', '-Wall', '-Wextra', '-Werror', '-I', path.join(REPO_ROOT, 'sdk', 'c'), '-o', exe, path.join(FIXTURES_DIR, 'sdk_c_check.c')]);
    const { stdout } = await run(exe);
    const lines = Object.fromEntries(stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
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
});
