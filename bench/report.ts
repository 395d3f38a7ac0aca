// Turns one bench run's JSON into the tables of docs/bench.md, docs/bench.svg and the README's benchmark section.
// Usage: node build/bench/report.js bench/last-run.json   (rewrites the docs from that run, measures nothing)
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { renderChart } from './svg.js';

/** Idle: nothing started by the bench beside the row. Busy: the bench's own neighbour spins on one core. */
export type Condition = 'idle' | 'busy';
export const CONDITIONS: Condition[] = ['idle', 'busy'];

/** One measurement of one row, per call. */
export interface Sample {
  /** Calls made in this measurement. */
  calls: number;
  /** Latency per call (serial rows) or wall time per call (in-flight rows), µs. */
  us: number;
  /** CPU per call: this process (all threads) + every process it started (hosts, bwrap, CLIs), µs. */
  cpuUs: number;
  /** Wall time of the whole measurement, µs. */
  wallUs: number;
  /** Cores of the machine busy with work that was neither the bench nor its neighbour. */
  otherCores: number;
  /** Cores the busy neighbour got (0 when idle). */
  neighbourCores: number;
}

/** A row: one sample per round and condition, rounds in order. */
export interface RowResult {
  id: string;
  group: string;
  label: string;
  unit: 'us' | 'ms';
  /** Calls per chunk: a measurement repeats chunks until its time is up (fixed rows: exactly this many). */
  calls: number;
  /** How long a measurement lasted, about, in ms (absent: rows with a fixed count of calls, and older runs). */
  targetMs?: number;
  bytes?: number;
  idle: Sample[];
  busy: Sample[];
}

/** Everything one run measured. */
export interface BenchResult {
  version: 1;
  date: string;
  smoke: boolean;
  rounds: number;
  durationS: number;
  machine: { cpuModel: string; cores: number; memGiB: number; kernel: string; node: string; loadavgStart: number[]; loadavgEnd: number[] };
  rows: RowResult[];
  memory: { hostRssMiB: Record<string, number>; manyPlugins: number; manyPluginsRssMiB: number; soak: Record<string, number> };
  search: { needle: string; counts: Record<string, number>; rg: boolean };
  notes: string[];
}

interface Stat {
  median: number;
  min: number;
  max: number;
}

const stat = (values: number[]): Stat | undefined => {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { median, min: sorted[0] as number, max: sorted[sorted.length - 1] as number };
};

const num = (v: number): string => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));
const spread = (s: Stat | undefined, scale = 1, suffix = ''): string =>
  s === undefined ? '–' : s.min === s.max ? `${num(s.median / scale)}${suffix}` : `${num(s.median / scale)}${suffix} (${num(s.min / scale)}–${num(s.max / scale)})`;

/** A view of one run: per-row and per-round-ratio statistics. */
class View {
  private readonly byId: Map<string, RowResult>;
  constructor(readonly result: BenchResult) {
    this.byId = new Map(result.rows.map((r) => [r.id, r]));
  }
  has(id: string): boolean {
    return this.byId.has(id);
  }
  row(id: string): RowResult | undefined {
    return this.byId.get(id);
  }
  field(id: string, c: Condition, field: 'us' | 'cpuUs'): Stat | undefined {
    return stat(this.byId.get(id)?.[c].map((s) => s[field]) ?? []);
  }
  /** a ÷ b per round (both measured in the same round, same condition), then median and min–max. */
  ratio(a: string, b: string, c: Condition, field: 'us' | 'cpuUs'): Stat | undefined {
    const ra = this.byId.get(a)?.[c];
    const rb = this.byId.get(b)?.[c];
    if (!ra || !rb) return undefined;
    return stat(ra.map((s, i) => (rb[i] ? s[field] / (rb[i] as Sample)[field] : Number.NaN)));
  }
  /** a − b per round, in µs. */
  difference(a: string, b: string, c: Condition, field: 'us' | 'cpuUs' = 'us'): Stat | undefined {
    const ra = this.byId.get(a)?.[c];
    const rb = this.byId.get(b)?.[c];
    if (!ra || !rb) return undefined;
    return stat(ra.map((s, i) => (rb[i] ? s[field] - (rb[i] as Sample)[field] : Number.NaN)));
  }
  /** Cores busy on average over all measurements of a condition (weighted by their wall time: /proc/stat counts 10 ms ticks). */
  load(c: Condition, field: 'otherCores' | 'neighbourCores'): number {
    const samples = this.result.rows.flatMap((r) => r[c]);
    const wall = samples.reduce((sum, s) => sum + s.wallUs, 0);
    return samples.reduce((sum, s) => sum + s[field] * s.wallUs, 0) / wall;
  }
}

