// `skillplug serve` through the official SDK client of every MCP protocol version, and the Inspector CLI.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { detectSandbox } from '../../src/sandbox/index.js';
import { CLIENT_SDKS, type AnyClient, errorCode, inspector, resultText } from '../helpers/mcp-clients.js';
import { REPO_ROOT, buildFixture, tempDir } from '../helpers/fixtures.js';
import { gate, release } from '../helpers/gate.js';
import { RawServe } from '../helpers/raw-serve.js';

const README = '# echo\n\nCall it with {"q": "..."}.\n';
const BINARY = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x41]);

async function setUp(): Promise<{ plugins: string; workspace: string }> {
  const base = tempDir();
  const plugins = path.join(base, 'plugins');
  const workspace = path.join(base, 'ws');
  mkdirSync(workspace, { recursive: true });
  const manifest = (name: string, extra: Record<string, unknown> = {}) => ({ name, description: `fixture ${name}`, version: '1.0.0', ...extra });
  const [echo] = await Promise.all([
    buildFixture(plugins, { source: 'echo', name: 'echo' }),
    buildFixture(plugins, { source: 'echo', name: 'kept', manifest: manifest('kept', { output_schema: { type: 'object', required: ['ctx'] } }) }),
    buildFixture(plugins, { source: 'echo', name: 'broken-promise', manifest: manifest('broken-promise', { output_schema: { type: 'object', required: ['missing'] } }) }),
    buildFixture(plugins, { source: 'scalar_output', name: 'scalar-promise', manifest: manifest('scalar-promise', { output_schema: { type: 'object' } }) }),
    buildFixture(plugins, { source: 'scalar_output', name: 'scalar' }),
    buildFixture(plugins, { source: 'heap', name: 'failing' }),
  ]);
  writeFileSync(path.join(echo, 'README.md'), README);
  mkdirSync(path.join(echo, 'scripts'));
  writeFileSync(path.join(echo, 'scripts', 'run.sh'), '#!/bin/sh\necho hi\n');
  mkdirSync(path.join(echo, 'templates', 'nested'), { recursive: true });
  writeFileSync(path.join(echo, 'templates', 'nested', 'blob.bin'), BINARY);
  return { plugins, workspace };
}

for (const sdk of CLIENT_SDKS) {
  describe(`serve with the ${sdk.protocol} SDK client`, () => {
    let plugins: string;
    let workspace: string;
    let client: AnyClient;

    before(async () => {
      ({ plugins, workspace } = await setUp());
      ({ client } = await sdk.connect(['--plugins-dir', plugins, '--workspace', workspace]));
    });
    after(async () => client?.close());

    it("reports the package's own version", () => {
      const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
      assert.deepEqual(client.getServerVersion(), { name: 'skillplug', version: pkg.version });
    });

    it('returns the files a plugin names in content this client accepts', async () => {
      const r = await client.callTool({ name: 'echo', arguments: { q: 'x' } });
      assert.equal(r.isError ?? false, false);
      const uri = pathToFileURL(path.join(workspace, 'echo.txt')).href;
      const links = r.content.filter((c) => c.type === 'resource_link');
      if (sdk.hasResourceLinks) assert.deepEqual(links.map((c) => c.uri), [uri]);
      else {
        assert.equal(links.length, 0);
        assert.match(resultText(r), new RegExp(`^Files:\\n${uri}$`, 'm'));
      }
    });

    it('keeps a declared output_schema: matching output is structuredContent, anything else an E_INVALID_OUTPUT error', async () => {
      const kept = await client.callTool({ name: 'kept', arguments: {} });
      assert.equal(kept.isError ?? false, false);
      assert.ok(kept.structuredContent?.ctx);
      for (const name of ['broken-promise', 'scalar-promise']) {
        const r = await client.callTool({ name, arguments: {} });
        assert.equal(r.isError, true, name);
        assert.equal(errorCode(r), 'E_INVALID_OUTPUT', name);
        assert.equal(r.structuredContent, undefined, name);
      }
      const scalar = await client.callTool({ name: 'scalar', arguments: {} });
      assert.equal(scalar.isError ?? false, false);
      assert.equal(resultText(scalar), '"just text"');
    });

    it('gives every error result its _meta error code, a plugin-reported failure included', async () => {
      const failed = await client.callTool({ name: 'failing', arguments: { mode: 'fail' } });
      assert.equal(failed.isError, true);
      assert.equal(errorCode(failed), 'E_PLUGIN_FAILED');
      const invalid = await client.callTool({ name: 'failing', arguments: { mode: 'notjson' } });
      assert.equal(errorCode(invalid), 'E_INVALID_JSON');
    });

    it('claims readOnlyHint and a closed world only for a sandboxed plugin with no write or network grant', async () => {
      const { tools } = await client.listTools();
      const echo = tools.find((t) => t.name === 'echo');
      // The 2024-11-05 schema has no annotations; its client passes them through untouched. Without bwrap nothing is claimed.
      const confined = (await detectSandbox()).available;
      assert.equal(echo?.annotations?.readOnlyHint, confined);
      assert.equal(echo?.annotations?.openWorldHint, !confined);
    });

    it("serves README.md, scripts/ and templates/ as resources; the tool's description points at the README", async () => {
      const { resources } = await client.listResources();
      const uris = resources.map((r) => r.uri).sort();
      assert.deepEqual(uris, ['skillplug://plugin/echo/README.md', 'skillplug://plugin/echo/scripts/run.sh', 'skillplug://plugin/echo/templates/nested/blob.bin']);
      const { tools } = await client.listTools();
      assert.match(tools.find((t) => t.name === 'echo')?.description ?? '', /skillplug:\/\/plugin\/echo\/README\.md/);
      const readme = await client.readResource({ uri: 'skillplug://plugin/echo/README.md' });
      assert.equal(readme.contents[0]?.text, README);
      const blob = await client.readResource({ uri: 'skillplug://plugin/echo/templates/nested/blob.bin' });
      assert.equal(blob.contents[0]?.blob, BINARY.toString('base64'));
      await assert.rejects(client.readResource({ uri: 'skillplug://plugin/echo/plugin.json' }), (err: { code?: number }) => err.code === -32002);
      await assert.rejects(client.readResource({ uri: 'skillplug://plugin/echo/scripts/..%2F..%2Fplugin.json' }), (err: { code?: number }) => err.code === -32002);
    });
  });
}

