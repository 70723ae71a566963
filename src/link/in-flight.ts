/** Records on one connection in arrival order: each arrival event takes the oldest. */
export class InFlight<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  push(item: T): void {
    this.items.push(item);
  }

  /** The connection failed: every record still on its way is lost. */
  clear(): void {
    this.items = [];
    this.head = 0;
  }

  shift(): T {
    const item = this.items[this.head]!;
    this.items[this.head++] = undefined;
    // Drop the consumed prefix now and then, so a long run does not keep every record.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}
