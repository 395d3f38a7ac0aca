import assert from 'node:assert/strict';
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { ErrorCode, PluginLoader, createMcpServer, type DiscoveredPlugin } from '../../src/index.js';
import { rejectsWithCode } from '../helpers/assertions.js';
import { buildFixture, runCli, tempDir, tempHome, writeManifest } from '../helpers/fixtures.js';

const SCHEMA = 'https://agent-plugins.org/schemas/1.0.0/plugin.schema.json';

/** An Agent Plugin laid out as agent-plugins.org v1.0.0 describes: plugin.json, skills/<name>/SKILL.md, optional mcp.json. */
function writeAgentPlugin(parent: string, name: string, parts: { schema?: boolean; skill?: boolean; mcp?: boolean; extra?: Record<string, unknown> }): string {
  const dir = path.join(parent, name);
  mkdirSync(dir, { recursive: true });
  writeManifest(dir, {
    ...(parts.schema ? { $schema: SCHEMA } : {}),
    name,
    version: '0.3.0',
    description: `agent plugin ${name}`,
    license: 'Apache-2.0',
    keywords: ['testing'],
    ...(parts.extra ?? {}),
  });
  if (parts.skill) {
    mkdirSync(path.join(dir, 'skills', 'tidy-notes'), { recursive: true });
    writeFileSync(path.join(dir, 'skills', 'tidy-notes', 'SKILL.md'), '---\nname: tidy-notes\ndescription: Tidies notes.\n---\nSort the notes.\n');
  }
  if (parts.mcp) {
    writeFileSync(path.join(dir, 'mcp.json'), JSON.stringify({ $schema: 'https://agent-plugins.org/schemas/1.0.0/mcp.schema.json', mcpServers: { notes: { type: 'stdio', command: 'true' } } }));
  }
  return dir;
}

