/**
 * The live destination with the software pager (docs/live.md): guest memory in a
 * SharedArrayBuffer, a state word per page (missing, requested, present), the scenario's fault
 * ring in shared memory (ring.ts), one worker thread per vCPU (vcpu-worker.ts) and the pager on
 * this thread. The pager takes faulting gfns off the ring and sends a REQUEST for each; it places
 * every PAGE that arrives, pushed or requested, after checking its bytes against the content the
 * source was to send (content.ts), and wakes the vCPUs waiting for it. When the source has sent
 * COMPLETE, every page is present and every vCPU is done, it sends VERIFY with its counts.
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { PostcopyEmuError } from '../io/errors.ts';
import { Rng } from '../kernel/rng.ts';
import { ringUnbounded, type Scenario } from '../scenario/schema.ts';
import { workerModule } from '../workers/pool.ts';
import { expectedHash, pageHash } from './content.ts';
import { FrameDecoder, FrameError, FrameType, decodeErrorText, decodeHello, decodePage, encodeErrorText, encodeFrame, encodeRequest, encodeVerify, type Frame } from './frame.ts';
import { UNBOUNDED_CAPACITY, RING, createRing, ringAbort, ringDrain } from './ring.ts';
import { PAGE, type FaultThreadInit, type VcpuInit, type VcpuMessage, type VcpuResult } from './vcpu-worker.ts';
import { loadUffd, type Uffd } from './uffd.ts';

/** Fault latencies VERIFY carries at most: beyond it, a uniform sample. */
export const MAX_LATENCY_SAMPLES = 100_000;

/** What the destination measured: VERIFY's JSON, and what runDestination resolves with. */
export interface DestinationStats {
  /** Pages present at the end (VERIFY's first u32) and pages whose bytes were wrong (its second). */
  pagesPresent: number;
  mismatches: number;
  /** vCPU touches of a page that was not present, over all vCPUs. */
  faults: number;
  /** Each fault's latency, ns, in vCPU order (a uniform sample if more than MAX_LATENCY_SAMPLES). */
  faultLatencyNs: number[];
  /** PAGE frames received (duplicates included), and every byte read off the socket. */
  pagesReceived: number;
  bytesReceived: number;
  /** PAGE frames for a page already present (not placed again). */
  duplicatePages: number;
  /** REQUEST frames sent: one per gfn taken off the ring and still missing. */
  requests: number;
  /** Each vCPU's touch loop, wall ms (0 for an idle workload, which runs no vCPU). */
  vcpuMs: number[];
  /** The fault ring: its slots, the most gfns it held at once, puts that found it full and waited. */
  ringCapacity: number;
  maxOccupancy: number;
  ringFullWaits: number;
  /** ms from HELLO to the first vCPU running (the guest resumed on this side). */
  resumedMs: number;
  /** ms from HELLO to VERIFY. */
  elapsedMs: number;
  /** The pager that ran: the kernel's userfaultfd through the addon, or the software one, and why. */
  backend: LiveBackend;
  backendReason: string | null;
}

/** Which pager the destination runs: `auto` takes userfaultfd when the addon can open one. */
export type LiveBackend = 'uffd' | 'software';

export interface DestinationOptions {
  /** Called with every frame received, before it is handled. */
  onFrame?: (frame: Frame) => void;
  backend?: LiveBackend | 'auto';
}

/** The userfaultfd pager when asked for (or `auto` and available), with the reason when not. */
function chooseBackend(asked: LiveBackend | 'auto', pageSize: number): { uffd: Uffd | null; reason: string | null } {
  if (asked === 'software') return { uffd: null, reason: 'the software pager was asked for' };
  const u = loadUffd();
  const reason = 'reason' in u ? u.reason : pageSize !== 4096 ? `memory.pageSize ${pageSize} is not the host's 4096-byte page` : null;
  if (reason !== null && asked === 'uffd') throw new PostcopyEmuError('--backend', `--backend uffd: ${reason}`);
  return reason === null && 'uffd' in u ? { uffd: u.uffd, reason: null } : { uffd: null, reason };
}

