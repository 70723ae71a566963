import { join } from 'node:path';
import { DESTINATION_SWITCHOVER_EVENTS, SOURCE_SWITCHOVER_EVENTS } from './trace-log.ts';
import type { Scenario } from '../../scenario/schema.ts';
import { ScenarioError } from '../../scenario/error.ts';
import { GUEST_PAGE, REGION_BASE, type FirmwareParams } from './firmware.ts';
import type { Accel } from './prereq.ts';

/** How the harness turns a scenario into two QEMU processes and their QMP settings. */
export interface RealOptions {
  qemu: string;
  accel: Accel;
  /** No bandwidth cap instead of link.rateMbps (the link is loopback: CPU-bound, noisy). */
  uncapped: boolean;
  /** Temporary directory for the firmware, the QMP sockets and the trace log. */
  dir: string;
  port: number;
}

/** When migrate-start-postcopy is sent: never (precopy), at once, or after passes or a time (hybrid). */
export type SwitchPolicy =
  | { kind: 'never' }
  | { kind: 'start' }
  | { kind: 'hybrid'; afterPasses: number | null; atMs: number | null };

export interface RealPlan {
  ramBytes: number;
  firmware: FirmwareParams;
  switch: SwitchPolicy;
  capabilities: { capability: string; state: boolean }[];
  parameters: Record<string, number | string>;
  uri: string;
  files: { firmware: string; sourceQmp: string; destinationQmp: string; trace: string; sourceTrace: string };
  source: string[];
  destination: string[];
}

/** `max-bandwidth` when uncapped: 1 TiB/s, far above what loopback on a few cores moves. */
export const UNCAPPED_BYTES_PER_SEC = 2 ** 40;
const MIB = 2 ** 20;

/**
 * Guest RAM below 4 GiB on QEMU's `pc` machine: all of it up to 3.5 GiB; above that the PCI hole
 * starts at 3 GiB (gigabyte alignment). The 32-bit firmware only reaches this low part.
 */
export function lowRamTop(ramBytes: number): number {
  return ramBytes >= 0xe0000000 ? 0xc0000000 : ramBytes;
}

/** The fields a real run cannot honour are refused, so a result never silently means something else. */
function refuseUnsupported(s: Scenario): void {
  if (s.memory.pageSize !== GUEST_PAGE) throw new ScenarioError('memory.pageSize', `a real x86 guest has ${GUEST_PAGE}-byte pages, got ${s.memory.pageSize}`);
  if (s.memory.hostPageSize !== undefined && s.memory.hostPageSize !== GUEST_PAGE) {
    throw new ScenarioError('memory.hostPageSize', 'real runs back the guest with 4 KiB pages (no hugetlbfs): leave it unset');
  }
  if ((s.memory.pages * GUEST_PAGE) % MIB !== 0) throw new ScenarioError('memory.pages', `QEMU's -m takes whole MiB: memory.pages must be a multiple of 256, got ${s.memory.pages}`);
  const w = s.workload;
  if (w.kind !== 'idle' && w.kind !== 'sequential' && w.kind !== 'random' && w.kind !== 'shuffled') {
    throw new ScenarioError('workload.kind', `the real guest runs idle, sequential or shuffled (random: shuffled), not ${w.kind}`);
  }
  if (w.vcpus !== 1) throw new ScenarioError('workload.vcpus', `the real guest's firmware runs one vCPU, got ${w.vcpus}`);
  if (s.faults.length > 0) throw new ScenarioError('faults', 'real runs inject no faults: leave it empty');
  if (s.precopy.maxIterations > 0 || s.precopy.maxTimeNs > 0) {
    throw new ScenarioError(s.precopy.maxIterations > 0 ? 'precopy.maxIterations' : 'precopy.maxTimeNs', 'real runs have no management-layer cap: leave it 0');
  }
  const mode = s.migration.mode;
  if (s.multifd.channels > 0 && mode !== 'precopy') {
    throw new ScenarioError('multifd.channels', `multifd with postcopy aborts the destination in QEMU 7.2 (yank_unregister_instance): use it with migration.mode precopy, not ${mode}`);
  }
  if (s.preempt.enabled && mode === 'precopy') throw new ScenarioError('preempt.enabled', 'postcopy-preempt needs migration.mode postcopy or hybrid');
  if (mode === 'hybrid' && s.migration.switchAfterIterations === 0 && s.migration.switchAtNs === undefined) {
    throw new ScenarioError('migration.switchAfterIterations', 'a real hybrid run switches after passes or at a time: give switchAfterIterations ≥ 1 or switchAtNs');
  }
}

