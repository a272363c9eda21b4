/**
 * The registry: primary key -> record server, per resource, plus the
 * secondary indexes declared by resources.
 *
 * The registry is a plain synchronous structure owned by one data layer; it
 * is only touched from fibers of that data layer, and every operation is
 * O(1) (index maintenance is O(indexed fields)). A key is reserved before the
 * record that claims it is committed: a reserved key is taken for creates and
 * key changes, but lookups find nothing there until the commit.
 *
 * @since 0.1.0
 */
import type { RecordServer } from "./Server.js"

/**
 * The table of one resource.
 *
 * **Example** (Looking inside a table)
 *
 * ```ts
 * import { Registry } from "effect-gen-server"
 *
 * const registry = Registry.make([{ name: "Character", indexes: ["nickname"] }])
 * const table: Registry.Table = registry.tables.get("Character")!
 * table.indexes.has("nickname") // => true
 * table.servers.size // => 0
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Table {
  readonly resource: string
  readonly servers: Map<string, RecordServer>
  /** Every live server, once, densely (in no order): what a scan walks. Expiring servers leave it at their deadline. */
  readonly live: Array<RecordServer>
  /** The committed record of each server in `live`, at the same position. */
  readonly records: Array<unknown>
  readonly indexes: ReadonlyMap<string, Map<unknown, Set<RecordServer>>>
}

/**
 * Every resource's table.
 *
 * **Example** (Keys held, per resource)
 *
 * ```ts
 * import { Registry } from "effect-gen-server"
 *
 * const sizes = (registry: Registry.Registry) =>
 *   Object.fromEntries([...registry.tables.keys()].map((name) => [name, Registry.size(registry, name)]))
 *
 * sizes(Registry.make([{ name: "Character", indexes: [] }, { name: "Machine", indexes: [] }]))
 * // => { Character: 0, Machine: 0 }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Registry {
  readonly tables: ReadonlyMap<string, Table>
}

/**
 * Creates an empty registry for the given resources, with their indexes.
 *
 * **Example** (A registry for one resource)
 *
 * ```ts
 * import { Registry } from "effect-gen-server"
 *
 * const registry = Registry.make([{ name: "Character", indexes: ["nickname"] }])
 * Registry.size(registry, "Character") // => 0
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (
  resources: Iterable<{ readonly name: string; readonly indexes: ReadonlyArray<string> }>
): Registry => {
  const tables = new Map<string, Table>()
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

/**
 * The live server registered under a key, if any. A server that is starting,
 * stopped, or only reserving the key is not returned.
 *
 * **Example** (Looking up)
 *
 * ```ts
 * import { Registry } from "effect-gen-server"
 *
 * const registry = Registry.make([{ name: "Character", indexes: [] }])
 * Registry.lookup(registry.tables.get("Character")!, "marty") // => undefined
 * ```
 *
 * @category lookups
 * @since 0.1.0
 */
export const lookup = (table: Table, key: string): RecordServer | undefined => {
  const server = table.servers.get(key)
  return server !== undefined && server.status === "live" && server.key === key ? server : undefined
}

/**
 * Claims a key for a server. Returns `false` when another server holds or
 * reserves it, unless that server is live but `expired` (past its deadline):
 * its key is taken over, and its own removal later leaves the new holder be.
 *
 * **Example** (Claiming a key)
 *
 * ```ts
 * import { Registry } from "effect-gen-server"
 *
 * declare const table: Registry.Table
 * declare const server: Parameters<typeof Registry.reserve>[2]
 * Registry.reserve(table, "marty", server) // => true the first time
 * ```
 *
 * @category mutations
 * @since 0.1.0
 */
export const reserve = (
  table: Table,
  key: string,
  server: RecordServer,
  expired?: (holder: RecordServer) => boolean
): boolean => {
  const holder = table.servers.get(key)
  if (holder !== undefined && holder !== server) {
    // a record past its deadline holds no key, even while its expiry is in progress
    const stale = holder.key === key && holder.status === "live" && expired !== undefined && expired(holder)
    if (!stale) return false
  }
  table.servers.set(key, server)
  return true
}

/**
 * Gives back a key reserved by `server` that it will not use.
 *
 * **Example** (Releasing after a refused action)
 *
 * ```ts
 * import { Registry } from "effect-gen-server"
 *
 * declare const table: Registry.Table
 * declare const server: Parameters<typeof Registry.release>[2]
 * Registry.release(table, "doc", server)
 * ```
 *
 * @category mutations
 * @since 0.1.0
 */
