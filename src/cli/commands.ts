import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { isPlainObject } from '../abi/codec.js';
import { describeLogEvent, type PluginLogEvent } from '../abi/plugin-log.js';
import type { JsonObject, PluginMetadata } from '../abi/types.js';
import type { NativePluginTrait } from '../plugin/interfaces.js';
import { sha256 } from '../signing/lock.js';
import type { DiscoveredPlugin } from '../discovery/index.js';
import { ErrorCode, PluginError, asPluginError, isPluginError } from '../errors.js';
import { PluginLoader, type IsolationMode, type PluginLoaderOptions } from '../loader/index.js';
import { readManifest, validatePlugin, type ValidationIssue } from '../manifest/index.js';
import { WarningCode, type ValidationWarning } from '../manifest/vtcode.js';
import { detectSandbox, type SandboxMode } from '../sandbox/index.js';
import type { PermissionGrant, PermissionReport } from '../sandbox/permissions.js';
import { permissionLines, permissionMarker, permissionsJson } from './permission-commands.js';
import { ExitCode, escapeTerminal as safe, exitCodeFor, writeErr, writeOut } from './output.js';
import { toolName } from '../tools/definitions.js';
import { listPluginResources } from '../tools/resources.js';

/** Options every plugin-finding command shares. */
export interface LoaderFlags {
  workspace?: string | undefined;
  pluginsDir?: string[] | undefined;
  isolation?: string | undefined;
  sandbox?: string | undefined;
  maxMemoryMb?: number | undefined;
  maxProcesses?: number | undefined;
  /** Deadline per call and per library load, in ms. */
  timeout?: number | undefined;
  recycleAfterCalls?: number | undefined;
  recycleAboveMb?: number | undefined;
  requireSignature?: boolean | undefined;
  trustedKey?: string[] | undefined;
  strict?: boolean | undefined;
  /** Permissions granted for this run (the --grant-… flags). */
  grant?: PermissionGrant | undefined;
}

/** Builds a loader from CLI flags; warnings go to stderr. */
export function loaderFromFlags(flags: LoaderFlags): PluginLoader {
  return new PluginLoader(loaderOptions(flags));
}

/** Loader options from CLI flags. */
export function loaderOptions(flags: LoaderFlags): PluginLoaderOptions {
  return {
    ...(flags.workspace !== undefined ? { workspace: flags.workspace } : {}),
    pluginsDirs: flags.pluginsDir ?? [],
    ...(flags.isolation !== undefined ? { isolation: flags.isolation as IsolationMode } : {}),
    ...(flags.sandbox !== undefined ? { sandbox: flags.sandbox as SandboxMode } : {}),
    ...(flags.maxMemoryMb !== undefined ? { maxMemoryMb: flags.maxMemoryMb } : {}),
    ...(flags.maxProcesses !== undefined ? { maxProcesses: flags.maxProcesses } : {}),
    ...(flags.timeout !== undefined ? { timeoutMs: flags.timeout } : {}),
    ...(flags.recycleAfterCalls !== undefined ? { recycleAfterCalls: flags.recycleAfterCalls } : {}),
    ...(flags.recycleAboveMb !== undefined ? { recycleAboveMb: flags.recycleAboveMb } : {}),
    ...(flags.requireSignature ? { requireSignature: true } : {}),
    ...(flags.strict ? { strict: true } : {}),
    ...(flags.grant ? { grant: flags.grant } : {}),
    trustedKeys: flags.trustedKey ?? [],
    onWarning: (message) => writeErr(`skillplug: warning: ${message}`),
  };
}

/** `skillplug serve`: an MCP server on stdio until stdin closes. */
export async function serveCommand(flags: LoaderFlags & { maxMessageMb?: number | undefined; quarantineMs?: number | undefined }): Promise<void> {
  if (flags.isolation === 'none') writeErr('skillplug serve: warning: with --isolation none a plugin that writes to stdout corrupts the MCP stream, and a crash stops the server.');
  // Imported on demand: the MCP SDK is the heaviest module and only serve needs it.
  const { serveStdio } = await import('../tools/mcp-server.js');
  await serveStdio({
    ...loaderOptions(flags),
    ...(flags.maxMessageMb !== undefined ? { maxMessageBytes: flags.maxMessageMb * 1024 * 1024 } : {}),
    ...(flags.quarantineMs !== undefined ? { quarantineMs: flags.quarantineMs } : {}),
  });
}

