import { argCheck } from '../io/args.ts';
import { Emulator } from '../emulator.ts';
import type { MigrationStatus } from '../faults/recovery.ts';
import { devicesSection, downtimeBreakdown } from './devices.ts';
import { counterSamples, precopyFigures, precopySection, ramCounters, statusHistory } from './lifecycle.ts';
import { nsToMs as ms } from './units.ts';

export type { MigrationStatus };

/**
 * The run's result as JSON, with QEMU's query-migrate names where QEMU has one (same units:
 * times in ms, latency in ns, bytes). Emulator-only figures live under `emulator`. Everything
 * here is a function of the scenario and seed: wall-clock figures are added by the caller under
 * `emulator.host`.
 */
export function buildReport(emu: Emulator) {
  argCheck(emu instanceof Emulator, 'buildReport.emu', 'must be an Emulator (new Emulator(input), stepped or run)');
  const { kernel, memory, ring, pager, source, mapper, vcpus, latency, stream, backChannel, scenario } = emu;
  const end = kernel.now;
  const cdf = latency.percentiles(CDF_QUANTILES);
  const resumed = emu.resumedAt;
  // The migration is over when the source has COMPLETE and the guest runs at the destination.
  const finishedAt = emu.finished ? Math.max(source.completeAt, resumed) : end;
  const { recovery } = emu;
  const truncated = emu.truncated;
  const history = statusHistory(emu).map((h) => ({ status: h.status, 'at-ms': ms(h.at) }));
  if (emu.finished) history.push({ status: 'completed', 'at-ms': ms(finishedAt) });
  const pre = precopyFigures(emu);
  // Downtime runs from the pause at the source to the guest running at the destination.
  const downtime = emu.pausedAt < 0 ? 0 : (resumed >= 0 ? resumed : end) - emu.pausedAt;
  return {
    status: emu.status,
    'total-time': ms(finishedAt),
    'setup-time': ms(pre.setupNs),
    'expected-downtime': pre.expectedDowntimeMs,
    downtime: ms(downtime),
    'cpu-throttle-percentage': pre.throttlePct,
    // QEMU's counter where its fault thread keeps it (from reading a fault to the placement);
    // Xen's pager keeps none: the whole time the vCPUs were blocked.
    'postcopy-blocktime': ms(pager.blocktime?.total ?? vcpus.allBlockedNs),
    'postcopy-vcpu-blocktime': Array.from(pager.blocktime?.perVcpu ?? vcpus.blockedNs, ms),
    // QEMU 10.1's remote fault latency: its blocktime spans where its fault thread keeps them.
    'postcopy-latency': (pager.blocktime?.latency ?? latency).mean(),
    'postcopy-latency-dist': [...(pager.blocktime?.latency ?? latency).buckets],
    ram: ramCounters(emu, pre, finishedAt),
    // QEMU's query-migrate has a vfio section when VFIO devices migrate.
    ...(emu.devices ? { vfio: { transferred: emu.devices.transferred } } : {}),
    emulator: {
      scenario: scenario.name,
      warnings: emu.warnings,
      // Set when the run failed: why, and what became of the guest (or which bound stopped it).
      ...(recovery.failure !== null ? { failure: recovery.failure } : emu.limitReason !== null ? { failure: emu.limitReason } : {}),
      // Set when the horizon or a bound cut the run short: its figures are then lower bounds.
      ...(truncated !== null ? { truncated } : {}),
      'status-history': history,
      'downtime-breakdown': downtimeBreakdown(emu),
      ...(emu.devices ? {
        devices: devicesSection(emu),
        // Pages the destination holds an older copy of (DMA the tracking did not see: seed 003).
        'stale-pages': emu.precopy?.staleOutside() ?? 0,
      } : {}),
      recovery: {
        pauses: recovery.pauses,
        'resent-pages': recovery.resentPages,
        're-requested-pages': recovery.reRequestedPages,
        // Still paused at the end: counted up to the end.
        'paused-time-ms': ms(recovery.pausedNs + (recovery.downSince >= 0 ? end - recovery.downSince : 0)),
        'lost-fault-records': emu.faults.lostFaultRecords,
      },
      seed: scenario.seed,
      'simulated-time': ms(end),
      // From the guest running at the destination to the last page: 0 when nothing was left.
      'postcopy-duration': resumed >= 0 ? ms(finishedAt - resumed) : null,
      'eviction-time': ms(pager.evictionUpTo(end)),
      'outstanding-at-start': memory.outstandingAtStart,
      'pages-pending': memory.pending,
      // network / minor: outstanding pages by the guest's first touch — it had to wait for the
      // page (a vCPU fault) or the page had already been pushed (docs/policies.md).
      faults: {
        vcpu: emu.vcpuFaults,
        spurious: vcpus.spurious,
        foreign: emu.foreignFaults,
        network: vcpus.networkPages,
        minor: vcpus.minorPages,
        'network-share': vcpus.networkPages + vcpus.minorPages > 0
          ? Math.round((vcpus.networkPages / (vcpus.networkPages + vcpus.minorPages)) * 1e6) / 1e6
          : null,
      },
      'pfns-requested': pager.pfnsRequested,
      'fault-records': pager.faultRecords,
      'pages-pushed': source.pagesPushed,
      'pages-demand-fetched': source.pagesDemanded,
      'pages-loaded': pager.pagesLoaded,
      // cdf: latency (ns) at quantiles 0, 5, …, 100 (nearest rank), for CDF plots.
      'fault-latency': { ...latency.summary(), max: latency.max, cdf },
      // From a page's first request to its placement: what QEMU's trace of requested pages measures.
      'request-latency': { ...pager.requestLatency.summary(), max: pager.requestLatency.max },
      ring: {
        capacity: ring.capacity,
        'max-occupancy': ring.maxOccupancy,
        'time-full': ms(ring.timeFull(end)),
        ebusy: ring.ebusy,
      },
      mapper: { calls: mapper.calls, retries: mapper.retries, requests: mapper.requests, 'done-at': mapper.doneAt >= 0 ? ms(mapper.doneAt) : null },
      // From each fault to the vCPU running again: all at once, and per vCPU.
      vcpu: { accesses: vcpus.accesses, writes: vcpus.writes, 'all-blocked-ms': ms(vcpus.allBlockedNs), 'blocked-ms': Array.from(vcpus.blockedNs, ms) },
      link: {
        'stream-wire-bytes': stream.bytesOnWire,
        'back-channel-bytes': backChannel.bytesPayload,
        'stream-records': stream.records,
        'preempt-records': emu.preempt?.records ?? 0,
        'preempt-bytes': emu.preempt?.bytesPayload ?? 0,
      },
      'pager-busy': ms(pager.busyUpTo(end)),
      ...(emu.precopy ? { precopy: precopySection(emu.precopy) } : {}),
      ...(scenario.timeline.pollMs > 0 ? { samples: counterSamples(emu) } : {}),
      events: kernel.events,
      ...(emu.timeline ? { timeline: emu.timeline.data } : {}),
    },
  };
}

/** The quantiles (%) reported as `fault-latency.cdf`. */
export const CDF_QUANTILES = Array.from({ length: 21 }, (_, i) => i * 5);

export type RunReport = ReturnType<typeof buildReport>;
