// skillplug's benchmark suite: every way to call a trivial plugin, side by side, interleaved, medians.
// Usage: npm run bench [-- --smoke] [--rounds N] [--json FILE] [--no-write]
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import koffi from 'koffi';
import { PluginLoader, type NativePluginTrait, type PluginContext } from '../src/index.js';
import type { InProcessPlugin } from '../src/in-process/index.js';
import type { IsolatedPlugin } from '../src/host/isolated.js';
import { detectSandbox } from '../src/sandbox/index.js';
import { nodeFileStats } from './node-file-stats.js';
import { renderChart } from './svg.js';

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
const ROUNDS = Number(option('--rounds') ?? (SMOKE ? 1 : 7));
const scale = (n: number): number => (SMOKE ? Math.max(1, Math.ceil(n / 200)) : n);
const MiB = 1024 * 1024;

type Sample = Record<string, number[]>;
const samples: Sample = {};
const record = (key: string, value: number): void => {
  (samples[key] ??= []).push(value);
};
const median = (values: number[] | undefined): number | undefined => {
  if (!values || values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};
const log = (line: string): void => void process.stderr.write(`${line}\n`);
const nowUs = (): number => Number(process.hrtime.bigint()) / 1000;

// ---------- setup ----------
const work = path.join(os.tmpdir(), `skillplug-bench-${process.pid}`);
const pluginsDir = path.join(work, 'plugins');
const pluginDir = path.join(pluginsDir, 'bench');
mkdirSync(pluginDir, { recursive: true });
const libraryPath = path.join(pluginDir, 'libbench.so');
await run('cc', ['-O2', '-shared', '-fPIC', '-o', libraryPath, path.join(ROOT, 'bench', 'plugins', 'bench.c')]);
writeFileSync(path.join(pluginDir, 'plugin.json'), JSON.stringify({ name: 'bench', description: 'Benchmark plugin', version: '1.0.0' }));
const floor = path.join(work, 'floor');
await run('cc', ['-O2', '-o', floor, path.join(ROOT, 'bench', 'floor.c'), '-ldl']);
const sandbox = await detectSandbox();
process.on('exit', () => {
  try {
    execFile('rm', ['-rf', work]);
  } catch {
    // Best effort.
  }
});

const smallCtx: PluginContext = { input: { q: '0123456789' }, workspace_root: null, config: {} };
const payloadCtx = (bytes: number): PluginContext => ({ input: { data: 'x'.repeat(bytes) }, workspace_root: null, config: {} });

const loaderFor = (mode: 'none' | 'process' | 'bwrap'): PluginLoader =>
  new PluginLoader({
    pluginsDirs: [pluginsDir],
    defaultDirs: false,
    readConfig: false,
    isolation: mode === 'none' ? 'none' : 'process',
    sandbox: mode === 'bwrap' ? 'required' : 'off',
    maxOutputBytes: 128 * MiB,
  });

const modes: ('none' | 'process' | 'bwrap')[] = sandbox.available ? ['none', 'process', 'bwrap'] : ['none', 'process'];
if (!sandbox.available) log(`bench: bwrap rows skipped: ${sandbox.reason}`);
const plugins = new Map<string, NativePluginTrait>();
for (const mode of modes) plugins.set(mode, await loaderFor(mode).loadPlugin(pluginDir));
const inProcess = plugins.get('none') as InProcessPlugin;

// Raw koffi on the same library, as a caller without skillplug would use it.
// skillplug has configured koffi already (stack sizes, async queue) by loading the in-process plugin.
const rawLib = koffi.load(libraryPath);
const rawExecute = rawLib.func('void *vtcode_plugin_execute(const char *ctx)');
const rawFree = rawLib.func('void vtcode_plugin_free_string(void *s)');
const rawCallSync = (ctx: string): string => {
  const ptr = rawExecute(ctx);
  const text = koffi.decode(ptr, 'char', -1) as string;
  rawFree(ptr);
  return text;
};
const rawCallAsync = (ctx: string): Promise<string> =>
  new Promise((resolve, reject) =>
    rawExecute.async(ctx, (err: Error | null, ptr: unknown) => {
      if (err) return reject(err);
      const text = koffi.decode(ptr, 'char', -1) as string;
      rawFree(ptr);
      resolve(text);
    }),
  );

// ---------- measurements ----------
async function serialAsync(fn: () => Promise<unknown>, n: number): Promise<number> {
  for (let i = 0; i < Math.min(200, n); i++) await fn();
  const t = nowUs();
  for (let i = 0; i < n; i++) await fn();
  return (nowUs() - t) / n;
}

function serialSync(fn: () => unknown, n: number): number {
  for (let i = 0; i < Math.min(1000, n); i++) fn();
  const t = nowUs();
  for (let i = 0; i < n; i++) fn();
  return (nowUs() - t) / n;
}

async function inFlight(fn: () => Promise<unknown>, total: number, width = 64): Promise<number> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < total) {
      next++;
      await fn();
    }
  };
  await Promise.all(Array.from({ length: width }, lane));
  next = 0;
  const t = nowUs();
  await Promise.all(Array.from({ length: width }, lane));
  return (nowUs() - t) / total;
}

