// Runs every code snippet in README.md and docs/*.md, so the docs cannot drift from what works.
//
// A fenced block's language says what happens to it:
//   sh/bash  run with bash in a fresh workspace (the example plugins copied in, a fresh HOME);
//            `skillplug` and `npx skillplug` run this checkout's CLI
//   ts/js    transpiled and run as an ES module that imports 'skillplug' (this checkout)
//   json     parsed
//   toml     parsed (the subset in test/helpers/toml.ts)
//   c        compiled with the C SDK as a plugin and run once
//   rust     compiled with the Rust SDK as a plugin and run once (skipped without cargo)
//   text, or no language: prose (usage lines, diagrams); not a snippet
// An HTML comment on the line before the fence steers it:
//   <!-- snippet: not-run REASON -->        listed as skipped, with the reason
//   <!-- snippet: input JSON -->            the input for a c/rust plugin's run
//   <!-- snippet: compile-only -->          c declarations: compiled (syntax and types), not run
//   <!-- snippet: after NAME -->            run in the workspace the block named NAME left behind
//   <!-- snippet: name NAME -->             name this block's workspace for a later block
//   <!-- snippet: mcp-config CLIENT -->     an MCP client's config (json, toml) or registration command (sh):
//                                           checked against that client's rules, then the server it
//                                           configures is started and must list an installed plugin
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import ts from 'typescript';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { CLI_PATH, REPO_ROOT, tempDir } from '../helpers/fixtures.js';
import { parseToml } from '../helpers/toml.js';

const run = promisify(execFile);
const hasCargo = await run('cargo', ['--version']).then(
  () => true,
  () => false,
);

interface Snippet {
  file: string;
  line: number;
  lang: string;
  code: string;
  directives: Map<string, string>;
}

const PROSE = new Set(['', 'text']);
const KNOWN = new Set(['sh', 'bash', 'ts', 'js', 'json', 'toml', 'c', 'rust']);

function snippetsOf(file: string): Snippet[] {
  const lines = readFileSync(path.join(REPO_ROOT, file), 'utf8').split('\n');
  const found: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i] as string);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i] as string); i++) body.push(lines[i] as string);
    const directives = new Map<string, string>();
    for (let j = start - 1; j >= 0 && /^<!-- snippet: .* -->$/.test(lines[j] as string); j--) {
      const [, key, value] = /^<!-- snippet: (\S+)\s*(.*?) -->$/.exec(lines[j] as string) as RegExpExecArray;
      directives.set(key as string, value as string);
    }
    found.push({ file, line: start + 1, lang: open[1] as string, code: body.join('\n'), directives });
  }
  return found;
}

