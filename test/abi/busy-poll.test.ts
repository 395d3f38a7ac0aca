import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { BusyPoll } from '../../src/abi/busy-poll.js';
import type { SpinBudget } from '../../src/abi/spin-budget.js';

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

describe('BusyPoll, adaptive', () => {
  /** A budget that always has a core to spare, so only the poll's own history decides. */
  const spare = { mayPollEventLoop: () => true } as unknown as SpinBudget;

  it('polls beside other processes\' load only when told to (besideLoad), and then only while its history says it pays', async () => {
    const loaded = { mayPollEventLoop: () => false } as unknown as SpinBudget;
    const run = async (besideLoad: boolean): Promise<number> => {
      let starts = 0;
      let due = true;
      const stop = stopped();
      const poll = new BusyPoll(1_000, {
        budget: loaded,
        besideLoad,
        waiting: () => due,
        check: () => {
          due = false;
          return true;
        },
        onStart: () => starts++,
        onStop: () => stop.onStop(),
        now: () => 0,
      });
      poll.touch();
      if (starts > 0) await stop.promise;
      return starts;
    };
    assert.equal(await run(false), 0, 'no spare core: the loop sleeps');
    assert.equal(await run(true), 1, 'besideLoad: it polls, and finds the result');
  });

  it('probes less and less often while its polls keep missing, and polls again at once after a probe hits', async () => {
    let clock = 0;
    let starts = 0;
    let hitNext = false;
    let due = true;
    let stop = stopped();
    const poll = new BusyPoll(1_000, {
      budget: spare,
      waiting: () => due,
      check: () => {
        clock += 1; // each turn spends the whole 1 ms window: a call that never ends in time
        if (hitNext) due = false; // unless this one's result is there
        return hitNext;
      },
      onStart: () => starts++,
      onStop: () => stop.onStop(),
      now: () => clock,
    });
    // Touches at which a poll started, over 2000 touches that all miss.
    const startedAt: number[] = [];
    for (let touch = 1; touch <= 2000; touch++) {
      const before = starts;
      poll.touch();
      if (starts > before) {
        startedAt.push(touch);
        await stop.promise;
        stop = stopped();
      }
    }
    const gaps = startedAt.slice(1).map((t, i) => t - (startedAt[i] as number));
    // The history stops polling after a few misses; from then on each probe waits twice as long, up to a cap.
    const probeGaps = gaps.filter((g) => g > 1);
    assert.ok(probeGaps.length >= 4, `it kept probing (${gaps.join(' ')})`);
    for (let i = 1; i < probeGaps.length; i++) assert.ok((probeGaps[i] as number) >= (probeGaps[i - 1] as number), `gaps grow: ${probeGaps.join(' ')}`);
    assert.ok((probeGaps.at(-1) as number) >= 8 * (probeGaps[0] as number), `gaps back off: ${probeGaps.join(' ')}`);
    assert.ok(startedAt.length < 30, `about log2 probes over 2000 touches, not one per 16 (${startedAt.length})`);

    // A probe that finds its result puts the next probe back to the shortest gap.
    hitNext = true;
    let touch = 0;
    for (const first = starts; starts === first; ) {
      poll.touch();
      touch++;
    }
    await stop.promise;
    stop = stopped();
    hitNext = false;
    due = true;
    const afterHit = starts;
    let untilNext = 0;
    while (starts === afterHit && untilNext < 2000) {
      poll.touch();
      untilNext++;
    }
    if (starts > afterHit) await stop.promise;
    assert.ok(touch <= 1024, 'the hitting probe came within the longest gap');
    assert.ok(untilNext <= (probeGaps[0] as number) + 1, `after a hit the next probe comes after the shortest gap (${untilNext})`);
  });

  /** A poll whose every poll spends its whole window (calls that never end in time), and a touch that says whether it polled. */
  function missingPoll(budget: SpinBudget): { touch: () => Promise<boolean>; end: () => void } {
    let clock = 0;
    let due = true;
    let stop = stopped();
    const poll = new BusyPoll(1_000, {
      budget,
      waiting: () => due,
      check: () => {
        clock += 1;
        return false;
      },
      onStop: () => stop.onStop(),
      now: () => clock,
    });
    return {
      touch: async () => {
        const polls = poll.wouldPoll();
        poll.touch();
        if (polls) {
          await stop.promise;
          stop = stopped();
        }
        return polls;
      },
      end: () => {
        due = false;
      },
    };
  }

  it('lets no probe poll under load, and probes at the next touch once the load is gone', async () => {
    let loaded = false;
    const { touch, end } = missingPoll({ mayPollEventLoop: () => !loaded } as unknown as SpinBudget);
    // Misses until the history gives up polling, then load comes.
    for (let i = 0; i < 64; i++) await touch();
    loaded = true;
    let pollsUnderLoad = 0;
    for (let i = 0; i < 3000; i++) if (await touch()) pollsUnderLoad++;
    assert.equal(pollsUnderLoad, 0, 'no probe polls beside the load');
    loaded = false;
    assert.equal(await touch(), true, 'the probe that came due under load runs at the first touch after it');
    end();
  });

  it('looks at the machine\'s load only when a poll is due, not on every call its history already refuses', async () => {
    let looks = 0;
    const { touch, end } = missingPoll({ mayPollEventLoop: () => ++looks > 0 } as unknown as SpinBudget);
    let polls = 0;
    for (let i = 0; i < 2000; i++) if (await touch()) polls++;
    end();
    // wouldPoll() and touch() each ask once per poll they start; a touch the history refuses asks nothing.
    assert.ok(looks <= 2 * polls + 2 * 12, `${looks} looks at the load for ${polls} polls over 2000 touches`);
    assert.ok(looks < 100, `not one look per touch (${looks})`);
  });
});

