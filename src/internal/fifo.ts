/**
 * A first-in first-out queue of deadlines. With one constant timeout per
 * resource and a clock that does not run backwards, deadlines are pushed in
 * non-decreasing order, so the front is always the earliest: push, peek and
 * pop are O(1) amortised.
 *
 * @internal
 */

/** @internal */
export class Fifo<A> {
  private items: Array<A> = []
  private deadlines: Array<number> = []
  private head = 0

  get size(): number {
    return this.items.length - this.head
  }

  push(item: A, deadline: number): void {
    this.items.push(item)
    this.deadlines.push(deadline)
  }

  /** The earliest deadline, or `undefined` when empty. */
  peek(): number | undefined {
    return this.head < this.items.length ? this.deadlines[this.head] : undefined
  }

  pop(): A | undefined {
    if (this.head >= this.items.length) return undefined
    const item = this.items[this.head]!
    this.items[this.head] = undefined as A
    this.head++
    if (this.head === this.items.length) {
      this.items = []
      this.deadlines = []
      this.head = 0
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head)
      this.deadlines = this.deadlines.slice(this.head)
      this.head = 0
    }
    return item
  }
}
