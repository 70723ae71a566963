import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseTraceLines, readTraceLog } from '../src/live/qemu/trace-log.ts';

/** Lines as QEMU 7.2's log backend writes them with -msg timestamp=on. */
const LOG = `qemu-system-x86_64: some warning on the same log
4242@1764151200.000100:postcopy_page_req_add new page req 0x7f0000000000 total 1
4242@1764151200.000150:postcopy_page_req_add new page req 0x7f0000001000 total 2
4243@1764151200.000350:postcopy_page_req_del resolved page req 0x7f0000000000 total 1
4243@1764151200.001150:postcopy_page_req_del resolved page req 0x7f0000001000 total 0
4243@1764151200.002000:postcopy_page_req_del resolved page req 0x7f0000009000 total 0
4242@1764151200.003000:postcopy_page_req_add new page req 0x7f0000002000 total 1
4242@1764151200.004000:postcopy_page_req_add new page req 0x7f0000000000 total 2
4243@1764151201.000000:postcopy_page_req_del resolved page req 0x7f0000000000 total 1
`;

describe('destination trace log → fault latencies', () => {
  it('pairs each request with the placing of its page (µs timestamps → ns), across a second boundary', () => {
    const r = parseTraceLines(LOG.split('\n'));
    expect(r.latenciesNs).toEqual([250_000, 1_000_000, 996_000_000]);
    // 0x…2000 was never placed; a del without an add (0x…9000) is not a request.
    expect(r.unanswered).toBe(1);
    expect(r.firstAtUs).toBe(1764151200000100);
  });

  it('reads a log file, and an absent log as no requests', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pce-trace-'));
    writeFileSync(join(dir, 'trace.log'), LOG);
    expect(readTraceLog(join(dir, 'trace.log')).latenciesNs).toHaveLength(3);
    expect(readTraceLog(join(dir, 'missing.log'))).toEqual({ latenciesNs: [], unanswered: 0, firstAtUs: null });
    rmSync(dir, { recursive: true, force: true });
  });
});
