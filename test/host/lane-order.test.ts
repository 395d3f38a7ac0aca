// The host's ordering rules between frames on fd 3 and posts in the shared lane (docs/host-protocol.md,
// rule 3), driven frame by frame: CONFIGURE and CANCEL raced against posts, and REQ_AFTER both ways.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CallMarkers } from '../helpers/markers.js';
import { SHARED_WAKE_FRAME, cancelFrame } from '../../src/host/protocol.js';
import { RawHost, type SeenFrame, concurrencyHosts } from '../helpers/raw-host.js';

// The concurrency fixture answers {"seq", "order" (how many calls entered before it), "max_inflight"}.
const output = (text: string | number | undefined) => (JSON.parse(String(text)) as { output: { seq: number; order: number; max_inflight: number } }).output;

describe('host: frames and shared-lane posts', { skip: process.platform !== 'linux' ? 'the lane is Linux only' : false }, () => {
  const start = concurrencyHosts('lane-order');

  it('holds a post until every frame written before it is handled (REQ_AFTER ahead of what arrived)', async () => {
    const host = await start();
    // The post counts a wake-up, a CANCEL and an EXECUTE that this test writes only afterwards.
    const execute = Buffer.byteLength(JSON.stringify({ input: { seq: 1, ms: 1 }, workspace_root: null, config: {} })) + 16;
    host.post(2, { seq: 2, ms: 1 }, host.bytesSent + 16 + 16 + execute);
    host.sharedWake();
    host.cancel(99);
    // The CANCEL's answer means the host has woken, looked at the lane and read on past it.
    assert.deepEqual(await host.next(), { kind: 'CANCEL_ACK', id: 99, value: 1 });
    host.execute(1, { seq: 1, ms: 1 });
    const first = await host.next();
    assert.equal(first.kind, 'RESULT');
    assert.equal(output(first.value).order, 0, 'the frame written before the post ran first');
    assert.deepEqual(await host.next(), { kind: 'SHARED_RESULT', id: 2 });
    assert.equal(output(host.laneResult(2)).order, 1);
  });

  it('takes a post before frames written after it', async () => {
    const host = await start();
    await host.hostAsleep();
    host.post(1, { seq: 1, ms: 1 });
    // As HostProcess does: the host sleeps on fd 3, so wake it there; a later call leaves in the same write.
    host.send(SHARED_WAKE_FRAME, RawHost.executeFrame(2, { seq: 2, ms: 1 }));
    const frames: SeenFrame[] = [await host.next(), await host.next()];
    assert.deepEqual(frames[0], { kind: 'SHARED_RESULT', id: 1 });
    assert.equal(output(host.laneResult(1)).order, 0, 'the post ran first');
    assert.equal(frames[1]?.kind, 'RESULT');
    assert.equal(output(frames[1]?.value).order, 1);
  });

  it('takes a post before a frame that arrived while the polling host looked away from the lane', async () => {
    const host = await start();
    await host.hostAsleep();
    // With a lease the reader polls after its next frame; the gate holds its first read, made just after
    // a look at the lane that found nothing: the moment a post and a frame can both slip in.
    host.leaseSpin(1000);
    await host.holdNextPoll();
    await host.cancel(99);
    assert.deepEqual(await host.next(), { kind: 'CANCEL_ACK', id: 99, value: 1 });
    await host.held();
    // As HostProcess does while HOST_POLLING is 1: post with no SHARED_WAKE; a call made next goes on fd 3.
    assert.equal(host.hostPolling, true);
    host.post(1, { seq: 1, ms: 1 });
    await host.execute(2, { seq: 2, ms: 1 });
    host.release();
    const frames: SeenFrame[] = [await host.next(), await host.next()];
    assert.deepEqual(frames[0], { kind: 'SHARED_RESULT', id: 1 }, 'the post went before the frame written after it');
    assert.equal(output(host.laneResult(1)).order, 0);
    assert.equal(frames[1]?.kind, 'RESULT');
    assert.equal(output(frames[1]?.value).order, 1);
  });

  it('has the standby queue a post it finds due before the frames it reads for the reader', async () => {
    const host = await start();
    const marks = new CallMarkers();
    await host.configure(2);
    // A post runs on the reader, held in the plugin: the standby reads fd 3 meanwhile.
    host.post(1, { seq: 1, started: marks.started(1), until: marks.until });
    await host.sharedWake();
    await marks.waitStarted(1);
    // The parent posts again only once that call has answered, in the instant before the reader is back
    // on fd 3; the held call stretches that instant. The reader took the first post asleep, so this one is
    // woken on fd 3, and a call made next follows it there, with a byte for the standby.
    assert.equal(host.hostPolling, false);
    host.post(2, { seq: 2, ms: 1 });
    await host.send(SHARED_WAKE_FRAME, RawHost.executeFrame(3, { seq: 3, ms: 1 }));
    host.wakeStandby();
    // The held call keeps one of the two slots, so queued calls reach the plugin one at a time, in queue order.
    const first = await host.next();
    assert.deepEqual([first.kind, first.id], ['RESULT', 2], 'the post went before the frame written after it');
    assert.equal(output(first.value).order, 1);
    const second = await host.next();
    assert.deepEqual([second.kind, second.id], ['RESULT', 3]);
    assert.equal(output(second.value).order, 2);
    marks.release();
    assert.deepEqual(await host.next(), { kind: 'SHARED_RESULT', id: 1 });
  });

  it('handles a CONFIGURE written before a post first, even when the post is seen before the frame arrives', async () => {
    const host = await start();
    const marks = new CallMarkers();
    // REQ_AFTER counts a wake-up, a CANCEL and the CONFIGURE (16 + 4 bytes) still to be written.
    host.post(1, { seq: 1, started: marks.started(1), until: marks.until }, host.bytesSent + 16 + 16 + 20);
    host.sharedWake();
    host.cancel(99);
    // Taken too early, the post would start (and hold the host) before the CANCEL is answered.
    const first = await Promise.race([host.next(), marks.waitStarted(1).then(() => 'started' as const)]);
    if (first === 'started') marks.release();
    assert.deepEqual(first, { kind: 'CANCEL_ACK', id: 99, value: 1 }, 'the host read on without taking the post');
    await host.configure(2);
    await marks.waitStarted(1);
    // With the pool up, the post runs alone on the reader and this call, sent once it has started (else the
    // two race into the plugin), on a worker beside it.
    await host.execute(2, { seq: 2, ms: 1 });
    host.wakeStandby();
    const beside = await host.next();
    assert.equal(beside.kind, 'RESULT');
    assert.deepEqual(output(beside.value), { seq: 2, order: 1, max_inflight: 2 }, 'the post waited for CONFIGURE and then ran on the pooled host');
    marks.release();
    assert.deepEqual(await host.next(), { kind: 'SHARED_RESULT', id: 1 });
    assert.equal(output(host.laneResult(1)).order, 0);
  });

  it('withdraws a post that had to queue when a CANCEL for it follows', async () => {
    const host = await start();
    const marks = new CallMarkers();
    host.configure(2);
    host.execute(1, { seq: 1, started: marks.started(1), until: marks.until });
    host.execute(2, { seq: 2, started: marks.started(2), until: marks.until });
    await marks.waitStarted(1, 2);
    // Both workers are held: the post can only queue, and the CANCEL written after it must find it there.
    await host.hostAsleep();
    host.post(3, { seq: 3, ms: 1 });
    host.send(SHARED_WAKE_FRAME, cancelFrame(3));
    assert.deepEqual(await host.next(), { kind: 'CANCEL_ACK', id: 3, value: 0 }, 'dropped, never ran');
    marks.release();
    const held = [await host.next(), await host.next()].map((f) => output(f.value).seq).sort();
    assert.deepEqual(held, [1, 2]);
    host.execute(4, { seq: 4, ms: 1 });
    const last = await host.next();
    assert.equal(output(last.value).order, 2, 'the withdrawn post never entered the plugin');
  });
});
