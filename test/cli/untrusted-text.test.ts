// Text from plugin files and plugin output never reaches a terminal able to drive it.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { ErrorCode } from '../../src/index.js';
import { buildFixture, runCli, tempDir } from '../helpers/fixtures.js';

// ESC, CR, BEL, C1 (8-bit CSI), DEL and bidi overrides: none may appear raw in what the CLI prints.
// biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for exactly these characters
const DRIVES_TERMINAL = /[\u001b\r\u0007\u007f\u0080-\u009f\u202a-\u202e\u2066-\u2069]/;
const hostileVersion = '1.0\r\u001b[2KUNTRUSTED? no: ok';
const hostileDescription = 'nice\u001b[8m hidden \u001b]52;c;ZXZpbA==\u0007 \u009b2J \u202egnp.exe\nok        fake-line';

describe('untrusted text in CLI output', () => {
  let plugins: string;

  before(async () => {
    plugins = path.join(tempDir(), 'plugins');
    mkdirSync(plugins);
    await Promise.all([
      buildFixture(plugins, { source: 'echo', name: 'hostile', manifest: { name: 'hostile', version: hostileVersion, description: hostileDescription } }),
      buildFixture(plugins, { source: 'echo', name: 'badname', manifest: { name: 'bad\u009bname\u001b[31m', version: '1', description: 'd' } }),
      buildFixture(plugins, { source: 'escape_crash', name: 'escaper' }),
      buildFixture(plugins, { source: 'deep_result', name: 'deep' }),
    ]);
  });

  it('list escapes plugin.json fields, one line per field; list --json keeps their exact values', async () => {
    const human = await runCli(['list', '--plugins-dir', plugins]);
    assert.equal(human.code, 0, human.stderr);
    assert.doesNotMatch(human.stdout, DRIVES_TERMINAL);
    assert.doesNotMatch(human.stdout, /^ok {8}fake-line/m);
    const json = await runCli(['list', '--plugins-dir', plugins, '--json']);
    assert.doesNotMatch(json.stdout, DRIVES_TERMINAL);
    const listed = JSON.parse(json.stdout) as { plugins: { name: string | null; version: string | null; description: string | null }[] };
    const hostile = listed.plugins.find((p) => p.name === 'hostile');
    assert.equal(hostile?.version, hostileVersion);
    assert.equal(hostile?.description, hostileDescription);
  });

  it('validate and inspect escape what they echo from plugin files', async () => {
    const validate = await runCli(['validate', path.join(plugins, 'badname')]);
    assert.equal(validate.code, 1);
    assert.doesNotMatch(validate.stdout, DRIVES_TERMINAL);
    const inspect = await runCli(['inspect', 'hostile', '--plugins-dir', plugins, '--sandbox', 'off']);
    assert.doesNotMatch(inspect.stdout + inspect.stderr, DRIVES_TERMINAL);
  });

  it('run escapes the stderr tail of a plugin that writes escapes and crashes', async () => {
    const r = await runCli(['run', 'escaper', '--plugins-dir', plugins, '--sandbox', 'off']);
    assert.equal(r.code, 4);
    assert.match(r.stderr, /E_CRASHED/);
    assert.match(r.stderr, /all good/, 'the tail is shown');
    assert.doesNotMatch(r.stderr, DRIVES_TERMINAL);
  });

  it('run --json answers a result nested 10,000 deep with E_INVALID_RESULT, not E_INTERNAL', async () => {
    for (const isolation of ['process', 'none']) {
      const r = await runCli(['run', 'deep', '--plugins-dir', plugins, '--sandbox', 'off', '--isolation', isolation, '--json']);
      assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, ErrorCode.INVALID_RESULT, isolation);
    }
  });
});
