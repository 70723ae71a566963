import { fork } from 'node:child_process';
import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { PostcopyEmuError, UsageError } from '../io/errors.ts';
import { ScenarioError } from '../scenario/error.ts';
import { packageRoot } from '../io/package.ts';
import type { RunReport } from '../metrics/report.ts';
import { ringUnbounded, type Scenario } from '../scenario/schema.ts';
import { runDestination } from './destination.ts';
import type { DestinationStats, LiveBackend } from './setup.ts';
import type { LatencySummary } from '../metrics/latency.ts';
import { latencySummary, measuredReport } from './measured.ts';
import { runSource, type Incoming, type SourceResult } from './source.ts';
import { createSourceMemory } from './source-memory.ts';

/** Guest memory a live run may map: the source holds all of it in one Buffer, the destination in its region. */
export const LIVE_MAX_BYTES = 2 ** 30;
/** The destination's read buffer: at most this much of the stream is read at once. */
export const READ_BYTES = 1 << 20;
/** A run that has not verified by then is stopped (the bound that always fires). */
export const LIVE_TIMEOUT_MS = 600_000;

/** What `live` adds to a run report: how the run was made and what it measured. */
export interface LiveSection {
  backend: LiveBackend;
  /** Why the software pager ran instead of userfaultfd (null when userfaultfd ran). */
  'backend-reason': string | null;
  'verified-pages': number;
  mismatches: number;
  /** The destination's end check of every page as placed, ms: after the migration, not in total-time. */
  'verify-ms': number;
  'pages-per-second': number;
  'page-bytes-per-second': number;
  'bytes-sent': number;
  'ring-max-occupancy': number;
  /**
   * Median bytes the main connection held while streaming, on each side (null: not measured, no
   * addon): the source's queue and unacknowledged bytes, the destination's unread ones. A page asked
   * for waits behind them: the model's link.sendBufferBytes and receiveBufferBytes (live --calibrate).
   */
  'send-queued-bytes': number | null;
  'receive-queued-bytes': number | null;
  /** Windows the push slept to the end of, their `source.maxPostcopyBandwidth` budget spent (0: no limit). */
  'rate-limit-sleeps': number;
  /** The wire the destination read the stream at (`live --wire`: `link.rateMbps`), Mbit/s; null: loopback's own speed. */
  'wire-mbps': number | null;
}
/**
 * `emulator.host` of a live run: what this host measured, where a simulated run has its own wall
 * time. The fault round trip is the vCPUs' (touch to running again, ns); UFFDIO_COPY's cost per
 * page is wall ns over pages, for single-page copies and for runs (range population).
 */
export interface LiveHost {
  'wall-ms': number;
  'peak-rss-bytes': number;
  'fault-round-trip-ns': LatencySummary;
  /**
   * A REQUEST's way to the source's send path: from the destination building it (its write then
   * waits for the socket) to the source beginning to serve it, ns, on one host's clock; null when
   * the destination ran elsewhere (--listen).
   */
  'request-transit-ns': LatencySummary | null;
  /**
   * A requested page's way back: from the source beginning to serve its REQUEST (its write waits
   * for the socket) to the page's placement at the destination, ns, behind whatever the stream
   * holds between the two; null as above.
   */
  'page-transit-ns': LatencySummary | null;
  'uffd-copy-ns-per-page': { single: number | null; run: number | null; 'run-pages': number | null } | null;
  'pages-per-second': number;
  'bytes-sent': number;
}
export type LiveReport = RunReport & { live: LiveSection; emulator: RunReport['emulator'] & { host: LiveHost } };

