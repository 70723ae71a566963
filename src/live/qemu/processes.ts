import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/** Keep the end of a QEMU's stderr: its last lines say why it exited. */
const STDERR_TAIL = 4096;

/** One QEMU process this harness started: its exit, and the tail of its stderr. */
export class QemuProcess {
  private child: ChildProcess;
  private stderr = '';
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  readonly exited: Promise<void>;

  constructor(readonly name: string, argv: readonly string[]) {
    this.child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (s: string) => (this.stderr = (this.stderr + s).slice(-STDERR_TAIL)));
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        resolve();
      });
      // A binary that cannot be started: reported as an exit.
      this.child.once('error', (e) => {
        this.stderr += e.message;
        this.exitCode = -1;
        resolve();
      });
    });
  }

  /** The process id (undefined if it never started). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.exitCode === null && this.exitSignal === null;
  }

  /** "exited with code 1: qemu-system-x86_64: …" for an error message. */
  describe(): string {
    const how = this.exitSignal ? `was killed by ${this.exitSignal}` : `exited with code ${this.exitCode}`;
    const last = this.stderr.trim().split('\n').at(-1);
    return `QEMU ${this.name} ${how}${last ? `: ${last}` : ''}`;
  }

  /** Waits up to `graceMs` for the exit, then kills it (only this process, by its handle). */
  async stop(graceMs: number): Promise<void> {
    if (!this.alive) return;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  kill(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    return this.exited;
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago (the destination listens on it next). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
