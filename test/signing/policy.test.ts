// A repository's plugin never replaces the user's own, nor brings back an older release of it.
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeEach, describe, it } from 'node:test';
import { ErrorCode, PluginLoader, type PluginLoaderOptions } from '../../src/index.js';
import { lockKey, sha256, writeLockWithDigest } from '../../src/signing/lock.js';
import { generateKeyPair } from '../../src/signing/minisign.js';
import { signPluginFiles } from '../../src/signing/plugin-signatures.js';
import { compareVersions } from '../../src/signing/policy.js';
import { STATEMENT_FILE } from '../../src/signing/statement.js';
import { buildFixture, tempDir } from '../helpers/fixtures.js';
import { loadOutcome } from '../helpers/assertions.js';

const outcome = (promise: Promise<unknown>): Promise<string> => loadOutcome(promise, true);

const pair = generateKeyPair();
const keyDir = tempDir();
const pub = path.join(keyDir, 'k.pub');
const key = path.join(keyDir, 'k.key');
writeFileSync(pub, pair.publicKeyText);
writeFileSync(key, pair.secretKeyText, { mode: 0o600 });

/** One signed release; v1 asks for far more than v2. */
async function release(parent: string, version: string, options: { name?: string; sign?: 'bound' | 'per-file' | 'none' } = {}): Promise<string> {
  const name = options.name ?? 'tool';
  const permissions = version.startsWith('1.') ? { network: true, fs_read: ['/'] } : {};
  const dir = await buildFixture(parent, { source: 'echo', name, manifest: { name, description: `release ${version}`, version, permissions } });
  appendFileSync(path.join(dir, `lib${name}.so`), `\0release ${version}`);
  if ((options.sign ?? 'bound') === 'none') return dir;
  await signPluginFiles(path.join(dir, 'plugin.json'), path.join(dir, `lib${name}.so`), key);
  if (options.sign === 'per-file') for (const f of [STATEMENT_FILE, `${STATEMENT_FILE}.minisig`]) rmSync(path.join(dir, f));
  return dir;
}

