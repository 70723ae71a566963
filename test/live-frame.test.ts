import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { crc32 } from 'node:zlib';
import { FRAME_VERSION, FrameDecoder, FrameError, FrameType, HEADER_BYTES, MAX_PAYLOAD, encodeFrame, type Frame } from '../src/live/frame.ts';
import {
  decodeErrorText, decodeHello, decodePage, decodeRequest, decodeVerify, decodeZero, encodeErrorText, encodeHello, encodePage, encodeRequest, encodeVerify,
} from '../src/live/payload.ts';
import { PostcopyEmuError } from '../src/io/errors.ts';
import type { Scenario } from '../src/scenario/schema.ts';
import { thrown } from './throws.ts';

/** Every frame of the stream in one push, then end(). */
function decodeAll(stream: Buffer): Frame[] {
  const d = new FrameDecoder();
  const frames = d.push(stream);
  d.end();
  return frames;
}

/** The FrameError that decoding these chunks (then end()) throws. */
function frameError(...chunks: Buffer[]): FrameError {
  return thrown(FrameError, () => {
    const d = new FrameDecoder();
    for (const c of chunks) d.push(c);
    d.end();
  });
}

/** A valid frame with header bytes patched after encoding. */
function patched(type: FrameType, payload: Uint8Array, patch: (h: Buffer) => void): Buffer {
  const f = encodeFrame(type, payload);
  patch(f);
  return f;
}

const scenario = { name: 'tiny', memory: { pages: 4 } } as unknown as Scenario;

