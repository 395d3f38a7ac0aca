// Many calls' deadlines on one timer, on a mocked clock: nothing here depends on the machine's speed.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { Deadlines } from '../../src/host/deadlines.js';

describe('Deadlines', () => {
  let clock = 0;
  const advance = (ms: number) => {
    clock += ms;
    mock.timers.tick(ms);
  };
  beforeEach(() => {
    clock = 0;
    mock.timers.enable({ apis: ['setTimeout'] });
  });
  afterEach(() => mock.timers.reset());

  it('expires each deadline once, in order, and never one that was removed', () => {
    const deadlines = new Deadlines(() => clock);
    const fired: string[] = [];
    const add = (name: string, ms: number) => deadlines.add(ms, () => fired.push(`${name}@${clock}`));
    add('late', 120);
    const removed = add('removed', 40);
    add('early', 20);
    deadlines.remove(removed);
    advance(19);
    assert.deepEqual(fired, []);
    advance(1);
    assert.deepEqual(fired, ['early@20']);
    advance(99);
    assert.deepEqual(fired, ['early@20']);
    advance(1);
    assert.deepEqual(fired, ['early@20', 'late@120']);
    advance(1000);
    assert.deepEqual(fired, ['early@20', 'late@120']);
  });

  it('re-arms for a deadline added while the timer waits for a later one, and for ones added when it fires', () => {
    const deadlines = new Deadlines(() => clock);
    const fired: string[] = [];
    deadlines.add(150, () => fired.push('long'));
    deadlines.add(20, () => {
      fired.push('short');
      deadlines.add(20, () => fired.push('chained'));
    });
    advance(20);
    assert.deepEqual(fired, ['short']);
    advance(20);
    assert.deepEqual(fired, ['short', 'chained']);
    advance(109);
    assert.deepEqual(fired, ['short', 'chained']);
    advance(1);
    assert.deepEqual(fired, ['short', 'chained', 'long']);
  });
});

describe('Deadlines timer', () => {
  it('does not keep the process alive by itself', async () => {
    const { spawnSync } = await import('node:child_process');
    const url = new URL('../../src/host/deadlines.js', import.meta.url).href;
    // The child would print if its 60 s deadline kept it alive and fired; exiting at all proves the timer is unreferenced.
    const script = `const { Deadlines } = await import(${JSON.stringify(url)}); new Deadlines().add(60_000, () => console.log('fired'));`;
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(result.status, 0);
    assert.equal(result.stdout, '');
  });
});
