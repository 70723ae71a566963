import type { RunReport } from '../metrics/report.ts';

const kb = (bytes: number) => `${Math.floor(bytes / 1024)} kbytes`;
const ms = (v: number) => `${Math.round(v)} ms`;

/**
 * QEMU's human-readable `info migrate` (hmp_info_migrate) for a run: integer milliseconds,
 * kbytes as bytes >> 10, throughput in mbps with two decimals, as in seed 001.
 */
export function formatInfo(r: RunReport): string {
  const ram = r.ram;
  const lines = [
    `Migration status: ${r.status}`,
    `total time: ${ms(r['total-time'])}`,
    `downtime: ${ms(r.downtime)}`,
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
    `precopy ram: ${kb(ram['precopy-bytes'])}`,
    `downtime ram: ${kb(ram['downtime-bytes'])}`,
    `postcopy ram: ${kb(ram['postcopy-bytes'])}`,
    `postcopy request count: ${ram['postcopy-requests']}`,
    `postcopy blocktime: ${ms(r['postcopy-blocktime'])}`,
    `postcopy latency: ${r['postcopy-latency']} ns`,
  ];
  return `${lines.join('\n')}\n`;
}
