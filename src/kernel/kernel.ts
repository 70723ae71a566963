import { argCheck, intArg, timeArg } from '../io/args.ts';
import { PostcopyEmuError } from '../io/errors.ts';
import { EventQueue, KINDS } from './queue.ts';
import { FRESH, type Alloc } from '../memory/arena.ts';
import { UNBOUNDED, WORK_PER_EVENT, WorkBudget } from './work.ts';

/** What a component does when one of its events fires. */
export type EventHandler = (arg: number) => void;

/**
 * The simulation kernel: a virtual clock in integer nanoseconds and one event queue.
 * Components register a handler and get an event kind; the kernel only orders and dispatches.
 */
export class Kernel {
  /**
   * Fields that come to hold times past 2^30 ns or fractions start as a double (NaN, then their
   * value in the constructor): V8 gives a field the form of its first value, and one that starts
   * as a small integer is moved to a new map when it first outgrows it, which deoptimises every
   * function compiled for the old map, in this run and the next.
   */
  now = NaN;
  events = 0;
  private readonly queue: EventQueue;
  private readonly handlers: EventHandler[] = [];
  private halted = false;
  /** Why a bound stopped the run (see `limit`); null while none has. */
  stopReason: string | null = null;
  private maxEvents = Infinity;
  private maxAtInstant = Infinity;
  /** Events processed at the current instant so far. */
  private atInstant = 0;
  /** Events scheduled past 2^53 ns: never (see `at`). */
  beyond = 0;
  /** Work inside events (WorkBudget): limits.maxEvents × WORK_PER_EVENT items once `limit` set it. */
  work: WorkBudget = UNBOUNDED;

  /** `alloc`: where the event queue's arrays come from. */
  constructor(alloc: Alloc = FRESH) {
    this.now = 0;
    this.queue = new EventQueue(1024, alloc);
  }

  /**
   * Bounds that always fire: at most `maxEvents` events, at most `maxAtInstant` events without
   * the clock moving (a loop that makes no progress, e.g. a retry that costs no time), and
   * `maxEvents` × WORK_PER_EVENT items of work inside events (`work`). Each halts the run with
   * `stopReason` set.
   */
  limit(maxEvents: number, maxAtInstant: number): void {
    this.maxEvents = intArg('Kernel.limit.maxEvents', maxEvents, 0);
    this.maxAtInstant = intArg('Kernel.limit.maxAtInstant', maxAtInstant, 1);
    this.work = new WorkBudget(maxEvents * WORK_PER_EVENT, (reason) => this.stop(reason));
  }

  /** Counts the event about to run at `time`; false (and halted) when a bound fires. */
  private admit(time: number): boolean {
    if (time === this.now) {
      if (++this.atInstant > this.maxAtInstant) return this.stop(`no progress: ${this.maxAtInstant} events at ${time} ns without the clock moving (limits.maxEventsPerInstant)`);
    } else this.atInstant = 1;
    if (this.events >= this.maxEvents) return this.stop(`event cap: ${this.maxEvents} events processed by ${this.now} ns (limits.maxEvents)`);
    return true;
  }

  private stop(reason: string): false {
    this.stopReason = reason;
    this.halted = true;
    return false;
  }

  /**
   * Registers a handler; the returned kind is what `at`/`after` schedule. `inOrder`: its events
   * mostly come in time order and are scheduled with `atInOrder`.
   */
  register(handler: EventHandler, inOrder = false): number {
    argCheck(typeof handler === 'function', 'Kernel.register.handler', 'must be a function (arg: number) => void');
    argCheck(typeof inOrder === 'boolean', 'Kernel.register.inOrder', 'must be true or false, or left out');
    if (this.handlers.length === KINDS) throw new PostcopyEmuError('Kernel.register', `at most ${KINDS} event kinds (a run registers a few dozen)`);
    this.handlers.push(handler);
    const kind = this.handlers.length - 1;
    if (inOrder) this.queue.inOrder(kind);
    return kind;
  }

