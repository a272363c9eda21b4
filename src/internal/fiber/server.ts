/**
 * The record server: the state of the fiber that owns one record, the
 * requests it serves, and its steps as functions of (server, request).
 *
 * A record server holds the record's committed state in a `Ref` and its
 * pending requests in an array (its mailbox, allocated by the first request
 * that finds it empty and taken whole by the fiber as its next batch: an idle
 * record holds none); `mailbox.ts` is the loop that takes requests and runs
 * the steps below, `supervisor.ts` decides what a crash leads to. Nothing
 * here forks or waits.
 *
 * **Who writes what**
 *
 * - The committed state (`state`) is written only by a step of the record's
 *   one running request, in {@link commit}, in the same synchronous step as
 *   the registry's dense arrays and indexes. That step runs in the record's
 *   own fiber, or, for an update to an idle record (its fiber waiting on an
 *   empty mailbox, so no other request can run), synchronously in the
 *   caller's fiber (`Mailbox.serveNow`), which hands anything asynchronous
 *   (hooks, an effectful change, a durable write) to the record's fiber
 *   ahead of every later request. Every other reader goes through
 *   {@link committed}: a direct read of the `Ref` is safe because a commit is
 *   one synchronous step (no reader can see half of it) and a committed
 *   record is deeply frozen (no reader can change it).
 * - `pending` is the validated new state while the action's `after` hooks
 *   run; only the action's own chain sees it ({@link visible}).
 * - `lastActivity` is written by callers through the supervisor's `touch`
 *   (a number, never decreasing); everything else is the fiber's own.
 * - A durable resource's record writes its new state to storage
 *   (`ctx.persist`) before the commit, in its own fiber, the request
 *   waiting: the stored state is never behind what a caller saw, and a
 *   failed write commits nothing.
 *
 * **Gotchas**
 *
 * - A request is served even if its caller stopped waiting (interrupted):
 *   like a `GenServer.call` that timed out, the action may still happen.
 * - The deadline is checked when an action commits: an update or destroy
 *   that would commit after the record's deadline fails with `NotFound` and
 *   publishes nothing; a new record's inactivity and lifetime count from the
 *   moment its create commits.
 *
 * **Why one file of this size** (about 450 lines of code): it is the record
 * server, the one object every part of the in-process runtime touches (its
 * fields are read and written synchronously on the hot path, by the mailbox,
 * the supervisor and the registry), with the write pipeline's port over it
 * and the request shapes it serves. The loop is in `mailbox.ts`, deadlines
 * and restarts in `supervisor.ts`, lookups in `registry.ts`, semantics in
 * `record/`; what remains here is the state and the steps that change it.
 *
 * @internal
 */
import { Cause, type Deferred, Effect, Exit, Ref, type Scheduler, type Tracer } from "effect"
import type { NotFound, RecordCrashed, StoreError } from "../../Errors.js"
import type * as Event from "../../Event.js"
import type * as Metrics from "../../Metrics.js"
import type { Activation, Chain, WaitGraph } from "../record/deadlock.js"
import { CurrentChain } from "../record/deadlock.js"
import * as Errors from "../record/errors.js"
import * as Events from "../record/events.js"
import * as Lifecycle from "../record/lifecycle.js"
import * as OperationId from "../record/operationId.js"
import * as Step from "../record/outcome.js"
import * as Schedules from "../record/schedules.js"
import * as Write from "../record/write.js"
import type { Compiled, CompiledAction, Decoded } from "../resource.js"
import { spanned } from "../tracing.js"
import * as Registry from "./registry.js"

