import { closeSync, openSync, readFileSync, readSync, readdirSync } from 'node:fs';

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
  /** Its schedstat, open while the thread lives (−1 once it is gone). */
  fd: number;
  pid: number;
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

/** New threads are looked for every this many samples (a thread's counters start at 0, so none is lost). */
const LIST_EVERY = 8;

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
 * to `everyMs` of its last work is not counted. Each sample is one pread() per thread of its
 * schedstat, kept open (a listing of the threads every LIST_EVERY samples), so that the sampling
 * takes little of the CPUs the QEMUs it measures run on.
 */
export class ThreadClock {
  private readonly seen = new Map<string, Seen>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private first = true;
  private startMs = 0;
  private samples = 0;
  private readonly buf = Buffer.alloc(128);
  /** Each process's main thread's name, which a new thread bears until it names itself. */
  private readonly names = new Map<number, string>();

  constructor(private readonly procs: readonly { side: string; pid: number }[], private readonly everyMs = 5) {}

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
    for (const s of this.seen.values()) this.close(s);
    const ms = (ns: number) => Math.round(ns / 1e3) / 1e3;
    return [...this.seen.values()]
      .map((s) => ({ side: s.side, name: s.name, tid: s.tid, 'cpu-ms': ms(s.run - s.run0), 'runqueue-ms': ms(s.wait - s.wait0), 'alive-ms': Math.round((s.to - s.from) * 1e3) / 1e3 }))
      .filter((t) => t['cpu-ms'] >= MIN_CPU_MS)
      .sort((a, b) => b['cpu-ms'] - a['cpu-ms']);
  }

  private sample(): void {
    const now = performance.now();
    if (this.samples++ % LIST_EVERY === 0) this.list(now);
    for (const s of this.seen.values()) {
      if (s.fd < 0) continue;
      const stat = this.stat(s.fd);
      if (stat === null) {
        this.close(s); // the thread exited
        continue;
      }
      [s.run, s.wait] = stat;
      s.to = now;
      // A new thread names itself after it starts (QEMU's qemu_thread_create): until then it
      // bears the process's name, so read it again.
      if (s.name === this.names.get(s.pid) && s.tid !== s.pid) s.name = read(`/proc/${s.pid}/task/${s.tid}/comm`)?.trim() ?? '?';
    }
  }

  /** Opens the threads not seen yet; their counters count from now (from 0 for those started since start()). */
  private list(now: number): void {
    for (const { side, pid } of this.procs) {
      let tids: string[];
      try {
        tids = readdirSync(`/proc/${pid}/task`);
      } catch {
        continue; // the process is gone
      }
      if (!this.names.has(pid)) this.names.set(pid, read(`/proc/${pid}/comm`)?.trim() ?? '');
      for (const tid of tids) {
        const key = `${pid}/${tid}`;
        if (this.seen.has(key)) continue;
        let fd: number;
        try {
          fd = openSync(`/proc/${pid}/task/${tid}/schedstat`, 'r');
        } catch {
          continue;
        }
        const [run, wait] = this.stat(fd) ?? [0, 0];
        const name = read(`/proc/${pid}/task/${tid}/comm`)?.trim() ?? '?';
        this.seen.set(key, { fd, pid, side, name, tid: Number(tid), run0: this.first ? run : 0, wait0: this.first ? wait : 0, run, wait, from: this.first ? this.startMs : now, to: now });
      }
    }
  }

  /** Time on a CPU and time waiting for one, ns (schedstat's first two fields); null once the thread is gone. */
  private stat(fd: number): [number, number] | null {
    let n: number;
    try {
      n = readSync(fd, this.buf, 0, this.buf.length, 0);
    } catch {
      return null;
    }
    if (n <= 0) return null;
    const [run, wait] = this.buf.toString('latin1', 0, n).split(' ');
    return [Number(run), Number(wait)];
  }

  private close(s: Seen): void {
    if (s.fd >= 0) closeSync(s.fd);
    s.fd = -1;
  }
}
