// Plugin resources never leave the plugin dir: links, special files, swaps and oversize files are refused.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ErrorCode, isPluginError } from '../../src/errors.js';
import { MAX_RESOURCE_BYTES, listPluginResources, parseResourceUri, readPluginResource, resourceUri } from '../../src/tools/resources.js';
import { PluginLoader, renderSkillsPrompt } from '../../src/index.js';
import { CLIENT_SDKS } from '../helpers/mcp-clients.js';
import { buildFixture, runCli, tempDir, tempHome } from '../helpers/fixtures.js';

const SECRET = 'secret outside the plugin dir\n';

async function hostilePlugin(): Promise<{ dir: string; outside: string }> {
  const base = tempDir();
  const outside = path.join(base, 'outside');
  mkdirSync(outside);
  writeFileSync(path.join(outside, 'secret.txt'), SECRET);
  const dir = await buildFixture(path.join(base, 'plugins'), { source: 'echo', name: 'hostile' });
  symlinkSync(path.join(outside, 'secret.txt'), path.join(dir, 'README.md'));
  symlinkSync(outside, path.join(dir, 'scripts'));
  mkdirSync(path.join(dir, 'templates'));
  writeFileSync(path.join(dir, 'templates', 'ok.txt'), 'fine\n');
  symlinkSync('../../../outside/secret.txt', path.join(dir, 'templates', 'up.txt'));
  execFileSync('mkfifo', [path.join(dir, 'templates', 'pipe')]);
  writeFileSync(path.join(dir, 'templates', 'huge.txt'), Buffer.alloc(MAX_RESOURCE_BYTES + 1, 0x61));
  return { dir, outside };
}

