import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.ts';
import { runResult, writeSweep } from './report-fixture.ts';

/** Debian's Chromium: .ci/run installs it when it is missing. */
const CHROMIUM = '/usr/bin/chromium';

const dir = mkdtempSync(join(tmpdir(), 'postcopy-emu-report-browser-'));
let browser: Browser;
let dist: number[];

/** Each test fails (not skips: our rule) with how to get Chromium when it is not there. */
const missing = existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing; the report's browser test needs it: install it as root with `
  + '`apt-get update && apt-get install -y chromium` (bash .ci/run does this before npm test)';

beforeAll(async () => {
  const run = runResult(['timeline.samples=1000']);
  dist = run['postcopy-latency-dist'] as number[];
  writeFileSync(join(dir, 'run.json'), JSON.stringify(run));
  writeSweep(join(dir, 'sweep'), { timeline: true });
  for (const input of [join(dir, 'run.json'), join(dir, 'sweep')]) {
    expect(await main(['node', 'postcopy-emu', 'report', input], () => {})).toBe(0);
  }
  if (missing) return;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}, 60_000);

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
  /** Bars taller than zero: one per non-empty bucket. */
  tallBars: number;
  rules: number;
}

/** Opens a report as a person would (file://, 900 px wide) and measures every plot as drawn. */
async function open(file: string): Promise<{ plots: Plot[]; requests: string[]; errors: string[]; overflow: number }> {
  if (missing) throw new Error(missing);
  const page = await browser.newPage({ viewport: { width: 900, height: 1200 } });
  const requests: string[] = [];
  const errors: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(e.message));
  try {
    await page.goto(pathToFileURL(file).href);
    const plots = await page.evaluate(() => [...document.querySelectorAll('figure')].map((f) => {
      const all = (sel: string) => [...f.querySelectorAll(sel)] as SVGGraphicsElement[];
      const box = f.querySelector('svg')!.getBoundingClientRect();
      return {
        id: f.id,
        width: box.width,
        height: box.height,
        lines: all('.mark-line.role-mark path').length,
        longestLine: Math.max(0, ...all('.mark-line.role-mark path').map((p) => (p as SVGPathElement).getTotalLength())),
        symbols: all('.mark-symbol.role-mark path').length,
        bars: all('.mark-rect.role-mark path').length,
        tallBars: all('.mark-rect.role-mark path').filter((p) => p.getBBox().height > 0).length,
        rules: all('.mark-rule.role-mark line').length,
      };
    }));
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    return { plots, requests, errors, overflow };
  } finally {
    await page.close();
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
    expect(hist).toMatchObject({ bars: 24, tallBars: dist.filter((n) => n > 0).length });
    expect(hist!.tallBars).toBeGreaterThanOrEqual(5);
    // The ring fills and drains hundreds of times: the step line is far longer than the plot is wide.
    expect(ring).toMatchObject({ lines: 1, rules: 1 });
    expect(ring!.longestLine).toBeGreaterThan(10_000);
    expect(pages).toMatchObject({ lines: 1, rules: 1 });
    expect(pages!.longestLine).toBeGreaterThan(600);
  });

  it('shows a sweep: the metric chart and a series per configuration', async () => {
    const { plots, requests, errors, overflow } = await open(join(dir, 'sweep', 'report.html'));
    expect(requests).toHaveLength(1);
    expect(errors).toEqual([]);
    expect(overflow).toBe(0);
    const p = byId(plots);
    expect(Object.keys(p)).toEqual(['plot-metric', 'plot-latency-cdf', 'plot-latency-histogram', 'plot-ring-occupancy', 'plot-pages-resident']);
    expect(p['plot-metric']).toMatchObject({ lines: 2, symbols: 4, rules: 4 });
    expect(p['plot-metric']!.longestLine).toBeGreaterThan(300);
    expect(p['plot-latency-cdf']).toMatchObject({ lines: 4, symbols: 84 });
    expect(p['plot-latency-histogram']!.bars).toBe(96);
    expect(p['plot-latency-histogram']!.tallBars).toBeGreaterThanOrEqual(12);
    // The configurations' rings differ in size (2, 8), so no one capacity line; the guests do not.
    expect(p['plot-ring-occupancy']).toMatchObject({ lines: 4, rules: 0 });
    expect(p['plot-pages-resident']).toMatchObject({ lines: 4, rules: 1 });
    for (const plot of plots) expect(plot.width * plot.height).toBeGreaterThan(600 * 250);
  });
});
