// The official MCP TypeScript SDK client of each protocol version, behind one small interface, so a
// scenario runs against every client agents use: 1.0.x (2024-11-05), 1.11.x (2025-03-26) and current.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CLI_PATH, REPO_ROOT, tempHome } from './fixtures.js';

/** A tool call result as any of the clients returns it. */
export type AnyResult = {
  content: { type: string; text?: string; uri?: string; resource?: unknown }[];
  isError?: boolean;
  structuredContent?: Record<string, unknown>;
  _meta?: Record<string, unknown>;
};

/** What the tests use of a client; every SDK version has it. */
export interface AnyClient {
  listTools(): Promise<{ tools: { name: string; description?: string; outputSchema?: unknown; annotations?: Record<string, unknown> }[] }>;
  callTool(params: { name: string; arguments?: Record<string, unknown> }): Promise<AnyResult>;
  listResources(): Promise<{ resources: { uri: string; name: string; mimeType?: string }[] }>;
  readResource(params: { uri: string }): Promise<{ contents: { uri: string; text?: string; blob?: string; mimeType?: string }[] }>;
  getServerVersion(): { name: string; version: string } | undefined;
  close(): Promise<void>;
}

/** One SDK generation. */
export interface ClientSdk {
  /** The protocol version its client asks for. */
  protocol: string;
  /** Whether its result schema has `resource_link` content. */
  hasResourceLinks: boolean;
  /** Connects a client of this SDK to `skillplug serve ARGS`. */
  connect(args: string[], env?: NodeJS.ProcessEnv): Promise<{ client: AnyClient; stderr: () => string; onResourceListChanged: (handler: () => void) => void }>;
}

type SdkModules = { Client: new (...a: unknown[]) => unknown; StdioClientTransport: new (...a: unknown[]) => unknown; types: Record<string, unknown> };

/** Starts `skillplug serve ARGS` over stdio (on an empty HOME unless `env` names one) and connects a client of these SDK modules. */
async function connectServe<C>(modules: SdkModules, clientName: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ client: C; stderr: () => string }> {
  let stderr = '';
  const transport = new modules.StdioClientTransport({
    command: process.execPath,
    args: [CLI_PATH, 'serve', ...args],
    env: { ...(process.env as Record<string, string>), HOME: tempHome(), ...env },
    stderr: 'pipe',
  }) as { stderr?: NodeJS.ReadableStream | null };
  transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const client = new modules.Client({ name: clientName, version: '1.0.0' }, { capabilities: {} }) as { connect(t: unknown): Promise<void> };
  await client.connect(transport);
  return { client: client as C, stderr: () => stderr };
}

function sdk(protocol: string, hasResourceLinks: boolean, load: () => Promise<SdkModules>): ClientSdk {
  return {
    protocol,
    hasResourceLinks,
    async connect(args, env = {}) {
      const modules = await load();
      type Notified = AnyClient & { setNotificationHandler(schema: unknown, handler: () => Promise<void>): void };
      const { client, stderr } = await connectServe<Notified>(modules, `skillplug-test-${protocol}`, args, env);
      return {
        client,
        stderr,
        onResourceListChanged: (handler) => client.setNotificationHandler(modules.types.ResourceListChangedNotificationSchema, async () => handler()),
      };
    },
  };
}

const currentSdk = async (): Promise<SdkModules> => ({
  Client: (await import('@modelcontextprotocol/sdk/client/index.js')).Client as unknown as SdkModules['Client'],
  StdioClientTransport: (await import('@modelcontextprotocol/sdk/client/stdio.js')).StdioClientTransport as unknown as SdkModules['StdioClientTransport'],
  types: (await import('@modelcontextprotocol/sdk/types.js')) as unknown as Record<string, unknown>,
});

/** The three client generations, oldest first. */
export const CLIENT_SDKS: readonly ClientSdk[] = [
  sdk('2024-11-05', false, async () => ({
    Client: (await import('mcp-sdk-2024-11-05/client/index.js')).Client as unknown as SdkModules['Client'],
    StdioClientTransport: (await import('mcp-sdk-2024-11-05/client/stdio.js')).StdioClientTransport as unknown as SdkModules['StdioClientTransport'],
    types: (await import('mcp-sdk-2024-11-05/types.js')) as unknown as Record<string, unknown>,
  })),
  sdk('2025-03-26', false, async () => ({
    Client: (await import('mcp-sdk-2025-03-26/client/index.js')).Client as unknown as SdkModules['Client'],
    StdioClientTransport: (await import('mcp-sdk-2025-03-26/client/stdio.js')).StdioClientTransport as unknown as SdkModules['StdioClientTransport'],
    types: (await import('mcp-sdk-2025-03-26/types.js')) as unknown as Record<string, unknown>,
  })),
  sdk('current', true, currentSdk),
];

/** The current SDK's own client, with all of its API (progress, abort, notifications), connected to `skillplug serve ARGS`. */
export async function serve(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ client: Client; stderr: () => string }> {
  return connectServe<Client>(await currentSdk(), 'skillplug-test', args, env);
}

/** Runs `use` with a current-SDK client of `skillplug serve ARGS`, and closes it whatever happens. */
export async function withServe<T>(args: string[], env: NodeJS.ProcessEnv, use: (served: { client: Client; stderr: () => string }) => Promise<T>): Promise<T> {
  const served = await serve(args, env);
  try {
    return await use(served);
  } finally {
    await served.client.close();
  }
}

/** Text of a result's text items, joined. */
export function resultText(r: AnyResult): string {
  return r.content.filter((c) => c.type === 'text').map((c) => c.text ?? '').join('\n');
}

/** The `_meta` error code of a result, if any. */
export function errorCode(r: AnyResult): string | undefined {
  return (r._meta?.['skillplug/error'] as { code?: string } | undefined)?.code;
}

const run = promisify(execFile);
// The Inspector CLI finds its own package.json relative to the working dir: run it from its build dir.
const INSPECTOR_DIR = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'inspector-cli', 'build');

/** Runs the MCP Inspector CLI against `skillplug serve ARGS`; returns its parsed JSON answer. */
export async function inspector(serveArgs: string[], methodArgs: string[], env: NodeJS.ProcessEnv = {}): Promise<Record<string, unknown>> {
  const { stdout } = await run(process.execPath, [path.join(INSPECTOR_DIR, 'index.js'), process.execPath, CLI_PATH, 'serve', ...serveArgs, ...methodArgs], {
    cwd: INSPECTOR_DIR,
    env: { ...process.env, HOME: tempHome(), ...env },
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(stdout) as Record<string, unknown>;
}
