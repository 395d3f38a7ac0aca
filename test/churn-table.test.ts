import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChurnMap, ChurnSet, FRESH_AFTER_INSERTS } from '../src/churn-table.js';

// A deterministic stream of operations like calls in flight: mostly one in, one out, now and then a burst.
function* operations(count: number): Generator<['add' | 'delete', number]> {
  let next = 0;
  const live: number[] = [];
  for (let i = 0; i < count; i++) {
    const burst = i % 97 === 0 ? 40 : 1;
    for (let b = 0; b < burst; b++) {
      live.push(next);
      yield ['add', next++];
    }
    // Out of order now and then, as results from several workers come back.
    const at = i % 5 === 0 ? Math.min(2, live.length - 1) : 0;
    const [gone] = live.splice(at, 1);
    yield ['delete', gone as number];
  }
}

describe('ChurnMap', () => {
  it('behaves like a Map across many table refreshes: entries, size, insertion order', () => {
    const churn = new ChurnMap<number, string>();
    const reference = new Map<number, string>();
    let checked = 0;
    for (const [op, key] of operations(FRESH_AFTER_INSERTS * 12)) {
      if (op === 'add') {
        churn.set(key, `v${key}`);
        reference.set(key, `v${key}`);
      } else {
        assert.equal(churn.delete(key), reference.delete(key));
      }
      assert.equal(churn.size, reference.size);
      if (key % 61 === 0) {
        assert.deepEqual([...churn.values()], [...reference.values()]);
        checked++;
      }
    }
    assert.ok(checked > 10);
    for (const key of reference.keys()) {
      assert.equal(churn.get(key), reference.get(key));
      assert.equal(churn.has(key), true);
    }
    assert.equal(churn.has(-1), false);
    assert.equal(churn.get(-1), undefined);
    assert.equal(churn.delete(-1), false);
  });

  it('moves a table that sees few insertions to a new one once the process as a whole made enough', () => {
    // An iterator reads the table of the moment: one taken before a move does not see entries added after it.
    const quiet = new ChurnMap<string, number>();
    const busy = new ChurnMap<number, number>();
    quiet.set('a', 1);
    const before = quiet.values();
    for (let i = 0; i < FRESH_AFTER_INSERTS; i++) busy.set(i, i);
    quiet.set('b', 2); // the first insertion after 256 elsewhere: the quiet table moves, with 'b'
    const after = quiet.values();
    quiet.set('c', 3); // no move: too few insertions since
    assert.deepEqual([...before], [1, 2], 'the old table, left behind at the move');
    assert.deepEqual([...after], [1, 2, 3], 'the new table takes what comes after');
    assert.deepEqual([...quiet.values()], [1, 2, 3]);
  });

  it('clears', () => {
    const churn = new ChurnMap<number, number>();
    for (let i = 0; i < FRESH_AFTER_INSERTS + 3; i++) churn.set(i, i);
    churn.clear();
    assert.equal(churn.size, 0);
    assert.deepEqual([...churn.values()], []);
    churn.set(1, 1);
    assert.deepEqual([...churn.values()], [1]);
  });
});

describe('ChurnSet', () => {
  it('behaves like a Set across many table refreshes: members, size, insertion order', () => {
    const churn = new ChurnSet<number>();
    const reference = new Set<number>();
    for (const [op, member] of operations(FRESH_AFTER_INSERTS * 12)) {
      if (op === 'add') {
        churn.add(member);
        reference.add(member);
      } else {
        assert.equal(churn.delete(member), reference.delete(member));
      }
      assert.equal(churn.size, reference.size);
      if (member % 61 === 0) assert.deepEqual([...churn.values()], [...reference.values()]);
    }
    for (const member of reference) assert.equal(churn.has(member), true);
    assert.equal(churn.has(-1), false);
  });
});
