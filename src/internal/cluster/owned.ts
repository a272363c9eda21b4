/**
 * A cluster record's row as its owner holds it: what an entity keeps of its
 * row in memory (`Owned`), how it reads the row again, and its commits to
 * the SQL state store (insert, replace, move, remove), each fenced by the
 * row's version and carrying its event's notice; with the port through
 * which the owner drives the one write pipeline (`record/write.ts`).
 *
 * A commit storage refused is the caller's `RecordCrashed` ("not applied");
 * one whose answer was lost is settled from its row, else refused as
 * `Retryable` (`applied: "unknown"`) and the row read again before the next
 * call; a commit fenced by a newer owner is `Retryable` (`"no"`).
 *
 * @internal
 */
import { Cause, type Clock, type Context, Effect } from "effect"
import type { SqlError } from "effect/sql/SqlError"
import { ValidationError } from "../../Errors.js"
import type * as Event from "../../Event.js"
import type * as Metrics from "../../Metrics.js"
import * as Admission from "../admission.js"
import * as Errors from "../record/errors.js"
import * as Events from "../record/events.js"
import * as Lifecycle from "../record/lifecycle.js"
import * as Outcome from "../record/outcome.js"
import * as Schedules from "../record/schedules.js"
import type * as Write from "../record/write.js"
import type { Compiled } from "../resource.js"
import { decodeSchedules, encodeSchedules, type Newer, type TooNew } from "../sql/codec.js"
import type { StorageFailure } from "../sql/faults.js"
import * as Ops from "../sql/ops.js"
import { opsAfter, type Outcome as Written, type Row } from "../sql/rows.js"
import type { StateStore } from "../sql/stateStore.js"
import type { Notices } from "./notices.js"
import { CurrentCallers, Retryable, type WireError } from "./protocol.js"
import type { WaitGraph } from "./waitGraph.js"

/** What the owners of a data layer share. @internal */
export interface OwnerContext {
  readonly state: StateStore
  readonly clock: Clock.Clock
  /** Publishes a committed event in this process (its notice went with the commit). */
  readonly publish: (event: Event.Event) => void
  readonly notices: Notices
  readonly graph: WaitGraph
  /** The row of a key, quarantining what cannot be loaded. */
  readonly loadRow: (resource: Compiled, key: string) => Effect.Effect<Row | undefined, SqlError>
  /** The services actions run with (known once the data layer is built). */
  readonly context: () => Context.Context<never>
  /** A resource's metrics in this process (its schedules pending and run here). */
  readonly metrics: (resource: Compiled) => Metrics.ResourceMetrics
}

/** The record a row holds in a runner's memory. */
export interface Held {
  version: number
  state: any
  createdAt: number
  lastActivity: number
  /** The last activity written to the row. */
  flushed: number
  ops: ReadonlyArray<string>
  /** The row was stored by a newer version: what this one keeps unseen in its writes. */
  readonly newer: Newer | undefined
  /** The record's schedules, as its row holds them. */
  readonly schedules: ReadonlyArray<Schedules.Pending>
}

/** One record's entity on this runner: what it holds of its row. */
export interface Owned {
  readonly resource: Compiled
  /** The encoded key (the entity's id, unescaped). */
  readonly key: string
  /** The key as callers name it. */
  readonly keyObj: { readonly [field: string]: unknown }
  held: Held | undefined
  /** What the record's create ran with (JSON), for `restart: "initial"`. */
  initial: unknown
  /** The ops of the row, when it is a tombstone, for the next insert. */
  tombstoneOps: ReadonlyArray<string>
  /** The key the record moved to, when its last change of key left this key a tombstone. */
  movedTo: string | undefined
  /** The row was stored by a newer version of the resource that this one cannot read: calls are refused. */
  blocked: TooNew | undefined
  /**
   * Whether what this entity holds is what the row says: not until the row
   * was read, nor after a commit whose answer was lost and could not be
   * settled (`unsure` keeps its event, published if it turns out applied).
   */
  known: boolean
  unsure: { readonly op: string; readonly event: Event.Event | undefined } | undefined
  /** The run token of the call it runs now (or last ran). */
  run: string
  /** Crash times within the restart intensity's window (this activation's only). */
  restarts: Array<number>
  /** What the create running now was sent with (JSON), stored for `restart: "initial"`. */
  creating: unknown
  /** The record's schedules running now, and those retried after a failure (this activation's only). */
  readonly firing: Set<Schedules.Pending>
  readonly retries: Map<Schedules.Pending, Schedules.Retry>
}

