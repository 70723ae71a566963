import type { MigrationStatus, RunReport } from '../../metrics/report.ts';
import { measuredReport } from '../measured.ts';
import type { Scenario } from '../../scenario/schema.ts';
import type { Accel } from './prereq.ts';
import type { QmpEvent } from './qmp.ts';
import type { SocketQueues } from './sockets.ts';
import type { ThreadCpu } from './threads.ts';
import type { FaultLatencies, SwitchoverStages } from './trace-log.ts';

type Json = Record<string, unknown>;

/** What one real run observed: both sides' final query-migrate and events, the trace, the guest. */
export interface RealObservation {
  scenario: Scenario;
  qemuVersion: string;
  accel: Accel;
  uncapped: boolean;
  commandLines: { source: string[]; destination: string[] };
  source: { info: Json; events: QmpEvent[] };
  destination: { info: Json; events: QmpEvent[] };
  faults: FaultLatencies;
  /** QEMU's own stages of a switch to postcopy, from both sides' trace logs. */
  switchover: SwitchoverStages;
  /**
   * Passes of the working set the guest finished: at the source's end, and later at the
   * destination; pageNs: the writer's time per page at the destination once the migration has
   * completed (every page present, no dirty logging), over whole passes; null for an idle guest.
   */
  guest: { passesAtSource: number; passesAtDestination: number; pageNs: number | null };
  /** Both QEMUs' threads from \`migrate\` to completion: CPU time and time waiting for a CPU. */
  threads: ThreadCpu[];
  /** The migration connection's queues while the source streamed. */
  sockets: SocketQueues;
}

export interface RealSection {
  'qemu-version': string;
  accel: Accel;
  bandwidth: 'link.rateMbps' | 'uncapped';
  'command-lines': { source: string[]; destination: string[] };
  'entered-postcopy': boolean;
  /** Source STOP event → destination RESUME event. */
  'stop-to-resume-ms': number | null;
  /** QEMU's own total-time (source query-migrate); `total-time` above comes from the events. */
  'qemu-total-time': number | null;
  'unanswered-requests': number;
  guest: { 'passes-at-source': number; 'passes-at-destination': number; 'page-ns': number | null };
  switchover: SwitchoverStages;
  threads: ThreadCpu[];
  sockets: SocketQueues;
  events: { source: QmpEvent[]; destination: QmpEvent[] };
  'query-migrate': { source: Json; destination: Json };
}

export type RealReport = RunReport & { real: RealSection };

const round3 = (x: number) => Math.round(x * 1000) / 1000;
const num = (o: unknown, k: string): number => {
  const v = (o as Json | undefined)?.[k];
  return typeof v === 'number' ? v : 0;
};
const migrationAt = (events: QmpEvent[], status: string) =>
  events.find((e) => e.event === 'MIGRATION' && e.data.status === status)?.atUs ?? null;
const eventAt = (events: QmpEvent[], name: string) => events.find((e) => e.event === name)?.atUs ?? null;

/** query-migrate's ram section under the emulator's names (the same as QEMU's). */
function ram(info: Json, scenario: Scenario): RunReport['ram'] {
  const r = info.ram as Json | undefined;
  const keys = ['transferred', 'remaining', 'total', 'duplicate', 'normal', 'normal-bytes', 'dirty-pages-rate', 'mbps', 'dirty-sync-count',
    'postcopy-requests', 'page-size', 'multifd-bytes', 'pages-per-second', 'precopy-bytes', 'downtime-bytes', 'postcopy-bytes'] as const;
  const out = Object.fromEntries(keys.map((k) => [k, num(r, k)])) as RunReport['ram'];
  out['page-size'] ||= scenario.memory.pageSize;
  out.total ||= scenario.memory.pages * scenario.memory.pageSize;
  return out;
}

