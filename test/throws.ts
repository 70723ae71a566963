import { expect } from 'vitest';

/** Runs `fn`, which must throw an instance of `cls`; returns the error for its fields. */
export function thrown<E extends Error>(cls: abstract new (...args: never[]) => E, fn: () => unknown): E {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(cls);
    return e as E;
  }
  throw new Error(`expected a ${cls.name}, nothing was thrown`);
}
