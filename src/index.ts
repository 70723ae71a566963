/**
 * postcopy-emu's library API: the building blocks with their types, so a test can build a small
 * scenario, fault pages by hand, step the clock and look at the ring, the pager and the source.
 */
export { Emulator } from './emulator.ts';
export type { EmulatorEventMap, EmulatorEvents } from './events.ts';
export { Kernel, type EventHandler } from './kernel/kernel.ts';
export { EventQueue } from './kernel/queue.ts';
export { Rng, streamSeed } from './kernel/rng.ts';
export { Link } from './link/link.ts';
export { GuestMemory, PageState, outstandingSet } from './memory/guest-memory.ts';
export { NextMember } from './memory/skip-list.ts';
export { LatencyLog, LATENCY_BUCKETS } from './metrics/latency.ts';
export { buildReport, type RunReport, type MigrationStatus } from './metrics/report.ts';
export { Pager, type PagerHost } from './pager/pager.ts';
export { Precopy, type PrecopyEnd, type PrecopyStatus } from './precopy/precopy.ts';
export { CounterPoll, type CounterSample } from './metrics/poll.ts';
export { Convergence, WINDOW_NS } from './precopy/convergence.ts';
export { DirtyLog } from './precopy/dirty-log.ts';
export { makeDirtier, type Dirtier } from './precopy/dirtying.ts';
export { Multifd } from './precopy/multifd.ts';
export { FaultRing, RequestKind, FOREIGN, EBUSY, type RingOptions, type RingRequest, type Clock } from './ring/ring.ts';
export { scenarioSchema, type Scenario, type ScenarioInput, type DeviceSpec } from './scenario/schema.ts';
export { deviceDefaults, deviceName, type ResolvedDevice } from './scenario/devices-schema.ts';
export { parseScenario } from './scenario/validate.ts';
export { ScenarioError } from './scenario/error.ts';
export { PostcopyEmuError } from './io/errors.ts';
export { presets, CORE_COMPARISON } from './scenario/presets.ts';
export { applySets, readScenarioFile, presetInput } from './scenario/load.ts';
export { Source } from './source/source.ts';
export { readTrace, decodeTrace, encodeTrace, traceStats, TraceFormatError, TraceOp, type Trace } from './trace/format.ts';
export { importCsv, importLackey, TraceImportError } from './trace/import.ts';
export { XenPush, DemandOnly, type PushPolicy } from './source/policy.ts';
export { BubblingPush } from './source/bubbling.ts';
export { AdaptiveChunkPush } from './source/adaptive-chunk.ts';
export { PrefaultPush } from './source/prefault.ts';
export { makePolicy } from './source/make-policy.ts';
export { RecordType } from './stream/records.ts';
export { Mapper } from './workload/mapper.ts';
export { DeviceFsm, DeviceState, ALLOWED_ARCS, arcCost, isArc, isSaving, nextState, path as devicePath, type ArcCosts, type DeviceKind, type TransitionLog } from './devices/fsm.ts';
export { Devices, Device, makeDevices, type DeviceArc } from './devices/devices.ts';
export { DmaWriter, type DmaSpec } from './devices/dma.ts';
export { Core } from './core.ts';
export { Vcpus, VcpuState } from './workload/vcpu.ts';
export { checkRun } from './check/invariants.ts';
export { runScenario } from './run.ts';
