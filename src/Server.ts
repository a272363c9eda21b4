/**
 * The record server: the fiber that owns one record.
 *
 * A record server holds the record's committed state in a `Ref` and its
 * pending requests in a `Queue` (its mailbox). The fiber takes requests in
 * batches and serves them one at a time, so the writes of one record are
 * serialised and its hooks never run concurrently with each other. Reads by
 * key do not use the mailbox: the fiber is the only writer of the `Ref`, so a
 * reader can take the committed state directly.
 *
 * The step logic — {@link create}, {@link update}, {@link destroy} — is a set
 * of functions of (server, request); {@link run} is the thin loop around
 * them. What happens on a crash is not decided here but by the supervisor,
 * through {@link ServerContext}.
 *
 * **Gotchas**
 *
 * - A request is served even if its caller stopped waiting (interrupted):
 *   like a `GenServer.call` that timed out, the action may still happen.
 * - The new state becomes visible to other callers only after every `after`
 *   hook succeeded; inside the record's own hooks, a `Store.get` of the record
 *   returns the pending state.
 * - A hook that sends an update or destroy to its own record (directly or
 *   through other records' hooks) fails with `ReentrantCall` instead of
 *   deadlocking.
 *
 * @since 0.1.0
 */
import { Cause, Context, Deferred, Effect, Exit, Queue, Ref, type Tracer } from "effect"
import { AlreadyExists, NotFound, RecordCrashed, StoreClosed, type StoreError } from "./Errors.js"
import type * as Event from "./Event.js"
import { isRefusal, prepare, type Prepared, type Result, runAfter } from "./internal/pipeline.js"
import type { Compiled, CompiledAction, Decoded } from "./internal/resource.js"
import { spanned } from "./internal/tracing.js"
import type * as Metrics from "./Metrics.js"
import * as Registry from "./Registry.js"

/**
 * The state of one record's server.
 *
 * **Example** (Inspecting a record server)
 *
 * ```ts
 * import { Effect, Queue, Ref } from "effect"
 * import { Server } from "effect-gen-server"
 *
 * declare const server: Server.RecordServer
 * const inspect = Effect.gen(function*() {
 *   return {
 *     resource: server.resource.name,
 *     status: server.status,
 *     state: yield* Ref.get(server.state),
 *     waiting: yield* Queue.size(server.mailbox)
 *   }
 * })
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface RecordServer {
  readonly resource: Compiled
  /** The committed primary key, encoded. */
  key: string
  readonly state: Ref.Ref<any>
  readonly mailbox: Queue.Queue<Request>
  status: "starting" | "live" | "stopped"
  readonly createdAt: number
  lastActivity: number
  /** What the create action ran with, kept for `restart: "initial"` (dropped otherwise). */
  createInput: CreateInput | undefined
  /** Timestamps of recent restarts, for the restart intensity. */
  restarts: Array<number> | undefined
  /** The validated new state while `after` hooks run; visible to the record's own chain. */
  pending: unknown
  current: Request | undefined
  /** The batch taken from the mailbox, and the index of its next request: not yet served. */
  batch: ReadonlyArray<Request> | undefined
  next: number
  /** The record servers this record's running action is waiting on (calls from its hooks). */
  waitingOn: Array<RecordServer> | undefined
  /** Positions in the supervisor's deadline heaps (`-1`: absent). */
  idleSlot: number
  lifetimeSlot: number
  /** Position in its registry table's dense arrays of live records (`-1`: absent). */
  liveSlot: number
  /** What the supervisor provides, shared by the records of a resource; set by {@link run}. */
  ctx: ServerContext | undefined
}

/**
 * The input a create action ran with.
 *
 * **Example** (What a restart would replay)
 *
 * ```ts
 * import { Server } from "effect-gen-server"
 *
 * declare const server: Server.RecordServer
 * // kept only for `restart: "initial"`
 * const input = server.createInput
 * const replay = input === undefined ? "nothing to replay" : `${input.action.name} with ${JSON.stringify(input.data)}`
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface CreateInput {
  readonly action: CompiledAction
  /** The accepted input with generated fields filled in. */
  readonly data: { readonly [field: string]: unknown }
  readonly input: Decoded
}

