import { crc32 } from 'node:zlib';
import { intArg } from '../io/args.ts';
import { PostcopyEmuError } from '../io/errors.ts';

/**
 * Live mode's wire format: a 16-byte big-endian header, then the payload.
 *
 *   0  magic   u32  0x50434c56 ("PCLV")
 *   4  version u8   2 (1 had no recovery frames)
 *   5  type    u8   FrameType
 *   6  flags   u16  0
 *   8  length  u32  payload bytes, ≤ MAX_PAYLOAD
 *  12  crc32   u32  of the payload (node:zlib crc32)
 *
 * TCP is already checksummed; the CRC is here to catch our own bugs (a desynchronised stream, a
 * payload built from the wrong buffer), which would otherwise surface as a wrong page much later.
 */
export const FRAME_MAGIC = 0x50434c56;
export const FRAME_VERSION = 2;
export const HEADER_BYTES = 16;
/** The largest payload: bounds what a decoder buffers for one frame (a 2 MiB huge page fits). */
export const MAX_PAYLOAD = 16 * 1024 * 1024;

/** RECV_BITMAP and RESUME_ACK (version 2) carry postcopy recovery over a new connection. */
/** How long either side waits for the other once a cut link is back, before the run fails. */
export const RECONNECT_GRACE_MS = 10_000;

export enum FrameType { HELLO = 1, PAGE = 2, REQUEST = 3, COMPLETE = 4, VERIFY = 5, ERROR = 6, RECV_BITMAP = 7, RESUME_ACK = 8 }

/** Where a frame sits on its stream: its number (from 0) and the offset of its header's first byte. */
export interface FrameAt {
  index: number;
  offset: number;
}

export interface Frame extends FrameAt {
  type: FrameType;
  /** May be a subarray of a pushed chunk: copy it to keep it past the chunk's life. */
  payload: Buffer;
}

/**
 * A malformed stream or payload. With a position, the message reads
 * `frame <index> at byte <offset>: <what>`; a payload decoder called without one says only what.
 */
export class FrameError extends PostcopyEmuError {
  readonly index: number | undefined;
  readonly offset: number | undefined;

  constructor(readonly what: string, at?: FrameAt) {
    super('frame', at ? `frame ${at.index} at byte ${at.offset}: ${what}` : what);
    this.name = 'FrameError';
    this.index = at?.index;
    this.offset = at?.offset;
  }
}

function isFrameType(t: number): t is FrameType {
  return t >= FrameType.HELLO && t <= FrameType.RESUME_ACK && t % 1 === 0;
}

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

/** One frame as a single Buffer (one socket write). */
export function encodeFrame(type: FrameType, payload: Uint8Array): Buffer {
  if (typeof type !== 'number' || !isFrameType(type)) {
    throw new PostcopyEmuError('encodeFrame.type', `encodeFrame.type: must be a FrameType (1..8), got ${String(type)}`);
  }
  intArg('encodeFrame.payload.length', payload.length, 0, MAX_PAYLOAD);
  const out = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  out.set(payload, HEADER_BYTES);
  writeHeader(out, 0, type, payload.length);
  return out;
}

/** The header of a frame whose payload already sits at `at + HEADER_BYTES` in `out`. */
function writeHeader(out: Buffer, at: number, type: FrameType, length: number): void {
  out.writeUInt32BE(FRAME_MAGIC, at);
  out[at + 4] = FRAME_VERSION;
  out[at + 5] = type;
  out.writeUInt16BE(0, at + 6);
  out.writeUInt32BE(length, at + 8);
  out.writeUInt32BE(crc32(out.subarray(at + HEADER_BYTES, at + HEADER_BYTES + length)), at + 12);
}

/** Bytes of one PAGE frame of a run of `pages` pages of `pageSize` bytes. */
export const pageFrameBytes = (pageSize: number, pages = 1): number => HEADER_BYTES + 8 + pages * pageSize;

/**
 * Writes `gfns` as PAGE frames back to back into one Buffer (one socket write, no per-page
 * allocation), `into` when it is large enough: one frame per run of consecutive pages in the list,
 * so the destination places each run at once (range population). `fill(gfn, out)` writes each
 * page's bytes in place.
 */
export function encodePageFrames(gfns: readonly number[], version: number, pageSize: number, fill: (gfn: number, out: Uint8Array) => void, into?: Buffer): Buffer {
  let runs = 0;
  for (let i = 0; i < gfns.length; i++) if (i === 0 || gfns[i] !== gfns[i - 1]! + 1) runs++;
  const bytes = runs * (HEADER_BYTES + 8) + gfns.length * pageSize;
  const out = into !== undefined && into.length >= bytes ? into.subarray(0, bytes) : Buffer.allocUnsafe(bytes);
  for (let i = 0, at = 0; i < gfns.length;) {
    let n = 1;
    while (i + n < gfns.length && gfns[i + n] === gfns[i]! + n) n++;
    out.writeUInt32BE(gfns[i]!, at + HEADER_BYTES);
    out.writeUInt32BE(version, at + HEADER_BYTES + 4);
    for (let k = 0; k < n; k++) {
      const p = at + HEADER_BYTES + 8 + k * pageSize;
      fill(gfns[i + k]!, out.subarray(p, p + pageSize));
    }
    writeHeader(out, at, FrameType.PAGE, 8 + n * pageSize);
    at += pageFrameBytes(pageSize, n);
    i += n;
  }
  return out;
}

