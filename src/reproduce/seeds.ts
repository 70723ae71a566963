/**
 * Published numbers that `reproduce` sets beside the emulator's, copied from the seeds as printed
 * there (units included), keyed by the preset that mirrors each experiment
 * (src/scenario/lifecycle-presets.ts, REPRODUCTIONS).
 */

/** Durations of one Xen migration in seconds; null where the RFC writes N/A. */
export interface XenDurations {
  precopy: number;
  suspend: number;
  postcopy: number | null;
}

/**
 * Seed 004: Joshua Otto, "Re: [Xen-devel] [PATCH RFC 00/20] Add postcopy live migration support"
 * (2017): a 2 GB guest with a 256 MB writable working set (fio on a ramdisk).
 */
export const XEN_2017_TITLE = 'Seed 004, Xen postcopy RFC (2017): 2 GiB HVM guest, 256 MiB written by fio, 1 Gbit/s';

export const XEN_2017: Record<string, { label: string; published: XenDurations }> = {
  'xen-2017-precopy': { label: 'Pre-copy + stop-and-copy', published: { precopy: 66.97, suspend: 6.807, postcopy: null } },
  'xen-2017-hybrid-1pass': { label: '1 precopy iteration + postcopy', published: { precopy: 44.44, suspend: 3.23, postcopy: 4.83 } },
  'xen-2017-postcopy': { label: 'Pure postcopy', published: { precopy: 0, suspend: 21.93, postcopy: 44.22 } },
};

/**
 * One `info migrate` printout in its own units (ms, kbytes = bytes >> 10, pages, mbps). A field
 * the printout does not show is left out; a measured one has every field.
 */
export interface InfoMigrate {
  status?: string;
  totalTimeMs: number;
  downtimeMs?: number;
  expectedDowntimeMs?: number;
  setupMs: number;
  transferredKbytes: number;
  throughputMbps: number;
  remainingKbytes?: number;
  duplicatePages: number;
  normalPages: number;
  dirtySyncCount: number;
  multifdKbytes: number;
  pagesPerSecond: number;
  dirtyPagesRate?: number;
  precopyKbytes: number;
  downtimeKbytes?: number;
}

/**
 * Seed 001: Juan Quintela, "[PATCH v5 0/8] Migration: Transmit and detect zero pages in the
 * multifd threads" (qemu-devel, 10 March 2022). The first run shown for each case.
 */
export const QEMU_2022_TITLE = 'Seed 001, QEMU multifd zero pages v5 (2022): 16 GiB guest over localhost, 6 GiB/s, 4 channels';

export const QEMU_2022: Record<string, InfoMigrate> = {
  'qemu-2022-idle-precopy': {
    status: 'completed', totalTimeMs: 851, downtimeMs: 29, setupMs: 4, transferredKbytes: 634400, throughputMbps: 6139.32,
    duplicatePages: 4045125, normalPages: 149420, dirtySyncCount: 3, multifdKbytes: 0, pagesPerSecond: 3088960,
    precopyKbytes: 598949, downtimeKbytes: 35450,
  },
  'qemu-2022-idle-multifd': {
    status: 'completed', totalTimeMs: 922, downtimeMs: 27, setupMs: 4, transferredKbytes: 621342, throughputMbps: 5547.97,
    duplicatePages: 4048826, normalPages: 146032, dirtySyncCount: 3, multifdKbytes: 585757, pagesPerSecond: 5918137,
    precopyKbytes: 35585,
  },
  'qemu-2022-idle-multifd-zero': {
    status: 'completed', totalTimeMs: 1854, downtimeMs: 150, setupMs: 4, transferredKbytes: 12086679, throughputMbps: 53522.74,
    duplicatePages: 4039509, normalPages: 146476, dirtySyncCount: 3, multifdKbytes: 12086679, pagesPerSecond: 2274851,
    precopyKbytes: 10698366, downtimeKbytes: 1388313,
  },
  // The printout has no status line, but it shows an expected downtime, which QEMU prints only
  // while the migration is active ("it will never converge").
  'qemu-2022-stress-precopy': {
    status: 'active', totalTimeMs: 120947, expectedDowntimeMs: 678, setupMs: 5, transferredKbytes: 283655333, throughputMbps: 19818.30,
    remainingKbytes: 1048116, duplicatePages: 3635761, normalPages: 70767622, dirtySyncCount: 286, multifdKbytes: 0,
    pagesPerSecond: 603627, dirtyPagesRate: 598555, precopyKbytes: 283655333,
  },
  'qemu-2022-stress-multifd': {
    status: 'completed', totalTimeMs: 2249, downtimeMs: 273, setupMs: 6, transferredKbytes: 5432984, throughputMbps: 19843.96,
    duplicatePages: 3635610, normalPages: 1346731, dirtySyncCount: 7, multifdKbytes: 5401030, pagesPerSecond: 1388326,
    precopyKbytes: 31953,
  },
  'qemu-2022-stress-multifd-zero': {
    status: 'completed', totalTimeMs: 2785, downtimeMs: 292, setupMs: 4, transferredKbytes: 16108184, throughputMbps: 47451.00,
    duplicatePages: 3633781, normalPages: 957319, dirtySyncCount: 4, multifdKbytes: 16108184, pagesPerSecond: 1861120,
    precopyKbytes: 14303936, downtimeKbytes: 1804247,
  },
};