/**
 * A request to a record server.
 *
 * **Example** (Describing a request)
 *
 * ```ts
 * import { Server } from "effect-gen-server"
 *
 * const describe = (request: Server.Request): string => {
 *   switch (request._tag) {
 *     case "Create":
 *       return "create"
 *     case "Update":
 *       return `update ${request.action.name}`
 *     case "Destroy":
 *       return `destroy ${request.action.name}`
 *     case "Expire":
 *       return `expire (${request.reason})`
 *   }
 * }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Request =
  | {
    readonly _tag: "Create"
    readonly deferred: Deferred.Deferred<any, StoreError>
    readonly chain: Chain
    /** The caller's span, which the action's span continues (set only when a tracing backend is installed). */
    readonly span?: Tracer.AnySpan | undefined
  }
  | {
    readonly _tag: "Update"
    readonly action: CompiledAction
    readonly input: Decoded
    readonly deferred: Deferred.Deferred<any, StoreError>
    readonly chain: Chain
    /** When the call arrived (monotonic milliseconds). */
    readonly at: number
    readonly span?: Tracer.AnySpan | undefined
  }
  | {
    readonly _tag: "Destroy"
    readonly action: CompiledAction
    readonly deferred: Deferred.Deferred<any, StoreError>
    readonly chain: Chain
    readonly at: number
    readonly span?: Tracer.AnySpan | undefined
  }
  | { readonly _tag: "Expire"; readonly reason: "inactivity" | "lifetime" }

/**
 * The record servers whose actions the current fiber is running on behalf
 * of, innermost last. A request to one of them would wait on a mailbox that
 * is blocked on the caller.
 *
 * **Example** (Who is calling whom)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Server } from "effect-gen-server"
 *
 * const callers = Effect.map(
 *   Effect.service(Server.CurrentChain),
 *   (chain: Server.Chain) => chain.map((server) => server.resource.name).join(" -> ")
 * )
 * // "Machine -> Character" in a Character hook run by a Machine's hook
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Chain = ReadonlyArray<RecordServer>

/**
 * The chain of record servers the current fiber runs for.
 *
 * **Example** (Checking whether code runs inside a record's hook)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Server } from "effect-gen-server"
 *
 * const insideHook = Effect.map(Effect.service(Server.CurrentChain), (chain) => chain.length > 0)
 * ```
 *
 * @category references
 * @since 0.1.0
 */
export const CurrentChain: Context.Reference<Chain> = Context.Reference<Chain>(
  "effect-gen-server/Server/CurrentChain",
  { defaultValue: () => [] }
)