/** What a record server needs from its supervisor and data layer, shared by the records of a resource. @internal */
export interface ServerContext {
  readonly table: Registry.Table<RecordServer>
  readonly graph: WaitGraph
  readonly publish: (event: Event.Event) => void
  /** Called once the record is live, to track its deadlines. */
  readonly started: (server: RecordServer) => void
  /** Applies the restart policy after a crash; `true` when the record lives on. */
  readonly restart: (server: RecordServer, cause: Cause.Cause<unknown>) => Effect.Effect<boolean>
  readonly metrics: Metrics.ResourceMetrics
  /** Monotonic milliseconds, for call durations. */
  readonly now: () => number
  /** The clock's milliseconds, for deadlines. */
  readonly time: () => number
  /** Whether the record is past a deadline now (and so no longer observable). */
  readonly expired: (server: RecordServer) => boolean
  /** Called once the record is stopped, to forget its deadlines. */
  readonly stopped: (server: RecordServer) => void
  /** What a record's fiber runs once a request arrived in its empty mailbox. */
  readonly next: (server: RecordServer) => Effect.Effect<void, never, any>
  /** Starts a new fiber for a hibernated record, serving what its mailbox holds. */
  readonly wake: (server: RecordServer) => void
  /** Called when a hibernation request found the record busy: track its hibernation deadline again. */
  readonly stayAwake: (server: RecordServer) => void
  /** Where a durable resource's records keep their committed state; `undefined` for the others. */
  readonly persist: Persistence | undefined
  /** Called when the record's schedules changed (committed), to track when the next is due. */
  readonly scheduled: (server: RecordServer, previous: ReadonlyArray<Schedules.Pending>) => void
  /** Called once a scheduled run ended (`failure`: how it failed): retried, given up, or done. */
  readonly fired: (
    server: RecordServer,
    pending: Schedules.Pending,
    failure: string | undefined
  ) => Effect.Effect<void, never, any>
}

/**
 * The storage of a durable resource's records: each write completes (is
 * durable) before the commit it stores, and so before any caller sees it.
 * A write that fails leaves the record as it was; its error is the caller's
 * (never a crash). Every write carries an operation id (`op`) its row
 * remembers.
 *
 * @internal
 */
export interface Persistence {
  /**
   * Before a write carrying an id the caller chose, or of a record whose
   * last write's fate is unknown: learns from storage what happened (the
   * record may take its stored state, or be removed, see {@link adopt}) and
   * whether `op` was applied already (with the result `action` answered
   * then, where it declares `success`). `undefined` when there is nothing
   * to learn.
   */
  readonly settle: (
    server: RecordServer,
    op: string | undefined,
    action: CompiledAction
  ) => Effect.Effect<Remembered | undefined, StoreError> | undefined
  /** What a write under `op` stores of itself in the record's row: the id, with the action's result. */
  readonly remember: (op: string, action: CompiledAction, result: unknown) => string
  /** Stores a new record (and its create input, for `restart: "initial"`). */
  readonly created: (
    server: RecordServer,
    state: unknown,
    op: string,
    action: string,
    schedules: ReadonlyArray<Schedules.Pending>
  ) => Effect.Effect<void, StoreError>
  /** Stores a record's new state (an update, a key change, a restart from the initial input). */
  readonly updated: (
    server: RecordServer,
    state: unknown,
    key: string,
    op: string,
    action: string,
    schedules: ReadonlyArray<Schedules.Pending>
  ) => Effect.Effect<void, StoreError>
  /** Removes a record from storage (destroy, expiry, failure). */
  readonly removed: (server: RecordServer, op: string, action: string) => Effect.Effect<void, StoreError>
}

/** A write found applied already under its operation id, with the result it answered (its action's `success`). @internal */
export interface Remembered {
  readonly result: unknown
}

/** The input a create action ran with, kept for `restart: "initial"`. @internal */
export interface CreateInput {
  readonly action: CompiledAction
  /** The accepted input with generated fields filled in. */
  readonly data: { readonly [field: string]: unknown }
  readonly input: Decoded
}

interface Call {
  readonly reply: Deferred.Deferred<any, StoreError>
  /** The operation id the caller chose (`Store.withOperationId`), if any. */
  readonly op: string | undefined
  /** The caller's attached chain (ids), which the action's own chain extends. */
  readonly chain: Chain
  /** The caller's span, which the action's span continues (only with a tracing backend). */
  readonly span: Tracer.AnySpan | undefined
}

/** A request to a record server: plain data naming the action, plus where to reply. @internal */
export type Request =
  | Call & { readonly _tag: "Create" }
  | Call & {
    readonly _tag: "Update"
    readonly action: string
    readonly input: Decoded
    /** When the call arrived (monotonic milliseconds). */
    readonly at: number
  }
  | Call & { readonly _tag: "Destroy"; readonly action: string; readonly at: number }
  | { readonly _tag: "Expire"; readonly reason: "inactivity" | "lifetime" }
  | { readonly _tag: "Hibernate" }
  /** A schedule of the record's own came due: run its action (`fire`). */
  | { readonly _tag: "Fire"; readonly schedule: Schedules.Pending }
  /** A call its caller began serving on an idle record, for the record's fiber to finish (hooks, an effectful change, a restart). */
  | {
    readonly _tag: "Continue"
    readonly call: Extract<Request, { readonly _tag: "Update" | "Destroy" }>
    readonly step: Step.Step<any>
  }