/** The working set in guest-physical memory: workload.region's pages, counted from 1 MiB. */
function firmwareParams(s: Scenario, ramBytes: number): FirmwareParams {
  const top = lowRamTop(ramBytes);
  if (top <= REGION_BASE) throw new ScenarioError('memory.pages', `the guest needs more than 1 MiB of RAM (firmware state and legacy holes), got ${ramBytes / MIB} MiB`);
  const room = (top - REGION_BASE) / GUEST_PAGE;
  const r = s.workload.region ?? { start: 0, count: room };
  if (r.start + r.count > room) {
    throw new ScenarioError('workload.region', `pages [${r.start}, ${r.start + r.count}) from 1 MiB must end within the ${room} pages of low RAM the 32-bit guest reaches`);
  }
  // The firmware's random order is a shuffle: every page once per pass (src/workload/lcg.ts).
  const kind = s.workload.kind;
  return { mode: kind === 'shuffled' ? 'random' : (kind as FirmwareParams['mode']), base: REGION_BASE + r.start * GUEST_PAGE, pages: r.count };
}

function switchPolicy(s: Scenario): SwitchPolicy {
  const m = s.migration;
  if (m.mode === 'precopy') return { kind: 'never' };
  if (m.mode === 'postcopy') return { kind: 'start' };
  return { kind: 'hybrid', afterPasses: m.switchAfterIterations || null, atMs: m.switchAtNs === undefined ? null : m.switchAtNs / 1e6 };
}

/** Capabilities, set the same on both sides (QEMU requires matching postcopy and multifd). */
function capabilities(s: Scenario): RealPlan['capabilities'] {
  const postcopy = s.migration.mode !== 'precopy';
  const caps: [string, boolean][] = [['events', true], ['postcopy-ram', postcopy], ['postcopy-blocktime', postcopy],
    ['postcopy-preempt', s.preempt.enabled], ['multifd', s.multifd.channels > 0], ['auto-converge', s.precopy.autoConverge]];
  return caps.filter(([, on]) => on).map(([capability, state]) => ({ capability, state }));
}

function parameters(s: Scenario, uncapped: boolean): RealPlan['parameters'] {
  const rate = Math.round((s.link.rateMbps * 1e6) / 8);
  const p: RealPlan['parameters'] = {
    'max-bandwidth': uncapped ? UNCAPPED_BYTES_PER_SEC : rate,
    // QEMU's documented "0: unlimited" for the postcopy phase.
    'max-postcopy-bandwidth': uncapped ? 0 : rate,
    'downtime-limit': s.precopy.downtimeLimitMs,
  };
  if (s.multifd.channels > 0) {
    p['multifd-channels'] = s.multifd.channels;
    p['multifd-compression'] = s.multifd.compression;
  }
  if (s.precopy.autoConverge) {
    p['cpu-throttle-initial'] = s.precopy.throttleInitialPct;
    p['cpu-throttle-increment'] = s.precopy.throttleIncrementPct;
    p['max-cpu-throttle'] = s.precopy.throttleMaxPct;
    p['throttle-trigger-threshold'] = s.precopy.throttleTriggerPct;
  }
  return p;
}

/** Maps a validated scenario to the two QEMU command lines and the QMP settings; ScenarioError when it can't. */
export function realPlan(s: Scenario, o: RealOptions): RealPlan {
  refuseUnsupported(s);
  const ramBytes = s.memory.pages * GUEST_PAGE;
  const files = {
    firmware: join(o.dir, 'firmware.bin'),
    sourceQmp: join(o.dir, 'source.qmp'),
    destinationQmp: join(o.dir, 'destination.qmp'),
    trace: join(o.dir, 'destination-trace.log'),
    sourceTrace: join(o.dir, 'source-trace.log'),
  };
  const events = (names: string[]) => names.flatMap((n) => ['-trace', `enable=${n}`]);
  const common = (qmp: string) => [
    o.qemu, '-machine', 'pc', '-cpu', 'qemu64', ...(o.accel === 'kvm' ? ['-enable-kvm'] : ['-accel', 'tcg']),
    '-smp', '1', '-m', `${ramBytes / MIB}M`, '-bios', files.firmware, '-nodefaults', '-display', 'none',
    '-qmp', `unix:${qmp},server=on,wait=off`,
  ];
  return {
    ramBytes,
    firmware: firmwareParams(s, ramBytes),
    switch: switchPolicy(s),
    capabilities: capabilities(s),
    parameters: parameters(s, o.uncapped),
    uri: `tcp:127.0.0.1:${o.port}`,
    files,
    source: [...common(files.sourceQmp), '-name', 'pce-source,debug-threads=on', ...events(SOURCE_SWITCHOVER_EVENTS), '-msg', 'timestamp=on', '-D', files.sourceTrace],
    destination: [...common(files.destinationQmp), '-name', 'pce-destination,debug-threads=on', '-incoming', 'defer',
      ...events(['postcopy_page_req_add', 'postcopy_page_req_del', ...DESTINATION_SWITCHOVER_EVENTS]), '-msg', 'timestamp=on', '-D', files.trace],
  };
}
