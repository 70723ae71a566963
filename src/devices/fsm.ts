import { argCheck, intArg, objArg } from '../io/args.ts';

// The VFIO migration uAPI v2 device state machine (include/uapi/linux/vfio.h, enum
// vfio_device_mig_state) and the kernel's rule for a request that is not one arc
// (drivers/vfio/vfio_main.c, vfio_mig_get_next_state).

/** The uAPI's state numbers: a trace or a log can show the kernel's own values. */
export enum DeviceState {
  ERROR = 0,
  STOP = 1,
  RUNNING = 2,
  STOP_COPY = 3,
  RESUMING = 4,
  RUNNING_P2P = 5,
  PRE_COPY = 6,
  PRE_COPY_P2P = 7,
}

const N = 8;
const S = DeviceState;

/** The arcs a driver implements (vfio.h's FSM comment); every other request is a path of these. */
export const ALLOWED_ARCS: readonly (readonly [DeviceState, DeviceState])[] = [
  [S.RUNNING_P2P, S.STOP],
  [S.STOP_COPY, S.STOP],
  [S.RESUMING, S.STOP],
  [S.PRE_COPY, S.RUNNING],
  [S.RUNNING_P2P, S.RUNNING],
  [S.PRE_COPY_P2P, S.RUNNING_P2P],
  [S.RUNNING, S.RUNNING_P2P],
  [S.STOP, S.RUNNING_P2P],
  [S.RUNNING, S.PRE_COPY],
  [S.RUNNING_P2P, S.PRE_COPY_P2P],
  [S.STOP, S.STOP_COPY],
  [S.PRE_COPY, S.PRE_COPY_P2P],
  [S.PRE_COPY_P2P, S.PRE_COPY],
  [S.PRE_COPY_P2P, S.STOP_COPY],
  [S.STOP, S.RESUMING],
];

const ARC = new Uint8Array(N * N);
for (const [a, b] of ALLOWED_ARCS) ARC[a * N + b] = 1;

/** Whether `from → to` is one arc a driver implements. */
export const isArc = (from: DeviceState, to: DeviceState): boolean => ARC[from * N + to] === 1;

/** The saving group: the states in which the data fd streams the device's state out. */
export const isSaving = (s: DeviceState): boolean => s === S.PRE_COPY || s === S.PRE_COPY_P2P || s === S.STOP_COPY;

/**
 * vfio.h: "the path cannot have saving group states as interior arcs, only starting/end
 * states", as vfio_from_fsm_table applies it: a path may not start or end a saving session
 * mid-way, so a saving state is interior only on a path that stays in the group (the one case
 * PRE_COPY → PRE_COPY_P2P → STOP_COPY). STOP_COPY → PRE_COPY(_P2P) is blocked outright (the
 * kernel's table): a stop-copy stream cannot turn back into a precopy one.
 */
function allowed(states: readonly DeviceState[]): boolean {
  const from = states[0]!, to = states[states.length - 1]!;
  if (from === S.STOP_COPY && (to === S.PRE_COPY || to === S.PRE_COPY_P2P)) return false;
  return states.every(isSaving) || states.slice(1, -1).every((s) => !isSaving(s));
}

/**
 * NEXT[from * 8 + to]: the first state a request walks to, `to` itself when already there,
 * ERROR when illegal (the kernel's vfio_from_fsm_table). Derived once from the rule: every
 * simple path of allowed arcs (8 states: a few dozen), the shortest allowed one kept. Each pair
 * has exactly one, which the load checks and the tests compare with the kernel's table.
 */
