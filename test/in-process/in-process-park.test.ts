// In-process calls on a loaded machine: a lone call's JS thread sleeps until the pump's worker wakes it (pump_park),
// instead of polling a core away from that worker or paying the event loop's wake-up.
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { ErrorCode, PluginLoader, type NativePluginTrait, type PluginLoaderOptions } from '../../src/index.js';
import { spinBudget, spinSettings } from '../../src/abi/spin-budget.js';
import { rejectsWithCode } from '../helpers/assertions.js';
import { buildFixtures, tempDir } from '../helpers/fixtures.js';

const ctx = (input: Record<string, unknown>) => ({ input: input as never, workspace_root: null, config: {} });

// Parking is Linux-only (a futex); elsewhere a lone call on a loaded machine takes koffi's async path.
describe('in-process calls with no core free to poll on', { skip: process.platform !== 'linux' && 'pump_park waits on a Linux futex' }, () => {
  let root: string;
  let dirs: Record<string, string>;
  const mayPoll = spinBudget.mayPollEventLoop;
  const open: NativePluginTrait[] = [];
  const load = async (key: string, options: PluginLoaderOptions): Promise<NativePluginTrait> => {
    const plugin = await new PluginLoader({ pluginsDirs: [root], defaultDirs: false, readConfig: false, isolation: 'none', ...options }).loadPlugin(dirs[key] as string);
    open.push(plugin);
    return plugin;
  };

  before(async () => {
    // The machine as the spin budget sees it beside a busy neighbour: no core left for the event loop to poll on.
    spinBudget.mayPollEventLoop = () => false;
    root = tempDir();
    dirs = await buildFixtures(root, [
      { key: 'serial', source: 'concurrency', name: 'serial' },
      { key: 'parallel', source: 'concurrency', name: 'parallel', defines: { THREAD_SAFE: '1' } },
    ]);
  });

  after(async () => {
    spinBudget.mayPollEventLoop = mayPoll;
    await Promise.all(open.map((plugin) => plugin.close()));
  });

  it('waits for a lone call asleep: its result comes before the event loop turns again', async () => {
    // A window beyond the call (a park lasts 10 ms at most), so the park ends with the result even on a slow machine.
    const plugin = await load('serial', { pollMicros: 10_000_000 });
    for (let seq = 0; seq < 3; seq++) {
      const order: string[] = [];
      // The call sleeps 2 ms: koffi's async path (or a park that gave up) would let the turn below run first.
      const call = plugin.execute(ctx({ us: 2000, seq })).then((result) => {
        order.push('result');
        return result;
      });
      const turn = nextTurn().then(() => order.push('turn'));
      const result = await call;
      await turn;
      assert.equal((result.output as { seq: number }).seq, seq);
      assert.deepEqual(order, ['result', 'turn']);
      // A park of over 1 ms lets the next call park only after the loop has turned once more.
      await nextTurn();
    }
  });

  it('hands over the result of a call that outlasts the park, once it returns', async () => {
    const plugin = await load('serial', { pollMicros: 1000 });
    const dir = tempDir();
    const [until, started] = [path.join(dir, 'until'), path.join(dir, 'started')];
    let released = false;
    const call = plugin.execute(ctx({ until, started, seq: 7 })).then((result) => {
      assert.equal(released, true, 'no result before the call was let go');
      return result;
    });
    // The park (1 ms) is over once the loop turns; the call runs on until the file exists.
    while (!existsSync(started)) await nextTurn();
    await nextTurn();
    released = true;
    writeFileSync(until, '');
    assert.equal(((await call).output as { seq: number }).seq, 7);
  });

  it('lets the event loop turn between parks: a serial caller does not hold its timers and I/O back', async () => {
    const plugin = await load('serial', { pollMicros: 10_000_000 });
    // Each result is handed over inside a park, and the caller's next call comes in a microtask after it.
    let done = false;
    let turns = 0;
    const count = (): void => {
      turns++;
      if (!done) setImmediate(count);
    };
    setImmediate(count);
    for (let seq = 0; seq < 1000; seq++) await plugin.execute(ctx({ us: 20, seq }));
    done = true;
    // 1000 calls of 20 µs or more spend over 20 ms parked; the loop turns once a park has held it 1 ms.
    assert.ok(turns >= 5, `the loop turned ${turns} times during 1000 parked calls`);
  });

  it("keeps a parked call's own timeout: the park ends at the call's deadline", async () => {
    const plugin = await load('serial', { pollMicros: 10_000_000 });
    // A 6 ms call with a 2 ms timeout: a park that outlasted the deadline would hand over its result as a success.
    await rejectsWithCode(plugin.execute(ctx({ us: 6000 }), { timeoutMs: 2 }), ErrorCode.TIMEOUT);
  });

  it('loses no result when calls end around the moment a park gives up', async () => {
    const plugin = await load('serial', { pollMicros: 100 });
    // Calls of 0-200 µs against a 100 µs park: some end just before the park gives up, some just after.
    for (let seq = 0; seq < 400; seq++) {
      const result = await plugin.execute(ctx({ us: (seq * 37) % 200, seq }));
      assert.equal((result.output as { seq: number }).seq, seq);
    }
  });

  /** Whether a call made now (by `start`) parks: a parked call's result comes before the next loop turn. */
  async function firstEvent(start: () => Promise<unknown>[]): Promise<string[]> {
    const order: string[] = [];
    const calls = start().map((call, i) => call.then(() => order.push(`result ${i}`)));
    await nextTurn();
    order.push('turn');
    await Promise.all(calls);
    return order;
  }

  it('does not park for calls made together in one tick', async () => {
    const plugin = await load('parallel', { pollMicros: 10_000_000, maxConcurrency: 2 });
    // Calls of 200 ms: the loop must turn long before they end, however slow the machine (a sanitizer
    // build, say). A park (10 ms at most) would end before them too, so this checks that nothing holds
    // the loop for a whole call; a park within those 10 ms is not seen without a clock.
    const order = await firstEvent(() => [0, 1].map((seq) => plugin.execute(ctx({ us: 200_000, seq }))));
    assert.equal(order[0], 'turn', order.join(', '));
  });

  it('does not park while a call of another plugin is in flight', async () => {
    const [waiting, lone] = [await load('serial', { pollMicros: 10_000_000 }), await load('parallel', { pollMicros: 10_000_000, maxConcurrency: 2 })];
    const dir = tempDir();
    const [until, started] = [path.join(dir, 'until'), path.join(dir, 'started')];
    const other = waiting.execute(ctx({ until, started }));
    while (!existsSync(started)) await nextTurn();
    const order = await firstEvent(() => [lone.execute(ctx({ us: 200_000 }))]);
    assert.deepEqual(order, ['turn', 'result 0']);
    writeFileSync(until, '');
    await other;
  });

  for (const [key, maxConcurrency, what] of [
    ['serial', 2, 'a plugin that is not thread-safe'],
    ['parallel', 1, 'a thread-safe plugin with maxConcurrency 1'],
  ] as const) {
  it(`runs the lone call nobody parks for of ${what} on koffi's path, and lets calls that come meanwhile wait for it: never two at once, in order`, async () => {
    // Parking off (read when the pump starts): with no core to poll on either, a lone call takes koffi's async path.
    spinSettings.park = false;
    let plugin: NativePluginTrait;
    try {
      plugin = await load(key, { pollMicros: 200, maxConcurrency });
    } finally {
      spinSettings.park = true;
    }
    for (let round = 0; round < 3; round++) {
      // The first call finds the plugin idle (koffi's path, every slot held); the rest come while it runs (the pump).
      const results = await Promise.all([0, 1, 2, 3, 4].map((seq) => plugin.execute(ctx({ us: 2000, seq }))));
      const outputs = results.map((r) => r.output as { seq: number; order: number; max_inflight: number });
      assert.deepEqual(outputs.map((o) => o.seq), [0, 1, 2, 3, 4]);
      assert.ok(outputs.every((o) => o.max_inflight === 1), `never two calls at once: ${JSON.stringify(outputs)}`);
      const orders = outputs.map((o) => o.order);
      assert.deepEqual(orders, [...orders].sort((a, b) => a - b), 'they ran in the order they were made');
    }
  });
  }
});
