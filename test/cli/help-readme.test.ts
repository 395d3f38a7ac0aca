// `skillplug help` and the README name the same commands as taking the trust flags.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT, runCli } from '../helpers/fixtures.js';

function commandList(text: string, pattern: RegExp): string[] {
  const list = pattern.exec(text)?.[1];
  assert.ok(list, `no trust-flag line matching ${pattern}`);
  return list.split(',').map((c) => c.trim()).sort();
}

describe('help and README agree', () => {
  it('on which commands take --require-signature, --trusted-key and --strict', async () => {
    const help = await runCli(['help']);
    assert.equal(help.code, 0);
    const fromHelp = commandList(help.stdout, /^Trust flags \(([^)]*)\)/m);
    const fromReadme = commandList(readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8'), /\*\*Trust flags\*\* \(([^)]*)\)/);
    assert.deepEqual(fromReadme, fromHelp);
    assert.ok(fromHelp.includes('verify') && fromHelp.includes('serve'), 'the line is built from what the parser accepts');
  });

  it('a command left off the list refuses the flags', async () => {
    const r = await runCli(['trust', '--strict', '--json']);
    assert.equal(r.code, 2);
    assert.equal(JSON.parse(r.stdout).error.code, 'E_USAGE');
  });
});