describe('BusyPoll, parking', () => {
  const loaded = { mayPollEventLoop: () => false } as unknown as SpinBudget;

  /** A poll on a machine with no core free, whose owner can park; `outcome` says how each park ends. */
  function parkingPoll(outcome: () => boolean | undefined, budget: SpinBudget = loaded, extra: { mayPark?: () => boolean; now?: () => number } = {}) {
    const events: string[] = [];
    let due = 0;
    const poll = new BusyPoll(300, {
      ...extra,
      budget,
      waiting: () => due > 0,
      // A poll (a core free) finds every result on its first turn.
      check: () => {
        const found = due > 0;
        due = 0;
        return found;
      },
      onStart: () => events.push('start'),
      onStop: () => events.push('stop'),
      park: (micros) => {
        events.push(`park ${micros}`);
        const hit = outcome();
        if (hit) due--;
        return hit;
      },
      now: extra.now ?? (() => 0),
    });
    return {
      events,
      poll,
      submit: () => {
        due++;
        poll.touch();
      },
    };
  }

  it('parks, with no core free to poll on, at the end of the tick: once for the calls made in it, between onStart and onStop, for the window in µs', async () => {
    const { events, submit } = parkingPoll(() => true);
    submit();
    submit();
    assert.deepEqual(events, ['start'], 'nothing blocks before the tick ends');
    await new Promise((resolve) => process.nextTick(resolve));
    assert.deepEqual(events, ['start', 'park 300', 'stop']);
    for (let i = 0; i < 3; i++) await nextTurn();
    assert.deepEqual(events, ['start', 'park 300', 'stop'], 'no loop turns were polled');
  });

  it('polls rather than parks while a core is free, and never parks without a park hook', async () => {
    const { events, poll, submit } = parkingPoll(() => true, { mayPollEventLoop: () => true } as unknown as SpinBudget);
    assert.equal(poll.wouldPoll(), true);
    submit();
    for (let i = 0; i < 3; i++) await nextTurn();
    assert.deepEqual(events, ['start', 'stop'], 'it polled, and did not park');
    let started = false;
    const bare = new BusyPoll(300, { budget: loaded, waiting: () => true, onStart: () => (started = true), now: () => 0 });
    assert.equal(bare.wouldPoll(), false);
    bare.touch();
    for (let i = 0; i < 3; i++) await nextTurn();
    assert.equal(started, false);
  });

  it('stops parking once its parks miss, and learns nothing from a park that did not block', async () => {
    let result: boolean | undefined;
    const { events, poll, submit } = parkingPoll(() => result);
    const parks = () => events.filter((e) => e.startsWith('park')).length;
    // Parks that did not block (more than one result due) neither stop nor encourage parking.
    for (let i = 0; i < 40; i++) {
      submit();
      await new Promise((resolve) => process.nextTick(resolve));
    }
    assert.equal(parks(), 40, 'every touch parked: nothing was learnt');
    assert.equal(poll.wouldPoll(), true);
    // Parks that time out with the result still due: after a few the history refuses, until a probe.
    result = false;
    for (let i = 0; i < 40; i++) {
      submit();
      await new Promise((resolve) => process.nextTick(resolve));
    }
    const afterMisses = parks();
    assert.ok(afterMisses - 40 < 40, `missing parks stopped (${afterMisses - 40} of 40 touches parked)`);
    assert.ok(afterMisses - 40 >= 2, 'it took a few misses to stop');
  });

  it('does not choose to park while its owner could not (mayPark), so the caller takes its other path', async () => {
    let may = false;
    const { events, poll, submit } = parkingPoll(() => true, loaded, { mayPark: () => may });
    assert.equal(poll.wouldPoll(), false);
    submit();
    await new Promise((resolve) => process.nextTick(resolve));
    assert.deepEqual(events, []);
    may = true;
    assert.equal(poll.wouldPoll(), true);
  });

  it('parks back to back for 1 ms at most before the event loop turns again', async () => {
    let clock = 0;
    // Each park "takes" 0.4 ms of the clock.
    const { events, submit } = parkingPoll(
      () => {
        clock += 0.4;
        return true;
      },
      loaded,
      { now: () => clock },
    );
    const parks = () => events.filter((e) => e.startsWith('park')).length;
    // Calls made one after another without the loop turning (a serial caller's next call comes in a microtask).
    for (let i = 0; i < 6; i++) {
      submit();
      await new Promise((resolve) => process.nextTick(resolve));
    }
    assert.equal(parks(), 3, 'parks at 0, 0.4 and 0.8 ms; none once 1 ms had passed since the first');
    await nextTurn();
    submit();
    await new Promise((resolve) => process.nextTick(resolve));
    assert.equal(parks(), 4, 'the loop turned: parking again');
  });
});
