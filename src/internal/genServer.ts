/**
 * The GenServer data layer: every record in its own supervised fiber.
 *
 * Calls are admitted (`admission.ts`), then either read the record's
 * committed state in the caller's fiber (get, keepAlive, read) or become a
 * request to the record's mailbox (update, destroy) or a new record fiber
 * (create). Re-entrant calls are refused through the wait-for graph
 * (`deadlock.ts`) before anything is queued.
 *
 * @internal
 */
import { Context, Deferred, Effect, type Fiber } from "effect"
import { SqlClient } from "effect/sql"
import {
  InvalidResource,
  type NotFound,
  type StoreClosed,
  type StoreError,
  type Unavailable,
  ValidationError
} from "../Errors.js"
import * as Query from "../Query.js"
import * as Admission from "./admission.js"
import type * as DataLayer from "./contract.js"
import * as Durable from "./durable.js"
import * as Events from "./events.js"
import * as Mailbox from "./fiber/mailbox.js"
import * as Registry from "./fiber/registry.js"
import * as Server from "./fiber/server.js"
import * as Supervisor from "./fiber/supervisor.js"
import { pinned } from "./query.js"
import { type Chain, CurrentChain, WaitGraph } from "./record/deadlock.js"
import * as Errors from "./record/errors.js"
import * as Lifecycle from "./record/lifecycle.js"
import * as Schedules from "./record/schedules.js"
import type { Compiled, CompiledAction } from "./resource.js"
import { callerSpan } from "./tracing.js"

