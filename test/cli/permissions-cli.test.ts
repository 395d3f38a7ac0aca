import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { buildFixture, runCli, tempDir } from '../helpers/fixtures.js';

describe('cli: permissions are requested by plugins, granted and revoked by the user, and shown', () => {
  let base: string;
  let plugins: string;
  let workspace: string;
  let home: string;
  const env = () => ({ HOME: home, SKILLPLUG_CACHE_DIR: path.join(base, 'cache') });
  const common = () => ['--plugins-dir', plugins, '--workspace', workspace, '--sandbox', 'off'];
  const configFile = () => path.join(home, '.vtcode', 'skillplug.json');

  before(async () => {
    base = tempDir();
    plugins = path.join(base, 'plugins');
    workspace = path.join(base, 'ws');
    home = path.join(base, 'home');
    for (const d of [plugins, workspace, home]) mkdirSync(d, { recursive: true });
    await buildFixture(plugins, { source: 'echo', name: 'netty', manifest: { name: 'netty', description: 'd', version: '1', permissions: { network: true, fs_write: ['${workspace}/out'] } } });
    await buildFixture(plugins, { source: 'echo', name: 'plain', manifest: { name: 'plain', description: 'd', version: '1' } });
    await buildFixture(plugins, { source: 'echo', name: 'sneaky', manifest: { name: 'sneaky', description: 'd', version: '1', permissions: { fs_read: ['/opt/\u001b[2Kok\r'] } } });
  });

  it('run refuses an ungranted request with E_PERMISSION_DENIED and the grant command; a one-run flag grants it', async () => {
    const denied = await runCli(['run', 'netty', ...common(), '--json'], { env: env() });
    assert.equal(denied.code, 3);
    const error = JSON.parse(denied.stdout).error;
    assert.equal(error.code, 'E_PERMISSION_DENIED');
    assert.deepEqual(error.data.missing, { network: true, unix_sockets: false, fs_read: [], fs_write: [path.join(workspace, 'out')] });
    assert.equal(error.data.grant_command, `skillplug grant netty --network --write ${path.join(workspace, 'out')}`);
    const partly = await runCli(['run', 'netty', ...common(), '--grant-network', '--json'], { env: env() });
    assert.equal(JSON.parse(partly.stdout).error.code, 'E_PERMISSION_DENIED', 'never runs with less than it asked for');
    const once = await runCli(['run', 'netty', ...common(), '--grant-network', '--grant-write', path.join(workspace, 'out'), '--json'], { env: env() });
    assert.equal(once.code, 0, once.stderr);
  });

  it('grant stores the grant in the user config, revoke takes it back', async () => {
    const granted = await runCli(['grant', 'netty', '--network', '--write', path.join(workspace, 'out'), '--json'], { env: env() });
    assert.equal(granted.code, 0, granted.stderr);
    assert.deepEqual(JSON.parse(readFileSync(configFile(), 'utf8')).plugins.netty.grant, { network: true, fs_write: [path.join(workspace, 'out')] });
    assert.equal((await runCli(['run', 'netty', ...common()], { env: env() })).code, 0);
    const revoked = await runCli(['revoke', 'netty', '--network', '--json'], { env: env() });
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(JSON.parse(revoked.stdout).grant.network, false);
    assert.equal((await runCli(['run', 'netty', ...common()], { env: env() })).code, 3);
    assert.equal((await runCli(['revoke', 'netty', '--all'], { env: env() })).code, 0);
    assert.equal(JSON.parse(readFileSync(configFile(), 'utf8')).plugins.netty, undefined);
    assert.equal((await runCli(['grant', 'netty'], { env: env() })).code, 2, 'grant needs what to grant');
    assert.equal((await runCli(['revoke', 'netty'], { env: env() })).code, 2, 'revoke needs what to revoke');
    assert.equal((await runCli(['grant', '../x', '--network'], { env: env() })).code, 2);
  });

  it('list shows requested, granted and missing per plugin, and marks missing grants', async () => {
    const json = await runCli(['list', ...common(), '--json'], { env: env() });
    assert.equal(json.code, 0, json.stderr);
    const byName = Object.fromEntries(JSON.parse(json.stdout).plugins.map((p: { name: string }) => [p.name, p]));
    assert.equal(byName.netty.permissions.requested.network, true);
    assert.equal(byName.netty.permissions.missing.network, true);
    assert.deepEqual(byName.plain.permissions.granted.fs_read, [workspace]);
    assert.equal(byName.plain.permissions.missing.network, false);
    const human = await runCli(['list', ...common()], { env: env() });
    const nettyAt = human.stdout.indexOf('netty');
    assert.ok(human.stdout.indexOf('needs grant: network', nettyAt) > nettyAt);
    assert.ok(!human.stdout.includes('\u001b') && !human.stdout.includes('\r'), 'plugin-controlled paths are escaped');
  });

  it('inspect shows permissions even for a plugin that may not load', async () => {
    const denied = await runCli(['inspect', 'netty', ...common(), '--json'], { env: env() });
    assert.equal(denied.code, 3);
    const doc = JSON.parse(denied.stdout);
    assert.equal(doc.error.code, 'E_PERMISSION_DENIED');
    assert.equal(doc.permissions.missing.network, true);
    const human = await runCli(['inspect', 'netty', ...common()], { env: env() });
    assert.match(human.stdout, /NOT GRANTED: +network/);
    const ok = await runCli(['inspect', 'plain', ...common(), '--json'], { env: env() });
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout).permissions.missing, { network: false, unix_sockets: false, fs_read: [], fs_write: [] });
  });

  it('trust and lock show what the plugins being trusted or locked ask for', async () => {
    const ws = path.join(base, 'cloned');
    await buildFixture(path.join(ws, '.vtcode', 'plugins'), { source: 'echo', name: 'cloned', manifest: { name: 'cloned', description: 'd', version: '1', permissions: { network: true } } });
    const trusted = await runCli(['trust', ws, '--json'], { env: env() });
    assert.equal(trusted.code, 0, trusted.stderr);
    const asked = JSON.parse(trusted.stdout).permissions;
    assert.deepEqual(asked.map((p: { name: string }) => p.name), ['cloned']);
    assert.equal(asked[0].requested.network, true);
    assert.match((await runCli(['trust', ws], { env: env() })).stdout, /cloned:\n +permissions: +network.*\n +NOT GRANTED: +network/);
    const locked = await runCli(['lock', '--workspace', ws, '--json'], { env: env() });
    assert.equal(locked.code, 0, locked.stderr);
    assert.equal(JSON.parse(locked.stdout).permissions[0].missing.network, true);
  });
});
