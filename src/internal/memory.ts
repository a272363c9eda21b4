/**
 * The memory data layer: records in a `Map`, no fibers. Actions run in the
 * caller's fiber under a per-record lock, with the same admission,
 * pipeline, validation, atomicity, events, errors and deadlock detection as
 * the GenServer data layer.
 *
 * @internal
 */
import { Cause, Effect, Semaphore } from "effect"
import type * as DataLayer from "../DataLayer.js"
import { InvalidResource, type StoreError, ValidationError } from "../Errors.js"
import type * as Event from "../Event.js"
import * as Query from "../Query.js"
import * as Admission from "./admission.js"
import { type Activation, type Chain, CurrentChain, WaitGraph } from "./deadlock.js"
import * as Events from "./events.js"
import { pinned } from "./query.js"
import * as Errors from "./record/errors.js"
import { prepare, runAfter, toEffect } from "./record/pipeline.js"
import type { Compiled, CompiledAction, Decoded } from "./resource.js"
import { freeze, keyObject } from "./server.js"
import { isExpired, touchUnsafe } from "./supervisor.js"

interface Entry {
  readonly id: number
  readonly resource: Compiled
  key: string
  state: any
  createdAt: number
  lastActivity: number
  alive: boolean
  readonly lock: Semaphore.Semaphore
  /** The validated new state while the running action's `after` hooks run. */
  pending: unknown
  activation: Activation | undefined
}

