/**
 * A binary min-heap of deadlines: push and pop O(log n), peek O(1). The
 * supervisor's expiry fiber keeps one per resource; entries are removed
 * lazily (a stopped record's entry is dropped when it reaches the top).
 *
 * @internal
 */

/** @internal */
export class Deadlines<A> {
  private items: Array<A> = []
  private deadlines: Array<number> = []

  get size(): number {
    return this.items.length
  }

  /** The earliest deadline, or `undefined` when empty. */
  peek(): number | undefined {
    return this.deadlines[0]
  }

  push(item: A, deadline: number): void {
    const items = this.items
    const deadlines = this.deadlines
    let i = items.length
    items.push(item)
    deadlines.push(deadline)
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (deadlines[parent]! <= deadline) break
      items[i] = items[parent]!
      deadlines[i] = deadlines[parent]!
      i = parent
    }
    items[i] = item
    deadlines[i] = deadline
  }

  pop(): A | undefined {
    const items = this.items
    const deadlines = this.deadlines
    if (items.length === 0) return undefined
    const top = items[0]!
    const lastItem = items.pop()!
    const lastDeadline = deadlines.pop()!
    const n = items.length
    if (n > 0) {
      let i = 0
      while (true) {
        const left = 2 * i + 1
        if (left >= n) break
        const right = left + 1
        const child = right < n && deadlines[right]! < deadlines[left]! ? right : left
        if (deadlines[child]! >= lastDeadline) break
        items[i] = items[child]!
        deadlines[i] = deadlines[child]!
        i = child
      }
      items[i] = lastItem
      deadlines[i] = lastDeadline
    }
    return top
  }
}
