import { EventEmitter } from 'eventemitter3';
import type { MigrationStatus } from './faults/recovery.ts';

/** Observer events. They are emitted only while someone listens, so an unobserved run pays nothing. */
export interface EmulatorEventMap {
  /** A vCPU touched a missing page (producer ≥ 0), or a foreign accessor put a request (producer −1). */
  fault: (e: { time: number; producer: number; gfn: number; count: number }) => void;
  /** The ring's last free slot was taken. */
  'ring-full': (e: { time: number; occupancy: number }) => void;
  /** The pager wrote a FAULT record: pfns and [start, count] ranges. */
  forward: (e: { time: number; pfns: readonly number[]; ranges: readonly number[] }) => void;
  /** A page was loaded at the destination. */
  'page-loaded': (e: { time: number; gfn: number }) => void;
  /** A vCPU stopped on a missing page. */
  'vcpu-blocked': (e: { time: number; vcpu: number; gfn: number }) => void;
  /** A vCPU ran again; `waited` is its fault latency in ns. */
  'vcpu-resumed': (e: { time: number; vcpu: number; gfn: number; waited: number }) => void;
  /** The guest runs at the destination (the end of downtime). */
  'guest-resumed': (e: { time: number }) => void;
  /** The migration status changed (docs/recovery.md). */
  status: (e: { time: number; status: MigrationStatus }) => void;
  /** The source received POSTCOPY_COMPLETE. */
  complete: (e: { time: number }) => void;
}

export type EmulatorEvents = EventEmitter<EmulatorEventMap>;
export { EventEmitter };
