import { DeviceState } from '../devices/fsm.ts';
import type { Emulator } from '../emulator.ts';
import { nsToMs as ms } from './units.ts';

/**
 * emulator.downtime-breakdown: where the downtime went, in order, summing to `downtime` (ms): the
 * devices' stop arcs, RAM's final sync and send, the devices' stop-copy data, the wire draining
 * what the thread wrote, the destination's device loads and starts not hidden behind the transfer,
 * the CPU context and virtual-device state reaching the destination (up to TRANSITION), and the
 * destination's switchover work until the guest runs. null while the guest never paused.
 */
export function downtimeBreakdown(emu: Emulator) {
  const paused = emu.pausedAt;
  if (paused < 0) return null;
  const end = emu.resumedAt >= 0 ? emu.resumedAt : emu.kernel.now;
  const m = emu.stopMilestones, core = emu.switchedOver ? emu.core : null;
  // Each milestone not reached yet counts as the previous one (a run cut short).
  let at = paused;
  const next = (t: number) => (at = Math.min(end, Math.max(at, t)));
  const span = (t: number) => {
    const from = at;
    return ms(next(t) - from);
  };
  return {
    'device-stop-ms': span(m.devicesStopped),
    'ram-ms': span(m.ramSent),
    'device-transfer-ms': span(m.devicesSent),
    'drain-ms': span(m.drained),
    'device-load-ms': span(core?.startedAt ?? end),
    'vcpu-state-ms': span(core !== null && core.transitionAt >= 0 ? core.transitionAt : end),
    'switchover-ms': span(end),
  };
}

const STATE_NAMES = Object.fromEntries(Object.entries(DeviceState).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v, k])) as Record<number, string>;

/** emulator.devices: each device's data, loads, states and DMA (null without devices). */
export function devicesSection(emu: Emulator) {
  const dev = emu.devices;
  if (dev === null) return null;
  const resumed = emu.resumedAt, iopf = emu.switchedOver ? emu.core.iopf : null;
  return dev.list.map((d, i) => ({
    name: d.name,
    kind: d.spec.kind,
    'source-state': STATE_NAMES[d.src.state]!,
    'destination-state': STATE_NAMES[d.dst.state]!,
    'precopy-bytes': d.precopyBytes,
    'stop-copy-bytes': d.stopCopyBytes,
    reads: d.reads,
    'device-calls': d.calls,
    'initial-loaded-at-ms': d.initialLoadedAt >= 0 ? ms(d.initialLoadedAt) : null,
    'loaded-at-ms': d.loadedAt >= 0 ? ms(d.loadedAt) : null,
    'unplugged-at-ms': d.unpluggedAt >= 0 ? ms(d.unpluggedAt) : null,
    // Without the device at the destination: from the unplug until it is plugged in or reset there.
    'outage-ms': d.unpluggedAt >= 0 && resumed >= 0 ? ms(d.outageEnd(resumed) - d.unpluggedAt) : null,
    transitions: d.src.log.to.length + d.dst.log.to.length,
    dma: d.dma === null ? null : {
      'pages-written': d.dma.writes,
      'pages-reported': d.dma.reported,
      'tracking-ms': ms(d.dma.costNs),
      'lost-pages': d.dma.lost,
    },
    // pageFaults iopf: DMA at the destination during postcopy, parked on pages not there yet.
    iopf: iopf?.[i] ? { 'dma-stall-ms': ms(iopf[i].stallNs), 'pri-requests': iopf[i].requests, 'pages-written': iopf[i].writes } : null,
  }));
}
