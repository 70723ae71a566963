import { TraceFormatError, gfnSpan, loadTrace } from '../trace/format.ts';
import { ScenarioError } from './error.ts';
import { deviceName } from './devices-schema.ts';
import { scenarioSchema, type Range, type Scenario } from './schema.ts';


const MAX_GUEST_BYTES = 2 ** 50;

/** zod's names of the types a field takes, as the CLI's messages say them. */
const EXPECTED: Record<string, string> = { number: 'a number', int: 'an integer', array: 'a list', object: 'a section', string: 'text', boolean: 'true or false' };

/** Validates a scenario (schema, then the checks that span fields); throws ScenarioError. */
export function parseScenario(input: unknown): Scenario {
  // Without zod's generated fast path: building it (a `new Function` per object schema) cost a
  // fresh process or worker 16 ms at its first parse against 3.6 ms for the whole parse without;
  // warm, 1,000 parses took 35 ms either way. zod reads `z.config({ jitless })` when a schema is
  // built, so only the per-parse option reaches a schema built at import.
  const r = scenarioSchema.safeParse(input, { jitless: true });
  if (!r.success) {
    const issue = r.error.issues[0]!;
    let path = issue.path.join('.');
    let detail = issue.message;
    if (issue.code === 'unrecognized_keys') {
      path = [...issue.path, issue.keys[0]].join('.');
      detail = 'unknown field';
    } else if (issue.code === 'invalid_type' && / received undefined$/.test(issue.message)) {
      // zod's own words ("Invalid input: expected array, received undefined") do not say that
      // the field has no default and must be given.
      detail = `required (no default): ${EXPECTED[issue.expected] ?? issue.expected}`;
    }
    throw new ScenarioError(path, detail);
  }
  const s = r.data;
  const pages = s.memory.pages;
  const inMemory = (path: string, ranges: Range[]) =>
    ranges.forEach((x, i) => {
      if (x.start + x.count > pages) {
        throw new ScenarioError(`${path}.${i}`, `range [${x.start}, ${x.start + x.count}) must lie within memory.pages (${pages})`);
      }
    });
  if (s.memory.outstanding.kind === 'ranges') inMemory('memory.outstanding.ranges', s.memory.outstanding.ranges);
  inMemory('memory.zeroRanges', s.memory.zeroRanges);
  const m = s.mapper.mapping;
  if (m.kind === 'ranges') inMemory('mapper.mapping.ranges', m.ranges);
  if (m.kind === 'buckets' && m.count * m.bucketPages > pages) {
    throw new ScenarioError('mapper.mapping.count', `at most ${Math.floor(pages / m.bucketPages)} buckets of ${m.bucketPages} pages fit in memory`);
  }
  if (s.memory.pages * s.memory.pageSize > MAX_GUEST_BYTES) {
    throw new ScenarioError('memory.pages', `memory.pages × memory.pageSize is at most 2^50 bytes (1 PiB), got ${s.memory.pages} × ${s.memory.pageSize}: byte counters must stay exact (below 2^53) through several full sends`);
  }
  if (s.memory.hostPageSize !== undefined && s.memory.hostPageSize % s.memory.pageSize !== 0) {
    throw new ScenarioError('memory.hostPageSize', `must be a multiple of memory.pageSize (${s.memory.pageSize}), e.g. 4096, 2097152 or 1073741824`);
  }
  const region = s.workload.region;
  if (region && region.start + region.count > pages) {
    throw new ScenarioError('workload.region', `range [${region.start}, ${region.start + region.count}) must lie within memory.pages (${pages})`);
  }
  checkTrace(s);
  if (s.ring.blackEye && s.source.policy !== 'qemu' && s.ring.capacity < s.workload.vcpus) {
    // Xen's round-robin wake unblocks at most one vCPU per free slot: with fewer slots than
    // vCPUs a blocked vCPU can stay paused for ever once the faults stop.
    throw new ScenarioError('ring.blackEye', `needs ring.capacity (${s.ring.capacity}) ≥ workload.vcpus (${s.workload.vcpus})`);
  }
  if (s.source.chunkMaxPages < s.source.chunkMinPages) {
    throw new ScenarioError('source.chunkMaxPages', `must be at least source.chunkMinPages (${s.source.chunkMinPages})`);
  }
  for (const l of ['link', 'backChannel'] as const) {
    if (s[l].ipTcpHeaderBytes >= s[l].mtuBytes) {
      throw new ScenarioError(`${l}.ipTcpHeaderBytes`, `must be smaller than ${l}.mtuBytes (${s[l].mtuBytes}) so a segment carries payload`);
    }
  }
  checkFaults(s);
  checkLifecycle(s);
  checkDevices(s, inMemory);
  return ordinary(s);
}

