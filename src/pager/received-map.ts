import type { InFlight } from '../link/in-flight.ts';
import type { GuestMemory } from '../memory/guest-memory.ts';
import { RecordType, pfnOf, type StreamRecord } from '../stream/records.ts';

/**
 * Recovery's RECV_BITMAP (QEMU's MIG_RP_MSG_RECV_BITMAP): 1 for every page the destination has or
 * has already received — present or dropped, or in a PAGE_DATA record read and not loaded yet
 * (`loading`: each loader's record in progress; then the inboxes), but for pages a cut lost on the wire. The pieces of incomplete huge
 * pages were dropped at the pause (HostPages.dropPieces): none is marked.
 */
export function receivedMap(memory: GuestMemory, loading: readonly (StreamRecord | null)[], inboxes: readonly InFlight<StreamRecord>[]): Uint8Array {
  const map = new Uint8Array(memory.pages);
  for (let g = 0; g < memory.pages; g++) if (memory.isSettled(g)) map[g] = 1;
  const mark = (rec: StreamRecord | null) => {
    if (rec?.type === RecordType.POSTCOPY_PAGE_DATA) for (let i = 0; i < rec.received; i++) map[pfnOf(rec, i)] = 1;
  };
  for (const rec of loading) mark(rec);
  for (const box of inboxes) for (let i = 0; i < box.length; i++) mark(box.at(i));
  return map;
}