describe('plugin resources', () => {
  it('lists only regular files inside the plugin dir: links, FIFOs and oversize files are left out, with the reason', async () => {
    const { dir } = await hostilePlugin();
    const found = listPluginResources(dir, 'hostile');
    assert.deepEqual(found.resources.map((r) => r.relative), ['templates/ok.txt']);
    assert.deepEqual(found.skipped.map((s) => `${s.relative}:${s.reason}`).sort(), ['README.md:symlink', 'scripts:symlink', 'templates/huge.txt:too-large', 'templates/pipe:not-a-file', 'templates/up.txt:symlink']);
  });

  it('refuses a listed file swapped for a link, or under a dir swapped for one, before reading it', async () => {
    const { dir, outside } = await hostilePlugin();
    mkdirSync(path.join(dir, 'templates', 'sub'));
    writeFileSync(path.join(dir, 'templates', 'sub', 'secret.txt'), 'inside\n');
    const listed = listPluginResources(dir, 'hostile').resources;
    const ok = listed.find((r) => r.relative === 'templates/ok.txt');
    const sub = listed.find((r) => r.relative === 'templates/sub/secret.txt');
    assert.ok(ok && sub);
    rmSync(ok.path);
    symlinkSync(path.join(outside, 'secret.txt'), ok.path);
    renameSync(path.join(dir, 'templates', 'sub'), path.join(dir, 'templates', 'sub-was'));
    symlinkSync(outside, path.join(dir, 'templates', 'sub'));
    for (const r of [ok, sub]) await assert.rejects(readPluginResource(dir, 'hostile', r), (err) => isPluginError(err, ErrorCode.NOT_FOUND));
  });

  it('parses only its own URIs, with no way to climb out of the plugin dir', () => {
    assert.deepEqual(parseResourceUri(resourceUri('a b', 'scripts/x y.sh')), { tool: 'a b', relative: 'scripts/x y.sh' });
    for (const uri of ['file:///etc/passwd', 'skillplug://plugin/echo/../x', 'skillplug://plugin/echo/scripts/%2E%2E/x', 'skillplug://plugin/echo/a%2Fb', 'skillplug://plugin/echo', 'skillplug://plugin/echo/%E0']) {
      assert.equal(parseResourceUri(uri), undefined, uri);
    }
  });

  it('serve leaves the hostile entries out of resources/list for every client', async () => {
    const { dir } = await hostilePlugin();
    for (const sdk of CLIENT_SDKS) {
      const { client } = await sdk.connect(['--plugins-dir', path.dirname(dir), '--workspace', tempDir()]);
      try {
        const { resources } = await client.listResources();
        assert.deepEqual(resources.map((r) => r.uri), ['skillplug://plugin/hostile/templates/ok.txt'], sdk.protocol);
        await assert.rejects(client.readResource({ uri: 'skillplug://plugin/hostile/README.md' }), (err: { code?: number }) => err.code === -32002);
      } finally {
        await client.close();
      }
    }
  });

  it('serve tells every client when a plugin gains a resource (notifications/resources/list_changed)', async () => {
    const plugins = tempDir();
    const dir = await buildFixture(plugins, { source: 'echo', name: 'growing' });
    mkdirSync(path.join(dir, 'scripts'));
    for (const [i, sdk] of CLIENT_SDKS.entries()) {
      const { client, onResourceListChanged } = await sdk.connect(['--plugins-dir', plugins, '--workspace', tempDir()]);
      try {
        const before = (await client.listResources()).resources.length;
        const changed = new Promise<void>((resolve) => onResourceListChanged(resolve));
        writeFileSync(path.join(dir, 'scripts', `added-${i}.sh`), 'echo\n');
        await changed;
        const { resources } = await client.listResources();
        assert.equal(resources.length, before + 1, sdk.protocol);
        assert.ok(resources.some((r) => r.uri === `skillplug://plugin/growing/scripts/added-${i}.sh`), sdk.protocol);
      } finally {
        await client.close();
      }
    }
  });

  it('skillplug inspect lists the resources serve offers and the entries it refuses', async () => {
    const { dir } = await hostilePlugin();
    writeFileSync(path.join(dir, 'templates', 'second.md'), '# two\n');
    const args = ['inspect', 'hostile', '--plugins-dir', path.dirname(dir), '--workspace', tempDir()];
    const json = await runCli([...args, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const shown = JSON.parse(json.stdout) as { resources: { uri: string; path: string }[]; skipped_resources: { relative: string; reason: string }[] };
    assert.deepEqual(shown.resources.map((r) => r.uri), ['skillplug://plugin/hostile/templates/ok.txt', 'skillplug://plugin/hostile/templates/second.md']);
    assert.ok(shown.skipped_resources.some((r) => r.relative === 'README.md' && r.reason === 'symlink'));
    const human = await runCli(args);
    assert.match(human.stdout, /skillplug:\/\/plugin\/hostile\/templates\/second\.md \(6 bytes\)/);
    assert.match(human.stdout, /not served: scripts \(symlink\)/);
  });

  it('renderSkillsPrompt says where each skill keeps its README, scripts/ and templates/', async () => {
    const plugins = tempDir();
    const dir = await buildFixture(plugins, { source: 'echo', name: 'documented' });
    await buildFixture(plugins, { source: 'echo', name: 'bare' });
    writeFileSync(path.join(dir, 'README.md'), '# documented\n');
    mkdirSync(path.join(dir, 'scripts'));
    writeFileSync(path.join(dir, 'scripts', 'a.sh'), 'echo\n');
    writeFileSync(path.join(dir, 'scripts', 'b.sh'), 'echo\n');
    const found = await new PluginLoader({ pluginsDirs: [plugins], defaultDirs: false, readConfig: false, home: tempHome() }).discoverPlugins();
    const prompt = renderSkillsPrompt(found);
    const line = (name: string) => prompt.split('\n').find((l) => l.startsWith(`- ${name}:`)) ?? '';
    assert.ok(line('documented').endsWith(` Files: ${path.join(dir, 'README.md')}, ${path.join(dir, 'scripts')}${path.sep}`), line('documented'));
    assert.doesNotMatch(line('bare'), /Files:/);
  });
});
