import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { PluginLoader, renderSkillsPrompt, toolDefinitions, planTools, toolName, validatePluginStructure, ErrorCode } from '../../src/index.js';
import type { DiscoveredPlugin } from '../../src/index.js';
import { TOOL_NAME_PATTERN } from '../../src/tools/definitions.js';
import { buildFixture, tempDir } from '../helpers/fixtures.js';

describe('tool definitions', () => {
  let plugins: DiscoveredPlugin[];
  let explicit: string;
  let ws: string;

  before(async () => {
    explicit = tempDir();
    ws = tempDir();
    const manifest = (name: string, extra: Record<string, unknown> = {}) => ({ name, description: `The ${name} skill.`, version: '1.0.0', ...extra });
    await buildFixture(explicit, {
      source: 'echo',
      name: 'file.stats+v2',
      manifest: manifest('file.stats+v2', { when_to_use: 'counting files', when_not_to_use: 'editing', permissions: { fs_write: ['${workspace}/out'] } }),
    });
    await buildFixture(explicit, { source: 'echo', name: 'dupe', manifest: manifest('dupe', { description: 'explicit dupe' }) });
    await buildFixture(path.join(ws, '.vtcode', 'plugins'), { source: 'echo', name: 'dupe', manifest: manifest('dupe', { description: 'workspace dupe' }) });
    const home = tempDir();
    await buildFixture(path.join(home, '.vtcode', 'plugins'), { source: 'echo', name: 'mine', manifest: manifest('mine') });
    await buildFixture(path.join(home, '.vtcode', 'plugins'), { source: 'echo', name: 'shared', manifest: manifest('shared', { description: 'user shared' }) });
    await buildFixture(path.join(ws, '.agents', 'plugins'), { source: 'echo', name: 'shared', manifest: manifest('shared', { description: 'workspace shared' }) });
    const loader = new PluginLoader({ pluginsDirs: [explicit], workspace: ws, home, readConfig: false });
    // Treat the workspace as trusted here: precedence, not trust, is under test.
    plugins = (await loader.discoverPlugins()).map((p) => (p.status === 'untrusted-workspace' ? { ...p, status: 'ok' as const, errors: [] } : p));
  });

  it('makes valid tool names', () => {
    assert.equal(toolName('file.stats+v2'), 'file_stats_v2');
    assert.match(toolName('x'.repeat(100)), TOOL_NAME_PATTERN);
    for (const t of toolDefinitions(plugins)) assert.match(t.name, TOOL_NAME_PATTERN);
  });

  it('builds the description from description, when_to_use and when_not_to_use, and annotations from permissions', () => {
    const t = toolDefinitions(plugins).find((d) => d.name === 'file_stats_v2');
    assert.equal(t?.description, 'The file.stats+v2 skill.\nWhen to use: counting files\nWhen not to use: editing');
    assert.deepEqual(t?.input_schema, { type: 'object', additionalProperties: true });
    assert.equal(t?.annotations.readOnlyHint, false);
  });

  it('claims readOnlyHint and a closed world only for a confined run, and never for a plugin that may write', () => {
    const unconfined = toolDefinitions(plugins).find((d) => d.name === 'mine');
    assert.deepEqual([unconfined?.annotations.readOnlyHint, unconfined?.annotations.openWorldHint], [false, true]);
    const confined = toolDefinitions(plugins, { confined: true });
    const mine = confined.find((d) => d.name === 'mine');
    assert.deepEqual([mine?.annotations.readOnlyHint, mine?.annotations.openWorldHint], [true, false]);
    assert.equal(confined.find((d) => d.name === 'file_stats_v2')?.annotations.readOnlyHint, false);
  });

  it('resolves name clashes by precedence (explicit, then workspace) and reports them; a workspace plugin never shadows the user\'s', () => {
    const plan = planTools(plugins);
    const byName = Object.fromEntries(plan.tools.map((t) => [t.definition.name, t.definition.description]));
    assert.equal(byName.dupe, 'explicit dupe');
    assert.equal(byName.shared, 'user shared');
    assert.deepEqual(plugins.filter((p) => p.name === 'shared' && p.status === 'error').map((p) => p.errors.map((e) => e.code)), [[ErrorCode.SHADOWING]]);
    assert.equal(plan.shadowed.length, 1);
    assert.ok(plan.shadowed.every((s) => s.shadowedBy !== s.path));
  });

  it('renders a compact skills prompt: names, purposes and when to use, no schemas', () => {
    const prompt = renderSkillsPrompt(plugins);
    assert.match(prompt, /^<skills>/);
    assert.match(prompt, /- file_stats_v2: The file\.stats\+v2 skill\. Use when: counting files Not when: editing/);
    assert.doesNotMatch(prompt, /input_schema|properties/);
    assert.equal(prompt.split('\n').length, 2 + 4 + 1);
  });

  it('validates schemas in plugin.json', async () => {
    const dir = await buildFixture(tempDir(), { source: 'echo', name: 'schemas', manifest: { name: 'schemas', description: 'd', version: '1', input_schema: { type: 'object', properties: { n: { type: 'nope' } } }, output_schema: { type: 'string' } } });
    const issues = await validatePluginStructure(dir);
    assert.deepEqual(issues.map((i) => [i.code, i.field]).sort(), [
      [ErrorCode.INVALID_MANIFEST, 'input_schema'],
      [ErrorCode.INVALID_MANIFEST, 'output_schema'],
    ]);
  });
});
