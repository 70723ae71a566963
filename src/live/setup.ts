import { PostcopyEmuError } from '../io/errors.ts';
import { Rng } from '../kernel/rng.ts';
import { ringUnbounded, type Scenario } from '../scenario/schema.ts';
import type { Frame } from './frame.ts';
import { decodeHello } from './payload.ts';
import { UNBOUNDED_CAPACITY } from './ring.ts';
import { loadUffd, type Uffd } from './uffd.ts';
import type { VcpuResult } from './vcpu-worker.ts';

/** What the live destination builds from HELLO, and what it reports in VERIFY. */

/** Fault latencies VERIFY carries at most: beyond it, a uniform sample. */
export const MAX_LATENCY_SAMPLES = 100_000;
/** Request times a destination reports at most (a few KB of VERIFY). */
export const MAX_REQUEST_STAMPS = 4096;

/** What the destination measured: VERIFY's JSON, and what runDestination resolves with. */
export interface DestinationStats {
  /** Pages present at the end (VERIFY's first u32) and pages whose bytes as placed were wrong (its second). */
  pagesPresent: number;
  mismatches: number;
  /** vCPU touches of a page that was not present, over all vCPUs. */
  faults: number;
  /**
   * Each fault's latency, ns, in vCPU order (a uniform sample if more than MAX_LATENCY_SAMPLES):
   * from the touch to the page's placement (vcpu-worker.ts).
   */
  faultLatencyNs: number[];
  /** The same faults' round trips, from the touch to the vCPU running again (the same sample). */
  faultRoundTripNs: number[];
  /** [gfn, asked ns, placed ns] triples, flat: when pages were last asked for and placed (placer.ts requestStamps). */
  requestedAtNs: number[];
  /** The end check of every page as placed (verifyPlaced), ms: not part of the migration. */
  verifyMs: number;
  /** ms from READY until every page was present and COMPLETE had come: the migration's end. */
  migratedMs: number;
  /** Median bytes unread in the main connection's kernel receive queue from READY to COMPLETE; null: not measured. */
  receiveQueuedBytes: number | null;
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
  /** Pages still REQUESTED when RESUME_ACK came, asked for again (over all recoveries). */
  reRequestedPages: number;
  /** userfaultfd: the UFFDIO_COPY calls of one page and of a run, their pages and wall ns (null: the software pager). */
  uffdCopy: { singleCalls: number; singleNs: number; runCalls: number; runPages: number; runNs: number } | null;
  /** ms from READY to the first vCPU running (the guest resumed on this side). */
  resumedMs: number;
  /** ms from HELLO to VERIFY. */
  elapsedMs: number;
  /** The pager that ran: the kernel's userfaultfd through the addon, or the software one, and why. */
  backend: LiveBackend;
  backendReason: string | null;
}

/** Which pager the destination runs: `auto` takes userfaultfd when the addon can open one. */
export type LiveBackend = 'uffd' | 'software';

/** The userfaultfd pager when asked for (or `auto` and available), with the reason when not. */
export function chooseBackend(asked: LiveBackend | 'auto', pageSize: number): { uffd: Uffd | null; reason: string | null } {
  if (asked === 'software') return { uffd: null, reason: 'the software pager was asked for' };
  const u = loadUffd();
  const reason = 'reason' in u ? u.reason : pageSize !== 4096 ? `memory.pageSize ${pageSize} is not the host's 4096-byte page` : null;
  if (reason !== null && asked === 'uffd') throw new PostcopyEmuError('--backend', `--backend uffd: ${reason}`);
  return reason === null && 'uffd' in u ? { uffd: u.uffd, reason: null } : { uffd: null, reason };
}

