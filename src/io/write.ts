import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { UsageError } from './errors.ts';

/**
 * Writes through a uniquely named temp file, fsync and a rename (write-file-atomic), so a reader
 * never sees half a file and a failed write leaves nothing behind.
 */
export function writeAtomic(path: string, data: string | Uint8Array): void {
  try {
    writeFileAtomic.sync(path, typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  } catch (e) {
    throw new UsageError(`cannot write ${path}: ${reason(e)}`);
  }
}

/** Kernel file systems: writes there hang or go nowhere. */
const KERNEL_FS = /^\/(proc|sys|dev)(\/|$)/;

/** An errno code as a person reads it. */
function reason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  const words: Record<string, string> = {
    ENOENT: 'no such directory', EACCES: 'permission denied', EPERM: 'permission denied', EROFS: 'read-only file system',
    ENOTDIR: 'a part of the path is not a directory', EISDIR: 'it is a directory', ENOSPC: 'no space left on the device',
  };
  return (code && words[code]) ?? (e as Error).message;
}

/** A directory that exists and that this process may write into. */
function writableDir(dir: string, what: string): void {
  let st;
  try {
    st = statSync(dir);
  } catch (e) {
    throw new UsageError(`${what}: ${reason(e)}`);
  }
  if (!st.isDirectory()) throw new UsageError(`${what}: ${dir} is not a directory`);
  try {
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new UsageError(`${what}: ${reason(e)}`);
  }
}

/**
 * Checks, before any work starts, that `path` can be written as a file: its directory exists
 * and is writable, and it is not itself a directory. Kernel file systems (/proc, /sys) are refused.
 */
export function checkOutputFile(path: string): void {
  const abs = resolve(path);
  if (KERNEL_FS.test(abs)) throw new UsageError(`cannot write ${path}: not a regular file system`);
  writableDir(dirname(abs), `cannot write ${path}`);
  // A missing file is fine (it is about to be written); a directory of that name is not.
  if (statSync(abs, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`cannot write ${path}: it is a directory`);
}

/** Makes (or checks) an output directory before any work starts: one line naming it when it can't be. */
export function prepareOutputDir(dir: string): void {
  const abs = resolve(dir);
  if (KERNEL_FS.test(abs)) throw new UsageError(`cannot write into ${dir}: not a regular file system`);
  try {
    mkdirSync(abs, { recursive: true });
  } catch (e) {
    throw new UsageError(`cannot create ${dir}: ${(e as NodeJS.ErrnoException).code === 'EEXIST' ? 'a file of that name exists' : reason(e)}`);
  }
  writableDir(abs, `cannot write into ${dir}`);
}
