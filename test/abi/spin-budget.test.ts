import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { SpinBudget, SpinHistory, runnableFromLoadavg } from '../../src/abi/spin-budget.js';

/** A budget on a machine of `cores` whose clock and load the test sets. */
function machine(cores: number, othersRunnable = 0): { state: { now: number; others: number }; budget: SpinBudget } {
  const state = { now: 0, others: othersRunnable };
  // The reader counts itself among the runnable tasks, as /proc/loadavg does, and so do spinners.
  const budget: SpinBudget = new SpinBudget({ cores, now: () => state.now, runnable: (): number => 1 + state.others + budget.active(), sampleMicros: 0 });
  return { state, budget };
}

describe('SpinBudget', () => {
  it('never grants more leases than cores - 1, however many ask', () => {
    const { budget } = machine(4);
    const holders = Array.from({ length: 32 }, () => ({}));
    const granted = holders.filter((h) => budget.acquire(h));
    assert.equal(budget.cap, 3);
    assert.equal(granted.length, 3);
    assert.equal(budget.active(), 3);
  });

  it('grants nothing on one core: the spinner would steal the core its work needs', () => {
    const { budget } = machine(1);
    assert.equal(budget.acquire({}), false);
    assert.equal(budget.mayPollEventLoop(), false);
  });

  it('frees a lease once its spin window after the call has passed, not before', () => {
    const { state, budget } = machine(2);
    const a = {};
    const b = {};
    assert.equal(budget.acquire(a), true);
    assert.equal(budget.acquire(b), false, 'the only lease is taken');
    budget.settle(a, 200);
    state.now += 199;
    assert.equal(budget.acquire(b), false, 'a may still be spinning');
    state.now += 2;
    assert.equal(budget.acquire(b), true, "a's window is over");
  });

  it('keeps a held lease held while its call runs, whatever the clock', () => {
    const { state, budget } = machine(2);
    const a = {};
    budget.acquire(a);
    state.now += 10_000_000;
    assert.equal(budget.acquire({}), false);
    budget.release(a);
    assert.equal(budget.acquire({}), true);
  });

  it('grants no lease and stops the event loop polling while other work fills the cores', () => {
    const { state, budget } = machine(2, 0);
    assert.equal(budget.mayPollEventLoop(), true, 'idle: a core is free');
    state.others = 1; // a busy neighbour on the other core
    for (let i = 0; i < 8; i++) budget.spareCores(); // the load estimate is smoothed over samples
    assert.equal(budget.mayPollEventLoop(), false);
    assert.equal(budget.acquire({}), false);
    state.others = 0;
    for (let i = 0; i < 8; i++) budget.spareCores();
    assert.equal(budget.acquire({}), true, 'the neighbour went away');
  });

  it('smooths samples taken one after another, but lets the first sample after a long gap decide alone', () => {
    const state = { now: 0, others: 0 };
    const budget = new SpinBudget({ cores: 2, now: () => state.now, runnable: () => 1 + state.others, sampleMicros: 10 });
    assert.equal(budget.mayPollEventLoop(), true);
    state.others = 1;
    state.now += 10; // the next sample period: one busy instant among idle ones does not flip the estimate
    assert.equal(budget.mayPollEventLoop(), true, 'smoothed');
    state.now += 10_000; // nobody asked for a long while: the old average says nothing about now
    assert.equal(budget.mayPollEventLoop(), false, 'the fresh sample alone');
    state.others = 0;
    state.now += 10_000;
    assert.equal(budget.mayPollEventLoop(), true, 'and back, after another gap');
  });

  it('takes back a held lease at its renewal once other work fills the cores', () => {
    const { state, budget } = machine(2, 0);
    const a = {};
    assert.equal(budget.acquire(a), true, 'idle: granted');
    assert.equal(budget.acquire(a), true, 'renewed while the machine stays idle');
    state.others = 1; // a busy neighbour starts while a's caller keeps calling
    for (let i = 0; i < 8; i++) budget.spareCores();
    assert.equal(budget.acquire(a), false, 'not renewed beside the neighbour');
    assert.equal(budget.active(), 0);
  });

  it('leaves the event loop its core: on two idle cores one lease, and the loop may poll beside it', () => {
    const { budget } = machine(2);
    assert.equal(budget.acquire({}), true);
    assert.equal(budget.acquire({}), false);
    assert.equal(budget.mayPollEventLoop(), true, 'the spinner is ours, not load');
  });
});

describe('SpinHistory', () => {
  it('spins the full window while waits end within it', () => {
    const history = new SpinHistory(200);
    for (let i = 0; i < 20; i++) history.record(30);
    assert.equal(history.window(), 200);
  });

  it('backs off after a run of waits longer than the window, and comes back when they shorten', () => {
    const history = new SpinHistory(200);
    let misses = 0;
    while (history.window() > 0) {
      history.record(1_000);
      misses++;
      assert.ok(misses < 50, 'it backs off');
    }
    assert.ok(misses >= 3, `one slow call does not end spinning (${misses} misses)`);
    let hits = 0;
    while (history.window() === 0) {
      history.record(20);
      hits++;
      assert.ok(hits < 50, 'it comes back');
    }
  });

  it('never spins with a window of 0 (pollMicros: 0)', () => {
    const history = new SpinHistory(0);
    history.record(0);
    assert.equal(history.window(), 0);
  });
});

describe('runnableFromLoadavg', () => {
  const parse = (text: string): number | undefined => runnableFromLoadavg(Buffer.from(text, 'latin1'), Buffer.byteLength(text, 'latin1'));

  it('reads the running count, the fourth field\'s numerator', () => {
    assert.equal(parse('0.52 0.61 0.70 3/412 1234\n'), 3);
    assert.equal(parse('12.00 9.50 8.25 117/2048 99999\n'), 117);
    assert.equal(parse('0.00 0.00 0.00 0/1 1'), 0);
  });

  it('refuses text that is not /proc/loadavg\'s: undefined, never a guess', () => {
    for (const text of ['', '0.52 0.61 0.70', '0.52 0.61 0.70 ', '0.52 0.61 0.70 x/412 1', '0.52 0.61 0.70 3', '0.52 0.61 0.70 3 412', '0.52 0.61 0.70 /412 1', '1 2 3 1234567890123/5 1', 'a b c 3/', 'x y z 3/foo']) {
      assert.equal(parse(text), undefined, JSON.stringify(text));
    }
  });

  it('agrees with this machine\'s /proc/loadavg', { skip: process.platform !== 'linux' && '/proc/loadavg is Linux-only' }, () => {
    const text = readFileSync('/proc/loadavg', 'latin1');
    const expected = Number(text.split(' ')[3]?.split('/')[0]);
    const parsed = parse(text);
    assert.ok(parsed !== undefined && Number.isInteger(parsed) && parsed >= 0, text);
    // The count moves between two reads; the file read once is parsed the same way both ways.
    assert.equal(parsed, expected);
  });

  it('only reads the length it is given', () => {
    const bytes = Buffer.from('0.52 0.61 0.70 3/412 1234\n', 'latin1');
    assert.equal(runnableFromLoadavg(bytes, 16), undefined);
    assert.equal(runnableFromLoadavg(bytes, 17), undefined, 'the slash, but no total after it');
    assert.equal(runnableFromLoadavg(bytes, 18), 3);
  });
});
