// The parent's side of the host's wire format: frames cut anywhere must come out whole and in order.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrameReader, HEADER_BYTES, ProtocolViolation, type Frame } from '../../src/host/protocol.js';

function frame(kind: number, id: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32LE(kind, 0);
  header.writeUInt32LE(id, 4);
  header.writeUInt32LE(payload.length, 8);
  return Buffer.concat([header, payload]);
}

const simple = (frames: Frame[]) => frames.map((f) => ({ kind: f.kind, id: f.id, payload: f.payload.toString() }));

describe('FrameReader', () => {
  const stream = Buffer.concat([frame(3, 1, Buffer.from('first')), frame(4, 2, Buffer.alloc(0)), frame(3, 3, Buffer.from('x'.repeat(300)))]);
  const expected = [
    { kind: 3, id: 1, payload: 'first' },
    { kind: 4, id: 2, payload: '' },
    { kind: 3, id: 3, payload: 'x'.repeat(300) },
  ];

  it('reads frames from one chunk', () => {
    assert.deepEqual(simple(new FrameReader(1024).push(stream)), expected);
  });

  it('reads the same frames whatever chunk sizes the stream arrives in', () => {
    for (const size of [1, 2, 3, 7, 15, 16, 17, 31, 64, 100]) {
      const reader = new FrameReader(1024);
      const frames: Frame[] = [];
      for (let at = 0; at < stream.length; at += size) frames.push(...reader.push(stream.subarray(at, at + size)));
      assert.deepEqual(simple(frames), expected, `chunks of ${size} bytes`);
    }
  });

  it('joins a long payload into memory it uses again only once the payload is released', () => {
    const long = (fill: string) => frame(3, 1, Buffer.alloc(200_000, fill));
    const inTwo = (f: Buffer) => [f.subarray(0, 1000), f.subarray(1000)];
    const reader = new FrameReader(1 << 20);
    const [first] = inTwo(long('a')).flatMap((chunk) => reader.push(chunk));
    assert.ok(first && reader.isLent(first.payload));
    // Not released: the next long payload gets other memory, and the first stays as it was.
    const [second] = inTwo(long('b')).flatMap((chunk) => reader.push(chunk));
    assert.ok(second && second.payload.buffer !== first.payload.buffer);
    assert.equal(first.payload.toString(), 'a'.repeat(200_000));
    reader.release(second.payload);
    const [third] = inTwo(long('c')).flatMap((chunk) => reader.push(chunk));
    assert.ok(third && third.payload.buffer === second.payload.buffer);
    assert.equal(third.payload.toString(), 'c'.repeat(200_000));
    // A payload read in place (one chunk) is not the reader's to lend.
    const [whole] = reader.push(long('d'));
    assert.ok(whole && !reader.isLent(whole.payload));
  });

  it('refuses a frame longer than the limit as soon as its header is in', () => {
    const reader = new FrameReader(100);
    assert.throws(() => reader.push(frame(3, 1, Buffer.alloc(101)).subarray(0, HEADER_BYTES)), ProtocolViolation);
  });
});
