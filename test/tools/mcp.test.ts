// Drives `skillplug serve` with the official MCP TypeScript client over stdio.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ToolListChangedNotificationSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { detectSandbox } from '../../src/sandbox/index.js';
import { REPO_ROOT, buildFixture, tempDir } from '../helpers/fixtures.js';
import { serve, withServe } from '../helpers/mcp-clients.js';

const text = (r: CallToolResult) => r.content.filter((c) => c.type === 'text').map((c) => (c as { text: string }).text).join('\n');

describe('skillplug serve (MCP over stdio)', () => {
  let plugins: string;
  let workspace: string;
  let home: string;
  let client: Client;
  let stderr: () => string;

  before(async () => {
    const base = tempDir();
    plugins = path.join(base, 'plugins');
    workspace = path.join(base, 'ws');
    home = path.join(base, 'home');
    for (const d of [plugins, workspace, path.join(home, '.vtcode')]) mkdirSync(d, { recursive: true });
    writeFileSync(path.join(home, '.vtcode', 'skillplug.json'), JSON.stringify({ plugins: { echo: { config: { greeting: 'hi' }, grant: { network: true } } } }));
    await Promise.all([
      buildFixture(plugins, {
        source: 'echo',
        name: 'echo',
        manifest: {
          name: 'echo',
          description: 'Echoes its context',
          version: '1.0.0',
          when_to_use: 'when testing',
          allowed_tools: ['read'],
          input_schema: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] },
          permissions: { network: true },
        },
      }),
      buildFixture(plugins, { source: 'heap', name: 'heap' }),
      buildFixture(plugins, { source: 'crash', name: 'crash' }),
      buildFixture(plugins, { source: 'hang', name: 'hang' }),
      buildFixture(plugins, { source: 'echo', name: 'broken', manifest: '{"name":"broken"}' }),
      buildFixture(plugins, { source: 'deep_result', name: 'deep' }),
      // Each of these used to make the official client reject the whole list, or serve never answer it.
      buildFixture(plugins, { source: 'echo', name: 'notobject', manifest: { name: 'notobject', description: 'd', version: '1', input_schema: { properties: { q: { type: 'string' } } } } }),
      buildFixture(plugins, { source: 'echo', name: 'boolprop', manifest: { name: 'boolprop', description: 'd', version: '1', input_schema: { type: 'object', properties: { q: true } } } }),
      buildFixture(plugins, {
        source: 'echo',
        name: 'deepschema',
        manifest: `{"name":"deepschema","description":"d","version":"1","input_schema":{"type":"object","properties":{"q":{"type":"string","default":${'['.repeat(20_000)}${']'.repeat(20_000)}}}}}`,
      }),
    ]);
    ({ client, stderr } = await serve(['--plugins-dir', plugins, '--workspace', workspace], { HOME: home }));
  });

  after(async () => {
    await client?.close();
  });

  it('reports the package\'s own version', () => {
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.deepEqual(client.getServerVersion(), { name: 'skillplug', version: pkg.version });
  });

  it('lists valid plugins as tools with schemas, descriptions and annotations; broken ones are logged', async () => {
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), ['crash', 'deep', 'echo', 'hang', 'heap']);
    const echo = tools.find((t) => t.name === 'echo');
    assert.deepEqual(echo?.inputSchema.required, ['q']);
    assert.match(echo?.description ?? '', /Echoes its context\nWhen to use: when testing/);
    // Granted the network: neither read-only nor a closed world, even in the sandbox.
    assert.equal(echo?.annotations?.readOnlyHint, false);
    assert.equal(echo?.annotations?.openWorldHint, true);
    assert.equal(tools.find((t) => t.name === 'heap')?.annotations?.readOnlyHint, (await detectSandbox()).available);
    assert.deepEqual(echo?._meta?.['skillplug/allowed_tools'], ['read']);
    assert.equal(tools.find((t) => t.name === 'heap')?.annotations?.openWorldHint, false);
    assert.match(stderr(), /left out .*broken.*E_INVALID_MANIFEST/);
  });

  it('leaves out plugins whose schema MCP clients reject or cannot serialize, with their reason; the rest stay listed', async () => {
    const { tools } = await client.listTools();
    for (const name of ['notobject', 'boolprop', 'deepschema']) {
      assert.ok(!tools.some((t) => t.name === name), name);
      assert.match(stderr(), new RegExp(`left out \\S*${name}: \\[E_INVALID_MANIFEST\\]`));
    }
  });

  it('answers a result nested 10,000 deep with E_INVALID_RESULT, one 500 deep normally, and refuses arguments nested 2,000 deep', async () => {
    const deep = (await client.callTool({ name: 'deep', arguments: {} })) as CallToolResult;
    assert.equal(deep.isError, true);
    assert.equal((deep._meta?.['skillplug/error'] as { code: string } | undefined)?.code, 'E_INVALID_RESULT');
    const fine = (await client.callTool({ name: 'deep', arguments: { depth: 500 } })) as CallToolResult;
    assert.equal(fine.isError ?? false, false);
    let args: unknown = 1;
    for (let i = 0; i < 2000; i++) args = [args];
    await assert.rejects(client.callTool({ name: 'echo', arguments: { q: 'x', nested: args } }), (err: { code?: number }) => err.code === -32602);
    const ok = (await client.callTool({ name: 'echo', arguments: { q: 'still serving' } })) as CallToolResult;
    assert.equal(ok.isError ?? false, false);
  });

  it('runs a tool: structuredContent is the output, with a text copy, resource links and the user config', async () => {
    const r = (await client.callTool({ name: 'echo', arguments: { q: 'hello' } })) as CallToolResult;
    assert.equal(r.isError ?? false, false);
    const ctx = (r.structuredContent as { ctx: Record<string, unknown> }).ctx;
    assert.deepEqual(ctx, { input: { q: 'hello' }, workspace_root: workspace, config: { greeting: 'hi' } });
    assert.deepEqual(JSON.parse(text(r)), r.structuredContent);
    const link = r.content.find((c) => c.type === 'resource_link') as { uri: string; name: string } | undefined;
    assert.equal(link?.uri, `file://${path.join(workspace, 'echo.txt')}`);
  });

  it('reports a plugin failure as an isError result', async () => {
    const r = (await client.callTool({ name: 'heap', arguments: { mode: 'fail' } })) as CallToolResult;
    assert.equal(r.isError, true);
    assert.match(text(r), /it went wrong/);
    const bad = (await client.callTool({ name: 'heap', arguments: { mode: 'notjson' } })) as CallToolResult;
    assert.equal(bad.isError, true);
    assert.match(text(bad), /E_INVALID_JSON/);
  });

  it('survives a crashing call and serves the next one', async () => {
    const crashed = (await client.callTool({ name: 'crash', arguments: { mode: 'segv' } })) as CallToolResult;
    assert.equal(crashed.isError, true);
    assert.match(text(crashed), /E_CRASHED/);
    assert.match(text(crashed), /SIGSEGV/);
    const ok = (await client.callTool({ name: 'crash', arguments: { mode: 'ok' } })) as CallToolResult;
    assert.deepEqual(ok.structuredContent, { alive: true });
  });

  it('cancels a hung call when the client aborts, then serves the next call', async () => {
    const controller = new AbortController();
    // The first progress notification says the call is running: abort then, not after a guessed delay.
    const hung = client.callTool({ name: 'hang', arguments: { mode: 'sleep' } }, undefined, { signal: controller.signal, onprogress: () => controller.abort() });
    await assert.rejects(hung);
    assert.equal(controller.signal.aborted, true, 'the call ran long enough to report progress');
    const ok = (await client.callTool({ name: 'hang', arguments: {} })) as CallToolResult;
    assert.deepEqual(ok.structuredContent, { answered: true });
  });

  it('rejects input that does not match the input_schema before running anything', async () => {
    const r = (await client.callTool({ name: 'echo', arguments: { q: 5 } })) as CallToolResult;
    assert.equal(r.isError, true);
    assert.match(text(r), /E_INVALID_INPUT/);
    assert.match(text(r), /\/q: must be string/);
  });

  it('sends progress for long calls when asked', async () => {
    const steps: number[] = [];
    const r = (await client.callTool({ name: 'heap', arguments: { mode: 'ok' } }, undefined, { onprogress: (p) => steps.push(p.progress) })) as CallToolResult;
    assert.equal(r.isError ?? false, false);
    let progressed: () => void = () => {};
    const firstProgress = new Promise<void>((resolve) => {
      progressed = resolve;
    });
    const slow = client.callTool({ name: 'hang', arguments: { mode: 'sleep' } }, undefined, {
      onprogress: (p) => {
        steps.push(p.progress);
        progressed();
      },
      timeout: 60_000,
    });
    await firstProgress;
    assert.ok(steps.length >= 1, 'a progress notification arrived');
    await client.close();
    await slow.catch(() => undefined);
    // Reconnect for the remaining test.
    ({ client } = await serve(['--plugins-dir', plugins, '--workspace', workspace], { HOME: home }));
  });

  it('picks up a plugin added while serving (tools/list_changed, from a file watch)', async () => {
    await client.listTools();
    // Built aside and moved in whole, as an installer would; then ordered by notifications alone.
    const staging = tempDir();
    await buildFixture(staging, { source: 'echo', name: 'late' });
    const notified = new Promise<void>((resolve) => {
      client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
        resolve();
      });
    });
    renameSync(path.join(staging, 'late'), path.join(plugins, 'late'));
    await notified;
    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === 'late'));
    const r = (await client.callTool({ name: 'late', arguments: { x: 1 } })) as CallToolResult;
    assert.equal(r.isError ?? false, false);
  });
});

