/**
 * The storage interface the Store talks to, and its implementations.
 *
 * A `DataLayer` names resources and actions by name and takes inputs as
 * plain values, every operation an Effect, so a remote engine (records as
 * `effect/cluster` entities) can implement it: nothing relies on sharing a
 * mutable object between caller and record. {@link genServer} is the main
 * implementation: every record in its own supervised fiber.
 *
 * **Costs** (genServer)
 *
 * - get, reload, keepAlive by key: a `Map` lookup and a read of the record's
 *   `Ref`, in the caller's fiber; no message to the record.
 * - create: one fiber forked per record; update and destroy: one message to
 *   the record's fiber and one reply (the price of a `GenServer.call`); the
 *   record's fiber wakes in a microtask (see the README's caveats).
 * - read: never messages a record. A full-key `eq` filter is a registry
 *   lookup, an `eq` on an indexed field reads the index, anything else scans
 *   the dense array of the resource's committed records, with a top-k for a
 *   sorted, limited query; it looks at the records' deadlines only once one
 *   of them is due.
 *
 * **Gotchas**
 *
 * - Records live in memory: **nothing survives the end of the process or of
 *   the layer's scope**.
 * - With `restart: "initial"` (the default), a crashed record is restarted
 *   **with the input used by its create action: updates since creation are
 *   lost**.
 * - A `read` is not activity: a record that is only ever scanned expires.
 * - A call whose caller is interrupted may still be served.
 *
 * @since 0.1.0
 */
import {
  Cause,
  Clock,
  Context,
  Deferred,
  Effect,
  PubSub,
  Queue,
  type Scope,
  Semaphore,
  Stream,
  type Tracer
} from "effect"
import {
  AlreadyExists,
  InvalidResource,
  MailboxFull,
  NotFound,
  RecordCrashed,
  ReentrantCall,
  StoreClosed,
  type StoreError,
  UnknownAction,
  ValidationError
} from "./Errors.js"
import type * as Event from "./Event.js"
import * as Filter from "./Filter.js"
import { prepare, runAfter, toEffect } from "./internal/pipeline.js"
import { checkQuery, pinned } from "./internal/query.js"
import { compile, type Compiled, type CompiledAction, type Decoded } from "./internal/resource.js"
import { callerSpan } from "./internal/tracing.js"
import * as Metrics from "./Metrics.js"
import * as Query from "./Query.js"
import * as Registry from "./Registry.js"
import type * as Resource from "./Resource.js"
import * as Server from "./Server.js"
import * as Supervisor from "./Supervisor.js"

/**
 * A query as data: what crosses to a data layer.
 *
 * **Example** (A query, by names)
 *
 * ```ts
 * import { DataLayer, Filter } from "effect-gen-server"
 *
 * const in1955: DataLayer.QueryData = {
 *   resource: "Character",
 *   filter: Filter.eq("currentYear", 1955),
 *   sort: [{ field: "name", direction: "asc" }],
 *   offset: 0,
 *   limit: 10
 * }
 *
 * declare const dataLayer: DataLayer.DataLayer
 * const characters = dataLayer.read(in1955)
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface QueryData {
  readonly resource: string
  readonly filter: Filter.Expr | undefined
  readonly sort: ReadonlyArray<Query.SortKey>
  readonly offset: number
  readonly limit: number | undefined
}

/**
 * The storage interface.
 *
 * **Example** (Decorating a data layer)
 *
 * ```ts
 * import { Effect } from "effect"
 * import type { DataLayer } from "effect-gen-server"
 *
 * const logged = (inner: DataLayer.DataLayer): DataLayer.DataLayer => ({
 *   ...inner,
 *   update: (resource, key, action, input) =>
 *     inner.update(resource, key, action, input).pipe(Effect.tap(() => Effect.log(`${resource}.${action}`)))
 * })
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface DataLayer {
  readonly create: (resource: string, action: string, input: unknown) => Effect.Effect<unknown, StoreError>
  readonly update: (
    resource: string,
    key: unknown,
    action: string,
    input: unknown
  ) => Effect.Effect<unknown, StoreError>
  readonly destroy: (resource: string, key: unknown, action: string) => Effect.Effect<void, StoreError>
  readonly get: (resource: string, key: unknown) => Effect.Effect<unknown, NotFound | ValidationError | StoreClosed>
  readonly read: (query: QueryData) => Effect.Effect<ReadonlyArray<unknown>, ValidationError | StoreClosed>
  readonly keepAlive: (resource: string, key: unknown) => Effect.Effect<void, NotFound | ValidationError | StoreClosed>
  readonly events: Stream.Stream<Event.Event>
  readonly subscribe: Effect.Effect<PubSub.Subscription<Event.Event>, never, Scope.Scope>
}

/**
 * Options of the GenServer data layer.
 *
 * **Example** (Running hooks with the services of the caller)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { DataLayer } from "effect-gen-server"
 * import { Character } from "./fixtures.js"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const services = yield* Effect.context<never>()
 *   const dataLayer = yield* DataLayer.genServer([Character], { context: () => services })
 *   return yield* dataLayer.create("Character", "create", { name: "Marty", currentYear: 1985 })
 * }))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface GenServerOptions {
  /** The services record fibers run hooks with. Default: the context `genServer` runs in. */
  readonly context?: (() => Context.Context<never>) | undefined
  /**
   * How many events a subscriber may leave unread: beyond it, the oldest it
   * has not read are dropped for it (a sliding `PubSub`), so a subscriber
   * that stops reading holds bounded memory. A positive integer; default
   * unbounded: no event is ever dropped.
   */
  readonly eventBuffer?: number | undefined
}