describe('serve annotations when the run does not enforce permissions', () => {
  for (const flags of [['--sandbox', 'off'], ['--isolation', 'none']]) {
    it(`claims neither readOnlyHint nor a closed world with ${flags.join(' ')}`, async () => {
      const { plugins, workspace } = await setUp();
      for (const sdk of CLIENT_SDKS) {
        const { client } = await sdk.connect(['--plugins-dir', plugins, '--workspace', workspace, ...flags]);
        try {
          const echo = (await client.listTools()).tools.find((t) => t.name === 'echo');
          assert.equal(echo?.annotations?.readOnlyHint, false, sdk.protocol);
          assert.equal(echo?.annotations?.openWorldHint, true, sdk.protocol);
        } finally {
          await client.close();
        }
      }
    });
  }
});

describe('serve --timeout in every isolation mode', () => {
  it('answers an in-process call E_TIMEOUT at --timeout, then E_BUSY until the stuck call returns', { timeout: 120_000 }, async () => {
    const plugins = tempDir();
    await buildFixture(plugins, { source: 'release_gate', name: 'gated' });
    for (const sdk of CLIENT_SDKS) {
      const { client } = await sdk.connect(['--plugins-dir', plugins, '--workspace', tempDir(), '--isolation', 'none', '--timeout', '500']);
      const fifo = gate();
      try {
        const late = await client.callTool({ name: 'gated', arguments: { gate: fifo } });
        assert.equal(late.isError, true, sdk.protocol);
        assert.equal(errorCode(late), 'E_TIMEOUT', sdk.protocol);
        const refused = await client.callTool({ name: 'gated', arguments: {} });
        assert.equal(errorCode(refused), 'E_BUSY', sdk.protocol);
      } finally {
        await release(fifo);
        await client.close();
      }
    }
  });
});

describe('serve when stdin closes with calls in flight', () => {
  for (const protocolVersion of ['2024-11-05', '2025-03-26', '2025-06-18']) {
    it(`answers every call read before it exits (${protocolVersion})`, { timeout: 120_000 }, async () => {
      const plugins = tempDir();
      const workspace = tempDir();
      await buildFixture(plugins, { source: 'release_gate', name: 'gated' });
      // In the workspace, so the sandboxed plugin can open it.
      const fifo = path.join(workspace, 'gate');
      const { execFileSync } = await import('node:child_process');
      execFileSync('mkfifo', [fifo]);
      const serve = new RawServe(['--plugins-dir', plugins, '--workspace', workspace]);
      const init = await serve.request(1, 'initialize', { protocolVersion, capabilities: {}, clientInfo: { name: 'raw', version: '1' } });
      assert.equal((init.result as { protocolVersion: string }).protocolVersion, protocolVersion);
      await serve.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
      const call = (id: number, args: Record<string, unknown>) => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'gated', arguments: args } });
      await serve.write(`${call(2, { gate: fifo })}\n${call(3, {})}\n`);
      serve.child.stdin.end();
      await release(fifo);
      const answers = new Map<unknown, unknown>();
      while (answers.size < 2) {
        const answer = await serve.next();
        answers.set(answer.id, answer.result);
      }
      assert.deepEqual((answers.get(2) as { structuredContent?: unknown }).structuredContent, { released: true });
      assert.deepEqual((answers.get(3) as { structuredContent?: unknown }).structuredContent, { released: false });
      assert.deepEqual(await serve.exited, { code: 0, signal: null });
    });
  }
});

describe('serve through the MCP Inspector CLI', () => {
  it('lists tools and resources, calls a tool and reads a resource', async () => {
    const { plugins, workspace } = await setUp();
    const serve = ['--plugins-dir', plugins, '--workspace', workspace];
    const listed = (await inspector(serve, ['--method', 'tools/list'])) as { tools: { name: string }[] };
    assert.ok(listed.tools.some((t) => t.name === 'echo'));
    const called = (await inspector(serve, ['--method', 'tools/call', '--tool-name', 'echo', '--tool-arg', 'q=hi'])) as { content: { type: string; uri?: string }[] };
    assert.deepEqual(called.content.filter((c) => c.type === 'resource_link').map((c) => c.uri), [pathToFileURL(path.join(workspace, 'echo.txt')).href]);
    const broken = (await inspector(serve, ['--method', 'tools/call', '--tool-name', 'broken-promise'])) as { isError?: boolean; _meta?: Record<string, { code?: string }> };
    assert.equal(broken.isError, true);
    assert.equal(broken._meta?.['skillplug/error']?.code, 'E_INVALID_OUTPUT');
    const resources = (await inspector(serve, ['--method', 'resources/list'])) as { resources: { uri: string }[] };
    assert.ok(resources.resources.some((r) => r.uri === 'skillplug://plugin/echo/README.md'));
    const read = (await inspector(serve, ['--method', 'resources/read', '--uri', 'skillplug://plugin/echo/README.md'])) as { contents: { text: string }[] };
    assert.equal(read.contents[0]?.text, README);
  });
});