describe('skillplug serve lists only tools the policy in force lets load', () => {
  it('leaves out unsigned plugins under --require-signature and a workspace plugin shadowing the user\'s', async () => {
    const { generateKeyPair } = await import('../../src/signing/minisign.js');
    const { signPluginFiles } = await import('../../src/signing/plugin-signatures.js');
    const base = tempDir();
    const plugins = path.join(base, 'plugins');
    const workspace = path.join(base, 'ws');
    const home = path.join(base, 'home');
    const pair = generateKeyPair();
    const pub = path.join(base, 'k.pub');
    const key = path.join(base, 'k.key');
    writeFileSync(pub, pair.publicKeyText);
    writeFileSync(key, pair.secretKeyText, { mode: 0o600 });
    const signed = async (parent: string, name: string, version: string) => {
      const dir = await buildFixture(parent, { source: 'echo', name, manifest: { name, description: `${name} ${version}`, version } });
      await signPluginFiles(path.join(dir, 'plugin.json'), path.join(dir, `lib${name}.so`), key);
    };
    mkdirSync(workspace, { recursive: true });
    await signed(plugins, 'signed', '1.0.0');
    await buildFixture(plugins, { source: 'echo', name: 'unsigned' });
    await signed(path.join(home, '.vtcode', 'plugins'), 'tool', '2.0.0');
    await signed(path.join(workspace, '.vtcode', 'plugins'), 'tool', '1.0.0');
    await withServe(['--plugins-dir', plugins, '--workspace', workspace, '--require-signature', '--trusted-key', pub], { HOME: home }, async ({ client, stderr }) => {
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), ['signed', 'tool']);
      assert.equal(tools.find((t) => t.name === 'tool')?.description, 'tool 2.0.0', "the user's own release");
      assert.match(stderr(), /left out .*unsigned.*E_SIGNATURE/);
      assert.match(stderr(), /left out .*ws.*tool.*E_SHADOWING/);
      const r = (await client.callTool({ name: 'tool', arguments: {} })) as CallToolResult;
      assert.equal(r.isError ?? false, false, text(r));
    });
  });
});
