import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { REPO_ROOT, tempDir } from '../helpers/fixtures.js';

const run = promisify(execFile);
const hasCargo = await run('cargo', ['--version']).then(
  () => true,
  () => false,
);

describe('Rust SDK (sdk/rust)', () => {
  it('passes its own unit tests: JSON, panic guard, metadata', { skip: hasCargo ? false : 'cargo is not installed' }, async () => {
    const { stdout, stderr } = await run('cargo', ['test', '--offline', '--quiet'], {
      cwd: path.join(REPO_ROOT, 'sdk', 'rust'),
      env: { ...process.env, CARGO_TARGET_DIR: tempDir('skillplug-cargo-') },
    });
    const summary = `${stdout}\n${stderr}`;
    assert.match(summary, /test result: ok\. [1-9]\d* passed; 0 failed/);
  });
});
