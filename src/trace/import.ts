import { intArg, numArg, objArg, pageSizeArg } from '../io/args.ts';
import { PostcopyEmuError } from '../io/errors.ts';
import { doubled } from '../memory/arena.ts';
import { MAX_GFN, MAX_TRACE_RECORDS, TraceOp, type Trace } from './format.ts';

/** Bad input lines are collected, up to this many shown, before the import fails. */
export const MAX_REPORTED = 10;

/** An input that cannot be imported; `problems` are "line N: …" strings, at most MAX_REPORTED. */
export class TraceImportError extends PostcopyEmuError {
  constructor(readonly problems: string[], readonly total = problems.length) {
    const more = total > problems.length ? `\n  … and ${total - problems.length} more` : '';
    super('trace', total === 1 ? problems[0]! : `${total} bad lines:\n  ${problems.join('\n  ')}${more}`);
    this.name = 'TraceImportError';
  }
}

export interface CsvOptions {
  pageSize: number;
  /** Stop after this many records (the rest of the input is not read). */
  maxRecords?: number;
}

export interface LackeyOptions extends CsvOptions {
  /** Instructions per second: the k-th instruction runs at ⌊k · 10⁹ / ips⌋ ns. */
  ips: number;
  /** Record instruction fetches (I lines) as reads too. */
  includeFetches?: boolean;
}

/** Records as they are parsed, in growable typed arrays; `keys` are gfns or raw page numbers. */
class Records {
  length = 0;
  times = new Float64Array(4096);
  keys = new Float64Array(4096);
  ops = new Uint8Array(4096);

  push(time: number, key: number, op: number): void {
    if (this.length === MAX_TRACE_RECORDS) {
      throw new TraceImportError([`more than ${MAX_TRACE_RECORDS} records (2^26, the most a trace holds): take the first N with --max-records N`]);
    }
    if (this.length === this.times.length) {
      this.times = doubled(this.times);
      this.keys = doubled(this.keys);
      this.ops = doubled(this.ops);
    }
    this.times[this.length] = time;
    this.keys[this.length] = key;
    this.ops[this.length++] = op;
  }

  trace(pageSize: number, gfnOf: (key: number) => number): Trace {
    const n = this.length;
    if (n === 0) throw new TraceImportError(['no records in the input']);
    const gfns = new Int32Array(n);
    for (let i = 0; i < n; i++) gfns[i] = gfnOf(this.keys[i]!);
    return { pageSize, times: this.times.slice(0, n), gfns, ops: this.ops.slice(0, n) };
  }
}

/** Collects bad lines; throws them all at the end. */
class Problems {
  list: string[] = [];
  total = 0;

  add(line: number, what: string): void {
    if (this.total++ < MAX_REPORTED) this.list.push(`line ${line}: ${what}`);
  }

  check(): void {
    if (this.total > 0) throw new TraceImportError(this.list, this.total);
  }
}

const quote = (s: string) => JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
const OPS: Record<string, TraceOp> = { r: TraceOp.READ, read: TraceOp.READ, w: TraceOp.WRITE, write: TraceOp.WRITE };

/**
 * CSV `time_ns,gfn,op`: time a non-decreasing integer ≥ 0, gfn an integer ≥ 0, op r/w/read/write
 * (any case). The first non-blank line may be the header `time_ns,gfn,op`; any other line that
 * is not a record is an error (a garbage first line is not silently taken as a header); blank
 * lines are skipped; gfns are kept as they are.
 */
/** The options a caller gave, checked (the CLI checks its flags the same way). */
function checkOptions(fn: string, o: CsvOptions): void {
  objArg(`${fn}.options`, o, 'an object { pageSize, maxRecords? }');
  pageSizeArg(`${fn}.pageSize`, o.pageSize);
  if (o.maxRecords !== undefined) intArg(`${fn}.maxRecords`, o.maxRecords, 1, MAX_TRACE_RECORDS);
}

