/**
 * Durability on one process: the storage of the genServer data layer's
 * durable resources, over the SQL state store (`sqlState.ts`).
 *
 * - **Writes** ({@link Durable.persist}): a create, update or destroy of a
 *   durable record is written by the state store's group commit before it is
 *   committed in memory, so before any caller sees it; the row's version
 *   fences a second process writing the same table (its write fails).
 * - **Start** ({@link Durable.restore}): every stored record is registered
 *   hibernated (no fiber: a compact entry with its state and deadlines), a
 *   page of rows at a time; its first request wakes it. A deadline that
 *   passed while the process was down expires the record at once, through
 *   its destroy action. A row of an older version is migrated; a row that
 *   cannot be decoded or migrated is moved to the quarantine table, logged
 *   and counted (`Metrics.quarantined`).
 * - **Activity** ({@link Durable.flush}): reads (get, keepAlive) move a
 *   record's inactivity deadline without a write each; the activity is
 *   written every `activityFlush` (and when the store closes). After a crash
 *   a record's inactivity deadline may come up to `activityFlush` early.
 *
 * A change of primary key moves the row: the old one becomes a tombstone and
 * the new one is inserted, in one transaction.
 *
 * @internal
 */
import { Cause, Duration, Effect, Schedule, type Scope } from "effect"
import type { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import { AlreadyExists, RecordCrashed, type StoreError } from "../Errors.js"
import type * as Metrics from "../Metrics.js"
import type * as Registry from "./registry.js"
import type { Compiled } from "./resource.js"
import * as Server from "./server.js"
import * as SqlState from "./sqlState.js"
import type * as Supervisor from "./supervisor.js"

/** @internal */
export interface Options {
  /** Prepended to the tables' names. Default `"effect_gen_server_"`. */
  readonly tablePrefix?: string | undefined
  /** How often reads' activity is written. Default 5 seconds. */
  readonly activityFlush?: Duration.Input | undefined
  /** The largest batch of a group commit. Default 256. */
  readonly maxBatch?: number | undefined
}

/** @internal */
export interface Durable {
  /** The storage of a resource's records; `undefined` for a resource that is not durable. */
  readonly persist: (resource: Compiled) => Server.Persistence | undefined
  /** Registers every stored record, hibernated, with the supervisor; quarantines what cannot be loaded. */
  readonly restore: (supervisor: Supervisor.Supervisor, nextId: () => number) => Effect.Effect<void>
  /** Writes the activity of records read since their last write. */
  readonly flush: Effect.Effect<void>
}

const pageSize = 10_000

/** The error of a write that storage refused or failed: the record stays as it was. */
const storageFailed = (server: Server.RecordServer, what: string) => (error: SqlError | string): RecordCrashed => {
  const key = Server.keyObject(server.resource, Server.committed(server) ?? server.createInput?.data)
  return new RecordCrashed({
    resource: server.resource.name,
    key,
    message: `${server.resource.name} ${JSON.stringify(key)}: storing the ${what} failed, so it was not applied: ${
      typeof error === "string" ? error : error.message
    }`,
    defect: typeof error === "string" ? undefined : error
  })
}

const fenced = "the stored row was written by another process since this one loaded it"

/**
 * The storage of `resources` (the durable ones) over `sql`: creates its
 * tables, runs its group commit and its activity flush until the scope
 * closes (flushing once more then).
 *
 * @internal
 */
export const make = (
  sql: SqlClient.SqlClient,
  resources: ReadonlyArray<Compiled>,
  options: Options,
  registry: Registry.Registry<Server.RecordServer>,
  metrics: ReadonlyMap<string, Metrics.ResourceMetrics>,
  time: () => number
): Effect.Effect<Durable, never, Scope.Scope> =>
  Effect.gen(function*() {
    const store = yield* Effect.orDie(SqlState.make(sql, resources, {
      prefix: options.tablePrefix,
      maxBatch: options.maxBatch
    }))
    const durable = new Set(resources)
    const codecs = new Map(resources.map((r) => [r, SqlState.wireCodecs(r)]))

    /**
     * Runs a write of the record's row; then the server holds the row's new
     * version and the activity written. A write refused for a newer row
     * ("conflict") fails with `conflict` (by default: fenced).
     */
    const stored = (
      server: Server.RecordServer,
      what: string,
      write: Effect.Effect<SqlState.Outcome, SqlError>,
      lastActivity: number,
      conflict: () => StoreError = () => storageFailed(server, what)(fenced)
    ): Effect.Effect<void, StoreError> =>
      Effect.flatMap(Effect.mapError(write, storageFailed(server, what)), (outcome) => {
        if (outcome === "conflict") return Effect.fail(conflict())
        server.stored = outcome
        server.storedActivity = lastActivity
        return Effect.void
      })

    /** What the create ran with, as stored for `restart: "initial"` (JSON); `null` when not needed. */
    const storedInitial = (server: Server.RecordServer): unknown => {
      const input = server.createInput
      if (server.resource.resource.restart !== "initial" || input === undefined) return null
      const wire = codecs.get(server.resource)!
      return {
        action: input.action.name,
        data: wire.encodeData(input.data),
        input: wire.encodeInput(input.action, input.input)
      }
    }

    // suspended: a defect while encoding (an input its own codec cannot encode) crashes the call, not the fiber
    const persistence: Server.Persistence = {
      created: (server, state) =>
        Effect.suspend(() => {
          const { lastActivity, resource } = server
          const write = store.write({
            _tag: "Insert",
            resource,
            key: resource.encodeKey(state),
            state,
            createdAt: server.createdAt,
            lastActivity,
            initial: storedInitial(server),
            op: "",
            ops: []
          })
          return stored(server, "new record", write, lastActivity, () => {
            const key = Server.keyObject(resource, state)
            return new AlreadyExists({
              resource: resource.name,
              key,
              message: `${resource.name} ${JSON.stringify(key)} already exists (in storage)`
            })
          })
        }),
      updated: (server, state, key) =>
        Effect.suspend(() => {
          const lastActivity = server.lastActivity
          if (key === server.key) {
            const write = store.write({
              _tag: "Update",
              resource: server.resource,
              key,
              state,
              expected: server.stored,
              createdAt: server.createdAt,
              lastActivity,
              op: "",
              ops: []
            })
            return stored(server, "change", write, lastActivity)
          }
          // a new primary key: the row moves, in one transaction
          const move = store.move({
            resource: server.resource,
            from: server.key,
            expected: server.stored,
            to: key,
            state,
            createdAt: server.createdAt,
            lastActivity,
            initial: storedInitial(server)
          })
          return stored(
            server,
            "change",
            move,
            lastActivity,
            () => storageFailed(server, "change")(`${fenced}, or its new key is taken in storage`)
          )
        }),
      removed: (server) =>
        stored(
          server,
          "removal",
          store.write({
            _tag: "Tombstone",
            resource: server.resource,
            key: server.key,
            state: undefined,
            expected: server.stored,
            lastActivity: server.lastActivity,
            op: "",
            ops: []
          }),
          server.lastActivity
        )
    }

    const restore: Durable["restore"] = (supervisor, nextId) =>
      Effect.gen(function*() {
        // rows of records removed before this start are not needed any more
        yield* Effect.orDie(store.purge(time() + 1))
        for (const resource of resources) {
          const resourceMetrics = metrics.get(resource.name)!
          let after: string | undefined = undefined
          do {
            const page: { readonly rows: ReadonlyArray<SqlState.StoredRow>; readonly last: string | undefined } =
              yield* Effect.orDie(store.page(resource, after, pageSize))
            for (const row of page.rows) {
              const loaded = load(resource, row)
              if (typeof loaded === "string") {
                yield* quarantine(resource, row, loaded, resourceMetrics)
                continue
              }
              supervisor.restore(resource, nextId(), loaded)
              resourceMetrics.restored()
            }
            after = page.last
          } while (after !== undefined)
        }
      })

    /** A stored row as a record to restore, or why it cannot be loaded. */
    const load = (resource: Compiled, row: SqlState.StoredRow): Supervisor.Stored | string => {
      let state: unknown
      try {
        state = SqlState.decodeStored(resource, row.json, row.schemaVersion)
      } catch (e) {
        return e instanceof Error ? e.message : String(e)
      }
      const key = resource.encodeKey(state)
      if (key !== row.key) return `its state holds another key (${key}) than its row (${row.key})`
      return {
        key,
        state,
        createdAt: row.createdAt,
        lastActivity: row.lastActivity,
        version: row.version,
        createInput: initialOf(resource, row.initial)
      }
    }

    /** The stored input of the create, for `restart: "initial"`; `undefined` when none can be decoded. */
    const initialOf = (resource: Compiled, initial: unknown): Server.CreateInput | undefined => {
      if (resource.resource.restart !== "initial" || initial === undefined || initial === null) return undefined
      try {
        const stored = initial as { readonly action: string; readonly data: unknown; readonly input: unknown }
        const action = resource.actions.get(stored.action)
        if (action === undefined || action.kind !== "create") return undefined
        const wire = codecs.get(resource)!
        return { action, data: wire.decodeData(stored.data), input: wire.decodeInput(action, stored.input) }
      } catch {
        // stored by an older version whose create input no longer decodes: a crash resumes the last state
        return undefined
      }
    }

    const quarantine = (
      resource: Compiled,
      row: SqlState.StoredRow,
      reason: string,
      resourceMetrics: Metrics.ResourceMetrics
    ) =>
      Effect.gen(function*() {
        const moved = yield* Effect.orDie(store.quarantine(row, reason, time()))
        if (!moved) return
        resourceMetrics.quarantined()
        yield* Effect.logError(`${resource.name}: a stored record could not be loaded and was quarantined`).pipe(
          Effect.annotateLogs({ resource: resource.name, key: row.key, version: row.schemaVersion, reason })
        )
      })

    const flush: Durable["flush"] = Effect.suspend(() => {
      const touches: Array<Effect.Effect<unknown, SqlError>> = []
      for (const resource of resources) {
        if (resource.idleMillis === undefined) continue
        for (const server of registry.tables.get(resource.name)!.live) {
          if (server.stored === 0 || server.lastActivity <= server.storedActivity) continue
          const lastActivity = server.lastActivity
          touches.push(Effect.map(
            store.write({ _tag: "Touch", resource, key: server.key, expected: server.stored, lastActivity }),
            (outcome) => {
              // a conflict: the record was written since (with its activity): nothing to do
              if (outcome !== "conflict" && lastActivity > server.storedActivity) server.storedActivity = lastActivity
            }
          ))
        }
      }
      return Effect.catchCause(
        Effect.forEach(touches, (touch) => touch, { concurrency: 1024, discard: true }),
        (cause) =>
          Effect.logWarning("the activity of durable records could not be written").pipe(
            Effect.annotateLogs("cause", Cause.pretty(cause))
          )
      )
    })

    const every = Duration.fromInputUnsafe(options.activityFlush ?? "5 seconds")
    if (resources.some((r) => r.idleMillis !== undefined)) {
      yield* Effect.addFinalizer(() => flush)
      yield* Effect.forkScoped(Effect.repeat(flush, Schedule.spaced(every)))
    }

    return { persist: (resource) => durable.has(resource) ? persistence : undefined, restore, flush }
  })
