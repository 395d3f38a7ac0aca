// skillplug's benchmark: every way to call a trivial plugin, with latency AND CPU per call, each row measured
// idle and beside a busy neighbour (a process spinning on one core), rows and conditions interleaved per round.
// Usage: npm run bench [-- --smoke] [--rounds N] [--json FILE] [--no-write] [--only REGEX]
// --only measures the rows whose id matches REGEX and prints their medians, writing nothing (for tuning work).
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { type NativePluginTrait, type PluginContext, PluginLoader, type PluginLoaderOptions } from '../src/index.js';
import { type HostTuning, hostTuning } from '../src/host/tuning.js';
import type { IsolatedPlugin } from '../src/host/isolated.js';
import type { InProcessPlugin } from '../src/in-process/index.js';
import { detectSandbox } from '../src/sandbox/index.js';
import { cpuWindow, groupRssMiB } from './cpu.js';
import { compileWat, extismCall, extismPlugin, queued } from './extism.js';
import { runProgram } from './launcher.js';
import { rawKoffiCalls } from './raw-koffi.js';
import { startNeighbour } from './neighbour.js';
import { benchWorkdir } from './workdir.js';
import { nodeFileStats } from './node-file-stats.js';
import { type BenchResult, type Condition, OTHER_WORK_LIMIT_CORES, type RowResult, type Sample, writeDocs } from './report.js';
import { generateSearchTree } from './search-tree.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '..', '..');
const argv = process.argv.slice(2);
const flag = (name: string): boolean => argv.includes(name);
const option = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const SMOKE = flag('--smoke');
const ONLY = option('--only') === undefined ? undefined : new RegExp(option('--only') as string);
// Nine: on a noisy two-core VM a median of five per-round ratios still swung by a third between runs.
const ROUNDS = Number(option('--rounds') ?? (SMOKE ? 1 : 9));
/** How long one measurement of a calibrated row lasts, about, in µs: it runs chunks of calls until then. */
const TARGET_US = SMOKE ? 3_000 : 200_000;
/** No round starts that would end past this many seconds from the start (a loaded machine stretches rows). */
const BUDGET_S = Number(option('--budget') ?? 480);
const MiB = 1024 * 1024;
const started = Date.now();
const log = (line: string): void => void process.stderr.write(`${line}\n`);
const nowUs = (): number => Number(process.hrtime.bigint()) / 1000;
const notes: string[] = [];

// ---------- setup ----------
const { work, pluginsDir, pluginDir, libraryPath, serialPluginsDir, serialPluginDir, spinner } = await benchWorkdir(ROOT, 'skillplug-bench');
const floor = path.join(work, 'floor');
await run('cc', ['-O2', '-o', floor, path.join(ROOT, 'bench', 'floor.c'), '-ldl', '-lpthread']);
const wasm = await compileWat(path.join(ROOT, 'bench', 'plugins', 'bench.wat'));
const sandbox = await detectSandbox();
if (!sandbox.available) notes.push(`bwrap rows skipped: ${sandbox.reason}`);

const smallCtx: PluginContext = { input: { q: '0123456789' }, workspace_root: null, config: {} };
const smallText = JSON.stringify(smallCtx);
const waitCtx: PluginContext = { input: { sleep_us: 1000 }, workspace_root: null, config: {} };
const waitText = JSON.stringify(waitCtx);
const payloadCtx = (bytes: number): PluginContext => ({ input: { data: 'x'.repeat(bytes) }, workspace_root: null, config: {} });
const SMALL_RESULT = '{"success":true,"output":{"ok":true},"error":null,"files":[]}';

type Mode = 'none' | 'none0' | 'process' | 'process0' | 'bwrap' | 'defaults';
const loaderFor = (mode: Mode, extra: PluginLoaderOptions = {}): PluginLoader =>
  new PluginLoader({
    pluginsDirs: [pluginsDir],
    defaultDirs: false,
    readConfig: false,
    ...(mode === 'defaults'
      ? {}
      : {
          isolation: mode.startsWith('none') ? 'none' : 'process',
          sandbox: mode === 'bwrap' ? 'required' : 'off',
          maxOutputBytes: 128 * MiB,
          ...(mode.endsWith('0') ? { pollMicros: 0 } : {}),
        }),
    ...extra,
  });

/** Runs fn with the host tuning changed (restored after), for the ablation rows. */
async function withTuning<T>(change: Partial<HostTuning>, fn: () => Promise<T>): Promise<T> {
  const saved = { ...hostTuning };
  Object.assign(hostTuning, change);
  try {
    return await fn();
  } finally {
    Object.assign(hostTuning, saved);
  }
}