describe('frames round-trip', () => {
  it('carries every frame type, with its index and offset on the stream', () => {
    const page = Buffer.alloc(4096, 7);
    const frames = [
      encodeFrame(FrameType.HELLO, encodeHello({ scenario, seed: 42 })),
      encodeFrame(FrameType.PAGE, encodePage(3, 1, page)),
      encodeFrame(FrameType.REQUEST, encodeRequest(0xffffffff, 2)),
      encodeFrame(FrameType.COMPLETE, new Uint8Array(0)),
      encodeFrame(FrameType.VERIFY, encodeVerify({ pagesPresent: 4, mismatches: 1, stats: { faults: 2, lat: [1.5, 2] } })),
      encodeFrame(FrameType.ERROR, encodeErrorText('the source failed: ü')),
    ];
    const got = decodeAll(Buffer.concat(frames));
    expect(got.map((f) => f.type)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(got.map((f) => f.index)).toEqual([0, 1, 2, 3, 4, 5]);
    let offset = 0;
    for (let i = 0; i < frames.length; i++) {
      expect(got[i]!.offset).toBe(offset);
      offset += frames[i]!.length;
    }

    expect(decodeHello(got[0]!.payload)).toEqual({ scenario, seed: 42 });
    // With a wire (live --wire) the rate comes along.
    expect(decodeHello(encodeHello({ scenario, seed: 42, wireMbps: 2000 }))).toEqual({ scenario, seed: 42, wireMbps: 2000 });
    const p = decodePage(got[1]!.payload, 4096);
    expect(p.gfn).toBe(3);
    expect(p.version).toBe(1);
    expect(p.bytes.equals(page)).toBe(true);
    expect(decodeRequest(got[2]!.payload)).toEqual({ gfn: 0xffffffff, count: 2 });
    expect(got[3]!.payload.length).toBe(0);
    expect(decodeVerify(got[4]!.payload)).toEqual({ pagesPresent: 4, mismatches: 1, stats: { faults: 2, lat: [1.5, 2] } });
    expect(decodeErrorText(got[5]!.payload)).toBe('the source failed: ü');
  });

  it('lays out the header as specified (hand-checked: CRC-32 of "123456789" is 0xcbf43926)', () => {
    const f = encodeFrame(FrameType.ERROR, encodeErrorText('123456789'));
    expect(f.subarray(0, HEADER_BYTES).toString('hex')).toBe(
      '50434c56' + // magic "PCLV"
      '04' + // version
      '06' + // type ERROR
      '0000' + // flags
      '00000009' + // length
      'cbf43926', // crc32
    );
    expect(f.subarray(HEADER_BYTES).toString('latin1')).toBe('123456789');
  });

  it('lays out the payloads big-endian', () => {
    expect(encodePage(0x01020304, 0x0a0b0c0d, Uint8Array.of(0xff)).toString('hex')).toBe('010203040a0b0c0dff');
    expect(encodeRequest(0x01020304, 1).toString('hex')).toBe('0102030400000001');
    expect(encodeVerify({ pagesPresent: 2, mismatches: 1, stats: {} }).toString('latin1')).toBe('\0\0\0\x02\0\0\0\x01{}');
  });

  it('hands out payloads as views of the pushed chunk when a frame sits in one chunk', () => {
    const stream = Buffer.concat([encodeFrame(FrameType.PAGE, encodePage(1, 0, Buffer.alloc(64, 1)))]);
    const [f] = new FrameDecoder().push(stream);
    expect(f!.payload.buffer).toBe(stream.buffer);
    expect(decodePage(f!.payload).bytes.buffer).toBe(stream.buffer);
  });

  it('accepts a payload of exactly MAX_PAYLOAD bytes', () => {
    const payload = Buffer.alloc(MAX_PAYLOAD, 3);
    const [f] = decodeAll(encodeFrame(FrameType.PAGE, payload));
    expect(f!.payload.length).toBe(MAX_PAYLOAD);
  });

  it('reassembles a frame fed a byte at a time, in linear time', () => {
    const page = Buffer.alloc(256 * 1024);
    for (let i = 0; i < page.length; i++) page[i] = i * 31;
    const stream = encodeFrame(FrameType.PAGE, encodePage(9, 2, page));
    const d = new FrameDecoder();
    const got: Frame[] = [];
    for (let i = 0; i < stream.length; i++) {
      for (const f of d.push(stream.subarray(i, i + 1))) got.push({ ...f, payload: Buffer.from(f.payload) });
      if (i === 5) expect(d.bufferedBytes).toBe(6);
    }
    d.end();
    expect(got.length).toBe(1);
    expect(decodePage(got[0]!.payload).bytes.equals(page)).toBe(true);
    expect(d.bufferedBytes).toBe(0);
  }, 5000); // ~0.3 s linear; re-copying the buffered bytes on every push would take minutes
});

describe('FrameDecoder errors', () => {
  const good = encodeFrame(FrameType.REQUEST, encodeRequest(1, 1)); // 24 bytes

  it('bad magic', () => {
    const bad = patched(FrameType.COMPLETE, new Uint8Array(0), (h) => h.writeUInt32BE(0x48545450, 0));
    const e = frameError(good, bad);
    expect(e.message).toBe('frame 1 at byte 24: bad magic 0x48545450 (expected 0x50434c56)');
    expect(e.field).toBe('frame');
    expect(e).toBeInstanceOf(PostcopyEmuError);
    expect([e.index, e.offset]).toEqual([1, 24]);
  });

  it('unsupported version', () => {
    const bad = patched(FrameType.COMPLETE, new Uint8Array(0), (h) => { h[4] = 1; });
    expect(frameError(bad).message).toBe('frame 0 at byte 0: unsupported version 1 (expected 4)');
  });

  it('unknown type', () => {
    expect(frameError(patched(FrameType.COMPLETE, new Uint8Array(0), (h) => { h[5] = 0; })).message)
      .toBe('frame 0 at byte 0: unknown type 0');
    expect(frameError(good, good, patched(FrameType.COMPLETE, new Uint8Array(0), (h) => { h[5] = 14; })).message)
      .toBe('frame 2 at byte 48: unknown type 14');
  });

  it('flags other than 0', () => {
    expect(frameError(patched(FrameType.COMPLETE, new Uint8Array(0), (h) => h.writeUInt16BE(0x8001, 6))).message)
      .toBe('frame 0 at byte 0: unsupported flags 0x8001 (expected 0)');
  });

  it('a length over the bound, refused on the header alone', () => {
    const header = patched(FrameType.PAGE, new Uint8Array(0), (h) => h.writeUInt32BE(MAX_PAYLOAD + 1, 8));
    const d = new FrameDecoder();
    const e = thrown(FrameError, () => d.push(header));
    expect(e.message).toBe('frame 0 at byte 0: length 16777217 over the bound 16777216');
    expect(frameError(patched(FrameType.PAGE, new Uint8Array(0), (h) => h.writeUInt32BE(0xffffffff, 8))).message)
      .toBe('frame 0 at byte 0: length 4294967295 over the bound 16777216');
  });

  it('CRC mismatch', () => {
    const bad = encodeFrame(FrameType.ERROR, encodeErrorText('123456789'));
    bad[HEADER_BYTES + 4] ^= 0x01;
    expect(frameError(good, bad).message)
      .toBe(`frame 1 at byte 24: CRC mismatch (header 0xcbf43926, payload 0x${crc32(bad.subarray(HEADER_BYTES)).toString(16).padStart(8, '0')})`);
  });

  it('a truncated stream, seen by end()', () => {
    expect(frameError(good, good.subarray(0, 5)).message).toBe('frame 1 at byte 24: truncated stream: 5 of 16 header bytes');
    expect(frameError(good, good.subarray(0, 16), good.subarray(16, 19)).message)
      .toBe('frame 1 at byte 24: truncated stream: 3 of 8 payload bytes');
    expect(frameError(good.subarray(0, 16)).message).toBe('frame 0 at byte 0: truncated stream: 0 of 8 payload bytes');
    // A clean end after whole frames, or with nothing at all, is fine.
    expect(() => decodeAll(Buffer.concat([good, good]))).not.toThrow();
    expect(() => decodeAll(Buffer.alloc(0))).not.toThrow();
  });

  it('keeps the first error: every later push() and end() throws it again', () => {
    const d = new FrameDecoder();
    const e = thrown(FrameError, () => d.push(Buffer.alloc(16)));
    expect(thrown(FrameError, () => d.push(good))).toBe(e);
    expect(thrown(FrameError, () => d.end())).toBe(e);
  });
});

describe('payload decoders refuse a wrong length', () => {
  const at = { index: 3, offset: 100 };

  it('PAGE', () => {
    expect(thrown(FrameError, () => decodePage(new Uint8Array(7))).message).toBe('PAGE payload is 7 bytes, expected at least 8');
    expect(thrown(FrameError, () => decodePage(new Uint8Array(8 + 100), 4096, at)).message)
      .toBe('frame 3 at byte 100: PAGE payload is 108 bytes, expected 8 + a whole number (≥ 1) of 4096-byte pages');
    expect(decodePage(new Uint8Array(8)).bytes.length).toBe(0);
  });

  it('REQUEST', () => {
    expect(thrown(FrameError, () => decodeRequest(new Uint8Array(7))).message).toBe('REQUEST payload is 7 bytes, expected 8');
    expect(thrown(FrameError, () => decodeRequest(new Uint8Array(9), at)).message)
      .toBe('frame 3 at byte 100: REQUEST payload is 9 bytes, expected 8');
    expect(thrown(FrameError, () => decodeRequest(new Uint8Array(8))).message).toBe('REQUEST count is 0, expected at least 1');
  });

  it('ZERO', () => {
    expect(thrown(FrameError, () => decodeZero(Buffer.alloc(8))).message).toBe('ZERO count is 0, expected at least 1');
    expect(thrown(FrameError, () => decodeZero(Buffer.alloc(7), { index: 2, offset: 40 })).message).toBe('frame 2 at byte 40: ZERO payload is 7 bytes, expected 8');
    expect(decodeZero(Buffer.from('0000000700000002', 'hex'))).toEqual({ gfn: 7, count: 2 });
  });

  it('VERIFY (the end-of-run report)', () => {
    expect(thrown(FrameError, () => decodeVerify(new Uint8Array(7), at)).message)
      .toBe('frame 3 at byte 100: VERIFY payload is 7 bytes, expected at least 8');
    expect(thrown(FrameError, () => decodeVerify(Buffer.from('\0\0\0\0\0\0\0\0{'))).message).toBe('VERIFY stats is not UTF-8 JSON');
  });

  it('HELLO', () => {
    expect(thrown(FrameError, () => decodeHello(Buffer.from('{"seed":'))).message).toBe('HELLO payload is not UTF-8 JSON');
    expect(thrown(FrameError, () => decodeHello(Uint8Array.of(0x22, 0xff, 0x22))).message).toBe('HELLO payload is not UTF-8 JSON');
    expect(thrown(FrameError, () => decodeHello(Buffer.from('[]'))).message).toBe('HELLO payload is not a JSON object');
    expect(thrown(FrameError, () => decodeHello(Buffer.from('{"seed":1}'))).message).toBe('HELLO scenario is not a JSON object');
    expect(thrown(FrameError, () => decodeHello(Buffer.from('{"scenario":{},"seed":-1}'), at)).message)
      .toBe('frame 3 at byte 100: HELLO seed -1 is not an integer in 0..9007199254740991');
    expect(thrown(FrameError, () => decodeHello(Buffer.from('{"scenario":{},"seed":1,"wireMbps":0}'), at)).message)
      .toBe('frame 3 at byte 100: HELLO wireMbps 0 is not a rate from 0.001 to 1e7 Mbit/s');
    expect(thrown(FrameError, () => decodeHello(Buffer.from('{"scenario":{},"seed":1,"wireMbps":"fast"}'))).message)
      .toBe('HELLO wireMbps "fast" is not a rate from 0.001 to 1e7 Mbit/s');
  });
});

describe('encoders refuse what the wire cannot carry', () => {
  it('names the argument', () => {
    expect(thrown(PostcopyEmuError, () => encodeFrame(0 as FrameType, new Uint8Array(0))).message)
      .toBe('encodeFrame.type: must be a FrameType (1..13), got 0');
    expect(thrown(PostcopyEmuError, () => encodeFrame(FrameType.PAGE, new Uint8Array(MAX_PAYLOAD + 1))).field)
      .toBe('encodeFrame.payload.length');
    expect(thrown(PostcopyEmuError, () => encodePage(2 ** 32, 0, new Uint8Array(0))).message)
      .toBe('encodePage.gfn: must be an integer in 0..4294967295, got 4294967296');
    expect(thrown(PostcopyEmuError, () => encodeRequest(0, 0)).message)
      .toBe('encodeRequest.count: must be an integer in 1..4294967295, got 0');
    expect(thrown(PostcopyEmuError, () => encodeVerify({ pagesPresent: -1, mismatches: 0, stats: null })).field)
      .toBe('encodeVerify.pagesPresent');
  });
});

// ---- properties ----

const FC = { numRuns: 300, seed: 0x5eed };

const anyFrame = fc.oneof(
  fc.record({ seed: fc.nat(), name: fc.string() })
    .map(({ seed, name }) => ({ type: FrameType.HELLO, payload: encodeHello({ scenario: { name } as unknown as Scenario, seed }) })),
  fc.record({ gfn: fc.nat({ max: 0xffffffff }), version: fc.nat({ max: 0xffffffff }), bytes: fc.uint8Array({ maxLength: 96, size: 'max' }) })
    .map(({ gfn, version, bytes }) => ({ type: FrameType.PAGE, payload: encodePage(gfn, version, bytes) })),
  fc.record({ gfn: fc.nat({ max: 0xffffffff }), count: fc.integer({ min: 1, max: 0xffffffff }) })
    .map(({ gfn, count }) => ({ type: FrameType.REQUEST, payload: encodeRequest(gfn, count) })),
  fc.constant({ type: FrameType.COMPLETE, payload: Buffer.alloc(0) }),
  fc.record({ pagesPresent: fc.nat({ max: 0xffffffff }), mismatches: fc.nat({ max: 0xffffffff }) }).map((r) => ({ type: FrameType.VERIFY, payload: encodeVerify({ ...r, stats: { faults: r.mismatches } }) })),
  fc.string().map((s) => ({ type: FrameType.ERROR, payload: encodeErrorText(s) })),
  // Now and then a payload that spans many small chunks.
  fc.integer({ min: 1000, max: 5000 }).map((n) => ({ type: FrameType.PAGE, payload: encodePage(1, 1, Buffer.alloc(n, n & 0xff)) })),
);

/** Cuts the stream at the given points (taken modulo its length). */
function split(stream: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => (stream.length ? c % (stream.length + 1) : 0)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const c of [...at, stream.length]) {
    chunks.push(stream.subarray(prev, c));
    prev = c;
  }
  return chunks;
}