async function throughput(fn: () => Promise<unknown> | unknown, bytes: number, n: number): Promise<number> {
  await fn();
  // Each row starts from a collected heap, so no row pays for the garbage of the one before it.
  global.gc?.();
  const t = nowUs();
  for (let i = 0; i < n; i++) await fn();
  return (bytes * n) / MiB / ((nowUs() - t) / 1e6);
}

const floorJson = async (...args: string[]): Promise<Record<string, number>> => JSON.parse((await run(floor, [libraryPath, ...args])).stdout) as Record<string, number>;

async function processPerCall(n: number): Promise<number> {
  const t = nowUs();
  for (let i = 0; i < n; i++) {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(floor, [libraryPath, 'once', JSON.stringify(smallCtx)], { stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', reject);
      child.on('close', () => (JSON.parse(out) ? resolve() : reject(new Error('bad output'))));
    });
  }
  return (nowUs() - t) / n;
}

/** Sum of VmRSS over a process group (bwrap's namespace included), in MiB. */
function groupRssMiB(pgid: number): number {
  let kib = 0;
  for (const entry of readdirProc()) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== pgid) continue;
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      kib += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    } catch {
      // The process went away.
    }
  }
  return kib / 1024;
}
function readdirProc(): string[] {
  try {
    return readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return [];
  }
}

async function coldStart(mode: 'none' | 'process' | 'bwrap'): Promise<{ ms: number; rssMiB?: number }> {
  const loader = loaderFor(mode);
  const t = nowUs();
  const plugin = await loader.loadPlugin(pluginDir);
  await plugin.execute(smallCtx);
  const ms = (nowUs() - t) / 1000;
  const pid = (plugin as IsolatedPlugin).hostPid;
  await new Promise((r) => setTimeout(r, 50));
  const rssMiB = pid ? groupRssMiB(pid) : undefined;
  await plugin.close();
  return rssMiB === undefined ? { ms } : { ms, rssMiB };
}

async function discovery(count: number): Promise<{ inProcessMs: number; cliMs: number }> {
  const dir = path.join(work, `discovery-${count}`);
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < count; i++) {
    const p = path.join(dir, `p${i}`);
    mkdirSync(p, { recursive: true });
    writeFileSync(path.join(p, 'plugin.json'), JSON.stringify({ name: `p${i}`, description: 'd', version: '1' }));
    writeFileSync(path.join(p, `libp${i}.so`), '');
  }
  const loader = new PluginLoader({ pluginsDirs: [dir], defaultDirs: false, readConfig: false });
  await loader.discoverPlugins();
  const t = nowUs();
  await loader.discoverPlugins();
  const inProcessMs = (nowUs() - t) / 1000;
  const cli = path.join(ROOT, 'dist', 'cli', 'main.js');
  const t1 = nowUs();
  // From an empty workspace and home, so only the generated dirs are scanned.
  await run(process.execPath, [cli, 'list', '--plugins-dir', dir, '--json'], { cwd: work, maxBuffer: 64 * MiB, env: { ...process.env, HOME: work } });
  const cliWall = (nowUs() - t1) / 1000;
  const t2 = nowUs();
  await run(process.execPath, ['-e', '0']);
  const nodeWall = (nowUs() - t2) / 1000;
  return { inProcessMs, cliMs: cliWall - nodeWall };
}