interface Target {
  text: string;
  /** The statistic per condition and how to print it. */
  value: (v: View, c: Condition) => Stat | undefined;
  ok: (median: number) => boolean;
  show: (s: Stat) => string;
}
const times = (s: Stat): string => spread(s, 1, '×');
const ms = (s: Stat): string => `${spread(s, 1000)} ms`;
const us = (s: Stat): string => `${spread(s)} µs`;

/** Issue 16's targets: ratios to raw koffi .async() in the same run; the issue asks for them beside the busy neighbour. */
const ISSUE_16: Target[] = [
  { text: 'in-process serial latency ≤ 1.0× raw koffi .async()', value: (v, c) => v.ratio('serial.none', 'serial.koffiAsync', c, 'us'), ok: (m) => m <= 1.0, show: times },
  { text: 'in-process serial CPU per call ≤ 1.5× raw koffi .async()', value: (v, c) => v.ratio('serial.none', 'serial.koffiAsync', c, 'cpuUs'), ok: (m) => m <= 1.5, show: times },
  { text: 'isolated serial latency ≤ 1.5× raw koffi .async()', value: (v, c) => v.ratio('serial.process', 'serial.koffiAsync', c, 'us'), ok: (m) => m <= 1.5, show: times },
  { text: 'a 1 ms call, in-process: CPU per call ≤ 1.3× raw koffi .async()', value: (v, c) => v.ratio('wait.none', 'wait.koffiAsync', c, 'cpuUs'), ok: (m) => m <= 1.3, show: times },
  { text: 'a 1 ms call, isolated: CPU per call ≤ 1.5× raw koffi .async()', value: (v, c) => v.ratio('wait.process', 'wait.koffiAsync', c, 'cpuUs'), ok: (m) => m <= 1.5, show: times },
  { text: '64 in flight over 32 isolated plugins vs over one: latency ≤ 2×', value: (v, c) => v.ratio('flight.isolatedMany', 'flight.isolated1', c, 'us'), ok: (m) => m <= 2, show: times },
  { text: '64 in flight over 32 isolated plugins vs over one: CPU per call ≤ 2×', value: (v, c) => v.ratio('flight.isolatedMany', 'flight.isolated1', c, 'cpuUs'), ok: (m) => m <= 2, show: times },
];

/** The targets the bench had before (issue 7 and the README's claims), now measured in both conditions. */
const EARLIER: Target[] = [
  { text: 'in-process 64 in flight ≤ 0.15× raw koffi .async() per call', value: (v, c) => v.ratio('flight.none', 'flight.koffiAsync', c, 'us'), ok: (m) => m <= 0.15, show: times },
  { text: 'executeSync ≤ 1.3× the JS JSON floor', value: (v, c) => v.ratio('serial.executeSync', 'serial.json', c, 'us'), ok: (m) => m <= 1.3, show: times },
  { text: 'isolated serial ≤ 2× in-process execute', value: (v, c) => v.ratio('serial.process', 'serial.none', c, 'us'), ok: (m) => m <= 2, show: times },
  { text: 'isolated 64 in flight ≤ 8 µs per call', value: (v, c) => v.field('flight.isolated1', c, 'us'), ok: (m) => m <= 8, show: us },
  { text: 'isolated 16 MiB round trip ≥ 0.8× in-process MiB/s', value: (v, c) => v.ratio('payload.none', 'payload.process', c, 'us'), ok: (m) => m >= 0.8, show: times },
  { text: 'isolated cold start (load + first call) ≤ 20 ms', value: (v, c) => v.field('start.lib.process', c, 'us'), ok: (m) => m <= 20_000, show: ms },
  { text: 'cold start in bwrap ≤ 30 ms', value: (v, c) => v.field('start.lib.bwrap', c, 'us'), ok: (m) => m <= 30_000, show: ms },
  { text: '`list --json` over the plugin dirs ≤ 100 ms beyond `node -e 0`', value: (v, c) => v.difference('start.list', 'start.node', c), ok: (m) => m <= 100_000, show: ms },
  { text: 'isolated serial ≥ 1.5× faster than Extism runInWorker (measured here)', value: (v, c) => v.ratio('serial.extismWorker', 'serial.process', c, 'us'), ok: (m) => m >= 1.5, show: times },
  { text: 'isolated ≥ 40× faster than a process per call', value: (v, c) => v.ratio('serial.processPerCall', 'serial.process', c, 'us'), ok: (m) => m >= 40, show: times },
  { text: 'code-search example no slower than `grep -rF` on the same tree', value: (v, c) => v.ratio('search.plugin', 'search.grep', c, 'us'), ok: (m) => m <= 1, show: times },
];

