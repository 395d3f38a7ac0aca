// `skillplug test`: a plugin's tests/*.json cases run in the isolated host and report TAP.
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { readTestCases } from '../../src/authoring/plugin-tests.js';
import { scaffoldPlugin } from '../../src/authoring/scaffold.js';
import { runCli, tempDir } from '../helpers/fixtures.js';

const CRASHY_EXECUTE = `VTCODE_EXPORT const char *vtcode_plugin_execute(const char *ctx) {
  if (vtcode_json_bool(ctx, "input.crash", 0)) *(volatile int *)0 = 1;
  char *text = vtcode_json_string(ctx, "input.text");
  if (!text) return vtcode_result_error("no text");
  char output[64];
  snprintf(output, sizeof output, "{\\"bytes\\":%zu}", strlen(text));
  free(text);
  return vtcode_result_ok(output);
}
`;

/** A scaffolded C project whose plugin segfaults when its input says "crash", with no input schema. */
async function crashyProject(name: string): Promise<string> {
  const { dir } = await scaffoldPlugin({ name, lang: 'c', dir: tempDir() });
  const source = path.join(dir, 'plugin.c');
  const text = readFileSync(source, 'utf8');
  writeFileSync(source, text.slice(0, text.indexOf('VTCODE_EXPORT const char *vtcode_plugin_execute')) + CRASHY_EXECUTE);
  const manifest = JSON.parse(readFileSync(path.join(dir, 'plugin.json'), 'utf8')) as Record<string, unknown>;
  delete manifest.input_schema;
  writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify(manifest, null, 2));
  return dir;
}

function writeCase(dir: string, file: string, content: unknown): void {
  writeFileSync(path.join(dir, 'tests', file), typeof content === 'string' ? content : JSON.stringify(content));
}

const tapLines = (stdout: string): string[] => stdout.split('\n').filter((l) => /^(not )?ok \d+ /.test(l));