const storeClosed = () => new StoreClosed({ message: "the store is closed" })

const unknownResource = (name: unknown) =>
  new ValidationError({ resource: String(name), message: `unknown resource ${JSON.stringify(String(name))}` })

const notFound = (compiled: Compiled, key: unknown) =>
  new NotFound({ resource: compiled.name, key, message: `${compiled.name} ${JSON.stringify(key)} not found` })

const invalidQuery = (resource: string, message: string) =>
  new ValidationError({ resource, message: `${resource}: invalid query: ${message}` })

/** What every data layer sets up: compiled resources, events, metrics, the clock. */
const setup = (resources: Iterable<Resource.Any>, eventBuffer: number | undefined) =>
  Effect.gen(function*() {
    if (eventBuffer !== undefined && !(Number.isSafeInteger(eventBuffer) && eventBuffer > 0)) {
      return yield* Effect.die(
        new RangeError(
          `eventBuffer must be a positive integer, got ${JSON.stringify(eventBuffer) ?? String(eventBuffer)}`
        )
      )
    }
    const compiled = new Map<string, Compiled>()
    for (const resource of resources) {
      if (compiled.has(resource.name)) {
        return yield* Effect.die(
          new InvalidResource({ resource: resource.name, message: `two resources are named ${resource.name}` })
        )
      }
      compiled.set(resource.name, compile(resource))
    }
    const pubsub = yield* (eventBuffer === undefined
      ? PubSub.unbounded<Event.Event>()
      : PubSub.sliding<Event.Event>(eventBuffer))
    yield* Effect.addFinalizer(() => PubSub.shutdown(pubsub))
    const own = yield* Effect.context<never>()
    // one clock for callers, record fibers and expiry: the layer's
    const clock = Context.get(own, Clock.Clock)
    const metrics = new Map([...compiled.keys()].map((name) => [name, Metrics.forResource(name, own)]))
    const publish = (event: Event.Event) => {
      metrics.get(event.resource)!.event(event)
      if (PubSub.publishUnsafe(pubsub, event) || eventBuffer === undefined || pubsub.shutdownFlag.current) return
      // full: `publishUnsafe` does not slide, so drop the oldest event as `PubSub.publish` would
      const sliding = pubsub.strategy as PubSub.SlidingStrategy<Event.Event>
      sliding.slidingPublishUnsafe(pubsub.pubsub, [event])
      sliding.completeSubscribersUnsafe(pubsub.pubsub, pubsub.subscribers)
    }
    const resourceOf = (name: string): Compiled | ValidationError => compiled.get(name) ?? unknownResource(name)
    // each layer closes its gate in its own finalizer, ordered against its own fibers
    const gate = { closed: false }
    /** The checks every write passes before it touches a record: open store, known resource and action, valid input. */
    const admit = (
      resourceName: string,
      actionName: string,
      kind: "create" | "update" | "destroy",
      input: unknown
    ): Admitted | StoreError => {
      if (gate.closed) return storeClosed()
      const resource = resourceOf(resourceName)
      if (resource instanceof ValidationError) return resource
      const action = resource.action(actionName, kind)
      if (action instanceof UnknownAction) return action
      const decoded = kind === "destroy" ? noInput : action.decode(input)
      if (decoded instanceof ValidationError) return decoded
      return { resource, action, decoded }
    }
    /** The state a create starts from: generated fields, then the decoded attributes. */
    const initialData = (resource: Compiled, decoded: Decoded): { [field: string]: unknown } => {
      const data: { [field: string]: unknown } = {}
      const generated = resource.resource.generated as { readonly [field: string]: () => unknown }
      for (const field in generated) {
        if (!(field in decoded.attributes)) data[field] = generated[field]!()
      }
      return Object.assign(data, decoded.attributes)
    }
    const observe = { events: Stream.fromPubSub(pubsub), subscribe: PubSub.subscribe(pubsub) }
    return { compiled, own, clock, metrics, publish, resourceOf, gate, admit, initialData, observe }
  })

