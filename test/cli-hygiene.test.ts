import { describe, expect, it } from 'vitest';
import { cliHarness } from './cli-harness.ts';

const cli = cliHarness();

describe('CLI hygiene', () => {
  it('prints its version', async () => {
    const r = await cli('--version');
    expect(r).toEqual({ code: 0, out: '0.1.0\n', err: '' });
  });

  it('gives commander\'s own errors the same prefix as every other message, exit 2', async () => {
    expect(await cli('run', '--bogus')).toEqual({ code: 2, out: '', err: "postcopy-emu: unknown option '--bogus'\n" });
    expect(await cli('bogus')).toEqual({ code: 2, out: '', err: "postcopy-emu: unknown command 'bogus'\n" });
    const bad = await cli('run', '--preset', 'xen-2017-hybrid', '--set', 'ring.capacity=0');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/^postcopy-emu: ring\.capacity: .*\n$/);
  });

  it('takes --quiet before any command', async () => {
    const r = await cli('--quiet', 'presets');
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[0]).toMatch(/^xen-2017-pure\s+Pure postcopy/);
  });
});
