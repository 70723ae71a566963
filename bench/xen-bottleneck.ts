/**
 * The measurements behind docs/xen-bottleneck.md: the four xen-2017 presets and a sweep of the
 * storm over mapping pattern, push policy, ring capacity, link rate and retry interval, with and
 * without range population. Prints markdown tables. Run: node --import tsx bench/xen-bottleneck.ts
 */
import { Emulator } from '../src/emulator.ts';
import { applySets, presetInput } from '../src/scenario/load.ts';
import { CORE_COMPARISON } from '../src/scenario/presets.ts';

const sec = (ns: number) => (ns / 1e9).toFixed(2);

function run(preset: string, sets: string[]): Emulator {
  return new Emulator(applySets(presetInput(preset), sets)).run();
}

/** Downtime only: the run stops when the guest resumes (or at the one-hour horizon). */
function downtime(sets: string[]): string {
  const e = run('xen-2017-pure', [...sets, 'limits.stopAt=resume']);
  return e.resumedAt >= 0 ? sec(e.resumedAt) : `> ${sec(e.scenario.limits.horizonNs)}`;
}

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

// 1. The presets next to the seed (suspend duration = our downtime).
const seed: Record<string, string> = { 'xen-2017-pure': '21.93', 'xen-2017-hybrid': '3.23' };
console.log('## Presets (1 Gbit/s, 8 slots)\n');
console.log(table(['preset', 'downtime (s)', 'seed (s)', 'eviction (s)', 'wire limit (s)', 'ring full (s)', 'EBUSY', 'postcopy after resume (s)'],
  CORE_COMPARISON.map((p) => {
    const e = run(p, []);
    const wire = e.stream.serialiseNs(e.memory.outstandingAtStart * (e.memory.pageSize + 8) + 16 * Math.ceil(e.memory.outstandingAtStart / 64));
    return [p, sec(e.resumedAt), seed[p.replace('-range', '')] ?? '', sec(e.pager.evictionNs), sec(wire), sec(e.ring.timeFull(e.kernel.now)), String(e.ring.ebusy),
      sec(Math.max(0, Math.max(e.source.completeAt, e.resumedAt) - e.resumedAt))];
  })));

// 2. The sweep: downtime (s) of the pure storm.
const patterns: Array<[string, string[]]> = [
  ['all RAM, ascending', []],
  ['2048 × 1 MiB buckets in order (all RAM)', ['mapper.mapping={kind: buckets, count: 2048}']],
  ['256 × 1 MiB buckets, random', ['mapper.mapping={kind: buckets, count: 256}', 'mapper.order=random']],
];
const policies = ['xen', 'demand'];
const capacities = [1, 8, 64, 512];
for (const rate of [1000, 10000]) {
  console.log(`\n## Downtime (s) of the pure storm at ${rate / 1000} Gbit/s by ring capacity\n`);
  const rows: string[][] = [];
  for (const [pname, psets] of patterns) {
    for (const policy of policies) {
      for (const request of ['page', 'range']) {
        rows.push([pname, policy, request, ...capacities.map((c) => downtime([
          ...psets, `source.policy=${policy}`, `mapper.request=${request}`, `ring.capacity=${c}`,
          `link.rateMbps=${rate}`, `backChannel.rateMbps=${rate}`,
        ]))]);
      }
    }
  }
  console.log(table(['mapping', 'push', 'request', ...capacities.map((c) => `${c} slots`)], rows));
}

console.log('\n## Downtime (s) by mapper retry interval (8 slots, 1 Gbit/s, demand paging)\n');
const retries = [10_000, 100_000, 1_000_000];
const rrows: string[][] = [];
for (const [pname, psets] of patterns) {
  for (const request of ['page', 'range']) {
    rrows.push([pname, request, ...retries.map((r) => downtime([
      ...psets, 'source.policy=demand', `mapper.request=${request}`, `mapper.retryNs=${r}`,
    ]))]);
  }
}
console.log(table(['mapping', 'request', ...retries.map((r) => `${r / 1000} µs`)], rrows));

console.log('\n## Downtime (s) by send buffer (8 slots, 1 Gbit/s, Xen push)\n');
const buffers = [16_384, 262_144, 4_194_304];
const brows: string[][] = [];
for (const [pname, psets] of patterns) {
  for (const request of ['page', 'range']) {
    brows.push([pname, request, ...buffers.map((b) => downtime([
      ...psets, `mapper.request=${request}`, `link.sendBufferBytes=${b}`, `link.receiveBufferBytes=${b}`,
    ]))]);
  }
}
console.log(table(['mapping', 'request', ...buffers.map((b) => `${b / 1024} KiB`)], brows));
