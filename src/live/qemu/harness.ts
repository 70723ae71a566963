import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Scenario } from '../../scenario/schema.ts';
import { PrereqError, RealRunError } from './errors.ts';
import { STATE_ADDR, STATE_MAGIC, firmwareImage } from './firmware.ts';
import { realPlan, type RealPlan } from './plan.ts';
import { USERFAULTFD_MISSING, type Accel } from './prereq.ts';
import { QemuProcess, freePort } from './processes.ts';
import { Qmp, QmpCommandError } from './qmp.ts';
import { realReport, type RealReport } from './result.ts';
import { SocketSampler } from './sockets.ts';
import { ThreadClock } from './threads.ts';
import { readSwitchover, readTraceLog } from './trace-log.ts';

export interface RealRunOptions {
  qemu: string;
  qemuVersion: string;
  accel: Accel;
  uncapped: boolean;
  /** The whole run, boot to verified guest at the destination. */
  timeoutMs: number;
}

/** The guest's pace is timed over this many passes at the destination, its boundaries polled this often. */
const PACE_PASSES = 2;
const PACE_POLL_MS = 2;

/** One QMP command's reply; QEMU answers in microseconds unless it is stuck. */
const QMP_TIMEOUT_MS = 10_000;
type Json = Record<string, unknown>;

/** The firmware's state block: passes done, address of a bad page (0 = none), magic. */
interface GuestState {
  passes: number;
  bad: number;
  magic: number;
}

async function guestState(q: Qmp): Promise<GuestState> {
  const text = String(await q.execute('human-monitor-command', { 'command-line': `xp /3wx 0x${STATE_ADDR.toString(16)}` }, QMP_TIMEOUT_MS));
  const words = [...text.matchAll(/0x([0-9a-f]{8})\b/g)].map((m) => parseInt(m[1]!, 16));
  if (words.length !== 3) throw new RealRunError(`cannot read the guest's state block: xp printed "${text.trim()}"`);
  return { passes: words[0]!, bad: words[1]!, magic: words[2]! };
}

function checkGuest(g: GuestState, where: string): void {
  if (g.bad !== 0) {
    throw new RealRunError(`the guest at the ${where} found a corrupted page at guest address 0x${g.bad.toString(16)}: its byte did not hold the pass counter`);
  }
}

/** A run's moving parts, so one `finally` can stop them whatever failed. */
class Run {
  readonly procs: QemuProcess[] = [];
  readonly qmps: Qmp[] = [];
  /** Sample the QEMUs' threads and the migration connection's queues while the migration runs. */
  clock: ThreadClock | null = null;
  sockets: SocketSampler | null = null;
  private readonly deadline: number;
  constructor(private readonly timeoutMs: number) {
    this.deadline = Date.now() + timeoutMs;
  }

  left(): number {
    const t = this.deadline - Date.now();
    if (t <= 0) throw new RealRunError(`the run did not finish within ${this.timeoutMs / 1000} s (--timeout)`);
    return t;
  }

  /** Polls `step` every `everyMs` until it returns a value (not undefined), within the deadline. */
  async poll<T>(everyMs: number, step: () => Promise<T | undefined>): Promise<T> {
    for (;;) {
      this.left();
      const v = await step();
      if (v !== undefined) return v;
      await sleep(everyMs);
    }
  }

  /** A QEMU that exited explains a failure better than the QMP error it caused. */
  explain(e: unknown): unknown {
    const dead = this.procs.find((p) => !p.alive);
    return dead && !(e instanceof PrereqError) ? new RealRunError(dead.describe()) : e;
  }

  async end(): Promise<void> {
    await Promise.all(this.qmps.map((q) => q.execute('quit', {}, 2000).catch(() => undefined)));
    for (const q of this.qmps) q.close();
    await Promise.all(this.procs.map((p) => p.stop(2000)));
  }
}

async function configure(q: Qmp, plan: RealPlan, side: string): Promise<void> {
  try {
    await q.execute('migrate-set-capabilities', { capabilities: plan.capabilities }, QMP_TIMEOUT_MS);
  } catch (e) {
    // The destination checks userfaultfd when postcopy-ram is set.
    if (e instanceof QmpCommandError && /postcopy/i.test(e.desc)) throw new PrereqError('userfaultfd', `${USERFAULTFD_MISSING} (QEMU ${side}: ${e.desc})`);
    throw e;
  }
  await q.execute('migrate-set-parameters', plan.parameters, QMP_TIMEOUT_MS);
}

const status = async (q: Qmp) => (await q.execute('query-migrate', {}, QMP_TIMEOUT_MS)) as Json;
const over = (s: Json) => s.status === 'completed' || s.status === 'failed' || s.status === 'cancelled';

/** migrate-start-postcopy, retried every 1 ms until accepted (refused until the migration thread runs). */
async function startPostcopy(run: Run, src: Qmp): Promise<void> {
  let tries = 0;
  await run.poll(1, async () => {
    try {
      await src.execute('migrate-start-postcopy', {}, QMP_TIMEOUT_MS);
      return true;
    } catch (e) {
      if (!(e instanceof QmpCommandError)) throw e;
      // A migration that ended as precopy first never takes the switch.
      if (++tries % 20 === 0 && over(await status(src))) return false;
      return undefined;
    }
  });
}

