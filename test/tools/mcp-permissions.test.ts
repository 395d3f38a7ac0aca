// serve offers only tools that can load: a plugin asking for more than the user granted is no tool.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildFixture, tempDir } from '../helpers/fixtures.js';
import { withServe } from '../helpers/mcp-clients.js';

async function listedTools(plugins: string, workspace: string, extra: string[]): Promise<{ tools: string[]; stderr: string }> {
  return withServe(['--plugins-dir', plugins, '--workspace', workspace, '--sandbox', 'off', ...extra], {}, async ({ client, stderr }) => ({
    tools: (await client.listTools()).tools.map((t) => t.name).sort(),
    stderr: stderr(),
  }));
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