/** Figures with no target, printed so the README can quote them. */
const FIGURES: Target[] = [
  { text: 'MCP end to end (official client → serve) ÷ the library with the same settings, per call', value: (v, c) => v.ratio('serial.mcp', 'serial.defaults', c, 'us'), ok: () => true, show: times },
  { text: 'Extism main thread ÷ skillplug isolated, serial', value: (v, c) => v.ratio('serial.extismMain', 'serial.process', c, 'us'), ok: () => true, show: times },
  { text: 'Extism runInWorker ÷ skillplug isolated over one plugin, 64 in flight', value: (v, c) => v.ratio('flight.extismWorker', 'flight.isolated1', c, 'us'), ok: () => true, show: times },
  { text: 'Extism runInWorker over N plugins ÷ skillplug isolated over N plugins (N = 8), 64 in flight', value: (v, c) => v.ratio('flight.extismPool', 'flight.isolatedSome', c, 'us'), ok: () => true, show: times },
  { text: 'a 1 ms call, in-process, on the plugin built not thread-safe: CPU per call ÷ raw koffi .async() (the target above uses the thread-safe build)', value: (v, c) => v.ratio('wait.noneSerial', 'wait.koffiAsync', c, 'cpuUs'), ok: () => true, show: times },
  { text: 'in-process serial latency without parking (ablation) ÷ raw koffi .async(): what parking buys a loaded machine', value: (v, c) => v.ratio('ablation.noPark', 'serial.koffiAsync', c, 'us'), ok: () => true, show: times },
  { text: 'a 1 ms call, the C floor: CPU per call with the call in a C host process ÷ on a C worker thread (what the process boundary costs here)', value: (v, c) => v.ratio('wait.cProcess', 'wait.cThread', c, 'cpuUs'), ok: () => true, show: times },
  { text: 'a 1 ms call: CPU per call raw koffi .async() adds to the C thread floor', value: (v, c) => v.difference('wait.koffiAsync', 'wait.cThread', c, 'cpuUs'), ok: () => true, show: us },
  { text: '… and skillplug isolated adds to the C process floor', value: (v, c) => v.difference('wait.process', 'wait.cProcess', c, 'cpuUs'), ok: () => true, show: us },
  { text: '64 in flight over 32 plugins vs over one: latency skillplug adds per call', value: (v, c) => v.difference('flight.isolatedMany', 'flight.isolated1', c), ok: () => true, show: us },
  { text: '… and what the machine adds (the C floor: C parent, 32 C hosts vs 1)', value: (v, c) => v.difference('flight.cfloorMany', 'flight.cfloor1', c), ok: () => true, show: us },
  { text: '64 in flight over 32 plugins vs over one: CPU skillplug adds per call', value: (v, c) => v.difference('flight.isolatedMany', 'flight.isolated1', c, 'cpuUs'), ok: () => true, show: us },
  { text: '… and what the machine adds (the C floor)', value: (v, c) => v.difference('flight.cfloorMany', 'flight.cfloor1', c, 'cpuUs'), ok: () => true, show: us },
  { text: '`skillplug run` cold, beyond `node -e 0`', value: (v, c) => v.difference('start.run', 'start.node', c), ok: () => true, show: ms },
  { text: '`skillplug serve` to its first tool result, beyond `node -e 0`', value: (v, c) => v.difference('start.serve', 'start.node', c), ok: () => true, show: ms },
];