/**
 * Whether a call to `target` from a fiber running for `chain` would deadlock:
 * `target` is in the chain (a record calling itself), or waits, directly or
 * through other records' calls, on a record of the chain.
 *
 * **Example** (Refusing a call that would never return)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Server } from "effect-gen-server"
 *
 * declare const target: Server.RecordServer
 * const wouldDeadlock = Effect.map(Effect.service(Server.CurrentChain), (chain) => Server.wouldDeadlock(target, chain))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export const wouldDeadlock = (target: RecordServer, chain: Chain): boolean => {
  if (chain.length === 0) return false
  if (chain.includes(target)) return true
  if (target.waitingOn === undefined) return false
  const seen = new Set<RecordServer>()
  const stack = [target]
  while (stack.length > 0) {
    const server = stack.pop()!
    if (seen.has(server)) continue
    seen.add(server)
    if (chain.includes(server)) return true
    if (server.waitingOn !== undefined) stack.push(...server.waitingOn)
  }
  return false
}

/**
 * Records that the record `caller` waits on `target` while `effect` runs:
 * the edges {@link wouldDeadlock} follows.
 *
 * **Example** (Awaiting a reply from another record)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Server } from "effect-gen-server"
 *
 * declare const caller: Server.RecordServer
 * declare const target: Server.RecordServer
 * declare const reply: Effect.Effect<unknown>
 * const awaited = Server.waiting(caller, target, reply)
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export const waiting = <A, E, R>(
  caller: RecordServer,
  target: RecordServer,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    ;(caller.waitingOn ??= []).push(target)
    return Effect.ensuring(
      effect,
      Effect.sync(() => {
        const edges = caller.waitingOn!
        const i = edges.indexOf(target)
        if (i >= 0) edges.splice(i, 1)
        if (edges.length === 0) caller.waitingOn = undefined
      })
    )
  })

/**
 * What a record server needs from its supervisor.
 *
 * **Example** (A context for driving a server in a test)
 *
 * ```ts
 * import { Context, Effect } from "effect"
 * import { Metrics, Registry, Server } from "effect-gen-server"
 *
 * const registry = Registry.make([{ name: "Character", indexes: [] }])
 * const ctx: Server.ServerContext = {
 *   table: registry.tables.get("Character")!,
 *   publish: (event) => console.log(event._tag),
 *   started: () => {},
 *   // never restart: remove the crashed record
 *   restart: (server) => Effect.sync(() => (Server.fail(server), false)),
 *   metrics: Metrics.forResource("Character", Context.empty()),
 *   now: () => performance.now(),
 *   expired: () => false,
 *   stopped: () => {}
 * }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface ServerContext {
  readonly table: Registry.Table
  readonly publish: (event: Event.Event) => void
  /** Called once the record is live, to track its deadlines. */
  readonly started: (server: RecordServer) => void
  /**
   * Applies the restart policy after a crash; `true` when the record lives on
   * (restarted), `false` when it was removed.
   */
  readonly restart: (server: RecordServer, cause: Cause.Cause<unknown>) => Effect.Effect<boolean>
  readonly metrics: Metrics.ResourceMetrics
  /** Monotonic milliseconds, for call durations. */
  readonly now: () => number
  /** Whether the record is past a deadline now (and so no longer observable). */
  readonly expired: (server: RecordServer) => boolean
  /** Called once the record is stopped, to forget its deadlines. */
  readonly stopped: (server: RecordServer) => void
}

/**
 * Allocates a record server (not yet started).
 *
 * **Example** (Allocation is what `Supervisor.spawn` does first)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Server } from "effect-gen-server"
 *
 * declare const input: Server.CreateInput
 * declare const compiled: Parameters<typeof Server.make>[0]
 * const server = Server.make(compiled, input, 0)
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (resource: Compiled, createInput: CreateInput, now: number): Effect.Effect<RecordServer> =>
  Effect.map(Queue.unbounded<Request>(), (mailbox) => new Server(resource, mailbox, createInput, now))

// a class, so that every field is in the object itself (an object literal this wide spills into a
// separate property array) and every server shares one shape
class Server implements RecordServer {
  key = ""
  readonly state: Ref.Ref<any> = Ref.makeUnsafe<any>(undefined)
  status: RecordServer["status"] = "starting"
  readonly createdAt: number
  lastActivity: number
  restarts: Array<number> | undefined = undefined
  pending: unknown = undefined
  current: Request | undefined = undefined
  batch: ReadonlyArray<Request> | undefined = undefined
  next = 0
  waitingOn: Array<RecordServer> | undefined = undefined
  idleSlot = -1
  lifetimeSlot = -1
  liveSlot = -1
  ctx: ServerContext | undefined = undefined
  constructor(
    readonly resource: Compiled,
    readonly mailbox: Queue.Queue<Request>,
    public createInput: CreateInput | undefined,
    now: number
  ) {
    this.createdAt = now
    this.lastActivity = now
  }
}

/**
 * The key object of a record.
 *
 * **Example** (From a record)
 *
 * ```ts
 * import { Server } from "effect-gen-server"
 *
 * declare const server: Server.RecordServer
 * Server.keyObject(server.resource, { id: "1", name: "Marty" }) // => { id: "1" }
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const keyObject = (resource: Compiled, record: any): { readonly [field: string]: unknown } => {
  const key: { [field: string]: unknown } = {}
  for (const k of resource.keyFields) key[k] = record?.[k]
  return key
}

const event = (
  tag: "Created" | "Updated" | "Restarted" | "Failed",
  server: RecordServer,
  record: any
): Event.Event => ({
  _tag: tag,
  resource: server.resource.name,
  key: keyObject(server.resource, record),
  record
})

const crashed = (server: RecordServer, cause: Cause.Cause<unknown>, record: any) => {
  const defect = Cause.squash(cause)
  return new RecordCrashed({
    resource: server.resource.name,
    key: keyObject(server.resource, record),
    message: `${server.resource.name} record crashed: ${defect instanceof Error ? defect.message : String(defect)}`,
    defect
  })
}

/** A cause that crashes the record: a defect, not an interruption of the fiber. */
const isCrash = (cause: Cause.Cause<unknown>) => Cause.hasDies(cause) && !Cause.hasInterrupts(cause)

