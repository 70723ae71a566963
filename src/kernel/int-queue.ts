import { NO_INT32S } from '../memory/arena.ts';

/** A FIFO of int32 values in one growable typed array: no per-item allocation. */
export class IntQueue {
  /** Empty until the first push grows it: the growth then has V8 type feedback from every run's start. */
  private a = NO_INT32S;
  private head = 0;
  private tail = 0;

  get size(): number {
    return this.tail - this.head;
  }

  push(v: number): void {
    if (this.tail === this.a.length) this.makeRoom();
    this.a[this.tail++] = v;
  }

  /** Pushes a, b and c (one call for a triple). */
  push3(a: number, b: number, c: number): void {
    if (this.tail + 3 > this.a.length) this.makeRoom();
    const arr = this.a, t = this.tail;
    arr[t] = a;
    arr[t + 1] = b;
    arr[t + 2] = c;
    this.tail = t + 3;
  }

  /** The oldest value; the queue must not be empty. */
  shift(): number {
    const v = this.a[this.head++]!;
    if (this.head === this.tail) this.head = this.tail = 0;
    return v;
  }

  /** The i-th oldest value. */
  get(i: number): number {
    return this.a[this.head + i]!;
  }

  set(i: number, v: number): void {
    this.a[this.head + i] = v;
  }

  /** Forgets the n oldest values. */
  drop(n: number): void {
    this.head += n;
    if (this.head === this.tail) this.head = this.tail = 0;
  }

  clear(): void {
    this.head = this.tail = 0;
  }

  private makeRoom(): void {
    const n = this.tail - this.head;
    if (n * 2 + 3 > this.a.length) {
      const a = new Int32Array(Math.max(64, this.a.length * 2));
      a.set(this.a.subarray(this.head, this.tail));
      this.a = a;
    } else this.a.copyWithin(0, this.head, this.tail);
    this.head = 0;
    this.tail = n;
  }
}