/** Decodes the chunks, then every payload by its type: returns how far it got, or throws. */
function decodeChunks(chunks: Buffer[]): Frame[] {
  const d = new FrameDecoder();
  const frames: Frame[] = [];
  for (const c of chunks) for (const f of d.push(c)) {
    // A payload is only valid until the next push.
    frames.push({ ...f, payload: Buffer.from(f.payload) });
    if (f.type === FrameType.HELLO) decodeHello(f.payload, f);
    else if (f.type === FrameType.PAGE) decodePage(f.payload, undefined, f);
    else if (f.type === FrameType.REQUEST) decodeRequest(f.payload, f);
    else if (f.type === FrameType.VERIFY) decodeVerify(f.payload, f);
    else if (f.type === FrameType.ERROR) decodeErrorText(f.payload);
  }
  d.end();
  return frames;
}

/** Runs fn; anything thrown must be a FrameError. Returns whether it threw. */
function onlyFrameErrors(fn: () => unknown): boolean {
  try {
    fn();
    return false;
  } catch (e) {
    if (!(e instanceof FrameError)) throw e;
    expect(e.message).not.toContain('\n');
    return true;
  }
}

describe('FrameDecoder properties', () => {
  it('decodes any stream of valid frames the same, wherever the chunk boundaries fall', () => {
    fc.assert(
      fc.property(fc.array(anyFrame, { maxLength: 12, size: 'max' }), fc.array(fc.nat(), { maxLength: 40, size: 'max' }), (frames, cuts) => {
        const encoded = frames.map((f) => encodeFrame(f.type, f.payload));
        const stream = Buffer.concat(encoded);
        const got = decodeChunks(split(stream, cuts));
        expect(got.length).toBe(frames.length);
        let offset = 0;
        got.forEach((f, i) => {
          expect(f.type).toBe(frames[i]!.type);
          expect(f.index).toBe(i);
          expect(f.offset).toBe(offset);
          expect(f.payload.equals(frames[i]!.payload)).toBe(true);
          offset += encoded[i]!.length;
        });
      }),
      FC,
    );
  });

  it('throws nothing but FrameError on random bytes', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300, size: 'max' }),
        fc.nat({ max: 3 }),
        fc.nat({ max: 9 }),
        fc.array(fc.nat(), { maxLength: 10, size: 'max' }),
        (bytes, valid, type, cuts) => {
          // Often behind a valid magic and version (then type and flags, then a short length), so every
          // later check is reached too.
          const stream = Buffer.from(bytes);
          if (valid >= 1 && stream.length >= 16) {
            stream.writeUInt32BE(0x50434c56, 0);
            stream[4] = FRAME_VERSION;
            if (valid >= 2) {
              stream[5] = 1 + type;
              stream.writeUInt16BE(0, 6);
              // A random length is almost always over the bound; a small one reaches the CRC.
              if (valid === 3) stream.writeUInt32BE(stream.readUInt32BE(8) % 400, 8);
            }
          }
          try {
            decodeChunks(split(stream, cuts));
          } catch (e) {
            if (!(e instanceof FrameError)) throw e;
            seen.add(e.what.replace(/[ :].*/, ''));
          }
        },
      ),
      FC,
    );
    // The fuzz reached every check.
    expect([...seen].sort()).toEqual(['CRC', 'bad', 'length', 'truncated', 'unknown', 'unsupported']);
  });

  it('throws nothing but FrameError on mutated valid streams (bit flips, truncation, duplication)', () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }),
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), len: fc.nat({ max: 64 }) }),
    );
    fc.assert(
      fc.property(
        fc.array(anyFrame, { minLength: 1, maxLength: 6 }),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 10, size: 'max' }),
        (frames, mutations, cuts) => {
          let s = Buffer.concat(frames.map((f) => encodeFrame(f.type, f.payload)));
          for (const m of mutations) {
            if (s.length === 0) break;
            const at = m.at % s.length;
            if (m.kind === 'flip') {
              s = Buffer.from(s);
              s[at] ^= 1 << m.bit;
            } else if (m.kind === 'truncate') {
              s = s.subarray(0, at);
            } else {
              const piece = s.subarray(at, at + m.len);
              s = Buffer.concat([s.subarray(0, at + piece.length), piece, s.subarray(at + piece.length)]);
            }
          }
          onlyFrameErrors(() => decodeChunks(split(s, cuts)));
        },
      ),
      FC,
    );
  });

  it('catches every single flipped bit outside the type byte', () => {
    fc.assert(
      fc.property(fc.array(anyFrame, { minLength: 1, maxLength: 4 }), fc.nat(), fc.nat({ max: 7 }), (frames, at, bit) => {
        const encoded = frames.map((f) => encodeFrame(f.type, f.payload));
        const s = Buffer.concat(encoded);
        const pos = at % s.length;
        // The type byte of each frame: a flip there may make another valid type.
        const typeBytes = new Set<number>();
        let o = 0;
        for (const e of encoded) {
          typeBytes.add(o + 5);
          o += e.length;
        }
        fc.pre(!typeBytes.has(pos));
        s[pos] ^= 1 << bit;
        expect(thrown(FrameError, () => {
          const d = new FrameDecoder();
          d.push(s);
          d.end();
        })).toBeInstanceOf(FrameError);
      }),
      FC,
    );
  });
});