/**
 * Builds a request: the one place a request's shape is decided.
 *
 * @internal
 */
export const request = {
  create: (
    reply: Deferred.Deferred<any, StoreError>,
    chain: Chain,
    span: Tracer.AnySpan | undefined,
    op: string | undefined
  ): Request => ({ _tag: "Create", reply, chain, span, op }),
  update: (
    action: string,
    input: Decoded,
    reply: Deferred.Deferred<any, StoreError>,
    chain: Chain,
    at: number,
    span: Tracer.AnySpan | undefined,
    op: string | undefined
  ): Request => ({ _tag: "Update", action, input, reply, chain, at, span, op }),
  destroy: (
    action: string,
    reply: Deferred.Deferred<any, StoreError>,
    chain: Chain,
    at: number,
    span: Tracer.AnySpan | undefined,
    op: string | undefined
  ): Request => ({ _tag: "Destroy", action, reply, chain, at, span, op }),
  expire: (reason: "inactivity" | "lifetime"): Request => ({ _tag: "Expire", reason }),
  fire: (schedule: Schedules.Pending): Request => ({ _tag: "Fire", schedule }),
  hibernate: { _tag: "Hibernate" } as Request
}

// a class, so that every field is in the object itself and every server shares one shape
/** @internal */
export class RecordServer implements Registry.Entry {
  key = ""
  readonly state: Ref.Ref<any> = Ref.makeUnsafe<any>(undefined)
  status: "starting" | "live" | "stopped" = "starting"
  createdAt: number
  lastActivity: number
  /** Timestamps of recent restarts, for the restart intensity. */
  restarts: Array<number> | undefined = undefined
  /** The validated new state while `after` hooks run; visible to the action's own chain. */
  pending: unknown = undefined
  /** The action running now, if it runs as an Effect (hooks, an effectful change). */
  activation: Activation | undefined = undefined
  current: Request | undefined = undefined
  /** The batch taken from the mailbox, and the index of its next request: not yet served. */
  batch: ReadonlyArray<Request> | undefined = undefined
  next = 0
  /**
   * The record's mailbox: the requests not yet taken by its fiber, in arrival
   * order; `undefined` when there are none (never an empty array). While the
   * record hibernates, the requests that arrived since, for the fiber that
   * wakes it.
   */
  mailbox: Array<Request> | undefined = undefined
  /**
   * The dispatcher of the record's fiber, on which {@link post} rings the
   * doorbell; `undefined` while the record hibernates (no fiber), or before
   * its fiber first ran.
   */
  dispatcher: Scheduler.SchedulerDispatcher | undefined = undefined
  /**
   * Resumes the record's fiber while it waits for its next request (its
   * mailbox empty): {@link post} rings it; `undefined` while the fiber runs.
   */
  doorbell: ((effect: Effect.Effect<void, never, any>) => void) | undefined = undefined
  /** Positions in the supervisor's deadline heaps and the registry's dense arrays (`-1`: absent). */
  idleSlot = -1
  lifetimeSlot = -1
  hibernateSlot = -1
  liveSlot = -1
  /** Durable resources: the version of the stored row (`0`: none yet), and the activity it holds. */
  stored = 0
  storedActivity = 0
  /** The record's committed schedules, and its position in the supervisor's heap of due times. */
  schedules: ReadonlyArray<Schedules.Pending> = Schedules.none
  dueSlot = -1
  /** Schedules running now, and those retried after a failure (when, and the retry policy's state). */
  firing: Set<Schedules.Pending> | undefined = undefined
  retries: Map<Schedules.Pending, Schedules.Retry> | undefined = undefined
  constructor(
    /** The record's node in the wait-for graph: unique per record of a data layer. */
    readonly id: number,
    readonly resource: Compiled,
    /** What the create action ran with; dropped once live unless `restart: "initial"`. */
    public createInput: CreateInput | undefined,
    readonly ctx: ServerContext,
    now: number
  ) {
    this.createdAt = now
    this.lastActivity = now
  }
}

