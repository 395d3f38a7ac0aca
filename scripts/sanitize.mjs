// npm run sanitize: builds AddressSanitizer and ThreadSanitizer copies of the isolated host and the
// in-process pump into a temp dir, runs the suites that exercise them with those copies swapped in
// (SKILLPLUG_HOST, SKILLPLUG_PUMP), and fails if any sanitizer report appears.
//
// Reports go to files (log_path), not stderr: tests capture the host's stderr, so a report there could
// pass unseen. The host never sees ASAN_OPTIONS/TSAN_OPTIONS (its environment is an allowlist), so its
// options are compiled in through __asan_default_options/__tsan_default_options.
// The pump is a library dlopened by an uninstrumented Node: the sanitizer runtime is LD_PRELOADed into
// Node, with ignore_noninstrumented_modules for TSan so only instrumented code (the pump) is judged.
// Runs on what `npm run build:test` compiled into build/ (npm run sanitize compiles it first; .ci/run calls this
// script right after npm test, which just did).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cc = process.env.CC ?? 'cc';
const work = mkdtempSync(path.join(os.tmpdir(), 'skillplug-sanitize-'));
const keep = process.env.SKILLPLUG_SANITIZE_KEEP === '1';
const started = Date.now();

// The suites that run the host and the pump; each file runs under both sanitizers.
const SUITES = ['build/test/host/isolated.test.js', 'build/test/host/host-process.test.js', 'build/test/in-process/in-process.test.js', 'build/test/in-process/in-process-park.test.js'];

const SANITIZERS = {
  address: {
    flag: '-fsanitize=address',
    runtime: 'libasan.so',
    optionsVar: 'ASAN_OPTIONS',
    hook: '__asan_default_options',
    // Leaks off: the host ends with _exit or a plugin's exit() by design, never freeing; Node is not ours.
    options: 'halt_on_error=1:exitcode=66:abort_on_error=0:detect_leaks=0',
  },
  thread: {
    flag: '-fsanitize=thread',
    runtime: 'libtsan.so',
    optionsVar: 'TSAN_OPTIONS',
    hook: '__tsan_default_options',
    // halt_on_error: the first race ends the process, so the test that met it fails too, besides the scan below.
    options: 'halt_on_error=1:exitcode=66:second_deadlock_stack=1:ignore_noninstrumented_modules=1',
  },
};

function log(line) {
  process.stdout.write(`sanitize: ${line}\n`);
}

function fail(line) {
  process.stderr.write(`sanitize: FAILED: ${line}\n`);
  if (!keep) rmSync(work, { recursive: true, force: true });
  process.exit(1);
}

function compile(args) {
  const result = spawnSync(cc, args, { encoding: 'utf8' });
  if (result.status !== 0) fail(`${cc} ${args.join(' ')}\n${result.stderr || result.error?.message}`);
}

/** Where the compiler keeps a sanitizer runtime, for LD_PRELOAD into Node. */
function runtimePath(name) {
  const found = execFileSync(cc, [`-print-file-name=${name}`], { encoding: 'utf8' }).trim();
  if (!path.isAbsolute(found)) fail(`${cc} has no ${name}; install gcc's sanitizer runtimes (Debian: libasan8 libtsan2, pulled in by gcc)`);
  return found;
}

/** Every report file under dir, with its text. */
function reports(dir) {
  return readdirSync(dir).map((name) => ({ name, text: readFileSync(path.join(dir, name), 'utf8') })).filter((r) => r.text.trim() !== '');
}

/** Builds the host, the pump and a canary with one sanitizer; returns their paths and the report dir. */
function build(kind) {
  const s = SANITIZERS[kind];
  const dir = path.join(work, kind);
  const reportDir = path.join(dir, 'reports');
  mkdirSync(reportDir, { recursive: true });
  const logPath = path.join(reportDir, kind);
  const optionsSource = path.join(dir, 'options.c');
  writeFileSync(optionsSource, `const char *${s.hook}(void);\nconst char *${s.hook}(void) { return ${JSON.stringify(`log_path=${logPath}:${s.options}`)}; }\n`);
  const common = ['-O1', '-g', '-fno-omit-frame-pointer', s.flag, '-Wall', '-Wextra', '-Werror', '-pthread'];
  const host = path.join(dir, 'skillplug-host');
  compile([...common, '-o', host, path.join(root, 'src/host/skillplug-host.c'), optionsSource, '-ldl']);
  const pump = path.join(dir, 'libskillplug-pump.so');
  compile([...common, '-shared', '-fPIC', '-o', pump, path.join(root, 'src/abi/pump.c'), '-ldl']);
  const canary = path.join(dir, 'canary');
  compile([...common, '-o', canary, path.join(root, 'scripts/sanitize-canary.c'), optionsSource]);
  return { kind, s, host, pump, canary, reportDir, logPath };
}

/** The environment a Node running the suites gets: instrumented copies swapped in, the runtime preloaded. */
function suiteEnv(b) {
  return {
    ...process.env,
    SKILLPLUG_HOST: b.host,
    SKILLPLUG_PUMP: b.pump,
    SKILLPLUG_TEST_SANITIZER: b.kind,
    SKILLPLUG_CACHE_DIR: path.join(work, b.kind, 'cache'),
    LD_PRELOAD: runtimePath(b.s.runtime),
    [b.s.optionsVar]: `log_path=${b.logPath}:${b.s.options}`,
  };
}