function pluginSummary(p: DiscoveredPlugin, deep: DeepFacts | undefined, permissions: PermissionReport | undefined): Record<string, unknown> {
  // Fields added in order, not spread in: list makes one of these per plugin.
  const summary: Record<string, unknown> = { name: p.name ?? null, version: p.version ?? null, description: p.description ?? null, path: p.path, status: p.status, errors: p.errors };
  if (p.agentPlugin) summary.agent_plugin = p.agentPlugin;
  summary.permissions = permissions ? permissionsJson(permissions) : null;
  return deep ? Object.assign(summary, deep) : summary;
}

type DeepFacts = ({ metadata: PluginMetadata } | { metadata_error: { code: string; message: string } }) & { metadata_source?: 'probe' | 'cache' };

// Library metadata for --deep: asked once per build, in an isolated host, and cached by hash.
async function deepFacts(probeLoader: PluginLoader, p: DiscoveredPlugin): Promise<DeepFacts | undefined> {
  if (p.status !== 'ok') return undefined;
  try {
    const { cachedMetadata } = await import('../discovery/metadata-cache.js');
    const entry = await cachedMetadata(p, async () => {
      const plugin = await probeLoader.loadPlugin(p.path);
      await plugin.close();
      return plugin.metadata;
    });
    const source = entry.cached ? 'cache' : 'probe';
    return 'metadata' in entry ? { metadata: entry.metadata, metadata_source: source } : { metadata_error: entry.error, metadata_source: source };
  } catch (err) {
    const e = asPluginError(err, ErrorCode.INTERNAL, `probing ${p.path}`);
    return { metadata_error: { code: e.code, message: e.message } };
  }
}

/** `skillplug list` */
export async function listCommand(flags: LoaderFlags & { json?: boolean; deep?: boolean }): Promise<number> {
  const loader = loaderFromFlags(flags);
  const plugins = await loader.discoverPlugins({ agentPlugins: true });
  let deep: (DeepFacts | undefined)[] = [];
  if (flags.deep) {
    const probeLoader = loaderFromFlags({ ...flags, isolation: 'process' });
    deep = await Promise.all(plugins.map((p) => deepFacts(probeLoader, p)));
  }
  // Printed, never changed: plugins that ask for nothing share one report.
  const permissions = loader.permissionReports(plugins, { shared: true });
  if (flags.json) {
    await writeOut(`${JSON.stringify({ trusted_dirs: loader.trustedDirs(), plugins: plugins.map((p, i) => pluginSummary(p, deep[i], permissions[i])) })}\n`);
    return ExitCode.OK;
  }
  const lines = [`Trusted dirs: ${loader.trustedDirs().join(', ')}`];
  if (plugins.length === 0) lines.push('No plugins found. Put plugin directories in a trusted dir, or pass --plugins-dir DIR.');
  const marks = { ok: 'ok   ', error: 'ERROR', 'untrusted-workspace': 'UNTRUSTED', 'agent-plugin': 'AGENT' } as const;
  plugins.forEach((p, i) => {
    // Every field here comes from plugin files: one line each, whatever they hold.
    const label = safe(`${p.name ?? '(unnamed)'}${p.version ? ` ${p.version}` : ''}`);
    lines.push(`${marks[p.status].padEnd(9)} ${label.padEnd(28)} ${safe(p.path)}`);
    if (p.description && p.status !== 'error') lines.push(`          ${safe(p.description)}`);
    if (p.agentPlugin) lines.push(`          Agent Plugin (${safe(p.agentPlugin.evidence.join(', '))}): skills and MCP config for agents, no library; skillplug does not run it.`);
    const marker = permissions[i] ? permissionMarker(permissions[i] as PermissionReport) : '';
    if (marker) lines.push(`          ${marker} (run "skillplug inspect ${safe(p.name ?? p.path)}" for the grant command)`);
    const facts = deep[i];
    if (facts && 'metadata' in facts) lines.push(`          library: ${safe(`${facts.metadata.name} ${facts.metadata.version}`)}, thread-safe: ${facts.metadata.thread_safe ? 'yes' : 'no'}`);
    if (facts && 'metadata_error' in facts) lines.push(`          [${facts.metadata_error.code}] ${safe(facts.metadata_error.message)}`);
    for (const e of p.errors) lines.push(`          [${e.code}] ${safe(e.message)}`);
  });
  await writeOut(`${lines.join('\n')}\n`);
  return ExitCode.OK;
}