const modes: Mode[] = ['none', 'none0', 'process', 'process0', ...(sandbox.available ? (['bwrap'] as const) : []), 'defaults'];
const plugins = new Map<Mode, NativePluginTrait>();
for (const mode of modes) plugins.set(mode, await loaderFor(mode).loadPlugin(pluginDir));
const plugin = (mode: Mode): NativePluginTrait => plugins.get(mode) as NativePluginTrait;
const inProcess = plugin('none') as InProcessPlugin;

const ablations: { id: string; label: string; tuning: Partial<HostTuning> }[] = [
  { id: 'noSharedLane', label: 'no shared memory lane', tuning: { sharedLane: false } },
  { id: 'noLoneCalls', label: 'no lone-call path', tuning: { loneCalls: false } },
  { id: 'noAdaptiveSpin', label: 'no adaptive spin (fixed spin windows)', tuning: { adaptiveSpin: false } },
];
// The switches only do something where the call path reads them; say so in the report when nothing does.
const srcDir = path.join(here, '..', 'src');
const readsTuning = readdirSync(srcDir, { recursive: true, encoding: 'utf8' }).some(
  (f) => f.endsWith('.js') && !f.endsWith('tuning.js') && readFileSync(path.join(srcDir, f), 'utf8').includes('tuning.js'),
);
if (!readsTuning) notes.push('no module of this build reads src/host/tuning.ts yet: the ablation rows ran the default call path');
const ablated = new Map<string, NativePluginTrait>();
for (const a of ablations) ablated.set(a.id, await withTuning(a.tuning, () => loaderFor('process').loadPlugin(pluginDir)));

/** Isolated plugins for the in-flight rows: over 1, over SOME, over MANY (the issue's 1, 8 and 32). */
const SOME = SMOKE ? 2 : 8;
const MANY = SMOKE ? 4 : 32;
log(`bench: loading ${MANY} isolated plugins`);
const many: NativePluginTrait[] = [];
for (let i = 0; i < MANY; i++) many.push(await loaderFor('process').loadPlugin(pluginDir));
await Promise.all(many.map((p) => p.execute(smallCtx)));

// Raw koffi on the same library, as a caller without skillplug would use it (skillplug configured koffi already).
const raw = rawKoffiCalls(libraryPath);

const extismMain = await extismPlugin(wasm, false);
const extismWorker = await extismPlugin(wasm, true);
const EXTISM_POOL = SOME;
const extismPool = await Promise.all(Array.from({ length: EXTISM_POOL }, () => extismPlugin(wasm, true)));
const extismQueued = queued(extismWorker);
const extismPoolQueued = extismPool.map(queued);

// MCP end to end: `skillplug serve` driven by the official client, against the library with serve's defaults.
// The bin as published (package.json), so start-up rows time what users run.
const CLI = path.join(ROOT, (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: { skillplug: string } }).bin.skillplug);
const home = path.join(work, 'home');
mkdirSync(home, { recursive: true });
const cliEnv = { ...(process.env as Record<string, string>), HOME: home };
const serveArgs = [CLI, 'serve', '--plugins-dir', pluginsDir, '--workspace', work];
async function connectServe(): Promise<Client> {
  const client = new Client({ name: 'skillplug-bench', version: '1.0.0' });
  await client.connect(new StdioClientTransport({ command: process.execPath, args: serveArgs, env: cliEnv, cwd: work, stderr: 'ignore' }));
  return client;
}
const callServe = async (client: Client): Promise<void> => {
  const result = await client.callTool({ name: 'bench', arguments: { q: '0123456789' } });
  if (result.isError) throw new Error(`serve answered an error: ${JSON.stringify(result)}`);
};
const mcp = await connectServe();

// The code-search example against grep -rF (and rg) on one generated tree.
const searchRoot = path.join(work, 'search-tree');
const NEEDLE = 'skillplugNeedle';
const expectedMatches = generateSearchTree(searchRoot, SMOKE ? 40 : 1000, SMOKE ? 50 : 300, NEEDLE);
const exampleDir = path.join(ROOT, '.vtcode', 'plugins', 'code-search');
let codeSearch: NativePluginTrait | undefined;
try {
  codeSearch = await new PluginLoader({ pluginsDirs: [path.dirname(exampleDir)], defaultDirs: false, readConfig: false, workspace: searchRoot }).loadPlugin(exampleDir);
} catch (err) {
  notes.push(`code-search rows skipped: ${(err as Error).message.split('\n')[0]}`);
}
const rg = await run('rg', ['--version']).then(
  () => true,
  () => false,
);
if (!rg) notes.push('rg is not installed: no ripgrep row');
const searchCounts: Record<string, number> = { generated: expectedMatches };
const countLines = (text: string): number => (text.length === 0 ? 0 : text.split('\n').length - (text.endsWith('\n') ? 1 : 0));
async function searchWith(id: string, fn: () => Promise<number>): Promise<void> {
  const count = await fn();
  if (count !== expectedMatches && searchCounts[id] !== count) notes.push(`${id} found ${count} matching lines, the generated tree has ${expectedMatches}`);
  searchCounts[id] = count;
}

