import { setTimeout as sleep } from 'node:timers/promises';
import { createConnection, type Socket } from 'node:net';
import { RealRunError } from './errors.ts';

/** A QMP event with QEMU's own timestamp, in µs since the epoch. */
export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  atUs: number;
}

/** QEMU refused a command: its error class and description. */
export class QmpCommandError extends Error {
  constructor(readonly command: string, readonly errorClass: string, readonly desc: string) {
    super(`${command}: ${desc}`);
    this.name = 'QmpCommandError';
  }
}

interface Pending {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** A QMP reply larger than this is not QEMU: 16 MiB is far beyond any query-migrate. */
const MAX_BUFFER = 16 * 2 ** 20;

/**
 * One QMP connection (QEMU serves one client at a time): commands tagged with ids, every reply
 * bounded by a timeout, events collected in order with their timestamps.
 */
export class Qmp {
  readonly events: QmpEvent[] = [];
  private buffer = '';
  private nextId = 0;
  private pending = new Map<string, Pending>();
  private greeting: ((v: Record<string, unknown>) => void) | null = null;
  private closedBy: Error | null = null;
  /** Rejects the waits in progress (greeting, events) when the connection fails. */
  private aborts = new Set<(e: Error) => void>();
  private waiters: { test: (e: QmpEvent) => boolean; resolve: (e: QmpEvent) => void }[] = [];

  private constructor(private readonly socket: Socket, private readonly name: string) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.receive(chunk));
    socket.on('error', (e) => this.fail(new RealRunError(`QMP ${name}: ${e.message}`)));
    socket.on('close', () => this.fail(new RealRunError(`QMP ${name}: connection closed by QEMU`)));
  }

  /**
   * Connects to a QMP socket, retrying while QEMU creates it, reads the greeting and enters
   * command mode. `alive` says whether QEMU still runs, so a crash is not waited out.
   */
  static async connect(path: string, name: string, timeoutMs: number, alive: () => boolean = () => true): Promise<Qmp> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const socket = await new Promise<Socket | null>((resolve) => {
        const s = createConnection(path);
        s.once('connect', () => resolve(s));
        s.once('error', () => resolve(null));
      });
      if (socket) {
        const qmp = new Qmp(socket, name);
        try {
          const hello = await qmp.within(new Promise<Record<string, unknown>>((r) => (qmp.greeting = r)), 'greeting', Math.max(1, deadline - Date.now()));
          if (!('QMP' in hello)) throw new RealRunError(`QMP ${name}: no QMP greeting on ${path}`);
          await qmp.execute('qmp_capabilities', {}, Math.max(1, deadline - Date.now()));
          return qmp;
        } catch (e) {
          qmp.close();
          throw e;
        }
      }
      if (!alive()) throw new RealRunError(`QMP ${name}: QEMU exited before it opened ${path}`);
      if (Date.now() >= deadline) throw new RealRunError(`QMP ${name}: no socket at ${path} after ${timeoutMs} ms`);
      await sleep(10);
    }
  }

  /** Runs a command; rejects with QmpCommandError when QEMU refuses it, RealRunError on timeout. */
  execute(command: string, args: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<unknown> {
    if (this.closedBy) return Promise.reject(this.closedBy);
    const id = `pce-${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RealRunError(`QMP ${this.name}: no reply to ${command} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { command, resolve, reject, timer });
      this.socket.write(`${JSON.stringify(Object.keys(args).length ? { execute: command, arguments: args, id } : { execute: command, id })}\n`);
    });
  }

  /** The first event (already received or to come) that passes `test`, within `timeoutMs`. */
  waitEvent(test: (e: QmpEvent) => boolean, what: string, timeoutMs: number): Promise<QmpEvent> {
    const seen = this.events.find(test);
    if (seen) return Promise.resolve(seen);
    return this.within(new Promise<QmpEvent>((resolve) => this.waiters.push({ test, resolve })), what, timeoutMs);
  }

  close(): void {
    this.socket.destroy();
  }

  private within<T>(p: Promise<T>, what: string, timeoutMs: number): Promise<T> {
    if (this.closedBy) return Promise.reject(this.closedBy);
    let timer: NodeJS.Timeout | undefined;
    let abort!: (e: Error) => void;
    const stop = new Promise<never>((_, reject) => {
      abort = reject;
      timer = setTimeout(() => reject(new RealRunError(`QMP ${this.name}: no ${what} in ${timeoutMs} ms`)), timeoutMs);
    });
    this.aborts.add(abort);
    return Promise.race([p, stop]).finally(() => {
      clearTimeout(timer);
      this.aborts.delete(abort);
    });
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    if (this.buffer.length > MAX_BUFFER) return this.fail(new RealRunError(`QMP ${this.name}: a message longer than ${MAX_BUFFER} characters`));
    let nl;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line) this.message(line);
    }
  }

  private message(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return this.fail(new RealRunError(`QMP ${this.name}: not JSON: ${line.slice(0, 80)}`));
    }
    if ('QMP' in msg) return this.greeting?.(msg);
    if (typeof msg.event === 'string') {
      const ts = msg.timestamp as { seconds: number; microseconds: number } | undefined;
      const ev = { event: msg.event, data: (msg.data ?? {}) as Record<string, unknown>, atUs: ts ? ts.seconds * 1e6 + ts.microseconds : Date.now() * 1000 };
      this.events.push(ev);
      this.waiters = this.waiters.filter((w) => !(w.test(ev) && (w.resolve(ev), true)));
      return;
    }
    const p = typeof msg.id === 'string' ? this.pending.get(msg.id) : undefined;
    if (!p) return;
    this.pending.delete(msg.id as string);
    clearTimeout(p.timer);
    const err = msg.error as { class?: string; desc?: string } | undefined;
    if (err) p.reject(new QmpCommandError(p.command, err.class ?? 'GenericError', err.desc ?? 'refused'));
    else p.resolve(msg.return);
  }

  private fail(e: Error): void {
    if (this.closedBy) return;
    this.closedBy = e;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(e);
    }
    this.pending.clear();
    for (const a of this.aborts) a(e);
    this.socket.destroy();
  }
}
