import { existsSync } from 'node:fs';
import { readLines } from '../../io/read.ts';

/**
 * Per-request fault latency from the destination's trace log (`-trace enable=postcopy_page_req_add
 * -trace enable=postcopy_page_req_del -msg timestamp=on -D FILE`): a page request enters QEMU's
 * tree of requested pages (add) and leaves it when the page is placed (del). The log backend
 * writes `TID@SECONDS.MICROS:EVENT ARGS`.
 */
const LINE = /^\d+@(\d+)\.(\d{6}):postcopy_page_req_(add|del) .*?(0x[0-9a-f]+|\(nil\))/;

export interface FaultLatencies {
  /** Request → page placed, ns, in the order the pages were placed. */
  latenciesNs: number[];
  /** Requests never answered in the log (the run ended or failed first). */
  unanswered: number;
  /** Timestamp of the first request, µs since the epoch (null when none). */
  firstAtUs: number | null;
}

/** Parses the log's lines; other lines (QEMU's warnings) are skipped. */
export function parseTraceLines(lines: Iterable<string>): FaultLatencies {
  const open = new Map<string, number>();
  const latenciesNs: number[] = [];
  let firstAtUs: number | null = null;
  for (const line of lines) {
    const m = LINE.exec(line);
    if (!m) continue;
    const atUs = Number(m[1]) * 1e6 + Number(m[2]);
    const addr = m[4]!;
    if (m[3] === 'add') {
      firstAtUs ??= atUs;
      open.set(addr, atUs);
    } else {
      const from = open.get(addr);
      if (from === undefined) continue;
      open.delete(addr);
      latenciesNs.push((atUs - from) * 1000);
    }
  }
  return { latenciesNs, unanswered: open.size, firstAtUs };
}

/** The log's lines are short; a longer one is not QEMU's log. */
const MAX_LINE = 64 * 1024;

/** Reads the trace log (absent: QEMU wrote nothing, no requests). */
export function readTraceLog(path: string): FaultLatencies {
  if (!existsSync(path)) return { latenciesNs: [], unanswered: 0, firstAtUs: null };
  return parseTraceLines(readLines(path, MAX_LINE));
}
