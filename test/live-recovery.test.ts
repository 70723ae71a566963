import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PostcopyEmuError } from '../src/io/errors.ts';
import { runDestination } from '../src/live/destination.ts';
import { dial, incomingOn } from '../src/live/live.ts';
import { FrameDecoder, FrameError, FrameType, encodeFrame, type Frame } from '../src/live/frame.ts';
import { decodePage, decodeRecvBitmap, encodeRecvBitmap, encodeRequest, encodeVerify } from '../src/live/payload.ts';
import type { DestinationStats } from '../src/live/setup.ts';
import { runSource, type SourceResult } from '../src/live/source.ts';
import { createSourceMemory } from '../src/live/source-memory.ts';
import { parseScenario } from '../src/scenario/validate.ts';
import { loadUffd } from '../src/live/uffd.ts';
import { cliHarness } from './cli-harness.ts';

const uffdHere = 'uffd' in loadUffd();

/**
 * Source and destination in this process over loopback, as `live` runs them in two: the source
 * listens again at the same port after a cut, the destination reconnects (software pager; with
 * `faultThread`, the userfaultfd pager whose fault thread writes the REQUESTs, qemu's policy).
 */
interface Migration {
  recovery?: boolean;
  preempt?: boolean;
  /** Someone else's connection to the source's listener. */
  stray?: boolean;
  faultThread?: boolean;
  maxPostcopyBandwidth?: number;
}

async function migrate(faults: unknown[], { recovery = true, preempt = false, stray = false, faultThread = false, maxPostcopyBandwidth = 0 }: Migration = {}): Promise<{ src: SourceResult; dst: DestinationStats }> {
  // 16 MiB: more than the socket buffers hold, so a cut at 1 ms finds pages still to send.
  const s = parseScenario({
    seed: 3, memory: { pages: 4096 }, ring: { capacity: 8 }, source: { policy: faultThread ? 'qemu' : 'xen', maxPostcopyBandwidth },
    workload: { kind: 'random', vcpus: 2, region: { start: 0, count: 4096 } }, faults, recovery: { enabled: recovery }, preempt: { enabled: preempt },
  });
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const toSource = () => dial('127.0.0.1', port);
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const dst = runDestination(await toSource(), { backend: faultThread ? 'uffd' : 'software', reconnect: toSource, preemptTo: { host: '127.0.0.1', port } });
  const t0 = performance.now();
  const src = runSource((await accepted)[0], s, createSourceMemory(s), () => performance.now() - t0, incomingOn(server, port, '127.0.0.1'));
  // Someone else's connection to the source's listener, sending what is not frames.
  if (stray) connect(port, '127.0.0.1', function (this: Socket) { this.end('GET / HTTP/1.1\r\n\r\n'); }).on('error', () => {});
  try {
    return { src: await src, dst: await dst };
  } finally {
    server.close();
  }
}

describe('live postcopy recovery (software pager, one process, loopback)', () => {
  it('pauses at a link cut, resumes on a new connection and loses nothing', { timeout: 20_000 }, async () => {
    const { src, dst } = await migrate([{ kind: 'link-cut', at: 1e6, durationNs: 40e6 }]);
    expect(src.history.map((h) => h.status)).toEqual(['postcopy-active', 'postcopy-paused', 'postcopy-recover-setup', 'postcopy-recover', 'postcopy-active']);
    expect(src.pauses).toBe(1);
    // The outage lasts at least its 40 ms; the bitmap's request and reply, RESUME and RESUME_ACK are two loopback round trips.
    expect(src.pausedMs).toBeGreaterThanOrEqual(40);
    expect([src.verify.pagesPresent, src.verify.mismatches, dst.pagesPresent, dst.mismatches]).toEqual([4096, 0, 4096, 0]);
    // Every page the destination received was placed once; pages lost in flight came again.
    expect(dst.pagesReceived - dst.duplicatePages).toBe(4096);
    expect(src.pagesPushed + src.pagesDemanded).toBe(4096 + src.resentPages);
  });

  it.runIf(uffdHere)('with the fault thread writing REQUESTs on the socket (userfaultfd) a cut pauses, and the resume asks again: nothing lost', { timeout: 20_000 }, async () => {
    // A 100 ms outage: the vCPU threads run at SCHED_IDLE, so on a busy host (the suite's other
    // workers) they may get no core for tens of ms; they must fault on missing pages meanwhile.
    const { src, dst } = await migrate([{ kind: 'link-cut', at: 1e6, durationNs: 100e6 }], { faultThread: true });
    expect(dst.backend).toBe('uffd');
    expect(src.pauses).toBe(1);
    expect([src.verify.pagesPresent, src.verify.mismatches, dst.pagesPresent, dst.mismatches]).toEqual([4096, 0, 4096, 0]);
    // Every REQUEST came from the fault thread or the resume, none through the ring.
    expect(dst.maxOccupancy).toBe(0);
    expect(dst.requests).toBeGreaterThanOrEqual(1);
    expect(dst.pagesReceived - dst.duplicatePages).toBe(4096);
  });

  it('a second cut during the pause extends it to the later end: one pause', { timeout: 20_000 }, async () => {
    const { src, dst } = await migrate([{ kind: 'link-cut', at: 1e6, durationNs: 30e6 }, { kind: 'source-crash', at: 20e6, restartNs: 60e6 }]);
    expect(src.pauses).toBe(1);
    // Active again no earlier than the crash's end, 80 ms (timers may fire late, never early).
    const pausedAt = src.history.find((h) => h.status === 'postcopy-paused')!['at-ms'];
    expect(pausedAt + src.pausedMs).toBeGreaterThanOrEqual(79.99);
    expect(src.history.filter((h) => h.status === 'postcopy-paused')).toHaveLength(1);
    expect([dst.pagesPresent, dst.mismatches]).toEqual([4096, 0]);
  });

  it('closes a stranger\'s connection to its listener and goes on', { timeout: 20_000 }, async () => {
    const { src, dst } = await migrate([], { stray: true });
    expect([src.pauses, dst.pagesPresent, dst.mismatches]).toEqual([0, 4096, 0]);
  });

  it('with recovery.enabled false a cut loses the guest: the run fails, naming why', { timeout: 20_000 }, async () => {
    const e = await migrate([{ kind: 'link-cut', at: 1e6, durationNs: 10e6 }], { recovery: false }).then(() => null, (err: unknown) => err);
    expect(e).toBeInstanceOf(PostcopyEmuError);
    expect((e as Error).message).toMatch(/^the connection was cut at \d+\.\d ms and recovery\.enabled is false: the guest is lost$/);
  });
});

