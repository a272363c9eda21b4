/**
 * The write pipeline: what a create, update or destroy does to a record,
 * written once for every data layer. A layer drives it through a
 * {@link Port}: where the record's state lives, how a key is claimed, how an
 * action runs as the record, how a change is stored and committed.
 *
 * ```text
 * (admitted by the caller: admission.ts)
 * prepare: change, before hooks, validation   (pipeline.ts)
 * claim the new key (a create, a key change)  port.claim
 * after hooks, the new state pending          port.run, port.pending
 * deadline: a commit after it is NotFound     port.expired
 * store and commit, with its event            port.commit
 * reply: the record, or the action's result   (its `success`)
 * ```
 *
 * An update that changes no field commits nothing: it is handed to
 * `port.commit` as `Unchanged` (no write, no event), still past the deadline
 * check, so it is serialised with the record's calls like any other.
 *
 * Nothing is committed until every step succeeded: a refusal or a crash
 * leaves the record as it was (and gives back the key it claimed). An
 * expiry removes the record even when its destroy action fails; why is
 * logged and carried by `Destroyed`.
 *
 * Synchronous as far as it can go: an action with a plain change and no
 * hooks, on a layer that commits in memory, is one function call
 * (`outcome.ts`).
 *
 * @internal
 */
import { Cause, Effect } from "effect"
import type { StoreError } from "../../Errors.js"
import type * as Event from "../../Event.js"
import type { Compiled, CompiledAction, Decoded } from "../resource.js"
import * as Errors from "./errors.js"
import * as Events from "./events.js"
import * as Outcome from "./outcome.js"
import { isRefusal, prepare, type Prepared, type Result, runAfter } from "./pipeline.js"
import * as Schedules from "./schedules.js"

/**
 * A change the pipeline asks a port to store and commit, with the event it
 * publishes once committed.
 *
 * @internal
 */
export type Change =
  | {
    readonly _tag: "Create"
    readonly state: any
    readonly key: string
    readonly op: string | undefined
    readonly action: CompiledAction
    readonly event: Event.Event
    /** The action's result (its `success`), which a stored operation id keeps. */
    readonly result: unknown
    /** The new record's schedules (`undefined`: none). */
    readonly schedules: ReadonlyArray<Schedules.Pending> | undefined
  }
  | {
    /**
     * An update, a change of key, or a restart from the create (`event` is
     * then `Restarted`); `event` is `undefined` when only the record's
     * schedules change.
     */
    readonly _tag: "Update"
    readonly state: any
    readonly key: string
    readonly op: string | undefined
    readonly action: CompiledAction
    readonly event: Event.Event | undefined
    readonly result: unknown
    /** The record's schedules once committed (`undefined`: as they were). */
    readonly schedules: ReadonlyArray<Schedules.Pending> | undefined
    /** Whether the commit is the record's activity (a scheduled run is not, unless `schedulesKeepAlive`). */
    readonly activity: boolean
  }
  | {
    /** An update that changes no field: nothing is stored or published (a layer may record activity). */
    readonly _tag: "Unchanged"
    readonly action: CompiledAction
  }
  | {
    readonly _tag: "Remove"
    readonly reason: Event.DestroyReason
    readonly op: string | undefined
    readonly action: CompiledAction
    readonly event: Event.Event
    readonly result: unknown
  }

/**
 * What a port's commit came to: committed (the pipeline replies as the
 * action computed), or found applied already by an earlier attempt of the
 * same write (the reply is what that attempt answered: the record it
 * stored, or the result it kept with its operation id).
 *
 * @internal
 */
export type Committed = undefined | { readonly _tag: "Applied"; readonly reply: unknown }

/**
 * What a data layer supplies to the pipeline for one kind of record `Rec`;
 * `C` is what a call carries to the record's run (its caller's chain, span,
 * callers), opaque here; `E` the refusals the layer adds (its own retryable
 * failures) to the store's errors.
 *
 * @internal
 */
