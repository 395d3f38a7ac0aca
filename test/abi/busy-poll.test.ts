import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { BusyPoll } from '../../src/abi/busy-poll.js';

/** Resolves when the poll's onStop runs, so tests wait on the event, not on time. */
function stopped(): { promise: Promise<void>; onStop: () => void } {
  let onStop!: () => void;
  const promise = new Promise<void>((resolve) => (onStop = resolve));
  return { promise, onStop };
}

describe('BusyPoll', () => {
  it('turns the loop until nothing is due, with one start and one stop', async () => {
    let due = 3;
    const events: string[] = [];
    const stop = stopped();
    const poll = new BusyPoll(50_000, {
      waiting: () => due > 0,
      check: () => {
        due--;
        return true;
      },
      onStart: () => events.push('start'),
      onStop: () => {
        events.push('stop');
        stop.onStop();
      },
      now: () => 0,
    });
    poll.touch();
    poll.touch();
    await stop.promise;
    assert.equal(due, 0);
    assert.deepEqual(events, ['start', 'stop']);
  });

  it('gives up a window after the last activity, even while something is still due', async () => {
    let turns = 0;
    let clock = 0;
    const stop = stopped();
    const poll = new BusyPoll(2_000, {
      waiting: () => true,
      check: () => {
        turns++;
        clock += 1; // each turn "takes" 1 ms of the 2 ms window
        return false;
      },
      onStop: stop.onStop,
      now: () => clock,
    });
    poll.touch();
    await stop.promise;
    assert.ok(turns >= 2 && turns <= 4, `it turned through the window (${turns} turns)`);
    const after = turns;
    for (let i = 0; i < 5; i++) await nextTurn();
    assert.equal(turns, after, 'no turn after it stopped');
  });

  it('extends the window on each result it finds', async () => {
    let clock = 0;
    let found = 5;
    let turns = 0;
    const stop = stopped();
    const poll = new BusyPoll(2_000, {
      waiting: () => true,
      check: () => {
        turns++;
        clock += 1;
        return found-- > 0;
      },
      onStop: stop.onStop,
      now: () => clock,
    });
    poll.touch();
    await stop.promise;
    assert.ok(turns > 5, `results kept it turning (${turns} turns)`);
  });

  it('never starts with a window of 0', async () => {
    let started = false;
    new BusyPoll(0, { waiting: () => true, onStart: () => (started = true) }).touch();
    for (let i = 0; i < 3; i++) await nextTurn();
    assert.equal(started, false);
  });
});
