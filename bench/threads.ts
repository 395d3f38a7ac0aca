// Where a call's CPU goes, thread by thread: this process's threads and every host's, with CPU and
// voluntary/involuntary context switches per call (from /proc/<pid>/task/<tid>/{schedstat,status}).
// A tuning tool, not a benchmark row: one configuration per run, nothing written. Usage:
//   node build/bench/threads.js [--mode process|bwrap|none|koffi] [--sleep-us N] [--calls N] [--warm N]
//                               [--plugins N] [--flight W] [--busy]
// --plugins spreads calls over N isolated plugins, --flight keeps W calls in flight (default 1: serial),
// --busy runs the bench's spinning neighbour beside it. Host threads are grouped by their place in the
// host (main = the reader; the last started = the standby of a pooled host).
import { readFileSync, readdirSync } from 'node:fs';
import { type NativePluginTrait, type PluginContext, PluginLoader } from '../src/index.js';
import { startNeighbour } from './neighbour.js';
import { rawKoffiCalls } from './raw-koffi.js';
import { benchWorkdir } from './workdir.js';

const argv = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 ? (argv[i + 1] ?? fallback) : fallback;
};
const mode = option('--mode', 'process');
const sleepUs = Number(option('--sleep-us', '0'));
const calls = Number(option('--calls', '20000'));
const warm = Number(option('--warm', '5000'));
const pluginCount = Number(option('--plugins', '1'));
const flight = Number(option('--flight', '1'));
if (!['process', 'bwrap', 'none', 'koffi'].includes(mode) || ![sleepUs, calls, warm, pluginCount, flight].every((n) => Number.isInteger(n) && n >= 0)) {
  process.stderr.write('usage: node build/bench/threads.js [--mode process|bwrap|none|koffi] [--sleep-us N] [--calls N] [--warm N] [--plugins N] [--flight W] [--busy]\n');
  process.exit(2);
}

const ROOT = new URL('../..', import.meta.url).pathname;
const { pluginsDir, pluginDir, libraryPath, spinner } = await benchWorkdir(ROOT, 'skillplug-bench-threads');
const ctx: PluginContext = { input: sleepUs > 0 ? { sleep_us: sleepUs } : {}, workspace_root: null, config: {} };
const text = JSON.stringify(ctx);

let call: (i: number) => Promise<unknown>;
if (mode === 'koffi') {
  const raw = rawKoffiCalls(libraryPath);
  call = () => raw.async(text);
} else {
  const loader = new PluginLoader({ pluginsDirs: [pluginsDir], defaultDirs: false, readConfig: false, isolation: mode === 'none' ? 'none' : 'process', sandbox: mode === 'bwrap' ? 'required' : 'off' });
  const plugins: NativePluginTrait[] = [];
  for (let i = 0; i < pluginCount; i++) plugins.push(await loader.loadPlugin(pluginDir));
  call = (i) => (plugins[i % plugins.length] as NativePluginTrait).execute(ctx);
}

async function run(total: number): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < total) await call(next++);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(flight, total)) }, lane));
}

interface ThreadStat {
  group: string;
  cpuUs: number;
  voluntary: number;
  involuntary: number;
}

// This process and its descendants, but not the neighbour (whose pid is left out with its launcher's tree).
function descendants(pid: number, skip: ReadonlySet<number>): number[] {
  const out: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let children: string[] = [];
    try {
      children = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    } catch {
      // The thread exited.
    }
    for (const child of children.map(Number)) {
      if (skip.has(child)) continue;
      out.push(child, ...descendants(child, skip));
    }
  }
  return out;
}

function snapshot(skip: ReadonlySet<number>): Map<string, ThreadStat> {
  const stats = new Map<string, ThreadStat>();
  for (const pid of [process.pid, ...descendants(process.pid, skip)]) {
    let tids: number[];
    try {
      tids = readdirSync(`/proc/${pid}/task`).map(Number).sort((a, b) => a - b);
    } catch {
      continue;
    }
    const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    tids.forEach((tid, index) => {
      try {
        const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
        const own = pid === process.pid;
        const place = index === 0 ? 'main' : own ? `thread ${index}` : index === tids.length - 1 ? 'last started' : `thread ${index}`;
        stats.set(`${pid}/${tid}`, {
          group: own ? `this process: ${place}` : `${comm}: ${place}`,
          cpuUs: Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1000,
          voluntary: Number(/\nvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0),
          involuntary: Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0),
        });
      } catch {
        // The thread exited.
      }
    });
  }
  return stats;
}

const neighbour = argv.includes('--busy') ? await startNeighbour(spinner) : undefined;
const skip = new Set(neighbour ? [neighbour.pid] : []);
await run(warm);
const before = snapshot(skip);
const started = performance.now();
await run(calls);
const wallUs = ((performance.now() - started) * 1000) / calls;
const after = snapshot(skip);
await neighbour?.stop();

const groups = new Map<string, { cpuUs: number; voluntary: number; involuntary: number }>();
for (const [key, end] of after) {
  const start = before.get(key) ?? { cpuUs: 0, voluntary: 0, involuntary: 0 };
  const group = groups.get(end.group) ?? { cpuUs: 0, voluntary: 0, involuntary: 0 };
  group.cpuUs += end.cpuUs - start.cpuUs;
  group.voluntary += end.voluntary - start.voluntary;
  group.involuntary += end.involuntary - start.involuntary;
  groups.set(end.group, group);
}
const total = [...groups.values()].reduce((sum, g) => sum + g.cpuUs, 0) / calls;
console.log(`${mode}, ${sleepUs} µs in the plugin, ${flight} in flight over ${mode === 'koffi' ? 1 : pluginCount} plugin(s)${neighbour ? ', beside a busy neighbour' : ''}`);
console.log(`${wallUs.toFixed(1)} µs per call, ${total.toFixed(1)} µs CPU per call`);
for (const [group, g] of [...groups].sort((a, b) => b[1].cpuUs - a[1].cpuUs)) {
  if (g.cpuUs / calls < 0.05 && g.voluntary / calls < 0.01) continue;
  console.log(`  ${group.padEnd(36)} ${(g.cpuUs / calls).toFixed(2).padStart(7)} µs CPU  ${(g.voluntary / calls).toFixed(2)} voluntary  ${(g.involuntary / calls).toFixed(2)} involuntary switches`);
}
process.exit(0);
