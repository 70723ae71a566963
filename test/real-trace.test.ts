import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseTraceLines, readSwitchover, readTraceLog, switchoverStages } from '../src/live/qemu/trace-log.ts';

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

describe('both sides\' trace logs → QEMU\'s switchover stages', () => {
  // As traced on QEMU 7.2 (docs/real-qemu.md): the source's two complete_precopy calls (the vCPU
  // registers and the iterables, then the device state into the package) with the final sync
  // between; the destination's discards, the package, the listen.
  const SOURCE = [
    '3001@1764151200.000016:savevm_state_complete_precopy ',
    '3001@1764151200.000350:migration_bitmap_sync_start ',
    '3001@1764151200.000513:migration_bitmap_sync_end dirty_pages 0',
    '3001@1764151200.000586:savevm_state_complete_precopy ',
    '3001@1764151200.001775:savevm_send_postcopy_run ',
    '3001@1764151200.002100:migration_bitmap_sync_start ',
  ];
  const DESTINATION = [
    '3002@1764151200.002774:loadvm_postcopy_ram_handle_discard ',
    '3002@1764151200.003089:loadvm_postcopy_ram_handle_discard ',
    '3002@1764151200.003142:loadvm_handle_cmd_packaged 12935',
    '3002@1764151200.003187:loadvm_postcopy_handle_listen enter',
    '3002@1764151200.003189:loadvm_postcopy_handle_listen after discard',
    '3002@1764151200.004323:loadvm_postcopy_handle_listen return',
    '3002@1764151200.004400:postcopy_page_req_add new page req 0x7f0000000000 total 1',
  ];

  it('device save from the first complete_precopy to the run command less the sync, the discards to the package, listen enter → return, its return → RESUME', () => {
    expect(switchoverStages(SOURCE, DESTINATION, 1764151200004945)).toEqual({
      'device-save-ms': 1.596, 'sync-ms': 0.163, 'discard-ms': 0.368, 'package-bytes': 12935, 'listen-ms': 1.136, 'load-ms': 0.622,
    });
  });

  it('a stage whose events are missing is null: a precopy run, a log QEMU never wrote', () => {
    const none = { 'device-save-ms': null, 'sync-ms': null, 'discard-ms': null, 'package-bytes': null, 'listen-ms': null, 'load-ms': null };
    expect(switchoverStages(['3001@1764151200.000059:savevm_state_complete_precopy '], [], 1764151200002266)).toEqual(none);
    expect(switchoverStages(SOURCE, DESTINATION, null)['load-ms']).toBeNull();
    // No discard commands before the package: no discard stage, the package still counted.
    expect(switchoverStages(SOURCE, DESTINATION.slice(2), null)['discard-ms']).toBeNull();
    expect(switchoverStages(SOURCE, DESTINATION.slice(2), null)['package-bytes']).toBe(12935);
    expect(readSwitchover('/nonexistent/source.log', '/nonexistent/destination.log', null)).toEqual(none);
  });
});
