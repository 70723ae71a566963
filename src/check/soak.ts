import { WorkerPool } from '../workers/pool.ts';
import { Emulator } from '../emulator.ts';
import { Arena, FRESH, type Alloc } from '../memory/arena.ts';
import type { ScenarioInput } from '../scenario/schema.ts';
import { checkRun } from './invariants.ts';
import { randomScenario } from './random-scenario.ts';

/** A run still going after this many events is reported as a livelock. */
export const SOAK_MAX_EVENTS = 5_000_000;

/** One seed whose run broke an invariant, threw, deadlocked or livelocked. */
export interface SeedFailure {
  seed: number;
  violations: string[];
}

export interface SoakResult {
  from: number;
  count: number;
  /** Failing seeds in seed order; empty when every run was sound. */
  failures: SeedFailure[];
  /** Kernel events over all runs (a run that threw counts the events before it threw). */
  events: number;
}

/**
 * How one seed is run and judged. The defaults are the soak's; a test may pass its own to
 * exercise the failure path. Custom functions cannot cross to worker threads, so a soak with
 * any of them runs in-process whatever `jobs` says.
 */
export interface SoakHooks {
  scenario?: (seed: number) => ScenarioInput;
  check?: (emu: Emulator) => string[];
  maxEvents?: number;
}

export interface SoakOptions extends SoakHooks {
  /** Called after each batch of seeds with how many are done. */
  progress?: (done: number, total: number) => void;
}

/** The command that replays one seed's soak run. */
export const replayCommand = (seed: number): string => `postcopy-emu soak --from ${seed} --seeds 1`;

/** The command that prints one seed's scenario as YAML, for `postcopy-emu run FILE --check`. */
export const scenarioCommand = (seed: number): string => `postcopy-emu soak --from ${seed} --print-scenario`;

/**
 * Runs one seed's scenario to its end (finished, limits.stopAt, the horizon or `maxEvents`),
 * then the invariant checker and the liveness rule: a run that ran out of things to do before
 * it finished is a deadlock, one that ran out of events a livelock, and one still going at the
 * horizon that moved no page in its second half a stall (a map call retried for ever on a page
 * that never came hid there), but under `demand`, where pages nobody asks for never come.
 * Returns the violations (empty when sound) and the events processed; never throws. `alloc`:
 * see `new Emulator`.
 */
export function soakSeed(seed: number, hooks: SoakHooks = {}, alloc: Alloc = FRESH): { violations: string[]; events: number } {
  const { scenario = randomScenario, check = checkRun, maxEvents = SOAK_MAX_EVENTS } = hooks;
  let emu: Emulator | undefined;
  try {
    emu = new Emulator(scenario(seed), alloc);
    const k = emu.kernel, horizon = emu.scenario.limits.horizonNs, half = Math.floor(horizon / 2);
    k.runTo(half, undefined, maxEvents);
    const movedByHalf = pagesMoved(emu);
    k.runTo(horizon, undefined, maxEvents);
    // Read before settle(): the core it builds for a run the horizon cut before the handover
    // (a precopy done, its devices not yet) schedules its own start at once.
    const running = k.pending > 0 && k.nextTime() <= horizon, idle = k.pending === 0;
    const stalled = !running && !idle && pagesMoved(emu) === movedByHalf;
    emu.settle();
    const violations = check(emu);
    // A failed migration (connection lost, recovery off) ends there by design; a precopy phase
    // the horizon cut short never handed over to the core.
    const precopyCut = emu.precopy !== null && !emu.precopy.finished && emu.limitReason === null;
    if (emu.limitReason !== null) violations.push(`livelock: ${emu.limitReason}`);
    else if (!emu.stopped && emu.recovery.failure === null && !precopyCut) {
      if (running) {
        violations.push(`livelock: still running after ${k.events} events at ${k.now} ns simulated`);
      } else if (idle && !quiescentByDesign(emu)) {
        violations.push(`deadlock: nothing left to happen at ${k.now} ns before the run finished (${stateOf(emu)})`);
      } else if (stalled && emu.scenario.source.policy !== 'demand') {
        violations.push(`stall: no page sent or loaded from ${half} ns to the horizon, ${horizon} ns, before the run finished (${stateOf(emu)})`);
      }
    }
    return { violations, events: k.events };
  } catch (e) {
    const at = emu ? ` at ${emu.kernel.now} ns simulated, event ${emu.kernel.events}` : '';
    return { violations: [`threw${at}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`], events: emu?.kernel.events ?? 0 };
  }
}

