/**
 * The memory data layer: records in a `Map`, no fibers. Actions run in the
 * caller's fiber under a per-record lock, with the same admission,
 * pipeline, validation, atomicity, events, errors and deadlock detection as
 * the GenServer data layer.
 *
 * @internal
 */
import { Deferred, Effect, FiberSet, Semaphore } from "effect"
import { InvalidResource, type NotFound, type StoreClosed, type StoreError, ValidationError } from "../Errors.js"
import * as Query from "../Query.js"
import * as Admission from "./admission.js"
import type * as DataLayer from "./contract.js"
import * as Hub from "./events.js"
import { Deadlines } from "./fiber/deadlines.js"
import { pinned } from "./query.js"
import { type Activation, type Chain, CurrentChain, WaitGraph } from "./record/deadlock.js"
import * as Errors from "./record/errors.js"
import * as Events from "./record/events.js"
import * as Lifecycle from "./record/lifecycle.js"
import * as Outcome from "./record/outcome.js"
import * as Schedules from "./record/schedules.js"
import * as Write from "./record/write.js"
import type { Compiled, CompiledAction } from "./resource.js"

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
  /** The key the running action claimed (a create, a key change) until it commits or gives it back. */
  claimed: string | undefined
  activation: Activation | undefined
  /** Its schedules (`Schedules.Holder`), and its position in the layer's heap of due times. */
  schedules: ReadonlyArray<Schedules.Pending>
  firing: Set<Schedules.Pending> | undefined
  retries: Map<Schedules.Pending, Schedules.Retry> | undefined
  dueSlot: number
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
    const { events, metrics, publish, subscribe } = yield* Hub.make(compiled.keys(), options.eventBuffer, own)
    const metricsOf = (resource: Compiled) => metrics.get(resource.name)!
    const tables = new Map([...compiled.keys()].map((name) => [name, new Map<string, Entry>()]))
    /** Keys held by running actions, not yet committed (a create, a key change). */
    const reserved = new Map([...compiled.keys()].map((name) => [name, new Map<string, Entry>()]))
    const graph = new WaitGraph()
    yield* Effect.addFinalizer(() => Effect.sync(() => (gate.closed = true)))
    let ids = 0
    let context = own

    const keyOf = (entry: Entry) => Events.keyObject(entry.resource, entry.state)
    const now = (resource: Compiled) => resource.hasTimeouts ? clock.currentTimeMillisUnsafe() : 0

    /** Removes a record found past its deadline (no destroy action): `Destroyed`, for the deadline that passed first. */
    const lapsed = (entry: Entry, _t: number) => {
      entry.alive = false
      tables.get(entry.resource.name)!.delete(entry.key)
      // its schedules go with it
      scheduled(entry, Schedules.none)
      publish(Events.destroyed(entry.resource, entry.state, Lifecycle.expiryReason(entry)))
    }

    /** The record holding a key, unless it is past its deadline (then it is removed). */
    const holderOf = (resource: Compiled, key: string): Entry | undefined => {
      const entry = tables.get(resource.name)!.get(key)
      if (entry === undefined || !resource.hasTimeouts) return entry
      const t = now(resource)
      if (!Lifecycle.isExpired(entry, t)) return entry
      lapsed(entry, t)
      return undefined
    }

    /** Whether a fiber running for `chain` runs on behalf of the entry's running action. */
    const isOwn = (entry: Entry, chain: Chain) => graph.runsFor(chain, entry.activation)

    const locate = (
      resource: Compiled,
      key: unknown,
      chain: Chain
    ): { readonly entry: Entry; readonly state: any } | NotFound | ValidationError => {
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
        if (Lifecycle.isExpired(entry, t)) {
          lapsed(entry, t)
          return Errors.notFound(resource, k)
        }
        Lifecycle.touchUnsafe(entry, t)
      }
      return { entry, state: entry.pending !== undefined && isOwn(entry, chain) ? entry.pending : entry.state }
    }

    /** What a call hands the record's run: its caller's attached chain, which the action's extends. */
    interface Caller {
      readonly chain: Chain
    }

    /**
     * A memory record as the write pipeline (`record/write.ts`) sees it: its
     * state in its entry, its key claimed in the table of keys held by
     * running actions, its actions run in the caller's fiber under its lock
     * as one activation of it, nothing stored. A record found past its
     * deadline is removed when touched (`Destroyed`, no destroy action).
     */
    const port: Write.Port<Entry, Caller, never> = {
      committed: (entry) => entry.alive ? entry.state : undefined,
      schedules: (entry) => entry.schedules,
      time: () => clock.currentTimeMillisUnsafe(),
      key: (entry) => entry.alive ? entry.key : "",
      run: (entry, _action, caller, effect) =>
        Effect.map(
          Effect.exit(effect.pipe(
            Effect.provideService(CurrentChain, [...caller.chain, entry.activation!]),
            Effect.provideContext(context)
          )),
          Outcome.fromExit
        ),
      claim: (entry, key, state) => {
        const resource = entry.resource
        const table = reserved.get(resource.name)!
        const holder = holderOf(resource, key) ?? table.get(key)
        if (holder !== undefined && holder !== entry) {
          return Outcome.refused(Errors.alreadyExists(resource, Events.keyObject(resource, state)))
        }
        table.set(key, entry)
        entry.claimed = key
        return claimed
      },
      release: (entry, key) => {
        const table = reserved.get(entry.resource.name)!
        if (table.get(key) === entry) table.delete(key)
        if (entry.claimed === key) entry.claimed = undefined
      },
      pending: (entry, state) => {
        entry.pending = state
      },
      // the activation ends with the call (see `run`)
      settle: () => {},
      expired: (entry) => {
        if (!entry.alive) return true
        if (!entry.resource.hasTimeouts) return false
        const t = now(entry.resource)
        if (!Lifecycle.isExpired(entry, t)) return false
        lapsed(entry, t)
        return true
      },
      commit: (entry, change) => {
        // nothing to store: the activity is the caller's, recorded when it called
        if (change._tag === "Unchanged") return committed
        const resource = entry.resource
        const table = tables.get(resource.name)!
        switch (change._tag) {
          case "Create": {
            if (holderOf(resource, change.key) !== undefined) {
              return Outcome.refused(Errors.alreadyExists(resource, Events.keyObject(resource, change.state)))
            }
            // a new record's deadlines count from its commit
            const t = now(resource)
            entry.createdAt = entry.lastActivity = t
            entry.key = change.key
            entry.state = Write.freeze(change.state)
            entry.alive = true
            table.set(change.key, entry)
            if (change.schedules !== undefined) scheduled(entry, change.schedules)
            break
          }
          case "Update": {
            if (change.key !== entry.key) {
              table.delete(entry.key)
              table.set(change.key, entry)
              entry.key = change.key
            }
            entry.state = Write.freeze(change.state)
            if (change.schedules !== undefined) scheduled(entry, change.schedules)
            break
          }
          case "Remove": {
            entry.alive = false
            table.delete(entry.key)
            scheduled(entry, Schedules.none)
            break
          }
        }
        port.release(entry, change._tag === "Remove" ? entry.key : change.key)
        if (change.event !== undefined) publish(change.event)
        return committed
      }
    }
    const claimed: Outcome.Outcome<void, never> = Outcome.ok(undefined)
    const committed: Outcome.Outcome<Write.Committed, never> = Outcome.ok(undefined)

    /**
     * Runs a write on `entry` (a new entry for a create) under its lock, as
     * one activation of it, refusing it with `ReentrantCall` when waiting for
     * the lock would deadlock.
     */
    const run = <A>(
      entry: Entry,
      action: CompiledAction,
      write: (caller: Caller) => Outcome.Step<A>
    ): Effect.Effect<A, StoreError> =>
      Effect.withFiber((fiber) => {
        const chain = graph.attached(fiber.getRef(CurrentChain))
        const caller = graph.caller(chain)
        if (caller !== undefined && graph.wouldDeadlock(caller, entry.id)) {
          return Effect.fail(Errors.reentrant(entry.resource, keyOf(entry), action.name))
        }
        // however the call ends, also when its caller is interrupted (and the action with it, which runs in the
        // caller's fiber): the activation ends, the pending state is cleared and a key the action claimed is given back
        const ended = Effect.sync(() => {
          if (entry.claimed !== undefined) port.release(entry, entry.claimed)
          entry.pending = undefined
          if (entry.activation !== undefined) {
            graph.end(entry.activation)
            entry.activation = undefined
          }
        })
        const body = Effect.ensuring(
          Effect.suspend((): Effect.Effect<A, StoreError> => {
            if (gate.closed) return Effect.fail(Admission.storeClosed())
            if (action.kind !== "create" && !entry.alive) {
              return Effect.fail(Errors.notFound(entry.resource, keyOf(entry)))
            }
            entry.activation = graph.begin(entry.id)
            // the state is read once the record's lock is held
            // a step's services are its hooks', which `port.run` provides: none is left to the caller
            const step = Outcome.toEffect(write({ chain })) as Effect.Effect<Outcome.Outcome<A>>
            return Effect.flatMap(step, (done): Effect.Effect<A, StoreError> =>
              done._tag === "Ok"
                ? Effect.succeed(done.value)
                : done._tag === "Refused"
                ? Effect.fail(done.error)
                : Effect.fail(Errors.crashed(entry.resource, keyOf(entry), done.cause)))
          }),
          ended
        )
        const locked = entry.lock.withPermits(1)(body)
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
          claimed: undefined,
          activation: undefined,
          schedules: Schedules.none,
          firing: undefined,
          retries: undefined,
          dueSlot: -1
        }
        return run(entry, action, (caller) => Write.create(port, entry, action, caller, data, decoded, undefined))
      })

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
        return run(entry, action, (caller) => Write.update(port, entry, action, caller, decoded, undefined))
      })

    const destroy: DataLayer.Service["destroy"] = (resourceName, key, actionName) =>
      Effect.withFiber((fiber) => {
        const admitted = admit(resourceName, actionName, "destroy", undefined)
        if (!Admission.isAdmitted(admitted)) return Effect.fail(admitted)
        const { action, resource } = admitted
        const entry = existing(resource, key, fiber.getRef(CurrentChain))
        if (!("lock" in entry)) return Effect.fail(entry)
        return run(entry, action, (caller) => Write.destroy(port, entry, action, caller, "action", undefined))
      })

    const get: DataLayer.Service["get"] = (resourceName, key) =>
      Effect.withFiber((fiber): Effect.Effect<unknown, NotFound | ValidationError | StoreClosed> => {
        const resource = admitRead(resourceName)
        if (!Admission.isCompiled(resource)) return Effect.fail(resource)
        const found = locate(resource, key, fiber.getRef(CurrentChain))
        return "entry" in found ? Effect.succeed(found.state) : Effect.fail(found)
      })

    const keepAlive: DataLayer.Service["keepAlive"] = (resourceName, key) =>
      Effect.suspend((): Effect.Effect<void, NotFound | ValidationError | StoreClosed> => {
        const resource = admitRead(resourceName)
        if (!Admission.isCompiled(resource)) return Effect.fail(resource)
        const found = locate(resource, key, [])
        return "entry" in found ? Effect.void : Effect.fail(found)
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
          if (!resource.hasTimeouts || !Lifecycle.isExpired(entry, t)) collected.add(entry.state)
        }
        return Effect.succeed(collected.done())
      })

    // ---- schedules: one fiber for the layer, sleeping until the earliest due time of any record ----

    const due = new Deadlines<Entry>({ get: (e) => e.dueSlot, set: (e, i) => (e.dueSlot = i) })
    let wake: Deferred.Deferred<void> | undefined
    let until = Infinity

    /** The record's committed schedules: tracked by when the next is due. */
    const scheduled = (entry: Entry, schedules: ReadonlyArray<Schedules.Pending>) => {
      metricsOf(entry.resource).pending(schedules.length - entry.schedules.length)
      entry.schedules = schedules
      Schedules.prune(entry)
      track(entry)
    }

    const track = (entry: Entry) => {
      const next = entry.alive ? Schedules.nextDue(entry) : Infinity
      if (next === Infinity) {
        due.remove(entry)
        return
      }
      due.push(entry, next)
      if (next < until && wake !== undefined) {
        const waking = wake
        wake = undefined
        until = Infinity
        Deferred.doneUnsafe(waking, Effect.void)
      }
    }

    /** Runs a due schedule's action as a call of the record's own, then retries or gives it up if it failed. */
    const fire = (entry: Entry, pending: Schedules.Pending): Effect.Effect<void> => {
      const action = entry.resource.actions.get(pending.action)!
      if (entry.resource.resource.schedulesKeepAlive) Lifecycle.touchUnsafe(entry, clock.currentTimeMillisUnsafe())
      const write = (caller: Caller) =>
        action.kind === "destroy"
          ? Write.destroy(port, entry, action, caller, "action", undefined)
          : Write.update(port, entry, action, caller, pending.input, undefined, pending)
      return Effect.gen(function*() {
        const exit = yield* Effect.exit(
          entry.alive && entry.schedules.includes(pending) ? run(entry, action, write) : Effect.void
        )
        const failure = exit._tag === "Success" ? undefined : Outcome.describe(Outcome.fromExit(exit) as never)
        metricsOf(entry.resource).fired(failure === undefined)
        const time = clock.currentTimeMillisUnsafe()
        const next = yield* Schedules.ended(entry.resource, entry, pending, failure, time, entry.alive)
        if (next === "giveUp") {
          yield* Schedules.gaveUp(entry.resource, entry.key, pending, failure!)
          yield* Effect.ignore(run(entry, action, () => Write.giveUp(port, entry, pending, failure!)))
        }
        track(entry)
      })
    }

    const firing = yield* FiberSet.make<void, never>()
    yield* FiberSet.run(
      firing,
      Effect.gen(function*() {
        while (true) {
          const t = clock.currentTimeMillisUnsafe()
          while ((due.peek() ?? Infinity) <= t) {
            const entry = due.pop()!
            for (const pending of Schedules.takeDue(entry, t)) yield* FiberSet.run(firing, fire(entry, pending))
            track(entry)
          }
          const next = due.peek() ?? Infinity
          const waking = Deferred.makeUnsafe<void>()
          wake = waking
          until = next
          yield* next === Infinity
            ? Deferred.await(waking)
            : Effect.raceFirst(Effect.sleep(next - t), Deferred.await(waking))
          wake = undefined
          until = Infinity
        }
      })
    )

    const schedules: NonNullable<DataLayer.Service["schedules"]> = (resourceName, key) =>
      Effect.suspend((): DataLayer.Listed => {
        const resource = admitRead(resourceName)
        if (!Admission.isCompiled(resource)) return Effect.fail(resource)
        const k = resource.checkKey(key)
        if (k instanceof ValidationError) return Effect.fail(k)
        // a read: not activity
        const entry = holderOf(resource, resource.encodeKey(k))
        return entry === undefined ? Effect.fail(Errors.notFound(resource, k)) : Effect.succeed(Schedules.list(entry))
      })

    const self: DataLayer.Service = { create, update, destroy, get, read, keepAlive, events, subscribe, schedules }
    if (options.context !== undefined) context = options.context(self)
    return self
  })