interface Pending {
  type: FrameType;
  length: number;
  crc: number;
  at: FrameAt;
}

/**
 * Splits a byte stream into frames, whatever the chunk boundaries. Chunks are kept in a list and
 * only copied when a header or payload spans chunks, so every byte is copied at most once (no
 * re-concatenation per push). The header is checked as soon as its 16 bytes are in, so a bad
 * length is refused before anything is buffered for it: at most one frame (16 + MAX_PAYLOAD
 * bytes) is ever held. The first error is sticky: the stream has lost its framing, so every
 * later push() and end() throws it again.
 *
 * push() takes ownership of the chunk: payloads may be subarrays of it, so don't reuse it.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  /** chunks[head] is the first with unconsumed bytes; headOff of them are consumed. */
  private head = 0;
  private headOff = 0;
  private buffered = 0;
  /** Stream offset of the first unconsumed byte. */
  private consumed = 0;
  private index = 0;
  private pending: Pending | null = null;
  private failed: FrameError | null = null;

  /** Bytes held for the frame in progress (header already parsed or not). */
  get bufferedBytes(): number {
    return this.buffered + (this.pending ? HEADER_BYTES : 0);
  }

  /** Frames completed so far. */
  get frames(): number {
    return this.index;
  }

  /**
   * Feeds a chunk; returns the frames it completed, in order. Throws FrameError on a bad frame
   * (frames completed earlier in the same chunk go with it: the stream is dead anyway).
   */
  push(chunk: Buffer): Frame[] {
    if (this.failed) throw this.failed;
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const out: Frame[] = [];
    for (;;) {
      if (!this.pending) {
        if (this.buffered < HEADER_BYTES) break;
        const at = { index: this.index, offset: this.consumed };
        this.pending = this.header(this.take(HEADER_BYTES), at);
      }
      const p = this.pending;
      if (this.buffered < p.length) break;
      const payload = this.take(p.length);
      const crc = crc32(payload);
      if (crc !== p.crc) this.fail(`CRC mismatch (header ${hex(p.crc)}, payload ${hex(crc)})`, p.at);
      out.push({ type: p.type, payload, index: p.at.index, offset: p.at.offset });
      this.index++;
      this.pending = null;
    }
    this.trim();
    return out;
  }

  /** The stream has ended: throws FrameError if it stopped inside a frame. */
  end(): void {
    if (this.failed) throw this.failed;
    if (this.pending) this.fail(`truncated stream: ${this.buffered} of ${this.pending.length} payload bytes`, this.pending.at);
    const at = { index: this.index, offset: this.consumed };
    if (this.buffered > 0) this.fail(`truncated stream: ${this.buffered} of ${HEADER_BYTES} header bytes`, at);
  }

  private fail(what: string, at: FrameAt): never {
    this.failed = new FrameError(what, at);
    throw this.failed;
  }

  private header(h: Buffer, at: FrameAt): Pending {
    const magic = h.readUInt32BE(0);
    if (magic !== FRAME_MAGIC) this.fail(`bad magic ${hex(magic)} (expected ${hex(FRAME_MAGIC)})`, at);
    if (h[4] !== FRAME_VERSION) this.fail(`unsupported version ${h[4]} (expected ${FRAME_VERSION})`, at);
    const type = h[5]!;
    if (!isFrameType(type)) this.fail(`unknown type ${type}`, at);
    const flags = h.readUInt16BE(6);
    // No version defines flags: a set one means a peer we don't understand.
    if (flags !== 0) this.fail(`unsupported flags 0x${flags.toString(16).padStart(4, '0')} (expected 0)`, at);
    const length = h.readUInt32BE(8);
    if (length > MAX_PAYLOAD) this.fail(`length ${length} over the bound ${MAX_PAYLOAD}`, at);
    return { type, length, crc: h.readUInt32BE(12), at };
  }

  /** Consumes n ≤ buffered bytes: a subarray when they sit in one chunk, else one copy. */
  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    this.buffered -= n;
    this.consumed += n;
    const first = this.chunks[this.head]!;
    if (first.length - this.headOff >= n) {
      const b = first.subarray(this.headOff, this.headOff + n);
      this.advance(first, n);
      return b;
    }
    const b = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[this.head]!;
      const k = Math.min(n - filled, c.length - this.headOff);
      c.copy(b, filled, this.headOff, this.headOff + k);
      filled += k;
      this.advance(c, k);
    }
    return b;
  }

  private advance(c: Buffer, k: number): void {
    this.headOff += k;
    if (this.headOff === c.length) {
      this.head++;
      this.headOff = 0;
    }
  }

  /** Drops consumed chunks; copies a small leftover out of a big chunk so it doesn't pin it. */
  private trim(): void {
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
      return;
    }
    // Amortised O(1): the list is sliced only once its dead prefix outweighs the live part.
    if (this.head > 32 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
    const c = this.chunks[this.head]!;
    if (this.headOff > 0 && (c.length - this.headOff) * 2 < c.length) {
      this.chunks[this.head] = Buffer.from(c.subarray(this.headOff));
      this.headOff = 0;
    }
  }
}
