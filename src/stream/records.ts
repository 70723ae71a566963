/**
 * Migration stream records (libxc stream v2 + the postcopy RFC's extensions). Every record has
 * an 8-byte header {u32 type; u32 length}; pfn lists are u64 each.
 */
export const enum RecordType {
  POSTCOPY_BEGIN = 0x10,
  POSTCOPY_PFNS = 0x12,
  POSTCOPY_TRANSITION = 0x13,
  POSTCOPY_PAGE_DATA = 0x14,
  POSTCOPY_FAULT = 0x15,
  POSTCOPY_COMPLETE = 0x16,
  /** Recovery: the destination's received bitmap (QEMU's MIG_RP_MSG_RECV_BITMAP), the source's MIG_CMD_POSTCOPY_RESUME. */
  POSTCOPY_RECV_BITMAP = 0x17,
  POSTCOPY_RESUME = 0x18,
  /** QEMU's MIG_CMD_POSTCOPY_RAM_DISCARD commands: `pushed` ranges holding `count` received pages. */
  POSTCOPY_RAM_DISCARD = 0x19,
  /** CRIU's lazy-pages daemon asks for its next background chunk (its requests all answered). */
  LAZY_XFER_NEXT = 0x1a,
  /** QEMU's MIG_RP_MSG_REQ_PAGES: one page or one host page, sent by the fault thread per fault. */
  REQ_PAGES = 0x1b,
}

export const RECORD_HEADER_BYTES = 8;

/** QEMUFile's buffer (`IO_BUF_SIZE`): QEMU reads and writes its stream 32 KiB at a time. */
export const QEMU_FILE_BUF_BYTES = 32_768;

/** No pfns or ranges: a back-channel record that carries none (COMPLETE, LAZY_XFER_NEXT, a FAULT without ranges). */
export const NO_PFNS = new Int32Array(0);
/** {u32 count; u32 reserved} before a pfn list. */
const LIST_HEADER_BYTES = 8;
const PFN_BYTES = 8;
/** A range entry {u64 start; u32 count; u32 reserved} (the range-population extension). */
const RANGE_BYTES = 16;

/** A record in flight from the source to the destination. */
export interface StreamRecord {
  type: RecordType;
  /** Payload bytes, for flow control. */
  bytes: number;
  /** Sent on the preempt channel rather than the main stream. */
  preempt: boolean;
  /** PAGE_DATA: the pfns carried are pfns[at..at+count) (a PfnSlab's array), or a run's (pfnOf); else null. */
  pfns: Int32Array | null;
  at: number;
  count: number;
  /**
   * PAGE_DATA: the pfns are one ascending run, pfns[at] + 0 … count − 1 (a background scan's),
   * of which the slab may have stored pfns[at] alone: read them with pfnOf.
   */
  run: boolean;
  /** PAGE_DATA: non-zero pages that came from range requests; RAM_DISCARD: the pages the ranges span. */
  batched: number;
  /** Zero pages sent as a marker (their pfn entry only). */
  zeros: number;
  /** PAGE_DATA: background (pushed) pages; RAM_DISCARD: how many ranges. */
  pushed: number;
  /** The connection's epoch when sent (set on delivery): a record from before a cut is stale. */
  epoch: number;
  /**
   * PAGE_DATA read page by page as its bytes come (QEMU's `ram_load_postcopy`): the wire time
   * between two of its pages' arrivals, page i arriving at firstAt + i·gapNs; 0: it arrives whole.
   */
  gapNs: number;
  /** When its first page arrived (set on arrival). */
  firstAt: number;
  /** How many of its pages reached the destination: count, unless a cut lost the rest on the wire. */
  received: number;
}

/** A stream record; every one is built here so they all share one shape. */
export function streamRecord(type: RecordType, bytes: number, count: number, pfns: Int32Array | null = null, at = 0, batched = 0, zeros = 0, pushed = 0, run = false): StreamRecord {
  return { type, bytes, preempt: false, pfns, at, count, run, batched, zeros, pushed, epoch: 0, gapNs: 0, firstAt: 0, received: count };
}

/** Pfn i of a PAGE_DATA record: a run's first + i, whose others the slab did not store. */
export function pfnOf(rec: StreamRecord, i: number): number {
  const pfns = rec.pfns!;
  return rec.run ? pfns[rec.at]! + i : pfns[rec.at + i]!;
}

/** A record in flight on the back-channel: pfns[pfnAt..+pfnCount) and ranges[rangeAt..+2·rangeCount). */
export interface BackRecord {
  type: RecordType.POSTCOPY_FAULT | RecordType.REQ_PAGES | RecordType.POSTCOPY_COMPLETE | RecordType.LAZY_XFER_NEXT;
  pfns: Int32Array;
  pfnAt: number;
  pfnCount: number;
  /** Range requests as [start, count] pairs. */
  ranges: Int32Array;
  rangeAt: number;
  rangeCount: number;
}

/**
 * QEMU's discard commands: 12 ranges at most per command (`MAX_DISCARDS_PER_COMMAND`); each
 * command is a 5-byte command header, version, name length, the RAMBlock name ("pc.ram") and
 * its NUL, then a be64 start and be64 length per range (`qemu_savevm_send_postcopy_ram_discard`).
 */
export function discardBytes(ranges: number): number {
  return Math.ceil(ranges / 12) * (5 + 2 + 6 + 1) + ranges * 16;
}

/** QEMU's REQ_PAGES: {be16 type; be16 len} then {be64 start; be32 len} (`migrate_send_rp_message_req_pages`). */
export const REQ_PAGES_BYTES = 16;

/** CRIU's page-server request `struct page_server_iov` {u32 cmd; u32 nr_pages; u64 vaddr; u64 dst_id}. */
export const LAZY_REQUEST_BYTES = 24;

export function pfnListBytes(count: number): number {
  return RECORD_HEADER_BYTES + LIST_HEADER_BYTES + count * PFN_BYTES;
}

/** RECV_BITMAP: a u64 bit count, then one bit per page. */
export function bitmapBytes(pages: number): number {
  return RECORD_HEADER_BYTES + 8 + Math.ceil(pages / 8);
}

export function pageDataBytes(count: number, pageSize: number, zeros = 0): number {
  return pfnListBytes(count) + (count - zeros) * pageSize;
}

/** One FAULT record for the pfns plus one range record per range request. */
export function faultBytes(pfns: number, ranges: number): number {
  return (pfns > 0 ? pfnListBytes(pfns) : 0) + ranges * (RECORD_HEADER_BYTES + RANGE_BYTES);
}

/**
 * QEMU's RAM stream on the main channel: each page has an 8-byte header (offset | flags); a zero
 * page (RAM_SAVE_FLAG_ZERO) adds one byte, a normal page its contents.
 */
export function qemuPagesBytes(normal: number, zeros: number, pageSize: number): number {
  return (normal + zeros) * 8 + zeros + normal * pageSize;
}
