// The scratch dir every benchmark script starts with: the trivial bench plugin, compiled, and the busy neighbour.
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Paths of a bench scratch dir (removed when the process exits). */
export interface BenchWorkdir {
  work: string;
  pluginsDir: string;
  /** The bench plugin's dir (plugin.json and libbench.so). */
  pluginDir: string;
  libraryPath: string;
  /** The same plugin built not thread-safe (as most plugins are), in a plugins dir of its own. */
  serialPluginsDir: string;
  serialPluginDir: string;
  /** bench/spin.c compiled: the busy neighbour. */
  spinner: string;
}

/** Makes the scratch dir, compiles bench/plugins/bench.c into a plugin there and bench/spin.c beside it. */
export async function benchWorkdir(root: string, name: string): Promise<BenchWorkdir> {
  const work = path.join(os.tmpdir(), `${name}-${process.pid}`);
  const pluginsDir = path.join(work, 'plugins');
  const pluginDir = path.join(pluginsDir, 'bench');
  mkdirSync(pluginDir, { recursive: true });
  process.on('exit', () => rmSync(work, { recursive: true, force: true }));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));
  const serialPluginsDir = path.join(work, 'serial-plugins');
  const serialPluginDir = path.join(serialPluginsDir, 'bench');
  mkdirSync(serialPluginDir, { recursive: true });
  const libraryPath = path.join(pluginDir, 'libbench.so');
  const spinner = path.join(work, 'spin');
  const source = path.join(root, 'bench', 'plugins', 'bench.c');
  await Promise.all([
    run('cc', ['-O2', '-Wall', '-Wextra', '-shared', '-fPIC', '-o', libraryPath, source]),
    run('cc', ['-O2', '-Wall', '-Wextra', '-shared', '-fPIC', '-DBENCH_SERIAL', '-o', path.join(serialPluginDir, 'libbench.so'), source]),
    run('cc', ['-O2', '-o', spinner, path.join(root, 'bench', 'spin.c')]),
  ]);
  const manifest = JSON.stringify({ name: 'bench', description: 'Benchmark plugin', version: '1.0.0' });
  writeFileSync(path.join(pluginDir, 'plugin.json'), manifest);
  writeFileSync(path.join(serialPluginDir, 'plugin.json'), manifest);
  return { work, pluginsDir, pluginDir, libraryPath, serialPluginsDir, serialPluginDir, spinner };
}