/**
 * The record's committed state: the one reader of the record's `Ref`
 * (see the module's "who writes what").
 *
 * @internal
 */
export const committed = (server: RecordServer): any => server.state.ref.current

/**
 * What a fiber running for `chain` sees of the record: its pending state
 * when the fiber runs (attached) on behalf of the record's running action,
 * its committed state otherwise.
 *
 * @internal
 */
export const visible = (server: RecordServer, chain: Chain): any =>
  server.pending !== undefined && server.ctx.graph.runsFor(chain, server.activation)
    ? server.pending
    : committed(server)

/** The key object of a record. @internal */
/** The key object of a record as its callers know it: its committed state's, or its create's. @internal */
export const keyOf = (server: RecordServer) =>
  Events.keyObject(server.resource, committed(server) ?? server.createInput?.data)

/** The error a caller gets when the record crashed serving it. @internal */
export const crashError = (server: RecordServer, cause: Cause.Cause<unknown>): RecordCrashed =>
  Errors.crashed(server.resource, keyOf(server), cause)

/** The error a caller of a record that was removed gets. @internal */
export const notFound = (server: RecordServer): NotFound => Errors.notFound(server.resource, keyOf(server))

/** Ends the running action's activation (and its wait-for edges). @internal */
export const settle = (server: RecordServer): void => {
  if (server.activation === undefined) return
  server.ctx.graph.end(server.activation)
  server.activation = undefined
}

/** What a call hands the record's run: its caller's chain, which the action's extends, and its span. */
interface Caller {
  readonly chain: Chain
  readonly span: Tracer.AnySpan | undefined
}

const noCaller: Caller = { chain: [], span: undefined }

/** Commits a new state: the `Ref`, the registry's dense arrays and indexes, in one synchronous step. */
const commitState = (server: RecordServer, next: any, key: string): void => {
  const previous = server.status === "starting" ? undefined : committed(server)
  Write.freeze(next)
  server.state.ref.current = next
  Registry.commitUnsafe(server.ctx.table, server, previous, next, key)
}

/**
 * Runs a durable resource's write, then `then` (the commit in memory). A
 * write refused fails the step (the pipeline gives back the key the action
 * claimed): the record stays as it was.
 */
const durably = <A>(
  write: Effect.Effect<void, StoreError>,
  then: () => Step.Outcome<A>
): Step.Step<A> =>
  Effect.map(Effect.exit(write), (exit) => {
    if (Exit.isSuccess(exit)) return then()
    return Step.fromExit(Exit.failCause(exit.cause))
  })

/** The commit of a create: the state, the record live, `Created` published. */
const created = (server: RecordServer, change: Write.Change & { readonly _tag: "Create" }) => {
  commitState(server, change.state, change.key)
  if (change.schedules !== undefined) commitSchedules(server, change.schedules)
  live(server, change.event)
  return committedNow
}

/** The commit of an update (or a restart from the create): the state, its event published. */
const updated = (server: RecordServer, change: Write.Change & { readonly _tag: "Update" }) => {
  commitState(server, change.state, change.key)
  if (change.schedules !== undefined) commitSchedules(server, change.schedules)
  if (change.event !== undefined) server.ctx.publish(change.event)
  return committedNow
}

/** Commits the record's new schedules, for the supervisor to track. */
const commitSchedules = (server: RecordServer, schedules: ReadonlyArray<Schedules.Pending>) => {
  const previous = server.schedules
  server.schedules = schedules
  server.ctx.scheduled(server, previous)
}

/** The end of a removal: the record stops, its `Destroyed` (or `Failed`) is published. */
const removed = (server: RecordServer, event: Event.Event): Step.Outcome<Write.Committed> => {
  stop(server)
  server.ctx.publish(event)
  return Step.ok(undefined)
}

const committedNow: Step.Outcome<Write.Committed> = Step.ok(undefined)
const claimed: Step.Outcome<void> = Step.ok(undefined)

/**
 * The record server as the write pipeline (`record/write.ts`) sees it: its
 * state in its `Ref` and the registry, its key claimed in the registry, its
 * actions run in its own fiber as one activation of the record (its
 * caller's chain extended, a span, logs naming it), a durable resource's
 * writes stored before their commit (`Persistence`).
 */
