import { once } from 'node:events';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import PQueue from 'p-queue';
import type { MigrationStatus } from '../faults/recovery.ts';
import { timedFaults } from '../faults/schedule.ts';
import { PostcopyEmuError } from '../io/errors.ts';
import { Rng } from '../kernel/rng.ts';
import { NextMember } from '../memory/skip-list.ts';
import type { Scenario } from '../scenario/schema.ts';
import { makePolicy } from '../source/make-policy.ts';
import { RateLimit } from '../source/rate-limit.ts';
import { FrameDecoder, FrameError, FrameType, RECONNECT_GRACE_MS, encodeFrame, type Frame } from './frame.ts';
import { decodeErrorText, decodeRecvBitmap, decodeRequest, decodeVerify, encodeHello } from './payload.ts';
import { sampleQueues } from './queues.ts';
import { encodePageFrames, type SourceMemory } from './source-memory.ts';

/** Pages a background batch sends in one write (QEMU's QEMUFile gathers 64 pages a writev). */
export const BATCH_PAGES = 64;

/** What the source saw, and what the destination reported in VERIFY. */
export interface SourceResult {
  pagesPushed: number;
  pagesDemanded: number;
  requests: number;
  bytesSent: number;
  /** ms from READY (the switchover) to the last page written, and to VERIFY read. */
  completeMs: number;
  /** Median bytes the main connection held on this side while streaming (Node's queue and the kernel's unacknowledged bytes); null: not measured. */
  sendQueuedBytes: number | null;
  verifiedMs: number;
  verify: { pagesPresent: number; mismatches: number; stats: Record<string, unknown> };
  /** Status changes from postcopy-active at 0 (ms from READY), as the source saw them. */
  history: { status: MigrationStatus; 'at-ms': number }[];
  /** The guest's zero pages (`memory.zeroFraction`, `zeroRanges`): sent as ZERO frames. */
  zeroPages: number;
  /** Writes (PAGE frames, and COMPLETE) and bytes on the preempt connection. */
  preemptWrites: number;
  preemptBytes: number;
  /** Cuts that paused the migration, pages sent again after one, ms spent not active. */
  pauses: number;
  resentPages: number;
  pausedMs: number;
  /** Per page, when a REQUEST for it began to be served (its pages written), process.hrtime ns; 0 if never. */
  servedAt: Float64Array;
  /** Windows whose budget the push spent and slept to the end of (`source.maxPostcopyBandwidth`). */
  rateLimitSleeps: number;
}

/**
 * Where the destination's later connections arrive: a new main connection after a cut, and the
 * preempt connection. Open while the link is up, closed (connections refused) while it is down.
 */
export interface Incoming {
  open(): Promise<void>;
  close(): void;
  onConnection(handle: (socket: Socket) => void): void;
}

/**
 * The live source (docs/live.md): sends HELLO, waits for READY (the destination is up: the
 * switchover), then every page of the guest's memory (filled before the migration,
 * source-memory.ts), requested pages first — a p-queue with
 * priorities on the send path, one task per request or per 64-page background batch, each
 * waiting for the socket to drain (back-pressure) — the background in the order of the model's
 * push policy (`source.policy`, src/source/), then COMPLETE, and waits for VERIFY. With
 * `preempt.enabled` requested pages go at once on the destination's preempt connection instead,
 * past the main stream's backlog (QEMU's postcopy-preempt channel).
 *
 * `wireMbps` (live --wire): the destination reads the main connection at that rate, as a wire of
 * it would deliver (src/live/wire.ts).
 *
 * Recovery (docs/recovery.md): a scenario's `link-cut` or `source-crash` destroys the connections
 * at its time (ms from READY; whatever was in flight is lost) and pauses; once the outage is over
 * the destination connects again and its RECV_BITMAP says what it holds. Every page sent but not
 * held goes back to the unsent set, the push policy starts afresh over it, and RESUME_ACK tells
 * the destination to ask again for what its vCPUs wait on.
 */
