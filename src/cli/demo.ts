import { existsSync } from 'node:fs';
import path from 'node:path';
import type { JsonObject, PluginResult } from '../abi/types.js';
import type { NativePluginTrait } from '../plugin/interfaces.js';
import { buildPlugin } from '../authoring/build.js';
import { asPluginError, ErrorCode } from '../errors.js';
import { cacheDir, packageRoot } from '../toolchain.js';
import { PluginLoader } from '../loader/index.js';
import { validatePluginStructure } from '../manifest/index.js';
import { ExitCode, writeOut } from './output.js';

const EXAMPLES = ['hello', 'file-stats', 'code-search'];

// A path as one shell word, so the printed command can be pasted as is.
const shellWord = (text: string): string => (/^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`);
const say = (line = ''): Promise<void> => writeOut(`${line}\n`);
const ms = (since: number): string => `${Date.now() - since} ms`;

function summary(name: string, result: PluginResult): string {
  const out = result.output as Record<string, unknown>;
  if (!result.success) return `reported failure: ${result.error}`;
  if (name === 'hello') return String(out.greeting);
  if (name === 'file-stats') {
    const langs = (out.languages as { language: string; lines: number }[]).slice(0, 3).map((l) => `${l.language} ${l.lines}`);
    return `${out.files} files, ${out.lines} lines (${langs.join(', ')}, …)`;
  }
  if (name === 'code-search') {
    const matches = out.matches as { path: string; line: number }[];
    return `${matches.length} lines mention TODO or FIXME in ${out.files_scanned} files${matches[0] ? `, first at ${matches[0].path}:${matches[0].line}` : ''}`;
  }
  return JSON.stringify(out).slice(0, 100);
}

// The examples normally come from `npm install`; when they did not, build them now into the cache.
async function examplesDir(root: string): Promise<string> {
  const installed = path.join(root, '.vtcode', 'plugins');
  if (EXAMPLES.every((name) => existsSync(path.join(installed, name)))) return installed;
  const dir = path.join(cacheDir(), 'demo', 'plugins');
  await say(`Building the example plugins into ${dir} (npm install normally does this)…`);
  for (const name of EXAMPLES) {
    try {
      await buildPlugin({ dir: path.join(root, 'examples', name), out: dir });
    } catch (err) {
      await say(`  skipped ${name}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  return dir;
}

/** `skillplug demo`: the main job on the example plugins, in well under a minute. */
export async function demoCommand(): Promise<number> {
  const started = Date.now();
  const root = packageRoot();
  await say('skillplug demo: native-code skills for AI agents, loaded safely\n');
  const pluginsDir = await examplesDir(root);
  // Predictable demo: the user's own config (e.g. required signatures) does not apply here.
  const loader = new PluginLoader({ pluginsDirs: [pluginsDir], defaultDirs: false, readConfig: false, workspace: root, onWarning: (m) => void say(`  note: ${m}`) });

  await say(`1. Discover: plugin.json and file facts only, no plugin code runs (${pluginsDir})`);
  const t0 = Date.now();
  const found = await loader.discoverPlugins();
  for (const p of found) await say(`   ${p.status === 'ok' ? '✔' : '✘'} ${p.name ?? p.path} ${p.version ?? ''}  ${p.description ?? ''}`);
  await say(`   ${found.length} plugins in ${ms(t0)}\n`);

  await say('2. Validate: every problem, not just the first');
  for (const p of found) {
    const issues = await validatePluginStructure(p.path);
    await say(`   ${issues.length === 0 ? '✔ valid  ' : `✘ ${issues.length} problem(s)`} ${p.name}${issues[0] ? `: ${issues[0].message}` : ''}`);
  }
  await say();

  await say(`3. Run each in its own isolated host process${loader.security.sandbox === 'off' ? '' : ' (sandboxed when bubblewrap is installed)'}`);
  const inputs: Record<string, JsonObject> = { hello: { name: 'agent' }, 'file-stats': { top: 3 }, 'code-search': { patterns: ['TODO', 'FIXME'], max_results: 50 } };
  for (const p of found.filter((f) => f.status === 'ok')) {
    const name = p.name as string;
    let plugin: NativePluginTrait | undefined;
    try {
      const t = Date.now();
      plugin = await loader.loadPlugin(p.path);
      const loaded = Date.now() - t;
      const t2 = Date.now();
      const result = await plugin.execute({ input: inputs[name] ?? {}, workspace_root: loader.workspace, config: {} });
      await say(`   ${name}: ${summary(name, result)}  [load ${loaded} ms, call ${ms(t2)}]`);
    } catch (err) {
      const e = asPluginError(err, ErrorCode.INTERNAL, name);
      await say(`   ${name}: error[${e.code}] ${e.message}`);
    } finally {
      await plugin?.close();
    }
  }
  await say();

  await say('4. Contain faults: a plugin that dereferences NULL, then one that never returns');
  try {
    const faultyDir = path.join(cacheDir(), 'demo', 'faults');
    const built = await buildPlugin({ dir: path.join(root, 'examples', 'faulty'), out: faultyDir });
    const faults = new PluginLoader({ pluginsDirs: [faultyDir], defaultDirs: false, readConfig: false, workspace: root });
    const plugin = await faults.loadPlugin(built.pluginDir);
    try {
      for (const [mode, timeoutMs] of [
        ['crash', 30_000],
        ['hang', 500],
      ] as const) {
        const t = Date.now();
        try {
          await plugin.execute({ input: { mode }, workspace_root: null, config: {} }, { timeoutMs });
          await say(`   ${mode}: unexpectedly succeeded`);
        } catch (err) {
          const e = asPluginError(err, ErrorCode.INTERNAL, mode);
          const fact = e.failure?.signal ? ` (${e.failure.signal})` : '';
          await say(`   ${mode}: error[${e.code}]${fact} after ${ms(t)}; this process is fine`);
        }
        const t2 = Date.now();
        const next = await plugin.execute({ input: { mode: 'ok' }, workspace_root: null, config: {} });
        await say(`   next call on a fresh host: ${JSON.stringify(next.output)} in ${ms(t2)}`);
      }
    } finally {
      await plugin.close();
    }
  } catch (err) {
    await say(`   skipped: ${(err as Error).message.split('\n')[0]}`);
  }
  await say();

  await say(`Done in ${(Date.now() - started) / 1000} s. Where next:`);
  // The examples sit in a dir only the demo trusts: installing one is what makes serve offer it.
  await say(`   skillplug install ${shellWord(path.join(pluginsDir, 'hello'))}`);
  await say('        copy a plugin into ~/.vtcode/plugins, your own trusted dir');
  await say(`   skillplug serve --workspace ${shellWord(process.cwd())}`);
  await say('        every installed plugin as an MCP tool (README: "MCP", docs/integration.md)');
  await say('   skillplug list                      plugins in ~/.vtcode/plugins and this workspace');
  await say('   skillplug new my-skill --lang rust  scaffold a plugin; then: skillplug dev my-skill');
  await say('   docs/abi.md, docs/authoring.md, docs/security.md');
  return ExitCode.OK;
}
