/**
 * Durability on one process: the storage of the genServer data layer's
 * durable resources, over the SQL state store (`sql/stateStore.ts`).
 *
 * - **Writes** ({@link Durable.persist}): a create, update or destroy of a
 *   durable record is written by the state store's group commit before it is
 *   committed in memory, so before any caller sees it; the row's version
 *   fences a second process writing the same table (its write fails). Every
 *   write carries an operation id (the caller's, `Store.withOperationId`, or
 *   a new one), which the row remembers.
 * - **Storage faults** (`sql/faults.ts`) are refusals, never crashes: a
 *   write storage refused fails its call with `RecordCrashed` ("not
 *   applied") and the record keeps its state; a write whose fate is unknown
 *   (the connection failed) is settled by reading the row back, and only if
 *   that read fails too is its call answered `Unavailable` (`applied:
 *   "unknown"`, with its operation id): the record is then settled from its
 *   row before anything else touches it, and a retry under that id is
 *   answered without being applied again.
 * - **Start** ({@link Durable.restore}): every stored record is registered
 *   hibernated (no fiber: a compact entry with its state and deadlines), a
 *   page of rows at a time; its first request wakes it. A deadline that
 *   passed while the process was down expires the record at once, through
 *   its destroy action. A row of an older version is migrated; a row that
 *   cannot be decoded or migrated is moved to the quarantine table, logged
 *   and counted (`Metrics.quarantined`). A row of a newer version is served
 *   when this version's schema reads it, its unknown fields kept by every
 *   write; one it cannot read is never quarantined: calls to it fail with
 *   `Unavailable` naming both versions.
 * - **Activity** ({@link Durable.flush}): reads (get, keepAlive) move a
 *   record's inactivity deadline without a write each; the activity is
 *   written every `activityFlush` (and when the store closes). After a crash
 *   a record's inactivity deadline may come up to `activityFlush` early.
 * - **Tombstones** of removed records are kept for `operationRetention`
 *   (a destroy retried under its id is recognised), then purged.
 *
 * A change of primary key moves the row: the old one becomes a tombstone and
 * the new one is inserted, in one transaction.
 *
 * **Why one file of this size** (about 450 lines of code): it is the one
 * adapter between the record servers and the SQL state store, and its parts
 * share the bookkeeping of what storage may hold that memory does not know
 * (`unsure`, `unknownKeys`, the rows of newer versions). The SQL itself is
 * in `sql/`, the record's semantics in `record/`. Durable records on demand
 * (issue 20) replaces loading at start (`restore`, `register`, `flush`)
 * with the SQL-backed record of the cluster layer: this file shrinks then.
 *
 * @internal
 */