export async function runSource(first: Socket, s: Scenario, memory: SourceMemory, clockMs: () => number, incoming?: Incoming, wireMbps?: number): Promise<SourceResult> {
  const pages = s.memory.pages;
  // The pages not sent yet; the model's push policies pick the background pages from them.
  const unsent = new NextMember(pages);
  let policy = makePolicy(s.source, unsent);
  const queue = new PQueue({ concurrency: 1 });
  const r: SourceResult = {
    pagesPushed: 0, pagesDemanded: 0, requests: 0, bytesSent: 0, completeMs: -1, sendQueuedBytes: null, verifiedMs: -1,
    verify: { pagesPresent: 0, mismatches: 0, stats: {} }, history: [{ status: 'postcopy-active', 'at-ms': 0 }], zeroPages: memory.zero?.count() ?? 0, preemptWrites: 0, preemptBytes: 0, pauses: 0, resentPages: 0, pausedMs: 0,
    servedAt: new Float64Array(pages), rateLimitSleeps: 0,
  };
  // QEMU's max-postcopy-bandwidth on the main connection, as the model's source applies it.
  const limit = s.source.maxPostcopyBandwidth > 0 ? new RateLimit(s.source.maxPostcopyBandwidth) : null;
  let sleptTo = -1;
  let count = 0, pushing = true, failure: Error | null = null;
  // The main connection's queues, sampled from READY to the last page written.
  let queued: { stop(): number | null } | undefined;
  // The clock starts at READY, the switchover (−1 before): the destination's set-up is not the migration's.
  let t0 = -1;
  const now = () => clockMs() - t0;

  // The current connections; `epoch` counts cuts, so a lost connection's events are ignored.
  let conn = first, preempt: Socket | null = null, epoch = 0, status: MigrationStatus = 'postcopy-active', completeEpoch = -1;
  let pausedAt = 0, healAt = 0, healTimer: NodeJS.Timeout | undefined, graceTimer: NodeJS.Timeout | undefined;
  // Aborted at a cut: a write waiting for 'drain' on the dead socket stops waiting.
  let cutSignal = new AbortController();
  const setStatus = (st: MigrationStatus, atMs = now()) => {
    status = st;
    r.history.push({ status: st, 'at-ms': Math.round(atMs * 1000) / 1000 });
  };

  /** One gathered write (writev) of frames or of a batch's chunks. */
  const write = async (chunks: readonly Buffer[], to: Socket = conn) => {
    // While not active the bytes would be lost anyway; the received bitmap sorts it out.
    if (status !== 'postcopy-active') return;
    let bytes = 0, below = true;
    to.cork();
    for (const b of chunks) {
      bytes += b.length;
      below = to.write(b);
    }
    to.uncork();
    r.bytesSent += bytes;
    if (to === preempt) {
      r.preemptWrites++;
      r.preemptBytes += bytes;
    } else limit?.add(bytes);
    // What the kernel did not take is waited for, as QEMU's migration thread blocks in its write:
    // the kernel's buffer stays full and nothing piles up in the process. (Until 2026-11-27 the
    // source went on to 1 MiB queued here first: a request then found the pipe full or just
    // emptied, and live fault latencies swung with it.)
    if (!below && to.writableLength > 0) await once(to, 'drain', { signal: cutSignal.signal }).catch(() => {});
  };
  /** A recovery handshake frame (not postcopy-active yet): written on the new main connection as it is. */
  const handshake = (type: FrameType.RECV_BITMAP | FrameType.RESUME) => {
    const b = encodeFrame(type, new Uint8Array(0));
    r.bytesSent += b.length;
    conn.write(b);
  };
  /** Writes the frames of pages taken off the unsent set, straight from the memory, in one gathered write. */
  const sendPages = async (gfns: number[], to?: Socket) => {
    count += gfns.length;
    if (gfns.length === 0) return;
    await write(encodePageFrames(gfns, memory), to);
  };
  /** COMPLETE once every page is written, again on a new connection if it was lost with the old one. */
  const finished = async () => {
    if (count < pages || completeEpoch === epoch || status !== 'postcopy-active') return;
    completeEpoch = epoch;
    if (r.completeMs < 0) {
      r.completeMs = now();
      r.sendQueuedBytes = queued?.stop() ?? null;
    }
    // On the preempt connection too: the destination is complete once both have said so, as a
    // page sent on one may arrive after COMPLETE on the other.
    if (preempt) void write([encodeFrame(FrameType.COMPLETE, new Uint8Array(0))], preempt);
    await write([encodeFrame(FrameType.COMPLETE, new Uint8Array(0))]);
  };
  const background = async (): Promise<void> => {
    const e = epoch;
    // Over budget the push sleeps to the window's end (migration_rate_limit), in the queue's one
    // task: a REQUEST read meanwhile waits for the window, as in QEMU 7.2 and the model's source;
    // those read before it went out first (priority), over budget.
    if (limit !== null && limit.exceeded(now() * 1e6)) {
      // Once a window: a timer may fire a little early (libuv's cached clock), and the push then
      // sleeps again for what is left of the same window.
      if (limit.windowEnd !== sleptTo) r.rateLimitSleeps++;
      sleptTo = limit.windowEnd;
      await sleep(Math.ceil(limit.windowEnd / 1e6 - now()), undefined, { signal: cutSignal.signal }).catch(() => {});
      if (e === epoch) void queue.add(background, { priority: 0 });
      return;
    }
    const gfns: number[] = [];
    for (let room = policy.backgroundBudget(BATCH_PAGES); gfns.length < room;) {
      const g = policy.nextBackground();
      if (g < 0) break;
      // Off the set at once, as the model's source does: the policy's next pick must differ.
      unsent.remove(g);
      gfns.push(g);
    }
    policy.backgroundSent(gfns.length);
    r.pagesPushed += gfns.length;
    await sendPages(gfns);
    // Writes the kernel takes at once never leave the microtask queue: without a turn of the event
    // loop per batch, REQUESTs (and the fault timers) would wait for the whole push.
    await new Promise(setImmediate);
    // A cut meanwhile: the resume starts the push again.
    if (e !== epoch) return;
    await finished();
    // A policy that holds back for now is asked again at the next request.
    pushing = gfns.length > 0 && count < pages && !failure;
    if (pushing) void queue.add(background, { priority: 0 });
  };
  const serve = async (gfn: number, n: number, to?: Socket): Promise<void> => {
    r.servedAt[gfn] = Number(process.hrtime.bigint());
    const gfns: number[] = [];
    for (let g = gfn; g < Math.min(pages, gfn + n); g++) {
      if (!unsent.has(g)) continue;
      unsent.remove(g);
      gfns.push(g);
    }
    r.pagesDemanded += gfns.length;
    await sendPages(gfns, to);
    await finished();
  };
  const startPush = () => {
    if (pushing || count >= pages) return;
    pushing = true;
    void queue.add(background, { priority: 0 });
  };

  let fail!: (e: Error) => void;
  let main!: (f: Frame) => void;
  let ready!: () => void;
  const readied = new Promise<void>((resolve) => (ready = resolve));
  const verified = new Promise<void>((resolve, reject) => {
    fail = (e: Error) => {
      failure ??= e;
      queue.clear();
      reject(e);
    };
    /** A frame from the destination: on the main connection (REQUESTs on the preempt one too). */
    main = (f: Frame) => {
      if (f.type === FrameType.READY && t0 < 0) {
        t0 = clockMs();
        ready();
      } else if (f.type === FrameType.REQUEST && status === 'postcopy-active') {
        const { gfn, count: n } = decodeRequest(f.payload, f);
        if (gfn >= pages || n < 1) throw new PostcopyEmuError('frame', `frame ${f.index}: request for pages ${gfn}+${n} outside the guest's ${pages}`);
        r.requests++;
        policy.requested(gfn);
        policy.faulted(gfn + n - 1);
        // On the preempt connection at once; on the main one, before the next background batch;
        // never with a policy that ignores requests (push-only: the scan gets there), as the model's source.
        if (!policy.ignoresRequests) {
          if (preempt) void serve(gfn, n, preempt);
          else void queue.add(() => serve(gfn, n), { priority: 1 });
        }
        startPush();
      } else if (f.type === FrameType.RECV_BITMAP && status === 'postcopy-recover') {
        reload(decodeRecvBitmap(f.payload, pages, f));
      } else if (f.type === FrameType.RESUME_ACK && status === 'postcopy-recover') {
        resumed();
      } else if (f.type === FrameType.VERIFY) {
        r.verify = decodeVerify(f.payload, f) as SourceResult['verify'];
        r.verifiedMs = now();
        resolve();
      } else if (f.type === FrameType.ERROR) {
        throw new PostcopyEmuError('live', `the destination failed: ${decodeErrorText(f.payload)}`);
      } else {
        throw new FrameError(`unexpected ${FrameType[f.type]} from the destination while ${status}`, f);
      }
    };
  });

  /**
   * Reads a connection's frames while its epoch is current; losing it pauses the run. A new one
   * says what it is with its first frame: RECONNECT (the main connection, again) or PREEMPT.
   */
  function attach(socket: Socket, known: boolean): void {
    let mine = epoch, role: 'new' | 'main' | 'preempt' = known ? 'main' : 'new';
    const connectedAt = now();
    const decoder = new FrameDecoder();
    const current = () => mine === epoch && !failure;
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const f of decoder.push(chunk)) {
          if (role === 'new') {
            const r = introduce(socket, f, connectedAt);
            // Not a connection of this migration's destination: closed, and the run goes on.
            if (r === null) return void socket.destroy();
            role = r;
            mine = epoch;
          } else if (!current()) return;
          // The destination's preempt thread sends its REQUESTs on its own connection.
          else if (role === 'main' || f.type === FrameType.REQUEST) main(f);
          else throw new FrameError(`unexpected ${FrameType[f.type]} on the preempt connection`, f);
        }
      } catch (e) {
        // Bytes that are not frames from a connection not yet known: not ours, closed.
        if (role === 'new') socket.destroy();
        else if (current()) fail(e as Error);
      }
    });
    const lost = (why: string) => {
      if (role === 'new' || !current() || r.verifiedMs >= 0) return;
      // Before READY nothing has migrated yet: there is nothing to recover.
      if (!s.recovery.enabled || !incoming || t0 < 0) fail(new PostcopyEmuError('live', why));
      else cut(0);
    };
    socket.on('error', (e) => lost(`the connection to the destination failed: ${e.message}`));
    socket.on('close', () => lost('the destination closed the connection before it verified the pages'));
  }

  /** A new connection's first frame: it becomes the main connection again, the preempt one, or neither (null). */
  function introduce(socket: Socket, f: Frame, connectedAt: number): 'main' | 'preempt' | null {
    if (f.type === FrameType.PREEMPT && status === 'postcopy-active' && !preempt) {
      preempt = socket;
      if (completeEpoch === epoch) void write([encodeFrame(FrameType.COMPLETE, new Uint8Array(0))], socket);
      return 'preempt';
    }
    if (f.type === FrameType.RECONNECT) {
      // The destination found the old connection dead before we did.
      if (status === 'postcopy-active') cut(0);
      clearTimeout(healTimer);
      clearTimeout(graceTimer);
      epoch++;
      conn = socket;
      setStatus('postcopy-recover-setup', Math.max(connectedAt, pausedAt));
      recover();
      return 'main';
    }
    return null;
  }

  /** The link is down for `downMs` from now: pause (or stay paused longer). */
  function cut(downMs: number): void {
    // After COMPLETE nothing is left to lose (docs/recovery.md), as in the model.
    if (failure || r.verifiedMs >= 0 || (status === 'postcopy-active' && completeEpoch === epoch)) return;
    if (!s.recovery.enabled || !incoming) {
      fail(new PostcopyEmuError('live', `the connection was cut at ${now().toFixed(1)} ms and ${incoming ? 'recovery.enabled is false' : 'this source cannot accept a new connection'}: the guest is lost`));
      return;
    }
    healAt = Math.max(healAt, now() + downMs);
    // Each entry into postcopy-paused is a pause, as the model counts them; a cut during the
    // handshake continues the outage that began when postcopy was last active.
    if (status === 'postcopy-active') pausedAt = now();
    if (status !== 'postcopy-paused') {
      r.pauses++;
      setStatus('postcopy-paused');
    }
    epoch++;
    cutSignal.abort();
    cutSignal = new AbortController();
    queue.clear();
    pushing = false;
    conn.destroy();
    preempt?.destroy();
    preempt = null;
    incoming.close();
    clearTimeout(healTimer);
    clearTimeout(graceTimer);
    healTimer = setTimeout(heal, Math.max(0, healAt - now()));
  }

  /** The outage is over: let the destination connect again. */
  function heal(): void {
    graceTimer = setTimeout(() => fail(new PostcopyEmuError('live', `the destination did not reconnect within ${RECONNECT_GRACE_MS / 1000} s of the link coming back`)), RECONNECT_GRACE_MS);
    listen();
  }

  /** Opens the listener again (a no-op while it listens). */
  function listen(): void {
    incoming!.open().catch((e: Error) => fail(new PostcopyEmuError('live', `cannot listen for the destination again: ${e.message}`)));
  }

  /** Connected again (migrate_fd_connect): ask for the destination's bitmap (MIG_CMD_RECV_BITMAP). */
  function recover(): void {
    setStatus('postcopy-recover');
    // The link is up: the listener takes the preempt connection and any later reconnection (a
    // destination that found the connection dead first came in before cut() closed it).
    listen();
    handshake(FrameType.RECV_BITMAP);
  }

  /** The bitmap arrived: what the destination does not hold is sent again, after RESUME and its ack. */
  function reload(held: Uint8Array): void {
    // Only the pages sent so far (the unsent set's gaps) can be missing at the destination.
    for (let g = unsent.nextGap(0); g < pages; g = unsent.nextGap(g + 1)) {
      if (((held[g >>> 3]! >>> (g & 7)) & 1) === 0) {
        unsent.add(g);
        count--;
        r.resentPages++;
      }
    }
    policy = makePolicy(s.source, unsent);
    handshake(FrameType.RESUME);
  }

  /** RESUME_ACK: both sides are active again, the push goes on (postcopy_resume_handshake). */
  function resumed(): void {
    setStatus('postcopy-active');
    r.pausedMs += now() - pausedAt;
    void queue.add(finished, { priority: 1 });
    startPush();
  }

  attach(first, true);
  incoming?.onConnection((socket) => {
    socket.setNoDelay(true);
    attach(socket, false);
  });
  let timers: NodeJS.Timeout[] = [];
  try {
    await write([encodeFrame(FrameType.HELLO, encodeHello({ scenario: s, seed: s.seed, ...(wireMbps ? { wireMbps } : {}) }))]);
    await Promise.race([readied, verified]);
    const main = conn;
    queued = sampleQueues(main, (_, outq) => outq + main.writableLength);
    timers = timedFaults(s, new Rng(s.seed, 'faults'), 0)
      .filter((f) => f.spec.kind === 'link-cut' || f.spec.kind === 'source-crash')
      .map((f) => setTimeout(() => cut((f.end - f.start) / 1e6), f.start / 1e6));
    void queue.add(background, { priority: 0 });
    await verified;
    await queue.onIdle();
    conn.end();
    (preempt as Socket | null)?.end();
    return r;
  } finally {
    for (const t of timers) clearTimeout(t);
    clearTimeout(healTimer);
    clearTimeout(graceTimer);
  }
}