/**
 * `skillplug validate DIR [--deep [--input JSON]]`: files only; `--deep` also loads the library in
 * the isolated (sandboxed when available) host to read its metadata, and with `--input` makes one
 * call to see whether its `output` is an object as VT Code requires.
 */
export async function validateCommand(dir: string, flags: LoaderFlags & { json?: boolean; deep?: boolean; input?: string | undefined }): Promise<number> {
  if (flags.input !== undefined && !flags.deep) throw new PluginError(ErrorCode.USAGE, '--input needs --deep: only a deep validation runs the plugin.');
  const input = flags.input === undefined ? undefined : parseJsonObjectFlag(flags.input, '--input');
  const { errors, warnings } = await validatePlugin(dir);
  const notFound = errors.find((i) => i.code === ErrorCode.NOT_FOUND);
  if (notFound) throw new PluginError(ErrorCode.NOT_FOUND, notFound.message, { path: dir });
  let deep: Record<string, unknown> = {};
  if (flags.deep && errors.length === 0) deep = await deepValidate(dir, flags, input, errors, warnings);
  const valid = errors.length === 0;
  if (flags.json) {
    await writeOut(`${JSON.stringify({ valid, errors, warnings, ...deep })}\n`);
    return valid ? ExitCode.OK : ExitCode.PLUGIN_FAILED;
  }
  // Messages quote plugin files: escaped like every plugin-controlled text.
  const line = (kind: string, i: { code: string; message: string; field?: string | undefined }): string => `  ${kind}[${i.code}]${i.field ? ` (${safe(i.field)})` : ''} ${safe(i.message)}`;
  const lines = [valid ? `${safe(dir)}: valid` : `${safe(dir)}: ${errors.length} problem${errors.length === 1 ? '' : 's'}`];
  lines.push(...errors.map((i) => line('', i)), ...warnings.map((w) => line('warning ', w)));
  const metadata = deep.metadata as PluginMetadata | undefined;
  if (metadata) lines.push(`  library metadata: ${safe(`${metadata.name} ${metadata.version}`)}, abi ${metadata.abi_version}, thread-safe: ${metadata.thread_safe ? 'yes' : 'no'}`);
  if (flags.deep && input === undefined && valid) lines.push('  (output shape not checked: pass --input JSON to make one call)');
  await writeOut(`${lines.join('\n')}\n`);
  return valid ? ExitCode.OK : ExitCode.PLUGIN_FAILED;
}

// Loads the plugin as list --deep does (its parent dir becomes the one trusted dir); errors and warnings grow in place.
async function deepValidate(dir: string, flags: LoaderFlags, input: JsonObject | undefined, errors: ValidationIssue[], warnings: ValidationWarning[]): Promise<Record<string, unknown>> {
  const canonical = await realpath(dir);
  const loader = new PluginLoader({ ...loaderOptions({ ...flags, isolation: 'process' }), pluginsDirs: [path.dirname(canonical)], defaultDirs: false });
  let plugin: NativePluginTrait | undefined;
  try {
    plugin = await loader.loadPlugin(canonical);
    if (input === undefined) return { metadata: plugin.metadata };
    const result = await plugin.execute({ input, workspace_root: loader.workspace, config: loader.pluginConfig(plugin.metadata.name) });
    if (!isPlainObject(result.output)) {
      const got = result.output === null ? 'null' : Array.isArray(result.output) ? 'an array' : typeof result.output;
      warnings.push({ code: WarningCode.VTCODE_OUTPUT, field: 'output', message: `The call returned "output" as ${got}; VT Code rejects any result whose output is not a JSON object. Wrap it, e.g. {"value": …}.` });
    }
    return { metadata: plugin.metadata, call: { success: result.success } };
  } catch (err) {
    const e = asPluginError(err, ErrorCode.INTERNAL, `deep validation of ${canonical}`);
    errors.push({ code: e.code, message: e.message });
    return {};
  } finally {
    await plugin?.close();
  }
}