const NEXT = new Uint8Array(N * N); // 0 = ERROR: every request from ERROR, and every one to it
for (let from = 1; from < N; from++) {
  const best: (DeviceState[] | null)[] = new Array(N).fill(null);
  const tie = new Array<boolean>(N).fill(false);
  const walk = (p: DeviceState[]) => {
    const u = p[p.length - 1]!;
    if (p.length > 1 && allowed(p)) {
      const b = best[u];
      if (!b || p.length < b.length) [best[u], tie[u]] = [p, false];
      else if (p.length === b.length) tie[u] = true;
    }
    for (let v = 0; v < N; v++) if (ARC[u * N + v] && !p.includes(v)) walk([...p, v]);
  };
  walk([from]);
  for (let to = 1; to < N; to++) {
    if (tie[to]) throw new Error(`fsm: two shortest paths from ${DeviceState[from]} to ${DeviceState[to]}`);
    NEXT[from * N + to] = to === from ? to : (best[to]?.[1] ?? S.ERROR);
  }
}

/**
 * vfio_mig_get_next_state: the next state on the way from `from` to `to`; `to` when already
 * there; ERROR when the request is illegal (the kernel then returns -EINVAL, state unchanged).
 */
export function nextState(from: DeviceState, to: DeviceState): DeviceState {
  intArg('nextState.from', from, 0, N - 1);
  intArg('nextState.to', to, 0, N - 1);
  return NEXT[from * N + to] as DeviceState;
}

const name = (s: DeviceState): string => DeviceState[s] ?? String(s);

/** Why a request has no path, for the error message. */
function why(from: DeviceState, to: DeviceState): string {
  if (from === S.ERROR) return 'a device in ERROR only leaves it by a reset (to RUNNING)';
  if (to === S.ERROR) return 'ERROR is entered only by a failed transition, never requested';
  if (from === S.STOP_COPY) return 'vfio_mig_get_next_state blocks STOP_COPY → PRE_COPY(_P2P): a stop-copy stream cannot turn back into a precopy one';
  return 'no path of allowed arcs keeps the saving group (PRE_COPY, PRE_COPY_P2P, STOP_COPY) out of its interior';
}

/**
 * The states a request from `from` to `to` walks through, one per arc, `to` last; [] when
 * already there. Throws PostcopyEmuError when the kernel would refuse the request.
 */
export function path(from: DeviceState, to: DeviceState, field = 'device.state'): DeviceState[] {
  intArg(field, from, 0, N - 1);
  intArg(field, to, 0, N - 1);
  argCheck(from !== S.ERROR && nextState(from, to) !== S.ERROR, field, `no VFIO migration path from ${name(from)} to ${name(to)}: ${why(from, to)}`);
  const out: DeviceState[] = [];
  for (let at: DeviceState = from; at !== to; out.push(at)) at = nextState(at, to);
  return out;
}

/** The device kinds: `virtio-vf` has only RUNNING and STOPPED, so the P2P arcs are no-ops. */
export type DeviceKind = 'vf' | 'virtio-vf';

/** The scenario's `devices[].arcNs` section: what each group of arcs costs, ns. */
export interface ArcCosts {
  preCopy: number;
  quiesce: number;
  stop: number;
  stopCopyEnd: number;
  resuming: number;
  resume: number;
}

/**
 * The cost of one allowed arc, ns (the spec's `arcNs` groups). Three arcs the spec does not
 * name take their nearest group: RUNNING_P2P→PRE_COPY_P2P and STOP→STOP_COPY open the saving
 * data fd as RUNNING→PRE_COPY does (preCopy); PRE_COPY_P2P→PRE_COPY lets outgoing DMA go as
 * RUNNING_P2P→RUNNING does (resume). Throws on a pair that is not one arc.
 */