// The harness must be able to see a report at all: a planted bug has to leave one in the report dir.
function checkCanary(b) {
  const run = spawnSync(b.canary, [], { encoding: 'utf8' });
  const found = reports(b.reportDir);
  if (run.status === 0 || found.length !== 1) fail(`the ${b.kind} canary (a planted bug) left ${found.length} reports and exited ${run.status}: reports would go unseen`);
  for (const r of found) rmSync(path.join(b.reportDir, r.name));
}

// SKILLPLUG_PUMP is only a hint: a pump that fails to load falls back to koffi silently, so prove this one loads.
function checkPumpLoads(b) {
  const probe = `
    const { PluginLoader } = await import(${JSON.stringify(path.join(root, 'build/src/index.js'))});
    const { buildFixture, tempDir } = await import(${JSON.stringify(path.join(root, 'build/test/helpers/fixtures.js'))});
    const parent = tempDir();
    const dir = await buildFixture(parent, { source: 'concurrency', name: 'probe', defines: { THREAD_SAFE: '1' } });
    const plugin = await new PluginLoader({ pluginsDirs: [parent], home: parent, defaultDirs: false, isolation: 'none', maxConcurrency: 2 }).loadPlugin(dir);
    await plugin.execute({ input: { ms: 0 }, workspace_root: null, config: {} });
    const loaded = (await import('node:fs')).readFileSync('/proc/self/maps', 'utf8').includes(${JSON.stringify(b.pump)});
    await plugin.close();
    process.exit(loaded ? 0 : 3);`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { env: suiteEnv(b), encoding: 'utf8' });
  if (run.status !== 0) fail(`the ${b.kind} pump did not load into Node (exit ${run.status}): ${run.stderr.trim().split('\n').slice(-12).join(' | ')}`);
}

function runSuites(b) {
  const t0 = Date.now();
  const run = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-reporter=tap', ...SUITES], { cwd: root, env: suiteEnv(b), encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const count = (key) => Number(new RegExp(`^# ${key} (\\d+)$`, 'm').exec(run.stdout)?.[1] ?? NaN);
  const summary = { tests: count('tests'), pass: count('pass'), fail: count('fail'), skipped: count('skipped'), seconds: Math.round((Date.now() - t0) / 1000) };
  return { run, summary };
}

/**
 * SIGKILLs instrumented hosts that outlived the suites. TSan delivers a signal only when the thread
 * next enters an intercepted call, so the host of a plugin spinning in a loop of its own misses its
 * parent-death SIGTERM and would spin on, orphaned; uninstrumented hosts take the signal at once.
 */
function killLeftoverHosts(b) {
  let killed = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/exe`) !== b.host) continue;
      process.kill(Number(entry), 'SIGKILL');
      killed++;
    } catch {
      // Gone already, or not ours to read.
    }
  }
  return killed;
}

if (process.platform !== 'linux') {
  log('skipped: the sanitizer run needs Linux (LD_PRELOAD of gcc sanitizer runtimes, /proc)');
  process.exit(0);
}

// `node scripts/sanitize.mjs thread` runs one sanitizer only.
const kinds = process.argv.length > 2 ? process.argv.slice(2) : Object.keys(SANITIZERS);
for (const kind of kinds) if (!(kind in SANITIZERS)) fail(`unknown sanitizer "${kind}"; use ${Object.keys(SANITIZERS).join(' or ')}`);
const results = [];
for (const kind of kinds) {
  const b = build(kind);
  checkCanary(b);
  checkPumpLoads(b);
  const { run, summary } = runSuites(b);
  const leftover = killLeftoverHosts(b);
  if (leftover > 0) log(`${kind}: killed ${leftover} instrumented host(s) left spinning after the suites (see killLeftoverHosts)`);
  const found = reports(b.reportDir);
  results.push({ kind, summary, reports: found.length });
  log(`${kind}: ${summary.tests} tests, ${summary.pass} passed, ${summary.fail} failed, ${summary.skipped} skipped, ${summary.seconds} s; sanitizer reports: ${found.length}`);
  for (const r of found) process.stderr.write(`--- ${kind} sanitizer report ${r.name} ---\n${r.text}\n`);
  if (found.length > 0) fail(`${found.length} ${kind} sanitizer report(s) above`);
  if (run.status !== 0) {
    process.stderr.write(run.stdout.split('\n').filter((line) => /^\s*not ok|^# (fail|tests)/.test(line) || /AssertionError|code:/.test(line)).join('\n'));
    fail(`the suites failed under ${kind} sanitizer builds (exit ${run.status})`);
  }
}
log(`ran ${SUITES.join(', ')} under ${results.map((r) => r.kind).join(' and ')} sanitizer builds of the host and the pump in ${Math.round((Date.now() - started) / 1000)} s; sanitizer reports: 0`);
if (!keep) rmSync(work, { recursive: true, force: true });
