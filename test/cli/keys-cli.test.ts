// `skillplug keys trust|list|untrust`: the user's trusted keys without hand-editing JSON.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { buildFixture, runCli, tempDir } from '../helpers/fixtures.js';

const configOf = (home: string): { trusted_keys?: string[] } => JSON.parse(readFileSync(path.join(home, '.vtcode', 'skillplug.json'), 'utf8'));

describe('cli: keys', () => {
  it('trust adds a key once, list shows it, and signed plugins then load under --require-signature until untrust', async () => {
    const base = tempDir();
    const home = path.join(base, 'home');
    mkdirSync(home);
    const env = { HOME: home };
    const plugins = path.join(base, 'plugins');
    mkdirSync(plugins);
    const dir = await buildFixture(plugins, { source: 'echo', name: 'echo' });
    const prefix = path.join(base, 'author');
    const keyId = JSON.parse((await runCli(['keygen', '--out', prefix, '--json'], { env })).stdout).key_id;
    assert.equal((await runCli(['sign', dir, '--key', `${prefix}.key`], { env })).code, 0);
    const refused = await runCli(['run', 'echo', '--plugins-dir', plugins, '--require-signature', '--json'], { env });
    assert.equal(JSON.parse(refused.stdout).error.code, 'E_SIGNATURE', 'no key trusted yet');

    const trusted = await runCli(['keys', 'trust', `${prefix}.pub`, '--json'], { env });
    assert.equal(trusted.code, 0, trusted.stderr);
    assert.deepEqual(JSON.parse(trusted.stdout).key_id, keyId);
    assert.equal(JSON.parse(trusted.stdout).changed, true);
    const again = await runCli(['keys', 'trust', `${prefix}.pub`, '--json'], { env });
    assert.equal(JSON.parse(again.stdout).changed, false);
    assert.equal(configOf(home).trusted_keys?.length, 1, 'no duplicate');
    const listed = JSON.parse((await runCli(['keys', 'list', '--json'], { env })).stdout);
    assert.deepEqual(listed.keys.map((k: { key_id: string; source: string }) => [k.key_id, k.source]), [[keyId, 'inline']]);
    const ran = await runCli(['run', 'echo', '--plugins-dir', plugins, '--require-signature', '--json'], { env });
    assert.equal(ran.code, 0, ran.stdout + ran.stderr);

    const removed = await runCli(['keys', 'untrust', keyId.toLowerCase(), '--json'], { env });
    assert.equal(removed.code, 0, removed.stderr);
    assert.deepEqual(configOf(home).trusted_keys, []);
    const after = await runCli(['run', 'echo', '--plugins-dir', plugins, '--require-signature', '--json'], { env });
    assert.equal(JSON.parse(after.stdout).error.code, 'E_SIGNATURE');
    const missing = await runCli(['keys', 'untrust', keyId, '--json'], { env });
    assert.equal(JSON.parse(missing.stdout).error.code, 'E_NOT_FOUND');
  });

  it('a key already trusted by path counts as trusted, and untrust by file removes that entry too', async () => {
    const base = tempDir();
    const home = path.join(base, 'home');
    mkdirSync(path.join(home, '.vtcode'), { recursive: true });
    const env = { HOME: home };
    const prefix = path.join(base, 'k');
    await runCli(['keygen', '--out', prefix], { env });
    writeFileSync(path.join(home, '.vtcode', 'skillplug.json'), JSON.stringify({ trusted_keys: [`${prefix}.pub`] }));
    assert.equal(JSON.parse((await runCli(['keys', 'trust', `${prefix}.pub`, '--json'], { env })).stdout).changed, false);
    const listed = JSON.parse((await runCli(['keys', 'list', '--json'], { env })).stdout);
    assert.equal(listed.keys[0].source, 'file');
    assert.equal((await runCli(['keys', 'untrust', `${prefix}.pub`], { env })).code, 0);
    assert.deepEqual(configOf(home).trusted_keys, []);
  });

  it('refuses what is not a minisign public key, naming the file, and changes nothing', async () => {
    const base = tempDir();
    const home = path.join(base, 'home');
    mkdirSync(home);
    const env = { HOME: home };
    const prefix = path.join(base, 'k');
    await runCli(['keygen', '--out', prefix], { env });
    const garbage = path.join(base, 'garbage.pub');
    writeFileSync(garbage, 'untrusted comment: x\nnot base64 at all\n');
    const cases: [string[], string, string | undefined][] = [
      [['keys', 'trust', `${prefix}.key`], 'E_USAGE', 'secret-key'],
      [['keys', 'trust', garbage], 'E_USAGE', 'not-a-public-key'],
      [['keys', 'trust', path.join(base, 'absent.pub')], 'E_USAGE', undefined],
      [['keys', 'trust', base], 'E_USAGE', undefined],
      [['keys', 'trust'], 'E_USAGE', undefined],
      [['keys', 'forget', 'x'], 'E_USAGE', undefined],
      [['keys', 'list', 'extra'], 'E_USAGE', undefined],
    ];
    for (const [args, code, reason] of cases) {
      const r = await runCli([...args, '--json'], { env });
      assert.equal(r.code, 2, args.join(' '));
      const error = JSON.parse(r.stdout).error;
      assert.equal(error.code, code, args.join(' '));
      assert.equal(error.data?.reason, reason, args.join(' '));
    }
    const listed = JSON.parse((await runCli(['keys', 'list', '--json'], { env })).stdout);
    assert.deepEqual(listed.keys, []);
  });

  it('lists a hand-written entry that names no key with its problem, terminal escapes escaped', async () => {
    const home = tempDir('skillplug-home-');
    mkdirSync(path.join(home, '.vtcode'));
    writeFileSync(path.join(home, '.vtcode', 'skillplug.json'), JSON.stringify({ trusted_keys: ['/nowhere/\u001b[2Jevil.pub'] }));
    const r = await runCli(['keys', 'list'], { env: { HOME: home } });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes('\u001b'), 'no raw escape reaches the terminal');
    assert.match(r.stdout, /unusable entry .*\\u001b\[2Jevil\.pub/);
  });
});
