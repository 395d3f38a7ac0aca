import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, constants as fsConstants, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { hostAddon } from '../../src/host/host-addon.js';
import { type SpawnedHost, spawnHost } from '../../src/host/host-spawn.js';
import { hostTuning } from '../../src/host/tuning.js';
import { signalHost, stopHost } from '../../src/host/terminate.js';

const linux = process.platform === 'linux';
// A built module of ours as an import specifier for code run in another process or thread.
const moduleUrl = (file: string): string => JSON.stringify(pathToFileURL(path.resolve(file)).href);
const SH = '/bin/sh';
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

// What a child's /proc says about the way it was started.
function statusField(pid: number, field: string): string {
  return new RegExp(`^${field}:\\s+(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1] ?? '';
}
function sessionOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
}
function exited(host: SpawnedHost): Promise<[number | null, NodeJS.Signals | null, Error | undefined]> {
  return new Promise((resolve) => host.onExit((code, signal, error) => resolve([code, signal, error])));
}
async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  stream.setEncoding('utf8');
  for await (const chunk of stream) text += chunk as string;
  return text;
}
// This process's fds above 5 without O_CLOEXEC (inherited from whoever started it): every child gets them.
function inheritableFds(): number[] {
  return readdirSync('/proc/self/fd')
    .map(Number)
    .filter((fd) => {
      try {
        return fd > 5 && (Number.parseInt(/^flags:\s+(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1'))?.[1] ?? '0', 8) & 0o2000000) === 0;
      } catch {
        return false;
      }
    });
}
// Signals 1-31 out of a /proc status mask (glibc's posix_spawn leaves its own two, 32 and 33, ignored in every child).
function standardSignals(mask: string): number {
  return Number(BigInt(`0x${mask}`) & 0x7fffffffn);
}
// This process's minor page faults so far (/proc/self/stat field 10).
function minorFaults(): number {
  const stat = readFileSync('/proc/self/stat', 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
}

// A FIFO a host's shell waits on until the test writes to it; afterwards any reader still blocked on it is released.
function fifoFor(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'skillplug-fifo-'));
  const fifo = path.join(dir, 'go');
  execFileSync('mkfifo', [fifo]);
  t.after(() => {
    // Opened for both ends without blocking, then closed: a reader still waiting in open() gets end of file.
    closeSync(openSync(fifo, fsConstants.O_RDWR | fsConstants.O_NONBLOCK));
    rmSync(dir, { recursive: true, force: true });
  });
  return fifo;
}

/**
 * Runs `script` in a child Node; once its first output is `first`, writes the FIFO (opening it waits for
 * the reader the script's host left behind, so the write lands after that output); returns all it printed.
 */
async function releasedAfter(script: string, first: string, fifo: string): Promise<string> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.setEncoding('utf8');
  let out = '';
  child.stdout.on('data', (text: string) => (out += text));
  const [line] = (await once(child.stdout, 'data')) as [string];
  assert.equal(line, first);
  writeFileSync(fifo, 'go\n');
  assert.equal(((await once(child, 'exit')) as [number])[0], 0);
  return out;
}

const DEFAULT_DIRECT = hostTuning.directSpawn;
after(() => {
  hostTuning.directSpawn = DEFAULT_DIRECT;
});

for (const direct of [true, false]) describe(direct ? 'spawnHost through the host addon (posix_spawn)' : "spawnHost through Node's spawn", { skip: !linux && 'posix_spawn path and /proc are Linux-only' }, () => {
  const run = async (command: string, args: string[]): Promise<SpawnedHost> => {
    await hostAddon();
    hostTuning.directSpawn = direct;
    try {
      return spawnHost(command, args, { cwd: '/tmp', env });
    } finally {
      hostTuning.directSpawn = DEFAULT_DIRECT;
    }
  };
  const start = (script: string): Promise<SpawnedHost> => run(SH, ['-c', script]);

  it('connects fds 2 to 5 to this side, each the right way', async () => {
    // The child echoes fd 3 back, writes the log and the note, and reports what it read on fd 5.
    const host = await start('read line <&3; echo "echo:$line" >&3; echo to-log >&2; echo to-note >&4; head -c 4 <&5 >&2');
    const log = readAll(host.log);
    const notes = readAll(host.notes);
    const answer = once(host.channel, 'data');
    host.channel.write('ping\n');
    assert.equal(String((await answer)[0]), 'echo:ping\n');
    host.wake.end('wake');
    assert.deepEqual(await exited(host), [0, null, undefined]);
    assert.equal(await log, 'to-log\nwake');
    assert.equal(await notes, 'to-note\n');
  });

  it('runs in a session of its own, with stdin and stdout on /dev/null, no standard signal ignored or blocked, and none of our fds', async () => {
    // sleep opens no fd and touches no signal of its own (a shell does both).
    const host = await run('/bin/sleep', ['1000']);
    const pid = host.pid as number;
    try {
      assert.equal(sessionOf(pid), pid, 'a session leader, so its group can be killed whole');
      // Node ignores SIGPIPE; an ignored signal would stay ignored across exec.
      assert.equal(standardSignals(statusField(pid, 'SigIgn')), 0);
      assert.equal(standardSignals(statusField(pid, 'SigBlk')), 0);
      const fds = readdirSync(`/proc/${pid}/fd`).map(Number).sort((a, b) => a - b);
      assert.deepEqual(fds, [0, 1, 2, 3, 4, 5, ...inheritableFds()].sort((a, b) => a - b));
      assert.equal(readlinkSync(`/proc/${pid}/fd/0`), '/dev/null');
      assert.equal(readlinkSync(`/proc/${pid}/fd/1`), '/dev/null');
      assert.match(readlinkSync(`/proc/${pid}/fd/3`), /^socket:/);
      assert.equal(readlinkSync(`/proc/${pid}/cwd`), '/tmp');
    } finally {
      signalHost(host, 'SIGTERM');
    }
    assert.deepEqual(await exited(host), [null, 'SIGTERM', undefined]);
  });

  it('reports an exit code and a signal, and is never signalled once it has ended', async () => {
    const coded = await start('exit 7');
    assert.deepEqual(await exited(coded), [7, null, undefined]);
    assert.equal(coded.ended, true);
    const killed = await start('read x <&3');
    signalHost(killed, 'SIGKILL');
    assert.deepEqual(await exited(killed), [null, 'SIGKILL', undefined]);
    // Its pid may be someone else's by now: nothing is sent.
    signalHost(killed, 'SIGKILL');
    const late: [number | null, NodeJS.Signals | null] = await new Promise((resolve) => killed.onExit((code, signal) => resolve([code, signal])));
    assert.deepEqual(late, [null, 'SIGKILL'], 'a listener added after the exit hears it at once');
  });

  it('stops in steps: the end of its input first', async () => {
    const host = await start('cat <&3 >/dev/null; exit 5');
    await stopHost(host, () => host.channel.end());
    assert.equal(host.ended, true);
    assert.deepEqual(await exited(host), [5, null, undefined]);
  });

  it('falls back to a failure Node explains when the program does not exist', async () => {
    await hostAddon();
    hostTuning.directSpawn = direct;
    let host: SpawnedHost;
    try {
      host = spawnHost('/nonexistent/skillplug-host', [], { cwd: '/tmp', env });
    } finally {
      hostTuning.directSpawn = DEFAULT_DIRECT;
    }
    const [code, signal, error] = await exited(host);
    assert.equal(code, null);
    assert.equal(signal, null);
    assert.equal((error as NodeJS.ErrnoException | undefined)?.code, 'ENOENT');
  });

  it('keeps the event loop alive only while referenced', async () => {
    // A process whose only host is unreferenced exits at once, though the host sleeps on.
    const script = `
      import { hostAddon } from ${moduleUrl('build/src/host/host-addon.js')};
      import { spawnHost } from ${moduleUrl('build/src/host/host-spawn.js')};
      import { hostTuning } from ${moduleUrl('build/src/host/tuning.js')};
      await hostAddon();
      hostTuning.directSpawn = ${direct};
      const host = spawnHost('/bin/sh', ['-c', 'read x <&3'], { cwd: '/tmp', env: {} });
      host.setRef(false);
      process.stdout.write(String(host.pid));`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = Number(await readAll(child.stdout));
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 0);
    // The host lost its parent's end of fd 3, so read returns and it ends.
    assert.ok(Number.isInteger(pid) && pid > 0);
  });

  it('reaps a host that ended while this side held it referenced, and lets the loop go', async () => {
    // Referenced, the host's end comes through even when its pipes closed well before it exits (the
    // pause only gives a loop that would let go the time to do so; the outcome never depends on it).
    const script = `
      import { hostAddon } from ${moduleUrl('build/src/host/host-addon.js')};
      import { spawnHost } from ${moduleUrl('build/src/host/host-spawn.js')};
      import { hostTuning } from ${moduleUrl('build/src/host/tuning.js')};
      await hostAddon();
      hostTuning.directSpawn = ${direct};
      const host = spawnHost('/bin/sh', ['-c', 'exec 2>&- 3>&- 4>&- 5>&-; sleep 0.2; exit 4'], { cwd: '/tmp', env: {} });
      host.log.resume(); host.notes.resume(); host.channel.resume();
      host.onExit((code) => process.stdout.write('exit ' + code));`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const out = readAll(child.stdout);
    assert.equal(((await once(child, 'exit')) as [number])[0], 0);
    assert.equal(await out, 'exit 4');
  });

  it('holds the loop while referenced until its pipes close, even after it has been reaped', async (t) => {
    // The host exits at once; a process it left behind keeps its log pipe and writes to it only when this
    // test says so (a FIFO), after the exit was reported: a caller awaiting the rest of the log must get it.
    const fifo = fifoFor(t);
    const script = `
      import { hostAddon } from ${moduleUrl('build/src/host/host-addon.js')};
      import { spawnHost } from ${moduleUrl('build/src/host/host-spawn.js')};
      import { hostTuning } from ${moduleUrl('build/src/host/tuning.js')};
      await hostAddon();
      hostTuning.directSpawn = ${direct};
      const host = spawnHost('/bin/sh', ['-c', '(read x < ${fifo}; echo late >&2) & exit 0'], { cwd: '/tmp', env: {} });
      host.setRef(true);
      let log = '';
      host.log.setEncoding('utf8');
      host.log.on('data', (text) => (log += text));
      host.log.on('end', () => process.stdout.write(log));
      host.notes.resume(); host.channel.resume();
      host.onExit((code) => process.stdout.write('exit ' + code + '\\n'));`;
    assert.equal(await releasedAfter(script, 'exit 0\n', fifo), 'exit 0\nlate\n');
  });

  it('holds the loop again when referenced after its keep-alive timer went (idle), though its pipes are closed', async (t) => {
    // Unreferenced, the timer goes at its next turn; referenced again, only a new timer can hold the loop
    // (pipes closed, and a signal never holds it). libuv runs timers in the order they fall due, so the
    // 5 ms timer has turned before the 50 ms timeout that references the host again.
    const fifo = fifoFor(t);
    const script = `
      import { hostAddon } from ${moduleUrl('build/src/host/host-addon.js')};
      import { spawnHost } from ${moduleUrl('build/src/host/host-spawn.js')};
      import { hostTuning } from ${moduleUrl('build/src/host/tuning.js')};
      await hostAddon();
      hostTuning.directSpawn = ${direct};
      hostTuning.reapCheckMs = 5;
      const host = spawnHost('/bin/sh', ['-c', 'exec 2>&- 3>&- 4>&- 5>&-; read x < ${fifo}; exit 4'], { cwd: '/tmp', env: {} });
      host.log.resume(); host.notes.resume(); host.channel.resume();
      host.onExit((code) => process.stdout.write('exit ' + code + '\\n'));
      host.setRef(false);
      setTimeout(() => {
        host.setRef(true);
        process.stdout.write('referenced\\n');
      }, 50);`;
    assert.equal(await releasedAfter(script, 'referenced\n', fifo), 'referenced\nexit 4\n');
  });
});

describe('spawnHost through the host addon', { skip: !linux && 'Linux-only' }, () => {
  it('listens for SIGCHLD once, only while a host it started is unreaped', async () => {
    await hostAddon();
    const before = process.listenerCount('SIGCHLD');
    const hosts = [0, 1, 2].map(() => spawnHost(SH, ['-c', 'read x <&3'], { cwd: '/tmp', env }));
    assert.equal(process.listenerCount('SIGCHLD'), before + 1);
    for (const host of hosts) host.channel.end('\n');
    await Promise.all(hosts.map(exited));
    assert.equal(process.listenerCount('SIGCHLD'), before);
  });

  it('still hears a referenced host end when someone else removed every SIGCHLD listener', async () => {
    await hostAddon();
    const host = spawnHost(SH, ['-c', 'read x <&3; exit 3'], { cwd: '/tmp', env });
    const saved = process.listeners('SIGCHLD');
    process.removeAllListeners('SIGCHLD');
    try {
      host.channel.end('\n');
      assert.deepEqual(await exited(host), [3, null, undefined]);
    } finally {
      for (const listener of saved) if (!process.listeners('SIGCHLD').includes(listener)) process.on('SIGCHLD', listener);
    }
  });

  // Without the fallback the exit is never heard: the bound turns that hang into a failure.
  it('leaves hosts started from a worker thread to Node, since SIGCHLD never reaches a worker', { timeout: 120_000 }, async () => {
    await hostAddon();
    const code = `
      import { parentPort } from 'node:worker_threads';
      import { hostAddon } from ${moduleUrl('build/src/host/host-addon.js')};
      import { spawnHost } from ${moduleUrl('build/src/host/host-spawn.js')};
      await hostAddon();
      const host = spawnHost('/bin/sh', ['-c', 'exit 6'], { cwd: '/tmp', env: {} });
      host.onExit((code) => parentPort.postMessage(code));`;
    const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`));
    const [exitCode] = (await once(worker, 'message')) as [number];
    assert.equal(exitCode, 6);
    await worker.terminate();
  });

  it('does not write-protect this process: pages written after a spawn take no new faults', async (t) => {
    await hostAddon();
    // 16 MiB of this process's memory, written once so every page is present.
    const memory = Buffer.alloc(16 * 1024 * 1024, 1);
    const pages = memory.length / 4096;
    const faultsWriting = async (direct: boolean): Promise<number> => {
      hostTuning.directSpawn = direct;
      let host: SpawnedHost;
      try {
        host = spawnHost(SH, ['-c', 'exit 0'], { cwd: '/tmp', env });
      } finally {
        hostTuning.directSpawn = DEFAULT_DIRECT;
      }
      await exited(host);
      const before = minorFaults();
      memory.fill(direct ? 2 : 3);
      return minorFaults() - before;
    };
    const forked = await faultsWriting(false);
    const spawned = await faultsWriting(true);
    t.diagnostic(`faults writing ${pages} pages after a spawn: ${spawned} through the addon, ${forked} after Node's fork`);
    if (forked < pages / 2) {
      t.skip(`Node's fork left only ${forked} faults over ${pages} pages here (huge pages?): nothing to compare`);
      return;
    }
    assert.ok(spawned < pages / 8, `${spawned} faults over ${pages} pages`);
  });
});
