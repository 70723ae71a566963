/**
 * The destination's return path with a fault thread (docs/live.md): the fault thread writes each
 * REQUEST straight on the main connection's socket, as QEMU's postcopy_ram_fault_thread does
 * (migrate_send_rp_req_pages, under the return path's rp_mutex), so a fault never waits for the
 * main thread, busy reading the stream. Two shared words: a lock every writer of REQUESTs holds,
 * and the connection's file descriptor, −1 while there is none to write on (before the
 * switchover, paused by a cut, the run over); a fault then stays requested, and recovery's resume
 * asks for it again.
 */
import type { Socket } from 'node:net';
import { lockWord, unlockWord } from './ring.ts';

const LOCK = 0, FD = 1;

export function createReturnPath(): Int32Array {
  const rp = new Int32Array(new SharedArrayBuffer(8));
  rp[FD] = -1;
  return rp;
}

/** Runs `write` with the return path's lock held, given its descriptor (−1: none now). */
export function withReturnPath<T>(rp: Int32Array, write: (fd: number) => T): T {
  lockWord(rp, LOCK);
  try {
    return write(Atomics.load(rp, FD));
  } finally {
    unlockWord(rp, LOCK);
  }
}

/**
 * Points the return path at `socket` (null: at nothing), once no REQUEST is being written; `first`
 * runs under the same lock before, so no fault slips between what it writes and the switch.
 */
export function setReturnPath(rp: Int32Array, socket: Socket | null, first?: () => void): void {
  withReturnPath(rp, () => {
    first?.();
    Atomics.store(rp, FD, socket ? socketFd(socket) : -1);
  });
}

/** A connected socket's file descriptor; −1 if it has none (closed). */
export function socketFd(socket: Socket): number {
  return (socket as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
}