/** Atomics.waitAsync (Node ≥ 16; typed only from lib es2024, beyond this project's target). */
const waitAsync = (Atomics as unknown as {
  waitAsync(a: Int32Array, index: number, value: number): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
}).waitAsync;

/** Running from the TS sources (tests): workers load through src/workers/entry.mjs (tsx). */
const fromSource = import.meta.url.endsWith('.ts');

/** A vCPU or the fault thread: the built module in dist/, or its source through tsx, as workers/pool.ts does. */
function startThread(data: { vcpu: VcpuInit } | { fault: FaultThreadInit }): Worker {
  const module = workerModule('live/vcpu-worker');
  return fromSource
    ? new Worker(new URL('../workers/entry.mjs', import.meta.url), { workerData: { module: module.href, ...data } })
    : new Worker(module, { workerData: data });
}

/** What HELLO sets up, from its scenario. */
interface Setup {
  seed: number;
  pages: number;
  pageSize: number;
  capacity: number;
  vcpus: number;
  pattern: 'idle' | 'sequential' | 'random';
  regionStart: number;
  regionCount: number;
  writeFraction: number;
}

const helloError = (what: string) => new PostcopyEmuError('live', `HELLO: ${what}`);
const isInt = (v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): v is number => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;

/** Reads HELLO (`{ scenario, seed }`, the scenario as the source parsed it): what this side builds. */
function readHello(f: Frame): Setup {
  const hello = decodeHello(f.payload, f);
  const seed = hello.seed;
  const s = hello.scenario as Scenario;
  if (typeof s.memory !== 'object' || typeof s.workload !== 'object' || typeof s.ring !== 'object' || typeof s.source !== 'object' || !s.memory || !s.workload || !s.ring || !s.source) {
    throw helloError('the scenario lacks a memory, ring, source or workload section');
  }
  const { pages, pageSize } = s.memory;
  const w = s.workload;
  if (!isInt(pages, 1, 2 ** 31 - 1)) throw helloError(`memory.pages must be a positive integer, got ${JSON.stringify(pages)}`);
  if (!isInt(pageSize, 1, 2 ** 30)) throw helloError(`memory.pageSize must be a positive integer, got ${JSON.stringify(pageSize)}`);
  const unbounded = ringUnbounded(s);
  if (!unbounded && !isInt(s.ring.capacity, 1, UNBOUNDED_CAPACITY)) throw helloError(`ring.capacity must be an integer from 1 to ${UNBOUNDED_CAPACITY}, got ${JSON.stringify(s.ring.capacity)}`);
  if (!isInt(w.vcpus, 1, 4096)) throw helloError(`workload.vcpus must be an integer from 1 to 4096, got ${JSON.stringify(w.vcpus)}`);
  const region = w.region ?? { start: 0, count: pages };
  if (!isInt(region.start, 0) || !isInt(region.count, 1) || region.start + region.count > pages) {
    throw helloError(`workload.region ${JSON.stringify(region)} must lie within memory.pages (${pages})`);
  }
  const writeFraction = w.writeFraction ?? 0.5;
  if (typeof writeFraction !== 'number' || !(writeFraction >= 0 && writeFraction <= 1)) throw helloError(`workload.writeFraction must be in [0, 1], got ${JSON.stringify(writeFraction)}`);
  return {
    seed, pages, pageSize,
    capacity: unbounded ? UNBOUNDED_CAPACITY : s.ring.capacity,
    vcpus: w.vcpus,
    // The kinds live mode has no pattern of its own for yet touch at random.
    pattern: w.kind === 'idle' || w.kind === 'sequential' ? w.kind : 'random',
    regionStart: region.start, regionCount: region.count, writeFraction,
  };
}

