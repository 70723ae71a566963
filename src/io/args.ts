import { PostcopyEmuError } from './errors.ts';

/**
 * Argument checks at the library's public boundary: a bad argument throws PostcopyEmuError
 * naming `Class.argument` and what is allowed, instead of a plain TypeError deep inside or a
 * silently truncated value.
 */
export function intArg(field: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new PostcopyEmuError(field, `${field}: must be an integer in ${min}..${max}, got ${String(v)}`);
  }
  return v;
}

/** A finite number in [min, max]. */
export function numArg(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !(v >= min && v <= max)) {
    throw new PostcopyEmuError(field, `${field}: must be a number in ${min}..${max}, got ${String(v)}`);
  }
  return v;
}

/** A page size: 2^k bytes from 512 B to 1 GiB. */
export function pageSizeArg(field: string, v: unknown): number {
  const n = intArg(field, v, 512, 2 ** 30);
  if ((n & (n - 1)) !== 0) throw new PostcopyEmuError(field, `${field}: must be a power of two (a page is 2^k bytes), got ${n}`);
  return n;
}

/** An object (a parsed scenario or one of its sections, an options bag): `what` says which. */
export function objArg<T>(field: string, v: T, what: string): T {
  if (typeof v !== 'object' || v === null) throw new PostcopyEmuError(field, `${field}: must be ${what}, got ${String(v)}`);
  return v;
}

/** A time in ns: any number but NaN (±Infinity bounds a run). The message is built only for a bad one. */
export function timeArg(field: string, v: unknown): void {
  if (typeof v !== 'number' || Number.isNaN(v)) throw new PostcopyEmuError(field, `${field}: must be a time in ns, got ${String(v)}`);
}

/** Any other condition, named the same way. */
export function argCheck(ok: boolean, field: string, what: string): void {
  if (!ok) throw new PostcopyEmuError(field, `${field}: ${what}`);
}
