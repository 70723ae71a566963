import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliHarness } from './cli-harness.ts';
import { BUCKET_LABELS, formatMicros, geometric } from '../src/report/charts.ts';
import { configsOf, meanCdf, metricPoints } from '../src/report/configs.ts';
import { loadReportInput, type SweepInput } from '../src/report/input.ts';
import { runResult, writeSweep } from './report-fixture.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'postcopy-emu-report-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Result = { downtime: number; 'postcopy-latency-dist': number[]; emulator: { 'fault-latency': { count: number; cdf: number[] }; timeline: { t: number[] } } };

let run: Result;
let runJson: string, plainJson: string, sweepDir: string, plainSweepDir: string;
beforeAll(async () => {
  runJson = join(dir, 'storm.json');
  expect(await cli('run', '--preset', 'xen-2017-pure', '--set', 'memory.pages=16384', '--set', 'workload.region={start: 4096, count: 4096}',
    '--timeline', '--json', runJson)).toMatchObject({ code: 0 });
  run = JSON.parse(readFileSync(runJson, 'utf8')) as Result;
  plainJson = join(dir, 'plain.json');
  writeFileSync(plainJson, JSON.stringify(runResult([])));
  sweepDir = join(dir, 'sweep');
  writeSweep(sweepDir, { timeline: true });
  plainSweepDir = join(dir, 'plain-sweep');
  writeSweep(plainSweepDir, { timeline: false });
});

const cli = cliHarness();


/** The inner HTML of `<figure id=ID>`, or null. */
function figureOf(html: string, id: string): string | null {
  return new RegExp(`<figure id="${id}">([\\s\\S]*?)</figure>`).exec(html)?.[1] ?? null;
}

/** The aria-labels of the data marks of one kind (line, rect, symbol, rule): one per mark element. */
function marks(svg: string, kind: string): string[] {
  const out: string[] = [];
  for (const g of svg.matchAll(new RegExp(`<g class="mark-${kind} role-mark[^"]*"[^>]*>((?:<(?:path|line)[^>]*/>)*)</g>`, 'g'))) {
    for (const m of g[1]!.matchAll(/<(?:path|line) aria-label="([^"]*)"/g)) out.push(m[1]!);
  }
  return out;
}

