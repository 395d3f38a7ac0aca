// Runs every other sandbox test file again as an unprivileged user: CI runs as root, where bwrap
// behaves differently (capabilities, RLIMIT_NPROC, cgroups), and both must hold.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ensureHostAddon, ensureHostBinary, ensureLauncherBinary, ensurePumpLibrary } from '../../src/toolchain.js';
import { detectSandbox } from '../../src/sandbox/index.js';
import { REPO_ROOT } from '../helpers/fixtures.js';

const USER = 'skillplug-test';
const THIS_FILE = 'as-user.test.js';

// Every dir above p lets others through and p lets them read: then a symlink is enough.
function othersCanRead(p: string): boolean {
  let current = realpathSync(p);
  if ((statSync(current).mode & 0o005) !== 0o005) return false;
  while (current !== path.dirname(current)) {
    current = path.dirname(current);
    if ((statSync(current).mode & 0o001) === 0) return false;
  }
  return true;
}

function ensureUser(): { uid: number; gid: number } {
  const id = (flag: string): number => Number(execFileSync('id', [flag, USER], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', USER], { stdio: 'ignore' });
    return { uid: id('-u'), gid: id('-g') };
  }
}

/** Parses node --test's closing TAP summary (`# tests N`, `# pass N`, …). */
function summary(tap: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const match of tap.matchAll(/^# (tests|pass|fail|cancelled|skipped|todo) (\d+)$/gm)) counts[match[1] as string] = Number(match[2]);
  return counts;
}

describe('the sandbox suite as an unprivileged user', async () => {
  const root = process.platform === 'linux' && process.getuid?.() === 0;
  const support = root ? await detectSandbox() : undefined;
  const missing = ['useradd', 'setpriv'].filter((tool) => !(process.env.PATH ?? '').split(path.delimiter).some((dir) => dir && existsSync(path.join(dir, tool))));
  const skip = !root
    ? 'runs only as root on Linux (as CI does): it creates a user and reruns the sandbox tests as that user'
    : !support?.available
      ? `bubblewrap unavailable: ${support?.reason}`
      : missing.length > 0
        ? `${missing.join(' and ')} not installed (util-linux and passwd provide them)`
        : false;
  let copy: string | undefined;

  after(() => {
    if (copy) rmSync(copy, { recursive: true, force: true });
  });

  it(`passes every other test/sandbox file as user ${USER}`, { skip, timeout: 600_000 }, async (t) => {
    const { uid, gid } = ensureUser();
    const started = process.hrtime.bigint();
    // The checkout may sit under a dir only root can enter: copy what the tests load to one the user can read.
    copy = mkdtempSync(path.join(os.tmpdir(), 'skillplug-as-user-'));
    chmodSync(copy, 0o755);
    cpSync(path.join(REPO_ROOT, 'package.json'), path.join(copy, 'package.json'));
    for (const dir of ['build', 'dist', path.join('test', 'fixtures'), 'src']) {
      if (existsSync(path.join(REPO_ROOT, dir))) cpSync(path.join(REPO_ROOT, dir), path.join(copy, dir), { recursive: true, filter: (src) => !src.includes(`${path.sep}.`) });
    }
    const modules = path.join(REPO_ROOT, 'node_modules');
    let modulesHow = 'symlinked';
    if (othersCanRead(modules)) symlinkSync(realpathSync(modules), path.join(copy, 'node_modules'));
    else {
      cpSync(realpathSync(modules), path.join(copy, 'node_modules'), { recursive: true });
      modulesHow = 'copied';
    }
    const home = path.join(copy, 'home');
    // Seeded with this process's native builds (keyed by source hash), so the user's run compiles nothing.
    const cache = path.join(home, '.cache', 'skillplug');
    mkdirSync(cache, { recursive: true });
    for (const built of await Promise.all([ensureHostBinary(), ensureLauncherBinary(), ensurePumpLibrary(), ensureHostAddon()])) {
      cpSync(path.dirname(built), path.join(cache, path.basename(path.dirname(built))), { recursive: true });
    }
    execFileSync('chown', ['-R', `${uid}:${gid}`, home]);
    const copyMs = Number(process.hrtime.bigint() - started) / 1e6;
    const files = readdirSync(path.join(copy, 'build', 'test', 'sandbox')).filter((f) => f.endsWith('.test.js') && f !== THIS_FILE).map((f) => path.join('build', 'test', 'sandbox', f));
    assert.ok(files.length > 0, 'sandbox test files to run');
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, TMPDIR: home, LANG: process.env.LANG ?? 'C.UTF-8' };
    const child = spawn('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', process.execPath, '--test', '--test-reporter=tap', ...files], { cwd: copy, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    const counts = summary(out);
    t.diagnostic(`${files.length} files as uid ${uid}: ${JSON.stringify(counts)}; copy ${copyMs.toFixed(0)} ms (node_modules ${modulesHow}), total ${(Number(process.hrtime.bigint() - started) / 1e6).toFixed(0)} ms`);
    const failures = out.split('\n').filter((l) => /^\s*not ok /.test(l)).join('\n');
    assert.equal(counts.fail, 0, `failures as ${USER}:\n${failures}\n${err.slice(-2000)}`);
    assert.ok((counts.pass ?? 0) > 0, `no test passed as ${USER}: ${out.slice(-2000)}${err.slice(-2000)}`);
    assert.equal(code, 0);
  });
});