const cell = (t: Target, v: View, c: Condition): { text: string; ok?: boolean } => {
  const s = t.value(v, c);
  if (!s) return { text: '–' };
  return { text: t.show(s), ok: t.ok(s.median) };
};
const mark = (ok: boolean | undefined): string => (ok === undefined ? '' : ok ? '✅ ' : '❌ ');

function targetTable(targets: Target[], v: View, withMarks = true): string[] {
  return [
    '| target | idle | busy neighbour |',
    '|---|---:|---:|',
    ...targets.map((t) => {
      const [idle, busy] = CONDITIONS.map((c) => cell(t, v, c)) as [{ text: string; ok?: boolean }, { text: string; ok?: boolean }];
      return `| ${t.text} | ${withMarks ? mark(idle.ok) : ''}${idle.text} | ${withMarks ? mark(busy.ok) : ''}${busy.text} |`;
    }),
  ];
}

function idleOnly(targets: Target[], v: View): string[] {
  return targets.filter((t) => cell(t, v, 'idle').ok === true && cell(t, v, 'busy').ok === false).map((t) => t.text);
}

const GROUPS: Record<string, string> = {
  serial: 'A trivial call (64-byte context, small result), one after another',
  wait: 'A call that waits 1 ms in the plugin (nanosleep, like a call blocked on I/O), one after another',
  flight: '64 calls in flight (wall time ÷ calls)',
  ablation: 'Ablations: the call path with one mechanism switched off (src/host/tuning.ts)',
  payload: 'Payloads: the context carries N bytes, the plugin echoes them back',
  start: 'Starting up (each a fresh process or plugin)',
  search: 'The examples against the tools they stand in for (same tree, same query, same count of results)',
};

const SHORT: Record<string, string> = { serial: 'trivial call', wait: '1 ms call', flight: '64 in flight' };

function rowTable(v: View, group: string, ids?: string[]): string[] {
  const rows = (ids ? ids.map((id) => v.row(id)).filter((r): r is RowResult => r !== undefined) : v.result.rows.filter((r) => r.group === group));
  if (rows.length === 0) return [];
  const unit = rows[0]?.unit === 'ms' ? 'ms' : 'µs';
  const scale = unit === 'ms' ? 1000 : 1;
  const payload = rows.some((r) => r.bytes);
  return [
    `| ${ids ? 'row' : (GROUPS[group] ?? group)} | idle: ${unit}/call | idle: CPU ${unit}/call | busy: ${unit}/call | busy: CPU ${unit}/call |${payload ? ' idle MiB/s | busy MiB/s |' : ''}`,
    `|---|---:|---:|---:|---:|${payload ? '---:|---:|' : ''}`,
    ...rows.map((r) => {
      const cells = CONDITIONS.flatMap((c) => [spread(v.field(r.id, c, 'us'), scale), spread(v.field(r.id, c, 'cpuUs'), scale)]);
      const rates = payload
        ? CONDITIONS.map((c) => {
            const s = v.field(r.id, c, 'us');
            return s && r.bytes ? num(r.bytes / (1024 * 1024) / (s.median / 1e6)) : '–';
          })
        : [];
      return `| ${ids ? `${SHORT[r.group] ?? r.group}: ${r.label}` : r.label} | ${[...cells, ...rates].join(' | ')} |`;
    }),
  ];
}

function machineLine(r: BenchResult): string {
  const m = r.machine;
  return `${m.cpuModel}, ${m.cores} cores, ${m.memGiB} GiB, ${m.kernel}, Node ${m.node}`;
}

