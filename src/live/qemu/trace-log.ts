import { existsSync } from 'node:fs';
import { readLines } from '../../io/read.ts';

/**
 * Per-request fault latency from the destination's trace log (`-trace enable=postcopy_page_req_add
 * -trace enable=postcopy_page_req_del -msg timestamp=on -D FILE`): a page request enters QEMU's
 * tree of requested pages (add) and leaves it when the page is placed (del). The log backend
 * writes `TID@SECONDS.MICROS:EVENT ARGS`.
 */
const EVENT = /^\d+@(\d+)\.(\d{6}):(\w+) ?(.*)$/;

/** A page request's host address, the first in its arguments. */
const ADDR = /0x[0-9a-f]+|\(nil\)/;

/** Each log line's event: µs since the epoch, name, arguments; other lines (QEMU's warnings) are skipped. */
function* events(lines: Iterable<string>): Iterable<{ us: number; name: string; args: string }> {
  for (const line of lines) {
    const m = EVENT.exec(line);
    if (m) yield { us: Number(m[1]) * 1e6 + Number(m[2]), name: m[3]!, args: m[4]! };
  }
}

export interface FaultLatencies {
  /** Request → page placed, ns, in the order the pages were placed. */
  latenciesNs: number[];
  /** Requests never answered in the log (the run ended or failed first). */
  unanswered: number;
  /** Timestamp of the first request, µs since the epoch (null when none). */
  firstAtUs: number | null;
}

/** Parses the log's lines; other events and lines are skipped. */
export function parseTraceLines(lines: Iterable<string>): FaultLatencies {
  const open = new Map<string, number>();
  const latenciesNs: number[] = [];
  let firstAtUs: number | null = null;
  for (const e of events(lines)) {
    const add = e.name === 'postcopy_page_req_add';
    if (!add && e.name !== 'postcopy_page_req_del') continue;
    const addr = ADDR.exec(e.args)?.[0];
    if (addr === undefined) continue;
    if (add) {
      firstAtUs ??= e.us;
      open.set(addr, e.us);
    } else {
      const from = open.get(addr);
      if (from === undefined) continue;
      open.delete(addr);
      latenciesNs.push((e.us - from) * 1000);
    }
  }
  return { latenciesNs, unanswered: open.size, firstAtUs };
}

/** The log's lines are short; a longer one is not QEMU's log. */
const MAX_LINE = 64 * 1024;

/** Reads the trace log (absent: QEMU wrote nothing, no requests). */
export function readTraceLog(path: string): FaultLatencies {
  return parseTraceLines(logLines(path));
}

/** A log's lines; none when QEMU wrote no log. */
function logLines(path: string): Iterable<string> {
  return existsSync(path) ? readLines(path, MAX_LINE) : [];
}

/** The trace events the switchover stages come from, for the source's and the destination's command lines. */
export const SOURCE_SWITCHOVER_EVENTS = ['savevm_state_complete_precopy', 'migration_bitmap_sync_start', 'migration_bitmap_sync_end', 'savevm_send_postcopy_run'];
export const DESTINATION_SWITCHOVER_EVENTS = ['loadvm_postcopy_ram_handle_discard', 'loadvm_handle_cmd_packaged', 'loadvm_postcopy_handle_listen'];

/** QEMU's own switchover stages at a switch to postcopy, ms (null where a stage's events are missing). */
export interface SwitchoverStages {
  /**
   * The source's stop work but the final sync: its first `savevm_state_complete_precopy` (the vCPU
   * registers fetched through KVM, the iterables) → `savevm_send_postcopy_run` (the device state
   * saved into the package), less the dirty-bitmap sync between (`migration_bitmap_sync_start` → `_end`).
   */
  'device-save-ms': number | null;
  /** The final dirty-bitmap sync at the stop (`migration_bitmap_sync_start` → `_end`). */
  'sync-ms': number | null;
  /** The destination's discard commands: the first `loadvm_postcopy_ram_handle_discard` (it turns THP off over RAM first) → the package (`loadvm_handle_cmd_packaged`). */
  'discard-ms': number | null;
  /** The package's bytes (MIG_CMD_PACKAGED: POSTCOPY_LISTEN, the device state, POSTCOPY_RUN). */
  'package-bytes': number | null;
  /** POSTCOPY_LISTEN at the destination (userfaultfd registered, listen thread started): `loadvm_postcopy_handle_listen` enter → return. */
  'listen-ms': number | null;
  /** Its return → the destination's RESUME event: the device state loaded, the vCPU state put, `vm_start`. */
  'load-ms': number | null;
}

/** The stages from both logs' lines (the log backend's `TID@SECONDS.MICROS:EVENT ARGS`) and the RESUME event's µs. */
export function switchoverStages(source: Iterable<string>, destination: Iterable<string>, resumeUs: number | null): SwitchoverStages {
  let firstUs: number | null = null, syncUs: number | null = null, syncedUs: number | null = null, saveMs: number | null = null;
  for (const e of events(source)) {
    if (saveMs !== null) break;
    if (e.name === 'savevm_state_complete_precopy') firstUs ??= e.us;
    else if (e.name === 'migration_bitmap_sync_start' && firstUs !== null) syncUs = e.us;
    else if (e.name === 'migration_bitmap_sync_end' && syncUs !== null) {
      syncedUs = (syncedUs ?? 0) + e.us - syncUs;
      syncUs = null;
    } else if (e.name === 'savevm_send_postcopy_run' && firstUs !== null) saveMs = (e.us - firstUs - (syncedUs ?? 0)) / 1000;
  }
  let discardUs: number | null = null, discardMs: number | null = null, packageBytes: number | null = null;
  let listenUs: number | null = null, listenMs: number | null = null, returnUs: number | null = null;
  for (const e of events(destination)) {
    if (e.name === 'loadvm_postcopy_ram_handle_discard') discardUs ??= e.us;
    else if (e.name === 'loadvm_handle_cmd_packaged' && packageBytes === null) {
      packageBytes = Number.parseInt(e.args, 10);
      if (discardUs !== null) discardMs = (e.us - discardUs) / 1000;
    } else if (e.name === 'loadvm_postcopy_handle_listen') {
      if (e.args === 'enter') listenUs = e.us;
      else if (e.args === 'return' && listenUs !== null && listenMs === null) {
        listenMs = (e.us - listenUs) / 1000;
        returnUs = e.us;
      }
    }
  }
  const round = (x: number | null) => (x === null ? null : Math.round(x * 1000) / 1000);
  return {
    'device-save-ms': round(saveMs),
    'sync-ms': saveMs === null || syncedUs === null ? null : round(syncedUs / 1000),
    'discard-ms': round(discardMs),
    'package-bytes': packageBytes !== null && Number.isFinite(packageBytes) ? packageBytes : null,
    'listen-ms': round(listenMs),
    'load-ms': round(returnUs !== null && resumeUs !== null && resumeUs >= returnUs ? (resumeUs - returnUs) / 1000 : null),
  };
}

/** The stages from the two log files (absent: QEMU wrote nothing, no stage). */
export function readSwitchover(sourceLog: string, destinationLog: string, resumeUs: number | null): SwitchoverStages {
  return switchoverStages(logLines(sourceLog), logLines(destinationLog), resumeUs);
}
