import { z } from 'zod';
import { int, list, ns, pageBytes, range, REQUIRED, section } from './fields.ts';
import { devicesList } from './devices-schema.ts';
import { migrationSection, multifdSection, precopySection } from './lifecycle-schema.ts';

// Every default below is a physical or protocol fact; its `source` says where it comes from
// (`postcopy-emu fields`, and the tables of docs/model.md generated from these).

const NONE_YET = 'none yet';

/** Which pages are still at the source when postcopy starts (the RFC's POSTCOPY_PFNS set). */
const outstanding = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('all') }).strict(),
  z.object({ kind: z.literal('ranges'), ranges: list(range).min(1).meta({ unit: 'pages', source: REQUIRED }) }).strict(),
  z.object({ kind: z.literal('fraction'), fraction: z.number().gt(0).max(1).meta({ unit: 'fraction', source: REQUIRED }) }).strict(),
]);

/** What the device model maps while the domain is created (the storm). */
const mapping = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('none') }).strict(),
  z.object({ kind: z.literal('all') }).strict(),
  z.object({ kind: z.literal('ranges'), ranges: list(range).min(1).meta({ unit: 'pages', source: REQUIRED }) }).strict(),
  z.object({
    kind: z.literal('buckets'),
    bucketPages: int(1, 2 ** 30).default(256).meta({ unit: 'pages', source: 'QEMU\'s Xen map cache: 1 MiB buckets on 64-bit hosts' }),
    count: int(1, 2 ** 30).meta({ unit: 'buckets', source: REQUIRED }),
  }).strict(),
]);

/** A link's rate, Mbit/s: from 1 kbit/s (below it one 4 KiB page takes over 30 s: no migration link) to 10 Tbit/s. */
export const RATE_MBPS = { min: 0.001, max: 1e7 } as const;
const rateMbps = z.number().min(RATE_MBPS.min, 'at least 0.001 Mbit/s (1 kbit/s): slower, one 4 KiB page takes over 30 s').max(RATE_MBPS.max, 'at most 1e7 Mbit/s (10 Tbit/s)');
const link = {
  rateMbps: rateMbps.default(1000).meta({ unit: 'Mbit/s', source: 'an assumption: Gigabit Ethernet. Seed 004 states no rate; its own hybrid run moved 2 GiB in 44.44 s, ≈410 Mbit/s on the wire (`xl migrate` runs over ssh; docs/reproductions.md runs it at that rate too)' }),
  latencyNs: ns.default(50_000).meta({ unit: 'ns', source: 'one way on a switched LAN: a ping RTT of ~0.1 ms (NIC, interrupt, stack, one switch)' }),
  sendBufferBytes: int(0, 2 ** 40).default(4 * 1024 * 1024).meta({ unit: 'bytes', source: 'Linux `net.ipv4.tcp_wmem` maximum (4194304), reached by autotuning on a bulk stream' }),
  receiveBufferBytes: int(0, 2 ** 40).default(6 * 1024 * 1024).meta({ unit: 'bytes', source: 'Linux `net.ipv4.tcp_rmem` maximum (6291456)' }),
  mtuBytes: int(576, 65535).default(1500).meta({ unit: 'bytes', source: 'Ethernet' }),
  delayedAckNs: ns.default(40_000_000).meta({
    unit: 'ns',
    source: 'Linux\'s delayed ACK for a receiver in interactive mode (`TCP_DELACK_MIN` = HZ/25). It matters where QEMU finishes a precopy with its return path open (postcopy-ram on, `migration.mode: hybrid`): its main channel keeps Nagle\'s algorithm (only multifd channels call `qio_channel_set_delay(false)`), so the VMDESC section, flushed after the device state, waits for the ACK of it, and the destination\'s load waits for VMDESC. Traced on QEMU 7.2: the destination\'s `qemu_loadvm_state_post_main` at 2.0 ms after the STOP, its load\'s end at 43.8 ms (docs/real-qemu.md)',
  }),
  frameOverheadBytes: int(0, 4096).default(38).meta({ unit: 'bytes', source: 'preamble + SFD 8, MAC header 14, FCS 4, inter-frame gap 12' }),
  ipTcpHeaderBytes: int(0, 4096).default(52).meta({ unit: 'bytes', source: 'IPv4 20 + TCP 20 + timestamps option 12 (on by default in Linux)' }),
};

const at = {
  at: ns.optional().meta({ unit: 'ns', source: 'unset: give `at` or `window`' }),
  window: z.object({
    from: ns.meta({ unit: 'ns', source: REQUIRED }),
    to: ns.meta({ unit: 'ns', source: REQUIRED }),
  }).strict().optional().meta({ title: 'window', unit: 'ns', source: 'unset: give `at` or `window` (a time drawn from it)' }),
};
const durationNs = int(1, 1e15).meta({ unit: 'ns', source: REQUIRED });