/** Pages sent (precopy's and the core's) and loaded or dropped at the destination so far. */
function pagesMoved(emu: Emulator): number {
  const pre = emu.precopy?.pagesSent ?? 0;
  if (!emu.switchedOver) return pre;
  return pre + emu.source.pagesPushed + emu.source.pagesDemanded + emu.pager.pagesLoaded + emu.pager.pagesDiscarded;
}

/**
 * A pull-only source (demand) sends nothing nobody asked for: once the guest runs and nobody
 * waits, a quiet run that never completes is the policy, not a deadlock.
 */
function quiescentByDesign(emu: Emulator): boolean {
  return emu.scenario.source.policy === 'demand' && emu.resumedAt >= 0 && emu.ring.occupancy === 0
    && emu.vcpus.blockedAtStop.length === 0 && !emu.mapper.active && emu.pager.waiting === 0;
}

function stateOf(emu: Emulator): string {
  return `source done ${emu.source.done}, guest resumed ${emu.resumedAt >= 0}, ring occupancy ${emu.ring.occupancy}, `
    + `wait queue ${emu.ring.waitQueue.length}, pages pending ${emu.memory.pending}`;
}

/** Seeds per message to a worker: large enough to hide messaging, small enough to balance. */
const BATCH = 25;

interface Batch { from: number; count: number }
interface BatchResult { failures: SeedFailure[]; events: number }

/**
 * Runs seeds from..from+count−1 in-process, one after another on `arena` (reset per seed: fresh
 * multi-megabyte arrays per seed cost page faults that serialise across threads); the worker
 * threads run this too.
 */
export function soakBatch(b: Batch, hooks: SoakHooks = {}, arena = new Arena()): BatchResult {
  const failures: SeedFailure[] = [];
  let events = 0;
  for (let seed = b.from; seed < b.from + b.count; seed++) {
    arena.reset();
    const r = soakSeed(seed, hooks, arena);
    events += r.events;
    if (r.violations.length > 0) failures.push({ seed, violations: r.violations });
  }
  return { failures, events };
}

/**
 * Runs the random scenarios of seeds from..from+count−1 under the checker, on `jobs` worker
 * threads (1: in-process). The result depends only on the seeds, never on `jobs`.
 */
export async function soak(from: number, count: number, jobs = 1, options: SoakOptions = {}): Promise<SoakResult> {
  const { progress, ...hooks } = options;
  const batches: Batch[] = [];
  for (let s = from; s < from + count; s += BATCH) batches.push({ from: s, count: Math.min(BATCH, from + count - s) });
  const custom = hooks.scenario !== undefined || hooks.check !== undefined || hooks.maxEvents !== undefined;
  const results = jobs <= 1 || custom || batches.length <= 1
    ? inProcess(batches, hooks, count, progress)
    : await onWorkers(batches, Math.min(jobs, batches.length), count, progress);
  const failures = results.flatMap((r) => r.failures).sort((a, b) => a.seed - b.seed);
  return { from, count, failures, events: results.reduce((n, r) => n + r.events, 0) };
}

function inProcess(batches: Batch[], hooks: SoakHooks, total: number, progress?: (done: number, total: number) => void): BatchResult[] {
  let done = 0;
  const arena = new Arena();
  return batches.map((b) => {
    const r = soakBatch(b, hooks, arena);
    progress?.((done += b.count), total);
    return r;
  });
}

/** Hands batches to `jobs` workers in seed order; a crashed worker fails its batch and is replaced. */
async function onWorkers(batches: Batch[], jobs: number, total: number, progress?: (done: number, total: number) => void): Promise<BatchResult[]> {
  const pool = new WorkerPool<Batch, BatchResult>('check/soak-worker', jobs, (b, e) => ({
    failures: Array.from({ length: b.count }, (_, j) => ({ seed: b.from + j, violations: [`worker crashed in seeds ${b.from}..${b.from + b.count - 1}: ${e.message}`] })),
    events: 0,
  }));
  let done = 0;
  try {
    return await Promise.all(batches.map(async (b) => {
      const r = await pool.run(b);
      progress?.((done += b.count), total);
      return r;
    }));
  } finally {
    await pool.close();
  }
}

/** The report of a soak: one summary line, then each failing seed with how to replay it. */
export function formatSoak(r: SoakResult, wallMs: number): string {
  const lines = [`${r.count} seeds, ${r.failures.length} failed, wall ${(wallMs / 1000).toFixed(1)} s`];
  for (const f of r.failures) {
    lines.push(`seed ${f.seed}:`);
    for (const v of f.violations) lines.push(`  ${v}`);
    lines.push(`  replay:   ${replayCommand(f.seed)}`);
    lines.push(`  scenario: ${scenarioCommand(f.seed)} > seed-${f.seed}.yaml && postcopy-emu run seed-${f.seed}.yaml --check`);
  }
  return `${lines.join('\n')}\n`;
}