/** What the schedule policy (`record/schedules.ts`) works on: the held schedules, with the entity's runs. */
export const holderOf = (owned: Owned): Schedules.Holder => ({
  schedules: owned.held?.schedules ?? Schedules.none,
  firing: owned.firing,
  retries: owned.retries
})

/** What a call hands the pipeline: the runs it is made on behalf of. */
export interface Call {
  readonly callers: ReadonlyArray<string>
}

export const noCallers: Call = { callers: [] }

/** A row that could not be read: the call is retried (nothing was applied). @internal */
export const unreadable = (e: SqlError) =>
  new Retryable({ applied: "no", message: `storage could not be read: ${e.message}` })

const keyChanged = (resource: Compiled, action: string) =>
  new ValidationError({
    resource: resource.name,
    message: `${resource.name}.${action}: a create's hooks cannot change the primary key it was sent under`
  })

/** A record of a newer version than this runner's: retried by the caller, for an upgraded owner. */
export const skew = (found: TooNew) => new Retryable({ applied: "no", message: found.message })

/** The lifecycle times of a held record. */
export const timesOf = (owned: Owned, held: Held): Lifecycle.Times => ({
  resource: owned.resource,
  createdAt: held.createdAt,
  lastActivity: held.lastActivity
})

/**
 * The rows of a data layer's records as their owners hold them: reads,
 * commits and the write pipeline's port.
 *
 * @internal
 */
