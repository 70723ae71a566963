import { crc32 } from 'node:zlib';
import { PostcopyEmuError } from '../io/errors.ts';
import { Rng } from '../kernel/rng.ts';
import { drawZeroSet } from '../memory/guest-memory.ts';
import type { NextMember } from '../memory/skip-list.ts';
import type { Scenario } from '../scenario/schema.ts';
import { MIGRATED_VERSION, fillPage } from './content.ts';
import { crc32Combine, crc32Shift } from './crc32-combine.ts';
import { FrameType, HEADER_BYTES, writeFrameHeader } from './frame.ts';
import { loadAddon } from './uffd.ts';

/**
 * The live source's guest RAM (docs/live.md): every page's bytes in one Buffer, filled before the
 * migration starts, as a real source's RAM exists before it migrates (QEMU sends from guest RAM,
 * it does not make it). Each page is content.ts's (seed, gfn, MIGRATED_VERSION); the scenario's
 * zero pages (`memory.zeroFraction`, `zeroRanges`, drawn as the model draws them) stay zero. Each
 * page's CRC-32 is taken as it is filled, so a frame's CRC comes from the pages' by combination
 * (crc32-combine.ts) and the bytes are not read again until the kernel copies them.
 */
export interface SourceMemory {
  pages: number;
  pageSize: number;
  bytes: Buffer;
  /** zlib crc32 of each page that is not a zero page. */
  crcs: Uint32Array;
  /** The zero pages (sent as ZERO frames, no bytes), or null when there are none. */
  zero: NextMember | null;
  /** crc32Shift(pageSize): appends a page's CRC to a CRC. */
  shift: Uint32Array;
}

/** Allocates and fills the guest's memory; a PostcopyEmuError naming memory.pages when it cannot be had. */
export function createSourceMemory(s: Scenario): SourceMemory {
  const { pages, pageSize } = s.memory;
  let bytes: Buffer;
  try {
    // Zeroed and untouched until filled: the zero pages cost nothing. With the addon, advised for
    // huge pages as QEMU's guest RAM is: with 4 KiB pages, the kernel's first read of each page
    // (the send) cost 2-4 µs more a page here.
    const addon = loadAddon();
    bytes = 'uffd' in addon ? Buffer.from(addon.uffd.ram(pages * pageSize)) : Buffer.alloc(pages * pageSize);
  } catch (e) {
    throw new PostcopyEmuError('memory.pages', `the source cannot allocate its guest memory, ${pages} pages of ${pageSize} bytes: ${(e as Error).message}`);
  }
  const zero = drawZeroSet(pages, s.memory.zeroFraction, new Rng(s.seed, 'zero-pages'), s.memory.zeroRanges);
  const crcs = new Uint32Array(pages);
  for (let g = 0; g < pages; g++) {
    if (zero?.has(g)) continue;
    const page = bytes.subarray(g * pageSize, (g + 1) * pageSize);
    fillPage(s.seed, g, MIGRATED_VERSION, page);
    crcs[g] = crc32(page);
  }
  return { pages, pageSize, bytes, crcs, zero, shift: crc32Shift(pageSize) };
}

/** Bytes of a frame's header and the 8-byte payload prefix (gfn, version or count). */
const HEAD = HEADER_BYTES + 8;

/**
 * `gfns` as frames, as the chunks of one gathered write (writev): one PAGE frame per run of
 * consecutive non-zero pages in the list (the destination places a run at once: range
 * population), its header and prefix in a small buffer and its pages a view of the memory (no
 * copy); one ZERO frame (gfn, count) per run of zero pages. A PAGE frame's CRC is its prefix's
 * combined with its pages'.
 */
export function encodePageFrames(gfns: readonly number[], m: SourceMemory): Buffer[] {
  const zero = m.zero, size = m.pageSize;
  const isZero = (g: number) => zero !== null && zero.has(g);
  const runEnd = (i: number, z: boolean) => {
    let n = 1;
    while (i + n < gfns.length && gfns[i + n] === gfns[i]! + n && isZero(gfns[i + n]!) === z) n++;
    return n;
  };
  // At most one frame a page.
  const heads = Buffer.allocUnsafe(gfns.length * HEAD);
  const chunks: Buffer[] = [];
  for (let i = 0, at = 0; i < gfns.length; at += HEAD) {
    const g = gfns[i]!, z = isZero(g), n = runEnd(i, z);
    heads.writeUInt32BE(g, at + HEADER_BYTES);
    heads.writeUInt32BE(z ? n : MIGRATED_VERSION, at + HEADER_BYTES + 4);
    let crc = crc32(heads.subarray(at + HEADER_BYTES, at + HEAD));
    if (z) {
      writeFrameHeader(heads, at, FrameType.ZERO, 8, crc);
    } else {
      for (let k = 0; k < n; k++) crc = crc32Combine(m.shift, crc, m.crcs[g + k]!);
      writeFrameHeader(heads, at, FrameType.PAGE, 8 + n * size, crc);
    }
    chunks.push(heads.subarray(at, at + HEAD));
    if (!z) chunks.push(m.bytes.subarray(g * size, (g + n) * size));
    i += n;
  }
  return chunks;
}