type Outcome<A> =
  | { readonly _tag: "Ok"; readonly value: A }
  | { readonly _tag: "Refused"; readonly error: StoreError }
  | { readonly _tag: "Crashed"; readonly cause: Cause.Cause<unknown> }

/** An outcome now, or an Effect of one: actions without hooks or effectful changes cost no Effect. */
type Step<A> = Outcome<A> | Effect.Effect<Outcome<A>, never, any>

const mapStep = <A, B>(step: Step<A>, f: (outcome: Outcome<A>) => Outcome<B>): Step<B> =>
  Effect.isEffect(step) ? Effect.map(step, f) : f(step)

const stepEffect = <A>(step: Step<A>): Effect.Effect<Outcome<A>, never, any> =>
  Effect.isEffect(step) ? step : Effect.succeed(step)

/**
 * Runs the effectful part of an action (an Effect change, hooks) inside the
 * record's fiber: with the record's chain, a span named after the action and
 * log annotations naming the record. Actions without hooks never get here.
 */
const outcome = <A>(
  effect: Effect.Effect<A, StoreError, any>,
  server: RecordServer,
  action: CompiledAction,
  chain: Chain
): Effect.Effect<Outcome<A>, never, any> =>
  Effect.map(
    Effect.exit(
      spanned(
        effect.pipe(
          Effect.provideService(CurrentChain, [...chain, server]),
          Effect.annotateLogs({ resource: server.resource.name, key: server.key, action: action.name })
        ),
        `${server.resource.name}.${action.name}`,
        { resource: server.resource.name, action: action.name },
        server.current !== undefined && server.current._tag !== "Expire" ? server.current.span : undefined
      )
    ),
    (exit): Outcome<A> => {
      if (Exit.isSuccess(exit)) return { _tag: "Ok", value: exit.value }
      if (isCrash(exit.cause)) return { _tag: "Crashed", cause: exit.cause }
      const error = Cause.findErrorOption(exit.cause)
      if (error._tag === "Some") return { _tag: "Refused", error: error.value }
      // an interruption of the action itself (not of this fiber): a crash
      return { _tag: "Crashed", cause: exit.cause }
    }
  )

interface Attempted {
  readonly prepared: Prepared
  readonly key: string
  readonly reply: any
}

/**
 * Runs an action's change, hooks and validation and reserves the new key;
 * then the `after` hooks with the new state pending. Nothing is committed.
 */
const attempt = (
  server: RecordServer,
  action: CompiledAction,
  data: any,
  input: Decoded,
  chain: Chain
): Step<Attempted> => {
  let result: Result<Prepared>
  try {
    result = prepare(server.resource, action, data, input)
  } catch (defect) {
    return { _tag: "Crashed", cause: Cause.die(defect) }
  }
  if (Effect.isEffect(result)) {
    return Effect.flatMap(
      outcome(result as Effect.Effect<Prepared, StoreError, any>, server, action, chain),
      (prepared) =>
        prepared._tag === "Ok"
          ? stepEffect(afterPrepare(server, action, prepared.value, chain))
          : Effect.succeed(prepared)
    )
  }
  if (isRefusal(result)) return { _tag: "Refused", error: result }
  return afterPrepare(server, action, result as Prepared, chain)
}

