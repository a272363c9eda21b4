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
 *   the record's fiber and one reply (the price of a `GenServer.call`).
 * - read: never messages a record. A full-key `eq` filter is a registry
 *   lookup, an `eq` on an indexed field reads the index, anything else scans
 *   the committed state of the resource's live records.
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
import { Clock, Context, Deferred, Effect, PubSub, Queue, type Scope, Stream } from "effect"
import {
  InvalidResource,
  MailboxFull,
  NotFound,
  ReentrantCall,
  StoreClosed,
  type StoreError,
  UnknownAction,
  ValidationError
} from "./Errors.js"
import type * as Event from "./Event.js"
import * as Metrics from "./Metrics.js"
import * as Filter from "./Filter.js"
import { type Compiled, compile, type CompiledAction } from "./internal/resource.js"
import * as Query from "./Query.js"
import * as Registry from "./Registry.js"
import type * as Resource from "./Resource.js"
import * as Server from "./Server.js"
import * as Supervisor from "./Supervisor.js"

/**
 * A query as data: what crosses to a data layer.
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
 * @category models
 * @since 0.1.0
 */
export interface DataLayer {
  readonly create: (resource: string, action: string, input: unknown) => Effect.Effect<unknown, StoreError>
  readonly update: (resource: string, key: unknown, action: string, input: unknown) => Effect.Effect<unknown, StoreError>
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
 * @category models
 * @since 0.1.0
 */
export interface GenServerOptions {
  /** The services record fibers run hooks with. Default: the context `genServer` runs in. */
  readonly context?: (() => Context.Context<never>) | undefined
}

const storeClosed = () => new StoreClosed({ message: "the store is closed" })

const unknownResource = (name: unknown) =>
  new ValidationError({ resource: String(name), message: `unknown resource ${JSON.stringify(String(name))}` })

const notFound = (compiled: Compiled, key: unknown) =>
  new NotFound({ resource: compiled.name, key, message: `${compiled.name} ${JSON.stringify(key)} not found` })

const invalidQuery = (resource: string, message: string) =>
  new ValidationError({ resource, message: `${resource}: invalid query: ${message}` })

const isIndexable = (v: unknown) => v === null || (typeof v !== "object" && typeof v !== "function")

/** Checks a query's shape against its resource; a message or `undefined`. */
const checkQuery = (compiled: Compiled, query: QueryData): string | undefined => {
  if (query.filter !== undefined) {
    const problem = Filter.check(query.filter)
    if (problem !== undefined) return problem
    for (const field of Filter.fields(query.filter)) {
      if (!compiled.fieldNames.has(field)) return `unknown field ${JSON.stringify(field)} in filter`
    }
  }
  if (!Array.isArray(query.sort)) return "sort must be an array"
  for (const key of query.sort) {
    if (typeof key !== "object" || key === null || !compiled.fieldNames.has(key.field)) {
      return `unknown field ${JSON.stringify(key?.field)} in sort`
    }
    if (key.direction !== "asc" && key.direction !== "desc") {
      return `sort direction must be "asc" or "desc", got ${JSON.stringify(key.direction)}`
    }
  }
  if (!Number.isSafeInteger(query.offset) || query.offset < 0) {
    return `offset must be a non-negative integer, got ${String(query.offset)}`
  }
  if (query.limit !== undefined && (!Number.isSafeInteger(query.limit) || query.limit < 0)) {
    return `limit must be a non-negative integer, got ${String(query.limit)}`
  }
  return undefined
}

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
    const compiled = new Map<string, Compiled>()
    for (const resource of resources) {
      if (compiled.has(resource.name)) {
        return yield* Effect.die(
          new InvalidResource({ resource: resource.name, message: `two resources are named ${resource.name}` })
        )
      }
      compiled.set(resource.name, compile(resource))
    }
    const registry = Registry.make([...compiled.values()].map((c) => ({ name: c.name, indexes: c.indexes })))
    const pubsub = yield* PubSub.unbounded<Event.Event>()
    yield* Effect.addFinalizer(() => PubSub.shutdown(pubsub))
    const own = yield* Effect.context<never>()
    const context = options.context ?? (() => own)
    // one clock for callers, record fibers and expiry: the layer's
    const clock = Context.get(own, Clock.Clock)
    const metrics = new Map([...compiled.keys()].map((name) => [name, Metrics.forResource(name, own)]))
    const publish = (event: Event.Event) => {
      metrics.get(event.resource)!.event(event)
      PubSub.publishUnsafe(pubsub, event)
    }
    const supervisor = yield* Supervisor.make({
      registry,
      resources: [...compiled.values()],
      publish,
      context,
      clock,
      metrics
    })
    let closed = false
    // runs before the supervisor's fibers are interrupted (finalizers run in reverse)
    yield* Effect.addFinalizer(() => Effect.sync(() => (closed = true)))

    const resourceOf = (name: string): Compiled | ValidationError => compiled.get(name) ?? unknownResource(name)

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
        : Effect.map(Effect.service(Server.CurrentChain), (chain) =>
          chain.includes(server) ? server.pending : server.state.ref.current)

    const call = (
      server: Server.RecordServer,
      action: CompiledAction,
      make: (deferred: Deferred.Deferred<any, StoreError>, chain: Server.Chain, at: number) => Server.Request
    ): Effect.Effect<any, StoreError> =>
      Effect.flatMap(Effect.service(Server.CurrentChain), (chain) => {
        if (chain.includes(server)) {
          const key = Server.keyObject(server.resource, server.state.ref.current)
          return Effect.fail(
            new ReentrantCall({
              resource: server.resource.name,
              key,
              action: action.name,
              message: `${server.resource.name} ${
                JSON.stringify(key)
              }: a hook of this record called ${action.name} on the same record, which would wait on its own mailbox`
            })
          )
        }
        if (closed) return Effect.fail(storeClosed())
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
        Queue.offerUnsafe(server.mailbox, make(deferred, chain, Supervisor.millis(clock)))
        return Deferred.await(deferred)
      })