/** How long measurements lasted, by rows: "about 200 ms (1000 ms for wait.koffiAsync, …)". */
function measureWindows(r: BenchResult): string {
  const idsByWindow = new Map<number, string[]>();
  for (const row of r.rows) if (row.targetMs !== undefined) idsByWindow.set(row.targetMs, [...(idsByWindow.get(row.targetMs) ?? []), row.id]);
  if (idsByWindow.size === 0) return 'about 200 ms';
  // The window most rows had, then the others by the rows that had them.
  const [[common], ...others] = [...idsByWindow].sort((a, b) => b[1].length - a[1].length) as [[number, string[]], ...[number, string[]][]];
  const byWindow = others.map(([ms, ids]) => `${ms} ms for ${ids.join(', ')}`);
  return `about ${common} ms${byWindow.length > 0 ? ` (${byWindow.join('; ')}: one GC or compile job would weigh on their few calls)` : ''}`;
}

/** Other work beyond this many cores makes a condition's rows a loaded machine's (a stray process, a build). */
export const OTHER_WORK_LIMIT_CORES = 0.25;

/** Says so when work the bench did not start took more than {@link OTHER_WORK_LIMIT_CORES} beside its rows. */
function otherWorkWarning(v: View): string[] {
  const loaded = CONDITIONS.filter((c) => v.load(c, 'otherCores') > OTHER_WORK_LIMIT_CORES);
  if (loaded.length === 0) return [];
  const each = loaded.map((c) => `${num(v.load(c, 'otherCores'))} cores beside the ${c} rows`).join(' and ');
  return [`**Warning: not the load this run claims.** Processes the bench did not start took ${each}, so those rows, and every ratio taken from them, come from a more loaded machine than their label says. Run again on a quiet machine.`];
}

function loadLines(v: View): string[] {
  const r = v.result;
  const other = (c: Condition): string => `${num(v.load(c, 'otherCores'))} cores`;
  return [
    ...otherWorkWarning(v),
    `Run of ${r.date} (\`npm run bench\`${r.smoke ? ' --smoke: tiny counts, NOT meaningful' : ''}, ${r.rounds} rounds, ${r.durationS.toFixed(0)} s in all) on ${machineLine(r)}.`,
    `Load: every row ran twice per round, rows and conditions interleaved (idle first in even rounds, busy first in odd ones). **Idle** rows ran beside ${other('idle')} of other work on the machine (processes the bench did not start; load average ${r.machine.loadavgStart.map((x) => x.toFixed(1)).join(' ')} at the start, ${r.machine.loadavgEnd.map((x) => x.toFixed(1)).join(' ')} at the end); **busy** rows beside the bench's own neighbour spinning on one core (it got ${num(v.load('busy', 'neighbourCores'))} cores) plus ${other('busy')} of other work. Each measurement starts after one unmeasured chunk of the row's calls in its condition (rows with a fixed count of calls excepted: cold starts, the examples, a process per call, the C floors, sync 16 MiB payloads), so the spin budget has seen the load come or go; a measurement then repeats chunks for ${measureWindows(r)}. Figures are medians over rounds with (min–max); a ratio is taken per round between rows of the same round and condition. CPU per call = this process (all threads) + every process it started (hosts, bwrap, CLIs), from process.cpuUsage() and /proc (ns-precise per-thread schedstat for live processes, utime+stime for reaped ones); the C floor rows time their own loop instead, wall clock and schedstat of their threads and hosts, so their start and exit are left out.`,
  ];
}