const port: Write.Port<RecordServer, Caller, never> = {
  committed,
  schedules: (server) => server.schedules,
  time: (server) => server.ctx.time(),
  key: (server) => server.key,
  run: (server, action, caller, effect) => {
    const activation = server.activation ??= server.ctx.graph.begin(server.id)
    return Effect.map(
      Effect.exit(
        spanned(
          effect.pipe(
            Effect.provideService(CurrentChain, [...caller.chain, activation]),
            Effect.annotateLogs({ resource: server.resource.name, key: server.key, action: action.name })
          ),
          `${server.resource.name}.${action.name}`,
          { resource: server.resource.name, action: action.name },
          caller.span
        )
      ),
      Step.fromExit
    )
  },
  claim: (server, key, state) =>
    Registry.reserveUnsafe(server.ctx.table, key, server, server.ctx.expired)
      ? claimed
      : Step.refused(Errors.alreadyExists(server.resource, Events.keyObject(server.resource, state))),
  release: (server, key) => Registry.releaseUnsafe(server.ctx.table, key, server),
  pending: (server, state) => {
    server.pending = state
  },
  settle,
  expired: (server) => server.resource.hasTimeouts && server.ctx.expired(server),
  commit: (server, change) => {
    const persist = server.ctx.persist
    switch (change._tag) {
      // (no closure is made on the path without storage: the hot one)
      case "Create": {
        // a new record's deadlines count from its commit
        if (server.resource.tracksActivity) server.createdAt = server.lastActivity = server.ctx.time()
        if (persist === undefined) return created(server, change)
        const op = persist.remember(change.op ?? OperationId.make(), change.action, change.result)
        return durably(
          persist.created(server, change.state, op, change.action.name, change.schedules ?? Schedules.none),
          () => created(server, change)
        )
      }
      // nothing to store: the activity is the caller's (`touch`), written with the record's other activity
      case "Unchanged":
        return committedNow
      case "Update": {
        if (persist === undefined) return updated(server, change)
        const op = persist.remember(change.op ?? OperationId.make(), change.action, change.result)
        return durably(
          persist.updated(
            server,
            change.state,
            change.key,
            op,
            change.action.name,
            change.schedules ?? server.schedules
          ),
          () => updated(server, change)
        )
      }
      case "Remove": {
        if (persist === undefined) return removed(server, change.event)
        const op = persist.remember(change.op ?? OperationId.make(), change.action, change.result)
        if (change.reason === "action") {
          return durably(persist.removed(server, op, change.action.name), () => removed(server, change.event))
        }
        // an expiry removes the record at once, then its stored row; should that fail, the row (past its
        // deadline) is dead to a create under its key, and the next start expires it again
        removed(server, change.event)
        return Effect.as(
          Effect.catchCause(
            persist.removed(server, op, change.action.name),
            (cause) =>
              Effect.logWarning(
                `${server.resource.name} expired (${change.reason}) but its stored row could not be removed`
              )
                .pipe(
                  Effect.annotateLogs({ resource: server.resource.name, key: server.key, cause: Cause.pretty(cause) })
                )
          ),
          committedNow
        )
      }
    }
  }
}

/**
 * Runs the create action: the first request a server serves. On success
 * the record is committed, registered and live (`Created`); the result is
 * the record handed back to the caller.
 *
 * @internal
 */
export const create = (
  server: RecordServer,
  chain: Chain,
  span: Tracer.AnySpan | undefined,
  op: string | undefined
): Step.Step<any> => {
  const { action, data, input } = server.createInput!
  return Write.create(port, server, action, { chain, span }, data, input, op)
}

/**
 * Serves an update: runs the action on the committed state and commits the
 * result, or leaves the state as it was.
 *
 * @internal
 */
export const update = (
  server: RecordServer,
  req: Extract<Request, { readonly _tag: "Update" }>,
  /** Storage was consulted already (see `Persistence.settle`). */
  known = false
): Step.Step<any> => {
  const action = server.resource.actions.get(req.action)!
  const settling = known ? undefined : server.ctx.persist?.settle(server, req.op, action)
  if (settling !== undefined) {
    // storage first: the record may be behind it, or the call's id applied already (answered as it is now, or
    // with the result it answered then)
    return settled(
      server,
      settling,
      (applied) =>
        applied === undefined
          ? update(server, req, true)
          : Step.ok(action.checkResult === undefined ? committed(server) : applied.result),
      req.op
    )
  }
  return Write.update(port, server, action, req, req.input, req.op)
}