// list --json and discoverPlugins() over many plugin dirs.
const DIRS = SMOKE ? 50 : 1000;
const discoveryDir = path.join(work, `discovery-${DIRS}`);
for (let i = 0; i < DIRS; i++) {
  const p = path.join(discoveryDir, `p${i}`);
  mkdirSync(p, { recursive: true });
  writeFileSync(path.join(p, 'plugin.json'), JSON.stringify({ name: `p${i}`, description: 'd', version: '1' }));
  writeFileSync(path.join(p, `libp${i}.so`), '');
}
const discoveryLoader = new PluginLoader({ pluginsDirs: [discoveryDir], defaultDirs: false, readConfig: false });

// ---------- row helpers ----------
async function serial(fn: () => Promise<unknown>, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await fn();
}
function serialSync(fn: () => unknown, n: number): void {
  for (let i = 0; i < n; i++) fn();
}
async function inFlight(fn: (i: number) => Promise<unknown>, total: number, width = 64): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < total) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(width, total) }, lane));
}
// Through the launcher: this process does not fork in a row (see bench/launcher.ts).
function spawnOnce(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return runProgram(spinner, command, args, options);
}
async function processPerCall(): Promise<void> {
  if (!JSON.parse(await spawnOnce(floor, [libraryPath, 'once', smallText]))) throw new Error('bad output');
}

/**
 * One benchmark row: run(n) makes n calls; a number it returns (or resolves to) is the µs to count instead of
 * the wall time, and a {@link SelfTimed} what a program measured of itself instead of the wall time and CPU.
 */
interface RowDef {
  id: string;
  group: string;
  label: string;
  unit: 'us' | 'ms';
  /** Calls per chunk (slow rows: one cold start, one spawn); calibrated to about TARGET_US / 4 when absent. */
  calls?: number;
  /** How long one measurement lasts, in µs (default TARGET_US). */
  targetUs?: number;
  bytes?: number;
  run: (n: number) => unknown;
}
/** A C floor program's own figures for its loop: its start and its exit (tick-sampled CPU, once reaped) are left out. */
interface SelfTimed {
  us: number;
  cpuUs: number;
}
const isSelfTimed = (value: unknown): value is SelfTimed => typeof value === 'object' && value !== null && 'cpuUs' in value;
/** Runs the C floor program with `args` and returns its own figures for n calls. */
async function floorRun(args: string[], n: number): Promise<SelfTimed> {
  const out = JSON.parse(await spawnOnce(floor, [libraryPath, ...args, String(n)])) as { us_per_call: number; cpu_us_per_call: number };
  return { us: out.us_per_call * n, cpuUs: out.cpu_us_per_call * n };
}
// The 1 ms rows make ~170 calls in TARGET_US, so one GC or compile job (~5 ms of a V8 thread) in the window
// moved a row's CPU per call by 30 µs, half the baseline's: their measurements last five times longer.
const WAIT_TARGET_US = TARGET_US * 5;
const rows: RowDef[] = [];
const row = (def: RowDef): void => void (ONLY && !ONLY.test(def.id) ? undefined : rows.push(def));
const big = SMOKE ? 2 * MiB : 16 * MiB;
const bigCtx = payloadCtx(big);
const bigText = JSON.stringify(bigCtx);
const oneMiBCtx = payloadCtx(MiB);
const bwrap = modes.includes('bwrap');