/** The `d` of each line mark's path. */
const linePaths = (svg: string) => [...svg.matchAll(/<g class="mark-line role-mark[^"]*"[^>]*><path [^>]*\bd="([^"]*)"/g)].map((m) => m[1]!);

/** The page with the SVG namespace declarations removed: any URL left would be fetched or followed. */
const withoutNamespaces = (html: string) => html.replace(/ xmlns(:xlink)?="http:\/\/www\.w3\.org\/[^"]*"/g, '');

describe('report of one run', () => {
  let html: string;
  beforeAll(async () => {
    const r = await cli('report', runJson);
    expect(r).toMatchObject({ code: 0, out: `${join(dir, 'storm.html')}\n` });
    html = readFileSync(join(dir, 'storm.html'), 'utf8');
  });

  it('is one self-contained page: no scripts, stylesheets, fonts or images to fetch', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|url\(\s*['"]?http|src=/i);
    expect(withoutNamespaces(html)).not.toMatch(/https?:\/\//);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('has the four plots, each an SVG with data marks', () => {
    const ids = [...html.matchAll(/<figure id="([^"]+)"/g)].map((m) => m[1]);
    expect(ids).toEqual(['plot-latency-cdf', 'plot-latency-histogram', 'plot-ring-occupancy', 'plot-pages-resident']);
    for (const id of ids) {
      const fig = figureOf(html, id!)!;
      expect(fig).toMatch(/<h2>[^<]+<\/h2><p>[^<]{80,}<\/p>/);
      expect(fig).toContain('<svg ');
      expect(fig).toMatch(/ d="M\d/);
    }
  });

  it('plots the 21 CDF quantiles at their latencies in µs', () => {
    const points = marks(figureOf(html, 'plot-latency-cdf')!, 'symbol');
    expect(points).toHaveLength(21);
    const cdf = run.emulator['fault-latency'].cdf;
    expect(points[0]).toContain('fraction of faults with latency ≤ x: 0%;');
    expect(points[20]).toContain(`fault latency (µs, log scale): ${cdf[20]! / 1000};`);
    expect(points[20]).toContain('fraction of faults with latency ≤ x: 100%;');
    expect(linePaths(figureOf(html, 'plot-latency-cdf')!)).toHaveLength(1);
  });

  it('draws the 24 log2 buckets with their counts and labels', () => {
    const bars = marks(figureOf(html, 'plot-latency-histogram')!, 'rect');
    expect(bars).toHaveLength(24);
    const dist = run['postcopy-latency-dist'];
    expect(dist.reduce((a, b) => a + b, 0)).toBe(run.emulator['fault-latency'].count);
    bars.forEach((b, i) => expect(b).toContain(`fault latency bucket (lower bound): ${BUCKET_LABELS[i]}; faults: ${dist[i]};`));
    expect(figureOf(html, 'plot-latency-histogram')).toMatch(/>1 µs<.*>2 µs<.*>512 µs<.*>1.02 ms<.*>≥ 8.39 s</s);
  });

  it('draws ring occupancy and pages resident over every sample, with the limits dashed', () => {
    const n = run.emulator.timeline.t.length;
    expect(n).toBeGreaterThan(500);
    const ring = figureOf(html, 'plot-ring-occupancy')!;
    // A step line has two vertices per sample after the first.
    expect(linePaths(ring)[0]!.split(/[LHV]/).length).toBeGreaterThanOrEqual(n);
    expect(ring).toContain('capacity (8)');
    expect(ring).toContain('stroke-dasharray="6,4"');
    const pages = figureOf(html, 'plot-pages-resident')!;
    expect(linePaths(pages)[0]!.split('L')).toHaveLength(n);
    expect(pages).toContain('all 16384 pages');
  });

  it('tabulates the main figures', () => {
    expect(html).toContain('<td class="label">downtime (ms)</td>');
    expect(html).toContain(`<td>${run.downtime.toLocaleString('en-US', { maximumFractionDigits: 3 })}</td>`);
    expect(html).toContain(`<td class="label">faults</td><td>${run.emulator['fault-latency'].count.toLocaleString('en-US')}</td>`);
    expect(html).toContain('<title>postcopy-emu report: xen-2017-pure</title>');
  });

  it('gives every element id once, and renders the same bytes twice', async () => {
    const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
    const again = join(dir, 'again.html');
    expect((await cli('report', runJson, '-o', again)).code).toBe(0);
    expect(readFileSync(again, 'utf8')).toBe(html);
  });

  it('says how to get a timeline when the run has none', async () => {
    expect((await cli('report', plainJson)).code).toBe(0);
    const plain = readFileSync(join(dir, 'plain.html'), 'utf8');
    expect(figureOf(plain, 'plot-ring-occupancy')).toBeNull();
    expect(plain).toMatch(/<section class="note" id="note-timeline">.*--timeline \(or --set timeline.samples=1000\)/);
    expect(figureOf(plain, 'plot-latency-cdf')).toContain('<svg ');
  });
});

describe('report of a sweep', () => {
  let html: string;
  beforeAll(async () => {
    expect(await cli('report', sweepDir)).toMatchObject({ code: 0, out: `${join(sweepDir, 'report.html')}\n` });
    html = readFileSync(join(sweepDir, 'report.html'), 'utf8');
  });

  it('draws downtime against the first axis, a line per value of the other', () => {
    const fig = figureOf(html, 'plot-metric')!;
    expect(fig).toContain('<h2>downtime against ring.capacity</h2>');
    expect(linePaths(fig)).toHaveLength(2);
    const points = marks(fig, 'symbol');
    expect(points).toHaveLength(4);
    expect(points.filter((p) => p.includes('series: mapper.request=range'))).toHaveLength(2);
    // Replication spread: one bar per configuration.
    expect(marks(fig, 'rule')).toHaveLength(4);
    expect(fig).toMatch(/>mapper.request=page<.*>mapper.request=range</s);
  });

  it('averages the metric over the successful replications', () => {
    const input = loadReportInput(sweepDir) as SweepInput;
    const configs = configsOf(input);
    expect(configs.map((c) => [c.label, c.results.length, c.failed.length])).toEqual([
      ['ring.capacity=2, mapper.request=page', 2, 0],
      ['ring.capacity=2, mapper.request=range', 2, 0],
      ['ring.capacity=8, mapper.request=page', 2, 0],
      ['ring.capacity=8, mapper.request=range', 1, 1],
    ]);
    const downtimes = input.records.map((r) => r.result?.downtime);
    const points = metricPoints(input, configs, 'downtime', 'ring.capacity');
    expect(points.map((p) => [p.x, p.series, p.n])).toEqual([
      [2, 'mapper.request=page', 2], [2, 'mapper.request=range', 2], [8, 'mapper.request=page', 2], [8, 'mapper.request=range', 1],
    ]);
    expect(points[0]!.mean).toBeCloseTo((downtimes[0]! + downtimes[1]!) / 2, 9);
    expect(points[3]).toMatchObject({ mean: downtimes[6], min: downtimes[6], max: downtimes[6] });
    // The CDF of a configuration is the mean of its replications' quantiles.
    const cdfs = input.records.slice(4, 6).map((r) => r.result!.emulator['fault-latency'].cdf);
    expect(meanCdf(configs[2]!)![10]).toBe((cdfs[0]![10]! + cdfs[1]![10]!) / 2);
    expect(input.tornLines).toBe(1);
  });

  it('has a CDF line and 24 bars per configuration, and the timelines', () => {
    expect(linePaths(figureOf(html, 'plot-latency-cdf')!)).toHaveLength(4);
    expect(marks(figureOf(html, 'plot-latency-cdf')!, 'symbol')).toHaveLength(84);
    expect(marks(figureOf(html, 'plot-latency-histogram')!, 'rect')).toHaveLength(96);
    expect(linePaths(figureOf(html, 'plot-ring-occupancy')!)).toHaveLength(4);
    expect(linePaths(figureOf(html, 'plot-pages-resident')!)).toHaveLength(4);
  });

  it('tabulates each configuration and lists the failed run with its error', () => {
    const summary = /<table id="summary">([\s\S]*?)<\/table>/.exec(html)![1]!;
    expect(summary.match(/<tr>/g)).toHaveLength(5);
    expect(summary).toContain('<th class="label">ring.capacity</th><th class="label">mapper.request</th><th>runs ok</th>');
    expect(summary).toContain('<td class="label">8</td><td class="label">range</td><td>1/2</td><td>completed</td>');
    expect(summary).toContain('<td class="label">2</td><td class="label">page</td><td>2/2</td><td>completed ×2</td>');
    const failed = /<table id="failed">([\s\S]*?)<\/table>/.exec(html)![1]!;
    expect(failed).toContain('<td class="label">7</td><td class="label">ring.capacity=8, mapper.request=range</td><td>1</td><td>worker crashed: out of memory</td>');
    expect(html).toContain('<dd>8 of 8 recorded, 1 failed; 1 unreadable line(s) of an interrupted sweep skipped</dd>');
    expect(html).toContain('<dd>postcopy-emu 0.1.0 (abcdef012345)</dd>');
  });

  it('plots any metric against any axis', async () => {
    const out = join(dir, 'ebusy.html');
    expect((await cli('report', sweepDir, '-o', out, '--metric', 'result.emulator.ring.ebusy', '--axis', 'mapper.request')).code).toBe(0);
    const fig = figureOf(readFileSync(out, 'utf8'), 'plot-metric')!;
    expect(fig).toContain('<h2>emulator.ring.ebusy against mapper.request</h2>');
    expect(fig).toMatch(/>ring.capacity=2<.*>ring.capacity=8</s);
    const points = marks(fig, 'symbol');
    expect(points).toHaveLength(4);
    expect(points[0]).toMatch(/^mapper.request: page; emulator.ring.ebusy \(mean\): [\d,.]+; series: ring.capacity=2$/);
  });

  it('says how to get timelines when the runs have none', async () => {
    expect((await cli('report', plainSweepDir)).code).toBe(0);
    const plain = readFileSync(join(plainSweepDir, 'report.html'), 'utf8');
    expect(figureOf(plain, 'plot-pages-resident')).toBeNull();
    expect(plain).toMatch(/id="note-timeline">.*The sweep's runs had no timeline\..*--set timeline.samples=1000/);
  });
});

describe('helpers', () => {
  it('labels buckets by their lower bound in the unit a person would say', () => {
    expect([BUCKET_LABELS[0], BUCKET_LABELS[1], BUCKET_LABELS[9], BUCKET_LABELS[10], BUCKET_LABELS[19], BUCKET_LABELS[20], BUCKET_LABELS[23]])
      .toEqual(['1 µs', '2 µs', '512 µs', '1.02 ms', '524 ms', '1.05 s', '≥ 8.39 s']);
    expect(formatMicros(400)).toBe('400 µs');
  });

  it('puts geometric axes on a log scale only', () => {
    expect(geometric([1, 2, 4, 8, 16])).toBe(true);
    expect(geometric([1000, 10_000, 100_000])).toBe(true);
    expect(geometric([2, 8])).toBe(false);
    expect(geometric([10, 20, 30, 40, 50, 60, 70, 80, 90])).toBe(false);
    expect(geometric(['page', 'range'])).toBe(false);
  });
});

describe('bad input: one line on stderr, exit 2, nothing written', () => {
  const bad = async (args: string[], message: RegExp) => {
    const before = readdirSync(dir).length;
    const r = await cli('report', ...args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(r.err.split('\n')).toHaveLength(2);
    expect(readdirSync(dir).length).toBe(before);
  };

  it('a missing file', () => bad([join(dir, 'nope.json')], /^postcopy-emu: cannot read .*nope\.json: ENOENT\n$/));

  it('a file that is not JSON, or not a run result', async () => {
    const text = join(dir, 'text.json');
    writeFileSync(text, 'hello');
    await bad([text], /text\.json is not JSON: /);
    const other = join(dir, 'other.json');
    writeFileSync(other, JSON.stringify({ status: 'completed', downtime: 1 }));
    await bad([other], /other\.json is not a postcopy-emu run result \(run --json\): total-time: /);
  });

  it('a directory that is not a sweep, or holds a bad record', async () => {
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    await bad([empty], /empty is not a sweep directory: it has no manifest\.json/);
    const broken = join(dir, 'broken');
    writeSweep(broken, { timeline: false });
    const lines = readFileSync(join(broken, 'runs.jsonl'), 'utf8').split('\n');
    writeFileSync(join(broken, 'runs.jsonl'), [lines[0], JSON.stringify({ index: 1, config: 0 }), ...lines.slice(2)].join('\n'));
    await bad([broken], /runs\.jsonl line 2 is not a sweep run record: replication: /);
    writeFileSync(join(broken, 'runs.jsonl'), [lines[0]!.replace('"ring.capacity":2,', ''), ...lines.slice(1)].join('\n'));
    await bad([broken], /runs\.jsonl line 1: params has no value for the axis ring\.capacity/);
    writeFileSync(join(broken, 'manifest.json'), JSON.stringify({ tool: 'other' }));
    await bad([broken], /manifest\.json is not a postcopy-emu sweep manifest: tool: /);
    expect(existsSync(join(broken, 'report.html'))).toBe(false);
  });

  it('an axis or metric the sweep does not have', async () => {
    await bad([sweepDir, '--axis', 'link.rateMbps'], /--axis link\.rateMbps: not an axis of this sweep \(axes: ring\.capacity, mapper\.request\)/);
    await bad([sweepDir, '--metric', 'emulator.nope'], /--metric emulator\.nope: no such field/);
    await bad([sweepDir, '--metric', 'status'], /--metric status: not a number in every run \(got "completed"/);
    await bad([runJson, '--metric', 'downtime'], /--metric and --axis apply to a sweep directory/);
  });

  it('an output that cannot be written', () => bad([runJson, '-o', join(dir, 'no-dir', 'r.html')], /cannot write .*r\.html: ENOENT/));

  it('exits 2 from the installed command too', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/postcopy-emu.mjs'), 'report', join(dir, 'missing')], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^postcopy-emu: cannot read .*missing: ENOENT\n$/);
  });
});