/**
 * Runs a due schedule's action as a call of the record's own (no caller, no
 * operation id): an update consumes the schedule in its commit, a destroy
 * removes the record and every schedule with it. A schedule the record no
 * longer holds (replaced, removed, or the record gone) runs nothing.
 *
 * @internal
 */
export const fire = (server: RecordServer, schedule: Schedules.Pending, known = false): Step.Step<unknown> => {
  if (server.status !== "live" || !server.schedules.includes(schedule)) return Step.ok(undefined)
  const action = server.resource.actions.get(schedule.action)!
  const settling = known ? undefined : server.ctx.persist?.settle(server, undefined, action)
  if (settling !== undefined) return settled(server, settling, () => fire(server, schedule, true), undefined)
  if (server.resource.resource.schedulesKeepAlive) Lifecycle.touchUnsafe(server, server.ctx.time())
  return action.kind === "destroy"
    ? Write.destroy(port, server, action, noCaller, "action", undefined)
    : Write.update(port, server, action, noCaller, schedule.input, undefined, schedule)
}

/** Gives up a schedule whose retries ran out (`Write.giveUp`). @internal */
export const giveUp = (server: RecordServer, schedule: Schedules.Pending, failure: string): Step.Step<void> =>
  Write.giveUp(port, server, schedule, failure)

/**
 * Serves a destroy (by action or by expiry): runs the action, then removes
 * the record. An expiry removes the record even when its destroy action
 * fails; a destroy by action that would finish after the record's deadline
 * fails with `NotFound` (the expiry removes it).
 *
 * @internal
 */
export const destroy = (
  server: RecordServer,
  action: CompiledAction,
  reason: Event.DestroyReason,
  chain: Chain,
  span: Tracer.AnySpan | undefined,
  op: string | undefined,
  /** Storage was consulted already (see `Persistence.settle`). */
  known = false
): Step.Step<unknown> => {
  const settling = reason === "action" && !known ? server.ctx.persist?.settle(server, op, action) : undefined
  if (settling !== undefined) {
    return settled(
      server,
      settling,
      (applied) =>
        applied === undefined ? destroy(server, action, reason, chain, span, op, true) : Step.ok(applied.result),
      op
    )
  }
  return Write.destroy(port, server, action, { chain, span }, reason, op)
}

/**
 * Runs a durable record's settling (`Persistence.settle`), then `then` with
 * whether the call's own id was applied already; a record the settling
 * removed answers `NotFound` (or, when it was the call's own destroy,
 * success). A failure to read storage refuses the call.
 */
const settled = <A>(
  server: RecordServer,
  settling: Effect.Effect<Remembered | undefined, StoreError>,
  then: (applied: Remembered | undefined) => Step.Step<A>,
  op: string | undefined
): Step.Step<A> =>
  Effect.flatMap(Effect.exit(settling), (exit) => {
    if (Exit.isFailure(exit)) return Effect.succeed(Step.fromExit(Exit.failCause(exit.cause)))
    if (server.status !== "live" && !(exit.value !== undefined && op !== undefined)) {
      return Effect.succeed(Step.refused(notFound(server)))
    }
    return Step.toEffect(then(exit.value))
  })

/**
 * A durable record takes the state storage holds for it (a write whose
 * answer was lost turned out applied): committed now, with the event it
 * owed (`Updated`); `undefined` (its row removed) stops it, `Destroyed`.
 *
 * @internal
 */
export const adopt = (server: RecordServer, state: unknown): void => {
  if (state === undefined) {
    removed(server, Events.destroyed(server.resource, committed(server), "action"))
    return
  }
  const key = server.resource.encodeKey(state)
  if (key !== server.key) Registry.reserveUnsafe(server.ctx.table, key, server)
  commitState(server, state, key)
  server.ctx.publish(Events.updated(server.resource, state))
}

/** Serves an update or destroy request. @internal */
export const serve = (server: RecordServer, req: Extract<Request, { readonly _tag: "Update" | "Destroy" }>) => {
  // accepted before the record's deadline, served after it: the record is gone for the caller too
  if (server.resource.hasTimeouts && server.ctx.expired(server)) return Step.refused(notFound(server))
  return req._tag === "Update"
    ? update(server, req)
    : destroy(server, server.resource.actions.get(req.action)!, "action", req.chain, req.span, req.op)
}