async function withPlugin<T>(loader: PluginLoader, ref: string, use: (plugin: NativePluginTrait, found: DiscoveredPlugin) => Promise<T>): Promise<T> {
  const found = await loader.findPlugin(ref);
  const plugin = await loader.loadPlugin(found.path);
  try {
    return await use(plugin, found);
  } finally {
    await plugin.close();
  }
}

/** `skillplug inspect PLUGIN`: loads the plugin (runs its code) to read its library metadata; shows its permissions even when it may not load. */
export async function inspectCommand(ref: string, flags: LoaderFlags & { json?: boolean }): Promise<number> {
  const loader = loaderFromFlags(flags);
  const found = await loader.findPlugin(ref);
  const reading = await readManifest(found.path);
  const report = reading.manifest ? loader.permissionReport(found.path, reading.manifest) : undefined;
  const name = reading.manifest?.name ?? ref;
  let plugin: NativePluginTrait;
  try {
    plugin = await loader.loadPlugin(found.path);
  } catch (err) {
    if (!report || !isPluginError(err, ErrorCode.PERMISSION_DENIED)) throw err;
    // What it asks for is exactly what the user needs to see to decide; show it beside the error.
    if (flags.json) await writeOut(`${JSON.stringify({ manifest: reading.raw, permissions: permissionsJson(report), error: err.toJSON() })}\n`);
    else {
      await writeOut(`${[`${name} (not loaded)`, `  directory:       ${found.path}`, ...permissionLines(name, report, '  ')].join('\n')}\n`);
      writeErr(`skillplug: error[${err.code}]: ${err.message}`);
    }
    return exitCodeFor(err);
  }
  try {
    const manifest = (await readManifest(plugin.path)).raw;
    const bytes = await readFile(plugin.libraryPath);
    const library = { path: plugin.libraryPath, size: (await stat(plugin.libraryPath)).size, sha256: sha256(bytes) };
    const permissions = report ? permissionsJson(report) : null;
    // What `serve` offers as MCP resources (README.md, scripts/, templates/), and what it refuses.
    const listed = listPluginResources(plugin.path, toolName(plugin.metadata.name));
    const resources = listed.resources.map((r) => ({ uri: r.uri, path: r.path, size: r.size, mimeType: r.mimeType }));
    if (flags.json) {
      await writeOut(`${JSON.stringify({ metadata: plugin.metadata, manifest, library, permissions, resources, skipped_resources: listed.skipped })}\n`);
      return ExitCode.OK;
    }
    const m = plugin.metadata;
    const lines = [
      safe(`${m.name} ${m.version}${m.author ? ` by ${m.author}` : ''}`),
      `  ${safe(m.description)}`,
      ...(m.when_to_use ? [`  when to use:     ${safe(m.when_to_use)}`] : []),
      ...(m.when_not_to_use ? [`  when not to use: ${safe(m.when_not_to_use)}`] : []),
      ...(m.allowed_tools ? [`  allowed tools:   ${safe(m.allowed_tools.join(', '))}`] : []),
      `  abi version:     ${m.abi_version}`,
      `  thread safe:     ${m.thread_safe ? 'yes' : 'no (calls are serialized)'}`,
      `  directory:       ${plugin.path}`,
      `  library:         ${library.path} (${library.size} bytes)`,
      `  sha256:          ${library.sha256}`,
      ...(report ? permissionLines(m.name, report, '  ') : []),
      ...(resources.length > 0 ? ['  resources:', ...resources.map((r) => `    ${safe(r.uri)} (${r.size} bytes)`)] : ['  resources:       none (README.md, scripts/, templates/)']),
      ...listed.skipped.map((r) => `    not served: ${safe(r.relative)} (${r.reason})`),
    ];
    await writeOut(`${lines.join('\n')}\n`);
    return ExitCode.OK;
  } finally {
    await plugin.close();
  }
}