export function arcCost(from: DeviceState, to: DeviceState, arcNs: ArcCosts, kind: DeviceKind): number {
  argCheck(isArc(from, to), 'arcCost', `${name(from)} → ${name(to)} is not one VFIO migration arc`);
  // virtio has only RUNNING and STOPPED (vfio-virtio): entering or leaving P2P from STOP is free.
  const virtio = kind === 'virtio-vf';
  switch (from * N + to) {
    case S.RUNNING * N + S.PRE_COPY:
    case S.RUNNING_P2P * N + S.PRE_COPY_P2P:
    case S.STOP * N + S.STOP_COPY:
      return arcNs.preCopy;
    case S.RUNNING * N + S.RUNNING_P2P:
    case S.PRE_COPY * N + S.PRE_COPY_P2P:
      return arcNs.quiesce;
    case S.RUNNING_P2P * N + S.STOP:
      return virtio ? 0 : arcNs.stop;
    case S.PRE_COPY_P2P * N + S.STOP_COPY:
      return arcNs.stop;
    case S.STOP_COPY * N + S.STOP:
      return arcNs.stopCopyEnd;
    case S.STOP * N + S.RESUMING:
      return arcNs.resuming;
    case S.STOP * N + S.RUNNING_P2P:
      return virtio ? 0 : arcNs.resume;
    default: // RESUMING→STOP, RUNNING_P2P→RUNNING, PRE_COPY→RUNNING, PRE_COPY_P2P→RUNNING_P2P, PRE_COPY_P2P→PRE_COPY
      return arcNs.resume;
  }
}

/** One device's transition log: arc i went from `from[i]` to `to[i]`, reaching `to[i]` at `at[i]` ns. */
export interface TransitionLog {
  from: DeviceState[];
  to: DeviceState[];
  at: number[];
}

/** One device's migration state: requests walk the kernel's paths and are logged arc by arc. */
export class DeviceFsm {
  state: DeviceState;
  readonly log: TransitionLog = { from: [], to: [], at: [] };
  /** Hears each arc as it is logged (the emulator's `device` event). */
  onArc: ((from: DeviceState, to: DeviceState, at: number) => void) | null = null;

  /**
   * `preCopy: false` = the device does not report VFIO_MIGRATION_PRE_COPY: requests for
   * PRE_COPY(_P2P) fail, as the kernel's state_flags_table check does. `field` names the
   * device in errors (e.g. `devices.0`).
   */
  constructor(
    readonly kind: DeviceKind,
    readonly arcNs: ArcCosts,
    readonly preCopy = true,
    readonly field = 'device',
    initial: DeviceState = S.RUNNING,
  ) {
    argCheck(kind === 'vf' || kind === 'virtio-vf', 'DeviceFsm.kind', `must be vf or virtio-vf, got ${String(kind)}`);
    objArg('DeviceFsm.arcNs', arcNs, 'the arcs\' costs ({ preCopy, quiesce, stop, stopCopyEnd, resuming, resume }, ns)');
    intArg('DeviceFsm.initial', initial, 0, N - 1);
    this.state = initial;
  }

  /**
   * Moves to `to` along the kernel's path starting at `now`; returns the summed cost of the
   * arcs walked (0 when already there). Arcs are sequential: each is logged when it ends.
   */
  request(to: DeviceState, now: number): number {
    intArg('DeviceFsm.request.now', now, 0);
    const field = `${this.field}.state`;
    argCheck(this.preCopy || (to !== S.PRE_COPY && to !== S.PRE_COPY_P2P), field, `${name(to)} needs VFIO_MIGRATION_PRE_COPY, which this device does not report (preCopy: false)`);
    const steps = path(this.state, to, field);
    let cost = 0;
    for (const next of steps) {
      cost += arcCost(this.state, next, this.arcNs, this.kind);
      this.record(next, now + cost);
    }
    return cost;
  }

  /** A driver arc failed: the device is in ERROR until reset. */
  fail(now = this.lastAt()): void {
    if (this.state !== S.ERROR) this.record(S.ERROR, now);
  }

  /** VFIO_DEVICE_RESET: back to RUNNING from any state, ERROR included. */
  reset(now = this.lastAt()): void {
    if (this.state === S.RUNNING) return;
    this.resets.push(this.log.to.length);
    this.record(S.RUNNING, now);
  }

  /** Log entries that were resets, not arcs. */
  readonly resets: number[] = [];

  private lastAt(): number {
    return this.log.at.length > 0 ? this.log.at[this.log.at.length - 1]! : 0;
  }

  private record(to: DeviceState, at: number): void {
    this.log.from.push(this.state);
    this.log.to.push(to);
    this.log.at.push(at);
    const from = this.state;
    this.state = to;
    this.onArc?.(from, to, at);
  }
}
