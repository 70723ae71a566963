import fc from 'fast-check';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { PostcopyEmuError } from '../src/io/errors.ts';
import { fillPage } from '../src/live/content.ts';
import { FrameDecoder, FrameType, HEADER_BYTES, encodeFrame, type Frame } from '../src/live/frame.ts';
import { decodePage, decodeZero, encodePage } from '../src/live/payload.ts';
import { createSourceMemory, encodePageFrames } from '../src/live/source-memory.ts';
import { parseScenario } from '../src/scenario/validate.ts';
import { thrown } from './throws.ts';

const SIZE = 512;
/** 16 pages of SIZE bytes, seed 5; pages 3 and 4 (a zero range) and 10 are zero pages. */
const memory = () => createSourceMemory(parseScenario({ seed: 5, memory: { pages: 16, pageSize: SIZE, zeroRanges: [{ start: 3, count: 2 }, { start: 10, count: 1 }] } }));

/** The frames of one gathered write, decoded (CRCs checked). */
function decoded(chunks: Buffer[]): Frame[] {
  const d = new FrameDecoder();
  const frames = d.push(Buffer.concat(chunks));
  d.end();
  return frames;
}

describe('the source\'s memory', () => {
  it('holds every page\'s content before the migration, the zero pages zero, with each page\'s CRC-32', () => {
    const m = memory();
    expect([m.pages, m.pageSize, m.bytes.length, m.zero?.count()]).toEqual([16, SIZE, 16 * SIZE, 3]);
    const want = Buffer.alloc(SIZE);
    for (let g = 0; g < 16; g++) {
      const page = m.bytes.subarray(g * SIZE, (g + 1) * SIZE);
      if (g === 3 || g === 4 || g === 10) {
        expect(page.every((b) => b === 0), `page ${g}`).toBe(true);
        continue;
      }
      fillPage(5, g, 0, want);
      expect(page.equals(want), `page ${g}`).toBe(true);
      expect(m.crcs[g], `page ${g}`).toBe(crc32(want));
    }
  });

  it('refuses a guest it cannot allocate with an error naming memory.pages, not an out-of-memory crash', () => {
    const s = parseScenario({ memory: { pages: 2 ** 20, pageSize: 2 ** 30 } });
    const e = thrown(PostcopyEmuError, () => createSourceMemory(s));
    expect(e.field).toBe('memory.pages');
    expect(e.message).toMatch(/^the source cannot allocate its guest memory, 1048576 pages of 1073741824 bytes: /);
  });
});

describe('encodePageFrames', () => {
  it('writes each run as one PAGE frame, byte for byte the frame encodeFrame makes, its pages a view of the memory', () => {
    const m = memory();
    const chunks = encodePageFrames([5, 6, 7, 12, 0], m);
    // Header and prefix, then the run's pages, per frame.
    expect(chunks.map((c) => c.length)).toEqual([HEADER_BYTES + 8, 3 * SIZE, HEADER_BYTES + 8, SIZE, HEADER_BYTES + 8, SIZE]);
    expect(chunks[1]!.buffer).toBe(m.bytes.buffer);
    expect(chunks[1]!.byteOffset - m.bytes.byteOffset).toBe(5 * SIZE);
    const frame = (g: number, n: number) => encodeFrame(FrameType.PAGE, encodePage(g, 0, m.bytes.subarray(g * SIZE, (g + n) * SIZE)));
    expect(Buffer.concat(chunks).equals(Buffer.concat([frame(5, 3), frame(12, 1), frame(0, 1)]))).toBe(true);
  });

  it('sends a run of zero pages as one ZERO frame: gfn and count, no bytes', () => {
    const m = memory();
    // 2 is not a zero page, 3 and 4 are, 5 is not, 10 is.
    const frames = decoded(encodePageFrames([2, 3, 4, 5, 10], m));
    expect(frames.map((f) => f.type)).toEqual([FrameType.PAGE, FrameType.ZERO, FrameType.PAGE, FrameType.ZERO]);
    expect(decodeZero(frames[1]!.payload)).toEqual({ gfn: 3, count: 2 });
    expect(decodePage(frames[2]!.payload, SIZE).gfn).toBe(5);
    expect(decodeZero(frames[3]!.payload)).toEqual({ gfn: 10, count: 1 });
  });

  it('decodes, CRC checked, to the memory\'s pages for any list of distinct gfns', () => {
    const m = memory();
    fc.assert(fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 15 }), { minLength: 1, maxLength: 16 }), (gfns) => {
      const got: number[] = [];
      for (const f of decoded(encodePageFrames(gfns, m))) {
        if (f.type === FrameType.ZERO) {
          const { gfn, count } = decodeZero(f.payload);
          for (let k = 0; k < count; k++) got.push(gfn + k);
          continue;
        }
        const { gfn, version, bytes } = decodePage(f.payload, SIZE);
        expect(version).toBe(0);
        expect(bytes.equals(m.bytes.subarray(gfn * SIZE, gfn * SIZE + bytes.length))).toBe(true);
        for (let k = 0; k < bytes.length / SIZE; k++) got.push(gfn + k);
      }
      expect(got).toEqual(gfns);
    }), { numRuns: 200, seed: 14 });
  });
});