describe('workspace plugins against the user\'s own', () => {
  let ws: string;
  let home: string;
  const userConfig = (config: Record<string, unknown>) => {
    mkdirSync(path.join(home, '.vtcode'), { recursive: true });
    writeFileSync(path.join(home, '.vtcode', 'skillplug.json'), JSON.stringify(config));
  };
  const loader = (options: PluginLoaderOptions = {}) => new PluginLoader({ workspace: ws, home, isolation: 'none', trustedKeys: [pub], ...options });

  beforeEach(() => {
    ws = realpathSync(tempDir());
    home = tempDir();
  });

  it('refuses an old signed v1 shipped by a repo next to the user\'s v2, even with require_signature', async () => {
    const mine = await release(path.join(home, '.vtcode', 'plugins'), '2.0.0');
    const theirs = await release(path.join(ws, '.vtcode', 'plugins'), '1.0.0');
    for (const trusted of [false, true]) {
      userConfig({ trusted_workspaces: trusted ? [ws] : [] });
      const l = loader({ requireSignature: true });
      assert.equal(await outcome(l.loadPlugin(theirs)), `${ErrorCode.SHADOWING}:shadowing`, `workspace trusted: ${trusted}`);
      assert.equal((await l.findPlugin('tool')).path, mine, 'the name resolves to the user\'s plugin');
      const listed = await l.discoverPlugins();
      assert.deepEqual(listed.map((p) => [p.path, p.status, p.errors.map((e) => e.code)]).sort(), [
        [mine, 'ok', []],
        [theirs, 'error', [ErrorCode.SHADOWING]],
      ].sort());
    }
  });

  it('lets the user allow the shadowing, but never by an older version', async () => {
    await release(path.join(home, '.vtcode', 'plugins'), '2.0.0');
    const old = await release(path.join(ws, '.vtcode', 'plugins'), '1.0.0');
    const newer = await release(path.join(ws, '.agents', 'plugins'), '2.1.0');
    userConfig({ trusted_workspaces: [ws], allow_shadowing: ['tool'] });
    const l = loader({ requireSignature: true });
    assert.equal(await outcome(l.loadPlugin(old)), `${ErrorCode.ROLLBACK}:rollback`);
    assert.equal(await outcome(l.loadPlugin(newer)), 'loaded');
  });

  it('ignores allow_shadowing and pinned_locks set by a workspace config', async () => {
    const theirs = await release(path.join(ws, '.vtcode', 'plugins'), '2.0.0');
    await release(path.join(home, '.vtcode', 'plugins'), '2.0.0');
    mkdirSync(path.join(ws, '.vtcode'), { recursive: true });
    writeFileSync(path.join(ws, '.vtcode', 'skillplug.json'), JSON.stringify({ allow_shadowing: ['tool'], pinned_locks: { [ws]: '0'.repeat(64) } }));
    const warnings: string[] = [];
    const l = loader({ onWarning: (m) => warnings.push(m) });
    assert.deepEqual(l.security.allowShadowing, []);
    assert.ok(warnings.some((w) => w.includes('allow_shadowing') && w.includes('pinned_locks')));
    assert.equal(await outcome(l.loadPlugin(theirs)), `${ErrorCode.SHADOWING}:shadowing`);
  });

  it('refuses a version lower than the one the user\'s lock pins', async () => {
    const dir = await release(path.join(ws, '.vtcode', 'plugins'), '2.0.0');
    const entry = {
      name: 'tool',
      version: '2.0.0',
      path: lockKey(dir, ws),
      manifest_sha256: sha256(readFileSync(path.join(dir, 'plugin.json'))),
      library_sha256: sha256(readFileSync(path.join(dir, 'libtool.so'))),
    };
    const { sha256: digest } = writeLockWithDigest(ws, [entry]);
    userConfig({ trusted_workspaces: [ws], pinned_locks: { [ws]: digest } });
    rmSync(dir, { recursive: true });
    const old = await release(path.join(ws, '.vtcode', 'plugins'), '1.0.0');
    assert.equal(await outcome(loader().loadPlugin(old)), `${ErrorCode.ROLLBACK}:rollback`);
    userConfig({ trusted_workspaces: [ws] });
    assert.equal(await outcome(loader().loadPlugin(old)), `${ErrorCode.INTEGRITY}:changed`, 'a lock that is not the user\'s only restricts');
  });

  describe('with require_signature, a workspace plugin needs a bound statement or the user\'s lock', () => {
    it('refuses per-file signatures alone, which bind nothing together', async () => {
      const dir = await release(path.join(ws, '.vtcode', 'plugins'), '2.0.0', { sign: 'per-file' });
      userConfig({ trusted_workspaces: [ws] });
      assert.equal(await outcome(loader({ requireSignature: true }).loadPlugin(dir)), `${ErrorCode.SIGNATURE}:not-bound`);
      assert.equal(await outcome(loader().loadPlugin(dir)), 'loaded', 'without require_signature a trusted workspace needs no signature');
      const explicit = loader({ requireSignature: true, pluginsDirs: [path.join(ws, '.vtcode', 'plugins')] });
      assert.equal(await outcome(explicit.loadPlugin(dir)), 'loaded', 'an explicit dir is the user\'s choice');
    });

    it('accepts an unsigned plugin the user\'s lock pins, but not one a lock from the repo pins', async () => {
      const dir = await release(path.join(ws, '.vtcode', 'plugins'), '2.0.0', { sign: 'none' });
      const entry = {
        name: 'tool',
        version: '2.0.0',
        path: lockKey(dir, ws),
        manifest_sha256: sha256(readFileSync(path.join(dir, 'plugin.json'))),
        library_sha256: sha256(readFileSync(path.join(dir, 'libtool.so'))),
      };
      const { sha256: digest } = writeLockWithDigest(ws, [entry]);
      userConfig({ trusted_workspaces: [ws] });
      assert.equal(await outcome(loader({ requireSignature: true }).loadPlugin(dir)), `${ErrorCode.SIGNATURE}:not-bound`);
      userConfig({ trusted_workspaces: [ws], pinned_locks: { [ws]: digest } });
      assert.equal(await outcome(loader({ requireSignature: true }).loadPlugin(dir)), 'loaded');
    });

    it('in an untrusted workspace, needs the bound statement even without require_signature', async () => {
      const perFile = await release(path.join(ws, '.vtcode', 'plugins'), '2.0.0', { sign: 'per-file', name: 'perfile' });
      const bound = await release(path.join(ws, '.vtcode', 'plugins'), '2.0.0', { name: 'bound' });
      assert.equal(await outcome(loader().loadPlugin(perFile)), `${ErrorCode.UNTRUSTED_PATH}:untrusted-workspace`);
      assert.equal(await outcome(loader().loadPlugin(bound)), 'loaded');
    });
  });
});

describe('compareVersions', () => {
  it('orders versions the semver way and gives up on what is not a version', () => {
    assert.equal(compareVersions('1.0.0', '2.0.0'), -1);
    assert.equal(compareVersions('2.10.0', '2.9.9'), 1);
    assert.equal(compareVersions('2.0.0-rc.1', '2.0.0'), -1);
    assert.equal(compareVersions('2.0.0-rc.10', '2.0.0-rc.9'), 1);
    assert.equal(compareVersions('v2.0', '2.0.0'), 0);
    assert.equal(compareVersions('2.0.0+build.5', '2.0.0'), 0);
    assert.equal(compareVersions('banana', '2.0.0'), undefined);
  });
});
