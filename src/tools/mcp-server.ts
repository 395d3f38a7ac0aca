// The low-level MCP Server is used on purpose: tool schemas come from plugin.json as JSON Schema, not zod.
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import type { jsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/types.js';
import {
  CallToolRequestSchema,
  ErrorCode as McpErrorCode,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  type CallToolResult,
  type JSONRPCMessage,
  type Resource,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { MAX_RESULT_DEPTH, isPlainObject, nestedDeeperThan } from '../abi/codec.js';
import type { PluginLogEvent } from '../abi/plugin-log.js';
import type { JsonObject, PluginResult } from '../abi/types.js';
import type { NativePluginTrait } from '../plugin/interfaces.js';
import type { DiscoveredPlugin } from '../discovery/index.js';
import { ErrorCode, PluginError, asPluginError } from '../errors.js';
import { escapeTerminal } from '../terminal.js';
import { DEFAULT_MAX_OUTPUT_BYTES, PluginLoader, type PluginLoaderOptions } from '../loader/index.js';
import { packageVersion } from '../version.js';
import { detectSandbox } from '../sandbox/index.js';
import { fullyGranted, permissionDenied, type PermissionReport } from '../sandbox/permissions.js';
import { planTools, type ToolDefinition, type ToolPlan } from './definitions.js';
import { listPluginResources, parseResourceUri, readPluginResource, type PluginResources } from './resources.js';
import { compileSchema, describeSchemaErrors } from '../manifest/schema.js';
import { BoundedStdioTransport } from './stdio-transport.js';

/** The first MCP protocol version with `resource_link` content and `structuredContent`. */
const LINKS_SINCE = '2025-06-18';
// MCP's "resource not found" error (JSON-RPC server error range).
const RESOURCE_NOT_FOUND = -32002;

/** Options for {@link SkillplugMcpServer}. */
export interface McpServerOptions extends PluginLoaderOptions {
  /**
   * Plugins are rediscovered when the trusted dirs or a plugin dir change (fs.watch); where a dir
   * cannot be watched, they are polled this often, in ms. 0 turns watching off. Default 10 000.
   */
  watchIntervalMs?: number;
  /** How often a long call reports progress when the client asked for it, in ms. Default 2000. */
  progressIntervalMs?: number;
  /** Receives diagnostic lines (left-out plugins, shadowed names). Default: stderr. */
  log?: (line: string) => void;
  /** Longest JSON-RPC message read from stdin, in bytes; a longer one gets an error answer. Default: `maxOutputBytes`. */
  maxMessageBytes?: number;
}

interface LoadedEntry {
  plugin: Promise<NativePluginTrait>;
  fingerprint: string;
}

async function fileFingerprint(file: string | undefined): Promise<string> {
  if (!file) return '-';
  const info = await stat(file).catch(() => undefined);
  return info ? `${info.size}:${info.mtimeMs}` : 'missing';
}

async function pluginFingerprint(p: DiscoveredPlugin): Promise<string> {
  return `${p.path}|${p.status}|${await fileFingerprint(path.join(p.path, 'plugin.json'))}|${await fileFingerprint(p.libraryPath)}`;
}

function mcpTool(definition: ToolDefinition, readmeUri: string | undefined): Tool {
  const tool: Tool = {
    name: definition.name,
    title: definition.annotations.title,
    description: readmeUri ? `${definition.description}\nREADME: ${readmeUri} (MCP resource; read it before first use)` : definition.description,
    inputSchema: definition.input_schema as Tool['inputSchema'],
    annotations: definition.annotations,
    _meta: {
      'skillplug/allowed_tools': definition.allowed_tools,
      'skillplug/plugin': definition.plugin,
    },
  };
  if (definition.output_schema) tool.outputSchema = definition.output_schema as Tool['outputSchema'];
  return tool;
}

function errorResult(err: PluginError, extra: CallToolResult['content'] = []): CallToolResult {
  const tail = err.failure?.stderrTail ? `\n--- plugin stderr (last lines) ---\n${err.failure.stderrTail}` : '';
  return {
    isError: true,
    content: [{ type: 'text', text: `error[${err.code}]: ${err.message}${tail}` }, ...extra],
    _meta: { 'skillplug/error': err.toJSON() },
  };
}

/**
 * The files a result names, as the client's protocol version can take them: `resource_link` items
 * from 2025-06-18 on; before that (where a `resource_link` fails the client's result schema) one text
 * item listing their file URIs.
 */
function fileContent(files: readonly string[], workspace: string, protocol: string): CallToolResult['content'] {
  if (files.length === 0) return [];
  const uris = files.map((file) => pathToFileURL(path.resolve(workspace, file)).href);
  if (protocol >= LINKS_SINCE) return uris.map((uri) => ({ type: 'resource_link' as const, uri, name: path.basename(new URL(uri).pathname) }));
  return [{ type: 'text', text: `Files:\n${uris.join('\n')}` }];
}

// Why an output breaks the tool's declared output_schema, or undefined when it keeps the promise.
function outputProblem(output: unknown, schema: Record<string, unknown> | undefined): string[] | undefined {
  if (!schema) return undefined;
  if (!isPlainObject(output)) return [`/: the output is ${Array.isArray(output) ? 'an array' : output === null ? 'null' : typeof output}, not the JSON object an output_schema describes`];
  const compiled = compileSchema(schema);
  if (!compiled.ok || compiled.validate(output)) return undefined;
  return describeSchemaErrors(compiled.validate.errors);
}

function toolResult(result: PluginResult, definition: ToolDefinition, workspace: string, protocol: string): CallToolResult {
  const files = fileContent(result.files, workspace, protocol);
  const text = JSON.stringify(result.output);
  const origin = { plugin: definition.plugin.name, path: definition.plugin.path };
  if (!result.success) {
    const failed = new PluginError(ErrorCode.PLUGIN_FAILED, `Plugin "${origin.plugin}" (${origin.path}) reported failure: ${result.error ?? 'no reason given'}`, { ...origin, data: { output: result.output } });
    return { ...errorResult(failed, files), content: [{ type: 'text', text: `error[${failed.code}]: ${result.error ?? 'the plugin reported failure'}\n${text}` }, ...files] };
  }
  const problems = outputProblem(result.output, definition.output_schema);
  if (problems) {
    return errorResult(
      new PluginError(ErrorCode.INVALID_OUTPUT, `Plugin "${origin.plugin}" (${origin.path}) returned output that does not match the output_schema in its plugin.json: ${problems.join('; ')}. Fix the plugin or its output_schema.`, {
        ...origin,
        data: { errors: problems },
      }),
    );
  }
  const out: CallToolResult = { content: [{ type: 'text', text }, ...files] };
  // MCP's structuredContent is an object; other outputs travel as text only.
  if (isPlainObject(result.output)) out.structuredContent = result.output as JsonObject;
  return out;
}

// The SDK's validator checks only elicitation answers, which serve never asks for: built on first use, not at start-up.
function validatorOnFirstUse(): jsonSchemaValidator {
  let validator: AjvJsonSchemaValidator | undefined;
  return { getValidator: (schema) => (validator ??= new AjvJsonSchemaValidator()).getValidator(schema) };
}

/**
 * Serves the plugins of the trusted dirs as MCP tools. Plugins run isolated by default, so a
 * plugin fault becomes an `isError` result and the server keeps serving.
 */
export class SkillplugMcpServer {
  /** The underlying MCP server. */
  readonly server: Server;
  /** The loader that finds and runs plugins. */
  readonly loader: PluginLoader;
  private readonly options: McpServerOptions;
  private readonly log: (line: string) => void;
  private readonly loaded = new Map<string, LoadedEntry>();
  private readonly reported = new Set<string>();
  private plan: ToolPlan = { tools: [], shadowed: [] };
  private fingerprint = '';
  private readonly watchers = new Map<string, FSWatcher>();
  private poll: NodeJS.Timeout | undefined;
  private rescan: Promise<void> | undefined;
  private rescanAgain = false;
  private connected = false;
  private closing: Promise<void> | undefined;
  // The protocol version agreed with the client; content types follow it. Until initialize: the oldest.
  private protocol = '2024-11-05';
  private resources = new Map<string, PluginResources>();
  private resourceFingerprint = '';
  private confined: Promise<boolean> | undefined;

  constructor(options: McpServerOptions = {}) {
    this.options = options;
    this.log = options.log ?? ((line) => process.stderr.write(`${escapeTerminal(line)}\n`));
    this.loader = new PluginLoader({
      onWarning: (m) => this.log(`skillplug serve: warning: ${m}`),
      ...options,
      onPluginLog: (event) => {
        options.onPluginLog?.(event);
        this.forwardLog(event);
      },
    });
    this.server = new Server(
      { name: 'skillplug', version: packageVersion() },
      { capabilities: { tools: { listChanged: true }, resources: { listChanged: true }, logging: {} }, jsonSchemaValidator: validatorOnFirstUse() },
    );
    this.server.setRequestHandler(ListToolsRequestSchema, async () => {
      await this.refresh();
      return { tools: this.plan.tools.flatMap((t) => this.publishable(mcpTool(t.definition, this.readmeUri(t.definition.name)))) };
    });
    this.server.setRequestHandler(ListResourcesRequestSchema, async () => {
      await this.refresh();
      const resources: Resource[] = [];
      for (const t of this.plan.tools) {
        for (const r of this.resources.get(t.definition.name)?.resources ?? []) {
          resources.push({ uri: r.uri, name: `${t.definition.name}/${r.relative}`, mimeType: r.mimeType, description: `${r.relative} of plugin ${t.definition.plugin.name}`, size: r.size } as Resource);
        }
      }
      return { resources };
    });
    this.server.setRequestHandler(ReadResourceRequestSchema, async (request) => {
      const uri = request.params.uri;
      const named = parseResourceUri(uri);
      const find = () => {
        const entry = named && this.plan.tools.find((t) => t.definition.name === named.tool);
        const resource = entry && this.resources.get(entry.definition.name)?.resources.find((r) => r.relative === named.relative);
        return entry && resource ? { entry, resource } : undefined;
      };
      let found = find();
      if (!found) {
        await this.refresh();
        found = find();
      }
      if (!found) throw new McpError(RESOURCE_NOT_FOUND, `Resource not found: ${uri}. List the resources (resources/list) for what the plugins offer.`, { uri, code: ErrorCode.NOT_FOUND });
      try {
        return { contents: [await readPluginResource(found.entry.plugin.path, found.entry.definition.name, found.resource)] };
      } catch (err) {
        const e = asPluginError(err, ErrorCode.INTERNAL, `reading ${uri}`);
        throw new McpError(RESOURCE_NOT_FOUND, e.message, { uri, code: e.code });
      }
    });
    this.server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
      let entry = this.plan.tools.find((t) => t.definition.name === request.params.name);
      if (!entry) {
        await this.refresh();
        entry = this.plan.tools.find((t) => t.definition.name === request.params.name);
      }
      if (!entry) throw new McpError(McpErrorCode.InvalidParams, `Unknown tool ${JSON.stringify(request.params.name)}.`);
      // Validators and serializers recurse: refuse what would overflow them before anything runs.
      if (nestedDeeperThan(request.params.arguments, MAX_RESULT_DEPTH)) {
        throw new McpError(McpErrorCode.InvalidParams, `Arguments for ${entry.definition.name} nest more than ${MAX_RESULT_DEPTH} levels deep.`, { code: ErrorCode.INVALID_INPUT });
      }
      const progressToken = extra._meta?.progressToken;
      let ticks = 0;
      const progress =
        progressToken === undefined
          ? undefined
          : setInterval(() => {
              ticks++;
              void extra
                .sendNotification({
                  method: 'notifications/progress',
                  params: { progressToken, progress: ticks, message: `${entry.definition.name} still running (${(ticks * this.progressInterval()) / 1000} s)` },
                })
                .catch(() => undefined);
            }, this.progressInterval());
      try {
        const plugin = await this.pluginFor(entry.plugin);
        const result = await plugin.execute(
          { input: (request.params.arguments ?? {}) as JsonObject, workspace_root: this.loader.workspace, config: this.loader.pluginConfig(plugin.metadata.name) },
          { signal: extra.signal },
        );
        return toolResult(result, entry.definition, this.loader.workspace, this.protocol);
      } catch (err) {
        return errorResult(asPluginError(err, ErrorCode.INTERNAL, `running ${entry.definition.name}`));
      } finally {
        if (progress) clearInterval(progress);
      }
    });
  }

  private readmeUri(tool: string): string | undefined {
    return this.resources.get(tool)?.resources.find((r) => r.relative === 'README.md')?.uri;
  }

  /** The MCP protocol version agreed with the client (the oldest supported before it initializes). */
  get protocolVersion(): string {
    return this.protocol;
  }

  // Annotations may claim only what the run enforces: isolated plugins in a sandbox that works here.
  private runConfined(): Promise<boolean> {
    this.confined ??= (async () => {
      if ((this.options.isolation ?? 'process') !== 'process' || this.loader.security.sandbox === 'off') return false;
      return (await detectSandbox()).available;
    })();
    return this.confined;
  }

  // Log-API lines (and skillplug's dropped-lines notes) become notifications/message; plain output stays on stderr.
  private forwardLog(event: PluginLogEvent): void {
    if (!this.connected || (!event.structured && event.source === 'plugin')) return;
    void this.server.sendLoggingMessage({ level: event.level, logger: event.plugin, data: event.message }).catch(() => undefined);
  }

  // One tool that cannot be serialized is left out, never the whole list.
  private publishable(tool: Tool): Tool[] {
    try {
      JSON.stringify(tool);
      return [tool];
    } catch (err) {
      this.log(`skillplug serve: left out tool ${JSON.stringify(tool.name)}: it cannot be serialized (${String(err)})`);
      return [];
    }
  }

  private progressInterval(): number {
    return this.options.progressIntervalMs ?? 2000;
  }

  /** Connects to a transport and starts watching for plugin changes. */
  async connect(transport: Transport): Promise<void> {
    await this.refresh();
    // The SDK's Server keeps the negotiated version to itself: read it off the initialize answer.
    const send = transport.send.bind(transport);
    transport.send = (message: JSONRPCMessage, options?: Parameters<Transport['send']>[1]) => {
      const result = (message as { result?: { protocolVersion?: unknown; serverInfo?: unknown } }).result;
      if (result && typeof result.protocolVersion === 'string' && result.serverInfo !== undefined) this.protocol = result.protocolVersion;
      return send(message, options);
    };
    await this.server.connect(transport);
    this.connected = true;
    if (this.watching()) this.onFilesChanged();
  }

  private watching(): boolean {
    return (this.options.watchIntervalMs ?? 10_000) > 0;
  }

  // Coalesces bursts of change events: one rediscovery at a time, and one more if anything changed meanwhile.
  private onFilesChanged = (): void => {
    if (this.closing) return;
    if (this.rescan) {
      this.rescanAgain = true;
      return;
    }
    this.rescan = (async () => {
      do {
        this.rescanAgain = false;
        await this.refresh(true).catch((err: unknown) => this.log(`skillplug serve: watch failed: ${String(err)}`));
      } while (this.rescanAgain && !this.closing);
    })().finally(() => (this.rescan = undefined));
  };

  /**
   * Watches the trusted dirs (or, for one that does not exist yet, its nearest existing parent) and
   * every plugin dir. A dir watched for the first time gets one more rediscovery, for what changed
   * before its watch began. Falls back to a slow poll while any dir cannot be watched.
   */
  private rewatch(plugins: readonly DiscoveredPlugin[]): void {
    const wanted = new Set<string>(plugins.map((p) => p.path));
    for (const listed of this.resources.values()) for (const dir of listed.dirs) wanted.add(dir);
    for (const dir of this.loader.trustedDirs()) wanted.add(nearestExisting(dir));
    for (const [dir, watcher] of this.watchers) {
      if (!wanted.has(dir)) {
        watcher.close();
        this.watchers.delete(dir);
      }
    }
    let unwatched = false;
    let added = false;
    for (const dir of wanted) {
      if (this.watchers.has(dir)) continue;
      try {
        const watcher = watch(dir, { persistent: false }, this.onFilesChanged);
        watcher.on('error', () => {
          watcher.close();
          if (this.watchers.get(dir) === watcher) this.watchers.delete(dir);
          this.onFilesChanged();
        });
        this.watchers.set(dir, watcher);
        added = true;
      } catch {
        unwatched = true;
      }
    }
    if (unwatched && !this.poll) {
      this.poll = setInterval(this.onFilesChanged, this.options.watchIntervalMs ?? 10_000);
      this.poll.unref();
    } else if (!unwatched && this.poll) {
      clearInterval(this.poll);
      this.poll = undefined;
    }
    if (added) this.onFilesChanged();
  }

  /** Dirs watched for changes now (for tests and diagnostics). */
  get watchedDirs(): string[] {
    return [...this.watchers.keys()];
  }

  /**
   * Lifts the quarantine of every loaded plugin (what SIGHUP does to `skillplug serve`); returns the
   * names of those that were quarantined.
   */
  async liftQuarantines(): Promise<string[]> {
    const lifted: string[] = [];
    for (const entry of this.loaded.values()) {
      const plugin = await entry.plugin.catch(() => undefined);
      if (plugin && 'liftQuarantine' in plugin && typeof plugin.liftQuarantine === 'function' && plugin.liftQuarantine()) lifted.push(plugin.metadata.name);
    }
    return lifted;
  }

  /** Stops watching, closes every loaded plugin (stopping their hosts) and the server. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.poll) clearInterval(this.poll);
      for (const watcher of this.watchers.values()) watcher.close();
      this.watchers.clear();
      const entries = [...this.loaded.values()];
      this.loaded.clear();
      await Promise.all(entries.map((e) => e.plugin.then((p) => p.close(), () => undefined)));
      await this.server.close();
    })();
    return this.closing;
  }

  private async pluginFor(found: DiscoveredPlugin): Promise<NativePluginTrait> {
    const fingerprint = await pluginFingerprint(found);
    const existing = this.loaded.get(found.path);
    if (existing && existing.fingerprint === fingerprint) return existing.plugin;
    if (existing) void existing.plugin.then((p) => p.close(), () => undefined);
    const plugin = this.loader.loadPlugin(found.path);
    this.loaded.set(found.path, { plugin, fingerprint });
    // A load that failed is retried on the next call rather than remembered.
    plugin.catch(() => {
      if (this.loaded.get(found.path)?.plugin === plugin) this.loaded.delete(found.path);
    });
    return plugin;
  }

  // A plugin that asks for more than the user granted can never load: it is no tool, and the log says which grant it lacks.
  private withGrantVerdict(p: DiscoveredPlugin, report: PermissionReport | undefined): DiscoveredPlugin {
    if (p.status !== 'ok' || !p.manifest || !report) return p;
    if (fullyGranted(report)) return p;
    const denied = permissionDenied(p.manifest.name, p.path, report);
    return { ...p, status: 'error', errors: [...p.errors, { code: denied.code, message: denied.message }] };
  }

  // Rediscovers plugins; tells the client when the tool list changed.
  private async refresh(notify = false): Promise<void> {
    const found = await this.loader.discoverPlugins();
    const reports = this.loader.permissionReports(found);
    const plugins = found.map((p, i) => this.withGrantVerdict(p, reports[i]));
    const plan = planTools(plugins, { confined: await this.runConfined() });
    const resources = new Map(plan.tools.map((t) => [t.definition.name, listPluginResources(t.plugin.path, t.definition.name)]));
    const resourceFingerprint = [...resources].map(([tool, r]) => `${tool}:${r.resources.map((x) => `${x.relative}=${x.identity}`).join(',')}`).join('\n');
    for (const [tool, r] of resources) {
      for (const skipped of r.skipped) {
        const line = `skillplug serve: resource ${tool}/${skipped.relative} is not served (${skipped.reason})`;
        if (!this.reported.has(line)) {
          this.reported.add(line);
          this.log(line);
        }
      }
    }
    for (const p of plugins) {
      if (p.status === 'ok') continue;
      const line = `skillplug serve: left out ${p.path}: ${p.errors.map((e) => `[${e.code}] ${e.message}`).join(' ')}`;
      if (!this.reported.has(line)) {
        this.reported.add(line);
        this.log(line);
      }
    }
    for (const s of plan.shadowed) {
      const line = `skillplug serve: tool "${s.name}" from ${s.path} is shadowed by ${s.shadowedBy}, which takes precedence`;
      if (!this.reported.has(line)) {
        this.reported.add(line);
        this.log(line);
      }
    }
    // A README that appears or goes changes the tool's description, hence the tool list.
    const readmes = plan.tools.filter((t) => resources.get(t.definition.name)?.resources.some((r) => r.relative === 'README.md')).map((t) => t.definition.name);
    const fingerprint = `${(await Promise.all(plugins.map(pluginFingerprint))).sort().join('\n')}\nreadmes:${readmes.join(',')}`;
    const changed = fingerprint !== this.fingerprint;
    const resourcesChanged = resourceFingerprint !== this.resourceFingerprint;
    this.plan = plan;
    this.fingerprint = fingerprint;
    this.resources = resources;
    this.resourceFingerprint = resourceFingerprint;
    if (this.connected && !this.closing && this.watching()) this.rewatch(plugins);
    if (resourcesChanged && notify && this.connected) await this.server.sendResourceListChanged().catch(() => undefined);
    if (changed) {
      for (const [dir, entry] of this.loaded) {
        const still = plugins.find((p) => p.path === dir && p.status === 'ok');
        if (!still || (await pluginFingerprint(still)) !== entry.fingerprint) {
          this.loaded.delete(dir);
          void entry.plugin.then((p) => p.close(), () => undefined);
        }
      }
      if (notify && this.connected) await this.server.sendToolListChanged().catch(() => undefined);
    }
  }
}

function nearestExisting(dir: string): string {
  let current = dir;
  while (!existsSync(current) && path.dirname(current) !== current) current = path.dirname(current);
  return current;
}

/** Serves MCP over stdin/stdout until stdin ends; returns once serving has stopped. */
export async function serveStdio(options: McpServerOptions = {}): Promise<void> {
  const server = new SkillplugMcpServer(options);
  const maxMessageBytes = options.maxMessageBytes ?? options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  if (!Number.isSafeInteger(maxMessageBytes) || maxMessageBytes <= 0) {
    throw new PluginError(ErrorCode.USAGE, `serve option maxMessageBytes must be a positive integer, got ${String(maxMessageBytes)}.`);
  }
  const transport = new BoundedStdioTransport({ maxMessageBytes });
  const stopped = new Promise<void>((resolve) => {
    const stop = (): void => void server.close().finally(resolve);
    // The client hung up its end: calls already read still get their answers before serving stops.
    const finish = (): void => void transport.settled().then(stop);
    process.stdin.once('end', finish);
    process.stdin.once('close', finish);
    transport.onclose = stop;
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  // Lifting a quarantine by hand: kill -HUP <pid of skillplug serve>.
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  // Plugin names are checked by manifest validation (no control characters) before they get here.
  const onHangup = (): void => void server.liftQuarantines().then((names) => log(`skillplug serve: quarantine lifted for ${names.length > 0 ? names.join(', ') : 'no plugin'}`));
  process.on('SIGHUP', onHangup);
  void stopped.then(() => process.off('SIGHUP', onHangup));
  await server.connect(transport);
  await stopped;
}