// A trivial call, one after another.
row({ id: 'serial.cfloor', group: 'serial', label: 'C, dlopen + call, no JSON (separate process)', unit: 'us', calls: SMOKE ? 10_000 : 2_000_000, run: (n) => floorRun(['serial'], n) });
row({ id: 'serial.json', group: 'serial', label: 'JS JSON.stringify + JSON.parse only', unit: 'us', run: (n) => serialSync(() => JSON.stringify(smallCtx).length + JSON.parse(SMALL_RESULT).files.length, n) });
row({ id: 'serial.koffiSync', group: 'serial', label: 'raw koffi sync (+ JSON.parse)', unit: 'us', run: (n) => serialSync(() => raw.sync(smallText), n) });
row({ id: 'serial.koffiAsync', group: 'serial', label: 'raw koffi .async() (+ JSON.parse): the baseline', unit: 'us', run: (n) => serial(() => raw.async(smallText), n) });
row({ id: 'serial.executeSync', group: 'serial', label: 'skillplug executeSync (in-process)', unit: 'us', run: (n) => serialSync(() => inProcess.executeSync(smallCtx), n) });
row({ id: 'serial.none', group: 'serial', label: "skillplug execute, isolation 'none'", unit: 'us', run: (n) => serial(() => plugin('none').execute(smallCtx), n) });
row({ id: 'serial.none0', group: 'serial', label: "skillplug execute, 'none', pollMicros 0", unit: 'us', run: (n) => serial(() => plugin('none0').execute(smallCtx), n) });
row({ id: 'serial.process', group: 'serial', label: "skillplug execute, isolation 'process'", unit: 'us', run: (n) => serial(() => plugin('process').execute(smallCtx), n) });
row({ id: 'serial.process0', group: 'serial', label: "skillplug execute, 'process', pollMicros 0", unit: 'us', run: (n) => serial(() => plugin('process0').execute(smallCtx), n) });
if (bwrap) row({ id: 'serial.bwrap', group: 'serial', label: "skillplug execute, 'process' in bwrap", unit: 'us', run: (n) => serial(() => plugin('bwrap').execute(smallCtx), n) });
row({ id: 'serial.extismMain', group: 'serial', label: 'Extism JS SDK, main thread (WAT twin)', unit: 'us', run: (n) => serial(() => extismCall(extismMain, smallText), n) });
row({ id: 'serial.extismWorker', group: 'serial', label: 'Extism JS SDK, runInWorker (WAT twin)', unit: 'us', run: (n) => serial(() => extismCall(extismWorker, smallText), n) });
row({ id: 'serial.defaults', group: 'serial', label: "skillplug execute, loader defaults (serve's settings)", unit: 'us', run: (n) => serial(() => plugin('defaults').execute(smallCtx), n) });
row({ id: 'serial.mcp', group: 'serial', label: 'MCP end to end: official client -> skillplug serve', unit: 'us', run: (n) => serial(() => callServe(mcp), n) });
row({ id: 'serial.processPerCall', group: 'serial', label: 'a process per call (spawn + dlopen + call)', unit: 'us', calls: SMOKE ? 2 : 5, run: (n) => serial(processPerCall, n) });

// Ablations: what each mechanism of the isolated call path buys.
for (const a of ablations) {
  const p = ablated.get(a.id) as NativePluginTrait;
  row({ id: `ablation.${a.id}`, group: 'ablation', label: `isolated serial, ${a.label}`, unit: 'us', run: (n) => withTuning(a.tuning, () => serial(() => p.execute(smallCtx), n)) });
}
const noPark = await withTuning({ parkLoneCalls: false }, () => loaderFor('none').loadPlugin(pluginDir));
row({ id: 'ablation.noPark', group: 'ablation', label: "in-process serial, no parking (a lone call on a loaded machine takes koffi's async path)", unit: 'us', run: (n) => serial(() => noPark.execute(smallCtx), n) });
const noSpin = ablations.find((a) => a.id === 'noAdaptiveSpin') as (typeof ablations)[number];
row({ id: 'ablation.noAdaptiveSpin.wait', group: 'ablation', label: `isolated 1 ms call, ${noSpin.label}`, unit: 'us', targetUs: WAIT_TARGET_US, run: (n) => withTuning(noSpin.tuning, () => serial(() => (ablated.get(noSpin.id) as NativePluginTrait).execute(waitCtx), n)) });

