import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../io/errors.ts';
import { prepareOutputDir, writeAtomic } from '../io/write.ts';
import { readRecords, writeResults, type RunRecord } from './output.ts';

interface Manifest {
  sweep: unknown;
  runs: number;
  shard: string | null;
  [k: string]: unknown;
}

function readManifest(dir: string): Manifest {
  try {
    return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  } catch (e) {
    throw new UsageError(`${dir} is not a sweep directory (manifest.json: ${(e as Error).message})`);
  }
}

/**
 * Merges shard directories of one sweep into `out`: the same runs.jsonl, runs.csv and metrics.md
 * an unsharded run writes. Refuses shards of different sweeps and an incomplete union.
 */
export function mergeSweeps(dirs: string[], out: string, warn: (message: string) => void = () => {}): RunRecord[] {
  prepareOutputDir(out);
  const manifests = dirs.map(readManifest);
  const first = JSON.stringify(manifests[0]!.sweep);
  manifests.forEach((m, i) => {
    if (JSON.stringify(m.sweep) !== first) throw new UsageError(`${dirs[i]} holds a different sweep than ${dirs[0]}`);
  });
  // Shards of one split only: a task resubmitted with another --shards would overlap or miss runs.
  const counts = new Set(manifests.map((m) => (m.shard === null ? 'none' : m.shard.split('/')[1])));
  if (counts.size > 1) throw new UsageError(`the directories hold shards of different counts (${manifests.map((m, i) => `${dirs[i]}: ${m.shard ?? 'whole sweep'}`).join(', ')})`);
  const byIndex = new Map<number, RunRecord>();
  for (const d of dirs) {
    const read = readRecords(d);
    for (const w of read.skipped) warn(`${w}; skipped`);
    for (const r of read.records) byIndex.set(r.index, r);
  }
  const total = manifests[0]!.runs;
  const missing = Array.from({ length: total }, (_, i) => i).filter((i) => !byIndex.has(i));
  if (missing.length > 0) {
    throw new UsageError(`the shards hold ${byIndex.size} of ${total} runs; missing ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''}`);
  }
  const records = [...byIndex.values()];
  writeResults(out, records);
  const { shard: _shard, startedAt: _s, finishedAt: _f, ...rest } = manifests[0]!;
  const failed = records.filter((r) => r.status === 'failed').length;
  writeAtomic(join(out, 'manifest.json'), JSON.stringify({ ...rest, shard: null, mergedFrom: dirs, completed: total - failed, failed }, null, 2) + '\n');
  return records.sort((a, b) => a.index - b.index);
}
