import type { Emulator } from '../emulator.ts';
import type { MigrationStatus } from '../faults/recovery.ts';
import type { Precopy } from '../precopy/precopy.ts';
import type { CounterSample } from './poll.ts';
import { nsToMs as ms } from './units.ts';

const round2 = (x: number) => Math.round(x * 100) / 100;

/** The precopy phase's part of the top-level counters (zeros in postcopy mode). */
export function precopyFigures(emu: Emulator) {
  const p = emu.precopy;
  return {
    setupNs: p?.setupNs ?? 0,
    expectedDowntimeMs: p ? Math.round(p.convergence.expectedDowntimeMs) : 0,
    throttlePct: p?.convergence.throttlePct ?? 0,
  };
}

/** QEMU's status history: setup, active, then device (stop-and-copy) or postcopy-active. */
export function statusHistory(emu: Emulator): { status: MigrationStatus; at: number }[] {
  const p = emu.precopy, rec = emu.recovery.history;
  if (p === null) return rec;
  const h: { status: MigrationStatus; at: number }[] = [{ status: 'setup', at: 0 }, { status: 'active', at: p.setupNs }];
  if (p.pausedAt < 0) return h;
  if (!p.postcopy) return [...h, { status: 'device', at: p.pausedAt }];
  return [...h, { status: 'postcopy-active', at: p.pausedAt }, ...rec.slice(1)];
}

/**
 * query-migrate's `ram` section over the whole migration: precopy's pages and bytes plus the
 * core's. Rates follow QEMU: once completed, mbps is bytes × 8 / (total − setup); while active,
 * mbps and pages-per-second are the last 100 ms window's.
 */
export function ramCounters(emu: Emulator, pre: ReturnType<typeof precopyFigures>, finishedAt: number) {
  const { memory, source } = emu, p = emu.precopy;
  const coreBytes = emu.coreBytes;
  const transferred = coreBytes + (p?.bytes ?? 0);
  const coreNormal = source.pagesPushed + source.pagesDemanded - source.zeroPagesSent;
  const normal = coreNormal + (p?.normalPages ?? 0);
  const active = p !== null && !p.finished;
  const span = (finishedAt - pre.setupNs) / 1e9;
  // QEMU splits RAM bytes by state: guest running (precopy), paused (downtime), postcopy.
  const postcopy = p === null || p.postcopy;
  return {
    transferred,
    remaining: (active ? p.remaining : memory.pending) * memory.pageSize,
    total: memory.pages * memory.pageSize,
    duplicate: source.zeroPagesSent + (p?.zeroPages ?? 0),
    normal,
    'normal-bytes': normal * memory.pageSize,
    'dirty-pages-rate': p?.convergence.dirtyPagesRate ?? 0,
    mbps: active ? round2(p.convergence.mbps) : span > 0 ? round2((transferred * 8) / span / 1e6) : 0,
    'dirty-sync-count': p?.syncs ?? 0,
    'postcopy-requests': source.requestsReceived,
    'page-size': memory.pageSize,
    'multifd-bytes': p?.multifd?.bytes ?? 0,
    'pages-per-second': active || (p !== null && !p.postcopy)
      ? Math.round(p.convergence.pagesPerSecond)
      : span > 0 ? Math.round(coreNormal / ((finishedAt - emu.pausedAt) / 1e9)) : 0,
    'precopy-bytes': p?.precopyBytes ?? 0,
    'downtime-bytes': (p?.downtimeBytes ?? 0) + (postcopy ? 0 : coreBytes),
    'postcopy-bytes': postcopy ? coreBytes : 0,
  };
}

/** The counters a query-migrate poll reads while precopy runs. */
export function precopyCounters(p: Precopy): Omit<CounterSample, 't-ms'> {
  const c = p.convergence;
  return {
    status: p.status,
    transferred: p.bytes,
    remaining: p.remaining * p.pageSize,
    'dirty-sync-count': p.syncs,
    mbps: Math.round(c.mbps * 100) / 100,
    'expected-downtime': Math.round(c.expectedDowntimeMs),
    'dirty-pages-rate': c.dirtyPagesRate,
    'cpu-throttle-percentage': c.throttlePct,
    'postcopy-requests': 0,
  };
}

/** emulator.precopy: how precopy went. */
export function precopySection(p: Precopy) {
  const c = p.convergence;
  return {
    end: p.end,
    iterations: p.iterations,
    'switched-to-postcopy': p.postcopy,
    'paused-at-ms': p.pausedAt >= 0 ? ms(p.pausedAt) : null,
    'handover-at-ms': p.startAt >= 0 ? ms(p.startAt) : null,
    'pages-sent': p.pagesSent,
    'guest-writes': p.log.writes,
    'discarded-pages': p.discardedPages,
    'discard-ranges': p.discardRanges,
    'threshold-bytes': Math.round(c.threshold),
    'bandwidth-bytes-per-ms': Math.round(c.bandwidth),
    multifd: p.multifd ? { packets: p.multifd.packets, 'channel-busy-ms': ms(p.multifd.busyNs) } : null,
  };
}

/** query-migrate polls over the whole run (timeline.pollMs). */
export function counterSamples(emu: Emulator): CounterSample[] {
  return emu.poll?.samples ?? [];
}
