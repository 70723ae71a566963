import { existsSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { argCheck, intArg, objArg, pageSizeArg } from '../io/args.ts';
import { PostcopyEmuError } from '../io/errors.ts';
import { packageRoot } from '../io/package.ts';
import { readBounded } from '../io/read.ts';

/**
 * The .pctrace file: a 32-byte little-endian header, then one varint pair per record.
 *
 *   0  "PCTRACE1"          8  u32 version (1)     12  u32 page size     16  u32 record count
 *  20  u32 gfn span        24  u32 payload bytes  28  u32 CRC-32 of the payload
 *
 * Record i: varint(time[i] − time[i−1]) then varint(zigzag(gfn[i] − gfn[i−1]) · 2 + op), with
 * time[−1] = gfn[−1] = 0. Accesses cluster in time and space, so most records take 2–3 bytes.
 * The span (highest gfn + 1) says from the header alone how big a guest the trace needs.
 */
export const MAGIC = 'PCTRACE1';
export const VERSION = 1;
export const HEADER_BYTES = 32;
export const MAX_GFN = 2 ** 31 - 1;

export const enum TraceOp {
  READ = 0,
  WRITE = 1,
}

/** A page-access trace: record i touches gfns[i] at times[i] ns (non-decreasing), ops[i] read/write. */
export interface Trace {
  pageSize: number;
  times: Float64Array;
  gfns: Int32Array;
  ops: Uint8Array;
}

/**
 * The most records a trace holds (2^26, 67 M): importing one takes 17 B a record and replaying
 * it 13 B, so the largest trace stays near 1 GiB of memory. A file is at most 256 MiB (2^26 records
 * at the shipped trace's 2.65 B each take 170 MiB).
 */
export const MAX_TRACE_RECORDS = 2 ** 26;
export const MAX_TRACE_BYTES = 2 ** 28;

/** A .pctrace file that cannot be read: the message names the file and what is wrong. */
export class TraceFormatError extends PostcopyEmuError {
  constructor(readonly file: string, readonly detail: string) {
    super(file, `${file}: ${detail}`);
    this.name = 'TraceFormatError';
  }
}

/** Highest gfn + 1 (0 for an empty trace). */
export function gfnSpan(t: Trace): number {
  let max = -1;
  for (let i = 0; i < t.gfns.length; i++) if (t.gfns[i]! > max) max = t.gfns[i]!;
  return max + 1;
}

/** Records, distinct pages and duration (time of the last record), for summaries. */
export function traceStats(t: Trace): { records: number; pages: number; span: number; durationNs: number } {
  argCheck(typeof t === 'object' && t !== null && t.gfns instanceof Int32Array && t.times instanceof Float64Array, 'traceStats.trace', 'must be a Trace { pageSize, times, gfns, ops } (readTrace, decodeTrace or an import)');
  // Sorting a copy counts distinct gfns without a span-sized bitmap (a CSV gfn may be 2^31).
  const sorted = t.gfns.slice().sort();
  let pages = 0;
  for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) pages++;
  const n = t.times.length;
  return { records: n, pages, span: gfnSpan(t), durationNs: n > 0 ? t.times[n - 1]! : 0 };
}