/** All of `all` if it fits, else a uniform sample of MAX_LATENCY_SAMPLES of it, in order (selection sampling). */
function sampleLatencies(all: readonly Float64Array[], total: number, seed: number): number[] {
  const out: number[] = [];
  if (total <= MAX_LATENCY_SAMPLES) {
    for (const a of all) for (const x of a) out.push(x);
    return out;
  }
  const rng = new Rng(seed, 'live-latency-sample');
  let left = total, need = MAX_LATENCY_SAMPLES;
  for (const a of all) {
    for (const x of a) {
      if (rng.float() * left < need) {
        out.push(x);
        need--;
      }
      left--;
    }
  }
  return out;
}

/**
 * Runs the destination on a connected socket until it has sent VERIFY (resolves with what it
 * sent) or the run fails: a bad frame, a protocol error, the source closing early or a vCPU
 * thread failing reject with a PostcopyEmuError naming it (after an ERROR frame to the source
 * when the socket still takes one). Either way the vCPU threads are gone when it settles.
 */
export function runDestination(socket: Socket, o: DestinationOptions = {}): Promise<DestinationStats> {
  return new Promise<DestinationStats>((resolve, reject) => {
    const decoder = new FrameDecoder();
    let frames = 0, bytesReceived = 0;
    let setup: Setup | null = null;
    let memory: Uint8Array | null = null, state: Int32Array | null = null, ring: Int32Array | null = null;
    let uffd: Uffd | null = null, region = -1, backendReason: string | null = null, faultThread: Worker | null = null;
    let present = 0, mismatches = 0, pagesReceived = 0, duplicatePages = 0, requests = 0;
    let helloAt = 0, resumedMs = -1;
    let complete = false, settled = false, pagerStopped = false;
    const workers: Worker[] = [];
    const results: (VcpuResult | undefined)[] = [];
    let vcpusDone = 0;

    const stopThreads = async () => {
      pagerStopped = true;
      if (ring) {
        ringAbort(ring);
        Atomics.notify(ring, RING.PUT);
      }
      if (state) {
        // Every page not present reads ABORTED, so a vCPU between its check and its wait sees a
        // changed word and wakes (a vCPU blocked in the kernel gets a zero page); then terminate,
        // whatever they are doing.
        for (let g = 0; g < state.length; g++) {
          if (Atomics.load(state, g) !== PAGE.PRESENT) {
            Atomics.store(state, g, PAGE.ABORTED);
            Atomics.notify(state, g);
            if (uffd) uffd.zero(region, g * setup!.pageSize, setup!.pageSize);
          }
        }
      }
      await Promise.allSettled([...workers, ...(faultThread ? [faultThread] : [])].map((w) => w.terminate()));
      closeRegion();
    };
    const closeRegion = () => {
      if (uffd && region >= 0) uffd.close(region);
      region = -1;
    };

    const fail = (e: unknown) => {
      if (settled) return;
      settled = true;
      const err = e instanceof PostcopyEmuError ? e : new PostcopyEmuError('live', `destination: ${(e as Error)?.message ?? String(e)}`);
      if (socket.writable && !socket.destroyed) {
        socket.end(encodeFrame(FrameType.ERROR, encodeErrorText(err.message)), () => socket.destroy());
        setTimeout(() => socket.destroy(), 1000).unref();
      } else {
        socket.destroy();
      }
      void stopThreads().then(() => reject(err));
    };

    const earlyClose = () =>
      new PostcopyEmuError('live', `the source closed the connection early: after ${frames} frames, ${setup ? `${present} of ${setup.pages} pages present, ` : 'before HELLO, '}COMPLETE not received`);

    // The pager: take every gfn off the ring and ask for the pages still missing; then wait on
    // the ring's PUT counter for the next.
    const pager = async () => {
      const r = ring!, st = state!;
      const request = (g: number) => {
        if (settled || Atomics.load(st, g) === PAGE.PRESENT) return;
        requests++;
        socket.write(encodeFrame(FrameType.REQUEST, encodeRequest(g, 1)));
      };
      while (!pagerStopped) {
        const seen = ringDrain(r, request);
        const w = waitAsync(r, RING.PUT, seen);
        if (w.async) await w.value;
      }
    };

    const finish = () => {
      if (settled || !setup || !complete || present < setup.pages || vcpusDone < workers.length) return;
      settled = true;
      pagerStopped = true;
      Atomics.notify(ring!, RING.PUT);
      const done = results.filter((r): r is VcpuResult => r !== undefined);
      const faults = done.reduce((n, r) => n + r.faults, 0);
      const vcpuMs = new Array<number>(setup.vcpus).fill(0);
      for (const r of done) vcpuMs[r.vcpu] = r.ms;
      const stats: DestinationStats = {
        pagesPresent: present,
        mismatches,
        faults,
        faultLatencyNs: sampleLatencies(done.map((r) => r.latencyNs), faults, setup.seed),
        pagesReceived,
        bytesReceived,
        duplicatePages,
        requests,
        vcpuMs,
        ringCapacity: setup.capacity,
        maxOccupancy: Atomics.load(ring!, RING.MAX_OCCUPANCY),
        ringFullWaits: Atomics.load(ring!, RING.FULL_WAITS),
        resumedMs: Math.max(0, resumedMs),
        elapsedMs: performance.now() - helloAt,
        backend: uffd ? 'uffd' : 'software',
        backendReason,
      };
      // Resolved once the vCPU threads are gone (they have posted their results) and VERIFY is
      // flushed, or the socket has closed, whatever became of it.
      ringAbort(ring!);
      const gone = Promise.allSettled([...workers, ...(faultThread ? [faultThread] : [])].map((w) => w.terminate())).then(closeRegion);
      const flushed = new Promise<void>((done) => {
        socket.once('close', () => done());
        socket.end(encodeFrame(FrameType.VERIFY, encodeVerify({ pagesPresent: present, mismatches, stats })), () => done());
      });
      void Promise.all([gone, flushed]).then(() => resolve(stats));
    };

    const hello = (f: Frame) => {
      const s = (setup = readHello(f));
      helloAt = performance.now();
      ({ uffd, reason: backendReason } = chooseBackend(o.backend ?? 'auto', s.pageSize));
      try {
        if (uffd) region = uffd.create(s.pages * s.pageSize);
        else memory = new Uint8Array(new SharedArrayBuffer(s.pages * s.pageSize));
      } catch (e) {
        throw new PostcopyEmuError('memory.pages', `cannot map ${s.pages} pages of ${s.pageSize} bytes: ${(e as Error).message}`);
      }
      state = new Int32Array(new SharedArrayBuffer(s.pages * 4));
      ring = createRing(s.capacity);
      if (uffd) {
        faultThread = startThread({ fault: { uffd: region, state: state.buffer as SharedArrayBuffer, ring: ring.buffer as SharedArrayBuffer, pageSize: s.pageSize } });
        faultThread.on('error', (e) => fail(new PostcopyEmuError('live', `the fault thread failed: ${e.message}`)));
      }
      pager().catch(fail);
      if (s.pattern === 'idle') {
        resumedMs = 0;
        return;
      }
      const touches = Math.max(1, Math.floor((4 * s.regionCount) / s.vcpus));
      for (let v = 0; v < s.vcpus; v++) {
        const w = startThread({ vcpu: {
          vcpu: v, vcpus: s.vcpus, memory: uffd ? { uffd: region } : memory!.buffer as SharedArrayBuffer, state: state.buffer as SharedArrayBuffer, ring: ring.buffer as SharedArrayBuffer,
          pageSize: s.pageSize, pattern: s.pattern, regionStart: s.regionStart, regionCount: s.regionCount, touches, writeFraction: s.writeFraction, seed: s.seed,
        } });
        workers.push(w);
        w.on('message', (r: VcpuMessage) => {
          if (r.kind === 'started') {
            if (resumedMs < 0) resumedMs = performance.now() - helloAt;
            return;
          }
          if (results[v] !== undefined) return;
          results[v] = r;
          vcpusDone++;
          finish();
        });
        w.on('error', (e) => fail(new PostcopyEmuError('live', `vCPU ${v} failed: ${e.message}`)));
        w.on('exit', (code) => {
          if (results[v] === undefined && !settled) fail(new PostcopyEmuError('live', `vCPU ${v} exited with code ${code} before it finished`));
        });
      }
    };

    const page = (f: Frame) => {
      const s = setup!;
      const { gfn: first, version, bytes } = decodePage(f.payload, s.pageSize, f);
      const n = bytes.length / s.pageSize;
      if (first + n > s.pages) throw new FrameError(`PAGE for gfns ${first}..${first + n - 1}, outside the guest's ${s.pages} pages`, f);
      pagesReceived += n;
      // userfaultfd places the run with one UFFDIO_COPY (range population), waking the vCPUs
      // blocked on it in the kernel; pages already present are skipped by the kernel.
      if (uffd) uffd.copy(region, first * s.pageSize, bytes);
      for (let k = 0; k < n; k++) {
        const gfn = first + k, page = bytes.subarray(k * s.pageSize, (k + 1) * s.pageSize);
        const expected = expectedHash(s.seed, gfn, version, s.pageSize);
        if (Atomics.load(state!, gfn) === PAGE.PRESENT) {
          duplicatePages++;
          if (pageHash(page) !== expected) mismatches++;
          continue;
        }
        const at = gfn * s.pageSize;
        if (uffd) {
          if (pageHash(page) !== expected) mismatches++;
        } else {
          // Placed first: the hash then reads the page where it is aligned (the word-at-a-time path).
          memory!.set(page, at);
          if (pageHash(memory!.subarray(at, at + s.pageSize)) !== expected) mismatches++;
        }
        Atomics.store(state!, gfn, PAGE.PRESENT);
        Atomics.notify(state!, gfn);
        present++;
      }
    };

    const handle = (f: Frame) => {
      o.onFrame?.(f);
      if (!setup) {
        if (f.type !== FrameType.HELLO) throw new FrameError(`expected HELLO first, got ${FrameType[f.type]}`, f);
        hello(f);
        return;
      }
      switch (f.type) {
        case FrameType.PAGE:
          if (complete) throw new FrameError('PAGE after COMPLETE', f);
          page(f);
          return;
        case FrameType.COMPLETE:
          complete = true;
          if (present < setup.pages) throw new PostcopyEmuError('live', `the source sent COMPLETE with ${setup.pages - present} of ${setup.pages} pages never sent`);
          finish();
          return;
        case FrameType.ERROR:
          throw new PostcopyEmuError('live', `the source failed: ${decodeErrorText(f.payload)}`);
        default:
          throw new FrameError(`unexpected ${FrameType[f.type]} from the source`, f);
      }
    };

    socket.on('data', (chunk: Buffer) => {
      if (settled) return;
      bytesReceived += chunk.length;
      try {
        for (const f of decoder.push(chunk)) {
          frames++;
          handle(f);
          if (settled) return;
        }
      } catch (e) {
        fail(e);
      }
    });
    socket.on('end', () => {
      if (settled) return;
      try {
        decoder.end();
      } catch (e) {
        fail(e);
        return;
      }
      if (!complete) fail(earlyClose());
    });
    socket.on('close', () => {
      if (!settled) fail(complete ? new PostcopyEmuError('live', 'the connection closed before VERIFY was sent') : earlyClose());
    });
    socket.on('error', (e) => fail(new PostcopyEmuError('live', `the connection to the source failed: ${e.message}`)));
  });
}