export interface Port<Rec extends { readonly resource: Compiled }, C, E> {
  /** The record's committed state; `undefined` before its create committed. */
  readonly committed: (rec: Rec) => any
  /** The record's committed schedules. */
  readonly schedules: (rec: Rec) => ReadonlyArray<Schedules.Pending>
  /** The layer's time (epoch milliseconds of its `Clock`), when schedules are made and run. */
  readonly time: (rec: Rec) => number
  /** The record's committed key, encoded; before its create committed, the key it was created under (`""` if none). */
  readonly key: (rec: Rec) => string
  /** Runs the effectful part of an action as the record (its chain, services, span), to its outcome. */
  readonly run: <A>(
    rec: Rec,
    action: CompiledAction,
    call: C,
    effect: Effect.Effect<A, StoreError, any>
  ) => Effect.Effect<Outcome.Outcome<A, E | StoreError>, never, any>
  /** Claims the key `key` for the record's new `state` (a create, a change of key); refused: `AlreadyExists`. */
  readonly claim: (rec: Rec, key: string, state: any, action: CompiledAction) => Outcome.Step<void, E | StoreError>
  /**
   * Gives back a key `claim` took, when the write does not commit. A layer
   * that runs actions in their caller's fiber gives it back also when that
   * caller is interrupted, which the pipeline does not see.
   */
  readonly release: (rec: Rec, key: string) => void
  /** What the action's own chain sees of the record while its after hooks run (`undefined`: its committed state). */
  readonly pending: (rec: Rec, state: unknown) => void
  /** Ends the running action's activation. */
  readonly settle: (rec: Rec) => void
  /** Whether the record is gone or past its deadline now: a commit after it is refused as `NotFound`. */
  readonly expired: (rec: Rec) => boolean
  /** Stores the change (where the layer stores records), commits it in memory and publishes its event. */
  readonly commit: (rec: Rec, change: Change) => Outcome.Step<Committed, E | StoreError>
}

interface Attempted {
  readonly prepared: Prepared
  readonly key: string
  readonly reply: any
}

type Step<A, E> = Outcome.Step<A, E | StoreError>

/**
 * Runs an action's change, hooks and validation and claims its new key;
 * then the `after` hooks with the new state pending. Nothing is committed.
 */
const attempt = <Rec extends { readonly resource: Compiled }, C, E>(
  port: Port<Rec, C, E>,
  rec: Rec,
  action: CompiledAction,
  call: C,
  data: any,
  input: Decoded
): Step<Attempted, E> => {
  let result: Result<Prepared>
  try {
    result = prepare(rec.resource, action, data, input, port, rec)
  } catch (defect) {
    return Outcome.crashed(Cause.die(defect))
  }
  if (Effect.isEffect(result)) {
    return Effect.flatMap(
      port.run(rec, action, call, result as Effect.Effect<Prepared, StoreError, any>),
      (prepared): Effect.Effect<Outcome.Outcome<Attempted, E | StoreError>, never, any> =>
        prepared._tag === "Ok"
          ? Outcome.toEffect(claimed(port, rec, action, call, prepared.value))
          : Effect.succeed(prepared)
    )
  }
  if (isRefusal(result)) return Outcome.refused(result)
  return claimed(port, rec, action, call, result as Prepared)
}

const claimed = <Rec extends { readonly resource: Compiled }, C, E>(
  port: Port<Rec, C, E>,
  rec: Rec,
  action: CompiledAction,
  call: C,
  prepared: Prepared
): Step<Attempted, E> => {
  const key = action.kind === "destroy" ? port.key(rec) : rec.resource.encodeKey(prepared.state)
  if (key === port.key(rec)) return after(port, rec, action, call, prepared, key)
  return Outcome.flatMap(
    port.claim(rec, key, prepared.state, action),
    (claim) => claim._tag === "Ok" ? after(port, rec, action, call, prepared, key) : claim
  )
}

const after = <Rec extends { readonly resource: Compiled }, C, E>(
  port: Port<Rec, C, E>,
  rec: Rec,
  action: CompiledAction,
  call: C,
  prepared: Prepared,
  key: string
): Step<Attempted, E> => {
  if (prepared.afterHooks.length === 0) return Outcome.ok({ prepared, key, reply: replyOf(action, prepared) })
  // frozen before the hooks (and a get on the action's own chain) see it: what they are given is what commits, as
  // validated (the commit's own freeze then finds it frozen; an action without after hooks pays nothing here)
  freeze(prepared.state)
  port.pending(rec, action.kind === "destroy" ? undefined : prepared.state)
  return Effect.map(port.run(rec, action, call, runAfter(rec.resource, action, prepared)), (done) => {
    port.pending(rec, undefined)
    if (done._tag !== "Ok") {
      port.release(rec, key)
      return done
    }
    return Outcome.ok({ prepared, key, reply: action.checkResult === undefined ? done.value : prepared.result })
  })
}

/** What the caller is answered: the action's result where it declares `success`, otherwise the new state. */
const replyOf = (action: CompiledAction, prepared: Prepared): unknown =>
  action.checkResult === undefined ? prepared.state : prepared.result