async function soak(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const inN = SMOKE ? 20_000 : 1_000_000;
  const rss = (): number => process.memoryUsage().rss / MiB;
  for (let i = 0; i < inN / 10; i++) inProcess.executeSync(smallCtx);
  global.gc?.();
  const before = rss();
  for (let i = 0; i < inN; i++) inProcess.executeSync(smallCtx);
  global.gc?.();
  out.inProcessCalls = inN;
  out.inProcessRssGrowthPct = ((rss() - before) / before) * 100;
  const isolated = plugins.get('process') as IsolatedPlugin;
  const isoN = SMOKE ? 2_000 : 200_000;
  await inFlight(() => isolated.execute(smallCtx), isoN / 10);
  const hostBefore = groupRssMiB(isolated.hostPid as number);
  await inFlight(() => isolated.execute(smallCtx), isoN);
  const hostAfter = groupRssMiB(isolated.hostPid as number);
  out.isolatedCalls = isoN;
  out.isolatedHostRssGrowthPct = ((hostAfter - hostBefore) / hostBefore) * 100;
  return out;
}

async function fileStatsRows(): Promise<Record<string, number>> {
  const examples = path.join(ROOT, '.vtcode', 'plugins');
  const loader = new PluginLoader({ pluginsDirs: [examples], defaultDirs: false, readConfig: false, workspace: ROOT, sandbox: 'off' });
  let plugin: NativePluginTrait;
  try {
    plugin = await loader.loadPlugin(path.join(examples, 'file-stats'));
  } catch (err) {
    log(`bench: file-stats rows skipped: ${(err as Error).message.split('\n')[0]}`);
    return {};
  }
  const out: Record<string, number> = {};
  try {
    for (const [label, sub, includeIgnored] of [
      ['repo', '.', false],
      ['node_modules', 'node_modules', true],
    ] as const) {
      for (let r = 0; r < (SMOKE ? 1 : 3); r++) {
        const t = nowUs();
        const result = await plugin.execute({ input: { path: sub, include_ignored: includeIgnored, top: 10 }, workspace_root: ROOT, config: {} });
        const nativeMs = (nowUs() - t) / 1000;
        const t2 = nowUs();
        const node = await nodeFileStats(path.join(ROOT, sub), includeIgnored);
        const nodeMs = (nowUs() - t2) / 1000;
        const files = (result.output as { files: number }).files;
        if (files !== node.files) log(`bench: file-stats and the Node version disagree on ${label}: ${files} vs ${node.files} files`);
        record(`filestats.${label}.native`, nativeMs);
        record(`filestats.${label}.node`, nodeMs);
        out[`${label}Files`] = files;
      }
    }
  } finally {
    await plugin.close();
  }
  return out;
}

// ---------- the run ----------
const N = { floor: scale(2_000_000), sync: scale(200_000), async: scale(20_000), flight: scale(20_000), spawn: SMOKE ? 3 : 40, big: SMOKE ? 1 : 6 };
const smallText = JSON.stringify(smallCtx);
const SMALL_RESULT = '{"success":true,"output":{"ok":true},"error":null,"files":[]}';
const big = 16 * MiB;
const bigCtx = payloadCtx(big);
const bigText = JSON.stringify(bigCtx);
const oneMiBCtx = payloadCtx(MiB);

