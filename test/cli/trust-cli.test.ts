import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { buildFixture, runCli, tempDir } from '../helpers/fixtures.js';

const execFileAsync = promisify(execFile);
/** Runs the stock minisign tool; resolves with its exit code. */
const minisign = (args: string[]): Promise<number> => execFileAsync('minisign', args).then(() => 0, (err: { code?: number | string }) => (typeof err.code === 'number' ? err.code : -1));
const hasMinisign = (await minisign(['-v'])) === 0;
const skipInterop = hasMinisign ? false : 'the minisign tool is not installed (apt-get install minisign)';

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
    const withPublic = await runCli(['sign', dir, '--key', `${prefix}.pub`, '--json'], { env: env() });
    assert.equal(JSON.parse(withPublic.stdout).error.data.reason, 'public-key', 'a .pub given as --key is named as such');
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

  describe('the statement with the stock minisign tool, both ways', { skip: skipInterop }, () => {
    let keyDir: string;
    before(async () => {
      keyDir = tempDir();
      assert.equal(await minisign(['-G', '-W', '-p', path.join(keyDir, 'k.pub'), '-s', path.join(keyDir, 'k.key')]), 0);
    });

    it('files signed by minisign alone verify, and verify says they are not bound', async () => {
      const dir = await buildFixture(tempDir(), { source: 'echo', name: 'stock' });
      for (const f of ['plugin.json', 'libstock.so']) assert.equal(await minisign(['-S', '-s', path.join(keyDir, 'k.key'), '-m', path.join(dir, f)]), 0);
      const r = await runCli(['verify', dir, '--pubkey', path.join(keyDir, 'k.pub'), '--json'], { env: env() });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const out = JSON.parse(r.stdout);
      assert.equal(out.verified, true);
      assert.equal(out.bound, false);
      const text = await runCli(['verify', dir, '--pubkey', path.join(keyDir, 'k.pub')], { env: env() });
      assert.equal(text.code, 0);
      assert.match(text.stdout, /not bound/);
    });

    it('skillplug sign writes a statement minisign -V checks, beside per-file signatures it checks too', async () => {
      const dir = await buildFixture(tempDir(), { source: 'echo', name: 'ours' });
      const sign = await runCli(['sign', dir, '--key', path.join(keyDir, 'k.key'), '--json'], { env: env() });
      assert.equal(sign.code, 0, sign.stderr);
      for (const f of ['skillplug-statement.json', 'plugin.json', 'libours.so']) assert.equal(await minisign(['-V', '-p', path.join(keyDir, 'k.pub'), '-m', path.join(dir, f)]), 0, f);
      const r = await runCli(['verify', dir, '--pubkey', path.join(keyDir, 'k.pub'), '--json'], { env: env() });
      assert.equal(JSON.parse(r.stdout).bound, true);
      // The statement binds: a file minisign alone would still accept fails skillplug's verify.
      writeFileSync(path.join(dir, 'NOTES.md'), 'added after signing\n');
      const added = await runCli(['verify', dir, '--pubkey', path.join(keyDir, 'k.pub'), '--json'], { env: env() });
      assert.equal(added.code, 3);
      assert.equal(JSON.parse(added.stdout).error.code, 'E_SIGNATURE');
    });

    it('a statement written by skillplug statement and signed by minisign -S binds', async () => {
      const dir = await buildFixture(tempDir(), { source: 'echo', name: 'handmade' });
      const made = await runCli(['statement', dir, '--json'], { env: env() });
      assert.equal(made.code, 0, made.stderr);
      assert.equal(await minisign(['-S', '-s', path.join(keyDir, 'k.key'), '-m', JSON.parse(made.stdout).statement]), 0);
      const r = await runCli(['verify', dir, '--pubkey', path.join(keyDir, 'k.pub'), '--json'], { env: env() });
      assert.equal(r.code, 0, r.stdout);
      assert.equal(JSON.parse(r.stdout).bound, true);
      const ws = realpathSync(tempDir());
      const run = await runCli(['run', dir, '--plugins-dir', path.dirname(dir), '--workspace', ws, '--require-signature', '--trusted-key', path.join(keyDir, 'k.pub'), '--json'], { env: env() });
      assert.equal(run.code, 0, run.stdout + run.stderr);
    });
  });

  it('list judges by the policy in force: under --require-signature an unsigned plugin is an E_SIGNATURE error', async () => {
    const dir = tempDir();
    const prefix = path.join(tempDir(), 'k');
    await runCli(['keygen', '--out', prefix], { env: env() });
    const signed = await buildFixture(dir, { source: 'echo', name: 'signed' });
    await buildFixture(dir, { source: 'echo', name: 'unsigned' });
    assert.equal((await runCli(['sign', signed, '--key', `${prefix}.key`], { env: env() })).code, 0);
    // An empty workspace of its own: the repo's own .vtcode/plugins (the built examples) must not count.
    const workspace = tempDir();
    const args = ['list', '--plugins-dir', dir, '--workspace', workspace, '--require-signature', '--trusted-key', `${prefix}.pub`];
    const r = await runCli([...args, '--json'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const byName = Object.fromEntries(JSON.parse(r.stdout).plugins.map((p: { name: string; status: string; errors: { code: string }[] }) => [p.name, [p.status, p.errors.map((e) => e.code)]]));
    assert.deepEqual(byName, { signed: ['ok', []], unsigned: ['error', ['E_SIGNATURE']] });
    const text = await runCli(args, { env: env() });
    assert.match(text.stdout, /^ERROR +unsigned /m);
    const relaxed = JSON.parse((await runCli(['list', '--plugins-dir', dir, '--workspace', workspace, '--json'], { env: env() })).stdout);
    assert.ok(relaxed.plugins.every((p: { status: string }) => p.status === 'ok'), 'without the policy both are fine');
  });

  it('a malformed workspace config leaves the user\'s own plugins listed and running', async () => {
    const ws = realpathSync(tempDir());
    const ownHome = tempDir();
    await buildFixture(path.join(ownHome, '.vtcode', 'plugins'), { source: 'echo', name: 'mine' });
    await buildFixture(path.join(ws, '.vtcode', 'plugins'), { source: 'echo', name: 'theirs' });
    writeFileSync(path.join(ws, '.vtcode', 'skillplug.json'), '{ not json');
    writeFileSync(path.join(ws, 'skillplug.lock.json'), '[]');
    const ownEnv = { HOME: ownHome, SKILLPLUG_CACHE_DIR: cache };
    const listed = await runCli(['list', '--json'], { cwd: ws, env: ownEnv });
    assert.equal(listed.code, 0, listed.stderr);
    const byName = Object.fromEntries(JSON.parse(listed.stdout).plugins.map((p: { name: string; status: string; errors: { code: string }[] }) => [p.name, [p.status, p.errors.map((e) => e.code)]]));
    assert.deepEqual(byName.mine, ['ok', []]);
    assert.equal(byName.theirs[0], 'error');
    assert.equal((await runCli(['run', 'mine', '--json'], { cwd: ws, env: ownEnv })).code, 0);
    const refused = await runCli(['run', 'theirs', '--json'], { cwd: ws, env: ownEnv });
    assert.equal(refused.code, 2, 'a config error exits 2');
    assert.equal(JSON.parse(refused.stdout).error.code, 'E_CONFIG');
  });

  it('lock records the lock as the user\'s in the user config', async () => {
    const ws = realpathSync(tempDir());
    const ownHome = tempDir();
    await buildFixture(path.join(ws, 'p'), { source: 'echo', name: 'pinned' });
    const r = await runCli(['lock', '--workspace', ws, '--plugins-dir', path.join(ws, 'p'), '--json'], { env: { HOME: ownHome, SKILLPLUG_CACHE_DIR: cache } });
    assert.equal(r.code, 0, r.stderr);
    const config = JSON.parse(readFileSync(path.join(ownHome, '.vtcode', 'skillplug.json'), 'utf8'));
    const { createHash } = await import('node:crypto');
    assert.equal(config.pinned_locks[ws], createHash('sha256').update(readFileSync(path.join(ws, 'skillplug.lock.json'))).digest('hex'));
  });

  it('FIFOs planted as the workspace config, lock and a signature hang no command', { skip: process.platform === 'win32' ? 'Windows has no FIFOs (mkfifo)' : false }, async () => {
    const ws = realpathSync(tempDir());
    const ownHome = tempDir();
    await buildFixture(path.join(ownHome, '.vtcode', 'plugins'), { source: 'echo', name: 'mine' });
    const theirs = await buildFixture(path.join(ws, '.vtcode', 'plugins'), { source: 'echo', name: 'theirs' });
    for (const fifo of [path.join(ws, '.vtcode', 'skillplug.json'), path.join(ws, 'skillplug.lock.json'), path.join(theirs, 'plugin.json.minisig')]) await execFileAsync('mkfifo', [fifo]);
    const ownEnv = { HOME: ownHome, SKILLPLUG_CACHE_DIR: cache };
    const listed = await runCli(['list', '--json', '--require-signature'], { cwd: ws, env: ownEnv });
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout).plugins.map((p: { name: string; status: string }) => [p.name, p.status]).sort(), [['mine', 'error'], ['theirs', 'error']], 'both unsigned under --require-signature');
    assert.equal((await runCli(['run', 'mine', '--json'], { cwd: ws, env: ownEnv })).code, 0);
    const prefix = path.join(tempDir(), 'k');
    await runCli(['keygen', '--out', prefix], { env: ownEnv });
    const verified = await runCli(['verify', theirs, '--pubkey', `${prefix}.pub`, '--json'], { cwd: ws, env: ownEnv });
    assert.equal(JSON.parse(verified.stdout).error.code, 'E_SIGNATURE');
  });
});
