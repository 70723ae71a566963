/**
 * The live destination (docs/live.md): guest memory (a userfaultfd region, or a SharedArrayBuffer
 * for the software pager), a state word per page (missing, requested, present), the scenario's
 * fault ring in shared memory (ring.ts), the threads (threads.ts): one per vCPU, the fault thread
 * (userfaultfd), the preempt thread (`preempt.enabled`); and the pager on this thread. The pager
 * takes faulting gfns off the ring and sends a REQUEST for each (with `pager.faultThread` the
 * fault thread sends them itself, return-path.ts); it places every PAGE that arrives, pushed or
 * requested (placer.ts), and wakes the vCPUs waiting for it.
 * When the source has sent COMPLETE, every page is present and every vCPU is done, it checks every
 * page as placed against the content the source had to send and sends VERIFY with its counts. A lost
 * connection pauses the run and reconnects (postcopy recovery) when `reconnect` is given.
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Worker } from 'node:worker_threads';
import { PostcopyEmuError } from '../io/errors.ts';
import { Rng } from '../kernel/rng.ts';
import { drawZeroSet } from '../memory/guest-memory.ts';
import { FrameDecoder, FrameError, FrameType, RECONNECT_GRACE_MS, encodeFrame, type Frame } from './frame.ts';
import { decodeErrorText, encodeErrorText, encodeRecvBitmap, encodeVerify } from './payload.ts';
import { sampleQueues } from './queues.ts';
import { RING, createRing, putAfter, ringAbort, ringDrain } from './ring.ts';
import { GO, PAGE, type VcpuResult } from './vcpu-worker.ts';
import { startThread, startVcpus } from './threads.ts';
import type { FaultThreadInit } from './fault-thread.ts';
import { createReturnPath, sendWhole, setReturnPath, socketFd } from './return-path.ts';
import { COUNT, abortMissing, copyStats, countPresent, createCopyTimes, createCounters, placePages, placeZero, requestFrame, requestStamps, requestedRuns, verifyPlaced, type Placement } from './placer.ts';
import type { PreemptMessage } from './preempt-thread.ts';
import { Wire } from './wire.ts';
import { MAX_REQUEST_STAMPS, chooseBackend, readHello, vcpuStats, type DestinationStats, type LiveBackend, type Setup } from './setup.ts';
import { loadUffd, type Uffd } from './uffd.ts';

export interface DestinationOptions {
  /** Called with every frame received, before it is handled. */
  onFrame?: (frame: Frame) => void;
  backend?: LiveBackend | 'auto';
  /**
   * A new connection to the source: with it a lost connection pauses the run and this side
   * reconnects (with `recovery.enabled`; without, the run fails).
   */
  reconnect?: () => Promise<Socket>;
  /** Where the preempt thread connects (the source's address), for `preempt.enabled`. */
  preemptTo?: { host: string; port: number };
  /** Sets how many bytes each read of the main connection takes (a paced wire reads a millisecond of it at a time). */
  readSize?: (bytes: number) => void;
}

/** How often a paused destination tries to reach the source again (ms). */
const RETRY_MS = 5;

/**
 * Runs the destination on a connected socket until it has sent VERIFY (resolves with what it
 * sent) or the run fails: a bad frame, a protocol error, the source closing early or a vCPU
 * thread failing reject with a PostcopyEmuError naming it (after an ERROR frame to the source
 * when the socket still takes one). Either way the vCPU threads are gone when it settles.
 */
