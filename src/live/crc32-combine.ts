/**
 * CRC-32 (zlib's, reflected polynomial 0xedb88320) of a concatenation from the CRCs of its parts,
 * so the source can give a frame of pages its CRC without reading the pages again.
 *
 * zlib's crc is crc(D) = ~R(~0, D), R the register after feeding D, which is linear in the initial
 * register and the data together: R(r, D) = Z^|D|(r) xor R(0, D), with Z the (linear) effect of
 * one zero byte on the register. Then, with n = |B|:
 *   crc(A‖B) = ~(Z^n(~crc(A)) xor R(0, B))  and  R(0, B) = ~crc(B) xor Z^n(~0),
 * and since Z^n(~x) = Z^n(x) xor Z^n(~0), crc(A‖B) = Z^n(crc(A)) xor crc(B). Z^n is a 32×32 matrix
 * over GF(2), applied a byte of its argument at a time through four 256-entry tables.
 */

const POLY = 0xedb88320;

/** A linear map on 32-bit words as its columns: col[i] is the image of bit i. */
type Linear = Uint32Array;

function apply(m: Linear, x: number): number {
  let y = 0;
  for (let i = 0; x !== 0; i++, x >>>= 1) if (x & 1) y ^= m[i]!;
  return y >>> 0;
}

/** a∘b. */
function compose(a: Linear, b: Linear): Linear {
  const out = new Uint32Array(32);
  for (let i = 0; i < 32; i++) out[i] = apply(a, b[i]!);
  return out;
}

/**
 * The map crc(A) ↦ its part of crc(A‖B) for every B of `bytes` bytes, as four 256-entry tables
 * (table k holds the images of byte k): Z^(8·bytes bits) by repeated squaring.
 */
export function crc32Shift(bytes: number): Uint32Array {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`crc32Shift: bytes must be an integer ≥ 0, got ${bytes}`);
  // One zero bit: shift right, folding in the polynomial when the bit shifted out was set.
  let base: Linear = new Uint32Array(32);
  for (let i = 0; i < 32; i++) base[i] = i === 0 ? POLY : 1 << (i - 1);
  let m: Linear = new Uint32Array(32);
  for (let i = 0; i < 32; i++) m[i] = (1 << i) >>> 0;
  // Powers of one map commute: the order of the factors does not matter.
  for (let bits = bytes * 8; bits > 0; bits = Math.floor(bits / 2)) {
    if (bits % 2 === 1) m = compose(base, m);
    base = compose(base, base);
  }
  const t = new Uint32Array(1024);
  for (let k = 0; k < 4; k++) {
    // Each byte value's image from a smaller one's and its lowest bit's column.
    for (let b = 1; b < 256; b++) t[k * 256 + b] = t[k * 256 + (b & (b - 1))]! ^ m[8 * k + 31 - Math.clz32(b & -b)]!;
  }
  return t;
}

/** crc(A‖B) from crc(A), crc(B) and crc32Shift(|B|): four table lookups. */
export function crc32Combine(shift: Uint32Array, crcA: number, crcB: number): number {
  return (shift[crcA & 0xff]! ^ shift[256 + ((crcA >>> 8) & 0xff)]! ^ shift[512 + ((crcA >>> 16) & 0xff)]! ^ shift[768 + (crcA >>> 24)]! ^ crcB) >>> 0;
}
