import type { Link } from '../link/link.ts';
import { drainPerRequestNsOf, notifyNsOf, type Scenario } from '../scenario/schema.ts';
import { faultBytes, pageDataBytes } from '../stream/records.ts';

/** The checker's liveness bound when `limits.livenessNs` is unset: this much beyond the scenario's own longest wait. */
export const LIVENESS_MARGIN_NS = 60e9;

/** Every per-operation cost of the postcopy path: the `…Ns` fields of these sections. */
const COST_SECTIONS = ['source', 'pager', 'mapper'] as const;

/**
 * How long a vCPU may stay blocked once faults have healed before the checker calls it stalled:
 * `limits.livenessNs` when set; otherwise 60 s beyond the longest a fault can legitimately wait
 * here. That wait is bounded generously by every page of the guest served alone, one after
 * another: each page pays every per-operation cost once (a new cost field counts without being
 * named here), its fault record and its data at the slowest rate the run can give them, and
 * each link's buffers drain and its latency is crossed four times. A fixed 60 s flagged valid
 * scenarios with extreme costs (a 100 s link latency, a 1 s page load) as stalls.
 */
export function livenessBoundNs(s: Scenario, stream: Link, back: Link): number {
  if (s.limits.livenessNs !== undefined) return s.limits.livenessNs;
  // The pager's costs as the run takes them: those left unset follow the placement.
  const resolved = { ...s, pager: { ...s.pager, notifyNs: notifyNsOf(s), drainPerRequestNs: drainPerRequestNsOf(s) } };
  let perPageNs = 0;
  for (const section of COST_SECTIONS) {
    for (const [field, v] of Object.entries(resolved[section])) if (field.endsWith('Ns') && typeof v === 'number') perPageNs += v;
  }
  // The slowest rate a record can get: a degraded link, the postcopy rate limit, the preempt share.
  let streamMbps = s.link.rateMbps, backMbps = s.backChannel.rateMbps, latency = Math.max(s.link.latencyNs, s.backChannel.latencyNs);
  for (const f of s.faults) {
    if (f.kind !== 'degrade') continue;
    if (f.rateMbps !== undefined) {
      streamMbps = Math.min(streamMbps, f.rateMbps);
      backMbps = Math.min(backMbps, f.rateMbps);
    }
    if (f.latencyNs !== undefined) latency = Math.max(latency, f.latencyNs);
  }
  if (s.source.maxPostcopyBandwidth > 0) streamMbps = Math.min(streamMbps, (s.source.maxPostcopyBandwidth * 8) / 1e6);
  if (s.preempt.enabled) streamMbps *= s.preempt.share;
  const streamNsPerByte = 8000 / streamMbps, backNsPerByte = 8000 / backMbps;
  perPageNs += stream.wireBytes(pageDataBytes(1, s.memory.pageSize)) * streamNsPerByte + back.wireBytes(faultBytes(1, 0)) * backNsPerByte;
  const buffersNs = (s.link.sendBufferBytes + s.link.receiveBufferBytes) * streamNsPerByte
    + (s.backChannel.sendBufferBytes + s.backChannel.receiveBufferBytes) * backNsPerByte;
  return Math.min(Number.MAX_SAFE_INTEGER, Math.ceil(LIVENESS_MARGIN_NS + s.memory.pages * perPageNs + buffersNs + 4 * latency));
}