/** The scenarios live mode runs (`wire`: live --wire), with the field that rules the others out. */
export function checkLive(s: Scenario, wire = false): void {
  if (wire && s.preempt.enabled) throw new ScenarioError('preempt.enabled', 'live --wire paces the main connection, and the preempt connection would go around the wire: leave preempt off with --wire');
  if (s.migration.mode !== 'postcopy') throw new ScenarioError('migration.mode', `live runs postcopy (got ${s.migration.mode}): precopy and hybrid are the model's for now`);
  if (s.devices.length > 0) throw new ScenarioError('devices', 'live has no passthrough devices: leave devices out');
  // Without a push only a workload that touches every page ends: a sequential one over all of
  // memory (its four passes touch each page), the idle stream-free fault round trip.
  const region = s.workload.region ?? { start: 0, count: s.memory.pages };
  const touchesAll = s.workload.kind === 'sequential' && region.start === 0 && region.count >= s.memory.pages;
  if (s.source.policy === 'lazy-pages' || (s.source.policy === 'demand' && !touchesAll)) {
    throw new ScenarioError('source.policy', `live needs a background push: ${s.source.policy} would leave untouched pages at the source for ever (demand runs with a sequential workload over all of memory)`);
  }
  s.faults.forEach((f, i) => {
    if (f.kind !== 'link-cut' && f.kind !== 'source-crash') throw new ScenarioError(`faults.${i}.kind`, `live injects link-cut and source-crash (a real cut of the connection), got ${f.kind}: degrade and backchannel-loss are the model's`);
  });
  if (s.memory.pages * s.memory.pageSize > LIVE_MAX_BYTES) {
    throw new ScenarioError('memory.pages', `a live guest is at most ${LIVE_MAX_BYTES / 2 ** 20} MiB (memory.pages × memory.pageSize), got ${(s.memory.pages * s.memory.pageSize) / 2 ** 20} MiB`);
  }
}

/** host:port → its parts (port 1–65535). */
export function hostPort(field: string, v: string): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(v);
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65_535) throw new UsageError(`${field}: must be HOST:PORT with a port from 1 to 65535, got "${v}"`, field);
  return { host: m[1]!, port };
}

/**
 * A connection to the source. Reads land in `readBuffer`, reused, and are handed on as 'data'
 * (the frame decoder keeps no chunk): a fresh buffer per read costs a page fault per 4 KiB here,
 * which held loopback to ~350 MiB/s. A function gives the buffer of each read (its size, the read's).
 */
export async function dial(host: string, port: number, readBuffer: Buffer | (() => Buffer) = Buffer.allocUnsafe(READ_BYTES)): Promise<Socket> {
  const socket: Socket = createConnection({ host, port, onread: { buffer: readBuffer, callback: (n, buf) => {
    socket.emit('data', buf.subarray(0, n));
    return true;
  } } });
  socket.setNoDelay(true);
  try {
    await once(socket, 'connect');
  } catch (e) {
    socket.destroy();
    throw e;
  }
  return socket;
}

/** The destination role: connects to the source and runs the software pager until VERIFY is sent. */
export async function runDestinationAt(host: string, port: number, backend: LiveBackend | 'auto' = 'auto'): Promise<void> {
  // One buffer for every connection this side makes: one is read at a time, `readBytes` of it
  // (a paced wire reads less at a time).
  const readBuffer = Buffer.allocUnsafe(READ_BYTES);
  let readBytes = READ_BYTES;
  const connect = () => dial(host, port, () => readBuffer.subarray(0, readBytes));
  let socket: Socket;
  try {
    socket = await connect();
  } catch (e) {
    throw new PostcopyEmuError('--destination', `--destination: cannot connect to the source at ${host}:${port}: ${(e as Error).message}`);
  }
  // After a cut the source listens at the same address again (postcopy recovery).
  await runDestination(socket, { backend, reconnect: connect, preemptTo: { host, port }, readSize: (n) => (readBytes = n) });
}

/**
 * The source's listener for the destination's later connections (recovery, preempt): it stays
 * open after the first, and is closed while a cut link is down, so a reconnection is refused.
 */
export function incomingOn(server: Server, port: number, host: string): Incoming {
  return {
    open: () => new Promise<void>((resolve, reject) => {
      if (server.listening) return resolve();
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    }),
    close: () => void server.close(),
    onConnection: (handle) => void server.on('connection', handle),
  };
}