/** @internal */
export const make: DataLayer.Make = (resources, options) =>
  Effect.gen(function*() {
    const { admit, admitQuery, admitRead, clock, compiled, gate, initialData, own } = yield* Admission.start(resources)
    for (const resource of compiled.values()) {
      if (resource.durable) {
        return yield* Effect.die(
          new InvalidResource({
            resource: resource.name,
            message: `Resource ${resource.name} is durable: the memory data layer keeps nothing; use the genServer one`
          })
        )
      }
    }
    const { events, publish, subscribe } = yield* Events.make(compiled.keys(), options.eventBuffer, own)
    const tables = new Map([...compiled.keys()].map((name) => [name, new Map<string, Entry>()]))
    /** Keys held by running actions, not yet committed (a create, a key change). */
    const reserved = new Map([...compiled.keys()].map((name) => [name, new Map<string, Entry>()]))
    const graph = new WaitGraph()
    yield* Effect.addFinalizer(() => Effect.sync(() => (gate.closed = true)))
    let ids = 0
    let context = own

    const keyOf = (entry: Entry) => keyObject(entry.resource, entry.state)
    const destroyed = (entry: Entry, reason: Event.DestroyReason) => {
      entry.alive = false
      tables.get(entry.resource.name)!.delete(entry.key)
      publish({ _tag: "Destroyed", resource: entry.resource.name, key: keyOf(entry), record: entry.state, reason })
    }
    const now = (resource: Compiled) => resource.hasTimeouts ? clock.currentTimeMillisUnsafe() : 0

    /** Removes a record found past its deadline; the reason is the deadline that passed first (lifetime on a tie). */
    const lapsed = (entry: Entry, _t: number) => {
      const { idleMillis, lifetimeMillis } = entry.resource
      const idle = idleMillis === undefined ? Infinity : entry.lastActivity + idleMillis
      const lifetime = lifetimeMillis === undefined ? Infinity : entry.createdAt + lifetimeMillis
      destroyed(entry, lifetime <= idle ? "lifetime" : "inactivity")
    }

    /** The record holding a key, unless it is past its deadline (then it is removed). */
    const holderOf = (resource: Compiled, key: string): Entry | undefined => {
      const entry = tables.get(resource.name)!.get(key)
      if (entry === undefined || !resource.hasTimeouts) return entry
      const t = now(resource)
      if (!isExpired(entry, t)) return entry
      lapsed(entry, t)
      return undefined
    }

    /** Whether a fiber running for `chain` runs on behalf of the entry's running action. */
    const isOwn = (entry: Entry, chain: Chain) => graph.runsFor(chain, entry.activation)

    const locate = (
      resource: Compiled,
      key: unknown,
      chain: Chain
    ): { readonly entry: Entry; readonly state: any } | StoreError => {
      const k = resource.checkKey(key)
      if (k instanceof ValidationError) return k
      const encoded = resource.encodeKey(k)
      const entry = tables.get(resource.name)!.get(encoded)
      if (entry === undefined) {
        const holder = reserved.get(resource.name)!.get(encoded)
        return holder !== undefined && isOwn(holder, chain)
          ? { entry: holder, state: holder.pending }
          : Errors.notFound(resource, k)
      }
      if (resource.hasTimeouts) {
        const t = now(resource)
        if (isExpired(entry, t)) {
          lapsed(entry, t)
          return Errors.notFound(resource, k)
        }
        touchUnsafe(entry, t)
      }
      return { entry, state: entry.pending !== undefined && isOwn(entry, chain) ? entry.pending : entry.state }
    }

    /**
     * Runs an action on `entry` (a new entry for a create) under its lock, as
     * one activation of it; `commit` is called synchronously once the after
     * hooks succeeded and refuses with an error or commits.
     */
    const run = (
      entry: Entry,
      action: CompiledAction,
      input: Decoded,
      commit: (state: any, key: string) => StoreError | undefined
    ): Effect.Effect<any, StoreError> =>
      Effect.withFiber((fiber) => {
        const chain = graph.attached(fiber.getRef(CurrentChain))
        const caller = graph.caller(chain)
        if (caller !== undefined && graph.wouldDeadlock(caller, entry.id)) {
          return Effect.fail(Errors.reentrant(entry.resource, keyOf(entry), action.name))
        }
        const resource = entry.resource
        const table = reserved.get(resource.name)!
        let key: string | undefined
        const body = Effect.suspend(() => {
          if (gate.closed) return Effect.fail(Admission.storeClosed())
          if (action.kind !== "create" && !entry.alive) return Effect.fail(Errors.notFound(resource, keyOf(entry)))
          const activation = entry.activation = graph.begin(entry.id)
          // the state is read once the record's lock is held
          return Effect.suspend(() => toEffect(prepare(resource, action, entry.state, input))).pipe(
            Effect.flatMap((prepared) => {
              const next = action.kind === "destroy" ? entry.key : resource.encodeKey(prepared.state)
              const holder = next === entry.key && entry.alive ? entry : holderOf(resource, next) ?? table.get(next)
              if (holder !== undefined && holder !== entry) {
                return Effect.fail(Errors.alreadyExists(resource, keyObject(resource, prepared.state)))
              }
              if (next !== entry.key || !entry.alive) table.set(key = next, entry)
              entry.pending = action.kind === "destroy" ? undefined : prepared.state
              return Effect.flatMap(runAfter(resource, action, prepared), (reply) => {
                const refused = commit(prepared.state, next)
                return refused === undefined ? Effect.succeed(reply) : Effect.fail(refused)
              })
            }),
            Effect.provideService(CurrentChain, [...chain, activation]),
            Effect.provideContext(context),
            Effect.catchCause((cause): Effect.Effect<never, StoreError> => {
              const error = Cause.findErrorOption(cause)
              if (error._tag === "Some" && !Cause.hasDies(cause)) return Effect.fail(error.value as StoreError)
              if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
              return Effect.fail(Errors.crashed(entry.resource, keyOf(entry), cause))
            }),
            Effect.ensuring(Effect.sync(() => {
              entry.pending = undefined
              graph.end(activation)
              entry.activation = undefined
              if (key !== undefined && table.get(key) === entry) table.delete(key)
            }))
          )
        })
        const locked = entry.lock.withPermits(1)(body) as Effect.Effect<any, StoreError>
        if (caller === undefined) return locked
        const release = graph.wait(caller, entry.id)
        return Effect.ensuring(locked, Effect.sync(release))
      })

    const create: DataLayer.Service["create"] = (resourceName, actionName, input) =>
      Effect.suspend(() => {
        const admitted = admit(resourceName, actionName, "create", input)
        if (!Admission.isAdmitted(admitted)) return Effect.fail(admitted)
        const { action, decoded, resource } = admitted
        const data = initialData(resource, decoded)
        if (data instanceof ValidationError) return Effect.fail(data)
        const entry: Entry = {
          id: ++ids,
          resource,
          key: "",
          state: data,
          createdAt: 0,
          lastActivity: 0,
          alive: false,
          lock: Semaphore.makeUnsafe(1),
          pending: undefined,
          activation: undefined
        }
        return run(entry, action, decoded, (state, key) => {
          if (holderOf(resource, key) !== undefined) {
            return Errors.alreadyExists(resource, keyObject(resource, state))
          }
          // a new record's deadlines count from its commit
          const t = now(resource)
          entry.createdAt = entry.lastActivity = t
          entry.key = key
          entry.state = freeze(state)
          entry.alive = true
          tables.get(resource.name)!.set(key, entry)
          publish({ _tag: "Created", resource: resource.name, key: keyObject(resource, state), record: state })
          return undefined
        })
      })

    /** Refuses a commit that would come after the record's deadline. */
    const late = (entry: Entry): StoreError | undefined => {
      if (!entry.alive) return Errors.notFound(entry.resource, keyOf(entry))
      if (!entry.resource.hasTimeouts) return undefined
      const t = now(entry.resource)
      if (!isExpired(entry, t)) return undefined
      lapsed(entry, t)
      return Errors.notFound(entry.resource, keyOf(entry))
    }

    const existing = (resource: Compiled, key: unknown, chain: Chain): Entry | StoreError => {
      const found = locate(resource, key, chain)
      return "entry" in found ? found.entry : found
    }

    const update: DataLayer.Service["update"] = (resourceName, key, actionName, input) =>
      Effect.withFiber((fiber) => {
        const admitted = admit(resourceName, actionName, "update", input)
        if (!Admission.isAdmitted(admitted)) return Effect.fail(admitted)
        const { action, decoded, resource } = admitted
        const entry = existing(resource, key, fiber.getRef(CurrentChain))
        if (!("lock" in entry)) return Effect.fail(entry)
        return run(entry, action, decoded, (state, key) => {
          const refused = late(entry)
          if (refused !== undefined) return refused
          const table = tables.get(resource.name)!
          if (key !== entry.key) {
            table.delete(entry.key)
            table.set(key, entry)
            entry.key = key
          }
          entry.state = freeze(state)
          publish({ _tag: "Updated", resource: resource.name, key: keyOf(entry), record: state })
          return undefined
        })
      })

    const destroy: DataLayer.Service["destroy"] = (resourceName, key, actionName) =>
      Effect.withFiber((fiber) => {
        const admitted = admit(resourceName, actionName, "destroy", undefined)
        if (!Admission.isAdmitted(admitted)) return Effect.fail(admitted)
        const { action, resource } = admitted
        const entry = existing(resource, key, fiber.getRef(CurrentChain))
        if (!("lock" in entry)) return Effect.fail(entry)
        return Effect.asVoid(run(entry, action, Admission.noInput, () => {
          const refused = late(entry)
          if (refused !== undefined) return refused
          destroyed(entry, "action")
          return undefined
        }))
      })

    const get: DataLayer.Service["get"] = (resourceName, key) =>
      Effect.withFiber((fiber) => {
        const resource = admitRead(resourceName)
        if (!Admission.isCompiled(resource)) return Effect.fail(resource)
        const found = locate(resource, key, fiber.getRef(CurrentChain))
        return "entry" in found ? Effect.succeed(found.state) : Effect.fail(found as any)
      })

    const keepAlive: DataLayer.Service["keepAlive"] = (resourceName, key) =>
      Effect.suspend(() => {
        const resource = admitRead(resourceName)
        if (!Admission.isCompiled(resource)) return Effect.fail(resource)
        const found = locate(resource, key, [])
        return "entry" in found ? Effect.void : Effect.fail(found as any)
      })

    const read: DataLayer.Service["read"] = (query) =>
      Effect.suspend(() => {
        const resource = admitQuery(query)
        if (!Admission.isCompiled(resource)) return Effect.fail(resource)
        const table = tables.get(resource.name)!
        const t = now(resource)
        const candidates = pinned(resource, query, (key) => table.get(key), undefined) ?? table.values()
        const collected = Query.collector(query)
        for (const entry of candidates) {
          if (!resource.hasTimeouts || !isExpired(entry, t)) collected.add(entry.state)
        }
        return Effect.succeed(collected.done())
      })

    const self: DataLayer.Service = { create, update, destroy, get, read, keepAlive, events, subscribe }
    if (options.context !== undefined) context = options.context(self)
    return self
  })
