import type { RunReport } from '../metrics/report.ts';

/**
 * The assigned-device seeds' published figures and `reproduce vfio`'s tables. Seed 000: Parav
 * Pandit and Alex Williamson on the vfio-virtio series (linux-kernel, Oct 2024): 2 VFs, 439 ms of
 * downtime without warm-up, 128 ms with it; "~400ms of downtime per device" serialized; "300ms
 * per device load time" moved into precopy, "11ms per device" left. Seed 002: Jason Gunthorpe on
 * switchover-ack (qemu-devel, Feb 2023): "seconds levels of time removed from the downtime".
 * Seed 003: Michael S. Tsirkin on device assignment and migration (kvm, Nov 2015): untracked DMA
 * pages are perpetually dirty. The merged vfio-virtio PRE_COPY commit (Linux, "vfio/virtio: Add
 * PRE_COPY support for live migration", Nov 2024) reports "a downtime reduction of approximately
 * 70-75% in various scenarios".
 */
export const VFIO_000 = { twoVfCold: 439, twoVfWarm: 128, perDeviceCold: 400, perDeviceWarm: 11, reductionPct: '70–75' } as const;

/** What reproduce vfio reads of each run. */
export interface VfioMeasured {
  status: string;
  downtimeMs: number;
  totalMs: number;
  precopyEnd: string | null;
  iterations: number;
  pagesSent: number;
  vfioBytes: number;
  deviceLoadMs: number;
  dmaTrackingMs: number;
  stalePages: number;
  /** How long the guest was without the device: its hot-unplug outage, else the downtime. */
  outageMs: number;
}

export function vfioMeasured(r: RunReport): VfioMeasured {
  const e = r.emulator, p = e.precopy;
  return {
    status: r.status,
    downtimeMs: r.downtime,
    totalMs: r['total-time'],
    precopyEnd: p?.end ?? null,
    iterations: p?.iterations ?? 0,
    pagesSent: p?.['pages-sent'] ?? 0,
    vfioBytes: r.vfio?.transferred ?? 0,
    deviceLoadMs: e['downtime-breakdown']?.['device-load-ms'] ?? 0,
    dmaTrackingMs: Math.round((e.devices ?? []).reduce((s, d) => s + (d.dma?.['tracking-ms'] ?? 0), 0) * 1000) / 1000,
    stalePages: e['stale-pages'] ?? 0,
    outageMs: Math.max(r.downtime, ...(e.devices ?? []).map((d) => d['outage-ms'] ?? 0)),
  };
}

const f = (v: number) => v.toFixed(1);
const pad = (rows: string[][]) => {
  const w: number[] = [];
  for (const r of rows) r.forEach((c, i) => (w[i] = Math.max(w[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ').trimEnd());
};

/** The three seeds' tables, measured (published) where a seed gives a figure. */
export function formatVfio(reports: readonly RunReport[]): string {
  const m = new Map(reports.map((r) => [r.emulator.scenario, vfioMeasured(r)]));
  const dt = (n: string) => m.get(n)?.downtimeMs ?? NaN;
  const slope = (kind: 'cold' | 'warm') => (dt(`vfio-000-4vf-${kind}`) - dt(`vfio-000-1vf-${kind}`)) / 3;
  const out = ['Seed 000, vfio-virtio device warm-up (2024): downtime in ms, measured (published)', ''];
  out.push(...pad([
    ['', 'no device precopy', 'device precopy (warm-up)'],
    ['1 VF', f(dt('vfio-000-1vf-cold')), f(dt('vfio-000-1vf-warm'))],
    ['2 VFs', `${f(dt('vfio-000-2vf-cold'))} (${VFIO_000.twoVfCold})`, `${f(dt('vfio-000-2vf-warm'))} (${VFIO_000.twoVfWarm})`],
    ['4 VFs', f(dt('vfio-000-4vf-cold')), f(dt('vfio-000-4vf-warm'))],
    ['each VF more', `${f(slope('cold'))} (~${VFIO_000.perDeviceCold})`, `${f(slope('warm'))} (~${VFIO_000.perDeviceWarm})`],
    ['downtime saved by warm-up, 1 / 2 / 4 VFs', '', `${[1, 2, 4].map((n) => `${Math.round(100 * (1 - dt(`vfio-000-${n}vf-warm`) / dt(`vfio-000-${n}vf-cold`)))} %`).join(' / ')} (${VFIO_000.reductionPct} %)`],
    ['2 VFs, 2 load threads', `${f(dt('vfio-000-2vf-cold-parallel'))} (${VFIO_000.twoVfCold})`, ''],
    ['2 VFs, reads capped at 128', '', f(dt('vfio-000-2vf-warm-cap'))],
  ]).map((l) => `  ${l}`));
  const off = m.get('vfio-002-ack-off'), on = m.get('vfio-002-ack-on');
  out.push('', 'Seed 002, switchover-ack (2023): a VF with 1 s of initial-data load at the destination ("seconds" moved out of the downtime)', '');
  out.push(...pad([
    ['switchover-ack', 'downtime ms', 'device load in it ms', 'total ms', 'vfio bytes'],
    ...([['off', off], ['on', on]] as const).map(([k, v]) => [k, f(v?.downtimeMs ?? NaN), f(v?.deviceLoadMs ?? NaN), f(v?.totalMs ?? NaN), String(v?.vfioBytes ?? '')]),
  ]).map((l) => `  ${l}`));
  out.push('', 'Seed 003, DMA dirty tracking (2015): a NIC receiving at 1 Gbit/s by DMA, 4 GiB guest, 10 Gbit/s; untracked DMA pages are "perpetually dirty"', '');
  out.push(...pad([
    ['tracking', 'precopy end', 'iterations', 'pages sent', 'tracking ms', 'downtime ms', 'NIC outage ms', 'total ms', 'stale pages'],
    ...['none', 'unmap', 'iommu', 'device-log'].map((t) => {
      const v = m.get(`vfio-003-${t}`);
      return [t === 'unmap' ? 'unmap (hot-unplug)' : t, v?.precopyEnd ?? '', String(v?.iterations ?? ''), String(v?.pagesSent ?? ''), f(v?.dmaTrackingMs ?? NaN), f(v?.downtimeMs ?? NaN), f(v?.outageMs ?? NaN), f(v?.totalMs ?? NaN), String(v?.stalePages ?? '')];
    }),
  ]).map((l) => `  ${l}`));
  return `${out.join('\n')}\n`;
}