export const make = (ctx: OwnerContext) => {
  const { clock, notices, publish, state } = ctx
  const now = () => clock.currentTimeMillisUnsafe()

  /**
   * Holds `held` (the record, or its absence) in this runner's memory,
   * counting its pending schedules as this process's (`Metrics.schedulesPending`).
   */
  const hold = (owned: Owned, held: Held | undefined) => {
    const delta = (held?.schedules.length ?? 0) - (owned.held?.schedules.length ?? 0)
    if (delta !== 0) ctx.metrics(owned.resource).pending(delta)
    owned.held = held
  }

  /** Holds what the row says (the record, or its absence). */
  const adopt = (owned: Owned, row: Row | undefined) => {
    hold(
      owned,
      row === undefined || !row.alive || row.state === undefined ? undefined : {
        version: row.version,
        state: row.state,
        createdAt: row.createdAt,
        lastActivity: row.lastActivity,
        flushed: row.lastActivity,
        ops: row.ops,
        newer: row.newer,
        schedules: decodeSchedules(owned.resource, row.schedules)
      }
    )
    owned.blocked = row?.tooNew
    owned.initial = row !== undefined && row.alive ? row.initial : undefined
    owned.tombstoneOps = row !== undefined && !row.alive ? row.ops : []
    owned.movedTo = row !== undefined && !row.alive ? row.movedTo : undefined
    owned.known = true
  }

  /** Reads the row; a commit whose answer was lost is settled by it (its event published if it was applied). */
  const reload = (owned: Owned): Effect.Effect<void, Retryable> =>
    Effect.flatMap(Effect.mapError(ctx.loadRow(owned.resource, owned.key), unreadable), (row) => {
      const pending = owned.unsure
      owned.unsure = undefined
      adopt(owned, row)
      if (pending?.event !== undefined && row !== undefined && Ops.remembers(row.ops, pending.op)) {
        const event = pending.event
        return Effect.sync(() => publish(event))
      }
      return Effect.void
    })

  const keyOf = (owned: Owned) =>
    owned.held === undefined ? owned.keyObj : Events.keyObject(owned.resource, owned.held.state)

  /**
   * Runs `effect` as the record: its hooks see its run in `CurrentCallers`,
   * with the layer's services; their own writes get operation ids of their
   * own (a caller's id never reaches them, wherever the caller runs).
   */
  const asRecord = <A, E>(owned: Owned, callers: ReadonlyArray<string>, effect: Effect.Effect<A, E, any>) =>
    effect.pipe(
      Effect.provideService(CurrentCallers, [...callers, owned.run]),
      Effect.provideService(Admission.CurrentOperationId, undefined),
      Effect.provideContext(ctx.context())
    ) as Effect.Effect<A, E>

  /**
   * What a commit came to: the row's new version, or `"conflict"` (fenced,
   * or an insert over a live row). A commit storage refused is the caller's
   * `RecordCrashed` ("not applied": the record keeps its state). One whose
   * answer was lost is settled from its row; when that cannot be read
   * either, the call is retryable (`applied: "unknown"`) and the record reads
   * its row before its next call.
   */
  const written = (
    owned: Owned,
    write: Effect.Effect<Written, StorageFailure>,
    what: Errors.Write,
    expected: number,
    op: string,
    event: Event.Event | undefined,
    to?: string
  ): Effect.Effect<Written, WireError> =>
    Effect.catch(write, (failure): Effect.Effect<Written, WireError> => {
      if (failure.applied === "no") {
        return Effect.fail(Errors.notApplied(owned.resource, keyOf(owned), what, failure.message))
      }
      return Effect.matchEffect(state.settle(owned.resource, owned.key, expected, op, to), {
        onFailure: () => {
          owned.known = false
          owned.unsure = { op, event }
          return Effect.fail(
            new Retryable({ applied: "unknown", message: `storage did not confirm the commit: ${failure.message}` })
          )
        },
        onSuccess: (settled): Effect.Effect<Written, WireError> =>
          settled._tag === "Applied"
            ? Effect.succeed(settled.version)
            : settled._tag === "Fenced"
            ? Effect.succeed("conflict")
            : Effect.fail(Errors.notApplied(owned.resource, keyOf(owned), what, failure.message))
      })
    })

  /** Nothing was applied: another owner committed first. The row is read again; the caller re-sends the call. */
  const fenced = (owned: Owned) =>
    Effect.flatMap(reload(owned), () =>
      Effect.fail(
        new Retryable({
          applied: "no",
          message: `fenced: ${owned.resource.name} ${
            JSON.stringify(keyOf(owned))
          }: another runner committed a newer state (the shard moved); the write was not applied`
        })
      ))

  /** A commit's own operation id: the call's, or one made for a write of the record's own (an expiry, a restart). */
  const idOf = (op: string | undefined, kind: string) => op ?? `${kind}:${now()}`

  /** What a commit's row remembers of it: its operation id, with its action's result (`sql/ops.ts`). */
  const opOf = (change: Exclude<Write.Change, { readonly _tag: "Unchanged" }>, kind: string) =>
    Ops.entry(idOf(change.op, kind), change.action, change.result)

  /** Inserts a new record's row (a create): its version, or "conflict"; this entity holds it. */
  const insert = Effect.fnUntraced(function*(
    owned: Owned,
    change: Extract<Write.Change, { readonly _tag: "Create" }>,
    payload: unknown
  ) {
    const committedAt = now()
    const id = idOf(change.op, "create")
    const op = Ops.entry(id, change.action, change.result)
    const write = state.write({
      _tag: "Insert",
      resource: owned.resource,
      key: owned.key,
      state: change.state,
      createdAt: committedAt,
      lastActivity: committedAt,
      initial: payload,
      op,
      schedules: encodeSchedules(owned.resource, change.schedules ?? Schedules.none),
      notify: notices.noticeHeadOf(change.event)
    })
    const outcome = yield* written(owned, write, "new record", 0, op, change.event)
    if (outcome === "conflict") {
      // the key is live: a record moved here meanwhile (a key change on another entity), another owner created
      // it, or this very create did (its earlier attempt, served by another owner); this entity holds the row now
      yield* reload(owned)
      if (owned.blocked !== undefined) return yield* skew(owned.blocked)
      const applied = owned.held === undefined ? undefined : Ops.find(owned.held.ops, id)
      if (applied !== undefined) {
        return {
          _tag: "Applied",
          reply: change.action.checkResult === undefined ? owned.held!.state : Ops.resultOf(applied, change.action)
        } as const
      }
      return yield* Errors.alreadyExists(owned.resource, Events.keyObject(owned.resource, change.state))
    }
    owned.initial = payload
    hold(owned, {
      version: outcome,
      state: change.state,
      createdAt: committedAt,
      lastActivity: committedAt,
      flushed: committedAt,
      ops: opsAfter(owned.tombstoneOps, op),
      newer: undefined,
      schedules: change.schedules ?? Schedules.none
    })
    publish(change.event)
    return undefined
  })

  /** Stores the record's new state under the same key (an update, a restart): fenced, the call is re-sent. */
  const replace = Effect.fnUntraced(function*(
    owned: Owned,
    held: Held,
    change: Extract<Write.Change, { readonly _tag: "Update" }>
  ) {
    const t = now()
    const op = opOf(change, "restart")
    const lastActivity = change.activity ? t : held.lastActivity
    const schedules = change.schedules ?? held.schedules
    const write = state.write({
      _tag: "Update",
      resource: owned.resource,
      key: owned.key,
      expected: held.version,
      createdAt: held.createdAt,
      state: change.state,
      lastActivity,
      op,
      newer: held.newer,
      schedules: encodeSchedules(owned.resource, schedules),
      notify: noticeOf(change.event, held.newer)
    })
    const outcome = yield* written(owned, write, "change", held.version, op, change.event)
    if (outcome === "conflict") return yield* fenced(owned)
    hold(owned, {
      version: outcome,
      state: change.state,
      createdAt: held.createdAt,
      lastActivity,
      flushed: lastActivity,
      ops: opsAfter(held.ops, op),
      newer: held.newer,
      schedules
    })
    if (change.event !== undefined) publish(change.event)
    return undefined
  })

  /**
   * The notice of a commit's event: PostgreSQL completes it from the state
   * the row stores; a `ScheduleFailed` (whose fields the head cannot hold)
   * is sent whole; none without an event.
   */
  const noticeOf = (event: Event.Event | undefined, newer: Newer | undefined) =>
    event === undefined
      ? undefined
      : event._tag === "ScheduleFailed"
      ? notices.noticeOf(event, newer)
      : notices.noticeHeadOf(event, newer)

  /**
   * Moves the record to the key of its new state (a change of primary key):
   * in one transaction this row becomes a tombstone remembering the
   * operation and the new key, and the new state is inserted there, with
   * its event. Fenced: the call is re-sent; the new key live (also past its
   * deadline: its expiry is its owner's to run, and its owner may hold
   * activity not yet written): `AlreadyExists`; nothing is written. The
   * entity of the new key (on any runner) reads the row on its next call;
   * this one holds no record any more, as after a destroy.
   */
  const move = Effect.fnUntraced(function*(
    owned: Owned,
    held: Held,
    change: Extract<Write.Change, { readonly _tag: "Update" }> & { readonly event: Event.Event }
  ) {
    const t = now()
    const op = opOf(change, "restart")
    const schedules = change.schedules ?? held.schedules
    const move = state.move({
      resource: owned.resource,
      from: owned.key,
      expected: held.version,
      to: change.key,
      state: change.state,
      createdAt: held.createdAt,
      lastActivity: t,
      removedAt: t,
      initial: owned.initial,
      op,
      newer: held.newer,
      schedules: encodeSchedules(owned.resource, schedules),
      notify: notices.noticeHeadOf(change.event, held.newer),
      replaceExpired: false
    })
    const outcome = yield* written(owned, move, "change", held.version, op, change.event, change.key)
    if (outcome === "conflict") {
      // refused as a whole: this row changed (fenced), or the new key is live
      const old = yield* Effect.mapError(state.load(owned.resource, owned.key), unreadable)
      if (old === undefined || !old.alive || old.version !== held.version) return yield* fenced(owned)
      return yield* Errors.alreadyExists(owned.resource, Events.keyObject(owned.resource, change.state))
    }
    owned.tombstoneOps = opsAfter(held.ops, op)
    owned.movedTo = change.key
    hold(owned, undefined)
    owned.initial = undefined
    publish(change.event)
    return undefined
  })

  /** Removes the record (tombstone), with its event (`Destroyed` or `Failed`); fenced, the call is re-sent. */
  const remove = Effect.fnUntraced(function*(owned: Owned, held: Held, op: string, event: Event.Event) {
    const t = now()
    const write = state.write({
      _tag: "Tombstone",
      resource: owned.resource,
      key: owned.key,
      expected: held.version,
      state: undefined,
      lastActivity: t,
      removedAt: t,
      op,
      notify: notices.noticeOf(event, held.newer)
    })
    const outcome = yield* written(owned, write, "removal", held.version, op, event)
    if (outcome === "conflict") return yield* fenced(owned)
    owned.tombstoneOps = opsAfter(held.ops, op)
    hold(owned, undefined)
    publish(event)
    return undefined
  })

  /** Activity: in memory, written back once a quarter of the inactivity timeout has passed. */
  const touch = (owned: Owned, t: number): Effect.Effect<void> => {
    const held = owned.held
    if (held === undefined || owned.resource.idleMillis === undefined) return Effect.void
    held.lastActivity = t
    if (t - held.flushed < owned.resource.idleMillis / 4) return Effect.void
    return Effect.ignore(Effect.tap(
      state.write({ _tag: "Touch", resource: owned.resource, key: owned.key, expected: held.version, lastActivity: t }),
      (outcome) => Effect.sync(() => outcome !== "conflict" && (held.flushed = t))
    ))
  }

  /** A step of the pipeline from an Effect of the port (its failure, a refusal). */
  const stepOf = (effect: Effect.Effect<Write.Committed, WireError>): Outcome.Step<Write.Committed, WireError> =>
    Effect.match(effect, { onFailure: Outcome.refused, onSuccess: Outcome.ok })

  /**
   * The record on a cluster as the write pipeline sees it (see the module):
   * held state, SQL commits, keys claimed by reading their rows, actions
   * run as the record with its callers. A create's hooks cannot change the
   * key it was sent under.
   */
  const port: Write.Port<Owned, Call, Retryable> = {
    committed: (owned) => owned.held?.state,
    schedules: (owned) => owned.held?.schedules ?? Schedules.none,
    time: () => now(),
    key: (owned) => owned.key,
    run: (owned, _action, call, effect) =>
      Effect.map(
        Effect.exit(asRecord(owned, call.callers, effect)),
        Outcome.fromExit
      ),
    claim: (owned, key, next, action) => {
      // a create's key is the entity's; a restart from the create (the record held) moves it back to its key
      if (action.kind === "create" && owned.held === undefined) {
        return Outcome.refused(keyChanged(owned.resource, action.name))
      }
      // refused before the after hooks when the new key is live already
      return Effect.map(
        Effect.exit(ctx.loadRow(owned.resource, key)),
        (exit): Outcome.Outcome<void, WireError> => {
          if (exit._tag === "Failure") {
            const error = Cause.findErrorOption(exit.cause)
            return error._tag === "Some" ? Outcome.refused(unreadable(error.value)) : Outcome.crashed(exit.cause)
          }
          return exit.value !== undefined && exit.value.alive
            ? Outcome.refused(Errors.alreadyExists(owned.resource, Events.keyObject(owned.resource, next)))
            : Outcome.ok(undefined)
        }
      )
    },
    release: () => {},
    // a hook's own `get` reads the committed row
    pending: () => {},
    settle: () => {},
    expired: (owned) => owned.held === undefined || now() >= Lifecycle.deadline(timesOf(owned, owned.held)),
    commit: (owned, change) => {
      const held = owned.held
      switch (change._tag) {
        case "Create":
          return stepOf(insert(owned, change, owned.creating))
        case "Update": {
          if (held === undefined) return Outcome.refused(Errors.notFound(owned.resource, owned.keyObj))
          if (change.key === owned.key) return stepOf(replace(owned, held, change))
          // a change of key changes the state: it has its event
          return stepOf(
            move(owned, held, { ...change, event: change.event ?? Events.updated(owned.resource, change.state) })
          )
        }
        case "Remove":
          if (held === undefined) return Outcome.refused(Errors.notFound(owned.resource, owned.keyObj))
          return stepOf(remove(owned, held, opOf(change, "expire"), change.event))
        case "Unchanged":
          // nothing to store: its activity is held, and written back as a read's is
          if (held === undefined) return Outcome.refused(Errors.notFound(owned.resource, owned.keyObj))
          return Effect.as(touch(owned, now()), Outcome.ok(undefined))
      }
    }
  }

  return { now, reload, keyOf, remove, touch, hold, port }
}
