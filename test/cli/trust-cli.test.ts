import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { buildFixture, runCli, tempDir } from '../helpers/fixtures.js';

describe('cli: signatures, trust, lock and the metadata registry', () => {
  let base: string;
  let plugins: string;
  let home: string;
  let cache: string;
  const env = () => ({ HOME: home, SKILLPLUG_CACHE_DIR: cache });

  before(async () => {
    base = tempDir();
    plugins = path.join(base, 'plugins');
    home = path.join(base, 'home');
    cache = path.join(base, 'cache');
    mkdirSync(plugins);
    mkdirSync(home);
    await buildFixture(plugins, { source: 'echo', name: 'echo' });
  });

  it('keygen, sign and verify: exit 0 when both signatures verify, 3 otherwise', async () => {
    const prefix = path.join(base, 'mykey');
    const keygen = await runCli(['keygen', '--out', prefix, '--json'], { env: env() });
    assert.equal(keygen.code, 0, keygen.stderr);
    assert.match(JSON.parse(keygen.stdout).key_id, /^[0-9A-F]{16}$/);
    assert.equal((await runCli(['keygen', '--out', prefix], { env: env() })).code, 2, 'refuses to overwrite');
    const dir = path.join(plugins, 'echo');
    const sign = await runCli(['sign', dir, '--key', `${prefix}.key`, '--json'], { env: env() });
    assert.equal(sign.code, 0, sign.stderr);
    assert.ok(existsSync(path.join(dir, 'plugin.json.minisig')) && existsSync(path.join(dir, 'libecho.so.minisig')));
    const ok = await runCli(['verify', 'echo', '--plugins-dir', plugins, '--pubkey', `${prefix}.pub`, '--json'], { env: env() });
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.equal(JSON.parse(ok.stdout).verified, true);
    const otherPrefix = path.join(base, 'other');
    await runCli(['keygen', '--out', otherPrefix], { env: env() });
    const wrongKey = await runCli(['verify', dir, '--pubkey', `${otherPrefix}.pub`, '--json'], { env: env() });
    assert.equal(wrongKey.code, 3);
    assert.equal(JSON.parse(wrongKey.stdout).error.code, 'E_SIGNATURE');
    const run = await runCli(['run', 'echo', '--plugins-dir', plugins, '--require-signature', '--trusted-key', `${prefix}.pub`, '--json'], { env: env() });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const refused = await runCli(['run', 'echo', '--plugins-dir', plugins, '--require-signature', '--trusted-key', `${otherPrefix}.pub`, '--json'], { env: env() });
    assert.equal(refused.code, 3);
    assert.equal(JSON.parse(refused.stdout).error.code, 'E_SIGNATURE');
    appendFileSync(path.join(dir, 'libecho.so'), 'tamper');
    const tampered = await runCli(['verify', dir, '--pubkey', `${prefix}.pub`, '--json'], { env: env() });
    assert.equal(tampered.code, 3);
  });

  it('trust and untrust record the canonical workspace in the user config', async () => {
    const ws = tempDir();
    await buildFixture(path.join(ws, '.vtcode', 'plugins'), { source: 'echo', name: 'local' });
    const listed = async () => JSON.parse((await runCli(['list', '--json'], { cwd: ws, env: env() })).stdout).plugins[0].status;
    assert.equal(await listed(), 'untrusted-workspace');
    const refused = await runCli(['run', 'local', '--json'], { cwd: ws, env: env() });
    assert.equal(refused.code, 3);
    assert.equal(JSON.parse(refused.stdout).error.code, 'E_UNTRUSTED_PATH');
    assert.equal((await runCli(['trust', path.join(ws, '.', '')], { env: env() })).code, 0);
    const config = JSON.parse(readFileSync(path.join(home, '.vtcode', 'skillplug.json'), 'utf8'));
    assert.ok(config.trusted_workspaces.includes(ws));
    assert.equal(await listed(), 'ok');
    assert.equal((await runCli(['run', 'local', '--json'], { cwd: ws, env: env() })).code, 0);
    assert.equal((await runCli(['untrust', ws], { env: env() })).code, 0);
    assert.equal(await listed(), 'untrusted-workspace');
  });

  it('lock pins every plugin; a changed one then fails with E_INTEGRITY (exit 3)', async () => {
    const ws = tempDir();
    const dir = await buildFixture(path.join(ws, 'p'), { source: 'echo', name: 'pinned' });
    const lock = await runCli(['lock', '--workspace', ws, '--plugins-dir', path.join(ws, 'p'), '--json'], { env: env() });
    assert.equal(lock.code, 0, lock.stderr);
    const file = JSON.parse(readFileSync(path.join(ws, 'skillplug.lock.json'), 'utf8'));
    assert.equal(file.plugins[0].path, 'p/pinned');
    assert.match(file.plugins[0].library_sha256, /^[0-9a-f]{64}$/);
    const args = ['run', 'pinned', '--workspace', ws, '--plugins-dir', path.join(ws, 'p'), '--json'];
    assert.equal((await runCli(args, { env: env() })).code, 0);
    appendFileSync(path.join(dir, 'plugin.json'), ' ');
    const changed = await runCli(args, { env: env() });
    assert.equal(changed.code, 3);
    assert.equal(JSON.parse(changed.stdout).error.code, 'E_INTEGRITY');
  });

  it('list --deep asks each build for metadata once, in an isolated host, and remembers crashes', async () => {
    const dir = tempDir();
    await buildFixture(dir, { source: 'echo', name: 'deep-ok' });
    await buildFixture(dir, { source: 'crash', name: 'deep-crash', defines: { CRASH_IN_METADATA: '1' } });
    const deep = async () => {
      const r = await runCli(['list', '--plugins-dir', dir, '--deep', '--json'], { env: env() });
      assert.equal(r.code, 0, r.stderr);
      return Object.fromEntries(JSON.parse(r.stdout).plugins.map((p: { name: string }) => [p.name, p]));
    };
    const first = await deep();
    assert.equal(first['deep-ok'].metadata.description, 'Echoes its context');
    assert.equal(first['deep-ok'].metadata_source, 'probe');
    assert.equal(first['deep-crash'].metadata_error.code, 'E_CRASHED');
    const second = await deep();
    assert.equal(second['deep-ok'].metadata_source, 'cache');
    assert.equal(second['deep-crash'].metadata_source, 'cache');
    assert.equal(second['deep-crash'].metadata_error.code, 'E_CRASHED');
    await buildFixture(dir, { source: 'crash', name: 'deep-crash' });
    const rebuilt = await deep();
    assert.equal(rebuilt['deep-crash'].metadata_source, 'probe');
    assert.equal(rebuilt['deep-crash'].metadata.name, 'deep-crash');
  });
});
