import { EventEmitter } from 'eventemitter3';
import { argCheck } from './io/args.ts';
import type { DeviceArc } from './devices/devices.ts';
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
  /** The migration status changed: precopy's setup → active → device or postcopy-active, then the core's (docs/recovery.md). */
  status: (e: { time: number; status: MigrationStatus }) => void;
  /** A device took a VFIO migration arc (uAPI v2 state names); `time` is when the arc completes. */
  device: (e: DeviceArc) => void;
  /** Precopy synced the dirty bitmap: `fresh` pages joined the set to send, `remaining` are in it; `count` is dirty-sync-count. */
  sync: (e: { time: number; count: number; fresh: number; remaining: number }) => void;
  /** The source received POSTCOPY_COMPLETE. */
  complete: (e: { time: number }) => void;
}

type Names<T extends EventEmitter.ValidEventTypes> = EventEmitter.EventNames<T>;
type Listener<T extends EventEmitter.ValidEventTypes, E extends Names<T>> = EventEmitter.EventListener<T, E>;

/**
 * An emitter that knows whether anything listens at all, so a hot path tests one field before
 * asking for an event's listeners. Only whether events are built depends on it, never a result.
 */
export class Emitter<T extends EventEmitter.ValidEventTypes> extends EventEmitter<T> {
  observed = false;

  /** `names`: the events there are (a listener for another name is a typo that would never fire). */
  constructor(private readonly names: readonly Names<T>[]) {
    super();
  }

  /** The event is one of `names` and the listener a function: else a PostcopyEmuError naming them. */
  private checked(method: string, event: unknown, fn: unknown): void {
    argCheck(this.names.includes(event as Names<T>), `events.${method}.event`, `must be one of ${this.names.join(', ')}, got ${String(event)}`);
    argCheck(typeof fn === 'function', `events.${method}.listener`, 'must be a function');
  }

  override on<E extends Names<T>>(event: E, fn: Listener<T, E>, context?: unknown): this {
    this.checked('on', event, fn);
    super.on(event, fn, context);
    this.observed = true;
    return this;
  }

  override addListener<E extends Names<T>>(event: E, fn: Listener<T, E>, context?: unknown): this {
    return this.on(event, fn, context);
  }

  override once<E extends Names<T>>(event: E, fn: Listener<T, E>, context?: unknown): this {
    this.checked('once', event, fn);
    super.once(event, fn, context);
    this.observed = true;
    return this;
  }

  override removeListener<E extends Names<T>>(event: E, fn?: Listener<T, E>, context?: unknown, once?: boolean): this {
    super.removeListener(event, fn, context, once);
    this.observed = this.eventNames().length > 0;
    return this;
  }

  override off<E extends Names<T>>(event: E, fn?: Listener<T, E>, context?: unknown, once?: boolean): this {
    return this.removeListener(event, fn, context, once);
  }

  override removeAllListeners(event?: Names<T>): this {
    super.removeAllListeners(event);
    this.observed = this.eventNames().length > 0;
    return this;
  }
}

export type EmulatorEvents = Emitter<EmulatorEventMap>;

/** Every event of EmulatorEventMap: a Record of its keys, so the compiler holds the list and the map alike. */
const EVENT_NAMES: Record<keyof EmulatorEventMap, true> = {
  fault: true, 'ring-full': true, forward: true, 'page-loaded': true, 'vcpu-blocked': true, 'vcpu-resumed': true,
  'guest-resumed': true, status: true, device: true, sync: true, complete: true,
};
export const EMULATOR_EVENTS = Object.keys(EVENT_NAMES) as (keyof EmulatorEventMap)[];
