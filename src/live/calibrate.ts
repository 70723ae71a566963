// Per-operation costs measured on this host: `postcopy-emu live --calibrate [--output FILE]`.
// Compiles native/calibrate.c into a temporary directory, runs it (userfaultfd needs root or
// vm.unprivileged_userfaultfd = 1) and gives the parameter set as a scenario fragment with a table.
// Single operations are measured, the live page stream's rate on an idle guest, and a REQUEST's
// way to the source while it streams: nothing here is fitted to a migration's outcome.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, release } from 'node:os';
import { join } from 'node:path';
import { PostcopyEmuError } from '../io/errors.ts';
import { median } from '../metrics/latency.ts';
import { packageRoot } from '../io/package.ts';
import { PREP_HYPERCALL_NS } from '../scenario/schema.ts';
import { parseScenario } from '../scenario/validate.ts';
import { READ_BYTES, runLive } from './live.ts';
import { BATCH_PAGES } from './source.ts';

/** A measurement: the median of the runs' medians, each run's median, samples per run. */
interface Sample { median: number; runs: number[]; n: number }
/** One calibrated parameter: its scenario path, value and how it was measured. */
export interface Param { path: string; value: number; how: string }

const RUN = 'postcopy-emu live --calibrate';

/** Runs of each measurement by default: the host is shared, a run's medians move by tens of percent under load. */
export const CALIBRATION_RUNS = 3;