import { Cause, Duration, Effect, Exit, Schedule, type Scope } from "effect"
import type { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import type { StoreError, Unavailable } from "../Errors.js"
import type * as Metrics from "../Metrics.js"
import * as Registry from "./fiber/registry.js"
import * as Server from "./fiber/server.js"
import type * as Supervisor from "./fiber/supervisor.js"
import * as Failures from "./record/errors.js"
import * as Events from "./record/events.js"
import type { Compiled, CompiledAction } from "./resource.js"
import { decodeSchedules, encodeSchedules, type Newer, TooNew, wireCodecs } from "./sql/codec.js"
import type { StorageFailure } from "./sql/faults.js"
import * as Ops from "./sql/ops.js"
import { decodeRow, type Outcome, type StoredRow } from "./sql/rows.js"
import * as StateStore from "./sql/stateStore.js"

/** @internal */
export interface Options {
  /** Prepended to the tables' names. Default `"effect_gen_server_"`. */
  readonly tablePrefix?: string | undefined
  /** How often reads' activity is written. Default 5 seconds. */
  readonly activityFlush?: Duration.Input | undefined
  /** The largest batch of a group commit. Default 256. */
  readonly maxBatch?: number | undefined
  /** How long a removed record's row (its operation ids) is kept. Default 1 day. */
  readonly operationRetention?: Duration.Input | undefined
}

/** @internal */
export interface Durable {
  /** The storage of a resource's records; `undefined` for a resource that is not durable. */
  readonly persist: (resource: Compiled) => Server.Persistence | undefined
  /** Registers every stored record, hibernated, with the supervisor; quarantines what cannot be loaded. */
  readonly restore: (supervisor: Supervisor.Supervisor, nextId: () => number) => Effect.Effect<void>
  /** Writes the activity of records read since their last write. */
  readonly flush: Effect.Effect<void>
  /**
   * What storage says of a key no record in memory holds, when memory may
   * not know (a write whose fate was unknown, a row of a newer version):
   * `undefined` when memory knows; else an Effect that settles it (a record
   * found alive is registered) and fails with `Unavailable` when the key
   * cannot be served here.
   */
  readonly unsettled: (resource: Compiled, key: string) => Effect.Effect<void, Unavailable> | undefined
  /**
   * A create under an operation id the caller chose: what the create that
   * id applied already answered (the record it created, or the result its
   * action declares), if any: its retry is answered with it, not applied
   * again.
   */
  readonly created: (
    resource: Compiled,
    key: string,
    op: string,
    action: CompiledAction
  ) => Effect.Effect<{ readonly reply: unknown } | undefined, Unavailable>
  /**
   * A destroy under an operation id the caller chose, of a record memory
   * does not hold: what the destroy that id applied already answered
   * (nothing, or the result its action declares), if its row remembers it.
   */
  readonly removed: (
    resource: Compiled,
    key: string,
    op: string,
    action: CompiledAction
  ) => Effect.Effect<{ readonly reply: unknown } | undefined, Unavailable>
}

const pageSize = 10_000

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
    const store = yield* Effect.orDie(StateStore.make(sql, resources, {
      prefix: options.tablePrefix,
      maxBatch: options.maxBatch
    }))
    const durable = new Set(resources)
    const retention = Duration.toMillis(Duration.fromInputUnsafe(options.operationRetention ?? "1 day"))
    let supervisor: Supervisor.Supervisor | undefined
    let nextId: () => number = () => 0

    /** Records (by server) whose last write's fate is unknown, with its operation id. */
    const unsure = new Map<Server.RecordServer, string>()
    /** Keys (`resource\0key`) no record in memory holds that storage may hold: an unknown create, a newer row. */
    const unknownKeys = new Map<string, { readonly op: string } | TooNew>()
    /** What records loaded from a newer version's rows keep of them. */
    const newerOf = new WeakMap<Server.RecordServer, Newer>()
    const keyId = (resource: Compiled, key: string) => `${resource.name}\u0000${key}`

    /** The row of a key; a failure to read it is `Unavailable` (nothing was written). */
    const loadRow = (server: { readonly resource: Compiled }, key: string, op: string | undefined, action: string) =>
      Effect.mapError(
        store.load(server.resource, key),
        (e: SqlError) => Failures.unreachable(server.resource, server.resource.decodeKey(key), action, op, e.message)
      )

    /**
     * Runs a write of the record's row; then the server holds the row's new
     * version and the activity written. A refused write fails with
     * `RecordCrashed` ("not applied"); a conflict with `conflict()`; a write
     * whose fate is unknown is settled from its row first (see the module).
     */
    const stored = (
      server: Server.RecordServer,
      what: Failures.Write,
      action: string,
      key: string,
      op: string,
      write: Effect.Effect<Outcome, StorageFailure>,
      lastActivity: number,
      conflict: () => StoreError,
      to?: string
    ): Effect.Effect<void, StoreError> =>
      Effect.flatMap(Effect.exit(write), (exit): Effect.Effect<void, StoreError> => {
        if (Exit.isSuccess(exit)) {
          if (exit.value === "conflict") return Effect.fail(conflict())
          server.stored = exit.value
          server.storedActivity = lastActivity
          return Effect.void
        }
        const failure = Cause.findErrorOption(exit.cause)
        const reason = failure._tag === "Some" ? failure.value.message : Cause.pretty(exit.cause)
        if (failure._tag === "Some" && failure.value.applied === "no") {
          return Effect.fail(Failures.notApplied(server.resource, keyOf(server), what, reason))
        }
        // the answer was lost: the row tells
        const expected = what === "new record" ? 0 : server.stored
        return Effect.matchEffect(store.settle(server.resource, key, expected, op, to), {
          onFailure: () => {
            if (what === "new record") unknownKeys.set(keyId(server.resource, key), { op })
            else unsure.set(server, op)
            return Effect.fail(Failures.unknownOutcome(server.resource, keyOf(server), action, op, reason))
          },
          onSuccess: (settled) => {
            if (settled._tag === "Applied") {
              server.stored = settled.version
              server.storedActivity = lastActivity
              return Effect.void
            }
            if (settled._tag === "NotApplied") {
              return Effect.fail(Failures.notApplied(server.resource, keyOf(server), what, reason))
            }
            return Effect.fail(conflict())
          }
        })
      })

    const keyOf = (server: Server.RecordServer) =>
      Events.keyObject(server.resource, Server.committed(server) ?? server.createInput?.data)

    /** What the create ran with, as stored for `restart: "initial"` (JSON); `null` when not needed. */
    const storedInitial = (server: Server.RecordServer): unknown => {
      const input = server.createInput
      if (server.resource.restart !== "initial" || input === undefined) return null
      const wire = wireCodecs(server.resource)
      return {
        action: input.action.name,
        data: wire.encodeData(input.data),
        input: wire.encodeInput(input.action, input.input)
      }
    }

    /**
     * Settles a record whose last write's fate is unknown: its row says
     * whether that write was applied; if it was, the record takes the row's
     * state (its event published now) or is removed. Then tells whether
     * `op`, a caller's chosen id, was applied already.
     */
    const settle: Server.Persistence["settle"] = (server, op, action) => {
      const pending = unsure.get(server)
      if (pending === undefined && op === undefined) return undefined
      return Effect.flatMap(loadRow(server, server.key, op, "write"), (row) => {
        const seen = (id: string) => row !== undefined && Ops.remembers(row.ops, id)
        /** Whether the call's own id was applied already, with the result it answered then. */
        const applied = (): Effect.Effect<Server.Remembered | undefined, StoreError> => {
          const entry = op === undefined || row === undefined ? undefined : Ops.find(row.ops, op)
          if (entry === undefined) return Effect.succeed(undefined)
          try {
            return Effect.succeed({ result: Ops.resultOf(entry, action) })
          } catch (e) {
            const found = { message: `the result it answered cannot be read: ${e instanceof Error ? e.message : e}` }
            return Effect.fail(Failures.unreadableReply(server.resource, keyOf(server), action.name, found, op))
          }
        }
        if (pending === undefined || !seen(pending)) {
          // nothing of this process's was applied: the version it holds stays the one it wrote last, so a row
          // another process wrote since is still refused as fenced at the next write (never adopted here)
          unsure.delete(server)
          return applied()
        }
        // the write of unknown fate was applied: the record becomes what its row says
        unsure.delete(server)
        if (row!.alive) {
          server.stored = row!.version
          if (row!.state !== undefined) Server.adopt(server, row!.state)
          return applied()
        }
        if (row!.movedTo === undefined) {
          Server.adopt(server, undefined)
          return applied()
        }
        // a key change: the record lives on at its new key
        return Effect.flatMap(loadRow(server, row!.movedTo, op, "write"), (moved) => {
          if (moved === undefined || !moved.alive || moved.state === undefined) Server.adopt(server, undefined)
          else {
            server.stored = moved.version
            Server.adopt(server, moved.state)
          }
          return applied()
        })
      })
    }

    const fencedOrTaken = (server: Server.RecordServer, what: Failures.Write) => () =>
      Failures.notApplied(server.resource, keyOf(server), what, Failures.fenced)

    // suspended: a defect while encoding (an input its own codec cannot encode) is the write's refusal
    const persistence: Server.Persistence = {
      settle,
      remember: Ops.entry,
      created: (server, state, op, action, schedules) =>
        Effect.suspend(() => {
          const { lastActivity, resource } = server
          const key = resource.encodeKey(state)
          const write = store.write({
            _tag: "Insert",
            resource,
            key,
            state,
            createdAt: server.createdAt,
            lastActivity,
            initial: storedInitial(server),
            op,
            schedules: encodeSchedules(resource, schedules)
          })
          return stored(server, "new record", action, key, op, write, lastActivity, () => {
            const blocked = unknownKeys.get(keyId(resource, key))
            return blocked instanceof TooNew
              ? Failures.tooNew(resource, Events.keyObject(resource, state), "create", blocked)
              : Failures.alreadyExists(resource, Events.keyObject(resource, state))
          })
        }),
      updated: (server, state, key, op, action, schedules) =>
        Effect.suspend(() => {
          const lastActivity = server.lastActivity
          const newer = newerOf.get(server)
          const storedSchedules = encodeSchedules(server.resource, schedules)
          if (key === server.key) {
            const write = store.write({
              _tag: "Update",
              resource: server.resource,
              key,
              state,
              expected: server.stored,
              createdAt: server.createdAt,
              lastActivity,
              op,
              newer,
              schedules: storedSchedules
            })
            return stored(server, "change", action, key, op, write, lastActivity, fencedOrTaken(server, "change"))
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
            removedAt: time(),
            initial: storedInitial(server),
            op,
            newer,
            schedules: storedSchedules
          })
          return stored(
            server,
            "change",
            action,
            server.key,
            op,
            move,
            lastActivity,
            () =>
              Failures.notApplied(
                server.resource,
                keyOf(server),
                "change",
                `${Failures.fenced}, or its new key is taken`
              ),
            key
          )
        }),
      removed: (server, op, action) =>
        stored(
          server,
          "removal",
          action,
          server.key,
          op,
          store.write({
            _tag: "Tombstone",
            resource: server.resource,
            key: server.key,
            state: undefined,
            expected: server.stored,
            lastActivity: server.lastActivity,
            // when it was removed, not when it was last active: tombstones are kept `operationRetention` from it
            removedAt: time(),
            op
          }),
          server.lastActivity,
          fencedOrTaken(server, "removal")
        )
    }

    /** Registers a live row as a record, hibernated; quarantines it when it cannot be loaded. */
    const register = (resource: Compiled, row: StoredRow): Effect.Effect<void> => {
      const loaded = load(resource, row)
      if (loaded instanceof TooNew) {
        unknownKeys.set(keyId(resource, row.key), loaded)
        return Effect.logWarning(`${resource.name}: a stored record of a newer version cannot be read here`).pipe(
          Effect.annotateLogs({ resource: resource.name, key: row.key, reason: loaded.message })
        )
      }
      if (typeof loaded === "string") return quarantine(resource, row, loaded)
      enlist(resource, loaded)
      return Effect.void
    }

    const enlist = (resource: Compiled, loaded: Supervisor.Stored & { readonly newer: Newer | undefined }) => {
      const server = supervisor!.restore(resource, nextId(), loaded)
      if (loaded.newer !== undefined) newerOf.set(server, loaded.newer)
      metrics.get(resource.name)!.restored()
    }

    const restore: Durable["restore"] = (owner, ids) =>
      Effect.gen(function*() {
        supervisor = owner
        nextId = ids
        // rows of records removed longer ago than any retry of theirs are not needed any more
        yield* Effect.orDie(store.purge(time() - retention))
        for (const resource of resources) {
          let after: string | undefined = undefined
          do {
            const page: { readonly rows: ReadonlyArray<StoredRow>; readonly last: string | undefined } = yield* Effect
              .orDie(store.page(resource, after, pageSize))
            for (const row of page.rows) yield* register(resource, row)
            after = page.last
          } while (after !== undefined)
        }
      })

    /** A stored row as a record to restore, why it cannot be loaded, or `TooNew`. */
    const load = (
      resource: Compiled,
      row: StoredRow
    ): (Supervisor.Stored & { readonly newer: Newer | undefined }) | string | TooNew => {
      let loaded: { readonly state: unknown; readonly newer: Newer | undefined }
      try {
        loaded = decodeRow(resource, row)
      } catch (e) {
        if (e instanceof TooNew) return e
        return e instanceof Error ? e.message : String(e)
      }
      return {
        key: row.key,
        state: loaded.state,
        newer: loaded.newer,
        createdAt: row.createdAt,
        lastActivity: row.lastActivity,
        version: row.version,
        createInput: initialOf(resource, row.initial),
        schedules: decodeSchedules(resource, row.schedules)
      }
    }

    /** The stored input of the create, for `restart: "initial"`; `undefined` when none can be decoded. */
    const initialOf = (resource: Compiled, initial: unknown): Server.CreateInput | undefined => {
      if (resource.restart !== "initial" || initial === undefined || initial === null) return undefined
      try {
        const stored = initial as { readonly action: string; readonly data: unknown; readonly input: unknown }
        const action = resource.actions.get(stored.action)
        if (action === undefined || action.kind !== "create") return undefined
        const wire = wireCodecs(resource)
        return { action, data: wire.decodeData(stored.data), input: wire.decodeInput(action, stored.input) }
      } catch {
        // stored by an older version whose create input no longer decodes: a crash resumes the last state
        return undefined
      }
    }

    const quarantine = (resource: Compiled, row: StoredRow, reason: string) =>
      Effect.gen(function*() {
        const moved = yield* Effect.orDie(store.quarantine(row, reason, time()))
        if (!moved) return
        metrics.get(resource.name)!.quarantined()
        yield* Effect.logError(`${resource.name}: a stored record could not be loaded and was quarantined`).pipe(
          Effect.annotateLogs({ resource: resource.name, key: row.key, version: row.schemaVersion, reason })
        )
      })

    /** Reads the row of a key memory may not know (see `unsettled`): registers it when alive. */
    const reload = (resource: Compiled, key: string, action: string): Effect.Effect<void, Unavailable> =>
      Effect.flatMap(loadRow({ resource }, key, undefined, action), (row): Effect.Effect<void, Unavailable> => {
        const id = keyId(resource, key)
        if (row?.tooNew !== undefined) {
          unknownKeys.set(id, row.tooNew)
          return Effect.fail(Failures.tooNew(resource, resource.decodeKey(key), action, row.tooNew))
        }
        unknownKeys.delete(id)
        if (row === undefined || !row.alive) return Effect.void
        if (row.undecodable !== undefined) return quarantine(resource, row.undecodable.stored, row.undecodable.reason)
        // registered meanwhile (by another call's reload)
        if (Registry.lookup(registry.tables.get(resource.name)!, key) !== undefined) return Effect.void
        enlist(resource, {
          key,
          state: row.state,
          newer: row.newer,
          createdAt: row.createdAt,
          lastActivity: row.lastActivity,
          version: row.version,
          createInput: initialOf(resource, row.initial),
          schedules: decodeSchedules(resource, row.schedules)
        })
        return Effect.void
      })

    const unsettled: Durable["unsettled"] = (resource, key) => {
      if (unknownKeys.size === 0 || !durable.has(resource)) return undefined
      const known = unknownKeys.get(keyId(resource, key))
      if (known === undefined) return undefined
      return reload(resource, key, "get")
    }

    const created: Durable["created"] = (resource, key, op, action) =>
      Effect.flatMap(loadRow({ resource }, key, op, "create"), (row) => {
        const entry = row === undefined ? undefined : Ops.find(row.ops, op)
        if (row === undefined || !row.alive || entry === undefined || row.state === undefined) {
          return Effect.succeed(undefined)
        }
        let reply: unknown
        try {
          reply = action.checkResult === undefined ? row.state : Ops.resultOf(entry, action)
        } catch (e) {
          const found = { message: `the result it answered cannot be read: ${e instanceof Error ? e.message : e}` }
          return Effect.fail(
            Failures.unreadableReply(resource, Events.keyObject(resource, row.state), action.name, found, op)
          )
        }
        const live = Registry.lookup(registry.tables.get(resource.name)!, key)
        if (live !== undefined) {
          return Effect.succeed({ reply: action.checkResult === undefined ? Server.committed(live) : reply })
        }
        unknownKeys.set(keyId(resource, key), { op })
        return Effect.as(reload(resource, key, "create"), { reply })
      })

    const removed: Durable["removed"] = (resource, key, op, action) =>
      Effect.flatMap(loadRow({ resource }, key, op, action.name), (row) => {
        const entry = row === undefined ? undefined : Ops.find(row.ops, op)
        if (entry === undefined) return Effect.succeed(undefined)
        try {
          return Effect.succeed({ reply: Ops.resultOf(entry, action) })
        } catch (e) {
          const found = { message: `the result it answered cannot be read: ${e instanceof Error ? e.message : e}` }
          return Effect.fail(Failures.unreadableReply(resource, resource.decodeKey(key), action.name, found, op))
        }
      })

    const flush: Durable["flush"] = Effect.suspend(() => {
      const touches: Array<Effect.Effect<unknown, StorageFailure>> = []
      for (const resource of resources) {
        if (resource.idleMillis === undefined) continue
        for (const server of registry.tables.get(resource.name)!.live) {
          if (server.stored <= 0 || server.lastActivity <= server.storedActivity) continue
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

    const purge = Effect.catchCause(
      Effect.suspend(() => store.purge(time() - retention)),
      (cause) =>
        Effect.logWarning("the rows of removed durable records could not be purged").pipe(
          Effect.annotateLogs("cause", Cause.pretty(cause))
        )
    )

    const every = Duration.fromInputUnsafe(options.activityFlush ?? "5 seconds")
    if (resources.some((r) => r.idleMillis !== undefined)) {
      yield* Effect.addFinalizer(() => flush)
      yield* Effect.forkScoped(Effect.repeat(flush, Schedule.spaced(every)))
    }
    // purged at start (`restore`), then about every quarter of the retention
    const purgeEvery = Duration.millis(Math.max(retention / 4, 1000))
    yield* Effect.forkScoped(
      Effect.andThen(Effect.sleep(purgeEvery), Effect.repeat(purge, Schedule.spaced(purgeEvery)))
    )

    return {
      persist: (resource) => durable.has(resource) ? persistence : undefined,
      restore,
      flush,
      unsettled,
      created,
      removed
    }
  })