/** Sends the switch when the plan says: at once, after N passes (dirty syncs after setup's), at a time. */
async function switchover(run: Run, plan: RealPlan, src: Qmp, migrateAt: number): Promise<void> {
  const sw = plan.switch;
  if (sw.kind === 'never') return;
  if (sw.kind === 'start') return startPostcopy(run, src);
  const due = await run.poll(1, async () => {
    const s = await status(src);
    if (over(s)) return false;
    const syncs = Number((s.ram as Json | undefined)?.['dirty-sync-count'] ?? 0);
    if (sw.afterPasses !== null && syncs >= sw.afterPasses + 1) return true;
    if (sw.atMs !== null && Date.now() - migrateAt >= sw.atMs) return true;
    return undefined;
  });
  if (due) await startPostcopy(run, src);
}

/**
 * Runs one scenario on two real QEMU processes on this host and returns its result in the
 * emulator's JSON shape. Whatever happens, both QEMUs are stopped and the temporary directory
 * (firmware, sockets, trace log) is removed.
 */
export async function runReal(scenario: Scenario, o: RealRunOptions): Promise<RealReport> {
  const dir = mkdtempSync(join(tmpdir(), 'pce-real-'));
  const run = new Run(o.timeoutMs);
  try {
    const port = await freePort();
    const plan = realPlan(scenario, { ...o, dir, port });
    writeFileSync(plan.files.firmware, firmwareImage(plan.firmware));
    const source = new QemuProcess('source', plan.source);
    const destination = new QemuProcess('destination', plan.destination);
    run.procs.push(source, destination);
    const [src, dst] = await Promise.all([
      Qmp.connect(plan.files.sourceQmp, 'source', Math.min(run.left(), QMP_TIMEOUT_MS), () => source.alive),
      Qmp.connect(plan.files.destinationQmp, 'destination', Math.min(run.left(), QMP_TIMEOUT_MS), () => destination.alive),
    ]);
    run.qmps.push(src, dst);
    await configure(dst, plan, 'destination');
    await configure(src, plan, 'source');
    await dst.execute('migrate-incoming', { uri: plan.uri }, QMP_TIMEOUT_MS);

    // The guest has booted and (a writer) dirtied its whole working set once.
    const writer = plan.firmware.mode !== 'idle';
    await run.poll(10, async () => {
      const g = await guestState(src);
      checkGuest(g, 'source');
      return g.magic === STATE_MAGIC && (!writer || g.passes >= 1) ? true : undefined;
    });

    const clock = (run.clock = new ThreadClock([{ side: 'source', pid: source.pid ?? -1 }, { side: 'destination', pid: destination.pid ?? -1 }]));
    clock.start();
    const sockets = (run.sockets = new SocketSampler(port));
    sockets.start();
    const migrateAt = Date.now();
    await src.execute('migrate', { uri: plan.uri }, QMP_TIMEOUT_MS);
    await switchover(run, plan, src, migrateAt);
    const srcInfo = await run.poll(5, async () => {
      const s = await status(src);
      return over(s) ? s : undefined;
    });
    if (srcInfo.status !== 'completed') throw new RealRunError(`the migration ${String(srcInfo.status)}: ${String(srcInfo['error-desc'] ?? 'QEMU gave no reason')}`);
    const dstInfo = await run.poll(5, async () => {
      const s = await status(dst);
      return over(s) ? s : undefined;
    });
    const threads = clock.stop();
    const queues = sockets.stop();
    if (dstInfo.status !== 'completed') throw new RealRunError(`the destination's migration ${String(dstInfo.status)}: ${String(dstInfo['error-desc'] ?? 'QEMU gave no reason')}`);

    // The guest runs at the destination and, a writer, checks every page in a pass begun after
    // the migration completed.
    await dst.waitEvent((e) => e.event === 'RESUME', 'RESUME event at the destination', run.left());
    const atSource = await guestState(src);
    checkGuest(atSource, 'source');
    const atCompletion = await guestState(dst);
    const passAt = (passes: number) => run.poll(PACE_POLL_MS, async () => {
      const g = await guestState(dst);
      checkGuest(g, 'destination');
      if (g.magic !== STATE_MAGIC) throw new RealRunError('the guest\'s state block is missing at the destination: guest memory was not migrated');
      return !writer || g.passes >= passes ? { g, at: performance.now() } : undefined;
    });
    // Then the guest alone, every page present: its own pace over PACE_PASSES whole passes,
    // from one pass boundary to another (each seen within PACE_POLL_MS).
    const first = await passAt(atCompletion.passes + 1);
    const last = await passAt(first.g.passes + PACE_PASSES);
    const atDestination = last.g;
    const pageNs = writer ? ((last.at - first.at) * 1e6) / ((last.g.passes - first.g.passes) * plan.firmware.pages) : null;
    await run.end();
    return realReport({
      scenario,
      qemuVersion: o.qemuVersion,
      accel: o.accel,
      uncapped: o.uncapped,
      commandLines: { source: plan.source, destination: plan.destination },
      source: { info: srcInfo, events: src.events },
      destination: { info: dstInfo, events: dst.events },
      faults: readTraceLog(plan.files.trace),
      switchover: readSwitchover(plan.files.sourceTrace, plan.files.trace, dst.events.find((e) => e.event === 'RESUME')?.atUs ?? null),
      guest: { passesAtSource: atSource.passes, passesAtDestination: atDestination.passes, pageNs },
      threads,
      sockets: queues,
    });
  } catch (e) {
    throw run.explain(e);
  } finally {
    run.clock?.stop();
    run.sockets?.stop();
    for (const q of run.qmps) q.close();
    await Promise.all(run.procs.map((p) => p.kill()));
    rmSync(dir, { recursive: true, force: true });
  }
}