/** Commits `change`; refused, the key the write claimed is given back. The reply: `reply`, or what was applied. */
const commit = <Rec extends { readonly resource: Compiled }, C, E, A>(
  port: Port<Rec, C, E>,
  rec: Rec,
  change: Change,
  key: string,
  reply: A
): Step<A, E> =>
  Outcome.map(port.commit(rec, change), (done) => {
    if (done._tag !== "Ok") {
      port.release(rec, key)
      return done
    }
    return Outcome.ok(done.value === undefined ? reply : done.value.reply as A)
  })

/**
 * The refusal of a commit that would come after the record's deadline (or
 * after it was removed), naming the record by `record`, its state when the
 * action began (a layer may have no committed state for it by now).
 */
const lapsed = <Rec extends { readonly resource: Compiled }, C, E>(
  port: Port<Rec, C, E>,
  rec: Rec,
  key: string,
  record: any
) => {
  port.release(rec, key)
  return Outcome.refused(Errors.notFound(rec.resource, Events.keyObject(rec.resource, record)))
}

/**
 * Runs the create action `action` on `data` (the accepted input with its
 * generated fields) and commits the new record: `Created`. With `event:
 * "Restarted"`, the same for `restart: "initial"` of a live record (its new
 * state replaces its committed one, at the key its create gives).
 *
 * @internal
 */
export const create = <Rec extends { readonly resource: Compiled }, C, E>(
  port: Port<Rec, C, E>,
  rec: Rec,
  action: CompiledAction,
  call: C,
  data: any,
  input: Decoded,
  op: string | undefined,
  event: "Created" | "Restarted" = "Created"
): Step<any, E> =>
  Outcome.flatMap(attempt(port, rec, action, call, data, input), (result) => {
    port.settle(rec)
    if (result._tag !== "Ok") return result
    const { key, prepared, reply } = result.value
    const state = prepared.state
    const change: Change = event === "Created"
      ? {
        _tag: "Create",
        state,
        key,
        op,
        action,
        event: Events.created(rec.resource, state),
        result: prepared.result,
        schedules: prepared.schedules
      }
      // a restart from the create: the schedules its create makes, none other
      : {
        _tag: "Update",
        state,
        key,
        op,
        action,
        event: Events.restarted(rec.resource, state),
        result: undefined,
        schedules: prepared.schedules ?? Schedules.none,
        activity: true
      }
    return commit(port, rec, change, key, reply)
  })

/**
 * What running the create again for `restart: "initial"` came to: the
 * create's own outcome (`Ok`: restarted, `Restarted` published; refused or
 * crashed by the create action), or `Unstored`: storage did not take the
 * restart's write, which is a refusal, never a crash (DESIGN "Faults"): the
 * record keeps its last committed state, in memory and in storage.
 *
 * @internal
 */
export type Recreated<E> = Outcome.Outcome<any, E | StoreError> | {
  readonly _tag: "Unstored"
  readonly outcome: Exclude<Outcome.Outcome<unknown, E | StoreError>, { readonly _tag: "Ok" }>
}

/**
 * Runs the create action again over a crashed record (`restart: "initial"`),
 * as `Restarted` (see {@link Recreated}).
 *
 * @internal
 */
export const recreate = <Rec extends { readonly resource: Compiled }, C, E>(
  port: Port<Rec, C, E>,
  rec: Rec,
  action: CompiledAction,
  call: C,
  data: any,
  input: Decoded,
  op: string | undefined
): Effect.Effect<Recreated<E>, never, any> => {
  // the commit is the one step that writes to storage: its failure is told apart from the create's own
  let unstored: Extract<Recreated<E>, { readonly _tag: "Unstored" }>["outcome"] | undefined
  const restarting: Port<Rec, C, E> = {
    ...port,
    commit: (rec, change) =>
      Outcome.map(port.commit(rec, change), (done) => {
        if (done._tag !== "Ok") unstored = done
        return done
      })
  }
  return Effect.map(
    Outcome.toEffect(create(restarting, rec, action, call, data, input, op, "Restarted")),
    (result): Recreated<E> => unstored === undefined ? result : { _tag: "Unstored", outcome: unstored }
  )
}

/** The warning of a restart storage did not take: the record resumes its last state. @internal */
export const unstoredRestart = (
  resource: Compiled,
  key: string,
  outcome: Extract<Recreated<unknown>, { readonly _tag: "Unstored" }>["outcome"]
): Effect.Effect<void> =>
  Effect.logWarning(
    `${resource.name} restarts "initial" but storage did not take its write: it resumes its last state`
  ).pipe(Effect.annotateLogs({ resource: resource.name, key, failure: Outcome.describe(outcome) }))

/**
 * Runs the update action `action` on the committed record and commits its
 * new state (`Updated`), unless the record is past its deadline by then.
 * `fired`: the schedule this run is, consumed in the same commit (`Updated`
 * published only if the state changed).
 *
 * @internal
 */
