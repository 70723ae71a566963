import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { PostcopyEmuError } from './errors.ts';

/** An input larger than its bound, or not a file at all: `message` says which and what is allowed. */
export class InputError extends PostcopyEmuError {
  constructor(path: string, message: string) {
    super(path, message);
    this.name = 'InputError';
  }
}

/** Bytes in MiB or GiB for a message. */
const size = (b: number) => (b >= 2 ** 30 ? `${b / 2 ** 30} GiB` : `${b / 2 ** 20} MiB`);

function open(path: string): number {
  const fd = openSync(path, 'r');
  if (fstatSync(fd).isDirectory()) {
    closeSync(fd);
    throw new InputError(path, `${path} is a directory`);
  }
  return fd;
}

/**
 * A whole file, at most `maxBytes`. Read in chunks, never trusting the size the file system
 * reports (a device such as /dev/zero reports 0 and never ends), so an oversized input is
 * refused after reading maxBytes + 1, not after filling the memory.
 */
export function readBounded(path: string, maxBytes: number, what: string): Buffer {
  const fd = open(path);
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(1 << 20, maxBytes + 1 - total));
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      total += n;
      if (total > maxBytes) throw new InputError(path, `${path}: a ${what} is at most ${size(maxBytes)}`);
    }
    return Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}

/**
 * The lines of a file, read in 1 MiB chunks so a multi-GiB log never sits in memory; a line
 * longer than `maxLine` characters (no newline in sight: a binary file, a device) is refused.
 */
export function readLines(path: string, maxLine: number): Iterable<string> {
  const fd = open(path);
  return (function* () {
    const buf = Buffer.allocUnsafe(1 << 20), dec = new StringDecoder('utf8');
    let rest = '', line = 0;
    const check = (s: string) => {
      if (s.length > maxLine) throw new InputError(path, `${path}: line ${line + 1} is longer than ${maxLine} characters: not a text file of lines`);
    };
    try {
      for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) {
        const parts = (rest + dec.write(buf.subarray(0, n))).split('\n');
        rest = parts.pop()!;
        check(rest);
        for (const p of parts) {
          check(p);
          line++;
          yield p;
        }
      }
      rest += dec.end();
      if (rest !== '') yield rest;
    } finally {
      closeSync(fd);
    }
  })();
}
