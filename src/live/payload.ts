import { intArg, numArg } from '../io/args.ts';
import { RATE_MBPS, type Scenario } from '../scenario/schema.ts';
import { FrameError, MAX_PAYLOAD, type FrameAt } from './frame.ts';

/** The payloads of live mode's frames (frame.ts), all big-endian. */

const U32_MAX = 0xffffffff;

function u32At(p: Uint8Array, o: number): number {
  return ((p[o]! << 24) | (p[o + 1]! << 16) | (p[o + 2]! << 8) | p[o + 3]!) >>> 0;
}

function asBuffer(p: Uint8Array, start = 0, end = p.length): Buffer {
  return Buffer.from(p.buffer, p.byteOffset + start, end - start);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Strict UTF-8 JSON, or a FrameError saying which payload was bad. */
function parseJson(p: Uint8Array, what: string, at?: FrameAt): unknown {
  try {
    return JSON.parse(utf8.decode(p));
  } catch {
    throw new FrameError(`${what} is not UTF-8 JSON`, at);
  }
}

/** A PAGE frame: a run of pages from `gfn` on (range population), bytes.length / pageSize of them. */
export interface PagePayload {
  gfn: number;
  version: number;
  /** A view into the payload, not a copy. */
  bytes: Buffer;
}

/** PAGE: gfn u32, version u32, then the page's bytes. */
export function encodePage(gfn: number, version: number, bytes: Uint8Array): Buffer {
  intArg('encodePage.gfn', gfn, 0, U32_MAX);
  intArg('encodePage.version', version, 0, U32_MAX);
  intArg('encodePage.bytes.length', bytes.length, 0, MAX_PAYLOAD - 8);
  const out = Buffer.allocUnsafe(8 + bytes.length);
  out.writeUInt32BE(gfn, 0);
  out.writeUInt32BE(version, 4);
  out.set(bytes, 8);
  return out;
}

/** With pageSize, the payload must be exactly 8 + pageSize bytes; without, at least 8. */
export function decodePage(payload: Uint8Array, pageSize?: number, at?: FrameAt): PagePayload {
  const n = payload.length;
  if (pageSize !== undefined ? n < 8 + pageSize || (n - 8) % pageSize !== 0 : n < 8) {
    const want = pageSize !== undefined ? `8 + a whole number (≥ 1) of ${pageSize}-byte pages` : 'at least 8';
    throw new FrameError(`PAGE payload is ${n} bytes, expected ${want}`, at);
  }
  return { gfn: u32At(payload, 0), version: u32At(payload, 4), bytes: asBuffer(payload, 8) };
}

/** ZERO: gfn u32, count u32 (≥ 1): a run of zero pages. */
export function decodeZero(payload: Uint8Array, at?: FrameAt): RequestPayload {
  return decodeRun('ZERO', payload, at);
}

/** A run of pages (REQUEST, ZERO): gfn u32, count u32 ≥ 1. */
function decodeRun(what: string, payload: Uint8Array, at?: FrameAt): RequestPayload {
  if (payload.length !== 8) throw new FrameError(`${what} payload is ${payload.length} bytes, expected 8`, at);
  const count = u32At(payload, 4);
  if (count === 0) throw new FrameError(`${what} count is 0, expected at least 1`, at);
  return { gfn: u32At(payload, 0), count };
}

export interface RequestPayload {
  gfn: number;
  /** Pages from gfn on; 1 = one page. */
  count: number;
}

/** REQUEST: gfn u32, count u32 (≥ 1). */
export function encodeRequest(gfn: number, count: number): Buffer {
  intArg('encodeRequest.gfn', gfn, 0, U32_MAX);
  intArg('encodeRequest.count', count, 1, U32_MAX);
  const out = Buffer.allocUnsafe(8);
  out.writeUInt32BE(gfn, 0);
  out.writeUInt32BE(count, 4);
  return out;
}

export function decodeRequest(payload: Uint8Array, at?: FrameAt): RequestPayload {
  return decodeRun('REQUEST', payload, at);
}

/** VERIFY as the destination's end-of-run report: u32 pagesPresent, u32 mismatches, UTF-8 JSON stats. */
export interface VerifyReport<S = unknown> {
  pagesPresent: number;
  mismatches: number;
  stats: S;
}

export function encodeVerify(r: VerifyReport): Buffer {
  intArg('encodeVerify.pagesPresent', r.pagesPresent, 0, U32_MAX);
  intArg('encodeVerify.mismatches', r.mismatches, 0, U32_MAX);
  const json = Buffer.from(JSON.stringify(r.stats) ?? 'null', 'utf8');
  intArg('encodeVerify.stats.length', json.length, 0, MAX_PAYLOAD - 8);
  const out = Buffer.allocUnsafe(8 + json.length);
  out.writeUInt32BE(r.pagesPresent, 0);
  out.writeUInt32BE(r.mismatches, 4);
  json.copy(out, 8);
  return out;
}

/** stats is unchecked JSON: the caller validates its shape. */
export function decodeVerify(payload: Uint8Array, at?: FrameAt): VerifyReport {
  if (payload.length < 8) throw new FrameError(`VERIFY payload is ${payload.length} bytes, expected at least 8`, at);
  const stats = parseJson(payload.subarray(8), 'VERIFY stats', at);
  return { pagesPresent: u32At(payload, 0), mismatches: u32At(payload, 4), stats };
}

export interface Hello<S = Scenario> {
  scenario: S;
  seed: number;
  /** The wire the destination's reads are paced at, Mbit/s (`live --wire`); absent: none, loopback's own speed. */
  wireMbps?: number;
}

/** HELLO: UTF-8 JSON `{ scenario, seed, wireMbps? }`. */
export function encodeHello(hello: Hello): Buffer {
  intArg('encodeHello.seed', hello.seed, 0);
  if (hello.wireMbps !== undefined) numArg('encodeHello.wireMbps', hello.wireMbps, RATE_MBPS.min, RATE_MBPS.max);
  const out = Buffer.from(JSON.stringify({ scenario: hello.scenario, seed: hello.seed, ...(hello.wireMbps !== undefined ? { wireMbps: hello.wireMbps } : {}) }), 'utf8');
  intArg('encodeHello.length', out.length, 0, MAX_PAYLOAD);
  return out;
}

/** Checks the envelope only: the scenario is unchecked JSON, for the caller to parseScenario(). */
export function decodeHello(payload: Uint8Array, at?: FrameAt): Hello<unknown> {
  const v = parseJson(payload, 'HELLO payload', at);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new FrameError('HELLO payload is not a JSON object', at);
  const { scenario, seed, wireMbps } = v as Record<string, unknown>;
  if (typeof scenario !== 'object' || scenario === null || Array.isArray(scenario)) {
    throw new FrameError('HELLO scenario is not a JSON object', at);
  }
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0) {
    throw new FrameError(`HELLO seed ${JSON.stringify(seed) ?? 'undefined'} is not an integer in 0..${Number.MAX_SAFE_INTEGER}`, at);
  }
  if (wireMbps !== undefined && !(typeof wireMbps === 'number' && wireMbps >= RATE_MBPS.min && wireMbps <= RATE_MBPS.max)) {
    throw new FrameError(`HELLO wireMbps ${JSON.stringify(wireMbps)} is not a rate from 0.001 to 1e7 Mbit/s`, at);
  }
  return { scenario, seed, ...(wireMbps !== undefined ? { wireMbps } : {}) };
}