const afterPrepare = (
  server: RecordServer,
  action: CompiledAction,
  prepared: Prepared,
  chain: Chain
): Step<Attempted> => {
  const { expired, table } = contextOf(server)
  const key = action.kind === "destroy" ? server.key : server.resource.encodeKey(prepared.state)
  if (key !== server.key && !Registry.reserve(table, key, server, expired)) {
    const keyObj = keyObject(server.resource, prepared.state)
    return {
      _tag: "Refused",
      error: new AlreadyExists({
        resource: server.resource.name,
        key: keyObj,
        message: `${server.resource.name} ${JSON.stringify(keyObj)} already exists`
      })
    }
  }
  if (prepared.afterHooks.length === 0) return { _tag: "Ok", value: { prepared, key, reply: prepared.state } }
  server.pending = action.kind === "destroy" ? undefined : prepared.state
  return Effect.map(outcome(runAfter(server.resource, action, prepared), server, action, chain), (after) => {
    server.pending = undefined
    if (after._tag !== "Ok") {
      Registry.release(table, key, server)
      return after
    }
    return { _tag: "Ok", value: { prepared, key, reply: after.value } }
  })
}

const contextOf = (server: RecordServer): ServerContext => server.ctx!

/**
 * Runs the create action: the first request a server serves, and what
 * `restart: "initial"` runs again. On success the record is committed and
 * registered; the result is the record handed back to the caller.
 *
 * **Example** (Running the create step)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Server } from "effect-gen-server"
 *
 * declare const server: Server.RecordServer // started by Server.run
 * const step = Server.create(server, [])
 * const outcome = Effect.isEffect(step) ? step : Effect.succeed(step)
 * ```
 *
 * @category steps
 * @since 0.1.0
 */
export const create = (server: RecordServer, chain: Chain): Step<any> => {
  const { action, data, input } = server.createInput!
  return mapStep(attempt(server, action, data, input, chain), (result) => {
    if (result._tag !== "Ok") return result
    const { table } = contextOf(server)
    const previous = server.status === "starting" ? undefined : server.state.ref.current
    server.state.ref.current = result.value.prepared.state
    Registry.commit(table, server, previous, result.value.prepared.state, result.value.key)
    return { _tag: "Ok", value: result.value.reply }
  })
}

/**
 * Serves an update: runs the action on the committed state and commits the
 * result, or leaves the state as it was.
 *
 * **Example** (Serving an update by hand)
 *
 * ```ts
 * import { Errors, Server } from "effect-gen-server"
 *
 * declare const server: Server.RecordServer // started by Server.run
 * const charge = server.resource.action("charge", "update")
 * if (!(charge instanceof Errors.UnknownAction)) {
 *   Server.update(server, charge, { attributes: {}, arguments: {} }, [])
 * }
 * ```
 *
 * @category steps
 * @since 0.1.0
 */
export const update = (server: RecordServer, action: CompiledAction, input: Decoded, chain: Chain): Step<any> => {
  const previous = server.state.ref.current
  return mapStep(attempt(server, action, previous, input, chain), (result) => {
    if (result._tag !== "Ok") return result
    const ctx = contextOf(server)
    server.state.ref.current = result.value.prepared.state
    Registry.commit(ctx.table, server, previous, result.value.prepared.state, result.value.key)
    ctx.publish(event("Updated", server, result.value.prepared.state))
    return { _tag: "Ok", value: result.value.reply }
  })
}

/**
 * Serves a destroy (by action or by expiry): runs the action, then removes
 * the record. An expiry removes the record even when its destroy action
 * fails.
 *
 * **Example** (Destroying with the primary destroy action)
 *
 * ```ts
 * import { Server } from "effect-gen-server"
 *
 * declare const server: Server.RecordServer // started by Server.run
 * const step = Server.destroy(server, server.resource.primaryDestroy, "action", [])
 * ```
 *
 * @category steps
 * @since 0.1.0
 */
