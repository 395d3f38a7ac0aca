// scripts/build-examples.mjs (run by `npm install`): a failed example names the build tool's reason.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { FIXTURES_DIR, REPO_ROOT, tempDir } from '../helpers/fixtures.js';

const run = promisify(execFile);
const hasCargo = await run('cargo', ['--version']).then(
  () => true,
  () => false,
);

describe('build-examples script', () => {
  it('ends a cargo failure with cargo’s last lines, not an empty "(exit 1):"', { skip: !hasCargo && 'cargo is not installed' }, async () => {
    const examples = tempDir();
    cpSync(path.join(FIXTURES_DIR, 'cargo_broken'), path.join(examples, 'cargo_broken'), { recursive: true });
    const { stdout, stderr } = await run(process.execPath, [path.join(REPO_ROOT, 'scripts', 'build-examples.mjs'), examples, tempDir()]);
    assert.equal(stdout, '');
    const skipped = stderr.split('\n').findIndex((line) => line.startsWith('skillplug: skipped example cargo_broken:'));
    assert.ok(skipped >= 0, stderr);
    // The lines after the headline carry the compiler's own words, not just the exit status.
    const reason = stderr.split('\n').slice(skipped, skipped + 8).join('\n');
    assert.match(reason, /deliberate compile error/);
  });
});
