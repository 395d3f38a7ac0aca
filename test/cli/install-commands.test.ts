// `skillplug install` / `uninstall`: plain files only, no silent overwrite, no rollback, signatures and
// the user's lock honoured, nothing half-installed; and the demo's suggestion leads to a working serve.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { CLI_PATH, buildFixture, runCli, tempDir, writeManifest } from '../helpers/fixtures.js';

const manifest = (name: string, version: string) => ({ name, description: 'fixture echo', version, author: 'tests', abi_version: 1 });

async function echoPlugin(name = 'echo', version = '1.0.0'): Promise<string> {
  return buildFixture(tempDir('skillplug-install-src-'), { source: 'echo', name, manifest: manifest(name, version) });
}

async function cli(home: string, args: string[], cwd?: string) {
  const r = await runCli([...args, '--json'], { env: { HOME: home }, ...(cwd ? { cwd } : {}) });
  return { ...r, doc: r.stdout ? (JSON.parse(r.stdout) as Record<string, unknown> & { error?: { code: string } }) : {} };
}

const userDir = (home: string) => path.join(home, '.vtcode', 'plugins');
const leftovers = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((n) => n.startsWith('.')) : []);

describe('skillplug install / uninstall', () => {
  it('copies a built plugin into the first user plugin dir, where run finds it, and uninstall removes it', async () => {
    const home = tempDir('skillplug-install-home-');
    const src = await echoPlugin();
    const r = await cli(home, ['install', src]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.doc.path, path.join(userDir(home), 'echo'));
    const ran = await runCli(['run', 'echo', '--input', '{"a":1}', '--json'], { env: { HOME: home } });
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(JSON.parse(ran.stdout).success, true);
    const again = await cli(home, ['install', src]);
    assert.equal(again.doc.unchanged, true);
    assert.deepEqual(Object.keys(again.doc).sort(), Object.keys(r.doc).sort(), 'the same JSON shape either way');
    const gone = await cli(home, ['uninstall', 'echo']);
    assert.equal(gone.code, 0, gone.stderr);
    assert.equal(existsSync(path.join(userDir(home), 'echo')), false);
    assert.equal((await cli(home, ['uninstall', 'echo'])).doc.error?.code, 'E_NOT_FOUND');
    assert.deepEqual(leftovers(userDir(home)), []);
  });

  it('installs into $VTCODE_HOME/plugins when that moves the first user dir, as serve scans it', async () => {
    const home = tempDir('skillplug-install-home-');
    const vtcodeHome = tempDir('skillplug-install-vtcode-home-');
    const r = await runCli(['install', await echoPlugin(), '--json'], { env: { HOME: home, VTCODE_HOME: vtcodeHome } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).path, path.join(vtcodeHome, 'plugins', 'echo'));
  });

  it('installs into --to DIR and uninstalls from --from DIR', async () => {
    const home = tempDir('skillplug-install-home-');
    const to = path.join(tempDir('skillplug-install-to-'), 'plugins');
    const r = await cli(home, ['install', await echoPlugin(), '--to', to]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(path.join(to, 'echo', 'libecho.so')));
    assert.ok((r.doc.warnings as string[]).length > 0, 'a dir skillplug does not scan is pointed out');
    assert.equal((await cli(home, ['uninstall', 'echo', '--from', to])).code, 0);
    assert.equal(existsSync(path.join(to, 'echo')), false);
  });

  it('refuses a plugin holding a symbolic link, so nothing it points at is copied', async () => {
    const home = tempDir('skillplug-install-home-');
    const src = await echoPlugin();
    const secret = path.join(tempDir('skillplug-install-secret-'), 'secret.txt');
    writeFileSync(secret, 'private');
    symlinkSync(secret, path.join(src, 'data.txt'));
    const r = await cli(home, ['install', src]);
    assert.equal(r.doc.error?.code, 'E_INVALID_STRUCTURE');
    assert.equal(existsSync(path.join(userDir(home), 'echo')), false);
    assert.deepEqual(leftovers(userDir(home)), []);
  });

  it('refuses a FIFO without blocking on it, and a tree over the size limit without reading it', async () => {
    const home = tempDir('skillplug-install-home-');
    const fifo = await echoPlugin();
    execFileSync('mkfifo', [path.join(fifo, 'pipe')]);
    assert.equal((await cli(home, ['install', fifo])).doc.error?.code, 'E_INVALID_STRUCTURE');
    const big = await echoPlugin();
    writeFileSync(path.join(big, 'data.bin'), '');
    truncateSync(path.join(big, 'data.bin'), 300 * 1024 * 1024); // sparse: costs no disk
    const r = await cli(home, ['install', big]);
    assert.equal(r.doc.error?.code, 'E_INVALID_STRUCTURE');
    assert.equal(existsSync(path.join(userDir(home), 'echo')), false);
  });

  it('never overwrites a different plugin or another build of the same version unless forced', async () => {
    const home = tempDir('skillplug-install-home-');
    const other = path.join(userDir(home), 'echo');
    mkdirSync(other, { recursive: true });
    writeManifest(other, manifest('something-else', '1.0.0'));
    const src = await echoPlugin();
    const r = await cli(home, ['install', src]);
    assert.equal(r.doc.error?.code, 'E_INSTALL_CONFLICT');
    assert.equal(JSON.parse(readFileSync(path.join(other, 'plugin.json'), 'utf8')).name, 'something-else');
    assert.equal((await cli(home, ['install', src, '--force'])).code, 0);
    const rebuilt = await echoPlugin();
    writeFileSync(path.join(rebuilt, 'README.md'), 'a different build\n');
    assert.equal((await cli(home, ['install', rebuilt])).doc.error?.code, 'E_INSTALL_CONFLICT');
    assert.equal(existsSync(path.join(other, 'README.md')), false);
  });

  it('upgrades, refuses a rollback to a lower version unless forced, and a failed install keeps the old one', async () => {
    const home = tempDir('skillplug-install-home-');
    assert.equal((await cli(home, ['install', await echoPlugin('echo', '1.0.0')])).code, 0);
    const up = await cli(home, ['install', await echoPlugin('echo', '2.0.0')]);
    assert.deepEqual(up.doc.replaced, { version: '1.0.0' });
    const old = await echoPlugin('echo', '1.5.0');
    assert.equal((await cli(home, ['install', old])).doc.error?.code, 'E_ROLLBACK');
    // The same rule across user dirs: a lower version elsewhere is a rollback too.
    assert.equal((await cli(home, ['install', old, '--to', path.join(home, '.codex', 'plugins')])).doc.error?.code, 'E_ROLLBACK');
    const broken = await buildFixture(tempDir('skillplug-install-src-'), { source: 'missing_execute', name: 'echo', manifest: manifest('echo', '3.0.0') });
    assert.equal((await cli(home, ['install', broken])).doc.error?.code, 'E_MISSING_SYMBOL');
    assert.equal(JSON.parse(readFileSync(path.join(userDir(home), 'echo', 'plugin.json'), 'utf8')).version, '2.0.0');
    assert.deepEqual(leftovers(userDir(home)), []);
    assert.equal((await cli(home, ['install', old, '--force'])).code, 0);
    assert.equal(JSON.parse(readFileSync(path.join(userDir(home), 'echo', 'plugin.json'), 'utf8')).version, '1.5.0');
  });

  it('requires a valid signature when the policy does, and refuses a signed plugin whose files changed', async () => {
    const home = tempDir('skillplug-install-home-');
    const keys = path.join(tempDir('skillplug-install-keys-'), 'k');
    assert.equal((await runCli(['keygen', '--out', keys], { env: { HOME: home } })).code, 0);
    const unsigned = await echoPlugin();
    assert.equal((await cli(home, ['install', unsigned, '--require-signature', '--trusted-key', `${keys}.pub`])).doc.error?.code, 'E_SIGNATURE');
    const signed = await echoPlugin();
    assert.equal((await runCli(['sign', signed, '--key', `${keys}.key`], { env: { HOME: home } })).code, 0);
    const tampered = tempDir('skillplug-install-tampered-');
    cpSync(signed, path.join(tampered, 'echo'), { recursive: true });
    writeManifest(path.join(tampered, 'echo'), { ...manifest('echo', '1.0.0'), description: 'changed after signing' });
    assert.equal((await cli(home, ['install', path.join(tampered, 'echo'), '--trusted-key', `${keys}.pub`])).doc.error?.code, 'E_SIGNATURE', 'a signature that is there must verify, required or not');
    const ok = await cli(home, ['install', signed, '--require-signature', '--trusted-key', `${keys}.pub`]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(existsSync(path.join(userDir(home), 'echo')), true);
  });

  it("updates the user's own workspace lock, so the installed plugin still loads there", async () => {
    const home = tempDir('skillplug-install-home-');
    const workspace = tempDir('skillplug-install-ws-');
    assert.equal((await cli(home, ['lock', '--workspace', workspace])).code, 0);
    const r = await cli(home, ['install', await echoPlugin(), '--workspace', workspace]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.doc.lock, path.join(workspace, 'skillplug.lock.json'));
    const ran = await runCli(['run', 'echo', '--workspace', workspace, '--json'], { env: { HOME: home } });
    assert.equal(ran.code, 0, ran.stdout);
    assert.equal((await cli(home, ['uninstall', 'echo', '--workspace', workspace])).doc.lock, path.join(workspace, 'skillplug.lock.json'));
    const lock = JSON.parse(readFileSync(path.join(workspace, 'skillplug.lock.json'), 'utf8')) as { plugins: unknown[] };
    assert.deepEqual(lock.plugins, []);
  });

  it('uninstall removes a linked install by unlinking it, never what it points at', async () => {
    const home = tempDir('skillplug-install-home-');
    const src = await echoPlugin();
    mkdirSync(userDir(home), { recursive: true });
    symlinkSync(src, path.join(userDir(home), 'echo'));
    assert.equal((await cli(home, ['uninstall', 'echo'])).doc.link, true);
    assert.ok(existsSync(path.join(src, 'libecho.so')));
  });

  it("the demo's suggested install step makes serve offer the example as an MCP tool", async () => {
    const home = tempDir('skillplug-install-home-');
    const workspace = tempDir('skillplug-install-ws-');
    const demo = await runCli(['demo'], { env: { HOME: home } });
    assert.equal(demo.code, 0, demo.stderr);
    const step = /^\s*(skillplug install .+)$/m.exec(demo.stdout)?.[1];
    assert.ok(step, demo.stdout);
    execFileSync('bash', ['-c', `skillplug() { node "$CLI" "$@"; }\n${step}`], { env: { ...process.env, HOME: home, CLI: CLI_PATH } });
    const transport = new StdioClientTransport({ command: process.execPath, args: [CLI_PATH, 'serve', '--workspace', workspace], env: { ...(process.env as Record<string, string>), HOME: home }, stderr: 'pipe' });
    const client = new Client({ name: 'install-test', version: '1.0.0' });
    await client.connect(transport);
    try {
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name), ['hello']);
      const result = await client.callTool({ name: 'hello', arguments: { name: 'Ada' } });
      assert.notEqual(result.isError, true, JSON.stringify(result));
    } finally {
      await client.close();
    }
  });
});
