import type { RunReport } from '../metrics/report.ts';
import { kb, ms } from '../metrics/units.ts';

/**
 * QEMU's human-readable `info migrate` (hmp_info_migrate) for a run: integer milliseconds,
 * kbytes as bytes >> 10, throughput in mbps with two decimals, as in seed 001. As in QEMU, a
 * migration still running shows its expected downtime instead of the downtime, and the dirty
 * rate and the CPU throttle only once they are non-zero.
 */
export function formatInfo(r: RunReport): string {
  const ram = r.ram;
  const lines = [
    `Migration status: ${r.status}`,
    `total time: ${ms(r['total-time'])}`,
    r.status === 'completed' ? `downtime: ${ms(r.downtime)}` : `expected downtime: ${ms(r['expected-downtime'])}`,
    `setup: ${ms(r['setup-time'])}`,
    `transferred ram: ${kb(ram.transferred)}`,
    `throughput: ${ram.mbps.toFixed(2)} mbps`,
    `remaining ram: ${kb(ram.remaining)}`,
    `total ram: ${kb(ram.total)}`,
    `duplicate: ${ram.duplicate} pages`,
    `normal: ${ram.normal} pages`,
    `normal bytes: ${kb(ram['normal-bytes'])}`,
    `dirty sync count: ${ram['dirty-sync-count']}`,
    `page size: ${kb(ram['page-size'])}`,
    `multifd bytes: ${kb(ram['multifd-bytes'])}`,
    `pages-per-second: ${ram['pages-per-second']}`,
    ...(ram['dirty-pages-rate'] > 0 ? [`dirty pages rate: ${ram['dirty-pages-rate']} pages`] : []),
    `precopy ram: ${kb(ram['precopy-bytes'])}`,
    `downtime ram: ${kb(ram['downtime-bytes'])}`,
    `postcopy ram: ${kb(ram['postcopy-bytes'])}`,
    `postcopy request count: ${ram['postcopy-requests']}`,
    ...(r['cpu-throttle-percentage'] > 0 ? [`cpu throttle percentage: ${r['cpu-throttle-percentage']}`] : []),
    `postcopy blocktime: ${ms(r['postcopy-blocktime'])}`,
    `postcopy latency: ${r['postcopy-latency']} ns`,
    // hmp_info_migrate ends with the VFIO devices' bytes when any migrated.
    ...(r.vfio ? [`vfio device transferred: ${kb(r.vfio.transferred)}`] : []),
  ];
  return `${lines.join('\n')}\n`;
}
