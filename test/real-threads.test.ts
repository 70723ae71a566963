import { describe, expect, it } from 'vitest';
import { ThreadClock } from '../src/live/qemu/threads.ts';

/** Spins the CPU for `ms` of wall time (this thread is then on a CPU, as schedstat counts it). */
function spin(ms: number): void {
  const end = performance.now() + ms;
  let x = 0;
  while (performance.now() < end) x++;
  if (x < 0) throw new Error('unreachable');
}

describe('ThreadClock: threads\' CPU from /proc', () => {
  it('counts this process\'s main thread from start() on, by name, and stops sampling', async () => {
    const clock = new ThreadClock([{ side: 'self', pid: process.pid }], 5);
    clock.start();
    spin(40);
    await new Promise((r) => setTimeout(r, 20));
    const threads = clock.stop();
    const main = threads.find((t) => t.tid === process.pid)!;
    expect(main.side).toBe('self');
    expect(main.name).toMatch(/node|vitest|MainThread/);
    // At least most of the 40 ms spin ran on a CPU; not more than the window's wall time.
    expect(main['cpu-ms']).toBeGreaterThan(20);
    expect(main['cpu-ms']).toBeLessThanOrEqual(main['alive-ms'] + 1);
    expect(main['alive-ms']).toBeGreaterThanOrEqual(59);
    expect(main['runqueue-ms']).toBeGreaterThanOrEqual(0);
    expect(threads.map((t) => t['cpu-ms'])).toEqual([...threads.map((t) => t['cpu-ms'])].sort((a, b) => b - a));
    // A process that is gone (or never was) is skipped, not an error.
    const none = new ThreadClock([{ side: 'gone', pid: -1 }], 5);
    none.start();
    expect(none.stop()).toEqual([]);
  });
});