// A call that waits 1 ms in the plugin (like one blocked on I/O): what does waiting cost in CPU?
row({ id: 'wait.koffiAsync', group: 'wait', label: 'raw koffi .async(): the baseline', unit: 'us', targetUs: WAIT_TARGET_US, run: (n) => serial(() => raw.async(waitText), n) });
row({ id: 'wait.none', group: 'wait', label: "skillplug execute, isolation 'none'", unit: 'us', targetUs: WAIT_TARGET_US, run: (n) => serial(() => plugin('none').execute(waitCtx), n) });
row({ id: 'wait.none0', group: 'wait', label: "skillplug execute, 'none', pollMicros 0", unit: 'us', targetUs: WAIT_TARGET_US, run: (n) => serial(() => plugin('none0').execute(waitCtx), n) });
// The same plugin built not thread-safe, as most plugins are: a lone call takes the pump only when the event loop polls or parks for it.
const serialNone = await loaderFor('none', { pluginsDirs: [serialPluginsDir] }).loadPlugin(serialPluginDir);
row({ id: 'wait.noneSerial', group: 'wait', label: "skillplug execute, 'none', the plugin built not thread-safe", unit: 'us', targetUs: WAIT_TARGET_US, run: (n) => serial(() => serialNone.execute(waitCtx), n) });
row({ id: 'wait.process', group: 'wait', label: "skillplug execute, isolation 'process'", unit: 'us', targetUs: WAIT_TARGET_US, run: (n) => serial(() => plugin('process').execute(waitCtx), n) });
row({ id: 'wait.process0', group: 'wait', label: "skillplug execute, 'process', pollMicros 0", unit: 'us', targetUs: WAIT_TARGET_US, run: (n) => serial(() => plugin('process0').execute(waitCtx), n) });
// The machine's floor for the rows above: a C caller whose call runs on a worker thread (koffi's shape) or in a
// forked C host process (an isolated host's shape), the same plugin call, no JSON, framing or event loop.
// Their CPU ratio is what the process boundary itself costs a waiting call here. A chunk of 500 calls outlasts
// TARGET_US, so each measurement is one run of the program, which times its own loop.
for (const [name, shape, label] of [['cThread', 'thread', 'a worker thread (condition variable, eventfd, epoll)'], ['cProcess', 'process', 'a forked C host (socketpair, poll, epoll)']] as const) {
  row({ id: `wait.${name}`, group: 'wait', label: `C floor: a C caller, the call on ${label} (separate process)`, unit: 'us', calls: SMOKE ? 20 : 500, run: (n) => floorRun(['wait', shape, waitText], n) });
}

// 64 calls in flight.
row({ id: 'flight.koffiAsync', group: 'flight', label: 'raw koffi .async()', unit: 'us', run: (n) => inFlight(() => raw.async(smallText), n) });
row({ id: 'flight.none', group: 'flight', label: "skillplug execute, isolation 'none'", unit: 'us', run: (n) => inFlight(() => plugin('none').execute(smallCtx), n) });
for (const [name, count] of [['1', 1], ['Some', SOME], ['Many', MANY]] as const) {
  row({ id: `flight.isolated${name}`, group: 'flight', label: `skillplug, isolated, over ${count} plugin${count > 1 ? 's' : ''}`, unit: 'us', run: (n) => inFlight((i) => (many[i % count] as NativePluginTrait).execute(smallCtx), n) });
}
// The machine's floor for the rows above: a C parent, 64 in flight over 1 or MANY forked C hosts (fork,
// socketpair, epoll; no JSON, no framing, no event loop). What it adds going from one host to MANY is what
// any implementation pays here for the wake-ups of many processes.
for (const [name, count] of [['1', 1], ['Many', MANY]] as const) {
  const floorCalls = SMOKE ? 2_000 : count === 1 ? 1_000_000 : 100_000;
  row({ id: `flight.cfloor${name}`, group: 'flight', label: `C floor: a C parent, 64 in flight over ${count} C host${count > 1 ? 's' : ''} (separate process)`, unit: 'us', calls: floorCalls, run: (n) => floorRun(['fanout', String(count)], n) });
}
if (bwrap) row({ id: 'flight.bwrap', group: 'flight', label: "skillplug, 'process' in bwrap, 1 plugin", unit: 'us', run: (n) => inFlight(() => plugin('bwrap').execute(smallCtx), n) });
row({ id: 'flight.extismWorker', group: 'flight', label: 'Extism JS SDK, runInWorker, queued on 1 plugin (not reentrant)', unit: 'us', run: (n) => inFlight(() => extismQueued(smallText), n) });
row({ id: 'flight.extismPool', group: 'flight', label: `Extism JS SDK, runInWorker, over ${EXTISM_POOL} plugins (${EXTISM_POOL} workers)`, unit: 'us', run: (n) => inFlight((i) => (extismPoolQueued[i % EXTISM_POOL] as (t: string) => Promise<unknown>)(smallText), n) });
row({ id: 'flight.mcp', group: 'flight', label: 'MCP end to end: official client -> skillplug serve', unit: 'us', run: (n) => inFlight(() => callServe(mcp), n) });