export const destroy = (
  server: RecordServer,
  action: CompiledAction,
  reason: Event.DestroyReason,
  chain: Chain
): Step<void> => {
  const record = server.state.ref.current
  const finish = (result: Outcome<Attempted>): Step<void> => {
    if (result._tag !== "Ok" && reason === "action") return result
    stop(server)
    contextOf(server).publish({
      _tag: "Destroyed",
      resource: server.resource.name,
      key: keyObject(server.resource, record),
      record,
      reason
    })
    if (result._tag === "Ok") return { _tag: "Ok", value: undefined }
    return Effect.as(
      Effect.logWarning(`${server.resource.name} expired (${reason}) but its destroy action failed`).pipe(
        Effect.annotateLogs({ resource: server.resource.name, key: server.key }),
        Effect.annotateLogs("cause", result._tag === "Refused" ? result.error : Cause.pretty(result.cause))
      ),
      { _tag: "Ok", value: undefined } as const
    )
  }
  const attempted = attempt(server, action, record, { attributes: {}, arguments: {} }, chain)
  return Effect.isEffect(attempted) ? Effect.flatMap(attempted, (r) => stepEffect(finish(r))) : finish(attempted)
}

/**
 * Marks a server stopped and removes it from the registry.
 *
 * **Example** (Stopping)
 *
 * ```ts
 * import { Server } from "effect-gen-server"
 *
 * declare const server: Server.RecordServer // started by Server.run
 * Server.stop(server)
 * server.status // => "stopped"
 * ```
 *
 * @category steps
 * @since 0.1.0
 */
export const stop = (server: RecordServer): void => {
  if (server.status === "stopped") return
  const wasLive = server.status === "live"
  server.status = "stopped"
  const ctx = contextOf(server)
  Registry.remove(ctx.table, server, wasLive ? server.state.ref.current : undefined)
  ctx.stopped(server)
}

const reply = <A>(deferred: Deferred.Deferred<A, StoreError>, result: Outcome<A>, server: RecordServer) => {
  if (result._tag === "Ok") Deferred.doneUnsafe(deferred, Exit.succeed(result.value))
  else if (result._tag === "Refused") Deferred.doneUnsafe(deferred, Exit.fail(result.error))
  else Deferred.doneUnsafe(deferred, Exit.fail(crashed(server, result.cause, server.state.ref.current)))
}

const notFound = (server: RecordServer) => {
  const key = keyObject(server.resource, server.state.ref.current)
  return new NotFound({
    resource: server.resource.name,
    key,
    message: `${server.resource.name} ${JSON.stringify(key)} not found: it was removed`
  })
}

const failPending = (server: RecordServer, error: (server: RecordServer) => StoreError) => {
  const pending = server.current === undefined ? [] : [server.current]
  server.current = undefined
  if (server.batch !== undefined) {
    for (let i = server.next; i < server.batch.length; i++) pending.push(server.batch[i]!)
    server.batch = undefined
  }
  for (let taken = Queue.takeUnsafe(server.mailbox); taken !== undefined && Exit.isSuccess(taken);) {
    pending.push(taken.value)
    taken = Queue.takeUnsafe(server.mailbox)
  }
  for (const request of pending) {
    if (request._tag !== "Expire") Deferred.doneUnsafe(request.deferred, Exit.fail(error(server)))
  }
}

const closed = () => new StoreClosed({ message: "the store was closed while the call was in flight" })

