/**
 * The userfaultfd addon (src/live/uffd.ts, native/uffd.c), built beforehand by
 * `node scripts/build-addon.mjs` (this file never builds it). Where it is missing, the test checks
 * that loadUffd() says why; where it loads, worker threads fault on the region's missing pages and
 * the pager side places them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { UFFD_ADDON_PATH, loadAddon, loadUffd, type Uffd } from '../src/live/uffd.ts';
import { createReturnPath, letGo, sendWhole, socketFd } from '../src/live/return-path.ts';

const loaded = loadUffd();
const uffd: Uffd | undefined = 'uffd' in loaded ? loaded.uffd : undefined;

/** A worker (eval'd CommonJS) that loads the addon by absolute path and touches one byte. */
const READER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createRequire } = require('node:module');
const u = createRequire(workerData.addon)(workerData.addon);
const bytes = new Uint8Array(u.view(workerData.handle));
parentPort.postMessage({ touching: workerData.offset });
const value = bytes[workerData.offset];
parentPort.postMessage({ value });
`;

/** A worker that serves faults: one waitFaults call, its offsets posted back. */
const WAITER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createRequire } = require('node:module');
const u = createRequire(workerData.addon)(workerData.addon);
const out = new Float64Array(16);
const n = u.waitFaults(workerData.handle, workerData.timeoutMs, out);
parentPort.postMessage({ offsets: Array.from(out.subarray(0, n)) });
`;

type Message = { touching?: number; value?: number; offsets?: number[] };

/** A connected loopback TCP pair: `client` dialled `server`, which accepted `peer`. */
async function loopbackPair(): Promise<{ server: Server; client: Socket; peer: Socket }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await once(client, 'connect');
  const [peer] = await accepted;
  return { server, client, peer };
}

/** A started eval worker, with its messages as a queue of promises. */
class EvalWorker {
  readonly worker: Worker;
  private readonly messages: Message[] = [];
  private waiting: ((m: Message) => void) | undefined;
  private failure: Error | undefined;
  private failed: ((e: Error) => void) | undefined;

  constructor(code: string, data: Record<string, unknown>) {
    this.worker = new Worker(code, { eval: true, workerData: { addon: UFFD_ADDON_PATH, ...data } });
    this.worker.on('message', (m: Message) => {
      if (this.waiting) { const w = this.waiting; this.waiting = undefined; this.failed = undefined; w(m); }
      else this.messages.push(m);
    });
    this.worker.on('error', (e: Error) => {
      this.failure = e;
      this.failed?.(e);
    });
  }

  /** The next message, or a rejection after `ms`. */
  next(ms: number): Promise<Message> {
    const queued = this.messages.shift();
    if (queued) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<Message>((resolve, reject) => {
      const timer = setTimeout(() => { this.waiting = undefined; reject(new Error(`no message from the worker in ${ms} ms`)); }, ms);
      this.waiting = (m) => { clearTimeout(timer); resolve(m); };
      this.failed = (e) => { clearTimeout(timer); reject(e); };
    });
  }

  /** Whether a message has arrived and not been taken. */
  get pending(): number { return this.messages.length; }
}