    const create: DataLayer["create"] = (resourceName, actionName, input) =>
      Effect.suspend(() => {
        if (closed) return Effect.fail(storeClosed())
        const resource = resourceOf(resourceName)
        if (resource instanceof ValidationError) return Effect.fail(resource)
        const action = resource.action(actionName, "create")
        if (action instanceof UnknownAction) return Effect.fail(action)
        const decoded = action.decode(input)
        if (decoded instanceof ValidationError) return Effect.fail(decoded)
        const data: { [field: string]: unknown } = {}
        const generated = resource.resource.generated as { readonly [field: string]: () => unknown }
        for (const field in generated) {
          if (!(field in decoded.attributes)) data[field] = generated[field]!()
        }
        Object.assign(data, decoded.attributes)
        const createInput: Server.CreateInput = { action, data, input: decoded }
        return Effect.flatMap(
          Effect.service(Server.CurrentChain),
          (chain) => supervisor.spawn(resource, createInput, chain, resource.hasTimeouts ? clock.currentTimeMillisUnsafe() : 0)
        )
      })

    const update: DataLayer["update"] = (resourceName, key, actionName, input) =>
      Effect.suspend(() => {
        if (closed) return Effect.fail(storeClosed())
        const resource = resourceOf(resourceName)
        if (resource instanceof ValidationError) return Effect.fail(resource)
        const action = resource.action(actionName, "update")
        if (action instanceof UnknownAction) return Effect.fail(action)
        const decoded = action.decode(input)
        if (decoded instanceof ValidationError) return Effect.fail(decoded)
        return locate(resource, key, true, (server) =>
          call(server, action, (deferred, chain, at) => ({ _tag: "Update", action, input: decoded, deferred, chain, at })))
      })

    const destroy: DataLayer["destroy"] = (resourceName, key, actionName) =>
      Effect.suspend(() => {
        if (closed) return Effect.fail(storeClosed())
        const resource = resourceOf(resourceName)
        if (resource instanceof ValidationError) return Effect.fail(resource)
        const action = resource.action(actionName, "destroy")
        if (action instanceof UnknownAction) return Effect.fail(action)
        return locate(resource, key, true, (server) =>
          call(server, action, (deferred, chain, at) => ({ _tag: "Destroy", action, deferred, chain, at })))
      })

    const get: DataLayer["get"] = (resourceName, key) =>
      Effect.suspend((): Effect.Effect<unknown, NotFound | ValidationError | StoreClosed> => {
        if (closed) return Effect.fail(storeClosed())
        const resource = resourceOf(resourceName)
        if (resource instanceof ValidationError) return Effect.fail(resource)
        return locate(resource, key, true, committed)
      })

    const keepAlive: DataLayer["keepAlive"] = (resourceName, key) =>
      Effect.suspend((): Effect.Effect<void, NotFound | ValidationError | StoreClosed> => {
        if (closed) return Effect.fail(storeClosed())
        const resource = resourceOf(resourceName)
        if (resource instanceof ValidationError) return Effect.fail(resource)
        return locate(resource, key, true, () => Effect.void)
      })

    const read: DataLayer["read"] = (query) =>
      Effect.suspend((): Effect.Effect<Array<unknown>, ValidationError | StoreClosed> => {
        if (closed) return Effect.fail(storeClosed())
        const resource = resourceOf(query.resource)
        if (resource instanceof ValidationError) return Effect.fail(resource)
        const problem = checkQuery(resource, query)
        if (problem !== undefined) return Effect.fail(invalidQuery(resource.name, problem))
        if (!resource.hasTimeouts) return Effect.succeed(scan(resource, query, undefined))
        return Effect.succeed(scan(resource, query, clock.currentTimeMillisUnsafe()))
      })

    const scan = (resource: Compiled, query: QueryData, now: number | undefined): Array<unknown> => {
      const table = registry.tables.get(resource.name)!
      const visible = (server: Server.RecordServer) =>
        server.status === "live" && (now === undefined || !Supervisor.isExpired(server, now))
      let candidates: Iterable<Server.RecordServer> | undefined
      if (query.filter !== undefined) {
        const eqs = Filter.equalities(query.filter)
        if (resource.keyFields.every((k) => eqs.has(k))) {
          const key: { [k: string]: unknown } = {}
          for (const k of resource.keyFields) key[k] = eqs.get(k)
          const checked = resource.checkKey(key)
          const server = checked instanceof ValidationError
            ? undefined
            : Registry.lookup(table, resource.encodeKey(checked))
          candidates = server === undefined ? [] : [server]
        } else {
          for (const [field, index] of table.indexes) {
            if (eqs.has(field) && isIndexable(eqs.get(field))) {
              candidates = index.get(eqs.get(field)) ?? []
              break
            }
          }
        }
      }
      const records: Array<unknown> = []
      if (candidates === undefined) {
        // a server reserving a new key appears twice in the table: count it under its committed key
        for (const [key, server] of table.servers) {
          if (key === server.key && visible(server)) records.push(server.state.ref.current)
        }
      } else {
        for (const server of candidates) {
          if (visible(server)) records.push(server.state.ref.current)
        }
      }
      return Query.run({ ...query, resource: undefined as any } as Query.Query<unknown>, records)
    }

    return {
      create,
      update,
      destroy,
      get,
      read,
      keepAlive,
      events: Stream.fromPubSub(pubsub),
      subscribe: PubSub.subscribe(pubsub)
    }
  })
