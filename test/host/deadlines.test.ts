// Many calls' deadlines on one timer.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Deadlines } from '../../src/host/deadlines.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('Deadlines', () => {
  it('expires each deadline once, in order, and never one that was removed', async () => {
    const deadlines = new Deadlines();
    const fired: string[] = [];
    const started = performance.now();
    const at: Record<string, number> = {};
    const add = (name: string, ms: number) => deadlines.add(ms, () => {
      fired.push(name);
      at[name] = performance.now() - started;
    });
    add('late', 120);
    const removed = add('removed', 40);
    add('early', 20);
    deadlines.remove(removed);
    await sleep(200);
    assert.deepEqual(fired, ['early', 'late']);
    assert.ok((at.early as number) >= 19 && (at.late as number) >= 119, JSON.stringify(at));
  });

  it('re-arms for a deadline added while the timer waits for a later one, and for ones added when it fires', async () => {
    const deadlines = new Deadlines();
    const fired: string[] = [];
    deadlines.add(150, () => fired.push('long'));
    deadlines.add(20, () => {
      fired.push('short');
      deadlines.add(20, () => fired.push('chained'));
    });
    await sleep(90);
    assert.deepEqual(fired, ['short', 'chained']);
    await sleep(100);
    assert.deepEqual(fired, ['short', 'chained', 'long']);
  });

  it('does not keep the process alive by itself', async () => {
    const { spawnSync } = await import('node:child_process');
    const url = new URL('../../src/host/deadlines.js', import.meta.url).href;
    const script = `const { Deadlines } = await import(${JSON.stringify(url)}); new Deadlines().add(60_000, () => console.log('fired'));`;
    const started = Date.now();
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(result.status, 0);
    assert.equal(result.stdout, '');
    assert.ok(Date.now() - started < 5000);
  });
});