/**
 * Marks a server stopped and removes it from the registry.
 *
 * @internal
 */
export const stop = (server: RecordServer): void => {
  if (server.status === "stopped") return
  const wasLive = server.status === "live"
  server.status = "stopped"
  settle(server)
  Registry.removeUnsafe(server.ctx.table, server, wasLive ? committed(server) : undefined)
  server.ctx.stopped(server)
}

/** Makes a created record live: listed, its `Created` published, its deadlines tracked. */
const live = (server: RecordServer, created: Event.Event): void => {
  server.status = "live"
  // only `restart: "initial"` needs the create input again
  if (server.resource.restart !== "initial") server.createInput = undefined
  Registry.enlistUnsafe(server.ctx.table, server, committed(server))
  server.ctx.publish(created)
  server.ctx.started(server)
}

/**
 * Makes a stored record live without a fiber, hibernated, as a durable
 * resource's records are when the process starts: registered and listed
 * with its committed state, its deadlines tracked (a deadline already past
 * expires it through its destroy action), no event. Its first request
 * wakes it.
 *
 * @internal
 */
export const restore = (
  server: RecordServer,
  state: any,
  key: string,
  schedules: ReadonlyArray<Schedules.Pending>
): void => {
  server.state.ref.current = Write.freeze(state)
  Registry.commitUnsafe(server.ctx.table, server, undefined, state, key)
  server.status = "live"
  Registry.enlistUnsafe(server.ctx.table, server, state)
  server.ctx.metrics.sleep(1)
  server.ctx.started(server)
  if (schedules.length > 0) commitSchedules(server, schedules)
}

/** Re-runs the create action for `restart: "initial"` (see `Write.Recreated`). @internal */
export const recreate = (server: RecordServer): Effect.Effect<Write.Recreated<never>, never, any> => {
  const { action, data, input } = server.createInput!
  return Write.recreate(port, server, action, noCaller, data, input, undefined)
}

/** Publishes `Restarted` for a record resuming with its last state. @internal */
export const resumed = (server: RecordServer): void =>
  server.ctx.publish(Events.restarted(server.resource, committed(server)))

/** Removes a crashed record and publishes `Failed` with its last state. @internal */
export const fail = (server: RecordServer): void => {
  removed(server, Events.failed(server.resource, committed(server)))
}

/**
 * Asks a record to expire: scans stop seeing it at once, and its fiber runs
 * the primary destroy action and removes it.
 *
 * @internal
 */
export const expire = (server: RecordServer, reason: "inactivity" | "lifetime"): void => {
  // past its deadline, it is not observable: scans stop seeing it now, not when its fiber gets to it
  Registry.delistUnsafe(server.ctx.table, server)
  deliver(server, request.expire(reason))
}

/**
 * Hands a request to the record: to its mailbox when it is awake; when it
 * hibernates, to its mailbox too, for its waking fiber to serve first
 * (starting that fiber for the first of them), in arrival order either way.
 *
 * @internal
 */
export const deliver = (server: RecordServer, req: Request): void => {
  if (server.dispatcher !== undefined) {
    post(server, server.dispatcher, req)
  } else if (server.mailbox !== undefined) {
    server.mailbox.push(req)
  } else if (req._tag !== "Hibernate") {
    server.mailbox = [req]
    server.ctx.wake(server)
  }
}

/**
 * Puts a request in an awake record's mailbox and, when its fiber waits for
 * one, resumes it with its next turn through its fiber's dispatcher, as
 * Effect's `Queue` wakes a taker: the record serves it in a later task, never
 * inside the caller.
 *
 * @internal
 */
export const post = (server: RecordServer, dispatcher: Scheduler.SchedulerDispatcher, req: Request): void => {
  if (server.mailbox === undefined) server.mailbox = [req]
  else server.mailbox.push(req)
  const resume = server.doorbell
  if (resume !== undefined) {
    server.doorbell = undefined
    dispatcher.scheduleTask(() => resume(server.ctx.next(server)), 0)
  }
}

/** How many requests wait for the record (not counting the batch its fiber serves). @internal */
export const queued = (server: RecordServer): number => server.mailbox?.length ?? 0