interface Admitted {
  readonly resource: Compiled
  readonly action: CompiledAction
  readonly decoded: Decoded
}

const noInput: Decoded = { attributes: {}, arguments: {} }

const isAdmitted = (admitted: Admitted | StoreError): admitted is Admitted => "decoded" in admitted

/**
 * The GenServer data layer: every record in its own fiber, supervised, owned
 * by the current `Scope`. Closing the scope interrupts every record fiber
 * and the expiry fibers; calls in flight fail with `StoreClosed`.
 *
 * **Example** (Using a data layer directly, by names)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { DataLayer } from "effect-gen-server"
 * import { Character } from "./fixtures.js"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const layer = yield* DataLayer.genServer([Character])
 *   const marty = yield* layer.create("Character", "create", { name: "Marty", currentYear: 1985 })
 *   return yield* layer.get("Character", marty)
 * }))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const genServer = (
  resources: Iterable<Resource.Any>,
  options: GenServerOptions = {}
): Effect.Effect<DataLayer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { admit, clock, compiled, gate, initialData, metrics, observe, own, publish, resourceOf } = yield* setup(
      resources,
      options.eventBuffer
    )
    const registry = Registry.make([...compiled.values()].map((c) => ({ name: c.name, indexes: c.indexes })))
    const context = options.context ?? (() => own)
    const supervisor = yield* Supervisor.make({
      registry,
      resources: [...compiled.values()],
      publish,
      context,
      clock,
      metrics
    })
    // runs before the supervisor's fibers are interrupted (finalizers run in reverse)
    yield* Effect.addFinalizer(() => Effect.sync(() => (gate.closed = true)))

    /** Looks up a live, unexpired record; touches it when `activity`. */
    const locate = <A, E, R>(
      resource: Compiled,
      key: unknown,
      activity: boolean,
      f: (server: Server.RecordServer, now: number) => Effect.Effect<A, E, R>
    ): Effect.Effect<A, E | NotFound | ValidationError, R> => {
      const k = resource.checkKey(key)
      if (k instanceof ValidationError) return Effect.fail(k)
      const server = Registry.lookup(registry.tables.get(resource.name)!, resource.encodeKey(k))
      if (server === undefined) return Effect.fail(notFound(resource, k))
      if (!resource.hasTimeouts) return f(server, 0)
      const now = clock.currentTimeMillisUnsafe()
      if (Supervisor.isExpired(server, now)) return Effect.fail(notFound(resource, k))
      if (activity) Supervisor.touch(server, now)
      return f(server, now)
    }

    const committed = (server: Server.RecordServer) =>
      server.pending === undefined
        ? Effect.succeed(server.state.ref.current)
        : Effect.map(
          Effect.service(Server.CurrentChain),
          (chain) => chain.includes(server) ? server.pending : server.state.ref.current
        )

    const call = (
      server: Server.RecordServer,
      action: CompiledAction,
      make: (
        deferred: Deferred.Deferred<any, StoreError>,
        chain: Server.Chain,
        at: number,
        span: Tracer.AnySpan | undefined
      ) => Server.Request
    ): Effect.Effect<any, StoreError> =>
      Effect.withFiber((fiber) => {
        const chain = fiber.getRef(Server.CurrentChain)
        if (Server.wouldDeadlock(server, chain)) {
          const key = Server.keyObject(server.resource, server.state.ref.current)
          return Effect.fail(
            new ReentrantCall({
              resource: server.resource.name,
              key,
              action: action.name,
              message: chain.includes(server)
                ? `${server.resource.name} ${
                  JSON.stringify(key)
                }: a hook of this record called ${action.name} on the same record, which would wait on its own mailbox`
                : `${server.resource.name} ${
                  JSON.stringify(key)
                }: calling ${action.name} would deadlock: that record is waiting, through other records' hooks, on the caller`
            })
          )
        }
        if (gate.closed) return Effect.fail(storeClosed())
        // the record may have stopped since it was looked up (this fiber can be preempted in between)
        if (server.status !== "live") {
          return Effect.fail(notFound(server.resource, Server.keyObject(server.resource, server.state.ref.current)))
        }
        const capacity = server.resource.resource.mailboxCapacity
        if (capacity !== undefined && Queue.sizeUnsafe(server.mailbox) >= capacity) {
          const key = Server.keyObject(server.resource, server.state.ref.current)
          return Effect.fail(
            new MailboxFull({
              resource: server.resource.name,
              key,
              capacity,
              message: `${server.resource.name} ${JSON.stringify(key)}: mailbox full (${capacity} pending requests)`
            })
          )
        }
        const deferred = Deferred.makeUnsafe<any, StoreError>()
        Queue.offerUnsafe(server.mailbox, make(deferred, chain, Supervisor.millis(clock), callerSpan(fiber)))
        // a call from a record's hook: the record now waits on the target
        return chain.length === 0
          ? Deferred.await(deferred)
          : Server.waiting(chain[chain.length - 1]!, server, Deferred.await(deferred))
      })

    const create: DataLayer["create"] = (resourceName, actionName, input) =>
      Effect.suspend(() => {
        const admitted = admit(resourceName, actionName, "create", input)
        if (!isAdmitted(admitted)) return Effect.fail(admitted)
        const { action, decoded, resource } = admitted
        const createInput: Server.CreateInput = { action, data: initialData(resource, decoded), input: decoded }
        return Effect.withFiber((fiber) =>
          supervisor.spawn(
            resource,
            createInput,
            fiber.getRef(Server.CurrentChain),
            resource.hasTimeouts ? clock.currentTimeMillisUnsafe() : 0,
            callerSpan(fiber)
          )
        )
      })

    const update: DataLayer["update"] = (resourceName, key, actionName, input) =>
      Effect.suspend(() => {
        const admitted = admit(resourceName, actionName, "update", input)
        if (!isAdmitted(admitted)) return Effect.fail(admitted)
        const { action, decoded, resource } = admitted
        return locate(resource, key, true, (server) =>
          call(
            server,
            action,
            (deferred, chain, at, span) => ({ _tag: "Update", action, input: decoded, deferred, chain, at, span })
          ))
      })

    const destroy: DataLayer["destroy"] = (resourceName, key, actionName) =>
      Effect.suspend(() => {
        const admitted = admit(resourceName, actionName, "destroy", undefined)
        if (!isAdmitted(admitted)) return Effect.fail(admitted)
        const { action, resource } = admitted
        return locate(
          resource,
          key,
          true,
          (server) =>
            call(
              server,
              action,
              (deferred, chain, at, span) => ({ _tag: "Destroy", action, deferred, chain, at, span })
            )
        )
      })

    const get: DataLayer["get"] = (resourceName, key) =>
      Effect.suspend((): Effect.Effect<unknown, NotFound | ValidationError | StoreClosed> => {
        if (gate.closed) return Effect.fail(storeClosed())
        const resource = resourceOf(resourceName)
        if (resource instanceof ValidationError) return Effect.fail(resource)
        return locate(resource, key, true, committed)
      })

    const keepAlive: DataLayer["keepAlive"] = (resourceName, key) =>
      Effect.suspend((): Effect.Effect<void, NotFound | ValidationError | StoreClosed> => {
        if (gate.closed) return Effect.fail(storeClosed())
        const resource = resourceOf(resourceName)
        if (resource instanceof ValidationError) return Effect.fail(resource)
        return locate(resource, key, true, () => Effect.void)
      })

    const read: DataLayer["read"] = (query) =>
      Effect.suspend((): Effect.Effect<Array<unknown>, ValidationError | StoreClosed> => {
        if (gate.closed) return Effect.fail(storeClosed())
        const resource = resourceOf(query.resource)
        if (resource instanceof ValidationError) return Effect.fail(resource)
        const problem = checkQuery(resource, query)
        if (problem !== undefined) return Effect.fail(invalidQuery(resource.name, problem))
        if (!resource.hasTimeouts) return Effect.succeed(scan(resource, query, undefined))
        return Effect.succeed(scan(resource, query, clock.currentTimeMillisUnsafe()))
      })

    const scan = (resource: Compiled, query: QueryData, now: number | undefined): Array<unknown> => {
      const table = registry.tables.get(resource.name)!
      const collected = Query.collector(query)
      const candidates = pinned(
        resource,
        query,
        (key) => Registry.lookup(table, key),
        (field, value) => table.indexes.get(field)?.get(value)
      )
      if (candidates !== undefined) {
        for (const server of candidates) {
          if (server.status === "live" && (now === undefined || !Supervisor.isExpired(server, now))) {
            collected.add(server.state.ref.current)
          }
        }
        return collected.done()
      }
      // every live record, from the table's dense arrays: before the resource's next deadline none is
      // expired; after it, a record is expired when its activity or creation is at or before a cutoff
      const { live, records } = table
      if (now === undefined || now < supervisor.nextDeadline(resource.name)) {
        for (let i = 0; i < records.length; i++) collected.add(records[i])
        return collected.done()
      }
      const idleCutoff = resource.idleMillis === undefined ? -Infinity : now - resource.idleMillis
      const lifetimeCutoff = resource.lifetimeMillis === undefined ? -Infinity : now - resource.lifetimeMillis
      for (let i = 0; i < live.length; i++) {
        const server = live[i]!
        if (server.lastActivity > idleCutoff && server.createdAt > lifetimeCutoff) collected.add(records[i])
      }
      return collected.done()
    }

    return {
      create,
      update,
      destroy,
      get,
      read,
      keepAlive,
      ...observe
    }
  })