  /**
   * Schedules `kind(arg)` at absolute time `time` (ns, integer, never in the past). A time past
   * 2^53 ns (104 days; Infinity too) is never: past every horizon (limits.horizonNs ≤ 10^15), the
   * event waits at 2^53 − 1 ns and `beyond` counts it. A rate near zero or a size near its bound
   * gets there (a preempt share of 1e-12, a device read at 1e-9 bytes/s).
   */
  at(time: number, kind: number, arg = 0): void {
    this.queue.push(this.when(time, kind), kind, arg);
  }

  /**
   * at() for a kind registered `inOrder` (a connection's arrivals): the queue keeps only the
   * earliest in its heap (EventQueue.pushInOrder). They run in the same order as at() would run
   * them.
   */
  atInOrder(time: number, kind: number, arg = 0): void {
    this.queue.pushInOrder(this.when(time, kind), kind, arg);
  }

  /** `time` checked as at() takes it, past 2^53 ns clamped; `kind` checked. */
  private when(time: number, kind: number): number {
    if (time > Number.MAX_SAFE_INTEGER) {
      this.beyond++;
      time = Number.MAX_SAFE_INTEGER;
    }
    // The compare rejects NaN, the floor fractions: one instruction each, where `time % 1` on a
    // double is a call to fmod (~10 ns an event here).
    if (!(time >= this.now) || Math.floor(time) !== time) {
      throw new PostcopyEmuError('Kernel.at.time', `event at ${time} ns is not an integer time from now (${this.now} ns) to 2^53 ns`);
    }
    if (!(kind >= 0 && kind < this.handlers.length) || kind % 1 !== 0) throw new PostcopyEmuError('Kernel.at.kind', `${kind} is not a registered event kind`);
    return time;
  }

  /** Schedules `kind(arg)` `delay` ns from now. */
  after(delay: number, kind: number, arg = 0): void {
    this.at(this.now + delay, kind, arg);
  }

  /** Stops `run`/`runUntil` after the current event. */
  halt(): void {
    this.halted = true;
  }

  get isHalted(): boolean {
    return this.halted;
  }

  get pending(): number {
    return this.queue.size;
  }

  nextTime(): number {
    return this.queue.peekTime();
  }

  /** Processes one event; false when nothing is left or the run was halted. */
  step(): boolean {
    if (this.halted || this.queue.size === 0 || !this.admit(this.queue.peekTime()) || !this.queue.pop()) return false;
    const q = this.queue;
    this.now = q.time;
    this.events++;
    this.handlers[q.kind]!(q.arg);
    return true;
  }

  /**
   * Processes events due at or before `horizon` until none is left, the run is halted or
   * `events` reaches `maxEvents` (one call per event fewer than step()); `tick` hears the time
   * every 65 536 events. One loop for every caller: a caller's own loop around step() had the
   * handlers it met first inlined and was deoptimised by each new one (a soak worker compiled
   * its loop eight times).
   */
  runTo(horizon: number, tick?: (now: number) => void, maxEvents = Infinity): void {
    timeArg('Kernel.runTo.horizon', horizon);
    argCheck(tick === undefined || typeof tick === 'function', 'Kernel.runTo.tick', 'must be a function (now: number) => void, or left out');
    if (!(typeof maxEvents === 'number' && maxEvents >= 0)) argCheck(false, 'Kernel.runTo.maxEvents', `must be a count of events, 0 or more (Infinity: no cap), got ${String(maxEvents)}`);
    const q = this.queue;
    let n = 0;
    while (!this.halted && q.peekTime() <= horizon && this.events < maxEvents && this.admit(q.peekTime()) && q.pop()) {
      this.now = q.time;
      this.events++;
      this.handlers[q.kind]!(q.arg);
      if (tick && (++n & 0xffff) === 0) tick(this.now);
    }
  }

  /** Processes every event up to and including time `t`, then sets the clock to `t`. */
  runUntil(t: number): void {
    timeArg('Kernel.runUntil.t', t);
    while (!this.halted && this.queue.peekTime() <= t) this.step();
    if (!this.halted && t > this.now) this.now = t;
  }

  /** Processes events until none is left or the run is halted. */
  run(): void {
    while (this.step());
  }
}
