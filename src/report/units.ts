/** Units for axis titles: a plot without them cannot be read, let alone published. */
import { METRIC_DOCS } from '../sweep/metrics-doc.ts';

/** The unit of a number in the run result (`downtime` → ms), as metrics.md gives it; null if unknown. */
export function metricUnit(path: string): string | null {
  const column = `result.${path.replace(/^result\./, '')}`;
  // Array elements (postcopy-latency-dist.3) are documented once, as .N.
  const doc = METRIC_DOCS[column] ?? METRIC_DOCS[column.replace(/\.\d+(?=\.|$)/g, '.N')];
  if (!doc) return null; // undocumented: say nothing rather than guess
  // Unitless: network-share is a ratio; the rest (emulator.seed) are names, not amounts.
  if (doc[0] === '') return /-share$/.test(column) ? 'fraction' : null;
  return doc[0];
}

/** Scenario fields by their last name segment; the schema spells most units into the name. */
const PARAM_UNITS: Array<[RegExp, string]> = [
  [/NsPerByte$/, 'ns/byte'],
  [/Ns$/, 'ns'],
  [/Ms$/, 'ms'],
  [/Mbps$/, 'Mbit/s'],
  [/Pct$/, '%'],
  [/^bytesPerSec$|Bandwidth$|^maxBandwidth$/, 'bytes/s'],
  [/PageSize$|^pageSize$|Bytes$|^bytesPer/, 'bytes'],
  [/^pages$|Pages$|^prefault(After|Before)$|^pfnBatch$|DirtyThreshold$/, 'pages'],
  [/^(zeroFraction|fraction|share|probability|hotProbability|writeFraction|compressionRatio)$/, 'fraction'],
  [/^capacity$/, 'slots'],
  [/^vcpus$/, 'vCPUs'],
  [/^(workers|channels|pivots|samples)$/, ''],
  [/Iterations$/, 'iterations'],
];

/**
 * The unit of a numeric sweep axis (`ring.capacity` → slots, `link.rateMbps` → Mbit/s); null for
 * settings that are names (mapper.request=page) or not known here.
 */
export function paramUnit(axis: string, values: readonly unknown[]): string | null {
  if (!values.every((v) => typeof v === 'number')) return null;
  const last = axis.split('.').at(-1)!;
  const hit = PARAM_UNITS.find(([re]) => re.test(last));
  if (!hit) return null;
  // Counts of things named by the field itself: the name is the unit.
  return hit[1] === '' ? last : hit[1];
}

/** "name (unit)", or the bare name when there is no unit to give. */
export const titled = (name: string, unit: string | null, ...more: string[]): string => {
  const inside = [unit, ...more].filter((s): s is string => !!s);
  return inside.length > 0 ? `${name} (${inside.join(', ')})` : name;
};

/** How many runs a mean is over: "mean of 2 runs", or "mean of 1–2 runs" when some failed. */
export function meanOf(counts: readonly number[]): string | null {
  const lo = Math.min(...counts), hi = Math.max(...counts);
  if (hi <= 1) return null;
  return lo === hi ? `mean of ${hi} runs` : `mean of ${lo}–${hi} runs`;
}

/** Timeline times (ns) in the unit that keeps their labels short: ms up to 10 s, else s. */
export function timeScale(maxNs: number): { unit: 'ms' | 's'; div: number } {
  return maxNs < 10e9 ? { unit: 'ms', div: 1e6 } : { unit: 's', div: 1e9 };
}