/** Serves one request; `undefined` when it was served synchronously. */
const serve = (server: RecordServer, request: Request): Effect.Effect<void, never, any> | undefined => {
  switch (request._tag) {
    case "Create":
      return undefined
    case "Update":
      // accepted before the record's deadline, served after it: the record is gone for the caller too
      if (contextOf(server).expired(server)) {
        return afterServe(server, request, { _tag: "Refused", error: notFound(server) })
      }
      return afterServe(server, request, update(server, request.action, request.input, request.chain))
    case "Destroy":
      if (contextOf(server).expired(server)) {
        return afterServe(server, request, { _tag: "Refused", error: notFound(server) })
      }
      return afterServe(server, request, destroy(server, request.action, "action", request.chain))
    case "Expire": {
      if (server.status !== "live") return undefined
      const step = destroy(server, server.resource.primaryDestroy, request.reason, [])
      return Effect.isEffect(step) ? Effect.asVoid(step) : undefined
    }
  }
}

const afterServe = <A>(
  server: RecordServer,
  request: Extract<Request, { readonly _tag: "Update" | "Destroy" }>,
  step: Step<A>
): Effect.Effect<void, never, any> | undefined => {
  if (Effect.isEffect(step)) return Effect.flatMap(step, (result) => afterServe(server, request, result) ?? Effect.void)
  const ctx = contextOf(server)
  if (step._tag !== "Crashed") {
    reply(request.deferred, step, server)
    ctx.metrics.call(ctx.now() - request.at)
    return undefined
  }
  // the error names the record as the caller knew it, before the restart
  const error = crashed(server, step.cause, server.state.ref.current)
  return Effect.map(ctx.restart(server, step.cause), () => {
    Deferred.doneUnsafe(request.deferred, Exit.fail(error))
    ctx.metrics.call(ctx.now() - request.at)
  })
}

/**
 * The record's fiber: runs the create request, then serves the mailbox in
 * batches until the record is destroyed, removed or interrupted. Pending
 * callers of a removed record get `NotFound`; of an interrupted one,
 * `StoreClosed`.
 *
 * **Example** (What `Supervisor.spawn` does)
 *
 * ```ts
 * import { Deferred, Effect } from "effect"
 * import { type Errors, Server } from "effect-gen-server"
 *
 * declare const server: Server.RecordServer
 * declare const ctx: Server.ServerContext
 *
 * const created = Effect.gen(function*() {
 *   const deferred = yield* Deferred.make<unknown, Errors.StoreError>()
 *   yield* Effect.forkChild(Server.run(server, { _tag: "Create", deferred, chain: [] }, ctx))
 *   return yield* Deferred.await(deferred)
 * })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const run = (
  server: RecordServer,
  first: Extract<Request, { readonly _tag: "Create" }>,
  ctx: ServerContext
): Effect.Effect<void, never, any> => {
  server.ctx = ctx
  server.current = first
  return Effect.onInterrupt(
    // the create action runs in the record's fiber, like every action
    Effect.suspend(() => {
      const created = create(server, first.chain)
      return Effect.isEffect(created)
        ? Effect.flatMap(created, (outcome) => started(server, first, outcome))
        : started(server, first, created)
    }),
    () => onInterrupted(server)
  )
}

// module-level steps, no per-record closures: an idle record's fiber holds only its wait on the mailbox

const onInterrupted = (server: RecordServer) =>
  Effect.sync(() => {
    server.status = "stopped"
    if (server.ctx !== undefined) Registry.delist(server.ctx.table, server)
    failPending(server, closed)
  })

const started = (
  server: RecordServer,
  first: Extract<Request, { readonly _tag: "Create" }>,
  created: Outcome<any>
): Effect.Effect<void, never, any> => {
  server.current = undefined
  if (created._tag !== "Ok") {
    server.status = "stopped"
    reply(first.deferred, created, server)
    return Effect.void
  }
  server.status = "live"
  // only `restart: "initial"` needs the create input again
  if (server.resource.resource.restart !== "initial") server.createInput = undefined
  const ctx = contextOf(server)
  Registry.enlist(ctx.table, server)
  ctx.publish(event("Created", server, server.state.ref.current))
  ctx.started(server)
  Deferred.doneUnsafe(first.deferred, Exit.succeed(created.value))
  return serveMailbox(server)
}

const serveMailbox = (server: RecordServer): Effect.Effect<void, never, any> => {
  if (server.status !== "live") {
    failPending(server, notFound)
    return Effect.void
  }
  return Effect.flatMap(Queue.takeAll(server.mailbox), (batch) => serveBatch(server, batch))
}

const serveBatch = (server: RecordServer, batch: ReadonlyArray<Request>): Effect.Effect<void, never, any> => {
  contextOf(server).metrics.batch(batch.length)
  server.batch = batch
  const rest = drain(server, batch, 0)
  return rest === undefined ? serveMailbox(server) : Effect.flatMap(rest, () => serveMailbox(server))
}

/** Serves a batch from `from` on, synchronously while it can; an Effect for the rest once a step needs one. */
const drain = (
  server: RecordServer,
  batch: ReadonlyArray<Request>,
  from: number
): Effect.Effect<void, never, any> | undefined => {
  for (let i = from; i < batch.length; i++) {
    const request = batch[i]!
    server.next = i + 1
    if (server.status !== "live") {
      if (request._tag !== "Expire") Deferred.doneUnsafe(request.deferred, Exit.fail(notFound(server)))
      continue
    }
    server.current = request
    const effect = serve(server, request)
    if (effect !== undefined) {
      return Effect.flatMap(effect, () => {
        server.current = undefined
        return drain(server, batch, i + 1) ?? Effect.void
      })
    }
    server.current = undefined
  }
  server.batch = undefined
  return undefined
}