/** Injected faults (docs/recovery.md): each at a fixed time or at one drawn from a window. */
const fault = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('link-cut'), ...at, durationNs }).strict(),
  z.object({
    kind: z.literal('degrade'), ...at, durationNs,
    rateMbps: rateMbps.optional().meta({ unit: 'Mbit/s', source: 'unset: the link\'s rate' }),
    latencyNs: ns.optional().meta({ unit: 'ns', source: 'unset: the link\'s latency' }),
  }).strict(),
  z.object({ kind: z.literal('backchannel-loss'), ...at, durationNs, probability: z.number().min(0).max(1).meta({ unit: 'fraction', source: REQUIRED }) }).strict(),
  z.object({ kind: z.literal('source-crash'), ...at, restartNs: int(1, 1e15).meta({ unit: 'ns', source: REQUIRED }) }).strict(),
]).meta({ title: 'fault', source: REQUIRED });

/** The load hypercall's own cost (XENMEM_paging_op_prep): an estimate, not measurable without Xen; `live --calibrate` adds it to what it measures. */
export const PREP_HYPERCALL_NS = 1_500;
/** pager.notifyNs and pager.drainPerRequestNs unset: Xen's event channel and ring, or userfaultfd's wake-up and uffd_msg read (see their fields). */
const XEN_NOTIFY_NS = 2_000, UFFD_NOTIFY_NS = 14_500, XEN_DRAIN_NS = 200, UFFD_DRAIN_NS = 1_700;
const TRACED = 'QEMU 7.2.22, `pc`, one vCPU, on the project\'s machine (nested KVM): `real.switchover` of 36 real postcopy runs of 1 and 4 GiB guests at 1 Gbit/s (2026-11-27, examples/real-kvm-2026-11-27/switchover-1g and -4g; docs/real-qemu.md, "Where the downtime goes"; examples/host-2026-11-27.yaml)';

const EVICT_BATCH = 'RFC v2 `process_postcopy_pfns`: one `xc_mem_paging_populate_evicted` call (one XENMEM_paging_op hypercall, split by Xen\'s continuations) per POSTCOPY_PFNS record';
// A range load is the fix under test: no implementation exists, so its costs are the per-page
// path's parts, measured where they can be (native/calibrate.c).
const BATCH_LOAD_CALL = 'a range loaded with one call (hypothetical: the fix under test): one hypercall (~3 µs, estimate) and one mlock() + munlock() of the range\'s buffer, 4.5 µs of fixed cost measured on the project\'s machine (4.3–5.7 µs for 1–8 pages); the record\'s pages are passed in place, no bounce copy';
const BATCH_LOAD_PAGE = 'a range loaded with one call, per page: Xen\'s copy of 4 KiB into the frame (~400 ns, as `recvPerPageNs`) and mlock()\'s share of a page, ~180 ns measured on the project\'s machine (mlock + munlock of 64 pages 15.7 µs, of 512 pages 96 µs)';

