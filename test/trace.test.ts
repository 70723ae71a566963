import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { checkRun } from '../src/check/invariants.ts';
import { cliHarness } from './cli-harness.ts';
import { Emulator } from '../src/emulator.ts';
import { presetInput } from '../src/scenario/load.ts';
import { ScenarioError } from '../src/scenario/error.ts';
import { MAX_GFN, TraceFormatError, decodeTrace, encodeTrace, readTrace, traceStats, type Trace } from '../src/trace/format.ts';
import { TraceImportError, importCsv, importLackey } from '../src/trace/import.ts';

const dir = mkdtempSync(join(tmpdir(), 'postcopy-emu-trace-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ROOT = new URL('..', import.meta.url).pathname;
const SHIPPED = join(ROOT, 'traces/hashtable.pctrace');

function trace(records: [number, number, 0 | 1][], pageSize = 4096): Trace {
  return {
    pageSize,
    times: Float64Array.from(records, (r) => r[0]),
    gfns: Int32Array.from(records, (r) => r[1]),
    ops: Uint8Array.from(records, (r) => r[2]),
  };
}

const plain = (t: Trace) => ({ pageSize: t.pageSize, times: [...t.times], gfns: [...t.gfns], ops: [...t.ops] });

function problems(f: () => unknown): string[] {
  try {
    f();
  } catch (e) {
    if (e instanceof TraceImportError) return e.problems;
    throw e;
  }
  throw new Error('expected a TraceImportError');
}

function writeTrace(name: string, t: Trace): string {
  const path = join(dir, name);
  writeFileSync(path, encodeTrace(t));
  return path;
}

describe('CSV import', () => {
  it('reads time_ns,gfn,op with a header, blank lines and both op spellings', () => {
    const text = 'time_ns,gfn,op\n0,5,r\n10, 5 ,w\r\n\n25,7,read\n25,2,WRITE\n';
    expect(plain(importCsv(text.split('\n'), { pageSize: 4096 }))).toEqual({
      pageSize: 4096, times: [0, 10, 25, 25], gfns: [5, 5, 7, 2], ops: [0, 1, 0, 1],
    });
    expect(plain(importCsv(text.split('\n'), { pageSize: 4096, maxRecords: 2 })).gfns).toEqual([5, 5]);
  });

  it('reports every bad line with its number', () => {
    const text = ['time_ns,gfn,op', '0,1,r', '10,2,x', '20,3,w', '15,4,r', '30,-1,r', '40,1', 'abc,1,r', '50,2147483648,w'].join('\n');
    expect(problems(() => importCsv(text.split('\n'), { pageSize: 4096 }))).toEqual([
      'line 3: op "x" is not r, w, read or write',
      'line 5: time 15 is before the previous record\'s 20',
      'line 6: gfn "-1" is not an integer in 0..2147483647',
      'line 7: expected 3 fields time_ns,gfn,op, got 2: "40,1"',
      'line 8: time "abc" is not an integer ≥ 0',
      'line 9: gfn "2147483648" is not an integer in 0..2147483647',
    ]);
  });

  it('shows the first ten bad lines and counts the rest', () => {
    const lines = Array.from({ length: 13 }, (_, i) => `${i},1,q`);
    const e = (() => {
      try {
        importCsv(lines, { pageSize: 4096 });
      } catch (err) {
        return err as TraceImportError;
      }
    })()!;
    expect(e.total).toBe(13);
    expect(e.problems).toHaveLength(10);
    expect(e.problems[9]).toBe('line 10: op "q" is not r, w, read or write');
    expect(e.message.split('\n')[0]).toBe('13 bad lines:');
    expect(e.message.endsWith('… and 3 more')).toBe(true);
    expect(problems(() => importCsv(['time_ns,gfn,op', ''], { pageSize: 4096 }))).toEqual(['no records in the input']);
  });
});

describe('lackey import', () => {
  // Lines from real lackey runs (valgrind 3.19), plus one access straddling two pages.
  const LOG = [
    '==17506== Lackey, an example Valgrind tool',
    'I  0401ab70,3',
    'I  0401ab73,5',
    ' S 1fff000688,8',
    'I  0401b770,1',
    ' S 1fff000680,8',
    ' L 04222cac,4',
    ' M 0421a6a8,4',
    'I  04222c9c,3',
    ' S 1ffefffd98,8',
    ' L 04222ffe,4',
    '==17506== ',
  ];
  // Data pages in address order: 0x421a → 0, 0x4222 → 1, 0x4223 → 2, 0x1ffefff → 3, 0x1fff000 → 4.
  it('folds addresses to dense pages in address order; time from instruction counts', () => {
    expect(plain(importLackey(LOG, { pageSize: 4096, ips: 1e9 }))).toEqual({
      pageSize: 4096,
      times: [1, 2, 2, 2, 3, 3, 3],
      gfns: [4, 4, 1, 0, 3, 1, 2],
      ops: [1, 1, 0, 1, 1, 0, 0],
    });
  });

  it('records fetches as reads with includeFetches; ips scales time', () => {
    // With fetches, pages 0x401a and 0x401b come first in address order.
    const t = importLackey(LOG, { pageSize: 4096, ips: 5e8, includeFetches: true });
    expect(plain(t)).toEqual({
      pageSize: 4096,
      times: [0, 2, 2, 4, 4, 4, 4, 6, 6, 6, 6],
      gfns: [0, 0, 6, 1, 6, 3, 2, 3, 5, 3, 4],
      ops: [0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0],
    });
  });

  it('reports malformed lines with their numbers', () => {
    const bad = ['==1== hello', 'I  0401ab70,3', ' X 0401ab70,3', ' L zz,4', ' L 0401ab70', ' S 0401ab70,0', 'hello', ' L 0401ab70,8192'];
    expect(problems(() => importLackey(bad, { pageSize: 4096, ips: 1e9 }))).toEqual([
      'line 3: not a lackey line (" L|S|M addr,size" or "I  addr,size"): " X 0401ab70,3"',
      'line 4: not a lackey line (" L|S|M addr,size" or "I  addr,size"): " L zz,4"',
      'line 5: not a lackey line (" L|S|M addr,size" or "I  addr,size"): " L 0401ab70"',
      'line 6: access size 0 is outside 1..4096',
      'line 7: not a lackey line (" L|S|M addr,size" or "I  addr,size"): "hello"',
      'line 8: access size 8192 is outside 1..4096',
    ]);
  });

  it('the shipped trace starts with the records of the shipped log excerpt', () => {
    const head = gunzipSync(readFileSync(join(ROOT, 'traces/hashtable.lackey-head.gz'))).toString('utf8').split('\n');
    const part = importLackey(head, { pageSize: 4096, ips: 1e9 });
    const full = readTrace(SHIPPED);
    const n = part.gfns.length;
    expect(n).toBe(6252);
    expect([...part.times]).toEqual([...full.times.subarray(0, n)]);
    expect([...part.ops]).toEqual([...full.ops.subarray(0, n)]);
    // Dense numbering differs (the full run has more pages) but keeps address order.
    for (let i = 1; i < n; i++) {
      expect(Math.sign(part.gfns[i]! - part.gfns[i - 1]!)).toBe(Math.sign(full.gfns[i]! - full.gfns[i - 1]!));
    }
  });
});

describe('pctrace format', () => {
  const t = trace([[0, 7, 1], [3, 7, 0], [3, 0, 1], [2 ** 40, MAX_GFN, 0], [2 ** 40 + 1, 5, 1], [2 ** 52, 5, 0]], 2 ** 21);

  it('round-trips records exactly, in a compact encoding', () => {
    const path = writeTrace('round.pctrace', t);
    expect(plain(readTrace(path))).toEqual(plain(t));
    expect(plain(decodeTrace(encodeTrace(trace([])), 'empty'))).toEqual(plain(trace([])));
    const shipped = readFileSync(SHIPPED);
    const s = traceStats(decodeTrace(shipped, SHIPPED));
    expect(s).toEqual({ records: 203_852, pages: 4117, span: 4117, durationNs: 3_546_833 });
    expect(shipped.length / s.records).toBeLessThan(3);
  });

  it('names the file and the fault in a corrupt file', () => {
    const good = encodeTrace(t);
    const broken = (name: string, f: (b: Buffer) => Buffer): string => {
      const path = join(dir, name);
      writeFileSync(path, f(Buffer.from(good)));
      try {
        readTrace(path);
      } catch (e) {
        expect(e).toBeInstanceOf(TraceFormatError);
        return (e as Error).message;
      }
      throw new Error(`${name} was accepted`);
    };
    const p = (name: string) => join(dir, name);
    expect(broken('magic.pctrace', (b) => (b.write('PCTRACE0'), b))).toBe(`${p('magic.pctrace')}: not a pctrace file: the magic is not "PCTRACE1"`);
    expect(broken('short.pctrace', (b) => b.subarray(0, 10))).toBe(`${p('short.pctrace')}: not a pctrace file: 10 bytes, shorter than the 32-byte header`);
    expect(broken('version.pctrace', (b) => (b.writeUInt32LE(2, 8), b))).toBe(`${p('version.pctrace')}: format version 2 is not supported (this reader knows 1)`);
    expect(broken('cut.pctrace', (b) => b.subarray(0, b.length - 1))).toBe(`${p('cut.pctrace')}: truncated or padded: the header says ${good.length - 32} payload bytes, the file holds ${good.length - 33}`);
    expect(broken('flip.pctrace', (b) => (b[40]! ^= 0x10, b))).toBe(`${p('flip.pctrace')}: checksum mismatch: the records are damaged`);
    expect(broken('count.pctrace', (b) => (b.writeUInt32LE(1e9, 16), b))).toBe(`${p('count.pctrace')}: 1000000000 records cannot fit in ${good.length - 32} payload bytes`);
    expect(() => readTrace(p('absent.pctrace'))).toThrow(`${p('absent.pctrace')}: cannot read: ENOENT`);
  });
});

describe('trace workload', () => {
  // Every page of an 8-page guest, first touched in the order 3 1 6 0 7 2 5 4.
  const RECORDS: [number, number, 0 | 1][] = [
    [0, 3, 1], [1_000, 1, 0], [1_500, 3, 0], [5_000, 6, 1], [5_200, 0, 0], [9_000, 7, 1],
    [9_001, 6, 0], [12_000, 2, 0], [20_000, 5, 1], [20_400, 4, 0],
  ];
  const path = () => writeTrace('eight.pctrace', trace(RECORDS));
  const base = (over: object = {}) => ({
    memory: { pages: 8 },
    source: { policy: 'demand' },
    workload: { kind: 'trace', trace: path() },
    ...over,
  });

  it('replays the gfns in order, the trace gaps as think time shifted by each fault', () => {
    const emu = new Emulator(base());
    const blocked: { time: number; gfn: number }[] = [], resumed: { time: number; gfn: number }[] = [], loaded: number[] = [];
    emu.events.on('vcpu-blocked', (e) => blocked.push(e));
    emu.events.on('vcpu-resumed', (e) => resumed.push(e));
    emu.events.on('page-loaded', (e) => loaded.push(e.gfn));
    emu.run();
    expect(checkRun(emu)).toEqual([]);
    expect(blocked.map((e) => e.gfn)).toEqual([3, 1, 6, 0, 7, 2, 5, 4]);
    expect(loaded).toEqual([3, 1, 6, 0, 7, 2, 5, 4]);
    // From resuming on record j to faulting on the next new page k: time[k] − time[j].
    const faultAt = [0, 1, 3, 4, 5, 7, 8, 9];
    for (let i = 1; i < blocked.length; i++) {
      expect(blocked[i]!.time - resumed[i - 1]!.time).toBe(RECORDS[faultAt[i]!]![0] - RECORDS[faultAt[i - 1]!]![0]);
    }
    // Loaded pages hold the source's version 2; each write adds one. The trace loops until the
    // source's COMPLETE arrives: pages 5, 6 and 7 are written once per pass, page 3 (record 0)
    // also by a pass cut short; pages 0, 1, 2 and 4 are only read.
    const w = Array.from({ length: emu.memory.pages }, (_, g) => emu.memory.destVersion(g) - 2);
    const passes = w[5]!;
    expect(passes).toBeGreaterThan(1);
    expect([w[0], w[1], w[2], w[4], w[6], w[7]]).toEqual([0, 0, 0, 0, passes, passes]);
    expect([passes, passes + 1]).toContain(w[3]);
    expect(emu.vcpus.writes).toBe(w.reduce((a, b) => a + b));
  });

  it('starts vCPU v at record v × count / vcpus, placed at workload.region', () => {
    const emu = new Emulator(base({ memory: { pages: 16 }, workload: { kind: 'trace', trace: path(), vcpus: 2, region: { start: 4, count: 8 } } }));
    const first = new Map<number, number>();
    emu.events.on('vcpu-blocked', (e) => first.has(e.vcpu) || first.set(e.vcpu, e.gfn));
    while (first.size < 2) emu.step();
    expect(first).toEqual(new Map([[0, 4 + 3], [1, 4 + 7]]));
  });

  it('rejects a missing, corrupt or oversized trace, naming workload.trace', () => {
    const err = (input: object) => {
      try {
        new Emulator(input);
      } catch (e) {
        if (e instanceof ScenarioError) return e;
      }
      throw new Error('expected a ScenarioError');
    };
    expect(err({ workload: { kind: 'trace' } }).path).toBe('workload.trace');
    const missing = join(dir, 'missing.pctrace');
    expect(err({ workload: { kind: 'trace', trace: missing } }).message).toContain(`workload.trace: ${missing}: cannot read`);
    const junk = join(dir, 'junk.pctrace');
    writeFileSync(junk, 'not a trace at all, just some text that is long enough');
    expect(err({ workload: { kind: 'trace', trace: junk } }).message).toBe(`workload.trace: ${junk}: not a pctrace file: the magic is not "PCTRACE1"`);
    expect(err(base({ memory: { pages: 7 } })).message).toBe(`workload.trace: ${path()} touches gfns up to 7, more than the 7 pages of memory.pages`);
    expect(err(base({ memory: { pages: 8, pageSize: 8192 } })).message).toBe(`workload.trace: ${path()} has 4096-byte pages, memory.pageSize is 8192`);
    expect(err({ workload: { kind: 'random', trace: path() } }).path).toBe('workload.trace');
  });

  it('the shipped preset is sized to its trace and runs to completion soundly', () => {
    const input = presetInput('trace-hashtable');
    expect(input.memory!.pages).toBe(traceStats(readTrace(SHIPPED)).span);
    const emu = new Emulator(input).run();
    expect(emu.finished).toBe(true);
    expect(checkRun(emu)).toEqual([]);
    expect(emu.vcpuFaults).toBeGreaterThan(0);
    expect(emu.memory.pages - emu.memory.pending).toBe(4117);
  });
});

describe('CLI trace import', () => {
  const cli = cliHarness();

  it('imports a CSV, writes the file atomically and runs it', async () => {
    const csv = join(dir, 'in.csv'), out = join(dir, 'in.pctrace');
    writeFileSync(csv, 'time_ns,gfn,op\n0,3,w\n1000,1,r\n1500,7,w\n2500,3,r\n');
    const r = await cli('trace', 'import', csv, '-o', out, '--format', 'csv');
    expect(r).toEqual({ code: 0, out: `${out}: 4 records, 3 distinct pages (gfns 0..7), 0.0025 ms, 43 bytes (10.75 B/record)\n`, err: '' });
    expect(plain(readTrace(out))).toEqual({ pageSize: 4096, times: [0, 1000, 1500, 2500], gfns: [3, 1, 7, 3], ops: [1, 0, 1, 0] });
    const run = await cli('run', '--set', 'memory.pages=8', '--set', 'workload.kind=trace', '--set', `workload.trace=${out}`, '--check', '--json', '-');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.out).status).toBe('completed');
  });

  it('imports lackey output with --max-records', async () => {
    const log = join(dir, 'head.lackey'), out = join(dir, 'head.pctrace');
    writeFileSync(log, gunzipSync(readFileSync(join(ROOT, 'traces/hashtable.lackey-head.gz'))));
    const r = await cli('trace', 'import', log, '-o', out, '--format', 'lackey', '--ips', '2e9', '--max-records', '100');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`^${out}: 100 records, \\d+ distinct pages`));
    const t = readTrace(out);
    expect(t.gfns.length).toBe(100);
    expect(plain(t)).toEqual(plain(importLackey(readFileSync(log, 'utf8').split('\n'), { pageSize: 4096, ips: 2e9, maxRecords: 100 })));
  });

  it('exits 2 on a bad input file, naming the lines, and writes nothing', async () => {
    const csv = join(dir, 'bad.csv'), out = join(dir, 'bad.pctrace');
    writeFileSync(csv, '10,1,r\n15,2,x\n3,1,w\n');
    const r = await cli('trace', 'import', csv, '-o', out, '--format', 'csv');
    expect(r.code).toBe(2);
    expect(r.err).toBe(`postcopy-emu: ${csv}: 2 bad lines:\n  line 2: op "x" is not r, w, read or write\n  line 3: time 3 is before the previous record's 10\n`);
    expect(existsSync(out)).toBe(false);
    expect((await cli('trace', 'import', join(dir, 'nope.csv'), '-o', out, '--format', 'csv')).code).toBe(2);
    expect((await cli('trace', 'import', csv, '-o', out, '--format', 'json')).code).toBe(2);
    expect((await cli('trace', 'import', csv, '-o', out, '--format', 'csv', '--ips', '5')).err).toContain('postcopy-emu: --ips and --include-fetches apply to --format lackey only\n');
  });
});
