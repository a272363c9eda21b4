/**
 * The cluster data layer: every resource an `effect/cluster` entity type,
 * every record an entity whose id is its encoded primary key, its committed
 * state in the SQL state store (`sqlState.ts`).
 *
 * - A write (create, update, destroy) is admitted in the caller's process
 *   (resource, action, input decoded: bad input never leaves it), sent to the
 *   record's entity with an operation id, run there through the pipeline
 *   (hooks run on the owner), committed to SQL (group commit, fenced by the
 *   row's version) and only then answered and published.
 * - Retries: a call that fails for a reason of the cluster (a shard moving,
 *   a runner gone, an interrupted reply) is re-sent with the same operation
 *   id; the row remembers its last operation ids, so a write applied before
 *   the failure is not applied again (the retry answers with the current
 *   record). The id is the caller's when it chose one
 *   (`Store.withOperationId`): a write the caller sends again under it is
 *   recognised the same way. A call that gives up fails with `Unavailable`
 *   (naming the id, so the caller can send it again), saying whether
 *   any attempt may have reached the owner (`applied: "unknown"`) or none did
 *   (`"no"`: refused by routing, or fenced on the owner).
 * - `read` runs in SQL from any process and never activates an entity; `get`
 *   and `keepAlive` read the row, except on resources with an inactivity
 *   timeout, where they are messages to the owner (activity is kept in the
 *   owner's memory and written back at most once per quarter of the timeout,
 *   and when the record leaves the runner).
 * - Expiry: a cluster `Singleton` sweeper finds rows past their stored
 *   deadline and sends each owner an `Expire` message; the owner checks its
 *   in-memory activity and runs the destroy action, or writes its activity
 *   back. A record touched past its deadline is expired on the spot.
 * - Events: sent as PostgreSQL notifications in the commit's transaction and
 *   published by every process that hears them.
 * - A defect: `RecordCrashed` to the caller, then the restart policy
 *   (`initial` re-runs the stored create, `lastState`, `never`) and intensity
 *   (counted per activation).
 * - A key change: the old key's owner moves the row (`SqlState.move`: a
 *   tombstone remembering the operation id and the new key, and the new row,
 *   in one transaction), answers and publishes `Updated` under the new key.
 *   An absent record reads its row again before a call relies on its
 *   absence, so the new key's entity, wherever it runs and even if resident
 *   as absent, serves the moved record.
 * - A row that cannot be loaded (`Row.undecodable`) is quarantined
 *   wherever it is found (`loadRow`), and its key read again.
 *
 * @internal
 */
import {
  Cause,
  Context,
  Duration,
  Effect,
  Exit,
  Layer,
  Option,
  Queue,
  RcRef,
  Schedule,
  Schema,
  type Scope,
  Semaphore,
  Stream
} from "effect"
import { Entity, RunnerStorage, Singleton } from "effect/cluster"
import type { Sharding } from "effect/cluster/Sharding"
import { Rpc } from "effect/rpc"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import type * as DataLayer from "../DataLayer.js"
import {
  type ActionError,
  type NotFound,
  type StoreClosed,
  StoreError,
  Unavailable,
  UnknownAction,
  ValidationError
} from "../Errors.js"
import type * as Event from "../Event.js"
import type * as Resource from "../Resource.js"
import * as Admission from "./admission.js"
import * as Events from "./events.js"
import * as Errors from "./record/errors.js"
import { describe as failureOf } from "./record/outcome.js"
import { prepare, type Prepared, type Refusal, runAfter, toEffect } from "./record/pipeline.js"
import type { Compiled, CompiledAction, Decoded } from "./resource.js"
import { keyObject } from "./server.js"
import { codecsOf, type Newer, type TooNew, type WireCodecs, wireCodecs } from "./sql/codec.js"
import { escapeKey, unescapeKey } from "./sql/escape.js"
import type { StorageFailure } from "./sql/faults.js"
import { noticeJoiner, noticePayloads } from "./sql/notices.js"
import { type NoticeHead, opsAfter, type Outcome, type Row } from "./sql/rows.js"
import * as StateStore from "./sql/stateStore.js"

/** Options of the cluster data layer. @internal */
export interface Options {
  /** Prepended to the state table's name. Default `"effect_gen_server_"`. */
  readonly tablePrefix?: string | undefined
  /**
   * Whether this process runs records (registers the entity types); `false`
   * for a client-only process. Default `true`.
   */
  readonly runner?: boolean | undefined
  /** How long a record stays in a runner's memory without a message. Default 1 minute. */
  readonly maxIdleTime?: Duration.Input | undefined
  /**
   * How many times a call failing for a reason of the cluster is re-sent
   * (same operation id) before it fails with `Unavailable`. Default 10: the
   * waits between sends grow from 50 ms by half each time, capped at 2 s,
   * so 10 retries wait about 5.7 s in all, and each retry beyond that 2 s.
   */
  readonly retries?: number | undefined
  /**
   * How often the expiry sweeper (a cluster `Singleton`, running on one
   * runner) looks for records past their stored deadline. Default 1 second.
   */
  readonly sweepInterval?: Duration.Input | undefined
  /**
   * How long a destroyed record's row is kept, with the operation ids it
   * applied (a destroy re-sent under its id within it is recognised), before
   * the sweeper deletes it. Default 1 day.
   */
  readonly operationRetention?: Duration.Input | undefined
}

/**
 * The calls of records a call runs on behalf of (run tokens,
 * `"Resource/entityId#<process>:<n>"`), outermost first: carried with every
 * message, so a cycle through records' running calls on any runner is refused
 * with `ReentrantCall` instead of deadlocking.
 *
 * @internal
 */
export const CurrentCallers = Context.Reference<ReadonlyArray<string>>("effect-gen-server/cluster/CurrentCallers", {
  defaultValue: () => []
})

/**
 * The errors a record's messages can fail with, decoded on the caller's side
 * into the same classes: the store's own, and every error an action of the
 * resource declares (`error`), so that a declared error reaches a caller in
 * another process as itself, `catchTag`-able.
 *
 * @internal
 */
// typed as the store's errors: the declared ones are the action's own types, checked at the Store call
export const errorSchemaOf = (resource: Compiled): typeof StoreError => {
  const cached = errorSchemas.get(resource)
  if (cached !== undefined) return cached as typeof StoreError
  const declared = [
    ...new Set(
      [...resource.actions.values()].map((action) => action.action.error as Schema.Top | undefined).filter((
        error
      ): error is Schema.Top => error !== undefined)
    )
  ]
  const schema = declared.length === 0 ? StoreError : Schema.Union([StoreError, ...declared])
  errorSchemas.set(resource, schema)
  return schema as typeof StoreError
}

const errorSchemas = new WeakMap<Compiled, Schema.Top>()

/** Whether a failure crosses the wire as itself: a store error or one an action of the resource declares. */
const knownErrors = new WeakMap<Compiled, (u: unknown) => boolean>()
const isKnownError = (resource: Compiled, u: unknown): boolean => {
  let is = knownErrors.get(resource)
  if (is === undefined) knownErrors.set(resource, is = Schema.is(errorSchemaOf(resource)) as (u: unknown) => boolean)
  return is(u)
}

/**
 * The owner's answer when a call could not be served now, for a reason that
 * passes: its commit was fenced (another runner committed a newer state of
 * the record: its shard moved), storage could not be read or did not confirm
 * the commit, or the record was stored by a newer version of its resource
 * than the owner runs. Never seen by a Store caller: the caller re-sends the
 * call (same operation id), which may reach another owner, and counts the
 * attempt as `applied` says; when its retries run out, it fails with
 * `Unavailable`, whose `lastFailure` is this message.
 */
const retryableTag = "effect-gen-server/cluster/Retryable"
class Retryable extends Schema.TaggedError<Retryable>()(retryableTag, {
  applied: Schema.Literals(["no", "unknown"]),
  message: Schema.String
}) {}

/** What a record's messages can fail with on the wire: the store's errors, the declared ones, `Retryable`. */
type WireError = StoreError | Retryable

const wireErrors = new WeakMap<Compiled, Schema.Top>()
const wireErrorsOf = (resource: Compiled): Schema.Codec<WireError, unknown> => {
  let schema = wireErrors.get(resource)
  if (schema === undefined) wireErrors.set(resource, schema = Schema.Union([errorSchemaOf(resource), Retryable]))
  return schema as unknown as Schema.Codec<WireError, unknown>
}

