/**
 * The userfaultfd addon (native/uffd.c, built by scripts/build-addon.mjs into
 * native/build/Release/uffd.node): guest memory whose missing pages fault to a userfaultfd, so the
 * touching thread sleeps in the kernel until the pager places the page. Regions are kept in a
 * process-global table: a handle from create() works on every thread of the process, and each
 * thread (main or worker) takes its own view() of the same memory.
 *
 * Nothing is loaded until loadUffd() is called; when the addon is missing (not built, not Linux,
 * or no userfaultfd can be opened) it says why, and live mode keeps its software pager.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from '../io/package.ts';

/** The typed API of uffd.node. Offsets and lengths are in bytes, page multiples. */
export type Uffd = {
  /**
   * Maps `bytes` (a page multiple) of anonymous, private, MAP_NORESERVE memory, registers it with a
   * new userfaultfd for missing-page faults, and returns its handle. Throws an Error naming the step
   * that failed (mmap, userfaultfd, UFFDIO_API, UFFDIO_REGISTER) and strerror.
   */
  create(bytes: number): number;
  /**
   * An ArrayBuffer over the whole region, for this thread (the same one on every call from a
   * thread). Touching a page that is missing blocks the thread until copy() or zero() places it:
   * never touch missing pages from the thread that serves the faults. Unmapped by close() only:
   * do not touch any view after close() (the closing thread's own view is detached).
   */
  view(handle: number): ArrayBuffer;
  /**
   * Blocks up to `timeoutMs` (negative: without limit) for faults, then reads every pending one
   * without blocking, writing each fault's page offset into `out` (at most out.length; the rest
   * stay pending for the next call). Returns how many, 0 on timeout. The same page may be reported
   * more than once (several threads faulting on it). Call it from a worker thread, not the main one.
   */
  waitFaults(handle: number, timeoutMs: number, out: Float64Array): number;
  /**
   * UFFDIO_COPY of `src` (a page multiple long) to the region at `offset`, waking the threads
   * waiting on those pages. Returns true when every page was placed, false when some page was
   * already present (left as it was; the other pages are still placed).
   */
  copy(handle: number, offset: number, src: Uint8Array): boolean;
  /** UFFDIO_ZEROPAGE of `length` bytes at `offset`, waking waiters; false as for copy(). */
  zero(handle: number, offset: number, length: number): boolean;
  /** Closes the userfaultfd and unmaps the region (once no call on it is in flight). */
  close(handle: number): void;
  /** null when a userfaultfd can be opened here, else why not. */
  available(): string | null;
  /** The kernel's page size, bytes. */
  pageSize(): number;
  /**
   * `bytes` of zeroed anonymous memory advised MADV_HUGEPAGE, as QEMU advises guest RAM (the live
   * source's memory: huge pages where the host allows them), unmapped once the ArrayBuffer is
   * collected. Needs no userfaultfd.
   */
  ram(bytes: number): ArrayBuffer;
  /** A TCP socket's kernel queues, bytes: [received, not yet read (SIOCINQ); written, not yet acknowledged (SIOCOUTQ)]. */
  socketQueues(fd: number): [number, number];
  /**
   * Writes `bytes` on a connected socket from the calling thread, waiting while its buffer is
   * full but at most `waitMs` without progress. Returns the bytes written (fewer than asked when it
   * waited in vain), or −1 when the connection is gone. Writers of one socket keep their frames
   * whole by holding one lock (return-path.ts).
   */
  socketSend(fd: number, bytes: Uint8Array, waitMs: number): number;
  /** Moves the calling thread to SCHED_IDLE (it runs only where a core is free); null, or why not. */
  idleThread(): string | null;
};

/** Where scripts/build-addon.mjs puts the addon. */
export const UFFD_ADDON_PATH = join(packageRoot, 'native', 'build', 'Release', 'uffd.node');

/** The addon loaded, whether or not a userfaultfd can be opened here, or why it cannot be loaded. */
export function loadAddon(): { uffd: Uffd } | { reason: string } {
  if (process.platform !== 'linux') {
    return { reason: `userfaultfd is Linux only (this is ${process.platform}): the addon is not built` };
  }
  if (!existsSync(UFFD_ADDON_PATH)) {
    return { reason: `the userfaultfd addon is not built (${UFFD_ADDON_PATH} is missing; run node scripts/build-addon.mjs)` };
  }
  try {
    return { uffd: createRequire(import.meta.url)(UFFD_ADDON_PATH) as Uffd };
  } catch (err) {
    return { reason: `the userfaultfd addon could not be loaded from ${UFFD_ADDON_PATH}: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** The addon with a userfaultfd that opens here, or why not. */
export function loadUffd(): { uffd: Uffd } | { reason: string } {
  const loaded = loadAddon();
  if ('reason' in loaded) return loaded;
  const uffd = loaded.uffd;
  let why: string | null;
  try {
    why = uffd.available();
  } catch (err) {
    why = err instanceof Error ? err.message : String(err);
  }
  if (why !== null) return { reason: `no userfaultfd can be opened: ${why}` };
  return { uffd };
}
