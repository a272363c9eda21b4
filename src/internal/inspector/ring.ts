/**
 * A ring of the last values pushed, numbered from 1 in push order: what
 * bounds the inspector's memory (recent events, metric samples, each event
 * stream's backlog). Plain and synchronous: it is written by one fiber at a
 * time, in a single-threaded runtime.
 *
 * @internal
 */

/** @internal */
export class Ring<A> {
  private readonly items: Array<A | undefined>
  private count = 0

  constructor(readonly capacity: number) {
    this.items = new Array(capacity)
  }

  /** How many values were ever pushed: the number of the last one. */
  get pushed(): number {
    return this.count
  }

  /** How many values the ring holds. */
  get size(): number {
    return Math.min(this.count, this.capacity)
  }

  /** Adds a value, dropping the oldest when full; returns its number. */
  push(value: A): number {
    this.items[this.count % this.capacity] = value
    return ++this.count
  }

  /** The values numbered after `after` that the ring still holds, oldest first. */
  since(after: number): Array<A> {
    const from = Math.max(after, this.count - this.capacity)
    const out: Array<A> = []
    for (let n = from; n < this.count; n++) out.push(this.items[n % this.capacity] as A)
    return out
  }

  /** At most `limit` values that satisfy `keep`, newest first. */
  newest(limit: number, keep?: (value: A) => boolean): Array<A> {
    const out: Array<A> = []
    for (let n = this.count - 1; n >= this.count - this.size && out.length < limit; n--) {
      const value = this.items[n % this.capacity] as A
      if (keep === undefined || keep(value)) out.push(value)
    }
    return out
  }
}
