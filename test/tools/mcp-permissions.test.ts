// serve offers only tools that can load: a plugin asking for more than the user granted is no tool.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { CLI_PATH, buildFixture, tempDir, tempHome } from '../helpers/fixtures.js';

async function listedTools(plugins: string, workspace: string, extra: string[]): Promise<{ tools: string[]; stderr: string }> {
  let stderr = '';
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI_PATH, 'serve', '--plugins-dir', plugins, '--workspace', workspace, '--sandbox', 'off', ...extra],
    env: { ...(process.env as Record<string, string>), HOME: tempHome() },
    stderr: 'pipe',
  });
  transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const client = new Client({ name: 'skillplug-test', version: '1.0.0' });
  await client.connect(transport);
  try {
    const { tools } = await client.listTools();
    return { tools: tools.map((t) => t.name).sort(), stderr };
  } finally {
    await client.close();
  }
}

describe('serve and permissions', () => {
  it('leaves out a plugin whose requests are not granted, saying which grant it lacks, and lists it once granted', async () => {
    const plugins = tempDir();
    const workspace = tempDir();
    await buildFixture(plugins, { source: 'echo', name: 'plain' });
    await buildFixture(plugins, { source: 'echo', name: 'wants-net', manifest: { name: 'wants-net', description: 'd', version: '1.0.0', permissions: { network: true } } });
    const refused = await listedTools(plugins, workspace, []);
    assert.deepEqual(refused.tools, ['plain']);
    assert.match(refused.stderr, /wants-net.*E_PERMISSION_DENIED/);
    const granted = await listedTools(plugins, workspace, ['--grant-network']);
    assert.deepEqual(granted.tools, ['plain', 'wants-net']);
  });
});