for (let round = 0; round < ROUNDS; round++) {
  log(`bench: round ${round + 1}/${ROUNDS}`);
  record('serial.cfloor', (await floorJson('serial', String(N.floor))).us_per_call as number);
  record('serial.json', serialSync(() => JSON.stringify(smallCtx).length + JSON.parse(SMALL_RESULT).files.length, N.sync));
  record('serial.koffiSync', serialSync(() => JSON.parse(rawCallSync(smallText)), N.sync));
  record('serial.executeSync', serialSync(() => inProcess.executeSync(smallCtx), N.sync));
  record('serial.koffiAsync', await serialAsync(() => rawCallAsync(smallText), N.async));
  for (const mode of modes) record(`serial.${mode}`, await serialAsync(() => (plugins.get(mode) as NativePluginTrait).execute(smallCtx), N.async));
  record('serial.processPerCall', await processPerCall(N.spawn));

  record('flight.koffiAsync', await inFlight(() => rawCallAsync(smallText), N.flight));
  for (const mode of modes) record(`flight.${mode}`, await inFlight(() => (plugins.get(mode) as NativePluginTrait).execute(smallCtx), N.flight));

  record('big.cfloor', (await floorJson('roundtrip', String(big), String(N.big))).mib_per_s as number);
  record('big.json', await throughput(() => JSON.parse(JSON.stringify(bigCtx)), big, N.big));
  record('big.koffiSync', await throughput(() => JSON.parse(rawCallSync(bigText)), big, N.big));
  record('big.executeSync', await throughput(() => inProcess.executeSync(bigCtx), big, N.big));
  for (const mode of modes) {
    record(`big.${mode}`, await throughput(() => (plugins.get(mode) as NativePluginTrait).execute(bigCtx), big, N.big));
    record(`mib1.${mode}`, await throughput(() => (plugins.get(mode) as NativePluginTrait).execute(oneMiBCtx), MiB, N.big * 8));
  }

  for (const mode of modes) {
    const cold = await coldStart(mode);
    record(`cold.${mode}`, cold.ms);
    if (cold.rssMiB !== undefined) record(`rss.${mode}`, cold.rssMiB);
  }
}

log('bench: discovery');
for (const count of SMOKE ? [10, 100] : [10, 100, 1000]) {
  for (let r = 0; r < (SMOKE ? 1 : 3); r++) {
    const d = await discovery(count);
    record(`discovery.${count}.inProcess`, d.inProcessMs);
    record(`discovery.${count}.cli`, d.cliMs);
  }
}

log('bench: thirty plugins loaded');
const thirty: NativePluginTrait[] = [];
for (let i = 0; i < (SMOKE ? 3 : 30); i++) thirty.push(await loaderFor('process').loadPlugin(pluginDir));
await Promise.all(thirty.map((p) => p.execute(smallCtx)));
const thirtyMiB = thirty.reduce((sum, p) => sum + groupRssMiB((p as IsolatedPlugin).hostPid as number), 0);
await Promise.all(thirty.map((p) => p.close()));

log('bench: soak');
const soakResult = await soak();
log('bench: file-stats against pure Node');
const fileStatsInfo = await fileStatsRows();
for (const p of plugins.values()) await p.close();

// ---------- report ----------
const m = (key: string): number | undefined => median(samples[key]);
const fmt = (v: number | undefined, digits = 1): string => (v === undefined ? '–' : v >= 100 ? v.toFixed(0) : v.toFixed(digits));
const ratio = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined ? '–' : `${(a / b).toFixed(2)}×`);

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const machine = `${cpu}, ${os.cpus().length} cores, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB, ${os.type()} ${os.release()}, Node ${process.version}, ${ROUNDS} rounds, medians${SMOKE ? ' (SMOKE RUN: tiny counts, not meaningful)' : ''}`;

