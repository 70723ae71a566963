/** vega and vega-lite in Node: imported when a report is built (they are large), with a text measure. */
import type * as VegaApi from 'vega';
import type * as VegaLiteApi from 'vega-lite';
import { importExternal } from '../io/external.ts';

interface Modules {
  vega: typeof VegaApi;
  vegaLite: typeof VegaLiteApi;
}

let loaded: Modules | undefined;
let loading: Promise<Modules> | undefined;

/** Imports vega and vega-lite once; the report's specs (colours) and renders need them. */
export function loadVega(): Promise<Modules> {
  loading ??= Promise.all([importExternal('vega'), importExternal('vega-lite')]).then(([vega, vegaLite]) => {
    measureText(vega as typeof VegaApi);
    return (loaded = { vega: vega as typeof VegaApi, vegaLite: vegaLite as typeof VegaLiteApi });
  });
  return loading;
}

/** The modules loadVega() imported. */
export function vegaModules(): Modules {
  if (!loaded) throw new Error('vega is not loaded: await loadVega() first');
  return loaded;
}

// Vega in Node has no canvas and guesses text at 0.8 em a character: long axis titles then pad
// the SVG with blank space and legends spread out. Vega lets a caller replace the measure (vl-convert does).
function measureText(vega: typeof VegaApi): void {
  type Measured = { fontSize?: number; limit?: number };
  (vega as unknown as { textMetrics: { width: (item: Measured, text?: unknown) => number } }).textMetrics.width = (item, text) => {
    const w = textWidth(text == null ? '' : String(text).trim(), item.fontSize ?? 11);
    return item.limit !== undefined && item.limit > 0 ? Math.min(w, item.limit) : w;
  };
}

/** DejaVu Sans advance widths (‰ em) of a–z: Linux browsers' usual sans-serif, wider than Arial. */
const LOWER = [613, 635, 550, 635, 615, 352, 635, 634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 411, 521, 392, 634, 592, 818, 592, 592, 525];

/**
 * The width in px of a line of text, to within a few percent of DejaVu Sans (a little over for Arial).
 * µ, ≥, ≤ and × are escaped: an all-ASCII CLI bundle is read into a one-byte string, twice as fast.
 */
export function textWidth(text: string, fontSize: number): number {
  let em = 0;
  for (const ch of text) {
    const code = ch.charCodeAt(0);
    if (code >= 97 && code <= 122) em += LOWER[code - 97]! / 1000;
    else if (/[A-Z]/.test(ch)) em += /[IJ]/.test(ch) ? 0.3 : /[MW]/.test(ch) ? 0.92 : 0.72;
    else if (/[0-9\u00b5]/.test(ch)) em += 0.636;
    else if (/[ .,:;'|!]/.test(ch)) em += 0.32;
    else if (/[()[\]{}/\-]/.test(ch)) em += 0.39;
    else if (/[=+<>\u2265\u2264~\u00d7]/.test(ch)) em += 0.84;
    else if (/[%@]/.test(ch)) em += 0.95;
    else em += 0.64;
  }
  return em * fontSize;
}