/**
 * Re-runs the create action for `restart: "initial"`, with the record's own
 * chain; publishes `Restarted` on success.
 *
 * **Example** (Restarting with the initial input)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Server } from "effect-gen-server"
 *
 * declare const server: Server.RecordServer // crashed, with restart: "initial"
 * const restarted = Effect.map(Server.recreate(server), (outcome) => outcome._tag === "Ok")
 * ```
 *
 * @category steps
 * @since 0.1.0
 */
export const recreate = (server: RecordServer): Effect.Effect<Outcome<any>, never, any> =>
  Effect.map(stepEffect(create(server, [])), (result) => {
    if (result._tag === "Ok") contextOf(server).publish(event("Restarted", server, server.state.ref.current))
    return result
  })

/**
 * Publishes `Restarted` for a record resuming with its last state.
 *
 * **Example** (Resuming with the last state)
 *
 * ```ts
 * import { Server } from "effect-gen-server"
 *
 * declare const server: Server.RecordServer // crashed, with restart: "lastState"
 * Server.resumed(server) // publishes Restarted with the last committed state
 * ```
 *
 * @category steps
 * @since 0.1.0
 */
export const resumed = (server: RecordServer): void =>
  contextOf(server).publish(event("Restarted", server, server.state.ref.current))

/**
 * Removes a crashed record and publishes `Failed` with its last state.
 *
 * **Example** (Giving up on a record)
 *
 * ```ts
 * import { Server } from "effect-gen-server"
 *
 * declare const server: Server.RecordServer // crashed too often
 * Server.fail(server) // its key is free again; Failed is published
 * ```
 *
 * @category steps
 * @since 0.1.0
 */
export const fail = (server: RecordServer): void => {
  const record = server.state.ref.current
  stop(server)
  contextOf(server).publish(event("Failed", server, record))
}

/**
 * Asks a record to expire: scans stop seeing it at once, and its fiber runs
 * the primary destroy action and removes it. Sent by the supervisor when a
 * deadline passes.
 *
 * **Example** (Expiring a record)
 *
 * ```ts
 * import { Server } from "effect-gen-server"
 *
 * declare const server: Server.RecordServer
 * Server.expire(server, "inactivity") // served after the requests already in its mailbox
 * ```
 *
 * @category steps
 * @since 0.1.0
 */
export const expire = (server: RecordServer, reason: "inactivity" | "lifetime"): void => {
  // past its deadline, it is not observable: scans stop seeing it now, not when its fiber gets to it
  Registry.delist(contextOf(server).table, server)
  Queue.offerUnsafe(server.mailbox, { _tag: "Expire", reason })
}