interface Row {
  label: string;
  key: string;
  serial?: number;
  flight?: number;
  big?: number;
  mib1?: number;
  cold?: number;
  rss?: number;
}
const rows: Row[] = [
  { label: 'C host, dlopen + call (no JSON)', key: 'cfloor', serial: m('serial.cfloor'), big: m('big.cfloor'), rss: 1.4 },
  { label: 'JS JSON.stringify + JSON.parse only', key: 'json', serial: m('serial.json'), big: m('big.json') },
  { label: 'raw koffi sync (+ JSON.parse)', key: 'koffiSync', serial: m('serial.koffiSync'), big: m('big.koffiSync') },
  { label: 'raw koffi .async() (+ JSON.parse)', key: 'koffiAsync', serial: m('serial.koffiAsync'), flight: m('flight.koffiAsync') },
  { label: 'skillplug executeSync (in-process)', key: 'executeSync', serial: m('serial.executeSync'), big: m('big.executeSync') },
  { label: "skillplug execute, isolation 'none'", key: 'none', serial: m('serial.none'), flight: m('flight.none'), big: m('big.none'), mib1: m('mib1.none'), cold: m('cold.none') },
  { label: "skillplug execute, isolation 'process'", key: 'process', serial: m('serial.process'), flight: m('flight.process'), big: m('big.process'), mib1: m('mib1.process'), cold: m('cold.process'), rss: m('rss.process') },
  ...(modes.includes('bwrap')
    ? [{ label: "skillplug execute, 'process' in bwrap", key: 'bwrap', serial: m('serial.bwrap'), flight: m('flight.bwrap'), big: m('big.bwrap'), mib1: m('mib1.bwrap'), cold: m('cold.bwrap'), rss: m('rss.bwrap') }]
    : []),
  { label: 'process per call (spawn + dlopen + call)', key: 'processPerCall', serial: m('serial.processPerCall') },
];

const table = [
  '| way to call a trivial plugin (64-byte ctx) | serial µs/call | 64 in flight µs/call | 1 MiB MiB/s | 16 MiB round trip MiB/s | cold start ms | idle RSS MiB |',
  '|---|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.label} | ${fmt(r.serial, 2)} | ${fmt(r.flight, 2)} | ${fmt(r.mib1)} | ${fmt(r.big)} | ${fmt(r.cold)} | ${fmt(r.rss)} |`),
];

const target = (ok: boolean | undefined, text: string): string => `- ${ok === undefined ? '–' : ok ? '✅' : '❌'} ${text}`;
const serialNone = m('serial.none');
const serialProc = m('serial.process');
const targets = [
  target(serialNone !== undefined && serialNone <= (m('serial.koffiAsync') ?? 0), `in-process execute serial ≤ 1.0× raw koffi .async(): ${ratio(serialNone, m('serial.koffiAsync'))}`),
  target((m('flight.none') ?? Infinity) <= 0.15 * (m('flight.koffiAsync') ?? 0), `in-process 64 in flight ≤ 0.15× raw koffi .async() per call: ${ratio(m('flight.none'), m('flight.koffiAsync'))}`),
  target((m('serial.executeSync') ?? Infinity) <= 1.3 * (m('serial.json') ?? 0), `executeSync ≤ 1.3× the JS JSON floor: ${ratio(m('serial.executeSync'), m('serial.json'))}`),
  target((serialProc ?? Infinity) <= 2 * (serialNone ?? 0), `isolated serial ≤ 2× in-process execute: ${ratio(serialProc, serialNone)}`),
  target((m('flight.process') ?? Infinity) <= 8, `isolated 64 in flight ≤ 8 µs per call: ${fmt(m('flight.process'), 2)} µs`),
  target((m('big.process') ?? 0) >= 0.8 * (m('big.none') ?? Infinity), `isolated 16 MiB round trip ≥ 0.8× in-process MiB/s: ${ratio(m('big.process'), m('big.none'))}`),
  target((m('cold.process') ?? Infinity) <= 20, `isolated cold start ≤ 20 ms: ${fmt(m('cold.process'))} ms`),
  ...(modes.includes('bwrap') ? [target((m('cold.bwrap') ?? Infinity) <= 30, `cold start in bwrap ≤ 30 ms: ${fmt(m('cold.bwrap'))} ms`)] : []),
  target((m('rss.process') ?? Infinity) <= 4, `idle host RSS ≤ 4 MiB: ${fmt(m('rss.process'), 2)} MiB`),
  target(thirtyMiB < 1024, `${SMOKE ? 3 : 30} isolated plugins loaded: ${fmt(thirtyMiB)} MiB of host RSS in all (< 1 GiB)`),
  target((m(`discovery.${SMOKE ? 100 : 1000}.cli`) ?? Infinity) <= 100, `discovery of ${SMOKE ? 100 : 1000} plugin dirs (list --json) ≤ 100 ms beyond Node's start: ${fmt(m(`discovery.${SMOKE ? 100 : 1000}.cli`))} ms`),
  target(serialProc !== undefined && serialProc * 1.5 <= 148, `isolated ≥ 1.5× faster per call than Extism's worker mode (148 µs, from the issue's table; not runnable offline here): ${serialProc ? (148 / serialProc).toFixed(1) : '–'}×`),
  target(serialProc !== undefined && serialProc * 40 <= (m('serial.processPerCall') ?? 0), `isolated ≥ 40× faster than a process per call: ${serialProc ? ((m('serial.processPerCall') ?? 0) / serialProc).toFixed(0) : '–'}×`),
  target(soakResult.inProcessRssGrowthPct! < 10, `soak: ${soakResult.inProcessCalls} in-process calls, RSS growth ${fmt(soakResult.inProcessRssGrowthPct, 2)}% (< 10%)`),
  target(soakResult.isolatedHostRssGrowthPct! < 10, `soak: ${soakResult.isolatedCalls} isolated calls, host RSS growth ${fmt(soakResult.isolatedHostRssGrowthPct, 2)}% (< 10%)`),
];

