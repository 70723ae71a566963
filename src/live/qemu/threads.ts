import { readFileSync, readdirSync } from 'node:fs';

/** One QEMU thread's CPU over a run's migration (Linux schedstat: time on a CPU, time runnable but waiting for one). */
export interface ThreadCpu {
  side: string;
  /** The thread's name (`-name …,debug-threads=on`: live_migration, postcopy/listen, CPU 0/KVM, …). */
  name: string;
  tid: number;
  'cpu-ms': number;
  'runqueue-ms': number;
  /** From the window's start, or the thread's, to the last sample that saw it. */
  'alive-ms': number;
}

interface Seen {
  side: string;
  name: string;
  tid: number;
  /** Counters when first seen: a thread already running at the start counts from there, a new one from 0. */
  run0: number;
  wait0: number;
  run: number;
  wait: number;
  from: number;
  to: number;
}

/** Threads that ran less than this over the window are left out of the result. */
const MIN_CPU_MS = 0.1;

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null; // the thread exited between the listing and the read
  }
}

/**
 * Samples the CPU of every thread of some processes from /proc (`/proc/PID/task/TID/schedstat`)
 * every `everyMs` between start() and stop(). A thread that exits keeps its last sample, so up
 * to `everyMs` of its last work is not counted. Each sample reads one small file per thread
 * (its name once), so the sampling itself costs well under 1 % of a CPU.
 */
export class ThreadClock {
  private readonly seen = new Map<string, Seen>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private first = true;
  private startMs = 0;

  constructor(private readonly procs: readonly { side: string; pid: number }[], private readonly everyMs = 2) {}

  start(): void {
    this.startMs = performance.now();
    this.sample();
    this.first = false;
    this.timer = setInterval(() => this.sample(), this.everyMs);
  }

  /** Stops sampling (one last sample) and returns each thread that ran, most CPU first. */
  stop(): ThreadCpu[] {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.sample();
    const ms = (ns: number) => Math.round(ns / 1e3) / 1e3;
    return [...this.seen.values()]
      .map((s) => ({ side: s.side, name: s.name, tid: s.tid, 'cpu-ms': ms(s.run - s.run0), 'runqueue-ms': ms(s.wait - s.wait0), 'alive-ms': Math.round((s.to - s.from) * 1e3) / 1e3 }))
      .filter((t) => t['cpu-ms'] >= MIN_CPU_MS)
      .sort((a, b) => b['cpu-ms'] - a['cpu-ms']);
  }

  private readonly names = new Map<number, string>();

  /** The main thread's name, which a new thread inherits until it names itself. */
  private processName(pid: number): string {
    let n = this.names.get(pid);
    if (n === undefined) {
      n = read(`/proc/${pid}/comm`)?.trim() ?? '';
      this.names.set(pid, n);
    }
    return n;
  }

  private sample(): void {
    const now = performance.now();
    for (const { side, pid } of this.procs) {
      let tids: string[];
      try {
        tids = readdirSync(`/proc/${pid}/task`);
      } catch {
        continue; // the process is gone
      }
      for (const tid of tids) {
        const key = `${pid}/${tid}`;
        const stat = read(`/proc/${pid}/task/${tid}/schedstat`);
        if (stat === null) continue;
        const [run, wait] = stat.split(' ').map(Number) as [number, number];
        let s = this.seen.get(key);
        if (s === undefined) {
          s = { side, name: '', tid: Number(tid), run0: this.first ? run : 0, wait0: this.first ? wait : 0, run, wait, from: this.first ? this.startMs : now, to: now };
          this.seen.set(key, s);
        }
        // A new thread names itself after it starts (QEMU's qemu_thread_create): until then it
        // bears the process's name, so read it again.
        if (s.name === '' || (s.name === this.processName(pid) && tid !== String(pid))) s.name = read(`/proc/${pid}/task/${tid}/comm`)?.trim() ?? '?';
        s.run = run;
        s.wait = wait;
        s.to = now;
      }
    }
  }
}