function measure(runs: number): Map<string, Sample> {
  const dir = mkdtempSync(join(tmpdir(), 'calibrate-'));
  try {
    const bin = join(dir, 'calibrate');
    try {
      execFileSync('gcc', ['-O2', '-pthread', '-o', bin, join(packageRoot, 'native', 'calibrate.c')], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      throw new PostcopyEmuError('--calibrate', `--calibrate: cannot compile native/calibrate.c with gcc: ${(e as Error).message.split('\n')[0]}`);
    }
    const samples = new Map<string, Sample>();
    for (let r = 0; r < runs; r++) {
      for (const line of execFileSync(bin, { encoding: 'utf8' }).trim().split('\n')) {
        const [name, median, , , n] = line.split(' ');
        const s = samples.get(name!) ?? { median: 0, runs: [], n: Number(n) };
        s.runs.push(Number(median));
        samples.set(name!, s);
      }
    }
    for (const s of samples.values()) s.median = median(s.runs);
    return samples;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The bytes ahead of a page the source sends now, from a live run's queue medians: the source's
 * (its queue and the kernel's unacknowledged bytes), the destination's unread ones, and half the
 * destination's read buffer on average — taken off the socket and not placed yet, unseen by its
 * sampler, which runs between reads. The model's link stands for the whole pipeline, which is the
 * bottleneck, so all of it waits in the link's send buffer (its pager keeps up: its receive
 * buffer stays empty).
 */
export function queuedAhead(sent: number, received: number): number {
  return sent + received + READ_BYTES / 2;
}

/**
 * The live page stream's rate (Mbit/s of wire bytes): `runs` live migrations of an idle 256 MiB
 * guest (long enough for the JIT's start to matter little), every page pushed and verified. What
 * bounds a page's transfer here is the pipeline (framing, CRC, verification, placement), not the
 * loopback link: this stands for it in the model. With it come the stream's queue medians and
 * the page size of its runs.
 */
async function streamRate(runs: number): Promise<{ rate: Sample; sent: Sample | null; received: Sample | null; ahead: Sample | null; pageSize: number }> {
  const s = parseScenario({ memory: { pages: 65_536 }, source: { policy: 'xen' }, workload: { kind: 'idle', vcpus: 1 }, mapper: { mapping: { kind: 'none' } } });
  const rates: number[] = [], sent: number[] = [], received: number[] = [];
  for (let r = 0; r < runs; r++) {
    const live = await runLive(s);
    rates.push(Math.round((live.live['bytes-sent'] * 8) / (live['total-time'] / 1000) / 1e6));
    if (live.live['send-queued-bytes'] !== null) sent.push(live.live['send-queued-bytes']);
    if (live.live['receive-queued-bytes'] !== null) received.push(live.live['receive-queued-bytes']);
  }
  const sample = (values: number[]): Sample | null => (values.length === runs ? { median: median(values), runs: values, n: 65_536 } : null);
  const queues = { sent: sample(sent), received: sample(received) };
  // Each run's sum, where every run measured both sides.
  const ahead = queues.sent && queues.received ? sample(sent.map((x, r) => queuedAhead(x, received[r]!))) : null;
  return { rate: sample(rates)!, ...queues, ahead, pageSize: s.memory.pageSize };
}

/**
 * How long a REQUEST takes to reach the source's send path while the stream runs (the live
 * host's `request-transit-ns` p50): `runs` live migrations of a 128 MiB guest with one vCPU
 * touching at random, its faults asked for by the fault thread (QEMU's way). Its write waits for the
 * destination's read in progress on the same socket, and the source takes it up between its
 * 64-page batches: all of it is the model's back-channel latency. Null without a measurement
 * (no addon: no fault thread).
 */
async function requestTransit(runs: number): Promise<Sample | null> {
  const s = parseScenario({
    memory: { pages: 32_768 }, source: { policy: 'qemu' }, workload: { kind: 'random', vcpus: 1, region: { start: 0, count: 32_768 } }, mapper: { mapping: { kind: 'none' } },
  });
  const p50s: number[] = [];
  let n = 0;
  for (let r = 0; r < runs; r++) {
    const t = (await runLive(s)).emulator.host['request-transit-ns'];
    // A run whose vCPU found every page it touched already there asked for none.
    if (t === null || t.count === 0) continue;
    p50s.push(t.p50);
    n += t.count;
  }
  return p50s.length === 0 ? null : { median: median(p50s), runs: p50s, n: Math.round(n / p50s.length) };
}

/** The maximum of a `min default max` sysctl triple: what autotuning reaches on a bulk stream. */
function sysctlMax(name: string): number {
  return Number(readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8').trim().split(/\s+/)[2]);
}

/**
 * Measures this host's per-operation costs, each `runs` times: the parameters, a table of them,
 * and the scenario fragment (YAML).
 */
export async function calibrate(runs = CALIBRATION_RUNS): Promise<{ params: Param[]; table: string; yaml: string }> {
  const m = measure(runs);
  const stream = await streamRate(runs);
  const transit = await requestTransit(runs);
  const get = (name: string): Sample | undefined => m.get(name);
  const spread = (s: Sample): string => `runs' medians ${s.runs.join(' / ')}, ${s.n} samples each`;
  const params: Param[] = [];
  const add = (path: string, value: number, how: string): void => {
    params.push({ path, value: Math.max(0, Math.round(value)), how });
  };

  const copy4k = get('uffd_copy_4k'), copy64 = get('uffd_copy_64x4k'), zero = get('uffd_zeropage_4k');
  const uffd = copy4k !== undefined && copy64 !== undefined && zero !== undefined;
  if (uffd) {
    add('pager.uffdCopyNs', copy4k.median, `UFFDIO_COPY of one 4 KiB page (uffd_copy_4k, ${spread(copy4k)})`);
    add('pager.uffdCopyPerPageNs', (copy64.median - copy4k.median) / 63,
      `(UFFDIO_COPY of 64 pages ${copy64.median} − one page ${copy4k.median}) / 63 (uffd_copy_64x4k, ${spread(copy64)})`);
    add('pager.uffdZeroPageNs', zero.median, `UFFDIO_ZEROPAGE of 4 KiB (uffd_zeropage_4k, ${spread(zero)})`);
    const wake = get('fault_wake')!, readMsg = get('fault_read_msg')!, resume = get('fault_place_resume')!;
    add('pager.wakeNs', wake.median, `a thread touches a missing page → the handler's poll() returns (fault_wake, ${spread(wake)})`);
    add('pager.drainPerRequestNs', readMsg.median, `read() of one uffd_msg (fault_read_msg, ${spread(readMsg)})`);
    add('pager.notifyNs', resume.median - copy4k.median,
      `uffd_msg read → the toucher runs again (fault_place_resume ${resume.median}, ${spread(resume)}) − uffdCopyNs`);
  }
  const r4 = get('tcp_read_4k')!, r32 = get('tcp_read_32k')!, w16 = get('tcp_write_16b')!, rtt = get('tcp_rtt_16b')!;
  const perPage = Math.max(0, (r32.median - r4.median) / 7);
  add('pager.recvPerPageNs', perPage, `(loopback TCP read() of 32 KiB queued ${r32.median} − of 4 KiB ${r4.median}) / 7 (tcp_read_32k, tcp_read_4k)`);
  add('pager.readCallNs', r4.median - perPage, `loopback TCP read() of 4 KiB queued (tcp_read_4k, ${spread(r4)}) − recvPerPageNs`);
  add('pager.faultRecordNs', w16.median, `write() of 16 B on loopback TCP, TCP_NODELAY (tcp_write_16b, ${spread(w16)})`);
  add('link.rateMbps', stream.rate.median, `the live page stream: wire bytes of an idle 256 MiB guest over its total-time (${RUN}'s own live runs; runs ${stream.rate.runs.join(' / ')} Mbit/s)`);
  // What a requested page waits behind: the bytes the stream holds between its ends, measured in
  // the same runs (the kernel's autotuned buffers fill when the destination is the slower side).
  if (stream.sent && stream.received && stream.ahead) {
    add('link.sendBufferBytes', stream.ahead.median, `bytes ahead of a page sent now (queuedAhead): the source's queue and the kernel's unacknowledged bytes (SIOCOUTQ; runs' medians ${stream.sent.runs.join(' / ')}), the destination's unread bytes (SIOCINQ; below) and half its ${READ_BYTES}-byte read, each sampled every 2 ms; the median of the runs' sums ${stream.ahead.runs.join(' / ')}`);
    add('link.receiveBufferBytes', stream.received.median, `median bytes unread in the live destination's receive queue while streaming (SIOCINQ), sampled every 2 ms (runs ${stream.received.runs.join(' / ')})`);
  } else {
    add('link.sendBufferBytes', BATCH_PAGES * stream.pageSize, 'one batch of the live source, what it may queue in the process beyond the kernel (src/live/source.ts; the kernel\'s queues not measured without the addon)');
    add('link.receiveBufferBytes', READ_BYTES, 'the live destination\'s read buffer (src/live/live.ts; the kernel\'s queues not measured without the addon)');
  }
  const halfRtt = `half a 16-byte ping-pong over loopback TCP (tcp_rtt_16b ${rtt.median}, ${spread(rtt)})`;
  add('link.latencyNs', rtt.median / 2, halfRtt);
  if (transit) add('backChannel.latencyNs', transit.median, `a REQUEST's way from the destination to the source's send path while the stream runs (request-transit-ns p50 of ${RUN}'s own live runs with a random vCPU: runs ${transit.runs.join(' / ')}, ~${transit.n} requests each); an idle ping-pong's half is ${rtt.median / 2}`);
  else add('backChannel.latencyNs', rtt.median / 2, halfRtt);
  add('backChannel.sendBufferBytes', sysctlMax('tcp_wmem'), 'maximum of /proc/sys/net/ipv4/tcp_wmem');
  add('backChannel.receiveBufferBytes', sysctlMax('tcp_rmem'), 'maximum of /proc/sys/net/ipv4/tcp_rmem');
  // Xen's paths, as far as a Linux host has them: the foreign-map retry's sleep, and the page
  // load's work around its hypercall (the hypercall itself needs Xen: the default's estimate).
  const sleep = get('usleep_100')!, bounce = get('memcpy_4k')!, lock = get('mlock_munlock_4k')!;
  add('mapper.timerSlackNs', sleep.median - 100_000, `usleep(100) − 100 µs: the timer slack and the wake-up (usleep_100 ${sleep.median}, ${spread(sleep)})`);
  add('pager.loadPageNs', bounce.median + lock.median + PREP_HYPERCALL_NS,
    `memcpy of 4 KiB into the page buffer (memcpy_4k ${bounce.median}) + mlock and munlock of it (mlock_munlock_4k ${lock.median}, ${spread(lock)}) + ${PREP_HYPERCALL_NS} ns for the XENMEM_paging_op_prep hypercall (docs/model.md's estimate: no Xen here)`);
  const call = get('discard_call_4k')!, thp = get('discard_thp_per_4k')!;
  add('pager.discardRangeNs', call.median, `madvise(MADV_DONTNEED) of one populated 4 KiB page: QEMU's ram_discard_range, one call a range (discard_call_4k, ${spread(call)})`);
  add('pager.discardPageNs', thp.median, `madvise(MADV_DONTNEED) of populated huge pages, per 4 KiB: the pages precopy wrote stay huge until the first discard (QEMU's postcopy-ram.c) (discard_thp_per_4k, ${spread(thp)})`);
  const zeroCheck = get('zero_check_untouched_4k')!;
  add('source.zeroCheckNs', zeroCheck.median, `the zero check of a 4 KiB page the guest never wrote: the whole page read, never-written RAM mapping the huge zero page (QEMU's guest RAM is MADV_HUGEPAGE) (zero_check_untouched_4k, ${spread(zeroCheck)})`);
  const wake = get('sem_wake')!;
  add('multifd.handoffNs', wake.median, `a semaphore post → the thread asleep in sem_wait runs (sem_wake, ${spread(wake)})`);

  const width = Math.max(...params.map((p) => p.path.length));
  const table = [`${'parameter'.padEnd(width)}  ${'value'.padStart(10)}  how measured`, ...params.map((p) => `${p.path.padEnd(width)}  ${String(p.value).padStart(10)}  ${p.how}`)];
  if (!uffd) table.push('userfaultfd unavailable here (not root, vm.unprivileged_userfaultfd = 0?): placement costs not measured');

  // A YAML fragment, one section per top-level key, each value with its measurement as a comment.
  const sections = new Map<string, Param[]>();
  for (const p of params) {
    const [section] = p.path.split('.');
    sections.set(section!, [...(sections.get(section!) ?? []), p]);
  }
  const lines = [
    `# Per-operation costs measured on this host (${new Date().toISOString().slice(0, 10)}, Linux ${release()}) by`,
    `#   ${RUN}`,
    `# (native/calibrate.c, ${runs} run${runs === 1 ? '' : 's'}: the median of the runs' medians of repeated single operations;`,
    '# nothing fitted to a migration).',
    '# Run it as a scenario (defaults elsewhere), add a line `preset: NAME` to start from a preset,',
    '# or copy single values into --set (e.g. --set pager.uffdCopyNs=3100). Loopback latency and',
    '# buffers stand for this host\'s own TCP stack, not a NIC.',
    ...(uffd ? [] : ['# userfaultfd was unavailable: the uffd placement costs keep their defaults.']),
  ];
  for (const [section, ps] of sections) {
    lines.push(`${section}:`);
    for (const p of ps) lines.push(`  ${p.path.slice(section.length + 1)}: ${p.value}  # ${p.how}`);
  }
  return { params, table: `${table.join('\n')}\n`, yaml: `${lines.join('\n')}\n` };
}
