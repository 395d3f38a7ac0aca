// A/B of the isolated call path between an older skillplug tree and this one, in one process so both see the
// same machine: each row is measured for old and new back to back (which goes first alternates per round),
// idle and beside a busy neighbour (ABAB), with latency AND CPU per call (this process + all hosts) and the
// ratio new ÷ old per round. Build the old tree first (`git worktree add /work/wt/old 199e2b9 --detach`,
// link or install its node_modules, `npm run build` there); its host compiles into the per-user cache under
// a key of its own source, so the two hosts never clash. Usage:
// npm run bench:ab -- --old /work/wt/old [--rounds N] [--target-ms MS] [--new-fixed-spin] (or node --expose-gc build/bench/ab.js ...)
// --new-fixed-spin gives the new tree the old spin policy, so the ratio shows the rest of the call path alone.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { detectSandbox } from '../src/sandbox/index.js';
import { cpuWindow, treeCpuUs } from './cpu.js';
import { type Neighbour, startNeighbour } from './neighbour.js';
import { benchWorkdir } from './workdir.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '..', '..');
const argv = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const OLD_DIR = option('--old');
if (!OLD_DIR) {
  process.stderr.write('usage: node --expose-gc build/bench/ab.js --old DIR [--rounds N] [--target-ms MS] [--new-fixed-spin]\n');
  process.exit(2);
}
const ROUNDS = Number(option('--rounds') ?? 10);
// The new tree with the old tree's spin policy (fixed 150 µs windows, no budget): what remains is the rest of the path.
const NEW_FIXED_SPIN = argv.includes('--new-fixed-spin');
/** How long one measurement lasts, about, in µs (200 ms as in bench/run.ts): chunks of calls until then. */
const TARGET_US = Number(option('--target-ms') ?? 200) * 1000;
const MiB = 1024 * 1024;
const log = (line: string): void => void process.stderr.write(`${line}\n`);
const nowUs = (): number => Number(process.hrtime.bigint()) / 1000;
const notes: string[] = [];

// ---------- the two trees ----------
/** The slice of the public API both trees share and this bench uses (the old tree's types are not at hand). */
interface Plugin {
  execute(ctx: unknown): Promise<{ success?: boolean }>;
  close(): Promise<void>;
  readonly hostPid?: number;
}
interface Api {
  PluginLoader: new (options: Record<string, unknown>) => { loadPlugin(dir: string): Promise<Plugin> };
}
interface Tree {
  name: 'old' | 'new';
  dir: string;
  entry: string;
  commit: string;
  api: Api;
}

async function commitOf(dir: string): Promise<string> {
  try {
    const head = (await run('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'])).stdout.trim();
    const dirty = (await run('git', ['-C', dir, 'status', '--porcelain', '--untracked-files=no'])).stdout.trim() !== '';
    return dirty ? `${head} + uncommitted changes` : head;
  } catch {
    return 'unknown commit';
  }
}

async function openTree(name: Tree['name'], dir: string, entries: string[]): Promise<Tree> {
  const entry = entries.map((e) => path.join(dir, e)).find((e) => existsSync(e));
  if (!entry) throw new Error(`${dir} has none of ${entries.join(', ')}: build it first (npm run build)`);
  const api = (await import(pathToFileURL(entry).href)) as Api;
  return { name, dir, entry, commit: await commitOf(dir), api };
}

// The old tree ships dist/ from `npm run build`; this tree runs from build/, which this script was compiled into.
const oldTree = await openTree('old', path.resolve(OLD_DIR), ['dist/index.js', 'build/src/index.js']);
const newTree = await openTree('new', ROOT, ['build/src/index.js']);
const trees = [oldTree, newTree];
if (NEW_FIXED_SPIN) {
  // Read when a host or pump starts: set before any plugin of the new tree loads.
  const { hostTuning } = (await import(pathToFileURL(path.join(ROOT, 'build', 'src', 'host', 'tuning.js')).href)) as { hostTuning: { adaptiveSpin: boolean } };
  hostTuning.adaptiveSpin = false;
  notes.push('new tree run with hostTuning.adaptiveSpin = false (--new-fixed-spin): fixed 150 µs spin windows like the old tree');
}

/** Throws unless every option is a field of the tree's PluginLoaderOptions (an old tree must not get newer ones). */
function checkOptions(tree: Tree, options: Record<string, unknown>): void {
  const source = readFileSync(path.join(tree.dir, 'src', 'loader', 'index.ts'), 'utf8');
  const body = /export interface PluginLoaderOptions \{([\s\S]*?)\n\}/.exec(source)?.[1];
  if (!body) throw new Error(`cannot find PluginLoaderOptions in ${tree.dir}/src/loader/index.ts`);
  for (const key of Object.keys(options)) {
    if (!new RegExp(`^\\s+${key}\\??:`, 'm').test(body)) throw new Error(`the ${tree.name} tree's PluginLoaderOptions has no ${key}`);
  }
}