interface Entry {
  readonly resource: Compiled
  key: string
  state: any
  readonly createdAt: number
  lastActivity: number
  alive: boolean
  readonly lock: Semaphore.Semaphore
}

/** The memory records whose actions the current fiber runs, to refuse re-entrant calls. */
const MemoryChain = Context.Reference<ReadonlyArray<Entry>>("effect-gen-server/DataLayer/MemoryChain", {
  defaultValue: () => []
})

/**
 * The memory data layer: records in a `Map`, no fibers. Actions run in the
 * caller's fiber under a per-record lock, with the same pipeline, validation,
 * atomicity, events and errors as the GenServer data layer. It is the
 * baseline the benchmarks compare against, and a light test double.
 *
 * **Gotchas**
 *
 * - No supervision: a defect in a change or hook fails the call with
 *   `RecordCrashed` and the record keeps its last committed state, whatever
 *   its `restart` policy.
 * - No expiry fiber: a record past its deadline is invisible at once, and is
 *   removed (with its `Destroyed` event) when next touched by a direct access,
 *   without running its destroy action.
 *
 * **Example** (A store without fibers)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { DataLayer } from "effect-gen-server"
 * import { Character } from "./fixtures.js"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const layer = yield* DataLayer.memory([Character])
 *   return yield* layer.create("Character", "create", { name: "Marty", currentYear: 1985 })
 * }))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const memory = (
  resources: Iterable<Resource.Any>,
  options: GenServerOptions = {}
): Effect.Effect<DataLayer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { admit, clock, compiled, gate, initialData, observe, own, publish, resourceOf } = yield* setup(
      resources,
      options.eventBuffer
    )
    const context = options.context ?? (() => own)
    const tables = new Map([...compiled.keys()].map((name) => [name, new Map<string, Entry>()]))
    yield* Effect.addFinalizer(() => Effect.sync(() => (gate.closed = true)))

    const keyOf = (entry: Entry) => Server.keyObject(entry.resource, entry.state)
    const destroyed = (entry: Entry, reason: Event.DestroyReason) => {
      entry.alive = false
      tables.get(entry.resource.name)!.delete(entry.key)
      publish({ _tag: "Destroyed", resource: entry.resource.name, key: keyOf(entry), record: entry.state, reason })
    }
    const now = (resource: Compiled) => resource.hasTimeouts ? clock.currentTimeMillisUnsafe() : 0

    /** Removes a record found past its deadline at `t`. */
    const lapsed = (entry: Entry, t: number) => {
      const { lifetimeMillis } = entry.resource
      destroyed(
        entry,
        lifetimeMillis !== undefined && t >= entry.createdAt + lifetimeMillis ? "lifetime" : "inactivity"
      )
    }

    /** The record holding a key, unless it is past its deadline (then it is removed). */
    const holderOf = (resource: Compiled, key: string): Entry | undefined => {
      const entry = tables.get(resource.name)!.get(key)
      if (entry === undefined || !resource.hasTimeouts) return entry
      const t = now(resource)
      if (!Supervisor.isExpired(entry, t)) return entry
      lapsed(entry, t)
      return undefined
    }

    const locate = (resource: Compiled, key: unknown, activity: boolean): Entry | NotFound | ValidationError => {
      const k = resource.checkKey(key)
      if (k instanceof ValidationError) return k
      const entry = tables.get(resource.name)!.get(resource.encodeKey(k))
      if (entry === undefined) return notFound(resource, k)
      if (resource.hasTimeouts) {
        const t = now(resource)
        if (Supervisor.isExpired(entry, t)) {
          lapsed(entry, t)
          return notFound(resource, k)
        }
        if (activity) Supervisor.touch(entry, t)
      }
      return entry
    }

    /** Runs an action; `entry` is the record acted on (undefined for a create). */
    const run = (
      resource: Compiled,
      action: CompiledAction,
      entry: Entry | undefined,
      data: () => any,
      input: Decoded,
      commit: (prepared: { readonly state: any; readonly key: string }) => StoreError | undefined
    ): Effect.Effect<any, StoreError> =>
      Effect.flatMap(Effect.service(MemoryChain), (chain) => {
        // the state is read once the record's lock is held
        const inner = Effect.suspend(() => toEffect(prepare(resource, action, data(), input))).pipe(
          Effect.flatMap((prepared) => {
            const key = action.kind === "destroy" ? entry!.key : resource.encodeKey(prepared.state)
            const holder = holderOf(resource, key)
            if (holder !== undefined && holder !== entry) {
              const keyObj = Server.keyObject(resource, prepared.state)
              return Effect.fail(
                new AlreadyExists({
                  resource: resource.name,
                  key: keyObj,
                  message: `${resource.name} ${JSON.stringify(keyObj)} already exists`
                })
              )
            }
            return Effect.flatMap(runAfter(resource, action, prepared), (reply) => {
              const refused = commit({ state: prepared.state, key })
              return refused === undefined ? Effect.succeed(reply) : Effect.fail(refused)
            })
          }),
          Effect.provideService(MemoryChain, entry === undefined ? chain : [...chain, entry]),
          Effect.provideContext(context()),
          Effect.catchCause((cause): Effect.Effect<never, StoreError> => {
            const error = Cause.findErrorOption(cause)
            if (error._tag === "Some" && !Cause.hasDies(cause)) return Effect.fail(error.value as StoreError)
            if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
            const defect = Cause.squash(cause)
            return Effect.fail(
              new RecordCrashed({
                resource: resource.name,
                key: entry === undefined ? Server.keyObject(resource, data()) : keyOf(entry),
                message: `${resource.name} record crashed: ${
                  defect instanceof Error ? defect.message : String(defect)
                }`,
                defect
              })
            )
          })
        )
        const serialised = inner as Effect.Effect<any, StoreError>
        return entry === undefined ? serialised : entry.lock.withPermits(1)(serialised)
      })

    const serial = (
      resource: Compiled,
      action: CompiledAction,
      key: unknown,
      f: (entry: Entry) => Effect.Effect<any, StoreError>
    ): Effect.Effect<any, StoreError> => {
      const entry = locate(resource, key, true)
      if (!(entry instanceof Object) || entry instanceof NotFound || entry instanceof ValidationError) {
        return Effect.fail(entry as NotFound | ValidationError)
      }
      return Effect.flatMap(Effect.service(MemoryChain), (chain) =>
        chain.includes(entry)
          ? Effect.fail(
            new ReentrantCall({
              resource: resource.name,
              key: keyOf(entry),
              action: action.name,
              message: `${resource.name} ${
                JSON.stringify(keyOf(entry))
              }: a hook of this record called ${action.name} on the same record`
            })
          )
          : f(entry))
    }

    const gone = (entry: Entry) => notFound(entry.resource, keyOf(entry))

    const create: DataLayer["create"] = (resourceName, actionName, input) =>
      Effect.suspend(() => {
        const admitted = admit(resourceName, actionName, "create", input)
        if (!isAdmitted(admitted)) return Effect.fail(admitted)
        const { action, decoded, resource } = admitted
        const data = initialData(resource, decoded)
        return run(resource, action, undefined, () => data, decoded, ({ key, state }) => {
          const table = tables.get(resource.name)!
          if (holderOf(resource, key) !== undefined) {
            const keyObj = Server.keyObject(resource, state)
            return new AlreadyExists({
              resource: resource.name,
              key: keyObj,
              message: `${resource.name} ${JSON.stringify(keyObj)} already exists`
            })
          }
          const t = now(resource)
          table.set(key, {
            resource,
            key,
            state,
            createdAt: t,
            lastActivity: t,
            alive: true,
            lock: Semaphore.makeUnsafe(1)
          })
          publish({ _tag: "Created", resource: resource.name, key: Server.keyObject(resource, state), record: state })
          return undefined
        })
      })

    const update: DataLayer["update"] = (resourceName, key, actionName, input) =>
      Effect.suspend(() => {
        const admitted = admit(resourceName, actionName, "update", input)
        if (!isAdmitted(admitted)) return Effect.fail(admitted)
        const { action, decoded, resource } = admitted
        return serial(resource, action, key, (entry) =>
          Effect.suspend(() =>
            entry.alive
              ? run(resource, action, entry, () => entry.state, decoded, ({ key, state }) => {
                if (!entry.alive) return gone(entry)
                const table = tables.get(resource.name)!
                if (key !== entry.key) {
                  table.delete(entry.key)
                  table.set(key, entry)
                  entry.key = key
                }
                entry.state = state
                publish({ _tag: "Updated", resource: resource.name, key: keyOf(entry), record: state })
                return undefined
              })
              : Effect.fail(gone(entry))
          ))
      })

    const destroy: DataLayer["destroy"] = (resourceName, key, actionName) =>
      Effect.suspend(() => {
        const admitted = admit(resourceName, actionName, "destroy", undefined)
        if (!isAdmitted(admitted)) return Effect.fail(admitted)
        const { action, resource } = admitted
        return serial(resource, action, key, (entry) =>
          Effect.suspend(() =>
            entry.alive
              ? Effect.asVoid(
                run(resource, action, entry, () => entry.state, noInput, () => {
                  if (!entry.alive) return gone(entry)
                  destroyed(entry, "action")
                  return undefined
                })
              )
              : Effect.fail(gone(entry))
          ))
      })

    const access = (resourceName: string, key: unknown): Entry | NotFound | ValidationError | StoreClosed => {
      if (gate.closed) return storeClosed()
      const resource = resourceOf(resourceName)
      if (resource instanceof ValidationError) return resource
      return locate(resource, key, true)
    }

    const get: DataLayer["get"] = (resourceName, key) =>
      Effect.suspend(() => {
        const entry = access(resourceName, key)
        return entry instanceof NotFound || entry instanceof ValidationError || entry instanceof StoreClosed
          ? Effect.fail(entry)
          : Effect.succeed(entry.state)
      })

    const keepAlive: DataLayer["keepAlive"] = (resourceName, key) =>
      Effect.suspend(() => {
        const entry = access(resourceName, key)
        return entry instanceof NotFound || entry instanceof ValidationError || entry instanceof StoreClosed
          ? Effect.fail(entry)
          : Effect.void
      })

    const read: DataLayer["read"] = (query) =>
      Effect.suspend((): Effect.Effect<Array<unknown>, ValidationError | StoreClosed> => {
        if (gate.closed) return Effect.fail(storeClosed())
        const resource = resourceOf(query.resource)
        if (resource instanceof ValidationError) return Effect.fail(resource)
        const problem = checkQuery(resource, query)
        if (problem !== undefined) return Effect.fail(invalidQuery(resource.name, problem))
        const table = tables.get(resource.name)!
        const t = now(resource)
        const candidates = pinned(resource, query, (key) => table.get(key), undefined) ?? table.values()
        const collected = Query.collector(query)
        for (const entry of candidates) {
          if (!resource.hasTimeouts || !Supervisor.isExpired(entry, t)) collected.add(entry.state)
        }
        return Effect.succeed(collected.done())
      })

    return {
      create,
      update,
      destroy,
      get,
      read,
      keepAlive,
      ...observe
    }
  })