/**
 * One live migration: the source listens (on `listen`, or on a free loopback port with the
 * destination forked as a second process of this CLI), sends the guest's pages as real bytes,
 * and builds the result from what both sides measured.
 */
export async function runLive(s: Scenario, o: { listen?: { host: string; port: number }; backend?: LiveBackend | 'auto'; wire?: boolean } = {}): Promise<LiveReport> {
  checkLive(s, o.wire);
  const server = createServer();
  server.listen(o.listen?.port ?? 0, o.listen?.host ?? '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const child = o.listen ? null : fork(`${packageRoot}bin/postcopy-emu.mjs`, ['live', '--destination', `127.0.0.1:${port}`, '--backend', o.backend ?? 'auto'], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let childErr = '';
  child?.stderr?.on('data', (d: Buffer) => (childErr += d.toString()));
  // With --listen the destination is not ours to watch: nothing ends the races below on its behalf.
  const exited: Promise<unknown[]> = child ? once(child, 'exit') : new Promise<never>(() => {});
  const timer = setTimeout(() => {
    child?.kill();
    server.close();
  }, LIVE_TIMEOUT_MS);
  try {
    // The guest's RAM exists before the migration: filled while the destination starts up.
    const memory = createSourceMemory(s);
    const socket = await Promise.race([once(server, 'connection').then(([c]) => c as Socket), exited.then(() => {
      throw new PostcopyEmuError('live', `the destination process ended before it connected: ${childErr.trim() || 'no message'}`);
    })]);
    socket.setNoDelay(true);
    const t0 = performance.now();
    // The destination ending with an error fails the run at once, even while the source waits for a reconnection.
    const wireMbps = o.wire ? s.link.rateMbps : undefined;
    const r = await Promise.race([runSource(socket, s, memory, () => performance.now() - t0, incomingOn(server, port, o.listen?.host ?? '127.0.0.1'), wireMbps), exited.then(([code]) => {
      if (code !== 0) throw new PostcopyEmuError('live', `the destination process exited with ${String(code)}: ${childErr.trim()}`);
      return new Promise<never>(() => {});
    })]);
    const [code] = child ? await exited : [0];
    if (code !== 0) throw new PostcopyEmuError('live', `the destination process exited with ${String(code)}: ${childErr.trim()}`);
    return liveReport(s, r, child !== null, wireMbps ?? null);
  } catch (e) {
    child?.kill();
    throw e;
  } finally {
    clearTimeout(timer);
    server.close();
  }
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/**
 * Each requested page's way, from the destination's [gfn, asked, placed] triples and the source's
 * times of serving: the REQUEST's to the source serving it, and the page's back to its placement.
 */
function transits(requested: readonly number[], servedAt: Float64Array): { request: number[]; page: number[] } {
  const request: number[] = [], page: number[] = [];
  for (let i = 0; i + 2 < requested.length; i += 3) {
    const g = requested[i]!, asked = requested[i + 1]!, placed = requested[i + 2]!, served = servedAt[g] ?? 0;
    // Asked for again after it was served (a resume asks for what it holds no answer to): not a transit.
    if (served < asked) continue;
    request.push(served - asked);
    // Placed before it was served: it was in flight already when asked for (a background page).
    if (placed >= served) page.push(placed - served);
  }
  return { request, page };
}

/** The run in the emulator's JSON shape, with QEMU's names; `live` says what was measured how. */
function liveReport(s: Scenario, r: SourceResult, oneHost: boolean, wireMbps: number | null): LiveReport {
  const st = r.verify.stats as Partial<DestinationStats>;
  const backend = st.backend ?? 'software';
  const pages = s.memory.pages, size = s.memory.pageSize;
  const ok = r.verify.mismatches === 0 && r.verify.pagesPresent === pages;
  // The migration ends when the destination holds every page (QEMU's completion), whatever its
  // vCPUs still do; the end check after it is the harness's.
  const verifyMs = st.verifyMs ?? 0;
  const totalMs = round3(st.migratedMs ?? r.verifiedMs - verifyMs);
  const seconds = r.completeMs / 1000;
  const report = measuredReport({
    scenario: s,
    status: ok ? 'completed' : 'failed',
    totalTimeMs: totalMs,
    downtimeMs: round3(st.resumedMs ?? 0),
    ram: {
      transferred: r.bytesSent, remaining: 0, total: pages * size, duplicate: r.zeroPages, normal: pages - r.zeroPages, 'normal-bytes': (pages - r.zeroPages) * size,
      'dirty-pages-rate': 0, mbps: seconds > 0 ? round3((r.bytesSent * 8) / seconds / 1e6) : 0, 'dirty-sync-count': 0,
      'postcopy-requests': r.requests, 'page-size': size, 'multifd-bytes': 0,
      'pages-per-second': seconds > 0 ? Math.round(pages / seconds) : 0, 'precopy-bytes': 0, 'downtime-bytes': 0, 'postcopy-bytes': r.bytesSent,
    },
    latenciesNs: st.faultLatencyNs ?? [],
    requests: st.faults ?? r.requests,
    history: [...r.history, { status: ok ? 'completed' : 'failed', 'at-ms': totalMs }],
    recovery: { pauses: r.pauses, 'resent-pages': r.resentPages, 're-requested-pages': st.reRequestedPages ?? 0, 'paused-time-ms': round3(r.pausedMs), 'lost-fault-records': 0 },
    warnings: [`a live run: the ${backend === 'uffd' ? 'userfaultfd pager (UFFDIO_COPY)' : 'software pager (SharedArrayBuffer, Atomics.wait)'} over real TCP on this host; what the model simulates inside the hypervisor (eviction, the device model) is not part of it and reads 0`],
    postcopyDurationMs: totalMs,
    pagesPending: pages - r.verify.pagesPresent,
    pagesPushed: r.pagesPushed,
    pagesLoaded: r.verify.pagesPresent,
    ring: { capacity: ringUnbounded(s) ? 0 : s.ring.capacity, 'max-occupancy': st.maxOccupancy ?? 0, 'time-full': 0, ebusy: 0 },
    link: { 'stream-wire-bytes': r.bytesSent, 'stream-records': pages, 'preempt-records': r.preemptWrites, 'preempt-bytes': r.preemptBytes },
  });
  const copy = st.uffdCopy ?? null;
  const way = oneHost ? transits(st.requestedAtNs ?? [], r.servedAt) : null;
  const per = (ns: number, n: number) => (n > 0 ? Math.round(ns / n) : null);
  const host: LiveHost = {
    'wall-ms': totalMs,
    'peak-rss-bytes': process.resourceUsage().maxRSS * 1024,
    'fault-round-trip-ns': latencySummary(st.faultRoundTripNs ?? []),
    'request-transit-ns': way && latencySummary(way.request),
    'page-transit-ns': way && latencySummary(way.page),
    'uffd-copy-ns-per-page': copy && {
      single: per(copy.singleNs, copy.singleCalls), run: per(copy.runNs, copy.runPages), 'run-pages': copy.runCalls > 0 ? round3(copy.runPages / copy.runCalls) : null,
    },
    'pages-per-second': report.ram['pages-per-second'],
    'bytes-sent': r.bytesSent,
  };
  return {
    ...report,
    emulator: { ...report.emulator, host },
    live: {
      backend,
      'backend-reason': st.backendReason ?? null,
      'verified-pages': r.verify.pagesPresent,
      mismatches: r.verify.mismatches,
      'verify-ms': round3(verifyMs),
      'pages-per-second': report.ram['pages-per-second'],
      'page-bytes-per-second': seconds > 0 ? Math.round((pages * size) / seconds) : 0,
      'bytes-sent': r.bytesSent,
      'ring-max-occupancy': st.maxOccupancy ?? 0,
      'send-queued-bytes': r.sendQueuedBytes,
      'receive-queued-bytes': st.receiveQueuedBytes ?? null,
      'rate-limit-sleeps': r.rateLimitSleeps,
      'wire-mbps': wireMbps,
    },
  };
}