// ---------- setup ----------
const { pluginsDir, pluginDir, spinner } = await benchWorkdir(ROOT, 'skillplug-bench-ab');
const sandbox = await detectSandbox();
if (!sandbox.available) notes.push(`bwrap rows skipped: ${sandbox.reason}`);
const smallCtx = { input: { q: '0123456789' }, workspace_root: null, config: {} };
// A call that waits 1 ms in the plugin (like one blocked on I/O), as in bench/run.ts.
const waitCtx = { input: { sleep_us: 1000 }, workspace_root: null, config: {} };
/** Plugins of the many-plugins row: 64 calls in flight spread over this many isolated plugins. */
const MANY = 8;

type Mode = 'process' | 'bwrap';
const modes: Mode[] = ['process', ...(sandbox.available ? (['bwrap'] as const) : [])];
// bench/run.ts's options for these modes; each is checked against both trees' PluginLoaderOptions.
const optionsFor = (mode: Mode): Record<string, unknown> => ({
  pluginsDirs: [pluginsDir],
  defaultDirs: false,
  readConfig: false,
  isolation: 'process',
  sandbox: mode === 'bwrap' ? 'required' : 'off',
  maxOutputBytes: 128 * MiB,
});

const plugins = new Map<string, Plugin>();
const pluginOf = (tree: Tree, mode: Mode): Plugin => plugins.get(`${tree.name}.${mode}`) as Plugin;
for (const tree of trees) {
  for (const mode of modes) {
    const options = optionsFor(mode);
    checkOptions(tree, options);
    const plugin = await new tree.api.PluginLoader(options).loadPlugin(pluginDir);
    const result = await plugin.execute(smallCtx);
    if (result.success !== true) throw new Error(`the ${tree.name} tree's ${mode} plugin answered ${JSON.stringify(result)}`);
    plugins.set(`${tree.name}.${mode}`, plugin);
  }
  for (let i = 0; i < MANY; i++) plugins.set(`${tree.name}.many${i}`, await new tree.api.PluginLoader(optionsFor('process')).loadPlugin(pluginDir));
  // Which host binary each tree runs: the cache dir's name carries the hash of that tree's host source.
  const pid = pluginOf(tree, 'process').hostPid;
  let host = 'unknown';
  try {
    host = pid ? path.basename(path.dirname(readlinkSync(`/proc/${pid}/exe`))) : host;
  } catch {
    // The host is gone or not readable; the note says unknown.
  }
  notes.push(`${tree.name}: ${tree.commit}, ${path.relative(tree.dir, tree.entry)} in ${tree.dir}, host ${host}`);
}

// ---------- rows ----------
async function serial(fn: () => Promise<unknown>, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await fn();
}
async function inFlight(fn: () => Promise<unknown>, total: number, width = 64): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next++ < total) await fn();
  };
  await Promise.all(Array.from({ length: Math.min(width, total) }, lane));
}
interface Row {
  id: string;
  label: string;
  run: (tree: Tree, n: number) => Promise<void>;
}
const rows: Row[] = [
  { id: 'serial.process', label: "isolated serial ('process', sandbox 'off')", run: (t, n) => serial(() => pluginOf(t, 'process').execute(smallCtx), n) },
  { id: 'wait.process', label: "isolated, a call that waits 1 ms ('process', sandbox 'off')", run: (t, n) => serial(() => pluginOf(t, 'process').execute(waitCtx), n) },
  {
    id: 'flight.many',
    label: `64 calls in flight over ${MANY} isolated plugins`,
    run: (t, n) => {
      let next = 0;
      return inFlight(() => (plugins.get(`${t.name}.many${next++ % MANY}`) as Plugin).execute(smallCtx), n);
    },
  },
  ...(modes.includes('bwrap')
    ? [
        { id: 'serial.bwrap', label: "bwrap serial ('process', sandbox 'required')", run: (t: Tree, n: number) => serial(() => pluginOf(t, 'bwrap').execute(smallCtx), n) },
        { id: 'flight.bwrap', label: 'bwrap, 64 calls in flight, 1 plugin', run: (t: Tree, n: number) => inFlight(() => pluginOf(t, 'bwrap').execute(smallCtx), n) },
      ]
    : []),
];

// ---------- measuring ----------
type Condition = 'idle' | 'busy';
interface Sample {
  us: number;
  cpuUs: number;
  neighbourCores: number;
  otherCores: number;
}

/** Runs chunks of n calls until TARGET_US passed; latency and CPU (this process + hosts, not the neighbour) per call. */
async function measure(row: Row, tree: Tree, n: number, neighbour: Neighbour | undefined): Promise<Sample> {
  // Each tree's garbage is collected outside the other's window.
  global.gc?.();
  const closeWindow = cpuWindow(neighbour?.pid);
  const t = nowUs();
  let calls = 0;
  do {
    await row.run(tree, n);
    calls += n;
  } while (nowUs() - t < TARGET_US);
  const window = closeWindow();
  return { us: window.wallUs / calls, cpuUs: window.cpuUs / calls, neighbourCores: window.neighbourCores, otherCores: window.otherCores };
}