/** Objects with more fields than this are rebuilt (see `ordinary`). */
const FAST_FIELDS = 16;

/**
 * `v` with its objects of more than FAST_FIELDS fields rebuilt by a spread (and what holds
 * them, copied; the rest shared). zod adds a parsed object's fields one at a time, and V8 kept
 * some of those objects as dictionaries (%HasFastProperties: the pager's section, 23–28 fields,
 * precopy's, 20, a device's, 20–23; none of 16 or fewer): each read of a field is then a hash
 * lookup outside the optimised code, and the pager's are read for every record. A spread copy
 * is an ordinary object.
 */
function ordinary<T>(v: T): T {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    let out: unknown[] | null = null;
    for (let i = 0; i < v.length; i++) {
      const x = ordinary(v[i]);
      if (x !== v[i]) (out ??= v.slice())[i] = x;
    }
    return (out ?? v) as T;
  }
  const o = v as Record<string, unknown>;
  let fields = 0, out: Record<string, unknown> | null = null;
  for (const k in o) {
    fields++;
    const x = o[k];
    if (x === null || typeof x !== 'object') continue;
    const y = ordinary(x);
    if (y !== x) (out ??= { ...o })[k] = y;
  }
  return (out ?? (fields > FAST_FIELDS ? { ...o } : o)) as T;
}

/** Dirtying workloads fit in memory; mode-specific fields are not given to the wrong mode. */
function checkLifecycle(s: Scenario): void {
  const pages = s.memory.pages, d = s.precopy.dirtying, m = s.migration;
  if (d.kind === 'fio' && d.region.start + d.region.count > pages) {
    throw new ScenarioError('precopy.dirtying.region', `range [${d.region.start}, ${d.region.start + d.region.count}) must lie within memory.pages (${pages})`);
  }
  if (d.kind === 'stress') {
    const end = d.start + d.workers * Math.ceil(d.bytesPerWorker / s.memory.pageSize);
    if (end > pages) throw new ScenarioError('precopy.dirtying.bytesPerWorker', `${d.workers} workers × ${d.bytesPerWorker} bytes from page ${d.start} end at page ${end}, past memory.pages (${pages})`);
  }
  if (m.mode !== 'hybrid' && (m.switchAfterIterations > 0 || m.switchAtNs !== undefined)) {
    throw new ScenarioError(m.switchAtNs !== undefined ? 'migration.switchAtNs' : 'migration.switchAfterIterations', `only applies with migration.mode hybrid (it is ${m.mode})`);
  }
  if (s.multifd.channels > 0 && s.precopy.policy === 'xen') {
    throw new ScenarioError('multifd.channels', 'multifd is QEMU\'s: it needs precopy.policy qemu');
  }
}

/**
 * Bounds on what one event may loop over (the event caps cannot stop a loop inside an event): the
 * stop-copy reads of every device (each read becomes an event; 2^22 reads is 4 TiB in QEMU's
 * 1 MiB chunks), and the DMA writes that wait within one unmap delay (the unmap tracker keeps
 * each; 2^24 is 64 GiB of 4 KiB writes, e.g. 6.4 s of a 10 GB/s device). Past them a run looped
 * for hours in one event (found by an edge-value sweep of every field, 2026-11-27).
 */
const MAX_STOP_COPY_READS = 2 ** 22;
const MAX_DMA_PENDING_WRITES = 2 ** 24;

const NO_POSTCOPY = 'QEMU refuses postcopy with a VFIO device (2023, \'Block VFIO migration with postcopy migration\'): a device cannot fault on a page that has not arrived; set pageFaults: iopf to model IOMMU page faults (PCIe ATS/PRI)';