/** The entity protocol of one resource. @internal */
export const protocolOf = (resource: Compiled) =>
  Entity.make(resource.name, [
    Rpc.make("Create", {
      payload: {
        action: Schema.String,
        op: Schema.String,
        data: Schema.Unknown,
        input: Schema.Unknown,
        callers: Schema.Array(Schema.String)
      },
      success: Schema.Unknown,
      error: wireErrorsOf(resource)
    }),
    Rpc.make("Update", {
      payload: {
        action: Schema.String,
        op: Schema.String,
        input: Schema.Unknown,
        callers: Schema.Array(Schema.String)
      },
      success: Schema.Unknown,
      error: wireErrorsOf(resource)
    }),
    Rpc.make("Destroy", {
      payload: { action: Schema.String, op: Schema.String, callers: Schema.Array(Schema.String) },
      error: wireErrorsOf(resource)
    }),
    Rpc.make("Get", {
      payload: { callers: Schema.Array(Schema.String) },
      success: Schema.Unknown,
      error: wireErrorsOf(resource)
    }),
    Rpc.make("Expire", { payload: { now: Schema.Number }, success: Schema.Boolean, error: wireErrorsOf(resource) }),
    // whether the record's running call waits, through records' calls on any runner, on one of `callers`
    Rpc.make("Probe", {
      payload: { callers: Schema.Array(Schema.String), visited: Schema.Array(Schema.String) },
      success: Schema.Boolean
    })
  ])

type Protocol = ReturnType<typeof protocolOf>

/** The record a row holds in a runner's memory. */
interface Held {
  version: number
  state: any
  createdAt: number
  lastActivity: number
  /** The last activity written to the row. */
  flushed: number
  ops: ReadonlyArray<string>
  /** The row was stored by a newer version: what this one keeps unseen in its writes. */
  readonly newer: Newer | undefined
}

/**
 * The cluster data layer over `resources`. Requires `Sharding` and a
 * `SqlClient`; registers the entity types unless `runner: false`.
 *
 * @internal
 */
