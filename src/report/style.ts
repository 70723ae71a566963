/** Shared look of the report's plots: size, fonts, a colour per series, and small multiples. */
import { textWidth, vegaModules } from './vega.ts';

/** Plot area of a single view; with axes and legend the SVG stays under the page's 836 px column. */
export const WIDTH = 640;
export const HEIGHT = 280;
/** Fonts in px; the SVG is drawn at its natural size on a ≥ 900 px window, so these are what a reader sees. */
export const FONT = { label: 12, title: 13 };

/** More series than this get one small panel each: past 20, categorical colours repeat or blur. */
export const MAX_COLOURS = 20;

/** tableau10 while it suffices (its hues are the most distinct), tableau20 up to 20 series. */
export function palette(n: number): string[] {
  const { scheme } = vegaModules().vega;
  const colours = (n <= 10 ? scheme('tableau10') : scheme('tableau20')) as string[];
  return colours.slice(0, Math.max(1, Math.min(n, MAX_COLOURS)));
}

export const CONFIG = {
  font: 'sans-serif',
  axis: { labelFontSize: FONT.label, titleFontSize: FONT.title, titleFontWeight: 'normal' as const, labelColor: '#333', titleColor: '#222' },
  legend: { labelFontSize: FONT.label, titleFontSize: FONT.label, symbolSize: 160, symbolStrokeWidth: 3, labelLimit: 0 },
  header: { labelFontSize: FONT.label, titleFontSize: FONT.title, titleFontWeight: 'normal' as const },
};

/**
 * The colour channel: one distinct colour per series, in `series` order, with the legend below
 * the plot (none for a single series or in small multiples, whose panel headers name them).
 */
export function colour(series: readonly string[], legend = true) {
  return {
    field: 'series',
    type: 'nominal' as const,
    sort: [...series],
    scale: { domain: [...series], range: palette(series.length) },
    // Never truncate a label (CONFIG's labelLimit 0): it names a configuration. As many
    // columns (up to 4) as the longest label fits, with its symbol and a gap.
    legend: legend && series.length > 1
      ? { orient: 'bottom' as const, title: null, columns: Math.max(1, Math.min(4, Math.floor(WIDTH / (Math.max(...series.map((l) => textWidth(l, FONT.label))) + 50)))) }
      : null,
  };
}

/** Whether a plot with this many series is drawn as small multiples. */
export const faceted = (series: readonly string[]) => series.length > MAX_COLOURS;

/** Height of one small multiple: a strip, so a long sweep stays scrollable and the x axes align. */
export const PANEL_HEIGHT = 80;

/**
 * Wraps a view (a mark and encoding, or a layer) into a strip per series, one under the other,
 * sharing the x scale: the x title is drawn once at the bottom and the y title once at the left
 * (as the row title), each strip headed by its series. The data stays at the top, held once.
 */
export function facetBySeries(description: string, data: readonly object[], series: readonly string[], yTitle: string, view: object, freeY = false) {
  return {
    description,
    config: CONFIG,
    data: { values: [...data] },
    facet: {
      row: {
        field: 'series', type: 'nominal' as const, sort: [...series], title: yTitle,
        header: { labelOrient: 'top' as const, labelAnchor: 'start' as const, labelAngle: 0, labelLimit: 0, labelPadding: 2, titleOrient: 'left' as const },
      },
    },
    spacing: 14,
    ...(freeY ? { resolve: { scale: { y: 'independent' as const } } } : {}),
    spec: { width: WIDTH, height: PANEL_HEIGHT, ...view },
  };
}