export const update = <Rec extends { readonly resource: Compiled }, C, E>(
  port: Port<Rec, C, E>,
  rec: Rec,
  action: CompiledAction,
  call: C,
  input: Decoded,
  op: string | undefined,
  fired?: Schedules.Pending
): Step<any, E> => {
  const record = port.committed(rec)
  const before = port.schedules(rec)
  return Outcome.flatMap(attempt(port, rec, action, call, record, input), (result) => {
    port.settle(rec)
    if (result._tag !== "Ok") return result
    const { key, prepared, reply } = result.value
    if (port.expired(rec)) return lapsed(port, rec, key, record)
    const schedules = fired === undefined
      ? prepared.schedules
      : Schedules.consume(before, prepared.schedules ?? before, fired, port.time(rec))
    if (prepared.unchanged && schedules === undefined) {
      return commit(port, rec, { _tag: "Unchanged", action }, key, reply)
    }
    const state = prepared.state
    return commit(
      port,
      rec,
      {
        _tag: "Update",
        state,
        key,
        op,
        action,
        event: prepared.unchanged ? undefined : Events.updated(rec.resource, state),
        result: prepared.result,
        schedules,
        activity: fired === undefined || rec.resource.resource.schedulesKeepAlive
      },
      key,
      reply
    )
  })
}

/**
 * Gives up the schedule `pending` (its retries ran out): removed from the
 * record's schedules in a commit of its own, with `ScheduleFailed`. Nothing
 * if the record no longer holds it (replaced or removed since).
 *
 * @internal
 */
export const giveUp = <Rec extends { readonly resource: Compiled }, C, E>(
  port: Port<Rec, C, E>,
  rec: Rec,
  pending: Schedules.Pending,
  failure: string
): Step<void, E> => {
  const before = port.schedules(rec)
  const record = port.committed(rec)
  if (record === undefined || !before.includes(pending)) return Outcome.ok(undefined)
  const action = rec.resource.actions.get(pending.action)!
  const event = Events.scheduleFailed(rec.resource, record, pending.name, pending.action, failure)
  const key = port.key(rec)
  const schedules = before.filter((p) => p !== pending)
  const change: Change = {
    _tag: "Update",
    state: record,
    key,
    op: undefined,
    action,
    event,
    result: undefined,
    schedules,
    activity: false
  }
  return Outcome.map(port.commit(rec, change), (done) => done._tag === "Ok" ? Outcome.ok(undefined) : done)
}

const noInput: Decoded = { attributes: {}, arguments: {} }

/**
 * Runs the destroy action `action` on the committed record and removes it
 * (`Destroyed`). A destroy by action refuses as its action does, and is
 * `NotFound` past the record's deadline; an expiry (`reason` inactivity or
 * lifetime) removes the record whatever its action does.
 *
 * @internal
 */
export const destroy = <Rec extends { readonly resource: Compiled }, C, E>(
  port: Port<Rec, C, E>,
  rec: Rec,
  action: CompiledAction,
  call: C,
  reason: Event.DestroyReason,
  op: string | undefined
): Step<unknown, E> => {
  const record = port.committed(rec)
  const key = port.key(rec)
  return Outcome.flatMap(attempt(port, rec, action, call, record, noInput), (result) => {
    port.settle(rec)
    if (reason === "action") {
      if (result._tag !== "Ok") return result
      if (port.expired(rec)) return lapsed(port, rec, key, record)
      const event = Events.destroyed(rec.resource, record, reason)
      // a destroy answers with nothing, or with its result
      const { prepared } = result.value
      const change: Change = { _tag: "Remove", reason, op, action, event, result: prepared.result }
      return commit(port, rec, change, key, prepared.result)
    }
    const failure = result._tag === "Ok" ? undefined : Outcome.describe(result)
    const event = Events.destroyed(rec.resource, record, reason, failure)
    const removal = commit(port, rec, { _tag: "Remove", reason, op, action, event, result: undefined }, key, undefined)
    if (failure === undefined) return removal
    return Effect.andThen(
      Effect.logWarning(`${rec.resource.name} expired (${reason}) but its destroy action failed: ${failure}`).pipe(
        Effect.annotateLogs({ resource: rec.resource.name, key })
      ),
      Outcome.toEffect(removal)
    )
  })
}

/** Deep-freezes a committed record: nothing a caller does to what it receives changes it. @internal */
export const freeze = <A>(value: A): A => {
  if (typeof value !== "object" || value === null || Object.isFrozen(value)) return value
  Object.freeze(value)
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) freeze(value[i])
  } else {
    for (const k in value) freeze((value as { readonly [field: string]: unknown })[k])
  }
  return value
}
