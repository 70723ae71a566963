import { describe, expect, it } from 'vitest';
import { Link } from '../src/link/link.ts';
import { pageDataBytes } from '../src/stream/records.ts';
import type { LinkParams } from '../src/scenario/schema.ts';

function params(over: Partial<LinkParams> = {}): LinkParams {
  return {
    rateMbps: 1000,
    latencyNs: 50_000,
    sendBufferBytes: 100_000,
    receiveBufferBytes: 200_000,
    mtuBytes: 1500,
    delayedAckNs: 40_000_000,
    frameOverheadBytes: 38,
    ipTcpHeaderBytes: 52,
    ...over,
  };
}

// 64 pages of 4096 bytes plus an 8-byte record header, an 8-byte list header and 64 u64 pfns.
const PAGE_DATA_64 = 8 + 8 + 64 * 8 + 64 * 4096; // 262672
// MSS 1448: 262672 / 1448 = 181.4 → 182 segments of 52 + 38 = 90 overhead bytes each.
const PAGE_DATA_64_WIRE = 262_672 + 182 * 90; // 279052
// 1000 Mbit/s = 8 ns per byte.
const PAGE_DATA_64_NS = 279_052 * 8; // 2232416

describe('Link sizes and serialisation', () => {
  it('wireBytes adds one header + framing per MSS-sized segment', () => {
    const l = new Link(params());
    expect(l.wireBytes(1448)).toBe(1538);
    expect(l.wireBytes(1449)).toBe(1449 + 180);
    expect(l.wireBytes(1)).toBe(91);
    expect(l.wireBytes(0)).toBe(0);
    expect(l.wireBytes(2896)).toBe(2896 + 180);
    expect(l.wireBytes(2897)).toBe(2897 + 270);
  });

  it('serialiseNs of a 64-page PAGE_DATA record matches the hand computation', () => {
    const l = new Link(params());
    expect(pageDataBytes(64, 4096)).toBe(PAGE_DATA_64);
    expect(PAGE_DATA_64).toBe(262_672);
    expect(l.wireBytes(PAGE_DATA_64)).toBe(PAGE_DATA_64_WIRE);
    expect(l.serialiseNs(PAGE_DATA_64)).toBe(PAGE_DATA_64_NS);
    expect(PAGE_DATA_64_NS).toBe(2_232_416);
  });

  it('serialiseNs scales with the rate and rounds up to whole ns', () => {
    expect(new Link(params({ rateMbps: 10_000 })).serialiseNs(1448)).toBe(Math.ceil(1538 * 0.8)); // 1231
    expect(new Link(params({ rateMbps: 10_000 })).serialiseNs(1448)).toBe(1231);
    // 3 Mbit/s: 8000/3 ns per byte; 1090 wire bytes → 2906666.67 → 2906667.
    expect(new Link(params({ rateMbps: 3 })).serialiseNs(1000)).toBe(2_906_667);
  });

  it('a smaller MTU means more segments', () => {
    const l = new Link(params({ mtuBytes: 576 })); // MSS 524
    expect(l.wireBytes(1448)).toBe(1448 + 3 * 90);
  });
});

describe('Link send', () => {
  it('arrival = start + serialisation + latency', () => {
    const l = new Link(params());
    expect(l.send(1000, PAGE_DATA_64)).toBe(1000 + PAGE_DATA_64_NS + 50_000);
    expect(l.records).toBe(1);
    expect(l.bytesPayload).toBe(PAGE_DATA_64);
    expect(l.bytesOnWire).toBe(PAGE_DATA_64_WIRE);
    expect(l.unread).toBe(PAGE_DATA_64);
  });

  it('is FIFO: a record sent at the same time waits for the first one’s serialisation', () => {
    const l = new Link(params());
    const first = l.send(0, PAGE_DATA_64);
    const second = l.send(0, 1448);
    expect(first).toBe(2_232_416 + 50_000);
    expect(second).toBe(2_232_416 + 1538 * 8 + 50_000);
    expect(second - first).toBe(l.serialiseNs(1448));
    // Even a tiny record is stuck behind the big one (head-of-line blocking).
    const third = l.send(10, 1);
    expect(third).toBe(2_232_416 + 1538 * 8 + 91 * 8 + 50_000);
    expect(l.records).toBe(3);
    expect(l.bytesPayload).toBe(PAGE_DATA_64 + 1448 + 1);
    expect(l.bytesOnWire).toBe(PAGE_DATA_64_WIRE + 1538 + 91);
  });

  it('an idle wire starts sending immediately', () => {
    const l = new Link(params());
    l.send(0, 1448); // wire free at 12304
    expect(l.send(1_000_000, 1448)).toBe(1_000_000 + 12_304 + 50_000);
  });

  it('backlogBytes reports bytes not yet on the wire', () => {
    const l = new Link(params());
    l.send(0, PAGE_DATA_64);
    expect(l.backlogBytes(0)).toBe(PAGE_DATA_64_WIRE);
    expect(l.backlogBytes(PAGE_DATA_64_NS - 800)).toBe(100);
    expect(l.backlogBytes(PAGE_DATA_64_NS)).toBe(0);
    expect(l.backlogBytes(PAGE_DATA_64_NS + 1_000_000)).toBe(0);
  });
});

describe('Link send buffer and flow control', () => {
  it('writableAt waits until no more than the send buffer is queued', () => {
    const l = new Link(params({ sendBufferBytes: 100_000 })); // 800000 ns of wire time
    expect(l.writableAt(123)).toBe(123);
    l.send(0, PAGE_DATA_64); // wire busy until 2232416
    expect(l.writableAt(0)).toBe(2_232_416 - 800_000);
    expect(l.writableAt(1_000_000)).toBe(1_432_416);
    expect(l.writableAt(2_000_000)).toBe(2_000_000);
    // At the writable time exactly the send buffer's worth is still waiting.
    expect(l.backlogBytes(l.writableAt(0))).toBe(100_000);
  });

  it('with no send buffer a write waits for the wire to drain', () => {
    const l = new Link(params({ sendBufferBytes: 0 }));
    l.send(0, PAGE_DATA_64);
    expect(l.writableAt(0)).toBe(PAGE_DATA_64_NS);
    expect(l.writableAt(PAGE_DATA_64_NS + 5)).toBe(PAGE_DATA_64_NS + 5);
  });

  it('windowOpen closes when unread exceeds both buffers and reopens on consume', () => {
    const l = new Link(params({ sendBufferBytes: 1000, receiveBufferBytes: 2000 }));
    expect(l.windowOpen).toBe(true);
    l.send(0, 2500);
    expect(l.unread).toBe(2500);
    expect(l.windowOpen).toBe(true);
    l.send(0, 500);
    expect(l.unread).toBe(3000);
    expect(l.windowOpen).toBe(true); // exactly both buffers: still open
    l.send(0, 1);
    expect(l.unread).toBe(3001);
    expect(l.windowOpen).toBe(false);
    l.consume(1);
    expect(l.unread).toBe(3000);
    expect(l.windowOpen).toBe(true);
    l.consume(2500);
    l.consume(500);
    expect(l.unread).toBe(0);
    expect(l.windowOpen).toBe(true);
  });
});