export function runDestination(socket: Socket, o: DestinationOptions = {}): Promise<DestinationStats> {
  return new Promise<DestinationStats>((resolve, reject) => {
    let frames = 0, bytesReceived = 0;
    let setup: Setup | null = null;
    // The wire the main connection is read at (live --wire); null: loopback's own speed.
    let wire: Wire | null = null;
    let memory: Uint8Array | null = null, state: Int32Array | null = null, ring: Int32Array | null = null;
    let uffd: Uffd | null = null, region = -1, backendReason: string | null = null;
    // The fault thread's worker starts now, while the source fills its memory: loading a Node worker
    // takes ~0.2 s of CPU, which at HELLO would compete with the stream for the two cores. Its
    // region comes at HELLO; it is stopped if the software pager runs.
    const startFaultThread = () => startThread({ fault: true }).on('error', (e) => fail(new PostcopyEmuError('live', `the fault thread failed: ${e.message}`)));
    let faultThread: Worker | null = o.backend === 'software' || 'reason' in loadUffd() ? null : startFaultThread();
    let placement: Placement | null = null;
    // With a fault thread (`pager.faultThread`, no preempt thread) REQUESTs go out on the return path from it.
    const returnPath = createReturnPath();
    let direct = false;
    const counters = createCounters(), count = (c: number) => Atomics.load(counters, c), copyTimes = createCopyTimes();
    let helloAt = 0, readyAt = -1, resumedMs = -1, migratedMs = -1, unready = 0;
    // The main connection's receive queue, sampled from READY to COMPLETE.
    let queued: { stop(): number | null } | undefined, receiveQueuedBytes: number | null | undefined;
    const go = new Int32Array(new SharedArrayBuffer(4));
    let complete = false, settled = false, pagerStopped = false;
    // COMPLETE comes on each connection: a page on the preempt one may arrive after main's COMPLETE.
    let completeMain = false, completePreempt = false;
    // The current connection; `epoch` counts them, so a lost one's events are ignored. While
    // `paused`, faults stay REQUESTED and are asked for again after RESUME_ACK.
    let conn = socket, preemptThread: Worker | null = null, epoch = 0, paused = false, reRequestedPages = 0;
    const workers: Worker[] = [];
    const results: (VcpuResult | undefined)[] = [];
    let vcpusDone = 0;

    const stopThreads = async () => {
      pagerStopped = true;
      if (ring) ringAbort(ring);
      wakePager();
      // Blocked vCPUs wake, parked ones find every page aborted; then terminate, whatever they do.
      if (placement) abortMissing(placement);
      Atomics.store(go, 0, GO);
      Atomics.notify(go, 0);
      await Promise.allSettled(threads().map((w) => w.terminate()));
      closeRegion();
    };
    const threads = () => [...workers, ...(faultThread ? [faultThread] : []), ...(preemptThread ? [preemptThread] : [])];
    const closeRegion = () => {
      if (uffd && region >= 0) uffd.close(region);
      region = -1;
    };

    const fail = (e: unknown) => {
      if (settled) return;
      settled = true;
      queued?.stop();
      setReturnPath(returnPath, null);
      const err = e instanceof PostcopyEmuError ? e : new PostcopyEmuError('live', `destination: ${(e as Error)?.message ?? String(e)}`);
      if (conn.writable && !conn.destroyed && !paused) {
        const c = conn;
        c.end(encodeFrame(FrameType.ERROR, encodeErrorText(err.message)), () => c.destroy());
        setTimeout(() => c.destroy(), 1000).unref();
      } else {
        conn.destroy();
      }
      void stopThreads().then(() => reject(err));
    };

    const earlyClose = () =>
      new PostcopyEmuError('live', `the source closed the connection early: after ${frames} frames, ${setup ? `${count(COUNT.PRESENT)} of ${setup.pages} pages present, ` : 'before HELLO, '}COMPLETE not received`);

    // The pager: take every gfn off the ring and ask for the pages still missing; then wait on
    // the ring's PUT counter for the next. While the preempt thread runs, it is the ring's one
    // consumer: this sleeps until wakePager(), not woken by every fault.
    let handBack: (() => void) | null = null;
    const wakePager = () => {
      if (ring) Atomics.notify(ring, RING.PUT);
      handBack?.();
    };
    const pager = async () => {
      const r = ring!, st = state!;
      const request = (g: number) => {
        if (settled || paused || Atomics.load(st, g) === PAGE.PRESENT) return;
        conn.write(requestFrame(placement!, g));
      };
      while (!pagerStopped) {
        if (preemptThread) await new Promise<void>((wake) => (handBack = wake));
        else await putAfter(r, ringDrain(r, request));
      }
    };

    const finish = () => {
      if (settled || !setup || !complete || count(COUNT.PRESENT) < setup.pages) return;
      // The migration is over; the guest's vCPUs go on (each to the end of its touches).
      if (migratedMs < 0) migratedMs = performance.now() - readyAt;
      if (vcpusDone < workers.length) return;
      settled = true;
      pagerStopped = true;
      wakePager();
      setReturnPath(returnPath, null);
      // Every page is here and the vCPUs are done: check each as placed against what the source had to send.
      const v0 = performance.now();
      verifyPlaced(placement!, drawZeroSet(setup.pages, setup.zeroFraction, new Rng(setup.seed, 'zero-pages'), setup.zeroRanges));
      const verifyMs = performance.now() - v0;
      const stats: DestinationStats = {
        pagesPresent: count(COUNT.PRESENT),
        mismatches: count(COUNT.MISMATCHES),
        verifyMs,
        migratedMs,
        receiveQueuedBytes: receiveQueuedBytes ?? null,
        ...vcpuStats(results.filter((r): r is VcpuResult => r !== undefined), setup),
        requestedAtNs: requestStamps(placement!, MAX_REQUEST_STAMPS),
        pagesReceived: count(COUNT.RECEIVED),
        bytesReceived,
        duplicatePages: count(COUNT.DUPLICATES),
        requests: count(COUNT.REQUESTS),
        ringCapacity: setup.capacity,
        maxOccupancy: Atomics.load(ring!, RING.MAX_OCCUPANCY),
        ringFullWaits: Atomics.load(ring!, RING.FULL_WAITS),
        resumedMs: Math.max(0, resumedMs),
        elapsedMs: performance.now() - helloAt,
        backend: uffd ? 'uffd' : 'software',
        backendReason,
        reRequestedPages,
        uffdCopy: uffd ? copyStats(copyTimes) : null,
      };
      // Resolved once the vCPU threads are gone (they have posted their results) and VERIFY is
      // flushed, or the socket has closed, whatever became of it.
      ringAbort(ring!);
      const gone = Promise.allSettled(threads().map((w) => w.terminate())).then(closeRegion);
      const flushed = new Promise<void>((done) => {
        conn.once('close', () => done());
        conn.end(encodeFrame(FrameType.VERIFY, encodeVerify({ pagesPresent: stats.pagesPresent, mismatches: stats.mismatches, stats })), () => done());
      });
      void Promise.all([gone, flushed]).then(() => resolve(stats));
    };

    const hello = (f: Frame) => {
      const s = (setup = readHello(f));
      helloAt = performance.now();
      if (s.wireMbps > 0) {
        wire = new Wire(s.wireMbps);
        o.readSize?.(wire.readBytes);
      }
      ({ uffd, reason: backendReason } = chooseBackend(o.backend ?? 'auto', s.pageSize));
      try {
        if (uffd) region = uffd.create(s.pages * s.pageSize);
        else memory = new Uint8Array(new SharedArrayBuffer(s.pages * s.pageSize));
      } catch (e) {
        throw new PostcopyEmuError('memory.pages', `cannot map ${s.pages} pages of ${s.pageSize} bytes: ${(e as Error).message}`);
      }
      state = new Int32Array(new SharedArrayBuffer(s.pages * 4));
      ring = createRing(s.capacity);
      placement = { seed: s.seed, pages: s.pages, pageSize: s.pageSize, state, counters, uffd, region, memory, copyTimes,
        placedAt: new Float64Array(new SharedArrayBuffer(s.pages * 8)), requestedAt: new Float64Array(new SharedArrayBuffer(s.pages * 8)),
      };
      // READY once every thread is up: the fault thread reading faults, the preempt connection
      // open (or refused), each vCPU parked.
      unready = (uffd ? 1 : 0) + (s.preempt && o.preemptTo ? 1 : 0) + (s.pattern === 'idle' ? 0 : s.vcpus);
      if (uffd) {
        direct = s.faultThread && !(s.preempt && o.preemptTo);
        faultThread ??= startFaultThread();
        faultThread.once('message', threadReady);
        faultThread.postMessage({
          uffd: region, state: state.buffer as SharedArrayBuffer, ring: ring.buffer as SharedArrayBuffer, pageSize: s.pageSize,
          direct: direct ? { returnPath: returnPath.buffer as SharedArrayBuffer, counters: counters.buffer as SharedArrayBuffer, requestedAt: placement.requestedAt.buffer as SharedArrayBuffer } : null,
        } satisfies FaultThreadInit);
      } else if (faultThread) {
        void faultThread.terminate();
        faultThread = null;
      }
      pager().catch(fail);
      openPreempt();
      if (s.pattern !== 'idle') {
        const shared = {
          memory: uffd ? { uffd: region } : memory!.buffer as SharedArrayBuffer, state: state.buffer as SharedArrayBuffer, ring: ring.buffer as SharedArrayBuffer,
          go: go.buffer as SharedArrayBuffer, placedAt: placement.placedAt.buffer as SharedArrayBuffer,
        };
        workers.push(...startVcpus(s, s.pattern, shared, {
          parked: threadReady,
          started: () => {
            if (resumedMs < 0) resumedMs = performance.now() - readyAt;
          },
          done: (r) => {
            results[r.vcpu] = r;
            vcpusDone++;
            finish();
          },
          failed: (e) => {
            if (!settled) fail(e);
          },
        }));
      }
      if (unready === 0) switchover();
    };

    const threadReady = () => {
      if (--unready === 0 && readyAt < 0) switchover();
    };
    /** Everything is up: READY starts the source's clock, and the parked vCPUs run (the guest resumes here). */
    const switchover = () => {
      if (settled) return;
      conn.write(encodeFrame(FrameType.READY, new Uint8Array(0)));
      if (direct) setReturnPath(returnPath, conn);
      queued = sampleQueues(conn, (inq) => inq);
      readyAt = performance.now();
      if (setup!.pattern === 'idle') resumedMs = 0;
      Atomics.store(go, 0, GO);
      Atomics.notify(go, 0);
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
        case FrameType.ZERO:
          if (completeMain) throw new FrameError(`${FrameType[f.type]} after COMPLETE`, f);
          (f.type === FrameType.PAGE ? placePages : placeZero)(placement!, f);
          return;
        case FrameType.COMPLETE:
          completeMain = true;
          receiveQueuedBytes ??= queued?.stop() ?? null;
          completed();
          return;
        case FrameType.RECV_BITMAP:
          // The source asks what this side holds (QEMU's MIG_CMD_RECV_BITMAP): it sends the rest again.
          if (!paused) throw new FrameError('RECV_BITMAP request while not recovering', f);
          conn.write(encodeFrame(FrameType.RECV_BITMAP, encodeRecvBitmap(setup!.pages, (g) => Atomics.load(state!, g) === PAGE.PRESENT)));
          return;
        case FrameType.RESUME:
          if (!paused) throw new FrameError('RESUME while not recovering', f);
          resume();
          return;
        case FrameType.ERROR:
          throw new PostcopyEmuError('live', `the source failed: ${decodeErrorText(f.payload)}`);
        default:
          throw new FrameError(`unexpected ${FrameType[f.type]} from the source`, f);
      }
    };

    /**
     * RESUME: the source has our bitmap. RESUME_ACK goes out, then a REQUEST for every page a vCPU
     * still waits on (loadvm_postcopy_handle_resume, QEMU 6.0+).
     */
    const resume = () => {
      paused = false;
      openPreempt();
      const st = state!;
      // With the fault thread writing REQUESTs too, under the return path's lock, on the socket itself.
      const send = direct ? (b: Buffer) => sendWhole(returnPath, uffd!, socketFd(conn), b) : (b: Buffer) => conn.write(b);
      send(encodeFrame(FrameType.RESUME_ACK, new Uint8Array(0)));
      const askAgain = () => requestedRuns(st, (g, n) => {
        reRequestedPages += n;
        send(requestFrame(placement!, g, n));
      });
      if (direct) setReturnPath(returnPath, conn, askAgain);
      else askAgain();
    };

    /** The connection is gone before VERIFY: pause and reconnect when recovery can, else fail. */
    const lost = (why: () => PostcopyEmuError) => {
      if (settled) return;
      if (!setup || !setup.recovery || !o.reconnect) return fail(why());
      paused = true;
      epoch++;
      setReturnPath(returnPath, null);
      conn.destroy();
      stopPreempt();
      void reconnect(why);
    };

    /**
     * QEMU's postcopy-preempt: a thread of its own (preempt-thread.ts) opens a second connection,
     * announced by PREEMPT, takes over the fault ring, sends the REQUESTs on it and places the
     * pages that come back, past the main stream.
     */
    const openPreempt = () => {
      if (!setup?.preempt || !o.preemptTo || preemptThread) return;
      const s = setup, mine = epoch;
      completePreempt = false;
      const t = (preemptThread = startThread({ preempt: {
        ...o.preemptTo, seed: s.seed, pages: s.pages, pageSize: s.pageSize, state: state!.buffer as SharedArrayBuffer, ring: ring!.buffer as SharedArrayBuffer,
        counters: counters.buffer as SharedArrayBuffer, copyTimes: copyTimes.buffer as SharedArrayBuffer, memory: uffd ? { uffd: region } : memory!.buffer as SharedArrayBuffer,
        placedAt: placement!.placedAt.buffer as SharedArrayBuffer, requestedAt: placement!.requestedAt.buffer as SharedArrayBuffer,
      } }));
      t.on('message', (m: PreemptMessage) => {
        if (settled || mine !== epoch || t !== preemptThread) return;
        if (m.kind === 'open') {
          if (readyAt < 0) threadReady();
        } else if (m.kind === 'placed') finish();
        else if (m.kind === 'complete') {
          completePreempt = true;
          completed();
        } else if (m.kind === 'error') fail(new PostcopyEmuError('live', `the preempt connection: ${m.message}`));
        else if (m.kind === 'refused') {
          // Requested pages come on the main connection: the pager drains the ring again.
          if (readyAt < 0) threadReady();
          stopPreempt();
          completed();
        } else if (m.kind === 'lost') lost(() => new PostcopyEmuError('live', `the preempt connection failed: ${m.message}`));
      });
      t.on('error', (e) => fail(new PostcopyEmuError('live', `the preempt thread failed: ${e.message}`)));
    };
    const stopPreempt = () => {
      void preemptThread?.terminate();
      preemptThread = null;
      wakePager();
    };
    /** COMPLETE has come on the main connection, and on the preempt one while it is open. */
    const completed = () => {
      complete = completeMain && (!preemptThread || completePreempt);
      if (!complete) return;
      // The page states are the record, the counter a running tally: a preempt thread stopped at a
      // cut between marking a page present and counting it leaves the tally short.
      const s = setup!, present = countPresent(state!);
      Atomics.store(counters, COUNT.PRESENT, present);
      if (present < s.pages) return fail(new PostcopyEmuError('live', `the source sent COMPLETE with ${s.pages - present} of ${s.pages} pages never sent`));
      finish();
    };
    const reconnect = async (why: () => PostcopyEmuError) => {
      const mine = epoch, s = setup!;
      const deadline = performance.now() + s.maxOutageMs + RECONNECT_GRACE_MS;
      for (;;) {
        try {
          const next = await o.reconnect!();
          if (settled || mine !== epoch) return void next.destroy();
          conn = next;
          attach(next);
          // The main connection again: the source asks for the bitmap next.
          next.write(encodeFrame(FrameType.RECONNECT, new Uint8Array(0)));
          return;
        } catch (e) {
          if (settled || mine !== epoch) return;
          if (performance.now() > deadline) return fail(new PostcopyEmuError('live', `${why().message}; the source did not come back within ${((s.maxOutageMs + RECONNECT_GRACE_MS) / 1000).toFixed(1)} s (${(e as Error).message})`));
          await new Promise((wake) => setTimeout(wake, RETRY_MS));
        }
      }
    };

    /** Reads `sock`'s frames while it is the current connection. */
    const attach = (sock: Socket) => {
      const mine = epoch, decoder = new FrameDecoder();
      const current = () => mine === epoch && !settled;
      sock.on('data', (chunk: Buffer) => {
        if (!current()) return;
        bytesReceived += chunk.length;
        try {
          for (const f of decoder.push(chunk)) {
            frames++;
            handle(f);
            if (!current()) return;
          }
        } catch (e) {
          fail(e);
        }
        // HELLO set the wire up (live --wire): the next read waits until the wire has delivered this one.
        const wait = wire?.read(chunk.length, performance.now()) ?? 0;
        if (wait > 0) {
          sock.pause();
          setTimeout(() => current() && sock.resume(), wait);
        }
      });
      sock.on('end', () => {
        if (!current()) return;
        // A cut may end the stream inside a frame: with recovery that frame is simply lost.
        if (setup?.recovery && o.reconnect) return lost(earlyClose);
        try {
          decoder.end();
        } catch (e) {
          return fail(e);
        }
        if (!complete) fail(earlyClose());
      });
      sock.on('close', () => {
        if (current()) lost(() => (complete ? new PostcopyEmuError('live', 'the connection closed before VERIFY was sent') : earlyClose()));
      });
      sock.on('error', (e) => {
        if (current()) lost(() => new PostcopyEmuError('live', `the connection to the source failed: ${e.message}`));
      });
    };
    attach(socket);
  });
}
