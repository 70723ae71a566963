/** Records on one connection in arrival order (a ring buffer): each arrival event takes the oldest. */
export class InFlight<T> {
  private items: (T | undefined)[] = new Array<T | undefined>(16).fill(undefined);
  private head = 0;
  private size = 0;

  push(item: T): void {
    if (this.size === this.items.length) this.grow();
    this.items[(this.head + this.size++) & (this.items.length - 1)] = item;
  }

  /** The connection failed: every record still on its way is lost. */
  clear(): void {
    this.items.fill(undefined);
    this.head = 0;
    this.size = 0;
  }

  /** Records on their way. */
  get length(): number {
    return this.size;
  }

  /** The i-th oldest record on its way. */
  at(i: number): T {
    return this.items[(this.head + i) & (this.items.length - 1)]!;
  }

  shift(): T {
    const item = this.items[this.head]!;
    this.items[this.head] = undefined;
    this.head = (this.head + 1) & (this.items.length - 1);
    this.size--;
    return item;
  }

  /** Doubles the buffer (a power of two), oldest first. */
  private grow(): void {
    const old = this.items, n = old.length;
    const items = new Array<T | undefined>(n * 2).fill(undefined);
    for (let i = 0; i < n; i++) items[i] = old[(this.head + i) & (n - 1)];
    this.items = items;
    this.head = 0;
  }
}
