import { VFIO_REPRODUCTION } from './device-presets.ts';
import type { ScenarioInput } from './schema.ts';

/**
 * The seeds' whole-migration experiments (docs/reproductions.md). Only what a seed states is set
 * here, plus the physical facts of its setting (docs/model.md); costs keep their defaults.
 */

/** Seed 004: 2 GiB HVM guest, 256 MiB writable working set (fio on a ramdisk), 1 Gbit/s. */
const XEN_WS = { start: 262_144, count: 65_536 };

/**
 * What the device model maps before the guest runs, on a restore: QEMU's `xen_ram_alloc`
 * populates nothing while INMIGRATE, guest RAM (the RAMBlock at offset 0) is mapped only bucket
 * by bucket when a device touches it (`xen_map_cache`), and no firmware runs again. A RAMBlock at
 * another offset is mapped whole at once (`qemu_map_ram_ptr`): the VGA's video RAM, by
 * `vga_common_init`. libxl's default for qemu-xen is a Cirrus card with 8 MiB of video RAM,
 * carved out of the domain's memory and placed right after guest RAM: the last 2 048 pages.
 */
const XEN_VRAM = { start: 524_288 - 2_048, count: 2_048 };

const xen2017: ScenarioInput = {
  memory: { pages: 524_288 },
  ring: { capacity: 8 },
  link: { rateMbps: 1000 },
  backChannel: { rateMbps: 1000 },
  source: { policy: 'xen', zeroPageDetection: 'none' }, // libxc's stream v2 sends every page whole
  precopy: { policy: 'xen', dirtying: { kind: 'fio', region: XEN_WS } },
  pager: { eviction: 'per-pfn' },
  mapper: { mapping: { kind: 'ranges', ranges: [XEN_VRAM] }, request: 'page' },
  workload: { kind: 'random', vcpus: 2, region: XEN_WS, writeFraction: 1 },
};

/**
 * Seed 001: a 16 GiB, 6-vCPU guest migrated through localhost with max-bandwidth 6 GiB/s and 4
 * multifd channels. Just booted, it holds 149,420 non-zero pages (the seed's `normal` count for
 * the idle guest): the rest of its memory was never touched and reads as the host's shared zero
 * page, whose check runs from cache (4 KiB at ~40 GB/s). Loopback: no Ethernet framing, 64 KiB
 * MTU, one TCP stream copies at ~30 Gbit/s (one core does both copies), each connection its own.
 */
const QEMU_PAGES = 4_194_304;
const qemu2022: ScenarioInput = {
  memory: { pages: QEMU_PAGES, zeroFraction: 1 - 149_420 / QEMU_PAGES },
  link: { rateMbps: 30_000, latencyNs: 5_000, mtuBytes: 65_535, frameOverheadBytes: 0 },
  backChannel: { rateMbps: 30_000, latencyNs: 5_000, mtuBytes: 65_535, frameOverheadBytes: 0 },
  source: { policy: 'qemu', zeroCheckNs: 100 },
  precopy: { policy: 'qemu', maxBandwidth: 6_442_450_944 },
  multifd: { wire: 'per-channel' },
  mapper: { mapping: { kind: 'none' } },
  workload: { kind: 'idle', vcpus: 6 },
};

/** `stress --vm 4 --vm-keep --vm-bytes 400M` in the same guest: 1.6 GB rewritten without pause. */
const STRESS = { kind: 'stress', workers: 4, bytesPerWorker: 400 * 1024 * 1024, start: 262_144 } as const;

function preset(base: ScenarioInput, name: string, description: string, patch: ScenarioInput): [string, ScenarioInput] {
  const s = structuredClone(base) as Record<string, unknown>;
  for (const [k, v] of Object.entries(patch)) s[k] = typeof v === 'object' && !Array.isArray(v) ? { ...(s[k] as object), ...v } : v;
  return [name, { ...s, name, description } as ScenarioInput];
}

const qemuVariants = (['idle', 'stress'] as const).flatMap((guest) => {
  const dirtying = guest === 'stress' ? { dirtying: STRESS } : {};
  // The seed's stress precopy never converged; it was read at 120,947 ms, still active.
  const limits = guest === 'stress' ? { limits: { horizonNs: 120_947_000_000 } } : {};
  const what = guest === 'idle' ? 'an idle 16 GiB guest' : 'a 16 GiB guest running stress --vm 4 --vm-bytes 400M';
  return [
    preset(qemu2022, `qemu-2022-${guest}-precopy`, `Seed 001: precopy of ${what} at 6 GiB/s over localhost`, {
      migration: { mode: 'precopy' }, precopy: { ...qemu2022.precopy, ...dirtying }, ...limits,
    }),
    preset(qemu2022, `qemu-2022-${guest}-multifd`, `Seed 001: ${what}, 4 multifd channels, zero pages found by the migration thread`, {
      migration: { mode: 'precopy' }, precopy: { ...qemu2022.precopy, ...dirtying }, multifd: { channels: 4, wire: 'per-channel' },
    }),
    preset(qemu2022, `qemu-2022-${guest}-multifd-zero`, `Seed 001: ${what}, 4 multifd channels finding zero pages themselves`, {
      migration: { mode: 'precopy' }, precopy: { ...qemu2022.precopy, ...dirtying }, multifd: { channels: 4, wire: 'per-channel' },
      source: { ...qemu2022.source, zeroPageDetection: 'multifd' },
    }),
  ];
});

export const lifecyclePresets: [string, ScenarioInput][] = [
  preset(xen2017, 'xen-2017-precopy', 'Seed 004: precopy + stop-and-copy of the 2 GiB guest (Xen policy: ≤ 50 dirty pages or 5 passes)', {
    migration: { mode: 'precopy' },
  }),
  preset(xen2017, 'xen-2017-hybrid-1pass', 'Seed 004: one precopy pass, then postcopy of what the guest dirtied meanwhile', {
    migration: { mode: 'hybrid', switchAfterIterations: 1 },
  }),
  preset(xen2017, 'xen-2017-postcopy', 'Seed 004: pure postcopy of the 2 GiB guest (the core\'s xen-2017-pure)', {
    migration: { mode: 'postcopy' },
  }),
  ...qemuVariants,
];

/** The presets `reproduce` runs, with the seed each mirrors. */
export const REPRODUCTIONS = {
  'xen-2017': ['xen-2017-precopy', 'xen-2017-hybrid-1pass', 'xen-2017-postcopy'],
  'qemu-2022': qemuVariants.map(([n]) => n),
  vfio: VFIO_REPRODUCTION,
} as const;

export type ReproductionName = keyof typeof REPRODUCTIONS;
export const REPRODUCTION_NAMES = Object.keys(REPRODUCTIONS) as ReproductionName[];
export const isReproductionName = (s: string): s is ReproductionName => Object.hasOwn(REPRODUCTIONS, s);