describe('skillplug test', () => {
  it('passes the case a new project is scaffolded with, in C and in a built plugin dir without sources', async () => {
    const parent = tempDir();
    assert.equal((await runCli(['new', 'passing', '--dir', parent])).code, 0);
    const dir = path.join(parent, 'passing');
    const r = await runCli(['test', dir]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^TAP version 13\n/);
    assert.match(r.stdout, /^1\.\.1$/m);
    assert.deepEqual(tapLines(r.stdout), ['ok 1 - counts the bytes of its text']);
    // The assembled plugin, with its tests beside it, runs as is: nothing to build.
    const built = path.join(dir, 'dist', 'passing');
    cpSync(path.join(dir, 'tests'), path.join(built, 'tests'), { recursive: true });
    const again = await runCli(['test', built]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
  });

  it('reports each failing case as not ok with what differed, and exits 1', async () => {
    const dir = await crashyProject('failing');
    writeCase(dir, 'output.json', { input: { text: 'four' }, expect: { output: { bytes: 99 } } });
    writeCase(dir, 'schema.json', { input: { text: 'four' }, expect: { schema: { type: 'object', required: ['lines'] } } });
    writeCase(dir, 'success.json', { input: {}, expect: { output: {} } });
    writeCase(dir, 'wants-failure.json', [
      { name: 'fails without text', input: {}, expect: { success: false } },
      { name: 'fails with text # SKIP', input: { text: 'x' }, expect: { success: false } },
    ]);
    const r = await runCli(['test', dir]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.deepEqual(tapLines(r.stdout), [
      'ok 1 - counts the bytes of its text',
      'not ok 2 - tests/output.json',
      'not ok 3 - tests/schema.json',
      'not ok 4 - tests/success.json',
      'ok 5 - fails without text',
      'not ok 6 - fails with text \\# SKIP',
    ]);
    assert.match(r.stdout, /^ {2}expected: \{"bytes":99\}\n {2}actual: \{"bytes":4\}$/m);
    assert.match(r.stdout, /^# pass 2\n# fail 4$/m);
  });

  it('a crashing case fails alone: it may expect E_CRASHED, and the next case gets a fresh host', async () => {
    const dir = await crashyProject('crashing');
    writeCase(dir, 'crash.json', [
      { name: 'crash expected', input: { crash: true }, expect: { code: 'E_CRASHED' } },
      { name: 'crash unexpected', input: { crash: true }, expect: { output: { bytes: 0 } } },
      { name: 'after the crashes', input: { text: 'ok' }, expect: { output: { bytes: 2 } } },
    ]);
    const r = await runCli(['test', dir]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.deepEqual(tapLines(r.stdout), ['ok 1 - counts the bytes of its text', 'ok 2 - crash expected', 'not ok 3 - crash unexpected', 'ok 4 - after the crashes']);
    assert.match(r.stdout, /actual: "E_CRASHED: /);
  });

  it('refuses malformed case files with E_USAGE naming the file, before anything builds', async () => {
    const bad: [string, unknown, string | undefined][] = [
      ['not-json.json', '{"input": ', undefined],
      ['not-object.json', [1], undefined],
      ['unknown-field.json', { input: {}, expect: { output: {} }, inputs: {} }, 'inputs'],
      ['no-expect.json', { input: {} }, 'expect'],
      ['empty-expect.json', { input: {}, expect: {} }, 'expect'],
      ['typo-expect.json', { input: {}, expect: { outptu: {} } }, 'expect.outptu'],
      ['code-and-output.json', { input: {}, expect: { code: 'E_CRASHED', output: {} } }, 'expect.code'],
      ['bad-code.json', { input: {}, expect: { code: 'crashed' } }, 'expect.code'],
      ['bad-schema.json', { input: {}, expect: { schema: { type: 'nonsense' } } }, 'expect.schema'],
      ['input-array.json', { input: [], expect: { output: {} } }, 'input'],
    ];
    for (const [file, content, field] of bad) {
      const { dir } = await scaffoldPlugin({ name: 'malformed', lang: 'c', dir: tempDir() });
      writeCase(dir, file, content);
      await assert.rejects(readTestCases(dir), (err: { code: string; data: { file: string; field?: string } }) => {
        assert.equal(err.code, 'E_USAGE', file);
        assert.equal(err.data.file, path.join(dir, 'tests', file));
        assert.equal(err.data.field, field, file);
        return true;
      });
      if (file === 'not-json.json') {
        const r = await runCli(['test', dir]);
        assert.equal(r.code, 2, r.stdout + r.stderr);
        assert.equal(r.stdout, '', 'nothing built or ran');
      }
    }
    const empty = path.join(tempDir(), 'empty');
    mkdirSync(empty);
    await assert.rejects(readTestCases(empty), { code: 'E_USAGE' });
  });

  it('with signatures required, runs its own build unsigned but not an unsigned plugin dir it did not build', async () => {
    const parent = tempDir();
    assert.equal((await runCli(['new', 'signed-policy', '--dir', parent])).code, 0);
    const dir = path.join(parent, 'signed-policy');
    const home = tempDir('skillplug-home-');
    mkdirSync(path.join(home, '.vtcode'));
    writeFileSync(path.join(home, '.vtcode', 'skillplug.json'), JSON.stringify({ require_signature: true }));
    const own = await runCli(['test', dir], { env: { HOME: home } });
    assert.equal(own.code, 0, own.stdout + own.stderr);
    assert.equal(own.stderr.match(/UNSIGNED/g)?.length, 1);
    const built = path.join(dir, 'dist', 'signed-policy');
    cpSync(path.join(dir, 'tests'), path.join(built, 'tests'), { recursive: true });
    const prebuilt = await runCli(['test', built], { env: { HOME: home } });
    assert.equal(prebuilt.code, 3, prebuilt.stdout + prebuilt.stderr);
    assert.match(prebuilt.stdout, /^Bail out! E_SIGNATURE/m);
  });
});
