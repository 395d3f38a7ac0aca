// A repository's broken or planted config and lock files hurt only the repository's plugins, and never hang.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeEach, describe, it } from 'node:test';
import { ErrorCode, PluginError, PluginLoader } from '../../src/index.js';
import { readConfigFile } from '../../src/config/index.js';
import { readListedRegularTextSync, readSmallRegularFileSync } from '../../src/safe-read.js';
import { buildFixture, tempDir } from '../helpers/fixtures.js';
import { loadOutcome } from '../helpers/assertions.js';

const noFifo = process.platform === 'win32' ? 'Windows has no FIFOs (mkfifo)' : false;

const outcome = (promise: Promise<unknown>): Promise<string> => loadOutcome(promise);

describe('workspace config and lock problems stay in the workspace', () => {
  let ws: string;
  let home: string;
  let mine: string;
  let theirs: string;

  beforeEach(async () => {
    ws = realpathSync(tempDir());
    home = tempDir();
    mine = await buildFixture(path.join(home, '.vtcode', 'plugins'), { source: 'echo', name: 'mine' });
    theirs = await buildFixture(path.join(ws, '.vtcode', 'plugins'), { source: 'echo', name: 'theirs' });
    writeFileSync(path.join(home, '.vtcode', 'skillplug.json'), JSON.stringify({ trusted_workspaces: [ws] }));
  });

  async function judged(expectTheirs: string): Promise<void> {
    const warnings: string[] = [];
    const l = new PluginLoader({ workspace: ws, home, isolation: 'none', onWarning: (m) => warnings.push(m) });
    assert.equal(await outcome(l.loadPlugin(mine)), 'loaded');
    assert.equal(await outcome(l.loadPlugin(theirs)), expectTheirs);
    const listed = Object.fromEntries((await l.discoverPlugins()).map((p) => [p.name, [p.status, p.errors.map((e) => e.code)]]));
    assert.deepEqual(listed, { mine: ['ok', []], theirs: ['error', [expectTheirs]] });
    assert.ok(warnings.length > 0, 'the user is told');
  }

  it('a malformed .vtcode/skillplug.json refuses only the workspace plugins (E_CONFIG)', async () => {
    writeFileSync(path.join(ws, '.vtcode', 'skillplug.json'), '{"require_signature": "yes"');
    await judged(ErrorCode.CONFIG);
  });

  it('a malformed skillplug.lock.json refuses only the workspace plugins (E_INTEGRITY)', async () => {
    writeFileSync(path.join(ws, 'skillplug.lock.json'), '{"lockfile_version": 1, "plugins": [{}]}');
    await judged(ErrorCode.INTEGRITY);
  });

  it('a FIFO as the workspace config never hangs; it counts as a broken config', { skip: noFifo }, async () => {
    execFileSync('mkfifo', [path.join(ws, '.vtcode', 'skillplug.json')]);
    await judged(ErrorCode.CONFIG);
  });

  it('a FIFO as the lock never hangs; it counts as a broken lock', { skip: noFifo }, async () => {
    execFileSync('mkfifo', [path.join(ws, 'skillplug.lock.json')]);
    await judged(ErrorCode.INTEGRITY);
  });

  it('a FIFO as the user config or a trusted key file fails with E_CONFIG instead of hanging', { skip: noFifo }, async () => {
    const fifoHome = tempDir();
    mkdirSync(path.join(fifoHome, '.vtcode'));
    execFileSync('mkfifo', [path.join(fifoHome, '.vtcode', 'skillplug.json')]);
    assert.throws(() => new PluginLoader({ workspace: ws, home: fifoHome }), (e: unknown) => e instanceof PluginError && e.code === ErrorCode.CONFIG);
    const keyFifo = path.join(tempDir(), 'key.pub');
    execFileSync('mkfifo', [keyFifo]);
    const l = new PluginLoader({ workspace: ws, home, isolation: 'none', requireSignature: true, trustedKeys: [keyFifo] });
    assert.equal(await outcome(l.loadPlugin(mine)), ErrorCode.CONFIG);
  });
});

describe('readSmallRegularFileSync', () => {
  it('reads a file and refuses what is missing, not regular or too large', () => {
    const dir = tempDir();
    const file = path.join(dir, 'a.json');
    writeFileSync(file, 'x'.repeat(5000));
    assert.equal(readSmallRegularFileSync(file).length, 5000);
    const errno = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return (err as NodeJS.ErrnoException).code;
      }
      return 'read';
    };
    assert.equal(errno(() => readSmallRegularFileSync(file, 100)), 'EFBIG');
    assert.equal(errno(() => readSmallRegularFileSync(path.join(dir, 'none'))), 'ENOENT');
    assert.equal(errno(() => readSmallRegularFileSync(dir)), 'ENOTREG');
    assert.deepEqual(readConfigFile(path.join(dir, 'none')), {});
  });
});

describe('readListedRegularTextSync', () => {
  it('answers as readSmallRegularFileSync for whatever the path turned out to hold', () => {
    const dir = tempDir();
    const files: Record<string, string> = { small: '{"a":1}', utf8: '{"d":"\u00fcn\u00ef \u2713"}', empty: '', scratch: 'y'.repeat(70_000), large: 'z'.repeat(300) };
    for (const [name, content] of Object.entries(files)) writeFileSync(path.join(dir, name), content);
    symlinkSync('small', path.join(dir, 'link'));
    symlinkSync('none', path.join(dir, 'dangling'));
    mkdirSync(path.join(dir, 'subdir'));
    if (!noFifo) {
      execFileSync('mkfifo', [path.join(dir, 'fifo')]);
      symlinkSync('fifo', path.join(dir, 'fifo-link'));
    }
    const outcome = (read: (file: string, max: number) => Buffer | string, file: string): unknown => {
      try {
        return read(file, 256).toString();
      } catch (err) {
        return { code: (err as NodeJS.ErrnoException).code, size: (err as { size?: number }).size };
      }
    };
    for (const name of ['small', 'utf8', 'empty', 'scratch', 'large', 'link', 'dangling', 'subdir', 'missing', ...(noFifo ? [] : ['fifo', 'fifo-link'])]) {
      const file = path.join(dir, name);
      assert.deepEqual(outcome(readListedRegularTextSync, file), outcome(readSmallRegularFileSync, file), name);
    }
    assert.equal(readListedRegularTextSync(path.join(dir, 'scratch'), 100_000).length, 70_000);
  });
});
