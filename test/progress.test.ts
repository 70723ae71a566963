import { afterEach, describe, expect, it, vi } from 'vitest';
import { progressBar, setQuiet } from '../src/cli/progress.ts';

describe('progress bars', () => {
  const tty = process.stderr.isTTY;
  const env = { TERM: process.env.TERM, NO_COLOR: process.env.NO_COLOR };
  afterEach(() => {
    process.stderr.isTTY = tty;
    for (const [k, v] of Object.entries(env)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    setQuiet(false);
    vi.restoreAllMocks();
  });

  /** What a bar writes to a terminal for one update. */
  function draw(): string {
    process.stderr.isTTY = true;
    const written: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (written.push(String(s)), true));
    const bar = progressBar('[{bar}] {value}/{total}');
    bar.update(5, 10, {});
    bar.stop();
    return written.join('');
  }

  it('draws on a terminal, hiding the cursor', () => {
    process.env.TERM = 'xterm';
    delete process.env.NO_COLOR;
    const s = draw();
    expect(s).toContain('5/10');
    expect(s).toContain('\x1b[?25l');
  });

  it('draws plain ASCII and leaves the cursor alone with NO_COLOR', () => {
    process.env.TERM = 'xterm';
    process.env.NO_COLOR = '1';
    const s = draw();
    expect(s).toContain('5/10');
    expect(s).not.toContain('\x1b[?25l');
    expect(s).not.toMatch(/[\u2580-\u259f]/);
  });

  it('draws nothing on TERM=dumb or with --quiet', () => {
    process.env.TERM = 'dumb';
    expect(draw()).toBe('');
    process.env.TERM = 'xterm';
    setQuiet(true);
    expect(draw()).toBe('');
  });
});
