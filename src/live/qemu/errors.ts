import { PostcopyEmuError } from '../../io/errors.ts';

/** Something a real run needs is missing (QEMU, KVM, userfaultfd): one line with the fix, exit 2. */
export class PrereqError extends PostcopyEmuError {
  constructor(what: string, message: string) {
    super(what, message);
    this.name = 'PrereqError';
  }
}

/**
 * A real run that started and then failed: QEMU exited, QMP or the migration timed out, the guest
 * found a corrupted page. Not bad input: the command exits 1, a sweep records it as a failed run.
 */
export class RealRunError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RealRunError';
  }
}
