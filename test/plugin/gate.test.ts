import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CallGate } from '../../src/plugin/gate.js';

describe('CallGate', () => {
  it('lets one holder take every slot while none is held, and lets the waiters in FIFO once it releases', async () => {
    const gate = new CallGate(3);
    const all = gate.tryAcquireAll();
    assert.ok(all, 'an idle gate gives every slot');
    assert.equal(gate.inFlight, 3);
    assert.equal(gate.tryAcquire(), undefined, 'no slot beside the holder of all');
    assert.equal(gate.tryAcquireAll(), undefined);
    const order: number[] = [];
    const waiters = [1, 2, 3, 4].map((n) => gate.acquire().then((release) => {
      order.push(n);
      return release;
    }));
    all.release();
    all.release(); // a second release frees nothing more
    const granted = await Promise.all(waiters.slice(0, 3));
    assert.deepEqual(order, [1, 2, 3], 'three slots, granted in order');
    assert.equal(gate.inFlight, 3);
    (granted[0] as () => void)();
    await waiters[3];
    assert.deepEqual(order, [1, 2, 3, 4]);
  });

  it('gives no slot-wide hold while a slot is held or a caller waits', async () => {
    const gate = new CallGate(2);
    const one = gate.tryAcquire() as () => void;
    assert.equal(gate.tryAcquireAll(), undefined, 'a slot is held');
    const two = gate.tryAcquire() as () => void;
    const waiting = gate.acquire();
    one();
    two();
    const third = await waiting;
    assert.equal(gate.tryAcquireAll(), undefined, 'the waiter got in');
    third();
    assert.ok(gate.tryAcquireAll());
  });

  it('narrows a hold of every slot to one, letting the waiters that fit in at once', async () => {
    const gate = new CallGate(3);
    const all = gate.tryAcquireAll() as NonNullable<ReturnType<CallGate['tryAcquireAll']>>;
    const order: number[] = [];
    const waiters = [1, 2, 3].map((n) => gate.acquire().then((release) => {
      order.push(n);
      return release;
    }));
    const one = all.narrow();
    all.release(); // the hold was narrowed: this gives nothing back
    const granted = await Promise.all(waiters.slice(0, 2));
    assert.deepEqual(order, [1, 2]);
    assert.equal(gate.inFlight, 3);
    assert.throws(() => all.narrow());
    one();
    await waiters[2];
    assert.deepEqual(order, [1, 2, 3]);
    for (const release of granted) release();
  });
});
