/**
 * A map from pfn to an int32 value, for the few pfns that hold one at a time (the pager's waits):
 * open addressing with linear probing in two typed arrays, sized to what it holds. A pfn-sized
 * array would do the same with one index, but its first touches cost a page fault per 4 KiB of it
 * (~15 µs on this project's VM), and a storm's few thousand waits scattered over a whole guest
 * touch every page of such an array.
 */
const MIN_SLOTS = 64;

export class PfnMap {
  /** pfn + 1 per slot, 0 where empty. */
  private keys = new Int32Array(MIN_SLOTS);
  private values = new Int32Array(MIN_SLOTS);
  private mask = MIN_SLOTS - 1;
  /** 32 − log2(slots): Fibonacci hashing takes the product's top bits. */
  private shift = 32 - Math.log2(MIN_SLOTS);
  size = 0;

  /** The value of `pfn`, which must be in the map. */
  get(pfn: number): number {
    return this.values[this.find(pfn)]!;
  }

  /** Sets the value of `pfn` (added if absent). */
  set(pfn: number, value: number): void {
    let i = this.find(pfn);
    if (this.keys[i] === 0) {
      if (2 * (this.size + 1) > this.keys.length) {
        this.grow();
        i = this.find(pfn);
      }
      this.keys[i] = pfn + 1;
      this.size++;
    }
    this.values[i] = value;
  }

  /** Removes `pfn`, which must be in the map; returns its value. */
  take(pfn: number): number {
    const keys = this.keys, values = this.values, mask = this.mask;
    let hole = this.find(pfn);
    const value = values[hole]!;
    // Backward-shift deletion: an entry after the hole moves into it unless its home slot lies
    // cyclically in (hole, j], where probing from home still finds it without the hole.
    for (let j = (hole + 1) & mask; keys[j] !== 0; j = (j + 1) & mask) {
      const home = this.home(keys[j]! - 1);
      const stays = hole < j ? hole < home && home <= j : hole < home || home <= j;
      if (stays) continue;
      keys[hole] = keys[j]!;
      values[hole] = values[j]!;
      hole = j;
    }
    keys[hole] = 0;
    this.size--;
    return value;
  }

  private home(pfn: number): number {
    return Math.imul(pfn, 0x9e3779b1) >>> this.shift;
  }

  /** The slot holding `pfn`, or the empty slot where it would go. */
  private find(pfn: number): number {
    const keys = this.keys, key = pfn + 1, mask = this.mask;
    let i = this.home(pfn);
    while (keys[i] !== 0 && keys[i] !== key) i = (i + 1) & mask;
    return i;
  }

  private grow(): void {
    const keys = this.keys, values = this.values, slots = keys.length * 2;
    this.keys = new Int32Array(slots);
    this.values = new Int32Array(slots);
    this.mask = slots - 1;
    this.shift--;
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] === 0) continue;
      const j = this.find(keys[i]! - 1);
      this.keys[j] = keys[i]!;
      this.values[j] = values[i]!;
    }
  }
}
