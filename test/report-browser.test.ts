import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import chromiumPkg from '@sparticuz/chromium';
import { chromium, type Browser, type ConsoleMessage, type Page, type Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadReportInput } from '../src/report/input.ts';
import { writeReport } from '../src/report/write.ts';
import { runResult, writeSweep, writeWideSweep } from './report-fixture.ts';

/** A distribution's Chromium when there is one; else the npm package's headless build (no root needed). */
const SYSTEM_CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
const SYSTEM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

/** Launches a Chromium, or fails (never skips: our rule) saying what was tried and why it failed. */
async function launch(): Promise<Browser> {
  const tried: string[] = [];
  const system = SYSTEM_CHROMIUM.find((p) => existsSync(p));
  if (system) {
    try {
      return await chromium.launch({ executablePath: system, args: SYSTEM_ARGS });
    } catch (e) {
      tried.push(`${system}: ${(e as Error).message.split('\n')[0]}`);
    }
  } else tried.push(`${SYSTEM_CHROMIUM.join(' and ')}: not installed`);
  try {
    return await chromium.launch({ executablePath: await chromiumPkg.executablePath(), args: chromiumPkg.args, headless: true });
  } catch (e) {
    tried.push(`@sparticuz/chromium: ${(e as Error).message.split('\n')[0]}`);
  }
  throw new Error(`the report's browser test found no Chromium it could launch (${tried.join('; ')}). `
    + 'Run npm ci (installs the devDependency @sparticuz/chromium), or install a system one as root: apt-get install -y chromium');
}

const dir = mkdtempSync(join(tmpdir(), 'postcopy-emu-report-browser-'));
let browser: Browser | undefined;
let page: Page | undefined;
let launchError: Error | undefined;
let dist: number[];

beforeAll(async () => {
  const run = runResult(['timeline.samples=1000']);
  dist = run['postcopy-latency-dist'] as number[];
  writeFileSync(join(dir, 'run.json'), JSON.stringify(run));
  writeSweep(join(dir, 'sweep'), { timeline: true });
  writeWideSweep(join(dir, 'wide'), 14);
  for (const [input, out] of [['run.json', 'run.html'], ['sweep', 'sweep/report.html'], ['wide', 'wide/report.html']]) {
    await writeReport(loadReportInput(join(dir, input!)), join(dir, out!));
  }
  // Kept, not thrown here: each test then fails with the reason.
  try {
    browser = await launch();
    // One page for every test: @sparticuz/chromium runs --single-process, which exits when a page closes.
    page = await browser.newPage({ viewport: { width: 900, height: 1200 } });
  } catch (e) {
    launchError = e as Error;
  }
}, 120_000);