describe('live source.maxPostcopyBandwidth (software pager, one process, loopback)', () => {
  it('writes a 100 ms window\'s budget, then sleeps to its end, as QEMU\'s migration_rate_limit', { timeout: 20_000 }, async () => {
    // 50 MB/s: 5 MB a window, passed by the 20th 64-page batch (5.24 MB), so the 16.8 MB guest
    // needs a fourth window: the last page goes out no earlier than 300 ms after READY.
    const { src, dst } = await migrate([], { maxPostcopyBandwidth: 50e6 });
    expect(src.completeMs).toBeGreaterThanOrEqual(300);
    // Three sleeps, and one more when requests served meanwhile left the last window nothing to push.
    expect(src.rateLimitSleeps).toBeGreaterThanOrEqual(3);
    expect(src.rateLimitSleeps).toBeLessThanOrEqual(4);
    expect([src.verify.pagesPresent, src.verify.mismatches, dst.pagesPresent, dst.mismatches]).toEqual([4096, 0, 4096, 0]);
  });
});

describe('live postcopy recovery over random cut schedules (property)', () => {
  it('every page arrives once and intact, whatever the cuts, their kinds, the preempt connection and who writes the REQUESTs', { timeout: 60_000 }, async () => {
    const cut = fc.record({
      kind: fc.constantFrom('link-cut', 'source-crash'),
      at: fc.integer({ min: 0, max: 40 }),
      down: fc.integer({ min: 1, max: 30 }),
    });
    // The fault thread writing REQUESTs needs the userfaultfd pager.
    const faultThread = uffdHere ? fc.boolean() : fc.constant(false);
    await fc.assert(fc.asyncProperty(fc.array(cut, { minLength: 1, maxLength: 3 }), fc.boolean(), faultThread, async (cuts, preempt, direct) => {
      const faults = cuts.map((c) => (c.kind === 'link-cut'
        ? { kind: 'link-cut', at: c.at * 1e6, durationNs: c.down * 1e6 }
        : { kind: 'source-crash', at: c.at * 1e6, restartNs: c.down * 1e6 }));
      const { src, dst } = await migrate(faults, { preempt, faultThread: direct });
      expect([dst.pagesPresent, dst.mismatches, src.verify.pagesPresent]).toEqual([4096, 0, 4096]);
      // Placed once each; what was lost in flight was sent again, nothing else.
      expect(dst.pagesReceived - dst.duplicatePages).toBe(4096);
      expect(src.pagesPushed + src.pagesDemanded).toBe(4096 + src.resentPages);
      // The history goes as the state machine allows: a cut during the handshake pauses again.
      const order = ['postcopy-active', 'postcopy-paused', 'postcopy-recover-setup', 'postcopy-recover'];
      src.history.forEach((h, i) => {
        if (i === 0) return;
        const from = order.indexOf(src.history[i - 1]!.status), to = order.indexOf(h.status);
        expect(to === (from + 1) % 4 || (to === 1 && from >= 2)).toBe(true);
      });
      expect(src.history.at(-1)!.status).toBe('postcopy-active');
      expect(src.history.filter((h) => h.status === 'postcopy-paused')).toHaveLength(src.pauses);
    }), { numRuns: 5, seed: 14 });
  });
});