export const scenarioSchema = z.object({
  name: z.string().default('custom').meta({ source: 'a label: the result\'s `emulator.scenario`' }),
  description: z.string().default('').meta({ source: 'a label' }),
  seed: int(0, Number.MAX_SAFE_INTEGER).default(1).meta({ source: 'any: every random stream derives from it' }),
  memory: section({
    pages: int(1, 2 ** 30).default(524_288).meta({ unit: 'pages', source: '2 GiB guest (seed 004)' }),
    pageSize: pageBytes.default(4096).meta({ unit: 'bytes', source: 'x86 base page' }),
    hostPageSize: pageBytes.optional().meta({
      unit: 'bytes',
      source: 'unset: = pageSize. The host page backing guest memory: 4 KiB, or hugetlbfs 2 MiB / 1 GiB; a huge page is placed whole (userfaultfd), so a fault waits for all of it',
    }),
    outstanding: outstanding.default({ kind: 'all' }).meta({ source: 'pure postcopy: every page; in postcopy mode `memory.outstanding` stands for any precopy before the switchover' }),
    zeroFraction: z.number().min(0).max(1).default(0).meta({
      unit: 'fraction',
      source: 'share of guest pages that are all zeros, drawn per page from the seed (a freshly booted guest is mostly zero pages: seed 001\'s idle 16 GiB guest sent 4 M of 4.2 M pages as duplicates)',
    }),
    zeroRanges: list(range).default([]).meta({
      unit: 'pages',
      source: 'ranges `{start, count}` of pages that are zero pages in addition to those `zeroFraction` draws: the issue\'s per-region map (e.g. memory a guest never touched)',
    }),
  }),
  ring: section({
    capacity: int(1, 65_536).default(8).meta({ unit: 'slots', source: 'one 4 KiB shared page, 64-byte header, 312-byte request: (4096 − 64) / 312 = 12.9, rounded down to a power of two (RFC)' }),
    blackEye: z.boolean().default(false).meta({
      source: 'Xen applies the rule only to a vCPU with no vm_event pause pending; a paging fault pauses the vCPU before it puts the request, so for paging the rule does not bite. On = the rule for every put, to study it',
    }),
    unbounded: z.boolean().optional().meta({
      source: 'unset: true with source.policy qemu or lazy-pages (userfaultfd: `handle_userfault` queues every fault on the uffd, no bound), false otherwise (Xen\'s ring). True: faults queue without bound, `capacity` and `blackEye` are ignored',
    }),
  }),
  link: section(link),
  /** The same TCP connection's other direction: the same facts as `link`. */
  backChannel: section(link),
  source: section({
    policy: z.enum(['xen', 'qemu', 'demand', 'bubbling', 'adaptive-chunk', 'prefault', 'push-only', 'lazy-pages']).default('xen').meta({
      source: 'the RFC\'s source: a linear scan of unsent pages from the last requested pfn + 1. `qemu`: the same order over userfaultfd (`ring.unbounded`, `source.switchover` follow it); the others are from the literature (docs/policies.md)',
    }),
    switchover: z.enum(['pfns', 'discard']).optional().meta({
      source: 'unset: `discard` with source.policy qemu or lazy-pages, `pfns` otherwise. `pfns`: the RFC\'s POSTCOPY_PFNS lists every outstanding page and the destination evicts each (`pager.eviction`). `discard`: QEMU\'s `ram_postcopy_send_discard_bitmap` sends the runs of the dirty bitmap as ranges (`postcopy_send_discard_bm_ram`, 12 per MIG_CMD_POSTCOPY_RAM_DISCARD) and the destination madvise(DONTNEED)s each (`ram_discard_range`): no page list, and only pages it holds cost anything',
    }),
    pivots: int(1, 1024).default(1).meta({ when: 'policy: bubbling', source: 'Hines & Gopalan (VEE 2009) keep one pivot; their journal version compared several and found 7 best' }),
    bubbleDirection: z.enum(['both', 'forward']).default('both').meta({ when: 'policy: bubbling', source: 'the paper\'s bubble grows on both sides of the pivot; `forward` is its forward-only variant' }),
    chunkMinPages: int(1, 2 ** 20).default(16).meta({ unit: 'pages', when: 'policy: adaptive-chunk, lazy-pages', source: 'CRIU `criu/uffd.c` `DEFAULT_XFER_LEN` = 64 KiB = 16 pages of 4 KiB (first chunk and growth step)' }),
    chunkMaxPages: int(1, 2 ** 20).default(1024).meta({ unit: 'pages', when: 'policy: adaptive-chunk, lazy-pages', source: 'CRIU `MAX_XFER_LEN` = 4 MiB = 1024 pages of 4 KiB' }),
    prefaultAfter: int(0, 2 ** 20).default(16).meta({
      unit: 'pages', when: 'policy: prefault',
      source: 'Yabusame\'s default is not known to us (its QEMU patches take forward/backward prefault counts); 16 after each requested page is our choice',
    }),
    prefaultBefore: int(0, 2 ** 20).default(0).meta({ unit: 'pages', when: 'policy: prefault', source: 'none before each requested page: our choice, as `prefaultAfter`' }),
    recordPages: int(1, 65_536).default(64).meta({ unit: 'pages', source: 'RFC: postcopy page batch of 64 pages, small "so that it can quickly respond to remote faults"' }),
    pfnBatch: int(1, 2 ** 30).default(524_288).meta({ unit: 'pages', source: 'RFC: POSTCOPY_PFNS carries up to 512k pfns' }),
    perPageNs: ns.default(400).meta({ unit: 'ns', source: 'copying 4 KiB out of guest memory: a memcpy of 4 KiB from scattered (cold) pages, 310–440 ns median on the project\'s machine (native/calibrate.c `memcpy_4k`)' }),
    zeroPageDetection: z.enum(['legacy', 'multifd', 'none']).default('legacy').meta({
      source: 'QEMU `zero-page-detection`. `legacy`: the migration thread checks every page (`buffer_is_zero`), QEMU\'s only behaviour before 9.0 and its behaviour whenever multifd is off. `multifd`: the multifd channel threads check (QEMU ≥ 9.0\'s default); without channels, and for postcopy pages, the migration thread checks as with `legacy` (QEMU\'s `ram_save_target_page`; see lifecycle.md). `none`: zero pages are sent as data',
    }),
    zeroCheckNs: ns.default(400).meta({ unit: 'ns', source: 'the check reads a zero page whole: a cold 4 KiB read, as the copy in `perPageNs` (310–440 ns measured); a data page stops at its first non-zero bytes (counted in `perPageNs`)' }),
    perRecordNs: ns.default(5_000).meta({ unit: 'ns', source: 'one foreign-map call for the batch plus one `write()` syscall, a few µs' }),
    deviceSaveNs: ns.default(0).meta({
      unit: 'ns',
      source: `0: not counted. The source's save of the non-RAM device state once the guest is stopped (\`qemu_savevm_state_complete_precopy\`: the vCPU's registers through KVM ioctls and ~25 device vmstates), before the package goes out: the stop's first \`savevm_state_complete_precopy\` → \`savevm_send_postcopy_run\`, less the final dirty-bitmap sync between, 1.42 ms, the median of 36 (1.29–2.48 ms), ${TRACED}`,
    }),
    transitionBytes: int(0, 2 ** 40).default(65_536).meta({
      unit: 'bytes',
      source: 'Xen\'s HVM CPU context and the records that precede the transition: tens of KiB. QEMU\'s package (MIG_CMD_PACKAGED: POSTCOPY_LISTEN, the device state, POSTCOPY_RUN) of a `pc` guest with one vCPU was 12,935 bytes on the project\'s machine (`real.switchover` package-bytes, 1 and 4 GiB); under 32 KiB it waits for the pages after it under Nagle',
    }),
    maxPostcopyBandwidth: int(0, 2 ** 50).default(0).meta({
      unit: 'bytes/s',
      source: 'QEMU `max-postcopy-bandwidth` default: 0 = no limit. Otherwise the migration thread\'s rate limit (`migration_rate_limit`): a budget of bandwidth/10 per 100 ms window (`BUFFER_DELAY`), then it sleeps to the window\'s end; requests arriving meanwhile wait for it (docs/policies.md)',
    }),
  }),
  migration: migrationSection,
  precopy: precopySection,
  multifd: multifdSection,
  devices: devicesList.default([]).meta({
    source: 'none: no passthrough device. Each item is a VFIO device that migrates its own state (migration uAPI v2); set the list whole, like faults',
  }),
  pager: section({
    eviction: z.enum(['per-pfn', 'batched']).default('per-pfn').meta({
      source: 'RFC v1 `process_postcopy_pfns` (the code the seed measured): one batched populate, then nominate + evict per pfn. `batched`: RFC v2\'s `populate_evicted`',
    }),
    evictPerPfnNs: ns.default(3_000).meta({
      unit: 'ns', when: 'eviction: per-pfn',
      source: 'RFC v1 `process_postcopy_pfns`: per pfn `xc_mem_paging_nominate` and `xc_mem_paging_evict`, each one XENMEM_paging_op hypercall through privcmd (`p2m_mem_paging_nominate`, `p2m_mem_paging_evict`: gfn lock, p2m lookup and update; evict frees the frame). Each ~1.5 µs: ioctl and hypercall entry ~1 µs + the p2m update ~0.5 µs (estimate, not measured). The record\'s one batched populate is left out',
    }),
    evictBatchPages: int(1, 2 ** 30).default(524_288).meta({ unit: 'pages', when: 'eviction: batched', source: `${EVICT_BATCH}: up to 512k pfns (\`source.pfnBatch\`)` }),
    evictBatchCallNs: ns.default(5_000).meta({ unit: 'ns', when: 'eviction: batched', source: `${EVICT_BATCH}: ioctl and hypercall entry, a few µs (estimate)` }),
    evictBatchPerPageNs: ns.default(500).meta({
      unit: 'ns', when: 'eviction: batched',
      source: `${EVICT_BATCH}. Per gfn Xen's loop does \`copy_from_guest_offset\`, \`gfn_lock\`, \`get_entry\`, \`p2m_set_entry\`: the p2m update in evictPerPfnNs's estimate, without a hypercall entry: ~0.5 µs`,
    }),
    listenNs: ns.default(0).meta({
      unit: 'ns',
      source: `0: not counted. With pages still outstanding, the destination's POSTCOPY_LISTEN: userfaultfd registered over guest RAM and the listen thread started and waited for (\`loadvm_postcopy_handle_listen\` enter → return), 1.71 ms, the median of 36 (0.23–9.03 ms: idle guests 4–4.7 ms, whose zero-page threads leave the main thread waiting for a CPU, writers 0.67–1.71), ${TRACED}`,
    }),
    deviceLoadNs: ns.default(0).meta({
      unit: 'ns',
      source: `0: not counted. The destination's device-state load, vCPU state put through KVM (\`cpu_synchronize_all_post_init\`) and \`vm_start\` before the guest runs: POSTCOPY_LISTEN's return → the RESUME event, 0.93 ms, the median of 36 (0.48–4.37 ms); a precopy's last RAM section → RESUME took 0.92–0.96 ms, ${TRACED}`,
    }),
    discardRangeNs: ns.default(2_000).meta({
      unit: 'ns', when: 'source.switchover: discard',
      source: 'one madvise(MADV_DONTNEED) per discard range (`ram_discard_range`): syscall entry, mmap lock, a page-table walk that skips empty tables, one TLB flush: ~2 µs (1.6 µs over one populated page on the project\'s machine, `live --calibrate` `discard_call_4k`)',
    }),
    discardPrepareNs: ns.default(0).meta({
      unit: 'ns', when: 'source.switchover: discard',
      source: '0: not counted. Once, at the first discard command: QEMU\'s `postcopy_ram_prepare_discard` turns THP off over each RAM block (madvise NOHUGEPAGE) before the ranges are dropped. From QEMU\'s own discard stage on the project\'s machine (`real.switchover` discard-ms, 0.41 ms for 1 GiB and 1.21 ms for 4 GiB, medians of 18 each): 0.14 ms besides the 1.0 ns per page the ranges span (`discardSpanPageNs`)',
    }),
    discardSpanPageNs: z.number().min(0).max(1e6).default(0).meta({
      unit: 'ns', when: 'source.switchover: discard',
      source: '0: not counted. Per page a discard range spans, held or not: madvise(MADV_DONTNEED) walks the range. From QEMU\'s own discard stage on the project\'s machine (`real.switchover` discard-ms, postcopy from the start, every page in the ranges, none held): 0.41 ms for 1 GiB, 1.21 ms for 4 GiB (medians of 18 each), 1.0 ns a page and 0.14 ms besides (`discardPrepareNs`)',
    }),
    discardPageNs: ns.default(100).meta({
      unit: 'ns', when: 'source.switchover: discard',
      source: 'per page the destination holds in a discarded range (sent before the switchover, dirtied since): clearing its PTE and freeing the page, ~100 ns; pages it never received cost nothing. Measured on the project\'s machine: 147–164 ns a 4 KiB page, 7–11 ns per 4 KiB of huge pages, which is how QEMU holds what precopy wrote (it sets NOHUGEPAGE only at the first discard: postcopy-ram.c; `live --calibrate` `discard_thp_per_4k`)',
    }),
    recvPerPageNs: ns.default(400).meta({ unit: 'ns', source: '`read()` copying 4 KiB out of the socket. Data a NIC wrote by DMA is cold: a cold 4 KiB copy took 310–440 ns median on the project\'s machine (native/calibrate.c `memcpy_4k`); on loopback, still in cache, (a read() of 32 KiB queued − of 4 KiB) / 7 took 70–270 ns (`postcopy-emu live --calibrate`)' }),
    loadPageNs: ns.default(400 + 4_500 + PREP_HYPERCALL_NS).meta({ unit: 'ns', source: 'the RFC\'s `postcopy_load_page` per page: a memcpy into the pager\'s page buffer (400 ns: a cold 4 KiB copy, 310–440 ns measured), then libxc\'s `xc_mem_paging_load`: mlock() of the buffer, the XENMEM_paging_op_prep hypercall (a new frame, Xen\'s 4 KiB copy into it, the p2m update: ~1.5 µs, estimate) and munlock(). mlock + munlock of one page: 4.3–4.8 µs median on the project\'s machine (native/calibrate.c `mlock_munlock_4k`; a nested KVM guest, not a 2017 dom0)' }),
    zeroLoadNs: ns.default(1_100).meta({ unit: 'ns', source: 'placing a zero page: the prep hypercall without a buffer (libxc\'s `xc_mem_paging_prep`: no copy, no mlock), a zeroed frame and the p2m update; the RFC itself sends zero pages as data (UFFDIO_ZEROPAGE is QEMU\'s)' }),
    batchLoadCallNs: ns.default(7_500).meta({ unit: 'ns', source: BATCH_LOAD_CALL }),
    batchLoadPerPageNs: ns.default(600).meta({ unit: 'ns', source: BATCH_LOAD_PAGE }),
    drainPerRequestNs: ns.optional().meta({
      unit: 'ns',
      source: `unset: ${XEN_DRAIN_NS} ns with pager.placement hypercall (copy a 312-byte request off the ring and book-keep), ${UFFD_DRAIN_NS} ns with uffd (\`read()\` of one uffd_msg: 1.70 µs median on the project's machine, native/calibrate.c \`fault_read_msg\`, 1.70–1.85 µs across three invocations on 2026-11-27; 2.1 µs on a busier day)`,
    }),
    faultRecordNs: ns.default(2_000).meta({ unit: 'ns', source: 'one `write()` on the back-channel: a 16-byte write() on loopback TCP with TCP_NODELAY took 2.8 µs median on the project\'s machine (native/calibrate.c `tcp_write_16b`); the RFC writes into the ssh pipe, a pipe write costing less' }),
    wakeNs: ns.default(9_000).meta({ unit: 'ns', source: 'event-channel upcall to dom0, `poll()` returns in the pager process (interrupt + context switch). Measured for the same wake-up on Linux: a thread blocked in poll() woken by an event on another CPU, 8.5–9.4 µs median on the project\'s machine (native/calibrate.c `fault_wake`: a touch of a missing page wakes the userfaultfd handler), 17–29 µs when the host was busy' }),
    notifyNs: ns.optional().meta({
      unit: 'ns',
      source: `unset: ${XEN_NOTIFY_NS} ns with pager.placement hypercall (\`xenevtchn_notify\` + Xen's \`vm_event_resume\` consuming the responses), ${UFFD_NOTIFY_NS} ns with uffd (UFFDIO_COPY's wake-up of the faulting thread: the handler's message read → the touching thread runs again, \`fault_place_resume\` 17.5 µs, less a UFFDIO_COPY without a waiter, \`uffd_copy_4k\` 3.0 µs; medians of three invocations of native/calibrate.c on the project's machine on 2026-11-27, 13.9–15.5 µs across them, 22 µs on a busier day)`,
    }),
    placement: z.enum(['hypercall', 'uffd']).optional().meta({
      source: 'unset: `uffd` with source.policy qemu or lazy-pages, `hypercall` otherwise. `hypercall`: the RFC\'s load call per page (`loadPageNs`, `zeroLoadNs`, batched ranges). `uffd`: QEMU\'s listen thread (`ram_load_postcopy`) reads the record off the socket (`readCallNs`) and places each page with UFFDIO_COPY (`postcopy_place_page`), each zero page with UFFDIO_ZEROPAGE, a huge host page with one UFFDIO_COPY once whole',
    }),
    uffdCopyNs: ns.default(2_600).meta({
      unit: 'ns', when: 'placement: uffd',
      source: 'one UFFDIO_COPY of a 4 KiB page (`postcopy_place_page`; with huge host pages, the first 4 KiB of the host page\'s one call): 2.6 µs, median on the project\'s machine (`postcopy-emu live --calibrate`, examples/host-local.yaml; 2.6–3.3 µs across runs)',
    }),
    uffdCopyPerPageNs: ns.default(610).meta({
      unit: 'ns', when: 'placement: uffd',
      source: 'each further 4 KiB in one UFFDIO_COPY (a huge host page): (one 64-page copy 40.8 µs − one page 2.6 µs) / 63, medians on the project\'s machine (`postcopy-emu live --calibrate`, examples/host-local.yaml)',
    }),
    uffdZeroPageNs: ns.default(1_600).meta({
      unit: 'ns', when: 'placement: uffd',
      source: 'one UFFDIO_ZEROPAGE of 4 KiB (`postcopy_place_page_zero`): 1.55 µs, median on the project\'s machine (`postcopy-emu live --calibrate`, examples/host-local.yaml; 1.5–1.7 µs across runs)',
    }),
    pageWorkNs: ns.default(0).meta({
      unit: 'ns', when: 'placement: uffd',
      source: '0: not counted. The loading thread\'s own work per page besides the placing ioctl: QEMU\'s `ram_load_postcopy` parses the page\'s header, then `postcopy_place_page(_zero)` sets the received bitmap, looks the page up in the request tree under its mutex and runs the blocktime hook. On the project\'s machine QEMU 7.2\'s listen thread spent 491 ns of CPU per zero page placed (its schedstat, `real.threads`, the median of 6 idle guests; examples/real-kvm-2026-11-27/listen-cpu), 192 ns more than UFFDIO_ZEROPAGE alone (examples/host-2026-11-27.yaml)',
    }),
    readCallNs: ns.default(7_900).meta({
      unit: 'ns', when: 'placement: uffd',
      source: 'one `read()` filling QEMUFile\'s 32 KiB buffer (`IO_BUF_SIZE`), ceil(record bytes / 32 KiB) per record: a loopback TCP read of 4 KiB already queued less its copy, 7.9 µs, median on the project\'s machine (`postcopy-emu live --calibrate`, examples/host-local.yaml; 5.9–7.9 µs across runs); the copy is `recvPerPageNs`',
    }),
    wakeAt: z.enum(['page', 'record']).optional().meta({
      source: 'unset: `page` with source.policy qemu and 4 KiB host pages, `record` otherwise. `page`: QEMU\'s listen thread reads and places a record page by page (`ram_load_postcopy`), each UFFDIO_COPY waking the threads faulting on its page, so a page is present when the thread reaches it (its share of the record\'s cost, pages in order); with pager.placement uffd it reads the pages as their bytes come, a page no sooner than its share after its own bytes arrive. `record`: the RFC loads a whole record, then pushes the responses and notifies once (`process_postcopy_page_data`; with pager.placement hypercall each page is present as its load call makes it, \`p2m_mem_paging_prep\`); CRIU copies a chunk with one UFFDIO_COPY. Huge host pages: always `record` (a host page is placed when its last piece arrives)',
    }),
    faultThread: z.boolean().optional().meta({
      source: 'unset: true with source.policy qemu (QEMU\'s `postcopy_ram_fault_thread` sends one request per fault at once, beside the thread loading pages), false otherwise (the RFC\'s single pager thread: loads first, then one FAULT record per drain)',
    }),
  }),
  mapper: section({
    mapping: mapping.default({ kind: 'none' }).meta({ source: 'none yet: `none` runs no device-model storm. The core xen-2017 presets map `all` (the RFC\'s suspected storm); the seed-004 lifecycle presets map what QEMU maps whole on a restore, the video RAM (docs/reproductions.md)' }),
    request: z.enum(['page', 'range']).default('page').meta({ source: 'Xen\'s one-gfn page-in requests; `range` is the fix under test' }),
    order: z.enum(['sequential', 'random']).default('sequential').meta({ source: NONE_YET }),
    retryNs: ns.default(100_000).meta({ unit: 'ns', source: 'Xen\'s foreign-memory library: `usleep(100)` between retries (RFC)' }),
    timerSlackNs: ns.default(50_000).meta({ unit: 'ns', source: 'Linux default timer slack for normal threads (50 µs, `init_task.timer_slack_ns`): `usleep`\'s hrtimer fires at expires + slack (`schedule_hrtimeout_range`: "normal best effort behavior for expires+delta") unless another timer interrupt comes first, which the model leaves out. Xen\'s own `timer_slop` (50 µs) only holds back deadlines nearer than that. `usleep(100)` on the project\'s machine (a nested KVM guest): 191–192 µs median with the 50 µs slack, 141 µs with 1 ns (`PR_SET_TIMERSLACK`): the slack in full, plus ~41 µs of wake-up (native/calibrate.c `usleep_100`)' }),
    mapCallNs: ns.default(5_000).meta({ unit: 'ns', source: '`IOCTL_PRIVCMD_MMAPBATCH_V2` entry and set-up' }),
    perGfnNs: ns.default(200).meta({ unit: 'ns', source: 'per gfn in the batch: one `mmu_update` entry (16 per hypercall) with a p2m lookup' }),
  }),
  workload: section({
    kind: z.enum(['idle', 'sequential', 'random', 'shuffled', 'hot-set', 'memtest', 'trace']).default('idle').meta({ source: 'none yet: `idle` touches nothing. `random` draws each page uniformly (with repeats); `shuffled` visits every page of the region once per pass in a pseudo-random order (a full-period LCG, the real harness\'s firmware guest)' }),
    trace: z.string().min(1).optional().meta({ when: 'kind: trace', source: 'unset; kind trace needs it: a .pctrace file (docs/traces.md), relative to the current directory' }),
    vcpus: int(1, 4096).default(1).meta({ unit: 'vCPUs', source: NONE_YET }),
    region: range.optional().meta({ unit: 'pages', source: 'unset: all of guest memory' }),
    hotPages: int(1, 2 ** 30).default(1024).meta({ unit: 'pages', when: 'kind: hot-set', source: 'a workload choice, not a physical quantity: a 4 MiB hot set; set it to the workload studied' }),
    hotProbability: z.number().min(0).max(1).default(0.9).meta({ unit: 'fraction', when: 'kind: hot-set', source: 'a workload choice: 90 % of the touches in the hot set (the 90/10 rule of thumb)' }),
    writeFraction: z.number().min(0).max(1).default(0.5).meta({ unit: 'fraction', source: 'a workload choice: half the touches write (presets: 1, fio writes)' }),
    thinkNs: ns.default(4_000).meta({ unit: 'ns', source: 'one 4 KiB write per 4 µs ≈ 1 GB/s, fio writing to a ramdisk' }),
    think: z.enum(['exponential', 'constant']).default('exponential').meta({
      source: 'a guest\'s think times vary: exponential with mean thinkNs (a Poisson stream of touches). `constant`: exactly thinkNs each, a loop that touches page after page at one pace (the real harness\'s firmware guest)',
    }),
    prefetchPages: int(0, 2 ** 20).default(0).meta({ unit: 'pages', source: 'none yet: 0 = a fault asks for its own page only' }),
  }),
  /** QEMU postcopy-preempt: requested pages travel on their own connection. */
  preempt: section({
    enabled: z.boolean().default(false).meta({ source: 'QEMU\'s postcopy-preempt capability is off by default' }),
    share: z.number().gt(0).max(1).default(0.5).meta({
      unit: 'fraction', when: 'enabled: true',
      source: 'the preempt flow\'s part of the wire while the main stream is backlogged: two backlogged TCP flows on one link get equal shares under per-flow fair queuing: fq_codel, the default qdisc where systemd sets it (`net.core.default_qdisc = fq_codel`), serves its flow queues by deficit round robin, as fq does. The kernel\'s own default, pfifo_fast, has one FIFO and no such share',
    }),
    sender: z.enum(['return-path', 'migration-thread']).default('return-path').meta({
      when: 'enabled: true',
      source: 'who sends a requested page. `return-path`: QEMU ≥ 8.1\'s return-path thread, as the request arrives (`ram_save_host_page_urgent`), not held back by the rate limit. `migration-thread`: QEMU 7.1–8.0, the migration thread between its pages (`postcopy_preempt_choose_channel`), so over the rate limit\'s budget a request waits for the next window like one without preempt (`qemu_savevm_state_iterate` returns while over budget)',
    }),
  }),
  timeline: section({
    samples: int(0, 100_000).default(0).meta({ unit: 'samples', source: 'off: sampled time series for plots, kept to about this many (±2×)' }),
    pollMs: int(0, 1e6).default(0).meta({
      unit: 'ms',
      source: 'off: read the query-migrate counters every N ms of precopy, as a management tool polls; QEMU\'s guestperf polls every 50 ms (`time.sleep(0.05)`), and `run --timeline` without a value uses 50',
    }),
  }),
  faults: list(fault).default([]).meta({ source: 'injected link cuts, source crashes, degraded links, back-channel loss (docs/recovery.md)' }),
  recovery: section({
    enabled: z.boolean().default(true).meta({ source: 'QEMU pauses a postcopy migration on a network failure and resumes it (postcopy recovery)' }),
    setupNs: ns.default(0).meta({ unit: 'ns', source: 'extra time before the destination sends its received bitmap (the operator\'s `migrate-recover`); the TCP connect adds 2 × latency' }),
  }),
  limits: section({
    horizonNs: int(1, 1e15).default(3_600e9).meta({ unit: 'ns', source: 'a run that has not finished after an hour of guest time stops there' }),
    livenessNs: int(1, 1e15).optional().meta({
      unit: 'ns',
      source: 'unset: 60 s beyond the longest a fault can wait in this scenario (every page served alone, one after another, paying every per-operation cost, the slowest rate and four latencies; docs/limits.md). The checker\'s bound: once injected faults have healed, no vCPU may stay blocked longer',
    }),
    maxEvents: int(1, Number.MAX_SAFE_INTEGER).default(1e9).meta({
      unit: 'events',
      source: 'a bound that always fires: 1e9 events is minutes of wall time at 2–7 M events/s, fifty times the largest preset (a 1 TiB storm takes ~20 M); a run that reaches it fails with the reason',
    }),
    maxEventsPerInstant: int(1, Number.MAX_SAFE_INTEGER).default(1e6).meta({
      unit: 'events',
      source: 'an instant holds at most a few events per vCPU, ring slot and record in flight; a million without the clock moving is a loop that makes no progress (e.g. zero-cost retries): the run fails with the reason',
    }),
    stopAt: z.enum(['complete', 'resume']).default('complete').meta({ source: '`resume` stops when the guest runs (downtime studies)' }),
  }),
}).strict();