// Payloads: a context of big bytes in, the same bytes back.
const payloadCalls = 1;
row({ id: 'payload.json', group: 'payload', label: `JSON.stringify + JSON.parse only, ${big / MiB} MiB`, unit: 'ms', bytes: big, calls: payloadCalls, run: (n) => serialSync(() => JSON.parse(JSON.stringify(bigCtx)), n) });
row({ id: 'payload.koffiSync', group: 'payload', label: `raw koffi sync, ${big / MiB} MiB`, unit: 'ms', bytes: big, calls: payloadCalls, run: (n) => serialSync(() => raw.sync(bigText), n) });
row({ id: 'payload.executeSync', group: 'payload', label: `skillplug executeSync, ${big / MiB} MiB`, unit: 'ms', bytes: big, calls: payloadCalls, run: (n) => serialSync(() => inProcess.executeSync(bigCtx), n) });
for (const mode of ['none', 'process', ...(bwrap ? ['bwrap'] : [])] as Mode[]) {
  row({ id: `payload.${mode}`, group: 'payload', label: `skillplug execute, ${mode === 'bwrap' ? "'process' in bwrap" : `isolation '${mode}'`}, ${big / MiB} MiB`, unit: 'ms', bytes: big, calls: payloadCalls, run: (n) => serial(() => plugin(mode).execute(bigCtx), n) });
  row({ id: `mib1.${mode}`, group: 'payload', label: `skillplug execute, ${mode === 'bwrap' ? "'process' in bwrap" : `isolation '${mode}'`}, 1 MiB`, unit: 'ms', bytes: MiB, calls: payloadCalls * 4, run: (n) => serial(() => plugin(mode).execute(oneMiBCtx), n) });
}

// Starting up.
const startCalls = 1;
row({ id: 'start.node', group: 'start', label: '`node -e 0`', unit: 'ms', calls: startCalls, run: (n) => serial(() => spawnOnce(process.execPath, ['-e', '0']), n) });
row({ id: 'start.run', group: 'start', label: '`skillplug run bench` (cold: Node start, load, one call)', unit: 'ms', calls: startCalls, run: (n) => serial(() => spawnOnce(process.execPath, [CLI, 'run', 'bench', '--plugins-dir', pluginsDir, '--workspace', work, '--input', '{"q":"x"}', '--json'], { cwd: work, env: cliEnv }), n) });
row({ id: 'start.serve', group: 'start', label: '`skillplug serve` to its first tool result (official client)', unit: 'ms', calls: startCalls, run: async (n) => {
  let counted = 0;
  for (let i = 0; i < n; i++) {
    const t = nowUs();
    const client = await connectServe();
    await callServe(client);
    counted += nowUs() - t;
    await client.close();
  }
  return counted;
} });
row({ id: 'start.list', group: 'start', label: `\`skillplug list --json\` over ${DIRS} plugin dirs`, unit: 'ms', calls: startCalls, run: (n) => serial(() => spawnOnce(process.execPath, [CLI, 'list', '--plugins-dir', discoveryDir, '--json'], { cwd: work, env: cliEnv }), n) });
row({ id: 'start.discover', group: 'start', label: `discoverPlugins() over ${DIRS} plugin dirs, in process`, unit: 'ms', calls: startCalls, run: (n) => serial(() => discoveryLoader.discoverPlugins(), n) });
// Load + first call, n times, counting only those (not the close).
async function coldStarts(mode: Mode, n: number): Promise<number> {
  let counted = 0;
  for (let i = 0; i < n; i++) {
    const t = nowUs();
    const p = await loaderFor(mode).loadPlugin(pluginDir);
    await p.execute(smallCtx);
    counted += nowUs() - t;
    await p.close();
  }
  return counted;
}
for (const mode of ['none', 'process', ...(bwrap ? ['bwrap'] : [])] as Mode[]) {
  row({ id: `start.lib.${mode}`, group: 'start', label: `library: load + first call, ${mode === 'bwrap' ? "'process' in bwrap" : `isolation '${mode}'`}`, unit: 'ms', calls: startCalls, run: (n) => coldStarts(mode, n) });
}

// The showcase: code-search against grep on the same tree, same query, same count of matching lines.
const searchCalls = 1;
if (codeSearch) {
  const cs = codeSearch;
  row({ id: 'search.plugin', group: 'search', label: 'code-search example (library, isolated, defaults)', unit: 'ms', calls: searchCalls, run: (n) => serial(() => searchWith('search.plugin', async () => {
    const result = await cs.execute({ input: { patterns: [NEEDLE], max_results: 100_000 }, workspace_root: searchRoot, config: {} });
    return (result.output as { matches: unknown[] }).matches.length;
  }), n) });
}
row({ id: 'search.grep', group: 'search', label: '`grep -rF`', unit: 'ms', calls: searchCalls, run: (n) => serial(() => searchWith('search.grep', async () => countLines(await spawnOnce('grep', ['-rF', NEEDLE, searchRoot]))), n) });
if (rg) row({ id: 'search.rg', group: 'search', label: '`rg -F`', unit: 'ms', calls: searchCalls, run: (n) => serial(() => searchWith('search.rg', async () => countLines(await spawnOnce('rg', ['-F', '--no-heading', NEEDLE, searchRoot]))), n) });