describe('the userfaultfd addon', () => {
  it('loads here, or says what is missing', () => {
    // This project's machines (Linux, root, gcc) build it at install: the tests below run there.
    if (process.platform === 'linux' && process.getuid?.() === 0) expect(loaded).toHaveProperty('uffd');
    if ('reason' in loaded) {
      expect(typeof loaded.reason).toBe('string');
      expect(loaded.reason.length).toBeGreaterThan(0);
      expect(loaded.reason).toMatch(/userfaultfd|addon|not built|Linux/i);
    } else {
      expect(loaded.uffd.available()).toBeNull();
      expect(loaded.uffd.pageSize()).toBeGreaterThan(0);
    }
  });

  const addon = loadAddon();
  it.runIf('uffd' in addon)('gives the source its guest RAM: zeroed, writable memory of the size asked for, no userfaultfd needed', () => {
    const u = (addon as { uffd: Uffd }).uffd;
    const ram = new Uint8Array(u.ram(3 * 4096 + 100));
    expect(ram.length).toBe(3 * 4096 + 100);
    expect(ram.every((b) => b === 0)).toBe(true);
    ram[3 * 4096 + 99] = 7;
    expect(ram[3 * 4096 + 99]).toBe(7);
    expect(() => u.ram(0)).toThrow(new RangeError('uffd: ram(0): bytes must be positive'));
  });

  it.runIf('uffd' in addon)('reads a loopback connection\'s kernel queues: bytes written and not read', async () => {
    const u = (addon as { uffd: Uffd }).uffd;
    const { server, client, peer } = await loopbackPair();
    peer.pause();
    client.write(Buffer.alloc(5000, 1));
    // Loopback delivers at once: the 5000 bytes wait unread at the receiver, none unacknowledged.
    for (let i = 0; i < 100 && u.socketQueues(socketFd(peer))[0] < 5000; i++) await new Promise((r) => setTimeout(r, 5));
    expect(u.socketQueues(socketFd(peer))).toEqual([5000, 0]);
    expect(u.socketQueues(socketFd(client))).toEqual([0, 0]);
    expect(() => u.socketQueues(0.5)).toThrow(/fd/);
    client.destroy();
    peer.destroy();
    server.close();
  });

  it.runIf('uffd' in addon)('socketSend writes from the calling thread, says how far it got when the peer stops reading, and −1 once the peer is gone', async () => {
    const u = (addon as { uffd: Uffd }).uffd;
    const { server, client, peer } = await loopbackPair();
    // The peer closes with bytes unread: the connection is reset, as the test wants.
    client.on('error', () => {});
    const got: Buffer[] = [];
    peer.on('data', (b: Buffer) => got.push(b));
    const fd = socketFd(client);
    expect(u.socketSend(fd, Buffer.from('hello'), 10)).toBe(5);
    for (let i = 0; i < 100 && Buffer.concat(got).length < 5; i++) await new Promise((r) => setTimeout(r, 5));
    expect(Buffer.concat(got).toString()).toBe('hello');
    // The peer stops reading: 64 MiB do not fit the kernel's buffers, so the write stops short after waiting.
    peer.pause();
    const big = new Uint8Array(64 << 20);
    const n = u.socketSend(fd, big, 20);
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThan(big.length);
    // A frame stalled that way gives up once the main thread lets the connection go (the frame
    // cut short dies with its connection).
    const rp = createReturnPath();
    letGo(rp);
    expect(sendWhole(rp, u, fd, new Uint8Array(4 << 20))).toBe(false);
    peer.destroy();
    await once(peer, 'close');
    let last = 0;
    for (let i = 0; i < 50 && last >= 0; i++) {
      last = u.socketSend(fd, Buffer.alloc(4096), 10);
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(last).toBe(-1);
    client.destroy();
    server.close();
  });

  describe.runIf(uffd !== undefined)('with a region', () => {
    const u = uffd as Uffd;
    const ps = uffd?.pageSize() ?? 4096;
    const open: number[] = [];
    const workers: Worker[] = [];

    /** A 64-page region, closed after the test. */
    function region(pages: number): number {
      const h = u.create(pages * ps);
      open.push(h);
      return h;
    }

    afterEach(async () => {
      // Place every missing page first (waking any worker still blocked on one), so no worker
      // faults on memory that close() is about to unmap; then stop the workers, then close.
      for (const h of open) u.zero(h, 0, u.view(h).byteLength);
      await Promise.all(workers.splice(0).map((w) => w.terminate()));
      for (const h of open.splice(0)) u.close(h);
    });

    it('blocks a worker on a missing page until copy() places it', async () => {
      const h = region(64);
      const offset = 5 * ps;
      const waiter = new EvalWorker(WAITER, { handle: h, timeoutMs: 5000 });
      workers.push(waiter.worker);
      const reader = new EvalWorker(READER, { handle: h, offset });
      workers.push(reader.worker);

      expect(await reader.next(5000)).toEqual({ touching: offset });
      const { offsets } = await waiter.next(6000);
      expect(offsets?.length).toBeGreaterThan(0);
      for (const o of offsets ?? []) expect(o).toBe(offset);

      // The reader is still asleep in the kernel: nothing more from it.
      await new Promise((r) => setTimeout(r, 50));
      expect(reader.pending).toBe(0);

      expect(u.copy(h, offset, new Uint8Array(ps).fill(0x2a))).toBe(true);
      expect(await reader.next(5000)).toEqual({ value: 0x2a });
      // Present now: safe to read from this thread too.
      expect(new Uint8Array(u.view(h))[offset + ps - 1]).toBe(0x2a);
    }, 10_000);

    it('zero() places a page of zeros; copy() and zero() over a present page return false', async () => {
      const h = region(64);
      expect(u.zero(h, 6 * ps, ps)).toBe(true);
      const reader = new EvalWorker(READER, { handle: h, offset: 6 * ps + 123 });
      workers.push(reader.worker);
      expect(await reader.next(5000)).toEqual({ touching: 6 * ps + 123 });
      expect(await reader.next(5000)).toEqual({ value: 0 });

      expect(u.copy(h, 7 * ps, new Uint8Array(ps).fill(7))).toBe(true);
      expect(u.copy(h, 7 * ps, new Uint8Array(ps).fill(9))).toBe(false);
      expect(u.zero(h, 7 * ps, ps)).toBe(false);
      expect(u.copy(h, 6 * ps, new Uint8Array(ps).fill(9))).toBe(false);
      const bytes = new Uint8Array(u.view(h));
      expect(bytes[7 * ps]).toBe(7);
      expect(bytes[6 * ps]).toBe(0);

      // A range over present and missing pages: the missing ones are placed, the result is false.
      expect(u.copy(h, 6 * ps, new Uint8Array(4 * ps).fill(3))).toBe(false);
      expect([bytes[6 * ps], bytes[7 * ps], bytes[8 * ps], bytes[9 * ps]]).toEqual([0, 7, 3, 3]);
    }, 10_000);

    it('waitFaults times out with 0; bad arguments throw clear errors', () => {
      const h = region(4);
      const t0 = performance.now();
      expect(u.waitFaults(h, 30, new Float64Array(4))).toBe(0);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(20);
      expect(() => u.create(ps + 1)).toThrow(/multiple of the page size/);
      expect(() => u.copy(h, 1, new Uint8Array(ps))).toThrow(/multiples of the page size/);
      expect(() => u.copy(h, 4 * ps, new Uint8Array(ps))).toThrow(/outside the region/);
      expect(() => u.view(987_654_321)).toThrow(/no open region/);
      const gone = u.create(ps);
      u.close(gone);
      expect(() => u.close(gone)).toThrow(/no open region/);
      expect(() => u.copy(gone, 0, new Uint8Array(ps))).toThrow(/no open region/);
    });

    it('measures single-page copies against 64-page range copies', () => {
      const pages = 512;
      const page = new Uint8Array(ps).fill(0x11);
      const range = new Uint8Array(64 * ps).fill(0x22);
      let single = Infinity, ranged = Infinity;
      for (let round = 0; round < 3; round++) {
        const a = u.create(pages * ps);
        const b = u.create(pages * ps);
        try {
          let t = process.hrtime.bigint();
          for (let i = 0; i < pages; i++) u.copy(a, i * ps, page);
          single = Math.min(single, Number(process.hrtime.bigint() - t) / pages);
          t = process.hrtime.bigint();
          for (let i = 0; i < pages / 64; i++) u.copy(b, i * 64 * ps, range);
          ranged = Math.min(ranged, Number(process.hrtime.bigint() - t) / pages);
          expect(new Uint8Array(u.view(a))[(pages - 1) * ps]).toBe(0x11);
          expect(new Uint8Array(u.view(b))[(pages - 1) * ps]).toBe(0x22);
        } finally {
          u.close(a);
          u.close(b);
        }
      }
      console.log(
        `UFFDIO_COPY per page (best of 3): ${pages} single-page copies ${single.toFixed(0)} ns/page, ` +
        `${pages / 64} copies of 64 pages ${ranged.toFixed(0)} ns/page, ratio ${(single / ranged).toFixed(2)}×`,
      );
      expect(single).toBeGreaterThan(0);
      expect(ranged).toBeGreaterThan(0);
      expect(single / ranged).toBeGreaterThan(0);
    });
  });
});
