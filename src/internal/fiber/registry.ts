/**
 * The registry: encoded primary key -> entry, per resource, plus the
 * secondary indexes declared by resources and the dense arrays a scan walks.
 *
 * A plain synchronous structure owned by one data layer and touched only by
 * its fibers; every operation is O(1) (index upkeep is O(indexed fields)). It
 * is generic over a minimal {@link Entry}: it knows nothing of record servers.
 *
 * **Invariants** (the ones a scan and a lookup rely on)
 *
 * - `servers` maps a key to the entry holding it. A key is *reserved* before
 *   the record that claims it commits (a create, a key change): a reserved
 *   key is taken for other creates and key changes, but {@link lookup} finds
 *   nothing there until the commit moves the entry's `key` onto it.
 * - `live[i]` is every listed entry once, densely, in no order, and
 *   `records[i]` is its last committed record: {@link commit} writes both in
 *   the same step, so a scan never sees a record that was not committed. An
 *   entry leaves the dense arrays ({@link delistUnsafe}) the moment it is past
 *   its deadline or stopped, before its expiry runs.
 * - Indexes hold entries under the value of the indexed field in their last
 *   committed record (primitive values only).
 *
 * The synchronous mutators are named `*Unsafe`: they must run in the fiber
 * that owns the entry (its record fiber), or before it runs.
 *
 * @internal
 */

/** What the registry needs of an entry. @internal */
export interface Entry {
  /** The committed primary key, encoded. */
  key: string
  readonly status: "starting" | "live" | "stopped"
  /** Position in its table's dense arrays (`-1`: absent). */
  liveSlot: number
}

/** The table of one resource. @internal */
export interface Table<E extends Entry> {
  readonly resource: string
  readonly servers: Map<string, E>
  /** Every listed entry, once, densely (in no order): what a scan walks. */
  readonly live: Array<E>
  /** The committed record of each entry in `live`, at the same position. */
  readonly records: Array<unknown>
  readonly indexes: ReadonlyMap<string, Map<unknown, Set<E>>>
}

/** @internal */
export interface Registry<E extends Entry> {
  readonly tables: ReadonlyMap<string, Table<E>>
}

/** @internal */
export const make = <E extends Entry>(
  resources: Iterable<{ readonly name: string; readonly indexes: ReadonlyArray<string> }>
): Registry<E> => {
  const tables = new Map<string, Table<E>>()
  for (const r of resources) {
    tables.set(r.name, {
      resource: r.name,
      servers: new Map(),
      live: [],
      records: [],
      indexes: new Map(r.indexes.map((field) => [field, new Map()]))
    })
  }
  return { tables }
}

/** The live entry committed under `key`, if any. @internal */
export const lookup = <E extends Entry>(table: Table<E>, key: string): E | undefined => {
  const entry = table.servers.get(key)
  return entry !== undefined && entry.status === "live" && entry.key === key ? entry : undefined
}

/** The entry holding `key`, committed or reserved. @internal */
export const holder = <E extends Entry>(table: Table<E>, key: string): E | undefined => table.servers.get(key)

/**
 * Reserves `key` for `entry`; `false` when another entry holds it (unless
 * that one is past its deadline: `expired`).
 *
 * @internal
 */
export const reserveUnsafe = <E extends Entry>(
  table: Table<E>,
  key: string,
  entry: E,
  expired?: (holder: E) => boolean
): boolean => {
  const holder = table.servers.get(key)
  if (holder !== undefined && holder !== entry) {
    // a record past its deadline holds no key, even while its expiry is in progress
    const stale = holder.key === key && holder.status === "live" && expired !== undefined && expired(holder)
    if (!stale) return false
  }
  table.servers.set(key, entry)
  return true
}

/** Gives back a reservation that was not committed. @internal */
export const releaseUnsafe = <E extends Entry>(table: Table<E>, key: string, entry: E): void => {
  if (table.servers.get(key) === entry && entry.key !== key) table.servers.delete(key)
}

const indexValue = (v: unknown): boolean => v === null || (typeof v !== "object" && typeof v !== "function")

/**
 * Commits `next` as the entry's record under `key` (moving it from its old
 * key), in the dense arrays and the indexes.
 *
 * @internal
 */
export const commitUnsafe = <E extends Entry>(table: Table<E>, entry: E, previous: any, next: any, key: string) => {
  if (entry.liveSlot >= 0) table.records[entry.liveSlot] = next
  if (entry.key !== key) {
    if (table.servers.get(entry.key) === entry) table.servers.delete(entry.key)
    table.servers.set(key, entry)
    entry.key = key
  }
  if (table.indexes.size === 0) return
  for (const [field, index] of table.indexes) {
    const before = previous === undefined ? undefined : previous[field]
    const after = next[field]
    if (previous !== undefined && before === after) continue
    if (previous !== undefined && indexValue(before)) {
      const set = index.get(before)
      if (set !== undefined) {
        set.delete(entry)
        if (set.size === 0) index.delete(before)
      }
    }
    if (indexValue(after)) {
      const set = index.get(after)
      if (set === undefined) index.set(after, new Set([entry]))
      else set.add(entry)
    }
  }
}

/** Adds an entry with its committed record to the dense arrays. @internal */
export const enlistUnsafe = <E extends Entry>(table: Table<E>, entry: E, record: unknown): void => {
  if (entry.liveSlot >= 0) return
  entry.liveSlot = table.live.push(entry) - 1
  table.records.push(record)
}

/** Takes an entry out of the dense arrays (scans stop seeing it). @internal */
export const delistUnsafe = <E extends Entry>(table: Table<E>, entry: E): void => {
  if (entry.liveSlot < 0) return
  const last = table.live.pop()!
  const lastRecord = table.records.pop()
  if (last !== entry) {
    table.live[entry.liveSlot] = last
    table.records[entry.liveSlot] = lastRecord
    last.liveSlot = entry.liveSlot
  }
  entry.liveSlot = -1
}

/** Removes an entry: its key, its slot and, given its last committed record, its index entries. @internal */
export const removeUnsafe = <E extends Entry>(table: Table<E>, entry: E, state: any): void => {
  if (table.servers.get(entry.key) === entry) table.servers.delete(entry.key)
  delistUnsafe(table, entry)
  if (state === undefined) return
  for (const [field, index] of table.indexes) {
    const v = state[field]
    if (!indexValue(v)) continue
    const set = index.get(v)
    if (set !== undefined) {
      set.delete(entry)
      if (set.size === 0) index.delete(v)
    }
  }
}