export const make = (
  resources: ReadonlyArray<Resource.Any>,
  options: DataLayer.Options,
  clusterOptions: Options = {}
): Effect.Effect<DataLayer.Service, never, Scope.Scope | Sharding | SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const { admit, admitQuery, admitRead, clock, compiled, gate, initialData, own } = yield* Admission.start(resources)
    const sql = yield* SqlClient.SqlClient
    const state = yield* Effect.orDie(StateStore.make(sql, compiled.values(), { prefix: clusterOptions.tablePrefix }))
    const hub = yield* Events.make(compiled.keys(), options.eventBuffer, own)
    const { metrics, publish } = hub
    yield* Effect.addFinalizer(() => Effect.sync(() => (gate.closed = true)))
    const retries = clusterOptions.retries ?? 10
    const retention = Duration.toMillis(Duration.fromInputUnsafe(clusterOptions.operationRetention ?? "1 day"))
    /** Set first when the layer's scope closes (its last finalizer): calls in flight stop re-sending. */
    let closing = false
    let context = own

    const entities = new Map<string, { readonly protocol: Protocol; readonly codecs: WireCodecs }>()
    for (const resource of compiled.values()) {
      entities.set(resource.name, { protocol: protocolOf(resource), codecs: wireCodecs(resource) })
    }

    const clients = new Map<string, (entityId: string) => any>()
    for (const resource of compiled.values()) {
      clients.set(resource.name, yield* entities.get(resource.name)!.protocol.client)
    }

    const keyChanged = (resource: Compiled, action: string) =>
      new ValidationError({
        resource: resource.name,
        message: `${resource.name}.${action}: a create's hooks cannot change the primary key it was sent under`
      })
    const deadlineOf = (resource: Compiled, held: Held) =>
      Math.min(
        resource.idleMillis === undefined ? Infinity : held.lastActivity + resource.idleMillis,
        resource.lifetimeMillis === undefined ? Infinity : held.createdAt + resource.lifetimeMillis
      )
    /** Whether a row's stored deadline has passed at `t`: its record is dead, its key free for a create. */
    const pastDeadline = (row: Row, t: number) =>
      (row.inactivityDeadline !== undefined && t >= row.inactivityDeadline) ||
      (row.lifetimeDeadline !== undefined && t >= row.lifetimeDeadline)
    /** The deadline that passed first (lifetime on a tie), whenever the record is found past it. */
    const expiryReason = (resource: Compiled, held: Held): Event.DestroyReason =>
      resource.lifetimeMillis !== undefined &&
        (resource.idleMillis === undefined ||
          held.createdAt + resource.lifetimeMillis <= held.lastActivity + resource.idleMillis)
        ? "lifetime"
        : "inactivity"

    // ---------------------------------------------------------------- events

    /**
     * Events cross the cluster as PostgreSQL notifications sent in the
     * transaction of their commit (in commit order, only if it commits), and
     * every other process with a subscriber publishes what it hears: each
     * event once, in per-record order. The owner's process publishes its own
     * events as soon as they commit, before the call is answered (a notice
     * names the process it came from, which skips it), and counts them in its
     * metrics; an event heard is not counted again. An event longer than a
     * notification holds is sent in chunks (`SqlState.noticeBytes`). Without
     * a PostgreSQL client (no `listen`), the event is published in the
     * owner's process only.
     */
    const pg = sql as unknown as {
      readonly listen?: (
        channel: string
      ) => Effect.Effect<Queue.Dequeue<{ readonly payload: string }, unknown>, unknown, Scope.Scope>
    }
    const notifying = typeof pg.listen === "function"
    /**
     * Notifications are database-wide, their channel named after the table
     * alone: a notice names its schema and table, and a notice of another
     * (another cluster in another schema of the database) is not ours.
     */
    const space = notifying
      ? `${
        (yield* Effect.orDie(sql.unsafe<{ readonly schema: string }>(`SELECT current_schema() AS schema`)))[0]?.schema
      }.${state.table}`
      : ""
    /** This process's instance of the data layer: its own notices are published when committed, not when heard. */
    const origin = crypto.randomUUID()
    /** How every notice of this process begins (`space`, then `origin`, first): heard, it is dropped unparsed. */
    const ownPrefix = JSON.stringify({ space, origin }).slice(0, -1) + ","
    const noticeOf = (event: Event.Event): string | undefined => {
      if (!notifying) return undefined
      const resource = compiled.get(event.resource)!
      const text = JSON.stringify({
        space,
        origin,
        _tag: event._tag,
        resource: event.resource,
        record: codecsOf(resource).encode(event.record),
        ...(event._tag === "Destroyed" ? { reason: event.reason } : {})
      })
      return text
    }
    const heads = new Map<string, NoticeHead>()
    /**
     * The notice of a write storing the event's record: PostgreSQL completes
     * it from the state the row stores, so the record is serialized once.
     */
    const noticeHeadOf = (event: Event.Event): NoticeHead | undefined => {
      if (!notifying) return undefined
      const id = `${event._tag}\u0000${event.resource}`
      let head = heads.get(id)
      if (head === undefined) {
        head = {
          head: `${ownPrefix}"_tag":${JSON.stringify(event._tag)},"resource":${
            JSON.stringify(event.resource)
          },"record":`
        }
        heads.set(id, head)
      }
      return head
    }
    /** An event without a commit. */
    const announce = (event: Event.Event): Effect.Effect<void> => {
      const notice = noticeOf(event)
      publish(event)
      if (notice === undefined) return Effect.void
      const payloads = noticePayloads(notice, crypto.randomUUID().replaceAll("-", ""))
      return Effect.ignore(
        payloads.length === 1
          ? sql.unsafe(`SELECT pg_notify($1, $2)`, [state.channel, notice])
          // one statement, one transaction: its chunks reach each listener together, in order
          : sql.unsafe(`SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, [
            state.channel,
            payloads as Array<string>
          ])
      )
    }
    /** Joins the chunks of long notices (`SqlState.noticeBytes`). */
    const joiner = noticeJoiner()
    const heard = (payload: string) => {
      // published here when it committed
      if (payload.startsWith(ownPrefix)) return
      try {
        const notice = JSON.parse(payload)
        // published here when it committed; or another cluster's
        if (notice.origin === origin || notice.space !== space) return
        const resource = compiled.get(notice.resource)
        if (resource === undefined) return
        const record = codecsOf(resource).decode(notice.record)
        const key = keyObject(resource, record)
        hub.relay(
          notice._tag === "Destroyed"
            ? { _tag: "Destroyed", resource: resource.name, key, record, reason: notice.reason }
            : { _tag: notice._tag, resource: resource.name, key, record }
        )
      } catch {
        // a notice of another version of the resources: not ours to publish
      }
    }
    /**
     * The process listens only while something subscribes to its events: a
     * process nobody subscribes in (most runners, a client that only calls)
     * receives no notice. The first subscription starts listening and returns
     * once PostgreSQL confirmed it, so it misses nothing committed after it.
     */
    const listener = notifying
      ? yield* RcRef.make({
        acquire: Effect.gen(function*() {
          const first = yield* Effect.orDie(pg.listen!(state.channel))
          const drain = (queue: Queue.Dequeue<{ readonly payload: string }, unknown>) =>
            Effect.forever(Effect.map(Queue.take(queue), (n) => {
              const notice = joiner(n.payload)
              if (notice !== undefined) heard(notice)
            }))
          yield* drain(first).pipe(
            Effect.catchCause((cause) =>
              Effect.logWarning("effect-gen-server: the cluster event listener stopped; listening again", cause).pipe(
                Effect.andThen(
                  Effect.scoped(Effect.flatMap(pg.listen!(state.channel), drain)).pipe(
                    Effect.retry(Schedule.spaced("1 second"))
                  )
                )
              )
            ),
            Effect.forkScoped
          )
        })
      })
      : undefined
    const events = listener === undefined ? hub.events : Stream.unwrap(Effect.as(RcRef.get(listener), hub.events))
    const subscribe = listener === undefined ? hub.subscribe : Effect.andThen(RcRef.get(listener), hub.subscribe)

    /**
     * The row of a record. A live row that cannot be loaded (its state does
     * not decode or migrate, is not JSON, or holds another key) is moved to
     * the quarantine table with the reason, logged and counted
     * (`Metrics.quarantined`), and the key read again: free, unless a newer
     * row was written meanwhile. A row of a newer version this one cannot
     * read is never quarantined: it is returned with `tooNew`.
     */
    const loadRow = (resource: Compiled, key: string): Effect.Effect<Row | undefined, SqlError> =>
      Effect.flatMap(state.load(resource, key), (row) => {
        if (row?.undecodable === undefined) return Effect.succeed(row)
        const { reason, stored } = row.undecodable
        return Effect.gen(function*() {
          const moved = yield* state.quarantine(stored, reason, clock.currentTimeMillisUnsafe())
          if (moved) {
            metrics.get(resource.name)?.quarantined()
            yield* Effect.logError(`${resource.name}: a stored record could not be loaded and was quarantined`).pipe(
              Effect.annotateLogs({ resource: resource.name, key, version: stored.schemaVersion, reason })
            )
          }
          return yield* loadRow(resource, key)
        })
      })

    /** A row that could not be read: the call is retried (nothing was applied). */
    const unreadable = (e: SqlError) =>
      new Retryable({ applied: "no", message: `storage could not be read: ${e.message}` })

    // ---------------------------------------------------------------- the owner

    /**
     * The wait-for graph of this process: the call each record runs (a run
     * token, `"Resource/entityId#<process>:<n>"`, the last entry of the
     * `CurrentCallers` its hooks carry), and the records each run has sent a
     * message to and waits on (recorded where the run is, before the message
     * leaves, and where the message arrives). A message arriving at a record
     * is refused with `ReentrantCall` when waiting for that record would close
     * a cycle: the record's run (or a run it waits on, through records' runs
     * here and, by `Probe`, on other runners) is one of the message's
     * callers. A record that runs nothing on behalf of
     * the callers is waited for, even if they passed through it before (a
     * call forked from a hook).
     */
    const runningIn = new Map<string, string>()
    const waitingOn = new Map<string, Array<string>>()
    /** The records whose entities are active in this process: a record reached that is not is on another runner. */
    const resident = new Set<string>()
    let runs = 0
    /**
     * Follows the waits from `target` through this process's runs: `true` when
     * one reaches a run of `callers`; the records reached that are not
     * resident here are pushed to `remote` (their runs are on other runners).
     */
    const localCycle = (target: string, callers: ReadonlyArray<string>, remote: Array<string>): boolean => {
      const seen = new Set<string>()
      const visit = (record: string): boolean => {
        if (seen.has(record)) return false
        seen.add(record)
        const run = runningIn.get(record)
        if (run === undefined) {
          if (!resident.has(record)) remote.push(record)
          return false
        }
        if (callers.includes(run)) return true
        return (waitingOn.get(run) ?? []).some(visit)
      }
      return visit(target)
    }
    /**
     * Whether waiting for `target` would close a cycle: through this process's
     * runs, then by a `Probe` to each record reached on another runner (which
     * follows its run's waits there, and so on, at most `maxProbeHops` records
     * deep). Every run's own waits are recorded in its own process before its
     * message leaves, so the message that closes a cycle finds every other
     * edge of it. A probe that fails or does not answer within 2 s counts as
     * no cycle.
     */
    const wouldDeadlock = (
      target: string,
      callers: ReadonlyArray<string>,
      visited: ReadonlyArray<string>
    ): boolean | Effect.Effect<boolean> => {
      if (callers.length === 0) return false
      const remote: Array<string> = []
      if (localCycle(target, callers, remote)) return true
      const next = remote.filter((record) => !visited.includes(record))
      if (next.length === 0 || visited.length >= maxProbeHops) return false
      const seen = [...visited, ...next]
      return Effect.map(
        Effect.forEach(next, (record) => probe(record, callers, seen), { concurrency: "unbounded" }),
        (answers) => answers.some((cycle) => cycle)
      )
    }
    const probe = (record: string, callers: ReadonlyArray<string>, visited: ReadonlyArray<string>) => {
      const resource = [...compiled.keys()].filter((name) =>
        record.startsWith(`${name}/`)
      ).sort((a, b) => b.length - a.length)[0]
      if (resource === undefined) return Effect.succeed(false)
      return (clients.get(resource)!(record.slice(resource.length + 1)).Probe({ callers, visited }) as Effect.Effect<
        boolean,
        unknown
      >).pipe(
        Effect.timeoutOrElse({ duration: "2 seconds", orElse: () => Effect.succeed(false) }),
        Effect.catchCause(() => Effect.succeed(false))
      )
    }
    const addEdge = (run: string, record: string) => {
      const targets = waitingOn.get(run)
      if (targets === undefined) waitingOn.set(run, [record])
      else targets.push(record)
    }
    const removeEdge = (run: string, record: string) => {
      const targets = waitingOn.get(run)
      if (targets === undefined) return
      const i = targets.indexOf(record)
      if (i >= 0) targets.splice(i, 1)
      if (targets.length === 0) waitingOn.delete(run)
    }

    /** The handlers of one record, built on its activation from its row. */
    const handlersOf = (resource: Compiled, protocol: Protocol, codecs: WireCodecs) =>
      Effect.gen(function*() {
        const address = yield* Entity.CurrentAddress
        const entityId = address.entityId as string
        const key = unescapeKey(entityId)
        /** The key as callers name it. */
        const keyObj = resource.decodeKey(key)
        const self = `${resource.name}/${entityId}`
        resident.add(self)
        yield* Effect.addFinalizer(() => Effect.sync(() => resident.delete(self)))
        let held: Held | undefined = undefined
        /** What the record's create ran with (JSON), for `restart: "initial"`. */
        let initial: unknown = undefined
        /** The version and ops of the row, alive or tombstone, for the next insert. */
        let tombstoneOps: ReadonlyArray<string> = []
        /** The key the record moved to, when its last change of key left this key a tombstone. */
        let movedTo: string | undefined = undefined
        /** The row was stored by a newer version of the resource that this one cannot read: calls are refused. */
        let blocked: TooNew | undefined = undefined
        /**
         * Whether what this entity holds is what the row says: not until the
         * row was read, nor after a commit whose answer was lost and could not
         * be settled (`unsure` keeps its event, published if it turns out
         * applied).
         */
        let known = false
        let unsure: { readonly op: string; readonly event: Event.Event } | undefined = undefined
        /** Holds what the row says (the record, or its absence). */
        const adopt = (row: Row | undefined) => {
          held = row === undefined || !row.alive || row.state === undefined ? undefined : {
            version: row.version,
            state: row.state,
            createdAt: row.createdAt,
            lastActivity: row.lastActivity,
            flushed: row.lastActivity,
            ops: row.ops,
            newer: row.newer
          }
          blocked = row?.tooNew
          initial = row !== undefined && row.alive ? row.initial : undefined
          tombstoneOps = row !== undefined && !row.alive ? row.ops : []
          movedTo = row !== undefined && !row.alive ? row.movedTo : undefined
          known = true
        }
        /** Reads the row; a commit whose answer was lost is settled by it (its event published if it was applied). */
        const reload: Effect.Effect<void, Retryable> = Effect.flatMap(
          Effect.mapError(loadRow(resource, key), unreadable),
          (row) => {
            const pending = unsure
            unsure = undefined
            adopt(row)
            if (pending !== undefined && row !== undefined && row.ops.includes(pending.op)) {
              return Effect.sync(() => publish(pending.event))
            }
            return Effect.void
          }
        )
        // a row that cannot be read now is read by the first call
        yield* Effect.ignore(reload)
        /** Whether no call has run since the activation loaded the row (the first needs no second read). */
        let activated = true
        /**
         * An absent record reads its row again before a call uses its absence:
         * another record may have moved to this key since (a key change,
         * committed by that record's owner). Not on the first call after the
         * activation, which has just read it; always when the row is not known.
         */
        const refresh: Effect.Effect<void, Retryable> = Effect.suspend(() => {
          const first = activated
          activated = false
          if (known && (held !== undefined || first)) return Effect.void
          return reload
        })

        const keyOf = () => held === undefined ? keyObj : keyObject(resource, held.state)
        const now = () => clock.currentTimeMillisUnsafe()
        /** One call at a time changes the record; `get` reads its committed state without waiting. */
        const lock = Semaphore.makeUnsafe(1)
        let currentRun = `${self}#${origin}:0`

        /** A record of a newer version than this runner's: retried by the caller, for an upgraded owner. */
        const skew = (found: TooNew) => new Retryable({ applied: "no", message: found.message })

        /**
         * Runs `effect` as the record: its hooks see its run in `CurrentCallers`, with the layer's services; their
         * own writes get operation ids of their own (a caller's id never reaches them, wherever the caller runs).
         */
        const asRecord = <A, E>(callers: ReadonlyArray<string>, effect: Effect.Effect<A, E, any>) =>
          effect.pipe(
            Effect.provideService(CurrentCallers, [...callers, currentRun]),
            Effect.provideService(Admission.CurrentOperationId, undefined),
            Effect.provideContext(context)
          ) as Effect.Effect<A, E>

        /**
         * A prepared change: its change function runs as the record
         * (`asRecord`) only when it is an effect; a plain change needs no
         * services.
         */
        const prepareAs = (
          callers: ReadonlyArray<string>,
          compiledAction: CompiledAction,
          data: unknown,
          input: Decoded
        ) => {
          const result = prepare(resource, compiledAction, data, input)
          return Effect.isEffect(result)
            ? asRecord(callers, result)
            : toEffect(result) as Effect.Effect<Prepared, Refusal>
        }
        /** The after hooks of a prepared change, run as the record; the record, at once, when it has none. */
        const afterAs = (
          callers: ReadonlyArray<string>,
          compiledAction: CompiledAction,
          prepared: Prepared
        ): Effect.Effect<any, ActionError> =>
          prepared.afterHooks.length === 0
            ? Effect.succeed(prepared.state)
            : asRecord(callers, runAfter(resource, compiledAction, prepared))

        /**
         * Runs `body` as the record's one running call, after the calls before
         * it; refused with `ReentrantCall` if waiting would deadlock.
         */
        const exclusive = <A>(
          callers: ReadonlyArray<string>,
          action: string,
          body: Effect.Effect<A, WireError>
        ): Effect.Effect<A, WireError> =>
          Effect.suspend(() => {
            const run = () => {
              const caller = callers.at(-1)
              if (caller !== undefined) addEdge(caller, self)
              return lock.withPermits(1)(Effect.suspend(() => {
                const run = `${self}#${origin}:${++runs}`
                currentRun = run
                runningIn.set(self, run)
                return Effect.ensuring(
                  body,
                  Effect.sync(() => runningIn.get(self) === run && runningIn.delete(self))
                )
              })).pipe(Effect.ensuring(Effect.sync(() => caller !== undefined && removeEdge(caller, self))))
            }
            const cycle = wouldDeadlock(self, callers, [self])
            if (cycle === false) return run()
            if (cycle === true) return Effect.fail(Errors.reentrant(resource, keyOf(), action))
            return Effect.flatMap(
              cycle,
              (found): Effect.Effect<A, WireError> =>
                found ? Effect.fail(Errors.reentrant(resource, keyOf(), action)) : run()
            )
          })

        /**
         * Answers a defect with `RecordCrashed`, after the restart policy: the
         * record keeps its last committed state. A storage failure is never a
         * defect here: it arrives typed (`RecordCrashed` not applied, or
         * `Retryable`), and the policy does not run for it.
         */
        const guard = <A>(effect: Effect.Effect<A, WireError>): Effect.Effect<A, WireError> =>
          Effect.catchCause(effect, (cause): Effect.Effect<A, WireError> => {
            const error = Cause.findErrorOption(cause)
            if (error._tag === "Some" && !Cause.hasDies(cause)) return Effect.fail(error.value)
            if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
            const answer = Errors.crashed(resource, keyOf(), cause)
            return Effect.andThen(afterCrash, Effect.fail(answer))
          })

        /** Crash times within the restart intensity's window (this activation's only). */
        let restarts: Array<number> = []

        /** The `Created`, `Updated` or `Restarted` event of the record in the state `record`. */
        const stateEvent = (tag: "Created" | "Updated" | "Restarted", record: any): Event.Event => ({
          _tag: tag,
          resource: resource.name,
          key: keyObject(resource, record),
          record
        })

        /**
         * What a commit came to: the row's new version, or `"conflict"`
         * (fenced, or an insert over a live row). A commit storage refused is
         * the caller's `RecordCrashed` ("not applied": the record keeps its
         * state). One whose answer was lost is settled from its row; when that
         * cannot be read either, the call is retryable (`applied: "unknown"`)
         * and the record reads its row before its next call.
         */
        const committed = (
          write: Effect.Effect<Outcome, StorageFailure>,
          what: Errors.Write,
          expected: number,
          op: string,
          event: Event.Event,
          to?: string
        ): Effect.Effect<Outcome, WireError> =>
          Effect.catch(write, (failure): Effect.Effect<Outcome, WireError> => {
            if (failure.applied === "no") {
              return Effect.fail(Errors.notApplied(resource, keyOf(), what, failure.message))
            }
            return Effect.matchEffect(state.settle(resource, key, expected, op, to), {
              onFailure: () => {
                known = false
                unsure = { op, event }
                return Effect.fail(
                  new Retryable({
                    applied: "unknown",
                    message: `storage did not confirm the commit: ${failure.message}`
                  })
                )
              },
              onSuccess: (settled): Effect.Effect<Outcome, WireError> =>
                settled._tag === "Applied"
                  ? Effect.succeed(settled.version)
                  : settled._tag === "Fenced"
                  ? Effect.succeed("conflict")
                  : Effect.fail(Errors.notApplied(resource, keyOf(), what, failure.message))
            })
          })

        /**
         * Commits `next` over `current` under the operation `op`, with its
         * event (`Updated`, or `Restarted` for a restart) in the same
         * statement; `false` when another owner committed first (fenced).
         */
        const commitUpdate = (current: Held, next: any, t: number, op: string, tag: "Updated" | "Restarted") =>
          Effect.gen(function*() {
            const event = stateEvent(tag, next)
            const write = state.write({
              _tag: "Update",
              resource,
              key,
              expected: current.version,
              createdAt: current.createdAt,
              state: next,
              lastActivity: t,
              op,
              newer: current.newer,
              notify: noticeHeadOf(event)
            })
            const outcome = yield* committed(write, "change", current.version, op, event)
            if (outcome === "conflict") return false
            held = {
              version: outcome,
              state: next,
              createdAt: current.createdAt,
              lastActivity: t,
              flushed: t,
              ops: opsAfter(current.ops, op),
              newer: current.newer
            }
            publish(event)
            return true
          })

        /**
         * Removes the record under the operation `op`, with its event
         * (`Destroyed` or `Failed`, of its last state) in the same statement;
         * `false` when another owner committed first (fenced).
         */
        const commitRemoval = (current: Held, t: number, op: string, event: Event.Event) =>
          Effect.gen(function*() {
            const write = state.write({
              _tag: "Tombstone",
              resource,
              key,
              expected: current.version,
              state: undefined,
              lastActivity: t,
              op,
              notify: noticeOf(event)
            })
            const outcome = yield* committed(write, "removal", current.version, op, event)
            if (outcome === "conflict") return false
            tombstoneOps = opsAfter(current.ops, op)
            held = undefined
            publish(event)
            return true
          })

        /**
         * Moves the record to the key `to` (a change of primary key) under the
         * operation `op`: in one transaction this row becomes a tombstone
         * remembering `op` and `to`, and `next` is inserted at `to` with its
         * event (`Updated`, or `Restarted` for a restart). `"fenced"` when
         * another owner committed this row first; `"taken"` when `to` holds a
         * live row (also one past its deadline: its expiry is its owner's to
         * run, and its owner may hold activity not yet written): nothing is
         * written. The entity of `to` (on any runner) reads the row on its next
         * call; this one holds no record any more, as after a destroy.
         */
        const commitMove = (
          current: Held,
          next: any,
          to: string,
          t: number,
          op: string,
          tag: "Updated" | "Restarted"
        ) =>
          Effect.gen(function*() {
            const event = stateEvent(tag, next)
            const move = state.move({
              resource,
              from: key,
              expected: current.version,
              to,
              state: next,
              createdAt: current.createdAt,
              lastActivity: t,
              initial,
              op,
              newer: current.newer,
              notify: noticeHeadOf(event),
              replaceExpired: false
            })
            const outcome = yield* committed(move, "change", current.version, op, event, to)
            if (outcome === "conflict") {
              // refused as a whole: this row changed (fenced), or the new key is live
              const old = yield* Effect.mapError(state.load(resource, key), unreadable)
              return old !== undefined && old.alive && old.version === current.version ? "taken" : "fenced"
            }
            tombstoneOps = opsAfter(current.ops, op)
            movedTo = to
            held = undefined
            initial = undefined
            publish(event)
            return "moved"
          })

        /** The `Destroyed` or `Failed` event of the record's last state (`failure`: why an expiry's action failed). */
        const removal = (current: Held, reason: Event.DestroyReason | "failed", failure?: string): Event.Event =>
          reason === "failed"
            ? {
              _tag: "Failed",
              resource: resource.name,
              key: keyObject(resource, current.state),
              record: current.state
            }
            : {
              _tag: "Destroyed",
              resource: resource.name,
              key: keyObject(resource, current.state),
              record: current.state,
              reason,
              ...(failure === undefined ? {} : { failure })
            }

        /** Removes a crashed record: tombstone, `Failed` with its last state. */
        const failRecord = (current: Held, t: number) =>
          Effect.asVoid(commitRemoval(current, t, `failed:${t}`, removal(current, "failed")))

        /**
         * `restart: "initial"`: runs the create action again with its stored
         * input, commits, `Restarted`. Without a stored input it can use (a
         * record stored by an older version, whose migration kept its state
         * and not its create), the record resumes its last state.
         */
        const recreate = (current: Held) =>
          Effect.gen(function*() {
            const stored = initial as { readonly action: string; readonly data: unknown; readonly input: unknown }
            const createAction = stored === undefined || stored === null
              ? undefined
              : resource.action(stored.action, "create")
            let decoded: { readonly input: Decoded; readonly data: unknown } | undefined = undefined
            if (createAction !== undefined && !(createAction instanceof UnknownAction)) {
              try {
                decoded = {
                  input: codecs.decodeInput(createAction, stored.input),
                  data: codecs.decodeData(stored.data)
                }
              } catch {
                decoded = undefined
              }
            }
            if (decoded === undefined || createAction === undefined || createAction instanceof UnknownAction) {
              yield* Effect.logWarning(
                `${resource.name} restarts "initial" but its stored create input cannot be used: it resumes its last state`
              ).pipe(Effect.annotateLogs({ resource: resource.name, key }))
              return yield* announce(stateEvent("Restarted", current.state))
            }
            const prepared = yield* toEffect(prepare(resource, createAction, decoded.data, decoded.input))
            const to = resource.encodeKey(prepared.state)
            yield* runAfter(resource, createAction, prepared)
            const t = now()
            if (to !== key) {
              // the record's key changed since its create: it moves back to the key its create gives
              const moved = yield* commitMove(current, prepared.state, to, t, `restart:${t}`, "Restarted")
              if (moved !== "moved") return yield* Effect.die(`the create's key: ${moved}`)
              return
            }
            if (!(yield* commitUpdate(current, prepared.state, t, `restart:${t}`, "Restarted"))) {
              return yield* Effect.die("fenced")
            }
          }).pipe((e) => asRecord([], e))

        /**
         * After a defect in an action: the restart policy (the declared one,
         * else `"lastState"`: the record is stored) and intensity. The
         * record's last committed state is untouched by the failed action.
         */
        const afterCrash: Effect.Effect<void> = Effect.suspend(() => {
          if (held === undefined) return Effect.void
          const current = held
          const t = now()
          restarts = restarts.filter((x) => t - x < resource.withinMillis)
          restarts.push(t)
          const policy = resource.storedRestart
          if (policy === "never" || restarts.length > resource.maxRestarts) {
            return Effect.ignoreCause(failRecord(current, t))
          }
          if (policy === "lastState") {
            return announce(stateEvent("Restarted", current.state))
          }
          return Effect.ignoreCause(Effect.catchCause(recreate(current), () => failRecord(current, now())))
        })

        const fenced = () =>
          Effect.flatMap(reload, () =>
            // nothing was applied: the caller re-sends the call, which reaches the new owner
            Effect.fail(
              new Retryable({
                applied: "no",
                message: `fenced: ${resource.name} ${
                  JSON.stringify(keyOf())
                }: another runner committed a newer state (the shard moved); the write was not applied`
              })
            ))

        /**
         * Expires the record if it is past its deadline at `t`: runs its
         * destroy action, then removes it, also when the action refuses or
         * dies (why is logged and carried by `Destroyed`), so that no record
         * outlives its deadline.
         */
        const expireIfDue = (t: number): Effect.Effect<boolean, WireError> => {
          if (held === undefined || !resource.hasTimeouts || t < deadlineOf(resource, held)) {
            return Effect.succeed(false)
          }
          const current = held
          const reason = expiryReason(resource, current)
          const action = resource.primaryDestroy
          return Effect.gen(function*() {
            const ran = yield* Effect.exit(asRecord(
              [],
              Effect.flatMap(
                toEffect(prepare(resource, action, current.state, Admission.noInput)),
                (prepared) => runAfter(resource, action, prepared)
              )
            ))
            let failure: string | undefined = undefined
            if (Exit.isFailure(ran)) {
              if (Cause.hasInterruptsOnly(ran.cause)) return yield* Effect.failCause(ran.cause as Cause.Cause<never>)
              const error = Cause.findErrorOption(ran.cause)
              failure = failureOf(
                error._tag === "Some" && !Cause.hasDies(ran.cause)
                  ? { _tag: "Refused", error: error.value as StoreError }
                  : { _tag: "Crashed", cause: ran.cause }
              )
              yield* Effect.logWarning(`${resource.name} expired (${reason}) but its destroy action failed: ${failure}`)
                .pipe(Effect.annotateLogs({ resource: resource.name, key }))
            }
            if (!(yield* commitRemoval(current, t, `expire:${t}`, removal(current, reason, failure)))) {
              return yield* fenced()
            }
            return true
          }).pipe(guard)
        }

        /** Activity: in memory, written back once a quarter of the inactivity timeout has passed. */
        const touch = (t: number): Effect.Effect<void> => {
          if (held === undefined || resource.idleMillis === undefined) return Effect.void
          held.lastActivity = t
          if (t - held.flushed < resource.idleMillis / 4) return Effect.void
          const current = held
          return Effect.ignore(Effect.tap(
            state.write({ _tag: "Touch", resource, key, expected: current.version, lastActivity: t }),
            (outcome) => Effect.sync(() => outcome !== "conflict" && (current.flushed = t))
          ))
        }

        // leaving this runner (passivation, a shard moving, shutdown): write back activity not yet written
        yield* Effect.addFinalizer(() => {
          if (held === undefined || resource.idleMillis === undefined || held.flushed >= held.lastActivity) {
            return Effect.void
          }
          const current = held
          return Effect.ignore(
            state.write({ _tag: "Touch", resource, key, expected: current.version, lastActivity: current.lastActivity })
          )
        })

        /** The record, unless it is absent or past its deadline (then it is expired first). */
        const live = (t: number) =>
          Effect.flatMap(
            expireIfDue(t),
            () => held === undefined ? Effect.fail(Errors.notFound(resource, keyObj)) : Effect.succeed(held)
          )

        const action = (name: string, kind: "create" | "update" | "destroy") => {
          const found = resource.action(name, kind)
          return found instanceof UnknownAction ? Effect.fail(found) : Effect.succeed(found)
        }

        /** Reads the row before a call, refusing it (retryable) while the row is a newer version's this one cannot read. */
        const ready: Effect.Effect<void, Retryable> = Effect.flatMap(
          refresh,
          () => blocked === undefined ? Effect.void : Effect.fail(skew(blocked))
        )

        return protocol.of({
          Create: ({ payload }) =>
            Effect.gen(function*() {
              yield* ready
              // a record this create did not make: its row again before refusing (another owner may have written it)
              if (held !== undefined && !held.ops.includes(payload.op)) yield* reload
              const t = now()
              yield* expireIfDue(t)
              if (held !== undefined) {
                // a retry of this very create answers with the record
                if (held.ops.includes(payload.op)) return codecs.encodeData(held.state)
                return yield* Errors.alreadyExists(resource, keyOf())
              }
              if (movedTo !== undefined && tombstoneOps.includes(payload.op)) {
                // a retry of this create, whose record has moved to another key since: answered with it there
                const moved = yield* Effect.mapError(loadRow(resource, movedTo), unreadable)
                if (moved !== undefined && moved.alive && moved.state !== undefined) {
                  return codecs.encodeData(moved.state)
                }
              }
              const compiledAction = yield* action(payload.action, "create")
              const decoded = codecs.decodeInput(compiledAction, payload.input)
              const data = codecs.decodeData(payload.data)
              const created = { action: payload.action, data: payload.data, input: payload.input }
              const record = yield* Effect.gen(function*() {
                const prepared = yield* prepareAs(payload.callers, compiledAction, data, decoded)
                if (resource.encodeKey(prepared.state) !== key) return yield* keyChanged(resource, payload.action)
                const reply = yield* afterAs(payload.callers, compiledAction, prepared)
                const committedAt = now()
                const event = stateEvent("Created", prepared.state)
                const write = state.write({
                  _tag: "Insert",
                  resource,
                  key,
                  state: prepared.state,
                  createdAt: committedAt,
                  lastActivity: committedAt,
                  initial: created,
                  op: payload.op,
                  notify: noticeHeadOf(event)
                })
                const outcome = yield* committed(write, "new record", 0, payload.op, event)
                if (outcome === "conflict") {
                  // the key is live: a record moved here meanwhile (a key change on another entity), another owner
                  // created it, or this very create did (its earlier attempt, served by another owner); this entity
                  // holds the row from now on
                  yield* reload
                  if (blocked !== undefined) return yield* skew(blocked)
                  if (held !== undefined && held.ops.includes(payload.op)) return held.state
                  return yield* Errors.alreadyExists(resource, keyObject(resource, prepared.state))
                }
                initial = created
                held = {
                  version: outcome,
                  state: prepared.state,
                  createdAt: committedAt,
                  lastActivity: committedAt,
                  flushed: committedAt,
                  ops: opsAfter(tombstoneOps, payload.op),
                  newer: undefined
                }
                publish(event)
                return reply
              })
              return codecs.encodeData(record)
            }).pipe(guard, Effect.uninterruptible, (body) => exclusive(payload.callers, payload.action, body)),

          Update: ({ payload }) =>
            Effect.gen(function*() {
              yield* ready
              if (held === undefined && movedTo !== undefined && tombstoneOps.includes(payload.op)) {
                // a retry of the key change that moved the record away: answered with the record at its new key
                const moved = yield* Effect.mapError(loadRow(resource, movedTo), unreadable)
                if (moved === undefined || !moved.alive || moved.state === undefined) {
                  return yield* Errors.notFound(resource, keyObj)
                }
                return codecs.encodeData(moved.state)
              }
              const current = yield* live(now())
              if (current.ops.includes(payload.op)) return codecs.encodeData(current.state)
              const compiledAction = yield* action(payload.action, "update")
              const decoded = codecs.decodeInput(compiledAction, payload.input)
              const record = yield* Effect.gen(function*() {
                const prepared = yield* prepareAs(payload.callers, compiledAction, current.state, decoded)
                const to = resource.encodeKey(prepared.state)
                if (to !== key) {
                  // a change of primary key: refused before the after hooks when the new key is live already
                  const there = yield* Effect.mapError(loadRow(resource, to), unreadable)
                  if (there !== undefined && there.alive) {
                    return yield* Errors.alreadyExists(resource, keyObject(resource, prepared.state))
                  }
                }
                const reply = yield* afterAs(payload.callers, compiledAction, prepared)
                const t = now()
                if (t >= deadlineOf(resource, current)) {
                  yield* expireIfDue(t)
                  return yield* Errors.notFound(resource, keyObj)
                }
                if (to !== key) {
                  const moved = yield* commitMove(current, prepared.state, to, t, payload.op, "Updated")
                  if (moved === "fenced") return yield* fenced()
                  if (moved === "taken") {
                    return yield* Errors.alreadyExists(resource, keyObject(resource, prepared.state))
                  }
                  return reply
                }
                if (!(yield* commitUpdate(current, prepared.state, t, payload.op, "Updated"))) return yield* fenced()
                return reply
              })
              return codecs.encodeData(record)
            }).pipe(guard, Effect.uninterruptible, (body) => exclusive(payload.callers, payload.action, body)),

          Destroy: ({ payload }) =>
            Effect.gen(function*() {
              yield* ready
              // a retry of this destroy, applied already (the key may have been created again since)
              if (held === undefined ? tombstoneOps.includes(payload.op) : held.ops.includes(payload.op)) return
              const current = yield* live(now())
              const compiledAction = yield* action(payload.action, "destroy")
              const prepared = yield* prepareAs(payload.callers, compiledAction, current.state, Admission.noInput)
              yield* afterAs(payload.callers, compiledAction, prepared)
              const t = now()
              if (!(yield* commitRemoval(current, t, payload.op, removal(current, "action")))) return yield* fenced()
            }).pipe(guard, Effect.uninterruptible, (body) => exclusive(payload.callers, payload.action, body)),

          Get: ({ payload }) =>
            Effect.suspend(() => {
              const t = now()
              // the committed state, without waiting for a running call
              if (known && held !== undefined && (!resource.hasTimeouts || t < deadlineOf(resource, held))) {
                const committed = held.state
                return Effect.as(touch(t), codecs.encodeData(committed))
              }
              // absent while a call runs (a create, say): the committed state is absence, as that call read its row
              // when it started
              if (known && held === undefined && blocked === undefined && runningIn.has(self)) {
                return Effect.fail(Errors.notFound(resource, keyObj))
              }
              // absent (a record may have moved here since: its row is read again), not known, or past its deadline
              // (expired first): in turn
              return Effect.gen(function*() {
                yield* ready
                const current = yield* live(t)
                yield* touch(t)
                return codecs.encodeData(current.state)
              }).pipe(guard, Effect.uninterruptible, (body) => exclusive(payload.callers, "get", body))
            }),

          Expire: ({ payload }) =>
            Effect.gen(function*() {
              yield* refresh
              // a newer version's record: its expiry is an upgraded owner's to run
              if (blocked !== undefined) return false
              // the owner's clock decides, not the sweeper's
              const t = now()
              const expired = yield* expireIfDue(t)
              // not due in memory (activity not yet written back): write it back, so the sweeper stops finding it
              if (
                !expired && held !== undefined && resource.idleMillis !== undefined && held.flushed < held.lastActivity
              ) {
                held.flushed = 0
                yield* touch(held.lastActivity)
              }
              return expired
            }).pipe(guard, Effect.uninterruptible, (body) => exclusive([], "expire", body)),

          Probe: ({ payload }) => {
            // it reads no row: the next call must (an activation by a probe may be long before it)
            activated = false
            const cycle = wouldDeadlock(self, payload.callers, payload.visited)
            return typeof cycle === "boolean" ? Effect.succeed(cycle) : cycle
          }
        })
      })

    if (clusterOptions.runner !== false) {
      const scope = yield* Effect.scope
      for (const resource of compiled.values()) {
        const { codecs, protocol } = entities.get(resource.name)!
        yield* Layer.buildWithScope(
          protocol.toLayer(handlersOf(resource, protocol, codecs), {
            disableFatalDefects: true,
            // calls queue on the record's own lock (`exclusive`): a `get` does not wait for a running action
            concurrency: "unbounded",
            maxIdleTime: clusterOptions.maxIdleTime ?? "1 minute"
          }) as Layer.Layer<never, never, Sharding>,
          scope
        )
      }
    }

    // --------------------------------------------------------------- the caller

    /** How a call failing for a reason of the cluster is re-sent (once per layer, not per call). */
    const resend = {
      // a store closing stops re-sending: its process is going away
      while: (e: unknown) => e instanceof Retry && !closing,
      schedule: Schedule.exponential("50 millis", 1.5).pipe(
        Schedule.modifyDelay((meta) => Effect.succeed(Duration.min(meta.duration, Duration.seconds(2))))
      ),
      times: retries
    }
    /**
     * Whether some runner can own a record's shard. effect/cluster re-sends a
     * message to a shard no runner owns without end (`Sharding.sendOutgoing`),
     * so with no runner up a call would wait forever. Its client assigns
     * shards from the healthy runners of its `RunnerStorage`: with none there
     * (read at most once a second), there is nowhere to send a call. Known in
     * a client-only process whose `RunnerStorage` is in this layer's context
     * (a runner process is a runner itself); a registry that cannot be read
     * counts as a runner up.
     */
    const registry = clusterOptions.runner === false
      ? Option.getOrUndefined(yield* Effect.serviceOption(RunnerStorage.RunnerStorage))
      : undefined
    const runnerUp = registry === undefined ? undefined : yield* registry.getRunners.pipe(
      Effect.map((runners) => runners.some(([runner, healthy]) => healthy && runner.groups.includes("default"))),
      Effect.timeoutOrElse({ duration: "2 seconds", orElse: () => Effect.succeed(true) }),
      Effect.orElseSucceed(() => true),
      Effect.cachedWithTTL("1 second")
    )
    /** Fails once no runner is up any more, checked every second. */
    const runnersLeft: Effect.Effect<never, NoRunner> = Effect.suspend(() =>
      Effect.flatMap(Effect.andThen(Effect.sleep("1 second"), runnerUp!), (up) =>
        up ? runnersLeft : Effect.fail(new NoRunner(true)))
    )
    /**
     * A call, unless no runner is up: then refused before it is sent, or
     * abandoned (its re-sending by effect/cluster interrupted) when the last
     * runner leaves while it waits. Never bounded otherwise: a long hook runs.
     */
    const routed = <A>(call: Effect.Effect<A, unknown>): Effect.Effect<A, unknown> =>
      runnerUp === undefined
        ? call
        : Effect.flatMap(runnerUp, (up) => up ? Effect.raceFirst(call, runnersLeft) : Effect.fail(new NoRunner(false)))
    /**
     * Sends a message to a record, re-sending it (same operation id) while it
     * fails for a reason of the cluster; a cluster `MailboxFull` is ours.
     * When the retries run out, or this process's store closes meanwhile, the
     * call fails with `Unavailable`, whose `applied` says whether any attempt
     * may have reached the owner's commit:
     *
     * - not reached: `EntityNotAssignedToRunner` (routing refused it before
     *   any handler ran: no runner owns the shard yet, or this process is
     *   shutting down), no runner up when it was to be sent (`routed`), and
     *   `Retryable` with `applied: "no"` (the owner refused it before its
     *   commit: fenced by a newer owner, storage unreadable, a record of a
     *   newer version);
     * - may have reached: anything else, `Retryable` with `applied:
     *   "unknown"` (the owner's commit was not confirmed), interrupts (a
     *   runner stopping while serving it, the reply abandoned) and defects (a
     *   transport failure) included. A record's own defects never arrive as
     *   defects: its owner answers them as `RecordCrashed`.
     */
    const send = <A>(
      resource: Compiled,
      key: unknown,
      action: string,
      call: Effect.Effect<A, unknown>,
      operationId?: string
    ): Effect.Effect<A, StoreError> =>
      Effect.suspend(() => {
        let attempts = 0
        let reached = false
        const attempt = Effect.catchCause(
          Effect.suspend(() => {
            attempts++
            return routed(call)
          }),
          (cause): Effect.Effect<A, StoreError | Retry> => {
            const error = Cause.findErrorOption(cause)
            if (error._tag === "Some" && !Cause.hasDies(cause)) {
              const e = error.value as { readonly _tag?: string; readonly applied?: string }
              if (e._tag === retryableTag) {
                // refused by the owner for a reason that passes: nothing applied, or (its commit unconfirmed) perhaps
                if (e.applied === "unknown") reached = true
                return Effect.fail(new Retry({ cause }))
              }
              if (e._tag === "EntityNotAssignedToRunner" || (e instanceof NoRunner && !e.sent)) {
                return Effect.fail(new Retry({ cause }))
              }
              if (isKnownError(resource, e)) return Effect.fail(e as StoreError)
              if (e._tag === "MailboxFull") {
                return Effect.fail(
                  Errors.mailboxFull(
                    resource,
                    key,
                    0,
                    "its runner refused the call: it holds too many records (ShardingConfig.maxResidentEntities) " +
                      "or this record too many messages (entityMailboxCapacity)"
                  )
                )
              }
            }
            reached = true
            return Effect.fail(new Retry({ cause }))
          }
        )
        return attempt.pipe(
          Effect.retry(resend),
          Effect.catchIf(
            (e): e is Retry => e instanceof Retry,
            (e) =>
              Effect.fail(
                new Unavailable({
                  resource: resource.name,
                  key,
                  action,
                  applied: reached ? "unknown" : "no",
                  attempts,
                  message: `${resource.name} ${JSON.stringify(key)}: ${action}: ${
                    closing ? "the store closed" : "the cluster did not answer"
                  } after ${attempts} attempt${attempts === 1 ? "" : "s"}; ${
                    reached
                      ? "it may have been applied (at most once)"
                      : "it was not applied (every attempt was refused before the owner's commit)"
                  }`,
                  lastFailure: describeFailure(e.cause),
                  ...(operationId === undefined ? {} : { operationId })
                })
              )
          )
        ) as Effect.Effect<A, StoreError>
      })

    /**
     * The operation id of a write: the caller's (`Store.withOperationId`,
     * checked by the Store), or a new one. Every attempt carries it, and the
     * owner answers a write its record remembers without applying it again.
     */
    const op = (chosen: string | undefined) => chosen ?? crypto.randomUUID()

    /**
     * A call made by a run of this process (a record's hook) waits on its
     * target: the edge is in this process's graph while the call is out, so a
     * probe from another runner can follow it.
     */
    const waitedOn = <A, E>(
      callers: ReadonlyArray<string>,
      resource: Compiled,
      entityId: string,
      call: Effect.Effect<A, E>
    ): Effect.Effect<A, E> => {
      const run = callers.at(-1)
      if (run === undefined || !run.includes(`#${origin}:`)) return call
      const record = `${resource.name}/${entityId}`
      return Effect.suspend(() => {
        addEdge(run, record)
        return Effect.ensuring(call, Effect.sync(() => removeEdge(run, record)))
      })
    }

    const entityOf = (
      resource: Compiled,
      key: unknown
    ): { readonly id: string; readonly key: unknown } | StoreError => {
      const k = resource.checkKey(key)
      if (k instanceof ValidationError) return k
      return { id: escapeKey(resource.encodeKey(k)), key: k }
    }

    const decodeRecord = (resource: Compiled, u: unknown) => entities.get(resource.name)!.codecs.decodeData(u)

    /** Sends a write's `message` to its record under the payload's operation id, as a wait of the caller's run. */
    const sendWrite = <A>(
      resource: Compiled,
      target: { readonly id: string; readonly key: unknown },
      action: string,
      payload: { readonly op: string; readonly callers: ReadonlyArray<string> },
      message: Effect.Effect<A, unknown>
    ): Effect.Effect<A, StoreError> =>
      waitedOn(payload.callers, resource, target.id, send(resource, target.key, action, message, payload.op))

    const create: DataLayer.Service["create"] = (resourceName, actionName, input) =>
      Effect.withFiber((fiber) => {
        const admitted = admit(resourceName, actionName, "create", input)
        if (!Admission.isAdmitted(admitted)) return Effect.fail(admitted)
        const { action, decoded, resource } = admitted
        const data = initialData(resource, decoded)
        if (data instanceof ValidationError) return Effect.fail(data)
        // a call on behalf of the record itself is refused by its owner, which knows whether it is busy
        const target = entityOf(resource, data)
        if (!("id" in target)) {
          return Effect.fail(
            new ValidationError({
              resource: resource.name,
              message: `${resource.name}.${action.name}: the cluster data layer needs a create's primary key (${
                resource.keyFields.join(", ")
              }) in its input or generated fields: ${target.message}`
            })
          )
        }
        const { codecs } = entities.get(resource.name)!
        const payload = {
          action: action.name,
          op: op(fiber.getRef(Admission.CurrentOperationId)),
          data: codecs.encodeData(data),
          input: codecs.encodeInput(action, decoded),
          callers: fiber.getRef(CurrentCallers)
        }
        return Effect.map(
          sendWrite(resource, target, action.name, payload, clients.get(resource.name)!(target.id).Create(payload)),
          (u) => decodeRecord(resource, u)
        )
      })

    const update: DataLayer.Service["update"] = (resourceName, key, actionName, input) =>
      Effect.withFiber((fiber) => {
        const admitted = admit(resourceName, actionName, "update", input)
        if (!Admission.isAdmitted(admitted)) return Effect.fail(admitted)
        const { action, decoded, resource } = admitted
        const target = entityOf(resource, key)
        if (!("id" in target)) return Effect.fail(target)
        const payload = {
          action: action.name,
          op: op(fiber.getRef(Admission.CurrentOperationId)),
          input: entities.get(resource.name)!.codecs.encodeInput(action, decoded),
          callers: fiber.getRef(CurrentCallers)
        }
        return Effect.map(
          sendWrite(resource, target, action.name, payload, clients.get(resource.name)!(target.id).Update(payload)),
          (u) => decodeRecord(resource, u)
        )
      })

    const destroy: DataLayer.Service["destroy"] = (resourceName, key, actionName) =>
      Effect.withFiber((fiber) => {
        const admitted = admit(resourceName, actionName, "destroy", undefined)
        if (!Admission.isAdmitted(admitted)) return Effect.fail(admitted)
        const { action, resource } = admitted
        const target = entityOf(resource, key)
        if (!("id" in target)) return Effect.fail(target)
        const payload = {
          action: action.name,
          op: op(fiber.getRef(Admission.CurrentOperationId)),
          callers: fiber.getRef(CurrentCallers)
        }
        return Effect.asVoid(
          sendWrite(resource, target, action.name, payload, clients.get(resource.name)!(target.id).Destroy(payload))
        )
      })

    /** A record by key from its row: read-your-writes, no message. */
    const fromRow = (
      resource: Compiled,
      target: { readonly id: string; readonly key: unknown },
      operation: string
    ): Effect.Effect<unknown, NotFound | Unavailable> =>
      Effect.flatMap(
        Effect.mapError(
          loadRow(resource, unescapeKey(target.id)),
          (e) => Errors.unreachable(resource, target.key, operation, undefined, e.message)
        ),
        (row): Effect.Effect<unknown, NotFound | Unavailable> => {
          if (row?.tooNew !== undefined) return Effect.fail(Errors.tooNew(resource, target.key, operation, row.tooNew))
          if (
            row === undefined || !row.alive || row.state === undefined ||
            pastDeadline(row, clock.currentTimeMillisUnsafe())
          ) {
            return Effect.fail(Errors.notFound(resource, target.key))
          }
          return Effect.succeed(row.state)
        }
      )

    const byKey = (
      operation: "get" | "keepAlive",
      resourceName: string,
      key: unknown,
      callers: ReadonlyArray<string>
    ): Effect.Effect<unknown, NotFound | ValidationError | StoreClosed | Unavailable> => {
      const resource = admitRead(resourceName)
      if (!Admission.isCompiled(resource)) return Effect.fail(resource)
      const target = entityOf(resource, key)
      if (!("id" in target)) return Effect.fail(target as ValidationError)
      // a record calling itself reads its row: its entity is busy running the caller
      if (
        resource.idleMillis === undefined || callers.some((run) => recordOfRun(run) === `${resource.name}/${target.id}`)
      ) {
        return fromRow(resource, target, operation)
      }
      return Effect.map(
        send(resource, target.key, operation, clients.get(resource.name)!(target.id).Get({ callers })),
        (u) => decodeRecord(resource, u)
      ) as Effect.Effect<unknown, NotFound | ValidationError | Unavailable>
    }

    const get: DataLayer.Service["get"] = (resourceName, key) =>
      Effect.withFiber((fiber) => byKey("get", resourceName, key, fiber.getRef(CurrentCallers)))

    const keepAlive: DataLayer.Service["keepAlive"] = (resourceName, key) =>
      Effect.asVoid(Effect.withFiber((fiber) => byKey("keepAlive", resourceName, key, fiber.getRef(CurrentCallers))))

    const read: DataLayer.Service["read"] = (query) =>
      Effect.suspend(() => {
        const resource = admitQuery(query)
        if (!Admission.isCompiled(resource)) return Effect.fail(resource)
        // a row that cannot be loaded is quarantined through its key, then the query runs again
        const run: Effect.Effect<ReadonlyArray<unknown>> = Effect.orDie(Effect.catchTag(
          state.read(resource, query, clock.currentTimeMillisUnsafe()),
          "UndecodableRows",
          (e) => Effect.andThen(Effect.forEach(e.keys, (key) => loadRow(resource, key), { discard: true }), run)
        ))
        return run
      })

    /**
     * Sends every record past its stored deadline an `Expire` message: its
     * owner runs the destroy action, or writes back activity it had in memory.
     */
    const sweep = (limit: number) =>
      Effect.gen(function*() {
        const t = clock.currentTimeMillisUnsafe()
        let expired = 0
        // every due row, a page at a time: a record whose expiry fails is passed over, never in another's way
        let after: StateStore.Due | undefined = undefined
        while (true) {
          const due: ReadonlyArray<StateStore.Due> = yield* Effect.orDie(state.due(t, limit, after))
          yield* Effect.forEach(due, ({ key, resource: name }) => {
            const resource = compiled.get(name)
            if (resource === undefined) return Effect.void
            return Effect.map(
              Effect.exit(send(resource, key, "expire", clients.get(name)!(escapeKey(key)).Expire({ now: t }))),
              (done) => {
                if (Exit.isSuccess(done) && done.value === true) expired++
              }
            )
          }, { concurrency: 16, discard: true })
          if (due.length < limit) return expired
          after = due[due.length - 1]
        }
      })

    /** Deletes the tombstones no retry can need any more (older than the operation ids' retention). */
    const purge = Effect.suspend(() => Effect.orDie(state.purge(clock.currentTimeMillisUnsafe() - retention)))

    if (clusterOptions.runner !== false) {
      const interval = Duration.fromInputUnsafe(clusterOptions.sweepInterval ?? "1 second")
      const sweeps = [...compiled.values()].some((r) => r.hasTimeouts)
      // purged when the sweeper starts, then about every quarter of the retention
      const purgeEvery = Math.max(1, Math.ceil(retention / 4 / Math.max(Duration.toMillis(interval), 1)))
      let round = 0
      const sweeper = Effect.forever(
        Effect.suspend(() => {
          round++
          return Effect.andThen(
            sweeps ? Effect.asVoid(sweep(256)) : Effect.void,
            round % purgeEvery === 1 || purgeEvery === 1 ? Effect.asVoid(purge) : Effect.void
          )
        }).pipe(
          Effect.catchCause((cause) => Effect.logWarning("effect-gen-server: the expiry sweep failed", cause)),
          Effect.andThen(Effect.sleep(interval))
        )
      )
      yield* Layer.buildWithScope(
        Singleton.make(`effect-gen-server/sweeper/${state.table}`, sweeper) as Layer.Layer<never, never, Sharding>,
        yield* Effect.scope
      )
    }

    const self: DataLayer.Service & { readonly sweep: typeof sweep } = {
      create,
      update,
      destroy,
      get,
      read,
      keepAlive,
      events,
      subscribe,
      sweep
    }
    if (options.context !== undefined) context = options.context(self)
    // added last, so run first when the scope closes
    yield* Effect.addFinalizer(() => Effect.sync(() => (closing = true)))
    return self
  })

