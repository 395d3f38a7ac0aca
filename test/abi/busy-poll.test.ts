import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BusyPoll } from '../../src/abi/busy-poll.js';

describe('BusyPoll', () => {
  it('turns the loop until nothing is due, with one start and one stop', async () => {
    let due = 3;
    const events: string[] = [];
    const poll = new BusyPoll(50_000, {
      waiting: () => due > 0,
      check: () => {
        due--;
        return true;
      },
      onStart: () => events.push('start'),
      onStop: () => events.push('stop'),
    });
    poll.touch();
    poll.touch();
    await sleep(20);
    assert.equal(due, 0);
    assert.deepEqual(events, ['start', 'stop']);
  });

  it('gives up a window after the last activity, even while something is still due', async () => {
    let turns = 0;
    let stopped = false;
    const poll = new BusyPoll(2_000, {
      waiting: () => true,
      check: () => {
        turns++;
        return false;
      },
      onStop: () => (stopped = true),
    });
    poll.touch();
    await sleep(30);
    assert.ok(stopped, 'polling stopped');
    assert.ok(turns > 0, 'it turned at least once');
    const after = turns;
    await sleep(10);
    assert.equal(turns, after, 'no turn after it stopped');
  });

  it('never starts with a window of 0', async () => {
    let started = false;
    new BusyPoll(0, { waiting: () => true, onStart: () => (started = true) }).touch();
    await sleep(5);
    assert.equal(started, false);
  });
});