describe('live postcopy-preempt (loopback)', () => {
  it('sends a requested page on the preempt connection, past the main stream', { timeout: 20_000 }, async () => {
    // 64 MiB, pushed from page 0 on: the last page is still unsent when it is asked for.
    const pages = 16_384;
    const s = parseScenario({ seed: 4, memory: { pages }, source: { policy: 'xen' }, preempt: { enabled: true }, workload: { kind: 'idle', vcpus: 1 } });
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    // A destination by hand: at HELLO it opens the preempt connection and says READY, then asks for the last page.
    const main = connect(port, '127.0.0.1');
    const t0 = performance.now();
    const src = runSource((await accepted)[0], s, createSourceMemory(s), () => performance.now() - t0, incomingOn(server, port, '127.0.0.1'));
    const got = { main: new Set<number>(), preempt: new Set<number>() };
    const read = (sock: Socket, into: Set<number>, onFrame: (f: Frame) => void = () => {}) => {
      const d = new FrameDecoder();
      sock.on('data', (c: Buffer) => {
        for (const f of d.push(c)) {
          if (f.type === FrameType.PAGE) {
            const p = decodePage(f.payload, 4096, f);
            for (let k = 0; k < p.bytes.length / 4096; k++) into.add(p.gfn + k);
          }
          onFrame(f);
        }
      });
    };
    read(main, got.main, (f) => {
      if (f.type === FrameType.HELLO) {
        const pre = connect(port, '127.0.0.1', () => pre.write(encodeFrame(FrameType.PREEMPT, new Uint8Array(0))));
        read(pre, got.preempt);
        main.write(encodeFrame(FrameType.READY, new Uint8Array(0)));
        setTimeout(() => main.write(encodeFrame(FrameType.REQUEST, encodeRequest(pages - 1, 1))), 20);
      }
      if (f.type === FrameType.COMPLETE) main.end(encodeFrame(FrameType.VERIFY, encodeVerify({ pagesPresent: pages, mismatches: 0, stats: {} })));
    });
    const r = await src;
    server.close();
    expect([...got.preempt]).toEqual([pages - 1]);
    expect(got.main.size).toBe(pages - 1);
    expect(got.main.has(pages - 1)).toBe(false);
    // The page's frame, then COMPLETE (the destination waits for it on both connections).
    expect([r.requests, r.pagesDemanded, r.preemptWrites, r.preemptBytes]).toEqual([1, 1, 2, 4096 + 24 + 16]);
  });

  it('recovers both connections after a cut', { timeout: 20_000 }, async () => {
    const { src, dst } = await migrate([{ kind: 'link-cut', at: 1e6, durationNs: 20e6 }], { preempt: true });
    expect([dst.pagesPresent, dst.mismatches, src.pauses]).toEqual([4096, 0, 1]);
    expect(src.pagesPushed + src.pagesDemanded).toBe(4096 + src.resentPages);
  });
});

describe('RECV_BITMAP payload', () => {
  it('carries one bit per page, LSB first, behind the page count', () => {
    const p = encodeRecvBitmap(10, (g) => g === 0 || g === 3 || g === 9);
    expect(p.toString('hex')).toBe('0000000a' + '09' + '02');
    expect([...decodeRecvBitmap(p, 10)]).toEqual([0x09, 0x02]);
  });

  it('refuses a bitmap of the wrong size or for another guest, naming the frame', () => {
    const at = { index: 4, offset: 96 };
    expect(() => decodeRecvBitmap(encodeRecvBitmap(10, () => true), 17, at)).toThrow(new FrameError('RECV_BITMAP payload is 6 bytes, expected 7 for 17 pages', at));
    expect(() => decodeRecvBitmap(encodeRecvBitmap(12, () => true), 10, at)).toThrow('frame 4 at byte 96: RECV_BITMAP is for 12 pages, the guest has 10');
  });
});

describe('postcopy-emu live with a link cut (two processes)', () => {
  const cli = cliHarness();
  it('reports the pause in status-history and emulator.recovery, every page verified', async () => {
    const r = await cli('live', '--preset', 'xen-2017-pure', '--set', 'memory.pages=4096', '--set', 'mapper.mapping={kind: none}',
      '--set', 'workload.region={start: 0, count: 4096}', '--set', 'faults=[{kind: link-cut, at: 1000000, durationNs: 30000000}]', '--json', '-');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect([j.status, j.live['verified-pages'], j.live.mismatches]).toEqual(['completed', 4096, 0]);
    expect(j.emulator['status-history'].map((h: { status: string }) => h.status)).toEqual(
      ['postcopy-active', 'postcopy-paused', 'postcopy-recover-setup', 'postcopy-recover', 'postcopy-active', 'completed']);
    expect(j.emulator.recovery.pauses).toBe(1);
    expect(j.emulator.recovery['paused-time-ms']).toBeGreaterThanOrEqual(30);
    // The model's other fault kinds are refused, naming the field.
    const bad = await cli('live', '--preset', 'xen-2017-pure', '--set', 'memory.pages=256', '--set', 'mapper.mapping={kind: none}', '--set', 'workload.region={start: 0, count: 256}', '--set', 'faults=[{kind: degrade, at: 0, durationNs: 5, rateMbps: 10}]');
    expect([bad.code, bad.err]).toEqual([2, 'postcopy-emu: faults.0.kind: live injects link-cut and source-crash (a real cut of the connection), got degrade: degrade and backchannel-loss are the model\'s\n']);
  }, 60_000);
});
