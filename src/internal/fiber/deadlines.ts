/**
 * A binary min-heap of deadlines: push, pop and remove O(log n), peek O(1).
 * Each item records its own position (through `slot`), so a record that is
 * destroyed leaves the heap at once instead of being kept until its deadline.
 *
 * @internal
 */

/** Where an item keeps its position in one heap: `-1` when absent. @internal */
export interface Slot<A> {
  readonly get: (item: A) => number
  readonly set: (item: A, index: number) => void
}

/** @internal */
export class Deadlines<A> {
  private items: Array<A> = []
  private deadlines: Array<number> = []

  constructor(private readonly slot: Slot<A>) {}

  get size(): number {
    return this.items.length
  }

  /** The earliest deadline, or `undefined` when empty. */
  peek(): number | undefined {
    return this.deadlines[0]
  }

  /** Adds an item, or moves it if it is already there. */
  push(item: A, deadline: number): void {
    if (this.slot.get(item) >= 0) this.remove(item)
    this.items.push(item)
    this.deadlines.push(deadline)
    this.up(this.items.length - 1)
  }

  pop(): A | undefined {
    if (this.items.length === 0) return undefined
    const top = this.items[0]!
    this.removeAt(0)
    return top
  }

  remove(item: A): void {
    const i = this.slot.get(item)
    if (i >= 0 && i < this.items.length && this.items[i] === item) this.removeAt(i)
  }

  private removeAt(i: number): void {
    const item = this.items[i]!
    const lastItem = this.items.pop()!
    const lastDeadline = this.deadlines.pop()!
    this.slot.set(item, -1)
    if (i === this.items.length) return
    this.place(lastItem, lastDeadline, i)
    this.down(i)
    this.up(i)
  }

  private place(item: A, deadline: number, i: number): void {
    this.items[i] = item
    this.deadlines[i] = deadline
    this.slot.set(item, i)
  }

  private up(i: number): void {
    const item = this.items[i]!
    const deadline = this.deadlines[i]!
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (this.deadlines[parent]! <= deadline) break
      this.place(this.items[parent]!, this.deadlines[parent]!, i)
      i = parent
    }
    this.place(item, deadline, i)
  }

  private down(i: number): void {
    const n = this.items.length
    const item = this.items[i]!
    const deadline = this.deadlines[i]!
    while (true) {
      const left = 2 * i + 1
      if (left >= n) break
      const right = left + 1
      const child = right < n && this.deadlines[right]! < this.deadlines[left]! ? right : left
      if (this.deadlines[child]! >= deadline) break
      this.place(this.items[child]!, this.deadlines[child]!, i)
      i = child
    }
    this.place(item, deadline, i)
  }
}