/** @internal */
export const make: DataLayer.Make = (resources, options) =>
  Effect.gen(function*() {
    const { admit, admitQuery, admitRead, clock, compiled, gate, initialData, own } = yield* Admission.start(resources)
    const { events, metrics, publish, subscribe } = yield* Events.make(compiled.keys(), options.eventBuffer, own)
    const registry = Registry.make<Server.RecordServer>(
      [...compiled.values()].map((c) => ({ name: c.name, indexes: c.indexes }))
    )
    const graph = new WaitGraph()
    const durable = yield* storage(compiled, own, options.durable, registry, metrics, clock)
    const supervisor = yield* Supervisor.make({
      registry,
      graph,
      resources: [...compiled.values()],
      publish,
      clock,
      metrics,
      persist: durable?.persist
    })
    // runs before the supervisor's fibers are interrupted (finalizers run in reverse)
    yield* Effect.addFinalizer(() => Effect.sync(() => (gate.closed = true)))
    let ids = 0

    /**
     * The record a call by key addresses, with the state the caller may see:
     * the committed record, or the pending one for a fiber running on behalf
     * of the record's own action. Touches it when `activity`.
     */
    const locate = <A, E, R>(
      resource: Compiled,
      key: unknown,
      activity: boolean,
      chain: Chain,
      f: (server: Server.RecordServer) => Effect.Effect<A, E, R>
    ): Effect.Effect<A, E | NotFound | ValidationError | Unavailable, R> => {
      const k = resource.checkKey(key)
      if (k instanceof ValidationError) return Effect.fail(k)
      const table = registry.tables.get(resource.name)!
      const encoded = resource.encodeKey(k)
      const server = Registry.lookup(table, encoded) ?? ownPending(table, encoded, chain)
      if (server === undefined) {
        // storage may hold what memory does not know yet (a write whose answer was lost, a newer version's row)
        const unsettled = durable?.unsettled(resource, encoded)
        if (unsettled === undefined) return Effect.fail(Errors.notFound(resource, k))
        return Effect.flatMap(unsettled, () => {
          const found = Registry.lookup(table, encoded)
          return found === undefined
            ? Effect.fail(Errors.notFound(resource, k))
            : visit(resource, found, k, activity, f)
        })
      }
      return visit(resource, server, k, activity, f)
    }

    /** A call by key that found its record: past its deadline it is `NotFound`; else activity, then `f`. */
    const visit = <A, E, R>(
      resource: Compiled,
      server: Server.RecordServer,
      k: unknown,
      activity: boolean,
      f: (server: Server.RecordServer) => Effect.Effect<A, E, R>
    ): Effect.Effect<A, E | NotFound, R> => {
      if (!resource.tracksActivity || server.status !== "live") return f(server)
      const now = clock.currentTimeMillisUnsafe()
      if (Lifecycle.isExpired(server, now)) return Effect.fail(Errors.notFound(resource, k))
      if (activity) Lifecycle.touchUnsafe(server, now)
      return f(server)
    }

    /** A record whose running action holds `key` uncommitted (a create, a key change), seen from that action. */
    const ownPending = (table: Registry.Table<Server.RecordServer>, key: string, chain: Chain) => {
      if (chain.length === 0) return undefined
      const holder = Registry.holder(table, key)
      return holder !== undefined && holder.pending !== undefined && Server.visible(holder, chain) === holder.pending
        ? holder
        : undefined
    }

    /** Queues a request to a record, unless it would deadlock, the store is closed or the mailbox is full. */
    const call = (
      fiber: Fiber.Fiber<unknown, unknown>,
      server: Server.RecordServer,
      action: string,
      make: (reply: Deferred.Deferred<any, StoreError>, chain: Chain, at: number, span: any) => Server.Request
    ): Effect.Effect<any, StoreError> => {
      const chain = graph.attached(fiber.getRef(CurrentChain))
      const caller = graph.caller(chain)
      if (caller !== undefined && graph.wouldDeadlock(caller, server.id)) {
        return Effect.fail(Errors.reentrant(server.resource, Server.keyOf(server), action))
      }
      if (gate.closed) return Effect.fail(Admission.storeClosed())
      // the record may have stopped since it was looked up (this fiber can be preempted in between)
      if (server.status !== "live") return Effect.fail(Server.notFound(server))
      const capacity = server.resource.resource.mailboxCapacity
      if (capacity !== undefined && Server.queued(server) >= capacity) {
        return Effect.fail(
          Errors.mailboxFull(server.resource, Server.keyOf(server), capacity, `${capacity} pending requests`)
        )
      }
      const reply = Deferred.makeUnsafe<any, StoreError>()
      // the wait-for edge goes in before the request: the record may serve it (and call back) at once
      const release = caller === undefined ? undefined : graph.wait(caller, server.id)
      const request = make(reply, chain, Supervisor.millis(clock), callerSpan(fiber))
      if (!Mailbox.serveNow(server, request)) Server.deliver(server, request)
      return release === undefined
        ? Deferred.await(reply)
        : Effect.ensuring(Deferred.await(reply), Effect.sync(release))
    }

    const create: DataLayer.Service["create"] = (resourceName, actionName, input) =>
      Effect.suspend(() => {
        const admitted = admit(resourceName, actionName, "create", input)
        if (!Admission.isAdmitted(admitted)) return Effect.fail(admitted)
        const { action, decoded, resource } = admitted
        const data = initialData(resource, decoded)
        if (data instanceof ValidationError) return Effect.fail(data)
        const createInput: Server.CreateInput = { action, data, input: decoded }
        return Effect.withFiber((fiber) => {
          const chain = graph.attached(fiber.getRef(CurrentChain))
          const caller = graph.caller(chain)
          const op = fiber.getRef(Admission.CurrentOperationId)
          const id = ++ids
          const spawn = supervisor.spawn(
            resource,
            id,
            createInput,
            chain,
            resource.tracksActivity ? clock.currentTimeMillisUnsafe() : 0,
            callerSpan(fiber),
            op
          )
          const spawned = durable === undefined || !resource.durable
            ? spawn
            : durableCreate(resource, createInput.action, data, op, spawn)
          if (caller === undefined) return spawned
          // a hook creating a record waits on it: its create hooks may call back
          const release = graph.wait(caller, id)
          return Effect.ensuring(spawned, Effect.sync(release))
        })
      })

    /**
     * A durable create: a key storage may hold unknown to memory is settled
     * first; under an id the caller chose, a create that id applied already
     * answers with its record instead of `AlreadyExists`.
     */
    const durableCreate = (
      resource: Compiled,
      action: CompiledAction,
      data: { readonly [field: string]: unknown },
      op: string | undefined,
      spawn: Effect.Effect<any, StoreError>
    ): Effect.Effect<any, StoreError> => {
      for (const k of resource.keyFields) if (!(k in data)) return spawn
      const key = resource.encodeKey(data)
      const unsettled = durable!.unsettled(resource, key)
      const created = op === undefined ? undefined : durable!.created(resource, key, op, action)
      if (unsettled === undefined && created === undefined) return spawn
      return Effect.andThen(
        unsettled ?? Effect.void,
        created === undefined
          ? spawn
          : Effect.flatMap(created, (applied) => applied === undefined ? spawn : Effect.succeed(applied.reply))
      )
    }

    const update: DataLayer.Service["update"] = (resourceName, key, actionName, input) =>
      Effect.withFiber((fiber) => {
        const admitted = admit(resourceName, actionName, "update", input)
        if (!Admission.isAdmitted(admitted)) return Effect.fail(admitted)
        const { action, decoded, resource } = admitted
        return locate(resource, key, true, fiber.getRef(CurrentChain), (server) =>
          call(
            fiber,
            server,
            action.name,
            (reply, chain, at, span) =>
              Server.request.update(
                action.name,
                decoded,
                reply,
                chain,
                at,
                span,
                fiber.getRef(Admission.CurrentOperationId)
              )
          ))
      })

    const destroy: DataLayer.Service["destroy"] = (resourceName, key, actionName) =>
      Effect.withFiber((fiber) => {
        const admitted = admit(resourceName, actionName, "destroy", undefined)
        if (!Admission.isAdmitted(admitted)) return Effect.fail(admitted)
        const { action, resource } = admitted
        const op = fiber.getRef(Admission.CurrentOperationId)
        const located = locate(resource, key, true, fiber.getRef(CurrentChain), (server) =>
          call(
            fiber,
            server,
            action.name,
            (reply, chain, at, span) => Server.request.destroy(action.name, reply, chain, at, span, op)
          ))
        if (op === undefined || durable === undefined || !resource.durable) return located
        // sent again under its id after it was applied: its row remembers it, and what it answered
        return Effect.catchTag(located, "NotFound", (notFound) =>
          Effect.flatMap(
            durable.removed(resource, resource.encodeKey(resource.checkKey(key)), op, action),
            (applied) => applied === undefined ? Effect.fail(notFound) : Effect.succeed(applied.reply)
          ))
      })

    const get: DataLayer.Service["get"] = (resourceName, key) =>
      Effect.withFiber((fiber): Effect.Effect<unknown, NotFound | ValidationError | StoreClosed | Unavailable> => {
        const resource = admitRead(resourceName)
        if (!Admission.isCompiled(resource)) return Effect.fail(resource)
        const chain = fiber.getRef(CurrentChain)
        return locate(resource, key, true, chain, (server) => Effect.succeed(Server.visible(server, chain)))
      })

    const schedules: NonNullable<DataLayer.Service["schedules"]> = (resourceName, key) =>
      Effect.suspend((): DataLayer.Listed => {
        const resource = admitRead(resourceName)
        if (!Admission.isCompiled(resource)) return Effect.fail(resource)
        return locate(resource, key, false, [], (server) => Effect.succeed(Schedules.list(server)))
      })

    const keepAlive: DataLayer.Service["keepAlive"] = (resourceName, key) =>
      Effect.suspend((): Effect.Effect<void, NotFound | ValidationError | StoreClosed | Unavailable> => {
        const resource = admitRead(resourceName)
        if (!Admission.isCompiled(resource)) return Effect.fail(resource)
        return locate(resource, key, true, [], () => Effect.void)
      })

    const read: DataLayer.Service["read"] = (query) =>
      Effect.suspend((): Effect.Effect<Array<unknown>, ValidationError | StoreClosed> => {
        const resource = admitQuery(query)
        if (!Admission.isCompiled(resource)) return Effect.fail(resource)
        if (!resource.hasTimeouts) return Effect.succeed(scan(resource, query, undefined))
        return Effect.succeed(scan(resource, query, clock.currentTimeMillisUnsafe()))
      })

    const scan = (resource: Compiled, query: DataLayer.QueryData, now: number | undefined): Array<unknown> => {
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
          if (server.status === "live" && (now === undefined || !Lifecycle.isExpired(server, now))) {
            collected.add(Server.committed(server))
          }
        }
        return collected.done()
      }
      // every live record, from the table's dense arrays: before the resource's next deadline none is
      // expired; after it, each record is asked
      const { live, records } = table
      if (now === undefined || now < supervisor.nextDeadline(resource.name)) {
        for (let i = 0; i < records.length; i++) collected.add(records[i])
        return collected.done()
      }
      for (let i = 0; i < live.length; i++) {
        if (!Lifecycle.isExpired(live[i]!, now)) collected.add(records[i])
      }
      return collected.done()
    }

    const self: DataLayer.Service = { create, update, destroy, get, read, keepAlive, events, subscribe, schedules }
    yield* supervisor.provide(options.context?.(self) ?? own)
    // stored records come back hibernated, once record fibers can run (a past deadline wakes one at once)
    if (durable !== undefined) yield* durable.restore(supervisor, () => ++ids)
    return self
  })

/** The storage of the durable resources, over the `SqlClient` of the layer's context; none without them. */
const storage = (
  compiled: ReadonlyMap<string, Compiled>,
  own: Context.Context<never>,
  options: DataLayer.DurableOptions | undefined,
  registry: Registry.Registry<Server.RecordServer>,
  metrics: Parameters<typeof Durable.make>[4],
  clock: { readonly currentTimeMillisUnsafe: () => number }
) => {
  const durables = [...compiled.values()].filter((c) => c.durable)
  if (durables.length === 0) return Effect.succeed(undefined)
  const sql = Context.getOption(own, SqlClient.SqlClient)
  if (sql._tag === "None") {
    return Effect.die(
      new InvalidResource({
        resource: durables[0]!.name,
        message: `Resource ${durables[0]!.name} is durable: the Store's layer needs a SqlClient (SqliteClient.layer, ` +
          `PgClient.layer, ...)`
      })
    )
  }
  return Durable.make(sql.value, durables, options ?? {}, registry, metrics, () => clock.currentTimeMillisUnsafe())
}
