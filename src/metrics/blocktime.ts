import { FRESH, type Alloc } from '../memory/arena.ts';
import { LatencyLog } from './latency.ts';

/**
 * QEMU's postcopy-blocktime as its fault thread keeps it (`mark_postcopy_blocktime_begin` when it
 * reads a vCPU's fault on a missing page, `mark_postcopy_blocktime_end` at the UFFDIO_COPY that
 * places the page): per vCPU the time from the read to the placement, and in total the time all
 * vCPUs were in such a span at once (counted at each end that finds every vCPU down, from the
 * last begin). A fault the placement answers before the thread reads it never begins one.
 * QEMU counts whole ms of its clock; this counts ns. Each span is also a remote fault's latency
 * (QEMU 10.1's postcopy-latency and postcopy-latency-dist).
 */
export class QemuBlocktime {
  /** When each vCPU's current span began, −1 when it is not in one. */
  private readonly since: Float64Array;
  private down = 0;
  private lastBegin = 0;
  /** ns, doubles from the start: see Kernel.now. */
  total = 0;
  readonly perVcpu: Float64Array;
  readonly latency: LatencyLog;

  constructor(private readonly vcpus: number, alloc: Alloc = FRESH) {
    this.since = new Float64Array(vcpus).fill(-1);
    this.perVcpu = new Float64Array(vcpus);
    this.latency = new LatencyLog(alloc);
  }

  /** The fault thread read a fault of producer v on a missing page at `now` (a foreign one, v < 0, is no vCPU's). */
  begin(v: number, now: number): void {
    if (v < 0) return;
    if (this.since[v]! < 0) this.down++;
    this.since[v] = now;
    this.lastBegin = now;
  }

  /** Producer v's page was placed at `now`. */
  end(v: number, now: number): void {
    const since = v < 0 ? -1 : this.since[v]!;
    if (since < 0) return;
    this.perVcpu[v]! += now - since;
    this.latency.add(now - since);
    if (this.down === this.vcpus) this.total += now - this.lastBegin;
    this.down--;
    this.since[v] = -1;
  }
}