/** Converts a real run into the emulator's JSON shape, so `compare` and `report` read it. */
export function realReport(o: RealObservation): RealReport {
  const src = o.source, dst = o.destination;
  const startUs = migrationAt(src.events, 'setup') ?? src.events[0]?.atUs ?? 0;
  const ends = [migrationAt(src.events, 'completed'), migrationAt(dst.events, 'completed')].filter((x): x is number => x !== null);
  const endUs = ends.length > 0 ? Math.max(...ends) : null;
  const msFromStart = (us: number | null) => (us === null ? null : round3((us - startUs) / 1000));
  const stopUs = eventAt(src.events, 'STOP'), resumeUs = eventAt(dst.events, 'RESUME');
  const postcopyUs = migrationAt(src.events, 'postcopy-active');
  const totalTime = endUs !== null ? round3((endUs - startUs) / 1000) : num(src.info, 'total-time');

  const requests = o.faults.latenciesNs.length + o.faults.unanswered;
  const r = ram(src.info, o.scenario);
  const history = src.events.filter((e) => e.event === 'MIGRATION')
    .map((e) => ({ status: e.data.status as MigrationStatus, 'at-ms': round3((e.atUs - startUs) / 1000) }));
  const warnings = ['a real run: the figures the emulator models inside QEMU\'s place (ring, mapper, pager, eviction, pages pushed) are not measured and read 0'];
  if (o.accel === 'tcg') warnings.push('the guest ran under TCG (--accel tcg), not KVM: its speed and the timings are not those of a KVM guest');
  if (o.faults.unanswered > 0) warnings.push(`${o.faults.unanswered} page requests were never answered in the destination's trace`);
  const report = measuredReport({
    scenario: o.scenario,
    status: (src.info.status ?? 'failed') as MigrationStatus,
    totalTimeMs: totalTime,
    setupMs: num(src.info, 'setup-time'),
    expectedDowntimeMs: num(src.info, 'expected-downtime'),
    downtimeMs: num(src.info, 'downtime'),
    throttlePct: num(src.info, 'cpu-throttle-percentage'),
    blocktimeMs: num(dst.info, 'postcopy-blocktime'),
    vcpuBlocktimeMs: Array.isArray(dst.info['postcopy-vcpu-blocktime']) ? (dst.info['postcopy-vcpu-blocktime'] as number[]) : [],
    ram: r,
    // QEMU 7.2 measures no fault latency: the trace's request → placement stands for both.
    latenciesNs: o.faults.latenciesNs,
    requestLatenciesNs: o.faults.latenciesNs,
    requests,
    history,
    warnings,
    postcopyDurationMs: resumeUs !== null && endUs !== null ? round3(Math.max(0, endUs - resumeUs) / 1000) : null,
    pagesPending: r.remaining / r['page-size'],
    ...(o.scenario.migration.mode !== 'postcopy' ? {
      precopy: {
        end: postcopyUs !== null ? 'switch' : 'converged',
        // QEMU's dirty-sync-count includes setup's sync.
        iterations: Math.max(0, r['dirty-sync-count'] - 1),
        'switched-to-postcopy': postcopyUs !== null,
        'paused-at-ms': msFromStart(stopUs),
        'handover-at-ms': msFromStart(postcopyUs),
        'pages-sent': r.normal + r.duplicate,
        'guest-writes': 0,
        'discarded-pages': 0,
        'discard-ranges': 0,
        'threshold-bytes': 0,
        'bandwidth-bytes-per-ms': 0,
        multifd: null,
      },
    } : {}),
  });
  return {
    ...report,
    real: {
      'qemu-version': o.qemuVersion,
      accel: o.accel,
      bandwidth: o.uncapped ? 'uncapped' : 'link.rateMbps',
      'command-lines': o.commandLines,
      'entered-postcopy': postcopyUs !== null,
      'stop-to-resume-ms': stopUs !== null && resumeUs !== null ? round3((resumeUs - stopUs) / 1000) : null,
      'qemu-total-time': typeof src.info['total-time'] === 'number' ? src.info['total-time'] : null,
      'unanswered-requests': o.faults.unanswered,
      guest: { 'passes-at-source': o.guest.passesAtSource, 'passes-at-destination': o.guest.passesAtDestination, 'page-ns': o.guest.pageNs === null ? null : Math.round(o.guest.pageNs) },
      switchover: o.switchover,
      threads: o.threads,
      sockets: o.sockets,
      events: { source: src.events, destination: dst.events },
      'query-migrate': { source: src.info, destination: dst.info },
    },
  };
}