/** Parses a JSON object given on the command line; `E_USAGE` otherwise. */
export function parseJsonObjectFlag(text: string, flag: string): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new PluginError(ErrorCode.USAGE, `${flag} is not valid JSON (${(err as Error).message}). Pass a JSON object, e.g. ${flag} '{"key":"value"}'.`);
  }
  if (!isPlainObject(value)) throw new PluginError(ErrorCode.USAGE, `${flag} must be a JSON object, not ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}.`);
  return value as JsonObject;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads the run input from --input JSON, --input-file FILE or --input - (stdin). */
export async function readInputFlag(flags: { input?: string | undefined; inputFile?: string | undefined }): Promise<JsonObject> {
  if (flags.input !== undefined && flags.inputFile !== undefined) throw new PluginError(ErrorCode.USAGE, 'Use either --input or --input-file, not both.');
  if (flags.inputFile !== undefined) {
    let text: string;
    try {
      text = await readFile(flags.inputFile, 'utf8');
    } catch (err) {
      throw new PluginError(ErrorCode.USAGE, `Cannot read --input-file ${flags.inputFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}.`);
    }
    return parseJsonObjectFlag(text, '--input-file');
  }
  if (flags.input === '-') return parseJsonObjectFlag(await readStdin(), '--input -');
  if (flags.input !== undefined) return parseJsonObjectFlag(flags.input, '--input');
  return {};
}

/** Flags of `skillplug run`. */
export interface RunFlags extends LoaderFlags {
  /** Show the plugin's stderr/stdout lines on stderr as they arrive. */
  verbose?: boolean | undefined;
  input?: string | undefined;
  inputFile?: string | undefined;
  config?: string | undefined;
  json?: boolean | undefined;
}

/** `skillplug run PLUGIN` */
export async function runCommand(ref: string, flags: RunFlags): Promise<number> {
  const input = await readInputFlag(flags);
  const explicitConfig = flags.config === undefined ? undefined : parseJsonObjectFlag(flags.config, '--config');
  const loader = new PluginLoader({ ...loaderOptions(flags), ...(flags.verbose ? { onPluginLog: (event: PluginLogEvent) => writeErr(describeLogEvent(event)) } : {}) });
  // The host's first start awaits the one-off sandbox probe (a bwrap run): started now, it runs beside finding and verifying the plugin.
  if ((flags.isolation ?? 'process') === 'process' && loader.security.sandbox !== 'off') detectSandbox().catch(() => undefined);
  if (flags.verbose && flags.isolation === 'none') writeErr('skillplug: with --isolation none the plugin writes to this stderr directly; its lines are not marked or escaped.');
  return withPlugin(loader, ref, async (plugin) => {
    const config = explicitConfig ?? loader.pluginConfig(plugin.metadata.name);
    const result = await plugin.execute(
      { input, workspace_root: loader.workspace, config },
      flags.timeout !== undefined ? { timeoutMs: flags.timeout } : {},
    );
    if (flags.json) await writeOut(`${JSON.stringify(result)}\n`);
    else {
      // A failure's output is usually the ABI's empty object: nothing to print on stdout then.
      const emptyOutput = isPlainObject(result.output) && Object.keys(result.output).length === 0;
      if (result.success || !emptyOutput) await writeOut(`${JSON.stringify(result.output, null, 2)}\n`);
      if (result.files.length > 0) writeErr(`files:\n${result.files.map((f) => `  ${safe(f)}`).join('\n')}`);
      if (!result.success) writeErr(`skillplug: plugin "${safe(plugin.metadata.name)}" reported failure: ${safe(result.error ?? '(no error message)')}`);
    }
    return result.success ? ExitCode.OK : ExitCode.PLUGIN_FAILED;
  });
}