export function importCsv(lines: Iterable<string>, o: CsvOptions): Trace {
  checkOptions('importCsv', o);
  const recs = new Records(), bad = new Problems(), max = o.maxRecords ?? Infinity;
  let no = 0, last = 0, first = true;
  for (const raw of lines) {
    no++;
    if (recs.length === max) break;
    const line = raw.trim();
    if (line === '') continue;
    const f = line.split(',').map((x) => x.trim());
    if (first) {
      first = false;
      if (f.map((x) => x.toLowerCase()).join(',') === 'time_ns,gfn,op') continue;
    }
    if (f.length !== 3) {
      bad.add(no, `expected 3 fields time_ns,gfn,op, got ${f.length}: ${quote(line)}`);
      continue;
    }
    const [t, g, op] = f as [string, string, string];
    const time = Number(t), gfn = Number(g), kind = OPS[op.toLowerCase()];
    if (!/^\d+$/.test(t) || !Number.isSafeInteger(time)) bad.add(no, `time ${quote(t)} is not an integer ≥ 0`);
    else if (time < last) bad.add(no, `time ${time} is before the previous record's ${last}`);
    else if (!/^\d+$/.test(g) || gfn > MAX_GFN) bad.add(no, `gfn ${quote(g)} is not an integer in 0..${MAX_GFN}`);
    else if (kind === undefined) bad.add(no, `op ${quote(op)} is not r, w, read or write`);
    else {
      recs.push(time, gfn, kind);
      last = time;
    }
  }
  bad.check();
  return recs.trace(o.pageSize, (g) => g);
}

/** The page holding the byte `offset` past a hex address (BigInt beyond 2^52, where doubles round). */
function pageOf(hex: string, offset: number, pageSize: number): number {
  return hex.length <= 13
    ? Math.floor((parseInt(hex, 16) + offset) / pageSize)
    : Number((BigInt(`0x${hex}`) + BigInt(offset)) / BigInt(pageSize));
}

const LACKEY = /^\s*([ILSM])\s+([0-9a-fA-F]{1,16}),(\d+)\s*$/;

/**
 * valgrind lackey `--trace-mem=yes` output. L is a read, S a write, M (modify) a write; I is an
 * instruction fetch, which advances time and is a read only with includeFetches. An access
 * that straddles a page boundary touches both pages. Lines starting with `==` are valgrind's
 * messages. Pages are numbered densely in address order (docs/traces.md).
 */
export function importLackey(lines: Iterable<string>, o: LackeyOptions): Trace {
  checkOptions('importLackey', o);
  // 1 kHz … 1 THz: an instruction at most 1 ms, so 2^26 records stay within the 2^53 ns clock.
  numArg('importLackey.ips', o.ips, 1e3, 1e12);
  const recs = new Records(), bad = new Problems(), max = o.maxRecords ?? Infinity;
  const nsPerInstr = 1e9 / o.ips;
  let no = 0, instr = -1, time = 0;
  const touch = (page: number, op: TraceOp) => {
    if (recs.length < max) recs.push(time, page, op);
  };
  for (const raw of lines) {
    no++;
    if (recs.length === max) break;
    if (raw.startsWith('==') || raw.trim() === '') continue;
    const m = LACKEY.exec(raw);
    if (!m) {
      bad.add(no, `not a lackey line (" L|S|M addr,size" or "I  addr,size"): ${quote(raw)}`);
      continue;
    }
    const size = Number(m[3]);
    if (size < 1 || size > o.pageSize) {
      bad.add(no, `access size ${m[3]} is outside 1..${o.pageSize}`);
      continue;
    }
    const kind = m[1]!, hex = m[2]!;
    if (kind === 'I') {
      time = Math.floor(++instr * nsPerInstr);
      if (!o.includeFetches) continue;
    }
    const first = pageOf(hex, 0, o.pageSize), lastByte = pageOf(hex, size - 1, o.pageSize);
    const op = kind === 'S' || kind === 'M' ? TraceOp.WRITE : TraceOp.READ;
    touch(first, op);
    if (lastByte !== first) touch(lastByte, op);
  }
  bad.check();
  const pages = new Float64Array(new Set(recs.keys.subarray(0, recs.length))).sort();
  const rank = new Map<number, number>();
  pages.forEach((p, i) => rank.set(p, i));
  return recs.trace(o.pageSize, (p) => rank.get(p)!);
}