const docs = ['README.md', ...readdirSync(path.join(REPO_ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const snippets = docs.flatMap(snippetsOf);
const home = tempDir('skillplug-snippet-home-');
const workspaces = new Map<string, string>();

// The example plugins `npm install` built, in a workspace of the snippet's own.
function freshWorkspace(): string {
  const ws = tempDir('skillplug-snippet-ws-');
  const built = path.join(REPO_ROOT, '.vtcode', 'plugins');
  if (existsSync(built)) cpSync(built, path.join(ws, '.vtcode', 'plugins'), { recursive: true });
  return ws;
}

function workspaceFor(s: Snippet): string {
  const after = s.directives.get('after');
  const ws = after ? workspaces.get(after) : freshWorkspace();
  assert.ok(ws, `${s.file}:${s.line} runs after "${after}", which has not run`);
  const name = s.directives.get('name');
  if (name) workspaces.set(name, ws);
  return ws;
}

// A fresh HOME for skillplug; rustup and cargo keep finding the toolchain where the real HOME has it.
const env = (): NodeJS.ProcessEnv => ({
  ...process.env,
  HOME: home,
  SKILLPLUG_CLI: CLI_PATH,
  RUSTUP_HOME: process.env.RUSTUP_HOME ?? path.join(os.homedir(), '.rustup'),
  CARGO_HOME: process.env.CARGO_HOME ?? path.join(os.homedir(), '.cargo'),
});

async function runShell(s: Snippet): Promise<void> {
  const cwd = workspaceFor(s);
  // `skillplug` and `npx skillplug` are this checkout's CLI; the rest of the line runs as written.
  const prelude = [
    'set -euo pipefail',
    'skillplug() { node "$SKILLPLUG_CLI" "$@"; }',
    'npx() { if [ "${1:-}" = "-y" ]; then shift; fi; if [ "${1:-}" = skillplug ]; then shift; skillplug "$@"; else command npx "$@"; fi; }',
  ].join('\n');
  await run('bash', ['-c', `${prelude}\n${s.code}`], { cwd, env: env(), timeout: 180_000 });
}

async function runModule(s: Snippet): Promise<void> {
  const cwd = workspaceFor(s);
  const transpiled = ts.transpileModule(s.code, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  // 'skillplug' is this checkout as `npm run build:test` built it (test/package checks the "exports" map itself).
  const js = transpiled.replace(/(\bfrom\s*|\bimport\s*\(\s*)(['"])skillplug\2/g, (_m, lead: string) => `${lead}${JSON.stringify(pathToFileURL(path.join(REPO_ROOT, 'build', 'src', 'index.js')).href)}`);
  const dir = path.join(REPO_ROOT, 'build', 'snippets');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${s.file.replace(/[/.]/g, '_')}-${s.line}.mjs`);
  writeFileSync(file, js);
  await run(process.execPath, [file], { cwd, env: env(), timeout: 60_000 });
}

const sdkPlugin = /"name\\?":\s*\\?"([a-z0-9-]+)\\?"|Metadata::new\("([a-z0-9-]+)"/;

async function compileOnly(s: Snippet): Promise<void> {
  const source = path.join(tempDir('skillplug-snippet-c-'), 'decls.c');
  writeFileSync(source, `#include <stdint.h>\n#include <stddef.h>\n${s.code}\n`);
  await run(process.env.CC ?? 'cc', ['-fsyntax-only', '-Wall', '-Werror', source]);
}

async function runPlugin(s: Snippet): Promise<void> {
  const match = sdkPlugin.exec(s.code);
  assert.ok(match, `${s.file}:${s.line}: the snippet names its plugin in its metadata`);
  const name = (match[1] ?? match[2]) as string;
  const plugins = path.join(tempDir('skillplug-snippet-plugins-'), name);
  mkdirSync(plugins, { recursive: true });
  const library = path.join(plugins, `lib${name}.so`);
  if (s.lang === 'c') {
    const source = path.join(plugins, 'plugin.c');
    writeFileSync(source, s.code);
    await run(process.env.CC ?? 'cc', ['-shared', '-fPIC', '-Wall', '-Werror', '-I', path.join(REPO_ROOT, 'sdk', 'c'), '-o', library, source]);
  } else {
    const crate = tempDir('skillplug-snippet-crate-');
    mkdirSync(path.join(crate, 'src'));
    writeFileSync(path.join(crate, 'src', 'lib.rs'), s.code);
    writeFileSync(
      path.join(crate, 'Cargo.toml'),
      `[package]\nname = "${name}"\nversion = "1.0.0"\nedition = "2021"\n\n[lib]\ncrate-type = ["cdylib"]\n\n[dependencies]\nvtcode-plugin-sdk = { path = ${JSON.stringify(path.join(REPO_ROOT, 'sdk', 'rust'))} }\n`,
    );
    const target = path.join(crate, 'target');
    await run('cargo', ['build', '--release', '--offline', '--quiet'], { cwd: crate, env: { ...env(), CARGO_TARGET_DIR: target }, timeout: 300_000 });
    cpSync(path.join(target, 'release', `lib${name.replace(/-/g, '_')}.so`), library);
  }
  const metadata = { name, description: `snippet ${s.file}:${s.line}`, version: '1.0.0', abi_version: 1 };
  writeFileSync(path.join(plugins, 'plugin.json'), JSON.stringify(metadata));
  const input = s.directives.get('input') ?? '{}';
  const { stdout } = await run(process.execPath, [CLI_PATH, 'run', plugins, '--plugins-dir', path.dirname(plugins), '--input', input, '--json'], { env: env(), timeout: 120_000 });
  const result = JSON.parse(stdout) as { success: boolean };
  assert.equal(result.success, true, stdout);
}

interface ServerEntry {
  command: string;
  args: string[];
  /** The client's own per-call timeout in ms, when the config sets one. */
  clientTimeoutMs?: number;
}

type Doc = Record<string, unknown>;
const at = (doc: unknown, ...keys: string[]): unknown => keys.reduce<unknown>((v, k) => (v as Doc | undefined)?.[k], doc);

// Each client's own config rules (from its docs and source; see docs/integration.md), applied to the snippet.
async function mcpServerOf(s: Snippet, client: string): Promise<ServerEntry> {
  const where = `${s.file}:${s.line}`;
  if (client === 'claude-code') {
    // `claude mcp add [options] NAME -- COMMAND ARGS...`, recorded by a stand-in for the claude binary.
    const record = path.join(tempDir('skillplug-snippet-claude-'), 'argv.json');
    await run('bash', ['-c', `claude() { node -e 'require("fs").writeFileSync(process.argv[1], JSON.stringify(process.argv.slice(2)))' "$RECORD" "$@"; }\n${s.code}`], { env: { ...env(), RECORD: record } });
    const argv = JSON.parse(readFileSync(record, 'utf8')) as string[];
    assert.deepEqual(argv.slice(0, 2), ['mcp', 'add'], where);
    const dashes = argv.indexOf('--');
    assert.ok(dashes > 2, `${where}: the server command follows --`);
    return { command: argv[dashes + 1] as string, args: argv.slice(dashes + 2) };
  }
  if (client === 'vtcode' || client === 'codex') {
    assert.equal(s.lang, 'toml', where);
    const doc = parseToml(s.code);
    if (client === 'vtcode') {
      assert.equal(at(doc, 'mcp', 'enabled'), true, `${where}: VT Code's MCP client is off unless [mcp] enabled = true`);
      const providers = at(doc, 'mcp', 'providers') as Doc[];
      assert.ok(Array.isArray(providers) && providers.length === 1, `${where}: one [[mcp.providers]] entry`);
      const p = providers[0] as Doc;
      assert.equal(typeof p.name, 'string', `${where}: a provider has a name`);
      return { command: p.command as string, args: p.args as string[], clientTimeoutMs: (at(doc, 'mcp', 'tool_timeout_seconds') as number) * 1000 };
    }
    const servers = at(doc, 'mcp_servers') as Doc;
    const [entry] = Object.values(servers ?? {}) as Doc[];
    assert.ok(entry, `${where}: a [mcp_servers.<name>] table`);
    return { command: entry.command as string, args: entry.args as string[], clientTimeoutMs: ((entry.tool_timeout_sec as number | undefined) ?? 60) * 1000 };
  }
  assert.equal(s.lang, 'json', where);
  const doc = JSON.parse(s.code) as Doc;
  // VS Code reads "servers"; a file with "mcpServers" holds nothing it sees. The others read "mcpServers".
  const key = client === 'vscode' ? 'servers' : 'mcpServers';
  assert.deepEqual(Object.keys(doc), [key], `${where}: ${client} reads servers from "${key}"`);
  const [entry] = Object.values(doc[key] as Doc) as Doc[];
  assert.ok(entry, where);
  if (client === 'vscode') assert.equal(entry.type, 'stdio', `${where}: a local VS Code server has "type": "stdio"`);
  return { command: entry.command as string, args: entry.args as string[], ...(client === 'gemini' ? { clientTimeoutMs: entry.timeout as number } : {}) };
}

async function checkMcpConfig(s: Snippet, client: string): Promise<void> {
  const where = `${s.file}:${s.line}`;
  const server = await mcpServerOf(s, client);
  assert.equal(server.command, 'skillplug', `${where}: the config runs the installed binary`);
  assert.equal(server.args[0], 'serve', where);
  const workspaceAt = server.args.indexOf('--workspace');
  assert.ok(workspaceAt > 0 && server.args[workspaceAt + 1], `${where}: an explicit --workspace`);
  const timeoutAt = server.args.indexOf('--timeout');
  if (server.clientTimeoutMs !== undefined) {
    assert.ok(timeoutAt > 0, `${where}: --timeout is set, to compare with the client's`);
    assert.ok(server.clientTimeoutMs > Number(server.args[timeoutAt + 1]), `${where}: the client's tool timeout is above --timeout`);
  }
  // The configured command, started for real: a fresh HOME with the hello example installed, the placeholder workspace made real.
  const home = tempDir('skillplug-snippet-mcp-home-');
  const workspace = tempDir('skillplug-snippet-mcp-ws-');
  const hello = path.join(REPO_ROOT, '.vtcode', 'plugins', 'hello');
  await run(process.execPath, [CLI_PATH, 'install', hello], { env: { ...env(), HOME: home } });
  const args = server.args.map((a) => (a === '/path/to/repo' || a === '${workspaceFolder}' ? workspace : a));
  const transport = new StdioClientTransport({ command: process.execPath, args: [CLI_PATH, ...args], env: { ...(env() as Record<string, string>), HOME: home }, stderr: 'pipe' });
  const mcp = new Client({ name: `snippet-${client}`, version: '1.0.0' });
  await mcp.connect(transport);
  try {
    const { tools } = await mcp.listTools();
    assert.deepEqual(tools.map((t) => t.name), ['hello'], where);
  } finally {
    await mcp.close();
  }
}

describe('README and docs snippets', () => {
  it('finds the snippets, each in a known language', () => {
    assert.ok(snippets.length > 5);
    const unknown = snippets.filter((s) => !PROSE.has(s.lang) && !KNOWN.has(s.lang)).map((s) => `${s.file}:${s.line} ${s.lang}`);
    assert.deepEqual(unknown, []);
  });

  for (const s of snippets) {
    if (PROSE.has(s.lang)) continue;
    const notRun = s.directives.get('not-run');
    const skip = notRun !== undefined ? `not run: ${notRun}` : (s.lang === 'rust' && !hasCargo ? 'cargo is not installed' : false);
    it(`${s.file}:${s.line} (${s.lang})`, { skip }, async () => {
      const client = s.directives.get('mcp-config');
      if (client !== undefined) await checkMcpConfig(s, client);
      else if (s.lang === 'json') JSON.parse(s.code);
      else if (s.lang === 'toml') parseToml(s.code);
      else if (s.lang === 'sh' || s.lang === 'bash') await runShell(s);
      else if (s.lang === 'ts' || s.lang === 'js') await runModule(s);
      else if (s.directives.has('compile-only')) await compileOnly(s);
      else await runPlugin(s);
    });
  }
});