/** What HELLO sets up, from its scenario. */
export interface Setup {
  seed: number;
  pages: number;
  pageSize: number;
  capacity: number;
  vcpus: number;
  pattern: 'idle' | 'sequential' | 'random';
  regionStart: number;
  regionCount: number;
  writeFraction: number;
  /** Mean ns between a vCPU's touches (`workload.thinkNs`). */
  thinkNs: number;
  /** Whether each think time is exactly thinkNs (`workload.think: constant`) rather than an exponential draw. */
  constantThink: boolean;
  /** The scenario's zero pages, drawn as the source draws them: what the end check expects zero. */
  zeroFraction: number;
  zeroRanges: { start: number; count: number }[];
  /** Whether a lost connection pauses (and this side reconnects) rather than failing the run. */
  recovery: boolean;
  /** Whether requested pages come on a connection of their own (QEMU's postcopy-preempt). */
  preempt: boolean;
  /** Whether a fault thread writes each page's REQUEST itself (`pager.faultThread`; unset, the qemu policy's). */
  faultThread: boolean;
  /** The longest outage the scenario injects, ms: how long a reconnection may take, plus a grace. */
  maxOutageMs: number;
  /** The wire the main connection's reads are paced at, Mbit/s (`live --wire`); 0: none. */
  wireMbps: number;
}

const helloError = (what: string) => new PostcopyEmuError('live', `HELLO: ${what}`);
const isInt = (v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): v is number => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;

/** Reads HELLO (`{ scenario, seed }`, the scenario as the source parsed it): what this side builds. */
export function readHello(f: Frame): Setup {
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
  const thinkNs = w.thinkNs ?? 0;
  if (!isInt(thinkNs, 0, 1e12)) throw helloError(`workload.thinkNs must be an integer from 0 to 1e12 ns, got ${JSON.stringify(thinkNs)}`);
  const think = w.think ?? 'exponential';
  if (think !== 'exponential' && think !== 'constant') throw helloError(`workload.think must be exponential or constant, got ${JSON.stringify(think)}`);
  const zeroFraction = s.memory.zeroFraction ?? 0, zeroRanges = s.memory.zeroRanges ?? [];
  if (typeof zeroFraction !== 'number' || !(zeroFraction >= 0 && zeroFraction <= 1)) throw helloError(`memory.zeroFraction must be in [0, 1], got ${JSON.stringify(zeroFraction)}`);
  if (!Array.isArray(zeroRanges) || !zeroRanges.every((r) => isInt(r?.start, 0) && isInt(r?.count, 1) && r.start + r.count <= pages)) {
    throw helloError(`memory.zeroRanges ${JSON.stringify(zeroRanges)} must be ranges {start, count} within memory.pages (${pages})`);
  }
  return {
    seed, pages, pageSize, zeroFraction, zeroRanges,
    capacity: unbounded ? UNBOUNDED_CAPACITY : s.ring.capacity,
    vcpus: w.vcpus,
    // The kinds live mode has no pattern of its own for yet touch at random.
    pattern: w.kind === 'idle' || w.kind === 'sequential' ? w.kind : 'random',
    regionStart: region.start, regionCount: region.count, writeFraction, thinkNs, constantThink: think === 'constant',
    recovery: s.recovery?.enabled !== false,
    preempt: s.preempt?.enabled === true,
    faultThread: (s.pager?.faultThread ?? s.source.policy === 'qemu') === true,
    wireMbps: hello.wireMbps ?? 0,
    maxOutageMs: Math.max(0, ...(Array.isArray(s.faults) ? s.faults as { durationNs?: number; restartNs?: number }[] : []).map((f) => Number(f?.durationNs ?? f?.restartNs ?? 0) / 1e6).filter(Number.isFinite)),
  };
}

/** What the vCPU threads measured, as the destination reports it. */
export function vcpuStats(done: readonly VcpuResult[], s: Setup): Pick<DestinationStats, 'faults' | 'faultLatencyNs' | 'faultRoundTripNs' | 'vcpuMs'> {
  const faults = done.reduce((n, r) => n + r.faults, 0);
  const vcpuMs = new Array<number>(s.vcpus).fill(0);
  for (const r of done) vcpuMs[r.vcpu] = r.ms;
  return {
    faults, vcpuMs,
    faultLatencyNs: sampleLatencies(done.map((r) => r.latencyNs), faults, s.seed),
    faultRoundTripNs: sampleLatencies(done.map((r) => r.roundTripNs), faults, s.seed),
  };
}

/** All of `all` if it fits, else a uniform sample of MAX_LATENCY_SAMPLES of it, in order (selection sampling). */
export function sampleLatencies(all: readonly Float64Array[], total: number, seed: number): number[] {
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