const fileStatsDir = path.join(ROOT, '.vtcode', 'plugins');
let fileStats: NativePluginTrait | undefined;
try {
  fileStats = await new PluginLoader({ pluginsDirs: [fileStatsDir], defaultDirs: false, readConfig: false, workspace: ROOT, sandbox: 'off' }).loadPlugin(path.join(fileStatsDir, 'file-stats'));
} catch (err) {
  notes.push(`file-stats rows skipped: ${(err as Error).message.split('\n')[0]}`);
}
if (fileStats) {
  const fs = fileStats;
  row({ id: 'filestats.native', group: 'search', label: 'file-stats example over this repository', unit: 'ms', calls: searchCalls, run: (n) => serial(() => fs.execute({ input: { path: '.', top: 10 }, workspace_root: ROOT, config: {} }), n) });
  row({ id: 'filestats.node', group: 'search', label: 'the same in pure Node (bench/node-file-stats.ts)', unit: 'ms', calls: searchCalls, run: (n) => serial(() => nodeFileStats(ROOT, false), n) });
}

// ---------- measuring ----------
async function measure(def: RowDef, n: number, condition: Condition): Promise<Sample> {
  const neighbour = condition === 'busy' ? await startNeighbour(spinner) : undefined;
  // The condition holds for the whole measurement: one unmeasured chunk first lets the spin budget, which
  // samples the machine every 10 ms and smooths over a few samples, see the neighbour start (or stop).
  if (def.calls === undefined) await def.run(n);
  const closeWindow = cpuWindow(neighbour?.pid);
  const t = nowUs();
  let counted = 0;
  let countedCpu = 0;
  let calls = 0;
  let timed = false;
  let selfTimed = false;
  // A row runs chunks of n calls until TARGET_US passed (at least one), so a loaded machine does not stretch it.
  do {
    const chunk = await def.run(n);
    if (isSelfTimed(chunk)) {
      counted += chunk.us;
      countedCpu += chunk.cpuUs;
      timed = selfTimed = true;
    } else if (typeof chunk === 'number') {
      counted += chunk;
      timed = true;
    }
    calls += n;
  } while (nowUs() - t < (def.targetUs ?? TARGET_US));
  const window = closeWindow();
  await neighbour?.stop();
  return {
    calls,
    us: (timed ? counted : window.wallUs) / calls,
    cpuUs: (selfTimed ? countedCpu : window.cpuUs) / calls,
    wallUs: window.wallUs,
    otherCores: window.otherCores,
    neighbourCores: window.neighbourCores,
  };
}

/** Warms a row up and picks its calls per measurement so one lasts about TARGET_US. */
async function calibrate(def: RowDef): Promise<number> {
  if (def.calls !== undefined) {
    // Start-up rows measure cold starts; the rest get one warm-up.
    if (!SMOKE && def.group !== 'start' && def.id !== 'serial.processPerCall') await def.run(Math.min(def.calls, 3));
    return def.calls;
  }
  let n = 8;
  for (;;) {
    const t = nowUs();
    await def.run(n);
    const elapsed = nowUs() - t;
    // Chunks of about a quarter of the target: the last one overshoots it by little.
    if (elapsed >= TARGET_US / 16 || n >= 1 << 24) return Math.max(SMOKE ? 4 : 16, Math.round((n * TARGET_US) / 4 / Math.max(elapsed, 1)));
    n *= 4;
  }
}

const loadStart = os.loadavg();
// A process left spinning (a probe's, a build) would pass for an idle machine: say so before the rounds start.
{
  const closeWindow = cpuWindow();
  await new Promise((resolve) => setTimeout(resolve, SMOKE ? 50 : 500));
  const quiet = closeWindow();
  if (quiet.otherCores > OTHER_WORK_LIMIT_CORES) log(`bench: WARNING: other processes use ${quiet.otherCores.toFixed(2)} cores; the idle rows will not be idle (the report says so too)`);
}
const results: RowResult[] = [];
const calls = new Map<string, number>();
log(`bench: calibrating ${rows.length} rows`);
for (const def of rows) {
  calls.set(def.id, await calibrate(def));
  results.push({ id: def.id, group: def.group, label: def.label, unit: def.unit, calls: calls.get(def.id) as number, ...(def.calls === undefined ? { targetMs: (def.targetUs ?? TARGET_US) / 1000 } : {}), ...(def.bytes ? { bytes: def.bytes } : {}), idle: [], busy: [] });
}
let rounds = 0;
let longestRoundS = 0;
for (let round = 0; round < ROUNDS; round++) {
  const elapsedS = (Date.now() - started) / 1000;
  if (round > 0 && elapsedS + longestRoundS > BUDGET_S) {
    notes.push(`stopped after ${round} of ${ROUNDS} rounds: another would end past the ${BUDGET_S} s budget (rounds took up to ${longestRoundS.toFixed(0)} s here)`);
    break;
  }
  log(`bench: round ${round + 1}/${ROUNDS} (${elapsedS.toFixed(0)} s so far)`);
  const roundStart = Date.now();
  // ABAB: idle first in even rounds, busy first in odd ones, so slow drift of the machine cancels out.
  const order: Condition[] = round % 2 === 0 ? ['idle', 'busy'] : ['busy', 'idle'];
  for (const [i, def] of rows.entries()) {
    const result = results[i] as RowResult;
    const rowStart = Date.now();
    for (const condition of order) result[condition].push(await measure(def, calls.get(def.id) as number, condition));
    if (Date.now() - rowStart > 10_000) log(`bench: ${def.id} took ${((Date.now() - rowStart) / 1000).toFixed(0)} s (idle + busy)`);
  }
  rounds++;
  longestRoundS = Math.max(longestRoundS, (Date.now() - roundStart) / 1000);
}

