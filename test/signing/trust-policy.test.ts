import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { ErrorCode, PluginError, PluginLoader, type IsolationMode, type PluginLoaderOptions } from '../../src/index.js';
import { mergeSecurity } from '../../src/config/index.js';
import { loaderSeams } from '../../src/loader/seams.js';
import { lockKey, sha256, writeLock } from '../../src/signing/lock.js';
import { generateKeyPair } from '../../src/signing/minisign.js';
import { signPluginFiles } from '../../src/signing/plugin-signatures.js';
import { buildFixture, tempDir } from '../helpers/fixtures.js';
import { loadOutcome } from '../helpers/assertions.js';

const code = (promise: Promise<unknown>): Promise<string> => loadOutcome(promise);

function keyFiles(dir: string, name: string): { pub: string; key: string } {
  const pair = generateKeyPair();
  const pub = path.join(dir, `${name}.pub`);
  const key = path.join(dir, `${name}.key`);
  writeFileSync(pub, pair.publicKeyText);
  writeFileSync(key, pair.secretKeyText, { mode: 0o600 });
  return { pub, key };
}

describe('trust policy', () => {
  let base: string;
  let plugins: string;
  let home: string;
  let trusted: { pub: string; key: string };
  let stranger: { pub: string; key: string };

  const loader = (options: PluginLoaderOptions = {}) =>
    new PluginLoader({ pluginsDirs: [plugins], home, workspace: base, defaultDirs: false, isolation: 'none', ...options });

  async function plugin(name: string, sign?: { key: string }): Promise<string> {
    const dir = await buildFixture(plugins, { source: 'echo', name });
    if (sign) await signPluginFiles(path.join(dir, 'plugin.json'), path.join(dir, `lib${name}.so`), sign.key);
    return dir;
  }

  before(() => {
    base = tempDir();
    plugins = path.join(base, 'plugins');
    home = path.join(base, 'home');
    mkdirSync(plugins);
    mkdirSync(home);
    trusted = keyFiles(base, 'trusted');
    stranger = keyFiles(base, 'stranger');
  });

  it('under requireSignature, loads only plugins signed by a trusted key', async () => {
    const signed = await plugin('signed', trusted);
    const unsigned = await plugin('unsigned');
    const foreign = await plugin('foreign', stranger);
    const strict = { requireSignature: true, trustedKeys: [trusted.pub] };
    assert.equal(await code(loader(strict).loadPlugin(signed)), 'loaded');
    assert.equal(await code(loader(strict).loadPlugin(unsigned)), ErrorCode.SIGNATURE);
    assert.equal(await code(loader(strict).loadPlugin(foreign)), ErrorCode.SIGNATURE);
    assert.equal(await code(loader({ requireSignature: true }).loadPlugin(signed)), ErrorCode.SIGNATURE, 'no trusted key at all');
  });

  it('refuses a signed plugin whose files were tampered with, whatever the policy', async () => {
    const dir = await plugin('tampered', trusted);
    appendFileSync(path.join(dir, 'libtampered.so'), 'x');
    assert.equal(await code(loader({ requireSignature: true, trustedKeys: [trusted.pub] }).loadPlugin(dir)), ErrorCode.SIGNATURE);
    assert.equal(await code(loader({ trustedKeys: [trusted.pub] }).loadPlugin(dir)), ErrorCode.SIGNATURE);
    const manifestOnly = await plugin('manifest-tampered', trusted);
    writeFileSync(path.join(manifestOnly, 'plugin.json'), JSON.stringify({ name: 'manifest-tampered', description: 'changed', version: '9' }));
    assert.equal(await code(loader({ trustedKeys: [trusted.pub] }).loadPlugin(manifestOnly)), ErrorCode.SIGNATURE);
  });

  it('without requireSignature, loads unsigned plugins and plugins signed by keys it does not know', async () => {
    const warnings: string[] = [];
    assert.equal(await code(loader().loadPlugin(await plugin('plain'))), 'loaded');
    assert.equal(await code(loader({ onWarning: (m) => warnings.push(m) }).loadPlugin(await plugin('other-key', stranger))), 'loaded');
    assert.ok(warnings.some((w) => w.includes('do not trust')));
  });

  it('reads require_signature and trusted_keys from the user config; a workspace config cannot weaken them', async () => {
    const signed = await plugin('configured', trusted);
    const unsigned = await plugin('configured-unsigned');
    mkdirSync(path.join(home, '.vtcode'), { recursive: true });
    writeFileSync(path.join(home, '.vtcode', 'skillplug.json'), JSON.stringify({ require_signature: true, trusted_keys: [trusted.pub] }));
    mkdirSync(path.join(base, '.vtcode'), { recursive: true });
    writeFileSync(path.join(base, '.vtcode', 'skillplug.json'), JSON.stringify({ require_signature: false, trusted_keys: [stranger.pub] }));
    try {
      const warnings: string[] = [];
      const l = loader({ onWarning: (m) => warnings.push(m) });
      assert.equal(l.security.requireSignature, true);
      assert.deepEqual(l.security.trustedKeys, [trusted.pub]);
      assert.ok(warnings.some((w) => w.includes('can only add restrictions')));
      assert.equal(await code(l.loadPlugin(signed)), 'loaded');
      assert.equal(await code(l.loadPlugin(unsigned)), ErrorCode.SIGNATURE);
    } finally {
      rmSync(path.join(home, '.vtcode'), { recursive: true });
      rmSync(path.join(base, '.vtcode'), { recursive: true });
    }
  });

  it('lets a workspace config tighten the policy', () => {
    const merged = mergeSecurity({}, { require_signature: true, strict: true, sandbox: 'required' }, { sandbox: 'off' }, () => {}, 'ws');
    assert.deepEqual(merged, { requireSignature: true, trustedKeys: [], trustedWorkspaces: [], allowShadowing: [], strict: true, sandbox: 'required' });
  });

  it('reports a broken config file with E_CONFIG', () => {
    const badHome = tempDir();
    mkdirSync(path.join(badHome, '.vtcode'));
    writeFileSync(path.join(badHome, '.vtcode', 'skillplug.json'), '{"require_signature": "yes"}');
    assert.throws(() => new PluginLoader({ home: badHome }), (e: unknown) => e instanceof PluginError && e.code === ErrorCode.CONFIG);
  });

  for (const isolation of ['none', 'process'] as IsolationMode[]) {
    it(`loads the verified bytes, not a library swapped in after verification (${isolation})`, async () => {
      const dir = await plugin(`swap-${isolation}`, trusted);
      const evil = await buildFixture(tempDir(), { source: 'marker', name: `swap-${isolation}` });
      const marker = path.join(tempDir(), 'marker');
      process.env.SKILLPLUG_TEST_MARKER = marker;
      const libraryFile = path.join(dir, `libswap-${isolation}.so`);
      let swapped = false;
      const l = loader({
        isolation,
        sandbox: 'off',
        env: { SKILLPLUG_TEST_MARKER: marker },
        requireSignature: true,
        trustedKeys: [trusted.pub],
      });
      loaderSeams.afterVerify = () => {
        rmSync(libraryFile);
        copyFileSync(path.join(evil, `libswap-${isolation}.so`), libraryFile);
        swapped = true;
      };
      const loaded = await l.loadPlugin(dir).finally(() => {
        delete loaderSeams.afterVerify;
      });
      try {
        assert.ok(swapped, 'the hook ran');
        assert.equal(loaded.metadata.description, 'Echoes its context', 'the verified library answered');
        const result = await loaded.execute({ input: { x: 1 }, workspace_root: null, config: {} });
        assert.deepEqual((result.output as { ctx: { input: unknown } }).ctx.input, { x: 1 });
        assert.equal(existsSync(marker), false, 'the swapped library ran');
      } finally {
        await loaded.close();
        delete process.env.SKILLPLUG_TEST_MARKER;
      }
      // The next load verifies again and refuses the swapped bytes.
      assert.equal(await code(loader({ requireSignature: true, trustedKeys: [trusted.pub] }).loadPlugin(dir)), ErrorCode.SIGNATURE);
    });
  }

  describe('workspace trust', () => {
    let ws: string;
    let wsHome: string;

    before(async () => {
      ws = tempDir();
      wsHome = tempDir();
      const dir = await buildFixture(path.join(ws, '.vtcode', 'plugins'), { source: 'echo', name: 'cloned' });
      await buildFixture(path.join(ws, '.agents', 'plugins'), { source: 'echo', name: 'agents-cloned' });
      const signedDir = await buildFixture(path.join(ws, '.vtcode', 'plugins'), { source: 'echo', name: 'cloned-signed' });
      await signPluginFiles(path.join(signedDir, 'plugin.json'), path.join(signedDir, 'libcloned-signed.so'), trusted.key);
      assert.ok(existsSync(dir));
    });

    const wsLoader = (options: PluginLoaderOptions = {}) => new PluginLoader({ workspace: ws, home: wsHome, isolation: 'none', ...options });

    it('lists workspace plugins as untrusted-workspace until the user trusts the workspace', async () => {
      const found = await wsLoader().discoverPlugins();
      assert.deepEqual(found.map((p) => [p.name, p.status]).sort(), [
        ['agents-cloned', 'untrusted-workspace'],
        ['cloned', 'untrusted-workspace'],
        ['cloned-signed', 'untrusted-workspace'],
      ]);
      assert.equal(found[0]?.errors[0]?.code, ErrorCode.UNTRUSTED_PATH);
    });

    it('refuses to load them with E_UNTRUSTED_PATH', async () => {
      assert.equal(await code(wsLoader().loadPlugin(path.join(ws, '.vtcode', 'plugins', 'cloned'))), ErrorCode.UNTRUSTED_PATH);
      assert.equal(await code(wsLoader().loadPlugin(path.join(ws, '.agents', 'plugins', 'agents-cloned'))), ErrorCode.UNTRUSTED_PATH);
    });

    it('loads plugins signed by a trusted key without trusting the workspace', async () => {
      const l = wsLoader({ trustedKeys: [trusted.pub] });
      const found = await l.discoverPlugins();
      assert.equal(found.find((p) => p.name === 'cloned-signed')?.status, 'ok');
      assert.equal(await code(l.loadPlugin(path.join(ws, '.vtcode', 'plugins', 'cloned-signed'))), 'loaded');
      assert.equal(await code(l.loadPlugin(path.join(ws, '.vtcode', 'plugins', 'cloned'))), ErrorCode.UNTRUSTED_PATH);
    });

    it('loads them once the user trusts the workspace, and an explicit dir needs no trust', async () => {
      mkdirSync(path.join(wsHome, '.vtcode'), { recursive: true });
      writeFileSync(path.join(wsHome, '.vtcode', 'skillplug.json'), JSON.stringify({ trusted_workspaces: [ws] }));
      try {
        assert.equal(await code(wsLoader().loadPlugin(path.join(ws, '.vtcode', 'plugins', 'cloned'))), 'loaded');
      } finally {
        rmSync(path.join(wsHome, '.vtcode'), { recursive: true });
      }
      const explicit = wsLoader({ pluginsDirs: [path.join(ws, '.vtcode', 'plugins')] });
      assert.equal(await code(explicit.loadPlugin(path.join(ws, '.vtcode', 'plugins', 'cloned'))), 'loaded');
    });
  });

  describe('lock file', () => {
    it('refuses changed and unlocked plugins with E_INTEGRITY', async () => {
      const ws = tempDir();
      const dir = path.join(ws, 'plugins');
      const pinned = await buildFixture(dir, { source: 'echo', name: 'pinned' });
      const changed = await buildFixture(dir, { source: 'echo', name: 'changed' });
      const entry = (d: string, name: string) => ({
        name,
        version: '1.0.0',
        path: lockKey(d, ws),
        manifest_sha256: sha256(readFileSync(path.join(d, 'plugin.json'))),
        library_sha256: sha256(readFileSync(path.join(d, `lib${name}.so`))),
      });
      writeLock(ws, [entry(pinned, 'pinned'), entry(changed, 'changed')]);
      const unlocked = await buildFixture(dir, { source: 'echo', name: 'unlocked' });
      appendFileSync(path.join(changed, 'libchanged.so'), 'x');
      const l = new PluginLoader({ workspace: ws, pluginsDirs: [dir], defaultDirs: false, home: tempDir(), isolation: 'none' });
      assert.equal(await code(l.loadPlugin(pinned)), 'loaded');
      assert.equal(await code(l.loadPlugin(changed)), ErrorCode.INTEGRITY);
      assert.equal(await code(l.loadPlugin(unlocked)), ErrorCode.INTEGRITY);
    });
  });

  describe('file ownership', () => {
    it('warns about a group-writable plugin file, and refuses it in strict mode', async () => {
      const dir = await plugin('loose');
      chmodSync(path.join(dir, 'libloose.so'), 0o775);
      const warnings: string[] = [];
      assert.equal(await code(loader({ onWarning: (m) => warnings.push(m) }).loadPlugin(dir)), 'loaded');
      assert.ok(warnings.some((w) => w.includes('libloose.so is writable by group')));
      assert.equal(await code(loader({ strict: true }).loadPlugin(dir)), ErrorCode.UNTRUSTED_PATH);
    });

    const isRoot = process.getuid?.() === 0;
    it('warns about a plugin file owned by another user, and refuses it in strict mode', { skip: isRoot ? false : 'needs root to give a file to another user' }, async () => {
      const dir = await plugin('foreign-owner');
      chownSync(path.join(dir, 'libforeign-owner.so'), 65534, 65534);
      const warnings: string[] = [];
      assert.equal(await code(loader({ onWarning: (m) => warnings.push(m) }).loadPlugin(dir)), 'loaded');
      assert.ok(warnings.some((w) => w.includes('owned by another user (uid 65534)')));
      assert.equal(await code(loader({ strict: true }).loadPlugin(dir)), ErrorCode.UNTRUSTED_PATH);
    });
  });
});