afterAll(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Plot {
  id: string;
  width: number;
  height: number;
  lines: number;
  /** Length in px of the longest line mark: a line through its data, not a stub. */
  longestLine: number;
  symbols: number;
  bars: number;
  /** Bars taller than zero. */
  tallBars: number;
  /** Width in px of the narrowest bar taller than zero, as drawn. */
  narrowestBar: number;
  rules: number;
  /** Distinct stroke colours of the line marks, and fill colours of the bars. */
  lineColours: number;
  barColours: number;
  /** Every text drawn, and the smallest font size in px as seen on the screen. */
  texts: string[];
  smallestFont: number;
}

/** Opens a report as a person would (file://, 900 px wide) and measures every plot as drawn. */
async function open(file: string): Promise<{ plots: Plot[]; requests: string[]; errors: string[]; overflow: number }> {
  if (!page) throw launchError!;
  const requests: string[] = [];
  const errors: string[] = [];
  const onRequest = (r: Request) => requests.push(r.url());
  const onConsole = (m: ConsoleMessage) => { if (m.type() === 'error' || m.type() === 'warning') errors.push(m.text()); };
  const onError = (e: Error) => errors.push(e.message);
  page.on('request', onRequest).on('console', onConsole).on('pageerror', onError);
  try {
    await page.goto(pathToFileURL(file).href);
    const plots = await page.evaluate(() => [...document.querySelectorAll('figure')].map((f) => {
      const all = (sel: string) => [...f.querySelectorAll(sel)] as SVGGraphicsElement[];
      const svg = f.querySelector('svg')!;
      const box = svg.getBoundingClientRect();
      // The SVG is scaled to fit the column: a font's size on screen is its size times that scale.
      const scale = box.width / svg.width.baseVal.value;
      const bars = all('.mark-rect.role-mark path');
      const tall = bars.filter((p) => p.getBBox().height > 0);
      const lines = all('.mark-line.role-mark path');
      const texts = all('text');
      return {
        id: f.id,
        width: box.width,
        height: box.height,
        lines: lines.length,
        longestLine: Math.max(0, ...lines.map((p) => (p as SVGPathElement).getTotalLength())),
        symbols: all('.mark-symbol.role-mark path').length,
        bars: bars.length,
        tallBars: tall.length,
        narrowestBar: Math.min(...tall.map((p) => p.getBoundingClientRect().width)),
        rules: all('.mark-rule.role-mark line').length,
        lineColours: new Set(lines.map((p) => p.getAttribute('stroke'))).size,
        barColours: new Set(bars.map((p) => p.getAttribute('fill'))).size,
        texts: texts.map((t) => t.textContent ?? ''),
        smallestFont: Math.min(...texts.map((t) => parseFloat(getComputedStyle(t).fontSize) * scale)),
      };
    }));
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    return { plots, requests, errors, overflow };
  } finally {
    page.off('request', onRequest).off('console', onConsole).off('pageerror', onError);
  }
}

const byId = (plots: Plot[]) => Object.fromEntries(plots.map((p) => [p.id, p]));

describe('the report in Chromium', () => {
  it('shows a run: four plots drawn with their data, nothing fetched', async () => {
    const { plots, requests, errors, overflow } = await open(join(dir, 'run.html'));
    expect(requests).toEqual([pathToFileURL(join(dir, 'run.html')).href]);
    expect(errors).toEqual([]);
    expect(overflow).toBe(0);
    expect(plots.map((p) => p.id)).toEqual(['plot-latency-cdf', 'plot-latency-histogram', 'plot-ring-occupancy', 'plot-pages-resident']);
    for (const p of plots) {
      expect(p.width).toBeGreaterThan(600);
      expect(p.height).toBeGreaterThan(250);
    }
    const { 'plot-latency-cdf': cdf, 'plot-latency-histogram': hist, 'plot-ring-occupancy': ring, 'plot-pages-resident': pages } = byId(plots);
    expect(cdf).toMatchObject({ lines: 1, symbols: 21 });
    expect(cdf!.longestLine).toBeGreaterThan(300);
    // The buckets from the first to the last with a fault: 1,024 µs … 32,768 µs.
    const used = dist.filter((n) => n > 0).length;
    expect(hist).toMatchObject({ bars: 6, tallBars: used });
    expect(hist!.tallBars).toBeGreaterThanOrEqual(5);
    expect(hist!.narrowestBar).toBeGreaterThan(30);
    // The storm's ring is empty or full: bars at 0 and 8 of the 9 occupancies.
    expect(ring).toMatchObject({ bars: 9, tallBars: 2, lines: 0 });
    expect(ring!.narrowestBar).toBeGreaterThan(30);
    expect(pages).toMatchObject({ lines: 1, rules: 1 });
    expect(pages!.longestLine).toBeGreaterThan(600);
  });

  it('shows a sweep: the metric chart and a series per configuration, each in its own colour', async () => {
    const { plots, requests, errors, overflow } = await open(join(dir, 'sweep', 'report.html'));
    expect(requests).toHaveLength(1);
    expect(errors).toEqual([]);
    expect(overflow).toBe(0);
    const p = byId(plots);
    expect(Object.keys(p)).toEqual(['plot-metric', 'plot-latency-cdf', 'plot-latency-histogram', 'plot-ring-occupancy', 'plot-pages-resident']);
    expect(p['plot-metric']).toMatchObject({ lines: 2, lineColours: 2, symbols: 4, rules: 4 });
    expect(p['plot-metric']!.longestLine).toBeGreaterThan(300);
    expect(p['plot-latency-cdf']).toMatchObject({ lines: 4, lineColours: 4, symbols: 84 });
    // 9 buckets (1.02 … 262 ms) and 9 occupancies (0 … 8 slots), a bar for each configuration side by side.
    expect(p['plot-latency-histogram']).toMatchObject({ bars: 4 * 9, barColours: 4 });
    expect(p['plot-latency-histogram']!.tallBars).toBeGreaterThanOrEqual(12);
    expect(p['plot-latency-histogram']!.narrowestBar).toBeGreaterThan(6);
    expect(p['plot-ring-occupancy']).toMatchObject({ bars: 4 * 9, barColours: 4 });
    expect(p['plot-ring-occupancy']!.narrowestBar).toBeGreaterThan(6);
    // The configurations' guests are the same size: one dashed line at all their pages.
    expect(p['plot-pages-resident']).toMatchObject({ lines: 4, lineColours: 4, rules: 1 });
    for (const plot of plots) expect(plot.width * plot.height).toBeGreaterThan(600 * 250);
  });

  it('titles every axis with its unit, in text of 11 px or more', async () => {
    const { plots } = await open(join(dir, 'sweep', 'report.html'));
    const p = byId(plots);
    const titles: Record<string, string[]> = {
      'plot-metric': ['ring.capacity (slots)', 'downtime (ms, mean of 1–2 runs)'],
      'plot-latency-cdf': ['fault latency (µs, log scale)', 'faults answered within x (%)'],
      'plot-latency-histogram': ['fault latency bucket (ms, lower bound)', 'faults (count, mean of 1–2 runs)'],
      'plot-ring-occupancy': ['ring occupancy (slots holding a request)', 'share of time (%, mean of 1–2 runs)'],
      'plot-pages-resident': ['simulated time (ms)', 'pages resident (pages of 4 KiB)'],
    };
    for (const [id, want] of Object.entries(titles)) expect(p[id]!.texts).toEqual(expect.arrayContaining(want));
    expect(p['plot-latency-histogram']!.texts).toEqual(expect.arrayContaining(['1.02', '8.19', '262']));
    for (const plot of plots) expect(plot.smallestFont).toBeGreaterThanOrEqual(11);
  });

  it('shows 14 configurations in 14 colours, their histogram as a strip each with wide bars', async () => {
    const { plots, errors, overflow } = await open(join(dir, 'wide', 'report.html'));
    expect(errors).toEqual([]);
    expect(overflow).toBe(0);
    const p = byId(plots);
    expect(p['plot-latency-cdf']).toMatchObject({ lines: 14, lineColours: 14 });
    expect(p['plot-pages-resident']).toMatchObject({ lines: 14, lineColours: 14 });
    // 8 buckets (1.02 … 131 ms) × 14 configurations would be 5 px bars side by side.
    expect(p['plot-latency-histogram']).toMatchObject({ bars: 14 * 8, barColours: 14 });
    expect(p['plot-latency-histogram']!.texts).toEqual(expect.arrayContaining(['1.02', '131', 'fault latency bucket (ms, lower bound)']));
    expect(p['plot-latency-histogram']!.narrowestBar).toBeGreaterThan(30);
    expect(p['plot-latency-histogram']!.texts).toEqual(expect.arrayContaining(['source.pivots=1', 'source.pivots=14', 'faults (count)']));
    for (const plot of plots) expect(plot.smallestFont).toBeGreaterThanOrEqual(11);
  });
});