/** ERROR: UTF-8 text (a bad sequence reads as U+FFFD: it is only shown). */
export function encodeErrorText(text: string): Buffer {
  const out = Buffer.from(text, 'utf8');
  intArg('encodeErrorText.length', out.length, 0, MAX_PAYLOAD);
  return out;
}

export function decodeErrorText(payload: Uint8Array): string {
  return asBuffer(payload).toString('utf8');
}

/**
 * RECV_BITMAP (QEMU's MIG_RP_MSG_RECV_BITMAP): u32 pages, then one bit per page, bit g%8 of byte
 * g/8 set when the destination holds page g. The first frame on a recovery connection.
 */
export function encodeRecvBitmap(pages: number, holds: (gfn: number) => boolean): Buffer {
  intArg('encodeRecvBitmap.pages', pages, 1, (MAX_PAYLOAD - 4) * 8);
  const out = Buffer.alloc(4 + Math.ceil(pages / 8));
  out.writeUInt32BE(pages, 0);
  for (let g = 0; g < pages; g++) if (holds(g)) out[4 + (g >>> 3)]! |= 1 << (g & 7);
  return out;
}

/** The bitmap of a RECV_BITMAP for a guest of `pages` pages (a view into the payload). */
export function decodeRecvBitmap(payload: Uint8Array, pages: number, at?: FrameAt): Uint8Array {
  const want = 4 + Math.ceil(pages / 8);
  if (payload.length !== want) throw new FrameError(`RECV_BITMAP payload is ${payload.length} bytes, expected ${want} for ${pages} pages`, at);
  if (u32At(payload, 0) !== pages) throw new FrameError(`RECV_BITMAP is for ${u32At(payload, 0)} pages, the guest has ${pages}`, at);
  return payload.subarray(4);
}