describe('Agent Plugins beside native plugins', () => {
  let root: string;
  let found: DiscoveredPlugin[];
  const byDir = (name: string) => found.find((p) => path.basename(p.path) === name);

  before(async () => {
    root = path.join(tempDir(), 'plugins');
    mkdirSync(root);
    writeAgentPlugin(root, 'full-agent', { schema: true, skill: true, mcp: true });
    writeAgentPlugin(root, 'schema-only', { schema: true });
    writeAgentPlugin(root, 'mcp-only', { mcp: true });
    writeAgentPlugin(root, 'skills-only', { skill: true });
    await buildFixture(root, { source: 'echo', name: 'native' });
    // A native plugin that lost its library: plain native plugin.json, nothing else.
    const lost = await buildFixture(root, { source: 'echo', name: 'lost', libraryFile: 'gone.tmp' });
    await import('node:fs/promises').then((fs) => fs.rm(path.join(lost, 'gone.tmp')));
    // abi_version says native even though it also carries skills/ and a $schema.
    writeAgentPlugin(root, 'declared-native', { schema: true, skill: true, extra: { abi_version: 1 } });
    // A library-like file under the wrong name says native too.
    const misnamed = writeAgentPlugin(root, 'misnamed', { schema: true, mcp: true });
    writeFileSync(path.join(misnamed, 'libsomething-else.so'), 'not loaded');
    const loader = new PluginLoader({ pluginsDirs: [root], defaultDirs: false, readConfig: false, isolation: 'none' });
    found = await loader.discoverPlugins({ agentPlugins: true });
  });

  it('lists an Agent Plugin, whatever marks it, as agent-plugin with no errors', () => {
    const expected: Record<string, string[]> = {
      'full-agent': ['$schema', 'skills/', 'mcp.json'],
      'schema-only': ['$schema'],
      'mcp-only': ['mcp.json'],
      'skills-only': ['skills/'],
    };
    for (const [name, evidence] of Object.entries(expected)) {
      const p = byDir(name);
      assert.equal(p?.status, 'agent-plugin', name);
      assert.deepEqual(p?.errors, []);
      assert.deepEqual(p?.agentPlugin?.evidence, evidence);
      assert.equal(p?.name, name);
      assert.equal(p?.manifest, undefined);
    }
  });

  it('still reports a native plugin without its library as broken', () => {
    for (const name of ['lost', 'declared-native', 'misnamed']) {
      const p = byDir(name);
      assert.equal(p?.status, 'error', name);
      assert.ok(p?.errors.some((e) => e.code === ErrorCode.INVALID_STRUCTURE), name);
    }
  });

  it('still loads the native plugin beside them', async () => {
    assert.equal(byDir('native')?.status, 'ok');
    const loader = new PluginLoader({ pluginsDirs: [root], defaultDirs: false, readConfig: false, isolation: 'none' });
    const plugin = await loader.loadPlugin(path.join(root, 'native'));
    assert.equal(plugin.metadata.name, 'native');
    await plugin.close();
  });

  it('leaves Agent Plugins out of discovery by default and never resolves a name to one', async () => {
    const loader = new PluginLoader({ pluginsDirs: [root], defaultDirs: false, readConfig: false });
    const plain = await loader.discoverPlugins();
    assert.ok(!plain.some((p) => p.status === 'agent-plugin'));
    assert.ok(plain.some((p) => p.name === 'native'));
    await rejectsWithCode(loader.findPlugin('full-agent'), ErrorCode.NOT_FOUND);
  });

  it('a user plugin in a new user dir is protected from workspace shadowing; an Agent Plugin of the same name is not a plugin to protect', async () => {
    const home = tempDir();
    const ws = realpathSync(tempDir());
    mkdirSync(path.join(home, '.vtcode'), { recursive: true });
    writeFileSync(path.join(home, '.vtcode', 'skillplug.json'), JSON.stringify({ trusted_workspaces: [ws] }));
    await buildFixture(path.join(ws, '.vtcode', 'plugins'), { source: 'echo', name: 'dup' });
    await buildFixture(path.join(ws, '.vtcode', 'plugins'), { source: 'echo', name: 'twin' });
    writeAgentPlugin(path.join(home, '.agents', 'plugins'), 'dup', { schema: true, skill: true });
    await buildFixture(path.join(home, '.local', 'share', 'vtcode', 'plugins'), { source: 'echo', name: 'twin' });
    const loader = new PluginLoader({ workspace: ws, home, isolation: 'none' });
    const plugin = await loader.loadPlugin(path.join(ws, '.vtcode', 'plugins', 'dup'));
    await plugin.close();
    await rejectsWithCode(loader.loadPlugin(path.join(ws, '.vtcode', 'plugins', 'twin')), ErrorCode.SHADOWING);
  });

  it('list shows them as agent-plugin; list --json reports what marked them', async () => {
    const r = await runCli(['list', '--plugins-dir', root, '--workspace', tempDir(), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { plugins: { name: string; status: string; errors: unknown[]; agent_plugin?: { evidence: string[] } }[] };
    const agent = doc.plugins.find((p) => p.name === 'full-agent');
    assert.equal(agent?.status, 'agent-plugin');
    assert.deepEqual(agent?.agent_plugin?.evidence, ['$schema', 'skills/', 'mcp.json']);
    const human = await runCli(['list', '--plugins-dir', root, '--workspace', tempDir()]);
    assert.match(human.stdout, /AGENT\s+full-agent/);
  });

  it('serve offers the native plugin as a tool and ignores Agent Plugins without calling them broken', async () => {
    const log: string[] = [];
    const server = await createMcpServer({ pluginsDirs: [root], defaultDirs: false, home: tempHome(), watchIntervalMs: 0, log: (l) => log.push(l) });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    const client = new Client({ name: 'agent-plugins-test', version: '1.0.0' });
    await client.connect(clientSide);
    try {
      const tools = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(tools.some((t) => t.includes('native')));
      for (const agent of ['full-agent', 'schema-only', 'mcp-only', 'skills-only']) {
        assert.ok(!tools.some((t) => t.includes(agent.replace(/-/g, '_')) || t.includes(agent)), agent);
        assert.ok(!log.some((l) => l.includes(path.join(root, agent))), `${agent} is not reported as left out`);
      }
      assert.ok(log.some((l) => l.includes(path.join(root, 'lost'))), 'a broken native plugin is still reported');
    } finally {
      await client.close();
      await server.close();
    }
  });
});