export function encodeTrace(t: Trace): Buffer {
  objArg('encodeTrace.trace', t, 'a Trace { pageSize, times, gfns, ops }');
  pageSizeArg('encodeTrace.pageSize', t.pageSize);
  const n = t.gfns.length;
  argCheck(t.times.length === n && t.ops.length === n, 'encodeTrace.trace', `times, gfns and ops must have one entry per record (${t.times.length}, ${n}, ${t.ops.length})`);
  intArg('encodeTrace.records', n, 0, MAX_TRACE_RECORDS);
  // A time delta < 2^53 takes at most 8 varint bytes, a gfn delta with its op (< 2^33) 5.
  const body = Buffer.allocUnsafe(n * 13);
  let p = 0, prevT = 0, prevG = 0;
  const put = (v: number) => {
    while (v >= 0x80) {
      body[p++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    body[p++] = v;
  };
  for (let i = 0; i < n; i++) {
    const time = t.times[i]!, g = t.gfns[i]!;
    argCheck(Number.isSafeInteger(time) && time >= prevT, 'encodeTrace.times', `record ${i}: time ${time} must be an integer ≥ ${prevT}`);
    argCheck(g >= 0, 'encodeTrace.gfns', `record ${i}: gfn ${g} is negative`);
    const d = g - prevG;
    put(time - prevT);
    put((d >= 0 ? 2 * d : -2 * d - 1) * 2 + (t.ops[i]! & 1));
    prevT = time;
    prevG = g;
  }
  const out = Buffer.alloc(HEADER_BYTES + p);
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt32LE(VERSION, 8);
  out.writeUInt32LE(t.pageSize, 12);
  out.writeUInt32LE(n, 16);
  out.writeUInt32LE(gfnSpan(t), 20);
  out.writeUInt32LE(p, 24);
  out.writeUInt32LE(crc32(body, 0, p), 28);
  body.copy(out, HEADER_BYTES, 0, p);
  return out;
}

/** The header alone, validated against the file's length. */
function readHeader(buf: Uint8Array, file: string) {
  const fail = (detail: string): never => {
    throw new TraceFormatError(file, detail);
  };
  if (buf.length < HEADER_BYTES) fail(`not a pctrace file: ${buf.length} bytes, shorter than the ${HEADER_BYTES}-byte header`);
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
  if (b.toString('latin1', 0, 8) !== MAGIC) fail(`not a pctrace file: the magic is not "${MAGIC}"`);
  const version = b.readUInt32LE(8);
  if (version !== VERSION) fail(`format version ${version} is not supported (this reader knows ${VERSION})`);
  const h = { pageSize: b.readUInt32LE(12), records: b.readUInt32LE(16), span: b.readUInt32LE(20), bytes: b.readUInt32LE(24), crc: b.readUInt32LE(28) };
  if (h.pageSize === 0 || (h.pageSize & (h.pageSize - 1)) !== 0) fail(`page size ${h.pageSize} in the header is not a power of two`);
  if (HEADER_BYTES + h.bytes !== buf.length) {
    fail(`truncated or padded: the header says ${h.bytes} payload bytes, the file holds ${buf.length - HEADER_BYTES}`);
  }
  if (h.bytes < 2 * h.records) fail(`${h.records} records cannot fit in ${h.bytes} payload bytes`);
  if (h.records > MAX_TRACE_RECORDS) fail(`${h.records} records: a trace holds at most ${MAX_TRACE_RECORDS} (2^26)`);
  return h;
}

export function decodeTrace(buf: Uint8Array, file = '(a buffer)'): Trace {
  const h = readHeader(buf, file);
  const fail = (detail: string): never => {
    throw new TraceFormatError(file, detail);
  };
  const end = buf.length;
  if (crc32(buf, HEADER_BYTES, end) !== h.crc) fail('checksum mismatch: the records are damaged');
  const times = new Float64Array(h.records), gfns = new Int32Array(h.records), ops = new Uint8Array(h.records);
  let p = HEADER_BYTES, time = 0, g = 0, max = -1, i = 0;
  const get = (): number => {
    let v = 0, scale = 1, b: number;
    do {
      if (p === end) fail(`record ${i} runs past the end of the file`);
      b = buf[p++]!;
      v += (b & 0x7f) * scale;
      scale *= 0x80;
    } while (b >= 0x80 && scale < 2 ** 56);
    if (b >= 0x80) fail(`a varint at byte ${p} is longer than 8 bytes`);
    return v;
  };
  for (; i < h.records; i++) {
    time += get();
    const x = get();
    const z = Math.floor(x / 2);
    g += z % 2 === 0 ? z / 2 : -(z + 1) / 2;
    if (g < 0 || g > MAX_GFN) fail(`record ${i}: gfn ${g} is out of range`);
    times[i] = time;
    gfns[i] = g;
    ops[i] = x % 2;
    if (g > max) max = g;
  }
  if (p !== end) fail(`${end - p} bytes follow the last of the ${h.records} records`);
  if (max + 1 !== h.span) fail(`the header says the gfns span ${h.span} pages, the records span ${max + 1}`);
  return { pageSize: h.pageSize, times, gfns, ops };
}

export function readTrace(path: string): Trace {
  let buf: Buffer;
  try {
    buf = readBounded(path, MAX_TRACE_BYTES, '.pctrace file');
  } catch (e) {
    if (e instanceof PostcopyEmuError) throw new TraceFormatError(path, e.message.replace(`${path}: `, ''));
    throw new TraceFormatError(path, `cannot read: ${(e as Error).message}`);
  }
  return decodeTrace(buf, path);
}

const loaded = new Map<string, { mtimeMs: number; size: number; trace: Trace }>();

/**
 * Where a trace path points: itself when absolute or present in the working directory, else the
 * trace of that name shipped with the package (the presets name `traces/…` that way).
 */
export function tracePath(path: string): string {
  const abs = resolve(path);
  if (isAbsolute(path) || existsSync(abs)) return abs;
  const shipped = join(packageRoot, path);
  return existsSync(shipped) ? shipped : abs;
}

/**
 * readTrace for the emulator, relative to the current directory. Validation and every vCPU ask
 * for the same file, and a sweep asks for it per run: one decode serves them all until the
 * file changes.
 */
export function loadTrace(path: string): Trace {
  const abs = tracePath(path);
  let st;
  try {
    st = statSync(abs);
  } catch (e) {
    throw new TraceFormatError(path, `cannot read: ${(e as Error).message}`);
  }
  const hit = loaded.get(abs);
  if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit.trace;
  const trace = readTrace(abs);
  loaded.set(abs, { mtimeMs: st.mtimeMs, size: st.size, trace });
  return trace;
}

const CRC_TABLE = Int32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});

/** CRC-32 (IEEE, as zlib and gzip), written out because zlib.crc32 needs Node ≥ 20.15. */
function crc32(b: Uint8Array, from: number, to: number): number {
  let c = -1;
  for (let i = from; i < to; i++) c = CRC_TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}