/** Device DMA stays in memory, device data on multifd needs channels, postcopy needs IOPF, names are unique. */
function checkDevices(s: Scenario, inMemory: (path: string, ranges: Range[]) => void): void {
  if (s.migration.deviceChannel === 'multifd' && s.multifd.channels === 0) {
    throw new ScenarioError('migration.deviceChannel', 'multifd needs multifd.channels > 0');
  }
  if (s.devices.length > 0 && s.migration.mode !== 'postcopy' && s.precopy.policy !== 'qemu') {
    throw new ScenarioError('precopy.policy', 'devices migrate over VFIO, QEMU\'s: they need precopy.policy qemu');
  }
  const named = new Map<string, number>();
  let reads = 0;
  s.devices.forEach((d, i) => {
    if (d.stopBy === 'vfio') {
      reads += Math.ceil(d.stopCopyBytes / d.readChunkBytes);
      if (reads > MAX_STOP_COPY_READS) {
        throw new ScenarioError(`devices.${i}.stopCopyBytes`, `the stop-copy data of the devices up to this one takes ${reads} reads of readChunkBytes; at most ${MAX_STOP_COPY_READS} in all (each read is an event): raise readChunkBytes or lower stopCopyBytes`);
      }
    }
    if (d.dma) {
      const pending = (d.dma.bytesPerSec * d.dma.unmapDelayNs) / 1e9 / s.memory.pageSize;
      if (d.dma.tracking === 'unmap' && pending > MAX_DMA_PENDING_WRITES) {
        throw new ScenarioError(`devices.${i}.dma.unmapDelayNs`, `${Math.round(pending)} page writes wait within one unmap delay (bytesPerSec × unmapDelayNs / memory.pageSize); at most ${MAX_DMA_PENDING_WRITES}: lower one of them`);
      }
      inMemory(`devices.${i}.dma.region`, d.dma.region);
      d.dma.buffers?.forEach((b, j) => {
        if (!d.dma!.region.some((r) => r.start <= b.start && b.start + b.count <= r.start + r.count)) {
          throw new ScenarioError(`devices.${i}.dma.buffers.${j}`, `range [${b.start}, ${b.start + b.count}) must lie within one range of devices.${i}.dma.region (the device writes only where it can reach)`);
        }
      });
    }
    // hot-unplug leaves no state to resume; a resumed device needs the migrated state.
    if ((d.stopBy === 'hot-unplug') !== (d.startBy !== 'resume')) {
      throw new ScenarioError(`devices.${i}.startBy`, d.stopBy === 'hot-unplug'
        ? 'a hot-unplugged device has no state to resume: hotplug or reset (seed 003)'
        : 'hotplug and reset start a device whose state did not migrate: they need stopBy hot-unplug');
    }
    if (d.pageFaults === 'none' && s.migration.mode !== 'precopy') throw new ScenarioError(`devices.${i}.pageFaults`, NO_POSTCOPY);
    const name = deviceName(d, i), j = named.get(name);
    if (j !== undefined) {
      // Two defaults never clash (dev<i> ≠ dev<j>): blame the one that was given.
      const at = d.name !== undefined ? i : j;
      throw new ScenarioError(`devices.${at}.name`, `"${name}" is also the name of devices.${at === i ? j : i} (unset names are dev<index>); names must be unique`);
    }
    named.set(name, i);
  });
}

/** Each fault has exactly one of `at` and `window`; a window runs forwards; degrade changes something. */
function checkFaults(s: Scenario): void {
  s.faults.forEach((f, i) => {
    const path = `faults.${i}`;
    if ((f.at === undefined) === (f.window === undefined)) throw new ScenarioError(`${path}.at`, 'give exactly one of at (ns) and window ({ from, to })');
    if (f.window && f.window.to < f.window.from) throw new ScenarioError(`${path}.window.to`, `must be at least window.from (${f.window.from})`);
    if (f.kind === 'degrade' && f.rateMbps === undefined && f.latencyNs === undefined) {
      throw new ScenarioError(`${path}.rateMbps`, 'a degrade needs rateMbps, latencyNs or both');
    }
  });
}

/** A trace workload names a readable trace whose pages fit the region it replays into. */
function checkTrace(s: Scenario): void {
  const w = s.workload;
  if (w.kind !== 'trace') {
    if (w.trace !== undefined) throw new ScenarioError('workload.trace', `is only read when workload.kind is trace (it is ${w.kind})`);
    return;
  }
  if (w.trace === undefined) throw new ScenarioError('workload.trace', 'workload.kind trace needs a .pctrace file');
  let trace;
  try {
    trace = loadTrace(w.trace);
  } catch (e) {
    if (e instanceof TraceFormatError) throw new ScenarioError('workload.trace', e.message);
    throw e;
  }
  if (trace.gfns.length === 0) throw new ScenarioError('workload.trace', `${w.trace} holds no records`);
  if (trace.pageSize !== s.memory.pageSize) {
    throw new ScenarioError('workload.trace', `${w.trace} has ${trace.pageSize}-byte pages, memory.pageSize is ${s.memory.pageSize}`);
  }
  const room = w.region ? w.region.count : s.memory.pages, span = gfnSpan(trace);
  if (span > room) {
    throw new ScenarioError('workload.trace', `${w.trace} touches gfns up to ${span - 1}, more than the ${room} pages of ${w.region ? 'workload.region' : 'memory.pages'}`);
  }
}