/** Warms a row up on one tree and returns the calls per chunk that take about a quarter of TARGET_US there. */
async function calibrate(row: Row, tree: Tree): Promise<number> {
  let n = 8;
  for (;;) {
    const t = nowUs();
    await row.run(tree, n);
    const elapsed = nowUs() - t;
    if (elapsed >= TARGET_US / 16 || n >= 1 << 24) return Math.max(16, Math.round((n * TARGET_US) / 4 / Math.max(elapsed, 1)));
    n *= 4;
  }
}

const loadStart = os.loadavg();
const started = Date.now();
const chunk = new Map<string, number>();
log(`bench:ab: calibrating ${rows.length} rows on both trees`);
// Both trees warm up; both then run the same chunk size, the smaller of the two.
for (const row of rows) chunk.set(row.id, Math.min(...(await Promise.all(trees.map(async (t) => await calibrate(row, t))))));

// Both trees' idle hosts and pollers count in every window: show that, with no call made, they cost ~nothing.
{
  const before = treeCpuUs('start');
  const t = nowUs();
  await new Promise((resolve) => setTimeout(resolve, TARGET_US / 1000));
  notes.push(`idle cost of all ${plugins.size} loaded plugins (no calls): ${((treeCpuUs('end') - before) / (nowUs() - t)).toFixed(3)} cores`);
}

const samples = new Map<string, Sample[]>();
const key = (row: Row, condition: Condition, tree: Tree): string => `${row.id}.${condition}.${tree.name}`;
for (let round = 0; round < ROUNDS; round++) {
  log(`bench:ab: round ${round + 1}/${ROUNDS} (${((Date.now() - started) / 1000).toFixed(0)} s so far)`);
  // ABAB for the conditions as in bench/run.ts; the tree that goes first alternates too.
  const conditions: Condition[] = round % 2 === 0 ? ['idle', 'busy'] : ['busy', 'idle'];
  const order = round % 2 === 0 ? [oldTree, newTree] : [newTree, oldTree];
  for (const row of rows) {
    for (const condition of conditions) {
      // One neighbour spans both trees' measurements, so old and new run beside the same process.
      const neighbour = condition === 'busy' ? await startNeighbour(spinner) : undefined;
      for (const tree of order) {
        const list = samples.get(key(row, condition, tree)) ?? [];
        list.push(await measure(row, tree, chunk.get(row.id) as number, neighbour));
        samples.set(key(row, condition, tree), list);
      }
      await neighbour?.stop();
    }
  }
}
const loadEnd = os.loadavg();
for (const plugin of plugins.values()) await plugin.close();

// ---------- report ----------
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
const spread = (xs: number[], digits: number): string =>
  `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;
const lines: string[] = [];
const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown CPU';
lines.push(`## Call path A/B: old ${oldTree.commit} vs new ${newTree.commit}`);
lines.push('');
lines.push(
  `${ROUNDS} rounds, ${((Date.now() - started) / 1000).toFixed(0)} s; ${cpuModel}, ${os.availableParallelism()} cores, Node ${process.version}; load average ${loadStart.map((l) => l.toFixed(2)).join(' ')} at the start, ${loadEnd.map((l) => l.toFixed(2)).join(' ')} at the end.`,
);
lines.push('Per call: median (min–max) over rounds; ratio = new ÷ old within each round, median (min–max). CPU = this process + its hosts (bwrap included), not the neighbour.');
lines.push('');
lines.push('| Row | Condition | old µs | new µs | new ÷ old (latency) | old CPU µs | new CPU µs | new ÷ old (CPU) | other load, cores |');
lines.push('|---|---|---|---|---|---|---|---|---|');
for (const row of rows) {
  for (const condition of ['idle', 'busy'] as const) {
    const old = samples.get(key(row, condition, oldTree)) as Sample[];
    const neu = samples.get(key(row, condition, newTree)) as Sample[];
    const ratio = (pick: (s: Sample) => number): number[] => neu.map((s, i) => pick(s) / pick(old[i] as Sample));
    const other = [...old, ...neu].map((s) => s.otherCores);
    lines.push(
      `| ${row.label} | ${condition} | ${spread(old.map((s) => s.us), 1)} | ${spread(neu.map((s) => s.us), 1)} | ${spread(ratio((s) => s.us), 2)} | ${spread(old.map((s) => s.cpuUs), 1)} | ${spread(neu.map((s) => s.cpuUs), 1)} | ${spread(ratio((s) => s.cpuUs), 2)} | ${median(other).toFixed(2)} |`,
    );
  }
}
lines.push('');
lines.push(`Calls per chunk (both trees): ${rows.map((r) => `${r.id} ${chunk.get(r.id)}`).join(', ')}. Busy: one spinning process (bench/spin.c) beside both trees' measurements of the row.`);
for (const note of notes) lines.push(`- ${note}`);
process.stdout.write(`${lines.join('\n')}\n`);
process.exit(0);
