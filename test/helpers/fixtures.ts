// Builds fixture plugins from test/fixtures/*.c with the system C compiler into temp dirs.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The repository root (tests run from build/test/…). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const FIXTURES_DIR = path.join(REPO_ROOT, 'test', 'fixtures');
// The CLI as `npm run build:test` compiles it, so one build serves every test (dist/ is the same tsc output).
export const CLI_PATH = path.join(REPO_ROOT, 'build', 'src', 'cli', 'main.js');

const roots: string[] = [];
process.on('exit', () => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

/** A fresh temp dir removed when the test process exits. */
export function tempDir(prefix = 'skillplug-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  roots.push(dir);
  return dir;
}

/** How to build one fixture plugin. */
export interface FixtureSpec {
  /** Fixture source in test/fixtures without `.c`. */
  source: string;
  /** Plugin name (plugin.json and metadata). */
  name: string;
  /** Extra preprocessor definitions. */
  defines?: Record<string, string>;
  /** plugin.json content; an object is serialized, a string written as is, null writes none. Default: a valid manifest. */
  manifest?: Record<string, unknown> | string | null;
  /** Library file name. Default `lib<name>.so`. */
  libraryFile?: string;
  /** Directory name inside the parent. Default: the plugin name. */
  dirName?: string;
}

/** Compiles a fixture into `<parent>/<dirName>/` with its plugin.json; returns the plugin dir. */
export async function buildFixture(parent: string, spec: FixtureSpec): Promise<string> {
  const dir = path.join(parent, spec.dirName ?? spec.name);
  mkdirSync(dir, { recursive: true });
  const defines = { PLUGIN_NAME: JSON.stringify(spec.name), ...(spec.defines ?? {}) };
  const args = ['-shared', '-fPIC', '-O1', '-pthread', '-o', path.join(dir, spec.libraryFile ?? `lib${spec.name}.so`)];
  for (const [key, value] of Object.entries(defines)) args.push(`-D${key}=${value}`);
  args.push(path.join(FIXTURES_DIR, `${spec.source}.c`));
  await run(process.env.CC ?? 'cc', args);
  writeManifest(dir, spec.manifest === undefined ? { name: spec.name, description: `fixture ${spec.source}`, version: '1.0.0', author: 'tests' } : spec.manifest);
  return dir;
}

/** Writes plugin.json (object → JSON, string → verbatim, null → nothing). */
export function writeManifest(dir: string, manifest: Record<string, unknown> | string | null): void {
  if (manifest === null) return;
  writeFileSync(path.join(dir, 'plugin.json'), typeof manifest === 'string' ? manifest : JSON.stringify(manifest, null, 2));
}

/** Result of running the CLI. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI with arguments; never throws on a non-zero exit. */
export async function runCli(args: string[], options: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv; cli?: string } = {}): Promise<CliResult> {
  const { spawn } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [options.cli ?? CLI_PATH, ...args], {
      cwd: options.cwd ?? REPO_ROOT,
      // The variables that move user plugin dirs are cleared so the runner's own never leak in.
      env: { ...process.env, VTCODE_HOME: undefined, VTCODE_DATA: undefined, XDG_DATA_HOME: undefined, CODEX_HOME: undefined, HOME: options.env?.HOME ?? tempHome(), ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
    child.stdin.end(options.input ?? '');
  });
}

let home: string | undefined;
/** An empty HOME so the user's own ~/.vtcode never leaks into tests. */
export function tempHome(): string {
  home ??= tempDir('skillplug-home-');
  return home;
}

/** Builds several fixtures in parallel; returns their dirs by key. */
export async function buildFixtures(parent: string, specs: (FixtureSpec & { key: string })[]): Promise<Record<string, string>> {
  const built = await Promise.all(specs.map(async (s) => [s.key, await buildFixture(parent, s)] as const));
  return Object.fromEntries(built);
}

/** Runs an ES module script in a fresh Node; resolves with its exit code (-1 if killed after `ms`) and stdout. */
export async function runScript(script: string, ms: number, env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string }> {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'], env });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve(-1);
    }, ms);
    child.on('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  return { code, stdout };
}
