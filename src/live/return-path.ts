/**
 * The destination's return path with a fault thread (docs/live.md): the fault thread writes each
 * REQUEST straight on the main connection's socket, as QEMU's postcopy_ram_fault_thread does
 * (migrate_send_rp_req_pages, under the return path's rp_mutex), so a fault never waits for the
 * main thread, busy reading the stream. Shared words: a lock every writer of REQUESTs holds (a
 * frame goes out whole), the connection's file descriptor, −1 while there is none to write on
 * (before the switchover, paused by a cut, the run over; a fault then stays requested, and
 * recovery's resume asks for it again), and a flag the main thread raises while it waits to let
 * the connection go, so a write stalled on a source that stopped reading gives way.
 */
import type { Socket } from 'node:net';
import { lockWord, unlockWord } from './ring.ts';
import type { Uffd } from './uffd.ts';

const LOCK = 0, FD = 1, LETTING_GO = 2;
/** How long a stalled write waits before it looks whether the main thread lets the connection go (ms). */
const STALL_MS = 50;

export function createReturnPath(): Int32Array {
  const rp = new Int32Array(new SharedArrayBuffer(12));
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
  letGo(rp);
  withReturnPath(rp, () => {
    Atomics.store(rp, LETTING_GO, 0);
    first?.();
    Atomics.store(rp, FD, socket ? socketFd(socket) : -1);
  });
}

/** Tells a write stalled with the lock held to give way: the main thread is about to take the lock. */
export function letGo(rp: Int32Array): void {
  Atomics.store(rp, LETTING_GO, 1);
}

/**
 * Writes all of `frame` on `fd` with the lock held: true once written; false when the connection
 * is gone, or when the main thread lets it go while the write is stalled (a frame cut short then
 * dies with its connection). A source that stops reading for a while only delays the request.
 */
export function sendWhole(rp: Int32Array, u: Uffd, fd: number, frame: Uint8Array): boolean {
  for (let sent = 0; ;) {
    const n = u.socketSend(fd, sent === 0 ? frame : frame.subarray(sent), STALL_MS);
    if (n < 0) return false;
    sent += n;
    if (sent === frame.length) return true;
    if (Atomics.load(rp, LETTING_GO) !== 0) return false;
  }
}

/** A connected socket's file descriptor; −1 if it has none (closed). */
export function socketFd(socket: Socket): number {
  return (socket as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
}
