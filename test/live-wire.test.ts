import { describe, expect, it } from 'vitest';
import { PostcopyEmuError } from '../src/io/errors.ts';
import { READ_BYTES } from '../src/live/live.ts';
import { Wire } from '../src/live/wire.ts';

describe('Wire (live --wire: the destination reads at a wire\'s rate)', () => {
  it('reads a millisecond of the wire at a time, within 16 KiB … the read buffer', () => {
    expect(new Wire(2000).readBytes).toBe(250_000);
    expect(new Wire(100).readBytes).toBe(16 * 1024);
    expect(new Wire(100_000).readBytes).toBe(READ_BYTES);
  });

  it('pauses the next read until the wire has delivered this one', () => {
    // 8 Mbit/s: 1,000 bytes a millisecond.
    const w = new Wire(8);
    expect(w.read(4000, 100)).toBe(4);
    // Read on time after the pause: the next 4 ms follow on.
    expect(w.read(4000, 104)).toBe(4);
  });

  it('catches up after a timer that fired late, and never pauses for less than a millisecond', () => {
    const w = new Wire(8);
    expect(w.read(4000, 0)).toBe(4);
    // The timer fired 3 ms late: the wire went on meanwhile, so the next read waits only 1 ms.
    expect(w.read(4000, 7)).toBe(1);
    // 6 ms late: the wire has delivered 6 ms more meanwhile; the reads take it at once, then wait again.
    expect(w.read(500, 14)).toBe(0);
    expect(w.read(2500, 14)).toBe(0);
    expect(w.read(3000, 14)).toBe(0);
    expect(w.read(4000, 14)).toBe(4);
  });

  it('starts afresh after an idle spell (no pause before it: nothing was there to read)', () => {
    const w = new Wire(8);
    expect(w.read(500, 0)).toBe(0);
    // 50 ms with nothing to read: the wire idled, it does not bank the time.
    expect(w.read(4000, 50)).toBe(4);
    expect(w.read(200, 54)).toBe(0);
    expect(w.read(4000, 60)).toBe(4);
  });

  it('refuses a rate outside 0.001 … 1e7 Mbit/s', () => {
    expect(() => new Wire(0)).toThrow(PostcopyEmuError);
    expect(() => new Wire(0)).toThrow('Wire.mbps');
  });
});
