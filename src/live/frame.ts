import { crc32 } from 'node:zlib';
import { intArg } from '../io/args.ts';
import { PostcopyEmuError } from '../io/errors.ts';

/**
 * Live mode's wire format: a 16-byte big-endian header, then the payload.
 *
 *   0  magic   u32  0x50434c56 ("PCLV")
 *   4  version u8   4 (1 had no recovery frames, 2 no READY, 3 QEMU's recovery handshake)
 *   5  type    u8   FrameType
 *   6  flags   u16  0
 *   8  length  u32  payload bytes, ≤ MAX_PAYLOAD
 *  12  crc32   u32  of the payload (node:zlib crc32)
 *
 * TCP is already checksummed; the CRC is here to catch our own bugs (a desynchronised stream, a
 * payload built from the wrong buffer), which would otherwise surface as a wrong page much later.
 */
export const FRAME_MAGIC = 0x50434c56;
export const FRAME_VERSION = 4;
export const HEADER_BYTES = 16;
/** The largest payload: bounds what a decoder buffers for one frame (a 2 MiB huge page fits). */
export const MAX_PAYLOAD = 16 * 1024 * 1024;

/** How long either side waits for the other once a cut link is back, before the run fails. */
export const RECONNECT_GRACE_MS = 10_000;

/**
 * Version 2 added RECV_BITMAP and RESUME_ACK (postcopy recovery over a new connection), PREEMPT,
 * the first frame on the destination's preempt connection (QEMU's postcopy-preempt), and ZERO, a
 * run of zero pages sent as its gfn and count (QEMU's RAM_SAVE_FLAG_ZERO, placed with UFFDIO_ZEROPAGE).
 * Version 3 added READY: the destination has its memory and threads (its vCPU threads parked, as
 * QEMU's exist before the switchover), and the source's clock starts.
 * Version 4 runs QEMU's recovery handshake: RECONNECT is the destination's first frame on a new
 * main connection; the source asks for the bitmap with an empty RECV_BITMAP (MIG_CMD_RECV_BITMAP),
 * the destination answers with its bitmap, the source sends RESUME (MIG_CMD_POSTCOPY_RESUME) and
 * the destination RESUME_ACK (MIG_RP_MSG_RESUME_ACK); version 3's destination sent its bitmap
 * unasked and the source answered RESUME_ACK.
 */
export enum FrameType { HELLO = 1, PAGE = 2, REQUEST = 3, COMPLETE = 4, VERIFY = 5, ERROR = 6, RECV_BITMAP = 7, RESUME_ACK = 8, PREEMPT = 9, ZERO = 10, READY = 11, RECONNECT = 12, RESUME = 13 }

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
  return t >= FrameType.HELLO && t <= FrameType.RESUME && t % 1 === 0;
}

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

/** One frame as a single Buffer (one socket write). */
export function encodeFrame(type: FrameType, payload: Uint8Array): Buffer {
  if (typeof type !== 'number' || !isFrameType(type)) {
    throw new PostcopyEmuError('encodeFrame.type', `encodeFrame.type: must be a FrameType (1..${FrameType.RESUME}), got ${String(type)}`);
  }
  intArg('encodeFrame.payload.length', payload.length, 0, MAX_PAYLOAD);
  const out = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  out.set(payload, HEADER_BYTES);
  writeFrameHeader(out, 0, type, payload.length, crc32(payload));
  return out;
}

/**
 * The header of a frame whose payload (`length` bytes, CRC-32 `crc`) follows at `at + HEADER_BYTES`
 * in the same write: in `out` itself, or in the next chunks of a gathered write.
 */
export function writeFrameHeader(out: Buffer, at: number, type: FrameType, length: number, crc: number): void {
  out.writeUInt32BE(FRAME_MAGIC, at);
  out[at + 4] = FRAME_VERSION;
  out[at + 5] = type;
  out.writeUInt16BE(0, at + 6);
  out.writeUInt32BE(length, at + 8);
  out.writeUInt32BE(crc, at + 12);
}

interface Pending {
  type: FrameType;
  length: number;
  crc: number;
  at: FrameAt;
}

