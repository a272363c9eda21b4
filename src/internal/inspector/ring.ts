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

/** A value of an {@link EntryRing}: its number, when it arrived, and itself. @internal */
export interface Entry<A> {
  readonly seq: number
  readonly at: number
  readonly event: A
}

/**
 * A ring of events with their numbers and arrival times, kept in parallel
 * arrays: pushing allocates nothing, so a busy store's events cost the ring a
 * slot each, and an {@link Entry} is made only for the events served.
 *
 * @internal
 */
export class EntryRing<A> {
  private readonly events: Array<A | undefined>
  private readonly seqs: Float64Array
  private readonly ats: Float64Array
  private count = 0

  constructor(readonly capacity: number) {
    this.events = new Array(capacity)
    this.seqs = new Float64Array(capacity)
    this.ats = new Float64Array(capacity)
  }

  /** How many events were ever pushed. */
  get pushed(): number {
    return this.count
  }

  /** How many events the ring holds. */
  get size(): number {
    return Math.min(this.count, this.capacity)
  }

  push(seq: number, at: number, event: A): void {
    const i = this.count % this.capacity
    this.events[i] = event
    this.seqs[i] = seq
    this.ats[i] = at
    this.count++
  }

  private entry(n: number): Entry<A> {
    const i = n % this.capacity
    return { seq: this.seqs[i]!, at: this.ats[i]!, event: this.events[i] as A }
  }

  /** The entries pushed after the first `after` that the ring still holds, oldest first. */
  since(after: number): Array<Entry<A>> {
    const out: Array<Entry<A>> = []
    for (let n = Math.max(after, this.count - this.capacity); n < this.count; n++) out.push(this.entry(n))
    return out
  }

  /** At most `limit` entries whose event satisfies `keep`, newest first. */
  newest(limit: number, keep?: (event: A) => boolean): Array<Entry<A>> {
    const out: Array<Entry<A>> = []
    for (let n = this.count - 1; n >= this.count - this.size && out.length < limit; n--) {
      if (keep === undefined || keep(this.events[n % this.capacity] as A)) out.push(this.entry(n))
    }
    return out
  }
}
