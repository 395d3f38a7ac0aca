import path from 'node:path';
import { byPrecedence, type DiscoveredPlugin } from '../discovery/index.js';
import type { PluginManifest } from '../manifest/index.js';
import { listPluginResources } from './resources.js';

/** Tool names the major model APIs accept. */
export const TOOL_NAME_PATTERN = /^[a-zA-Z0-9_-]{1,64}$/;

/** Hints for agents about what a tool may do (MCP tool annotations). */
export interface ToolAnnotations {
  title: string;
  /**
   * True only when the run enforces it: the plugin runs sandboxed and is granted no writes, no network
   * and no Unix sockets. Unconfined (`--sandbox off`, `--isolation none`) it is false whatever plugin.json says.
   */
  readOnlyHint: boolean;
  /** False only when the run enforces it: sandboxed with no network or Unix socket grant; true otherwise. */
  openWorldHint: boolean;
}

/** How the tools will run, which decides what their annotations may claim. */
export interface ToolRunOptions {
  /** Plugins run in a sandbox that enforces their permissions (isolated, sandbox on and available). Default false: nothing is claimed. */
  confined?: boolean;
}

/** A plugin as an agent tool. */
export interface ToolDefinition {
  name: string;
  description: string;
  input_schema: Record<string, unknown>;
  /** plugin.json's `output_schema`, when declared. */
  output_schema?: Record<string, unknown>;
  annotations: ToolAnnotations;
  /**
   * plugin.json's `allowed_tools`: the agent tools this skill expects to be used alongside it.
   * ABI v1 gives a plugin no way to call tools itself, so this is advisory, for the agent framework to enforce.
   */
  allowed_tools: string[];
  /** Where the tool comes from. */
  plugin: { name: string; version: string; path: string };
}

/** A plugin left out because another with the same tool name takes precedence. */
export interface ShadowedTool {
  name: string;
  path: string;
  /** The plugin dir that wins. */
  shadowedBy: string;
}

/** Which plugins become which tools. */
export interface ToolPlan {
  tools: { definition: ToolDefinition; plugin: DiscoveredPlugin }[];
  shadowed: ShadowedTool[];
}

/** A valid tool name for a plugin name: invalid characters become `_`, at most 64 characters. */
export function toolName(pluginName: string): string {
  return pluginName.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 64) || '_';
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** The tool description: the plugin's purpose, then when to use it and when not. */
export function toolDescription(manifest: Pick<PluginManifest, 'description' | 'when_to_use' | 'when_not_to_use'>): string {
  const parts = [oneLine(manifest.description)];
  if (manifest.when_to_use) parts.push(`When to use: ${oneLine(manifest.when_to_use)}`);
  if (manifest.when_not_to_use) parts.push(`When not to use: ${oneLine(manifest.when_not_to_use)}`);
  return parts.join('\n');
}

function definitionFor(manifest: PluginManifest, path: string, run: ToolRunOptions): ToolDefinition {
  const permissions = manifest.permissions ?? {};
  // Permissions are enforced only in the sandbox; a plugin that loads was granted exactly what it asked for.
  const confined = run.confined === true;
  const offline = confined && permissions.network !== true && permissions.unix_sockets !== true;
  const definition: ToolDefinition = {
    name: toolName(manifest.name),
    description: toolDescription(manifest),
    input_schema: manifest.input_schema ?? { type: 'object', additionalProperties: true },
    annotations: {
      title: manifest.name,
      readOnlyHint: offline && (permissions.fs_write ?? []).length === 0,
      openWorldHint: !offline,
    },
    allowed_tools: manifest.allowed_tools ?? [],
    plugin: { name: manifest.name, version: manifest.version, path },
  };
  if (manifest.output_schema) definition.output_schema = manifest.output_schema;
  return definition;
}

/**
 * Turns valid discovered plugins into tools. When two share a tool name, the one from the
 * higher-precedence dir wins (explicit dirs, then the workspace's, then the user's) and the other
 * is reported as shadowed. Broken and untrusted plugins are left out.
 */
export function planTools(plugins: readonly DiscoveredPlugin[], run: ToolRunOptions = {}): ToolPlan {
  const plan: ToolPlan = { tools: [], shadowed: [] };
  const taken = new Map<string, DiscoveredPlugin>();
  for (const plugin of byPrecedence(plugins)) {
    if (plugin.status !== 'ok' || !plugin.manifest) continue;
    const definition = definitionFor(plugin.manifest, plugin.path, run);
    const winner = taken.get(definition.name);
    if (winner) {
      plan.shadowed.push({ name: definition.name, path: plugin.path, shadowedBy: winner.path });
      continue;
    }
    taken.set(definition.name, plugin);
    plan.tools.push({ definition, plugin });
  }
  plan.tools.sort((a, b) => a.definition.name.localeCompare(b.definition.name));
  return plan;
}

/** `{ name, description, input_schema, … }` for each usable plugin, ready for a model API's tool list. */
export function toolDefinitions(plugins: readonly DiscoveredPlugin[], run: ToolRunOptions = {}): ToolDefinition[] {
  return planTools(plugins, run).tools.map((t) => t.definition);
}

// Where a skill's own docs and helper files are, so the model can read them when it needs to.
function filesNote(dir: string, tool: string): string {
  const { resources } = listPluginResources(dir, tool);
  const places = new Set(resources.map((r) => (r.relative === 'README.md' ? path.join(dir, 'README.md') : `${path.join(dir, r.relative.split('/')[0] as string)}${path.sep}`)));
  return places.size > 0 ? ` Files: ${[...places].join(', ')}` : '';
}

/**
 * A compact system-prompt block naming each skill, its one-line purpose and when to use it, and
 * where its README, scripts/ and templates/ are: names and purposes only (schemas come with the
 * tools), so the prompt stays small.
 */
export function renderSkillsPrompt(plugins: readonly DiscoveredPlugin[]): string {
  const tools = toolDefinitions(plugins);
  if (tools.length === 0) return '';
  const lines = tools.map((t) => {
    const manifest = plugins.find((p) => p.path === t.plugin.path)?.manifest;
    const use = manifest?.when_to_use ? ` Use when: ${oneLine(manifest.when_to_use)}` : '';
    const avoid = manifest?.when_not_to_use ? ` Not when: ${oneLine(manifest.when_not_to_use)}` : '';
    return `- ${t.name}: ${oneLine(manifest?.description ?? '')}${use}${avoid}${filesNote(t.plugin.path, t.name)}`;
  });
  return ['<skills>', 'Native skills, each callable as the tool of the same name:', ...lines, '</skills>'].join('\n');
}