/**
 * Splits a byte stream into frames, whatever the chunk boundaries. A frame wholly inside a chunk
 * is returned as a view into it (no copy); the bytes of a frame that spans chunks are copied once,
 * into one assembly buffer the decoder reuses, never into fresh memory (here a first write to a
 * fresh page costs a page fault per 4 KiB; two such buffers take turns, so the tail of a chunk
 * never overwrites a payload returned from the same push). The header is checked as soon as its 16 bytes are in,
 * so a bad length is refused before anything is buffered for it: at most one frame (16 +
 * MAX_PAYLOAD bytes) is ever held. The first error is sticky: the stream has lost its framing, so
 * every later push() and end() throws it again.
 *
 * A payload is valid until the next push() and while its chunk is unchanged: copy it to keep it.
 * The decoder keeps no reference to a chunk after push() returns, so the caller may reuse it.
 */
export class FrameDecoder {
  /** The frame in progress, when it started in an earlier chunk: its first `held` bytes. */
  private assembly: Buffer = Buffer.alloc(0);
  /** The other assembly buffer: it holds the payload a push returned from one, while the tail goes into this. */
  private spare: Buffer = Buffer.alloc(0);
  private held = 0;
  /** Stream offset of the frame in progress's first byte. */
  private consumed = 0;
  private index = 0;
  private pending: Pending | null = null;
  private failed: FrameError | null = null;

  /** Bytes held for the frame in progress (header already parsed or not). */
  get bufferedBytes(): number {
    return this.held;
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
    const out: Frame[] = [];
    let pos = 0;
    if (this.held > 0) {
      // Finish the frame carried over: its header first, then its payload.
      if (!this.pending) {
        pos = this.hold(chunk, pos, HEADER_BYTES);
        if (this.held < HEADER_BYTES) return out;
        this.pending = this.header(this.assembly, this.at());
      }
      const total = HEADER_BYTES + this.pending.length;
      pos = this.hold(chunk, pos, total);
      if (this.held < total) return out;
      out.push(this.complete(this.assembly.subarray(HEADER_BYTES, total)));
      this.held = 0;
      [this.assembly, this.spare] = [this.spare, this.assembly];
    }
    while (chunk.length - pos >= HEADER_BYTES) {
      const p = this.header(chunk.subarray(pos, pos + HEADER_BYTES), this.at());
      if (chunk.length - pos - HEADER_BYTES < p.length) {
        this.pending = p;
        break;
      }
      this.pending = p;
      out.push(this.complete(chunk.subarray(pos + HEADER_BYTES, pos + HEADER_BYTES + p.length)));
      pos += HEADER_BYTES + p.length;
    }
    if (pos < chunk.length) this.hold(chunk, pos, this.pending ? HEADER_BYTES + this.pending.length : HEADER_BYTES);
    return out;
  }

  /** The stream has ended: throws FrameError if it stopped inside a frame. */
  end(): void {
    if (this.failed) throw this.failed;
    if (this.pending) this.fail(`truncated stream: ${this.held - HEADER_BYTES} of ${this.pending.length} payload bytes`, this.pending.at);
    if (this.held > 0) this.fail(`truncated stream: ${this.held} of ${HEADER_BYTES} header bytes`, this.at());
  }

  private at(): FrameAt {
    return { index: this.index, offset: this.consumed };
  }

  /** Copies chunk bytes from `pos` on into the assembly buffer, up to `upTo` held; returns the new pos. */
  private hold(chunk: Buffer, pos: number, upTo: number): number {
    if (this.assembly.length < upTo) {
      // Grown once per larger frame size, then reused.
      const grown = Buffer.allocUnsafe(Math.max(upTo, Math.min(2 * this.assembly.length, HEADER_BYTES + MAX_PAYLOAD)));
      this.assembly.copy(grown, 0, 0, this.held);
      this.assembly = grown;
    }
    const k = Math.min(upTo - this.held, chunk.length - pos);
    chunk.copy(this.assembly, this.held, pos, pos + k);
    this.held += k;
    return pos + k;
  }

  /** The pending frame's payload is all in: check its CRC and move past it. */
  private complete(payload: Buffer): Frame {
    const p = this.pending!;
    const crc = crc32(payload);
    if (crc !== p.crc) this.fail(`CRC mismatch (header ${hex(p.crc)}, payload ${hex(crc)})`, p.at);
    this.pending = null;
    this.index++;
    this.consumed += HEADER_BYTES + p.length;
    return { type: p.type, payload, index: p.at.index, offset: p.at.offset };
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
}
