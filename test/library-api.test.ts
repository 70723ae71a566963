import { describe, expect, it } from 'vitest';
import {
  Convergence, Core, CounterPoll, Device, DeviceFsm, Devices, DirtyLog, DmaWriter, Emulator, EventQueue, FaultRing, GuestMemory, Kernel,
  LatencyLog, Link, Mapper, Multifd, NextMember, Pager, PostcopyEmuError, Precopy, RequestKind, ScenarioError, Source, Vcpus, applySets,
  buildReport, checkRun, decodeTrace, encodeTrace, importCsv, importLackey, makeDevices, makeDirtier, makePolicy, nextState, outstandingSet,
  parseScenario, readScenarioFile, traceStats,
} from '../src/index.ts';
import { Rng } from '../src/kernel/rng.ts';
import { thrown } from './throws.ts';

const typed = (f: () => unknown) => thrown(PostcopyEmuError, f);

const link = parseScenario({}).link;
const none = outstandingSet({ kind: 'ranges', ranges: [{ start: 0, count: 1 }] }, 16, new Rng(1, 'memory'));

describe('the library checks its arguments at the boundary, with one error class', () => {
  it('GuestMemory: whole pages, a power-of-two page size, gfns inside memory', () => {
    expect(typed(() => new GuestMemory(1.5, 4096, none))).toMatchObject({ field: 'GuestMemory.pages', message: 'GuestMemory.pages: must be an integer in 1..1073741824, got 1.5' });
    expect(typed(() => new GuestMemory(16, 0, none)).field).toBe('GuestMemory.pageSize');
    expect(typed(() => new GuestMemory(16, 3000, none)).message).toBe('GuestMemory.pageSize: must be a power of two (a page is 2^k bytes), got 3000');
    const m = new GuestMemory(16, 4096, none);
    expect(typed(() => m.load(2.5))).toMatchObject({ field: 'GuestMemory.load.gfn', message: 'GuestMemory.load.gfn: must be an integer in 0..15, got 2.5' });
    expect(typed(() => m.isReady(16)).field).toBe('GuestMemory.isReady.gfn');
    expect(m.load(0)).toBe(true);
  });

  it('Link: a rate of zero would send in infinite time', () => {
    expect(typed(() => new Link({ ...link, rateMbps: 0 }))).toMatchObject({ field: 'Link.rateMbps', message: 'Link.rateMbps: must be a number in 0.001..10000000, got 0' });
    const l = new Link(link);
    expect(typed(() => l.setSpeed(Number.NaN, 0)).field).toBe('Link.setSpeed.rateMbps');
    expect(l.send(0, 1000)).toBe(58_720);
  });

  it('FaultRing: capacity, vCPUs, kinds and gfns as the ring stores them', () => {
    expect(typed(() => new FaultRing({ capacity: 0, vcpus: 1, blackEye: false })).message).toBe('FaultRing.capacity: must be an integer in 1..16777216, got 0');
    expect(typed(() => new FaultRing(8 as never)).message).toBe('FaultRing.options: must be an object { capacity, vcpus, blackEye }, got 8');
    const ring = new FaultRing({ capacity: 2, vcpus: 1, blackEye: false });
    expect(typed(() => ring.putForeign(RequestKind.PAGE, 2.5)).field).toBe('FaultRing.putForeign.gfn');
    expect(typed(() => ring.putForeign(7 as RequestKind, 1)).field).toBe('FaultRing.putForeign.kind');
    expect(typed(() => ring.claimGuest(1)).message).toBe('FaultRing.claimGuest.vcpu: must be an integer in 0..0, got 1');
    expect(ring.putForeign(RequestKind.RANGE, 4, 8)).toBe(0);
  });

  it('Kernel: integer times from now (past 2^53 ns: never), registered kinds', () => {
    const k = new Kernel();
    const kind = k.register(() => {});
    expect(typed(() => k.at(Number.NaN, kind)).field).toBe('Kernel.at.time');
    expect(typed(() => k.at(-1, kind)).field).toBe('Kernel.at.time');
    expect(typed(() => k.at(5, kind + 1)).message).toBe(`${kind + 1} is not a registered event kind`);
    expect(typed(() => k.register(5 as never)).field).toBe('Kernel.register.handler');
  });

  it('Emulator: scenario fields (ScenarioError is a PostcopyEmuError), vCPUs that exist, pages in memory', () => {
    const e = typed(() => new Emulator({ ring: { capacity: 0 } }));
    expect(e).toBeInstanceOf(ScenarioError);
    expect(e.field).toBe('ring.capacity');
    const emu = new Emulator({ memory: { pages: 64 }, workload: { kind: 'idle', vcpus: 1 } });
    while (emu.resumedAt < 0) emu.step();
    expect(typed(() => emu.vcpus.touch(1, 5, true)).message).toBe('Vcpus.touch.vcpu: must be an integer in 0..0, got 1');
    expect(typed(() => emu.vcpus.touch(0, 2.5, true)).field).toBe('Vcpus.touch.gfn');
    expect(typed(() => emu.foreignFault(60, 8)).message).toBe('Emulator.foreignFault.count: must be an integer in 1..4, got 8');
    expect(typed(() => emu.runUntil('x' as never)).message).toBe('Emulator.runUntil.t: must be a time in ns, got x');
    expect(typed(() => emu.kernel.runUntil(Number.NaN)).field).toBe('Kernel.runUntil.t');
    expect(typed(() => emu.run(5 as never)).message).toBe('Emulator.run.onProgress: must be a function (nowNs: number) => void, or left out');
  });

  it('traces: the encoder and the importers check what they are given', () => {
    const t = { pageSize: 0, times: new Float64Array(1), gfns: new Int32Array(1), ops: new Uint8Array(1) };
    expect(typed(() => encodeTrace(t)).field).toBe('encodeTrace.pageSize');
    expect(typed(() => encodeTrace({ ...t, pageSize: 4096, gfns: new Int32Array(2) })).field).toBe('encodeTrace.trace');
    expect(typed(() => importLackey([], { pageSize: 4096, ips: 1e-300 })).message).toBe('importLackey.ips: must be a number in 1000..1000000000000, got 1e-300');
    expect(typed(() => importCsv(['0,1,r'], { pageSize: 4096, maxRecords: 0 })).field).toBe('importCsv.maxRecords');
    expect(typed(() => importCsv(['0,1,r'], undefined as never)).message).toBe('importCsv.options: must be an object { pageSize, maxRecords? }, got undefined');
    expect(typed(() => traceStats(null as never)).field).toBe('traceStats.trace');
    expect(typed(() => decodeTrace(new Uint8Array(3))).message).toMatch(/^\(a buffer\): not a pctrace file: 3 bytes/);
  });

  it('the building blocks: a wrong argument is a PostcopyEmuError naming it, not a TypeError inside or a silent default', () => {
    const s = parseScenario({});
    const emu = new Emulator({ memory: { pages: 64 } });
    const cases: [() => unknown, string][] = [
      [() => new NextMember(-3), 'NextMember.size'],
      [() => new Rng(1.5, 'x'), 'Rng.seed'],
      [() => new Rng(1, 5 as never), 'Rng.name'],
      [() => new EventQueue(0), 'EventQueue.initialCapacity'],
      [() => new LatencyLog().add(Number.NaN), 'LatencyLog.add.ns'],
      [() => buildReport({} as never), 'buildReport.emu'],
      [() => checkRun(null as never), 'checkRun.emu'],
      [() => makePolicy(s.source, null as never), 'makePolicy.unsent'],
      [() => makePolicy({ ...s.source, policy: 'nope' as never }, new NextMember(8)), 'makePolicy.params.policy'],
      [() => outstandingSet({ kind: 'nope' } as never, 16, new Rng(1, 'x')), 'outstandingSet.spec.kind'],
      [() => nextState(9 as never, 0 as never), 'nextState.from'],
      [() => new DeviceFsm('gpu' as never, {} as never), 'DeviceFsm.kind'],
      [() => new Convergence(null as never, 0), 'Convergence.params'],
      [() => new Link(null as never), 'Link.params'],
      [() => new Multifd(s, {} as never), 'Multifd.stream'],
      [() => makeDirtier(undefined as never), 'makeDirtier.scenario'],
      [() => makeDevices(s, 0, 'x' as never), 'makeDevices.arc'],
      [() => new DirtyLog(64, null, new Uint32Array(1)), 'DirtyLog.stale'],
      [() => new CounterPoll(emu.kernel, 0, () => ({}) as never), 'CounterPoll.intervalNs'],
      [() => new Pager(emu.kernel, emu.memory, {} as never, s, {} as never), 'Pager.ring'],
      [() => new Source({} as never, emu.memory, emu.stream, s, {} as never), 'Source.kernel'],
      [() => new Vcpus(emu.kernel, emu.memory, emu.ring, s, null as never), 'Vcpus.host'],
      [() => new Mapper(emu.kernel, emu.memory, emu.ring, s, {} as never, {} as never), 'Mapper.rng'],
      [() => new Core(emu.kernel, emu.events, null as never, {} as never, false, [], undefined as never), 'Core.scenario'],
      [() => new Devices(s, -1), 'Devices.backLatencyNs'],
      [() => new Device(null as never, 'vf0', 0, s), 'Device.spec'],
      [() => new DmaWriter({ region: [{ start: 60, count: 8 }], bytesPerSec: 1e6 } as never, 4096, 64, new Rng(1, 'dma')), 'DmaWriter.spec.region'],
      [() => new Precopy(s, null as never, {} as never), 'Precopy.kernel'],
      [() => emu.events.on('page-load' as never, () => {}), 'events.on.event'],
      [() => emu.events.once('fault', 5 as never), 'events.once.listener'],
      [() => new NextMember(64).add(64), 'NextMember.add.i'],
      [() => new NextMember(64).remove(2.5), 'NextMember.remove.i'],
      [() => new NextMember(64).addRange(Number.NaN, 5), 'NextMember.addRange'],
      [() => new NextMember(64).removeRange(0, 65), 'NextMember.removeRange'],
      [() => new Link(s.link).send(0, -5), 'Link.send.bytes'],
      [() => new Link(s.link).send(Number.NaN, 5), 'Link.send.now'],
      [() => new LatencyLog().percentiles([50, 101]), 'LatencyLog.percentiles.ps'],
      [() => applySets({}, [5 as never]), 'applySets.sets'],
      [() => readScenarioFile(5 as never), 'readScenarioFile.path'],
      [() => encodeTrace(null as never), 'encodeTrace.trace'],
    ];
    expect(cases.map(([f]) => typed(f).field)).toEqual(cases.map(([, field]) => field));
    // What they were given right still works.
    expect(makePolicy(s.source, new NextMember(8)).name).toBe('xen');
    const set = new NextMember(64, undefined, false);
    set.addRange(10, 5); // an empty range: nothing
    set.addRange(0, 64);
    set.remove(63);
    expect([set.next(0), set.next(63), set.countIn(0, 64)]).toEqual([0, 64, 63]);
    expect(new DirtyLog(64, null, new Uint32Array(2)).count).toBe(0);
  });
});