// ---------- one-off checks (idle) ----------
log('bench: memory');
const rss: Record<string, number> = {};
for (const mode of ['process', ...(bwrap ? ['bwrap'] : [])] as Mode[]) {
  const pid = (plugin(mode) as IsolatedPlugin).hostPid;
  if (pid) rss[mode] = groupRssMiB(pid);
}
const manyRssMiB = many.reduce((sum, p) => sum + groupRssMiB((p as IsolatedPlugin).hostPid ?? 0), 0);
log(`bench: soak (${((Date.now() - started) / 1000).toFixed(0)} s so far)`);
const soak: Record<string, number> = {};
{
  const inN = SMOKE ? 20_000 : 300_000;
  const rssNow = (): number => process.memoryUsage().rss / MiB;
  for (let i = 0; i < inN / 10; i++) inProcess.executeSync(smallCtx);
  global.gc?.();
  const before = rssNow();
  for (let i = 0; i < inN; i++) inProcess.executeSync(smallCtx);
  global.gc?.();
  soak.inProcessCalls = inN;
  soak.inProcessRssGrowthPct = ((rssNow() - before) / before) * 100;
  const isolated = plugin('process') as IsolatedPlugin;
  const isoN = SMOKE ? 2_000 : 50_000;
  await inFlight(() => isolated.execute(smallCtx), isoN / 10);
  const hostBefore = groupRssMiB(isolated.hostPid as number);
  await inFlight(() => isolated.execute(smallCtx), isoN);
  soak.isolatedCalls = isoN;
  soak.isolatedHostRssGrowthPct = ((groupRssMiB(isolated.hostPid as number) - hostBefore) / hostBefore) * 100;
}

await mcp.close();
for (const p of [...plugins.values(), ...ablated.values(), ...many, ...(codeSearch ? [codeSearch] : []), ...(fileStats ? [fileStats] : [])]) await p.close();
await extismMain.close();
await extismWorker.close();
for (const p of extismPool) await p.close();
if (!existsSync(exampleDir)) notes.push('examples not built: run `npm run prepare`');

const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown CPU';
const result: BenchResult = {
  version: 1,
  date: new Date(started).toISOString(),
  smoke: SMOKE,
  rounds,
  durationS: (Date.now() - started) / 1000,
  machine: {
    cpuModel,
    cores: os.availableParallelism(),
    memGiB: Math.round(os.totalmem() / 1024 ** 3),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    loadavgStart: loadStart,
    loadavgEnd: os.loadavg(),
  },
  rows: results,
  memory: { hostRssMiB: rss, manyPlugins: MANY, manyPluginsRssMiB: manyRssMiB, soak },
  search: { needle: NEEDLE, counts: searchCounts, rg },
  notes,
};

if (ONLY) {
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  for (const r of results) {
    const cells = (['idle', 'busy'] as const).map((c) => `${c} ${median(r[c].map((x) => x.us)).toFixed(1)} (cpu ${median(r[c].map((x) => x.cpuUs)).toFixed(1)}) [${r[c].map((x) => x.us.toFixed(0)).join(' ')}]`);
    process.stdout.write(`${r.id.padEnd(28)} ${cells.join('   ')}\n`);
  }
  process.exit(0);
}
const jsonFile = option('--json');
if (jsonFile) writeFileSync(jsonFile, `${JSON.stringify(result, null, 2)}\n`);
const write = !SMOKE && !flag('--no-write');
const markdown = writeDocs(result, ROOT, write);
process.stdout.write(`${markdown}\n`);
log(`bench: done in ${result.durationS.toFixed(0)} s${write ? '; wrote bench/last-run.json, docs/bench.md, docs/bench.svg and the README section' : ''}`);
process.exit(0);