/** How many records deep a cycle check follows waits to other runners. */
const maxProbeHops = 16

/** The record (`"Resource/entityId"`) of a run token (`"Resource/entityId#<process>:<n>"`). */
const recordOfRun = (run: string) => run.slice(0, run.lastIndexOf("#"))

/** The last failure of a call that gave up, in words (what `Unavailable.lastFailure` holds). */
const describeFailure = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.findErrorOption(cause)
  if (error._tag === "Some" && !Cause.hasDies(cause)) {
    const e = error.value as { readonly _tag?: unknown; readonly message?: unknown }
    if (e._tag === "EntityNotAssignedToRunner") {
      return "EntityNotAssignedToRunner: no runner accepted the record's shard (not yet assigned, or this process is stopping)"
    }
    if (e._tag === retryableTag) return String(e.message)
    if (e instanceof NoRunner) {
      return e.sent
        ? "no runner: the last runner left while the call waited to be delivered"
        : "no runner: no healthy runner is registered (RunnerStorage), nowhere to send the call"
    }
    const tag = typeof e._tag === "string" ? e._tag : "error"
    return typeof e.message === "string" && e.message !== "" ? `${tag}: ${e.message}` : tag
  }
  if (Cause.hasInterruptsOnly(cause)) return "interrupted: the reply was lost (the runner serving the call stopped)"
  const defect = Cause.squash(cause)
  return `defect: ${defect instanceof Error ? defect.message : String(defect)}`
}

/** No runner is up: the call was not sent, or (`sent`) was abandoned while effect/cluster re-sent it. */
class NoRunner {
  readonly _tag = "NoRunner"
  constructor(readonly sent: boolean) {}
}

/** A failure of the cluster, not of the record: the message is re-sent. */
class Retry {
  constructor(readonly props: { readonly cause: Cause.Cause<unknown> }) {}
  get cause() {
    return this.props.cause
  }
}