/** The whole of docs/bench.md's generated part. */
export function renderFull(r: BenchResult): string {
  const v = new View(r);
  const only = idleOnly([...ISSUE_16, ...EARLIER], v);
  const memory = r.memory;
  return [
    ...loadLines(v),
    '',
    '### Issue 16 targets (the issue asks for them beside the busy neighbour)',
    '',
    ...targetTable(ISSUE_16, v),
    '',
    '### Earlier targets and claims, now measured in both conditions',
    '',
    ...targetTable(EARLIER, v),
    '',
    `Hold only on an idle machine (met idle, missed busy): ${only.length ? only.join('; ') : 'none'}.`,
    '',
    '### Other figures from the same run',
    '',
    ...targetTable(FIGURES, v, false),
    '',
    ...Object.keys(GROUPS).flatMap((g) => [...rowTable(v, g), '']),
    '### Memory (idle, after the rounds)',
    '',
    `- idle host RSS, isolated: ${Object.entries(memory.hostRssMiB).map(([k, x]) => `${k} ${num(x)} MiB`).join(', ') || '–'} (target ≤ 4 MiB)`,
    `- ${memory.manyPlugins} isolated plugins loaded: ${num(memory.manyPluginsRssMiB)} MiB of host RSS in all (target < 1 GiB)`,
    `- soak: ${memory.soak.inProcessCalls} in-process calls, RSS growth ${num(memory.soak.inProcessRssGrowthPct ?? Number.NaN)}%; ${memory.soak.isolatedCalls} isolated calls, host RSS growth ${num(memory.soak.isolatedHostRssGrowthPct ?? Number.NaN)}% (target < 10%)`,
    `- code-search rows: matching lines found per tool: ${Object.entries(r.search.counts).map(([k, x]) => `${k} ${x}`).join(', ')}${r.search.rg ? '' : ' (rg not installed)'}`,
    ...(r.notes.length ? ['', 'Notes from the run:', ...r.notes.map((n) => `- ${n}`)] : []),
    '',
  ].join('\n');
}

const README_ROWS = ['serial.koffiAsync', 'serial.none', 'serial.none0', 'serial.process', 'serial.bwrap', 'serial.extismMain', 'serial.extismWorker', 'serial.mcp', 'wait.koffiAsync', 'wait.none', 'wait.process', 'flight.isolated1', 'flight.isolatedMany', 'flight.extismWorker', 'flight.extismPool'];

/** The README's benchmark section: where the figures come from, the targets, a few rows; the rest is in docs/bench.md. */
export function renderReadme(r: BenchResult): string {
  const v = new View(r);
  const only = idleOnly([...ISSUE_16, ...EARLIER], v);
  return [
    ...loadLines(v),
    '',
    'Issue 16 targets (the issue asks for them beside the busy neighbour):',
    '',
    ...targetTable(ISSUE_16, v),
    '',
    'Earlier targets and claims:',
    '',
    ...targetTable(EARLIER, v),
    '',
    'Other figures of the same run:',
    '',
    ...targetTable(FIGURES, v, false),
    '',
    `Holds only on an idle machine (met idle, missed beside the busy neighbour): ${only.length ? only.join('; ') : 'none'}.`,
    '',
    ...rowTable(v, '', README_ROWS),
    '',
  ].join('\n');
}

/** Renders the run; with write, replaces docs/bench.md, docs/bench.svg, the README section and bench/last-run.json. */
export function writeDocs(r: BenchResult, root: string, write: boolean): string {
  const full = renderFull(r);
  if (!write) return full;
  writeFileSync(path.join(root, 'bench', 'last-run.json'), `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(path.join(root, 'docs', 'bench.md'), `# Benchmark results\n\nGenerated by \`npm run bench\` from the JSON of one run (kept in bench/last-run.json; \`node build/bench/report.js bench/last-run.json\` regenerates this page from it). Nothing here is typed in by hand.\n\n${full}`);
  const v = new View(r);
  const bars = r.rows
    .filter((row) => row.group === 'serial' && row.id !== 'serial.processPerCall')
    .map((row) => ({ label: row.label, idle: v.field(row.id, 'idle', 'us')?.median ?? Number.NaN, busy: v.field(row.id, 'busy', 'us')?.median ?? Number.NaN }));
  writeFileSync(path.join(root, 'docs', 'bench.svg'), renderChart(bars, `${machineLine(r)}; run of ${r.date}`));
  const readmePath = path.join(root, 'README.md');
  const readme = readFileSync(readmePath, 'utf8');
  writeFileSync(readmePath, readme.replace(/<!-- bench:start -->[\s\S]*<!-- bench:end -->/, `<!-- bench:start -->\n${renderReadme(r)}<!-- bench:end -->`));
  return full;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node build/bench/report.js RUN.json\n');
    process.exit(2);
  }
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  process.stdout.write(`${writeDocs(JSON.parse(readFileSync(file, 'utf8')) as BenchResult, root, true)}\n`);
}