/** A scenario as written in a file (every field optional). */
export type ScenarioInput = z.input<typeof scenarioSchema>;
/** A validated scenario with every default filled in. */
export type Scenario = z.output<typeof scenarioSchema>;
export type LinkParams = Scenario['link'];
export type Range = z.output<typeof range>;
export type FaultSpec = z.output<typeof fault>;
/** One `devices` item as validated (kind-dependent fields may be unset: see deviceDefaults). */
export type DeviceSpec = Scenario['devices'][number];

/** Policies whose destination is userfaultfd (QEMU, CRIU's lazy-pages daemon). */
const UFFD_POLICIES: readonly string[] = ['qemu', 'lazy-pages'];

/** Whether faults queue without bound: `ring.unbounded`, unset following the policy. */
export function ringUnbounded(s: Scenario): boolean {
  return s.ring.unbounded ?? UFFD_POLICIES.includes(s.source.policy);
}

/** From the pager's answer (responses pushed, or UFFDIO_COPY) to the vCPU running again: `pager.notifyNs`, unset following the placement. */
export function notifyNsOf(s: Scenario): number {
  return s.pager.notifyNs ?? (placementOf(s) === 'uffd' ? UFFD_NOTIFY_NS : XEN_NOTIFY_NS);
}

/** Taking one request (off the ring, or a uffd_msg): `pager.drainPerRequestNs`, unset following the placement. */
export function drainPerRequestNsOf(s: Scenario): number {
  return s.pager.drainPerRequestNs ?? (placementOf(s) === 'uffd' ? UFFD_DRAIN_NS : XEN_DRAIN_NS);
}

/** Whether faults are read by their own thread and requested one by one: `pager.faultThread`, unset following the policy. */
export function faultThreadOf(s: Scenario): boolean {
  return s.pager.faultThread ?? s.source.policy === 'qemu';
}

/** What the source sends at the switchover: `source.switchover`, unset following the policy. */
export function switchoverOf(s: Scenario): 'pfns' | 'discard' {
  return s.source.switchover ?? (UFFD_POLICIES.includes(s.source.policy) ? 'discard' : 'pfns');
}

/** When the pages of a record become present: `pager.wakeAt`, unset following the policy and the host page size. */
export function wakeAtOf(s: Scenario): 'page' | 'record' {
  return s.pager.wakeAt ?? (s.source.policy === 'qemu' && (s.memory.hostPageSize ?? s.memory.pageSize) === s.memory.pageSize ? 'page' : 'record');
}

/** How the destination places pages: `pager.placement`, unset following the policy. */
export function placementOf(s: Scenario): 'hypercall' | 'uffd' {
  return s.pager.placement ?? (UFFD_POLICIES.includes(s.source.policy) ? 'uffd' : 'hypercall');
}
