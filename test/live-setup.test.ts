import { describe, expect, it } from 'vitest';
import { FrameType, type Frame } from '../src/live/frame.ts';
import { encodeHello } from '../src/live/payload.ts';
import { readHello } from '../src/live/setup.ts';
import type { Scenario } from '../src/scenario/schema.ts';
import { parseScenario } from '../src/scenario/validate.ts';

const hello = (s: Scenario): Frame => ({ type: FrameType.HELLO, payload: encodeHello({ scenario: s, seed: s.seed }), index: 0, offset: 0 });

describe('readHello', () => {
  it('reads the zero pages the end check expects: memory.zeroFraction and zeroRanges', () => {
    const s = parseScenario({ seed: 2, memory: { pages: 64, zeroFraction: 0.25, zeroRanges: [{ start: 8, count: 4 }] } });
    const got = readHello(hello(s));
    expect([got.pages, got.zeroFraction, got.zeroRanges]).toEqual([64, 0.25, [{ start: 8, count: 4 }]]);
  });

  it('refuses zero ranges outside the guest', () => {
    const s = parseScenario({ memory: { pages: 64 } });
    const bad = { ...s, memory: { ...s.memory, zeroRanges: [{ start: 60, count: 8 }] } };
    expect(() => readHello(hello(bad))).toThrow('HELLO: memory.zeroRanges [{"start":60,"count":8}] must be ranges {start, count} within memory.pages (64)');
    const frac = { ...s, memory: { ...s.memory, zeroFraction: 2 } };
    expect(() => readHello(hello(frac))).toThrow('HELLO: memory.zeroFraction must be in [0, 1], got 2');
  });

  it('reads the think times\' kind: exponential by default, constant when asked; refuses another', () => {
    expect(readHello(hello(parseScenario({ memory: { pages: 64 } }))).constantThink).toBe(false);
    expect(readHello(hello(parseScenario({ memory: { pages: 64 }, workload: { think: 'constant' } }))).constantThink).toBe(true);
    const s = parseScenario({ memory: { pages: 64 } });
    const bad = { ...s, workload: { ...s.workload, think: 'gaussian' } } as unknown as Scenario;
    expect(() => readHello(hello(bad))).toThrow('HELLO: workload.think must be exponential or constant, got "gaussian"');
  });
});
