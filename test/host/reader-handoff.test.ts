// Calls the host's reader runs itself with a watching parent (docs/host-protocol.md, rule 7): it says
// in READER_AWAY whether the call is quick (the parent then wakes the standby only if that trip away
// still lasts after a timer) or slow (at once), and frames nobody wakes the standby for wait for it.
// Driven frame by frame; this test plays the parent.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CallMarkers } from '../helpers/markers.js';
import { ReaderAway } from '../../src/host/protocol.js';
import { type RawHost, concurrencyHosts } from '../helpers/raw-host.js';

interface Output {
  seq: number;
  order: number;
  max_inflight: number;
  on_main?: boolean;
  batch?: boolean;
}
const output = (text: string | number | undefined) => (JSON.parse(String(text)) as { output: Output }).output;

describe('host: calls on the reader with a watching parent', { skip: process.platform !== 'linux' ? 'the lane is Linux only' : false }, () => {
  const startHost = concurrencyHosts('reader-handoff');
  const start = async (): Promise<RawHost> => {
    const host = await startHost();
    host.watchReader();
    await host.configure(2);
    return host;
  };

  it('runs a quick call on the reader, says so, and leaves a frame nobody wakes the standby for to the reader', async () => {
    const host = await start();
    const marks = new CallMarkers();
    // A plain EXECUTE, the last (only) frame read: the reader keeps it, as no call has been slow yet.
    await host.execute(1, { seq: 1, started: marks.started(1), until: marks.until, report_thread: 1 });
    await marks.waitStarted(1);
    assert.equal(host.readerAway & 3, ReaderAway.QUICK_CALL);
    // No byte on fd 5 (the parent's timer has not fired yet): the frame waits for the reader.
    await host.execute(2, { seq: 2, ms: 1, report_thread: 1 });
    marks.release();
    const first = await host.next();
    assert.deepEqual([first.kind, first.id], ['RESULT', 1]);
    assert.equal(output(first.value).on_main, true, 'the reader ran the call itself');
    const second = await host.next();
    assert.deepEqual([second.kind, second.id], ['RESULT', 2]);
    assert.equal(output(second.value).order, 1, 'it entered the plugin only after the first had');
    assert.equal(host.readerAway & 3, ReaderAway.HOME);
  });

  it('lets the standby take a frame from behind a quick call when the parent wakes it for the same trip away', async () => {
    const host = await start();
    const marks = new CallMarkers();
    await host.execute(1, { seq: 1, started: marks.started(1), until: marks.until, report_thread: 1 });
    await marks.waitStarted(1);
    const trip = host.readerAway;
    assert.equal(trip & 3, ReaderAway.QUICK_CALL);
    await host.execute(2, { seq: 2, ms: 1, report_thread: 1 });
    // As HostProcess's timer does when the word still reads the same trip.
    assert.equal(host.readerAway, trip);
    host.wakeStandby();
    const second = await host.next();
    assert.deepEqual([second.kind, second.id], ['RESULT', 2]);
    assert.equal(output(second.value).on_main, false, 'queued for a worker by the standby');
    marks.release();
    const first = await host.next();
    assert.deepEqual([first.kind, first.id], ['RESULT', 1]);
    assert.equal(output(first.value).on_main, true);
  });

  it('after a slow call, says the next is slow, so the parent wakes the standby at once', async () => {
    const host = await start();
    const marks = new CallMarkers();
    // One call of 5 ms makes the host's recent call time far longer than a quick call's.
    await host.execute(1, { seq: 1, ms: 5 });
    assert.equal((await host.next()).id, 1);
    await host.execute(2, { seq: 2, started: marks.started(2), until: marks.until, report_thread: 1 });
    await marks.waitStarted(2);
    assert.equal(host.readerAway & 3, ReaderAway.SLOW_CALL, 'the reader runs a slow call and says so');
    // As HostProcess does after a tick's frames when READER_AWAY is set.
    await host.execute(3, { seq: 3, ms: 1, report_thread: 1 });
    host.wakeStandby();
    const third = await host.next();
    assert.deepEqual([third.kind, third.id], ['RESULT', 3]);
    assert.equal(output(third.value).on_main, false);
    marks.release();
    const second = await host.next();
    assert.deepEqual([second.kind, second.id], ['RESULT', 2]);
    assert.equal(output(second.value).on_main, true);
    assert.equal(host.readerAway & 3, ReaderAway.HOME, 'back on fd 3');
  });

  it("makes its threads SCHED_BATCH while the parent's BATCH word says so, and SCHED_OTHER again after", async () => {
    const host = await start();
    const batchOf = async (id: number): Promise<boolean | undefined> => {
      await host.execute(id, { seq: id, ms: 0, report_thread: 1 });
      const frame = await host.next();
      assert.deepEqual([frame.kind, frame.id], ['RESULT', id]);
      return output(frame.value).batch;
    };
    assert.equal(await batchOf(1), false);
    host.setBatch(true);
    assert.equal(await batchOf(2), true);
    host.setBatch(false);
    assert.equal(await batchOf(3), false);
  });
});