const fileStats = [
  '| file-stats job | files | native plugin ms | pure Node ms | speed-up |',
  '|---|---:|---:|---:|---:|',
  ...['repo', 'node_modules'].map((label) => {
    const native = m(`filestats.${label}.native`);
    const node = m(`filestats.${label}.node`);
    return `| ${label === 'repo' ? 'this repository' : 'node_modules (incl. ignored)'} | ${fileStatsInfo[`${label}Files`] ?? '–'} | ${fmt(native)} | ${fmt(node)} | ${native && node ? `${(node / native).toFixed(1)}×` : '–'} |`;
  }),
];

const discoveryTable = [
  '| plugin dirs | discoverPlugins() ms | `list --json` ms beyond Node start |',
  '|---:|---:|---:|',
  ...(SMOKE ? [10, 100] : [10, 100, 1000]).map((c) => `| ${c} | ${fmt(m(`discovery.${c}.inProcess`))} | ${fmt(m(`discovery.${c}.cli`))} |`),
];

const markdown = [
  `Machine: ${machine}.`,
  '',
  ...table,
  '',
  'Targets (issue 7):',
  ...targets,
  '',
  ...fileStats,
  '',
  ...discoveryTable,
  '',
].join('\n');

process.stdout.write(`${markdown}\n`);
const jsonFile = option('--json');
if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ machine, rounds: ROUNDS, smoke: SMOKE, samples, soak: soakResult, thirtyPluginsRssMiB: thirtyMiB }, null, 2));
if (!SMOKE && !flag('--no-write')) {
  writeFileSync(path.join(ROOT, 'docs', 'bench.md'), `# Benchmark results\n\nGenerated by \`npm run bench\`.\n\n${markdown}`);
  writeFileSync(path.join(ROOT, 'docs', 'bench.svg'), renderChart(rows.filter((r) => r.serial !== undefined).map((r) => ({ label: r.label, value: r.serial as number })), machine));
  const readmePath = path.join(ROOT, 'README.md');
  const readme = readFileSync(readmePath, 'utf8');
  const updated = readme.replace(/<!-- bench:start -->[\s\S]*<!-- bench:end -->/, `<!-- bench:start -->\n${markdown}<!-- bench:end -->`);
  writeFileSync(readmePath, updated);
  log('bench: wrote docs/bench.md, docs/bench.svg and the README table');
}
process.exit(0);