export const release = (table: Table, key: string, server: RecordServer): void => {
  if (table.servers.get(key) === server && server.key !== key) table.servers.delete(key)
}

const indexValue = (v: unknown): boolean => v === null || (typeof v !== "object" && typeof v !== "function")

/**
 * Records a committed state: moves the server to `key` (which it must have
 * reserved) and updates the secondary indexes.
 *
 * **Example** (After an update)
 *
 * ```ts
 * import { Registry } from "effect-gen-server"
 *
 * declare const table: Registry.Table
 * declare const server: Parameters<typeof Registry.commit>[1]
 * Registry.commit(table, server, { id: "1", nickname: "Doc" }, { id: "1", nickname: "Emmett" }, "1")
 * ```
 *
 * @category mutations
 * @since 0.1.0
 */
export const commit = (table: Table, server: RecordServer, previous: any, next: any, key: string): void => {
  if (server.liveSlot >= 0) table.records[server.liveSlot] = next
  if (server.key !== key) {
    if (table.servers.get(server.key) === server) table.servers.delete(server.key)
    table.servers.set(key, server)
    server.key = key
  }
  if (table.indexes.size === 0) return
  for (const [field, index] of table.indexes) {
    const before = previous === undefined ? undefined : previous[field]
    const after = next[field]
    if (previous !== undefined && before === after) continue
    if (previous !== undefined && indexValue(before)) {
      const set = index.get(before)
      if (set !== undefined) {
        set.delete(server)
        if (set.size === 0) index.delete(before)
      }
    }
    if (indexValue(after)) {
      const set = index.get(after)
      if (set === undefined) index.set(after, new Set([server]))
      else set.add(server)
    }
  }
}

/**
 * Adds a live server and its committed record to the table's dense arrays,
 * which scans walk: done once its create has succeeded.
 *
 * **Example** (What a record server does once created)
 *
 * ```ts
 * import { Registry, Server } from "effect-gen-server"
 *
 * declare const table: Registry.Table
 * declare const server: Server.RecordServer
 * Registry.enlist(table, server)
 * table.records[server.liveSlot] === server.state.ref.current // => true
 * ```
 *
 * @category mutations
 * @since 0.1.0
 */
export const enlist = (table: Table, server: RecordServer): void => {
  if (server.liveSlot >= 0) return
  server.liveSlot = table.live.push(server) - 1
  table.records.push(server.state.ref.current)
}

/**
 * Removes a server from the table's dense arrays (scans no longer see it),
 * keeping its key: what an expiry does at the deadline, before the record's
 * fiber has run its destroy action.
 *
 * **Example** (A record past its deadline)
 *
 * ```ts
 * import { Registry, Server } from "effect-gen-server"
 *
 * declare const table: Registry.Table
 * declare const server: Server.RecordServer
 * Registry.delist(table, server)
 * server.liveSlot // => -1
 * ```
 *
 * @category mutations
 * @since 0.1.0
 */
export const delist = (table: Table, server: RecordServer): void => {
  if (server.liveSlot < 0) return
  const last = table.live.pop()!
  const lastRecord = table.records.pop()
  if (last !== server) {
    table.live[server.liveSlot] = last
    table.records[server.liveSlot] = lastRecord
    last.liveSlot = server.liveSlot
  }
  server.liveSlot = -1
}

/**
 * Removes a server, its key and its index entries.
 *
 * **Example** (After a destroy)
 *
 * ```ts
 * import { Registry } from "effect-gen-server"
 *
 * declare const table: Registry.Table
 * declare const server: Parameters<typeof Registry.remove>[1]
 * Registry.remove(table, server, { id: "1" })
 * ```
 *
 * @category mutations
 * @since 0.1.0
 */
export const remove = (table: Table, server: RecordServer, state: any): void => {
  if (table.servers.get(server.key) === server) table.servers.delete(server.key)
  delist(table, server)
  if (state === undefined) return
  for (const [field, index] of table.indexes) {
    const v = state[field]
    if (!indexValue(v)) continue
    const set = index.get(v)
    if (set !== undefined) {
      set.delete(server)
      if (set.size === 0) index.delete(v)
    }
  }
}

/**
 * The number of keys held (live, starting or reserved) for a resource.
 *
 * **Example** (Counting)
 *
 * ```ts
 * import { Registry } from "effect-gen-server"
 *
 * Registry.size(Registry.make([{ name: "Lobby", indexes: [] }]), "Lobby") // => 0
 * ```
 *
 * @category lookups
 * @since 0.1.0
 */
export const size = (registry: Registry, resource: string): number => registry.tables.get(resource)?.servers.size ?? 0
