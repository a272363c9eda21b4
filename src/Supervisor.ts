/**
 * The supervisor: the scoped owner of every record fiber of a data layer.
 *
 * It spawns record servers into a `FiberSet` tied to the data layer's
 * `Scope`, so closing the scope interrupts every record fiber; it applies the
 * restart policy when a record crashes, with OTP's restart intensity (more
 * than `maxRestarts` restarts within `within` removes the record and
 * publishes `Failed`); and it ends records idle past their inactivity timeout
 * or older than their maximum lifetime, through their primary destroy action,
 * inside their own fiber.
 *
 * **Costs**: activity is O(1) (a timestamp written on the record); no timer
 * is armed per record or per call. One fiber per resource with timeouts
 * sleeps until the earliest deadline, kept in a binary heap (O(log n) per
 * deadline). A record that was active since its deadline was queued is
 * re-queued once when that deadline passes, so the work grows with what
 * expires or reaches a deadline, not with the number of calls. All time is read from Effect's
 * `Clock`, so `TestClock` drives expiry in tests.
 *
 * @since 0.1.0
 */
import {
  type Cause,
  type Clock,
  Context,
  Deferred,
  Effect,
  Exit,
  type Fiber,
  FiberSet,
  Scheduler,
  type Scope,
  type Tracer
} from "effect"
import { StoreClosed, type StoreError } from "./Errors.js"
import type * as Event from "./Event.js"
import { Deadlines } from "./internal/deadlines.js"
import type { Compiled } from "./internal/resource.js"
import { recordScheduler } from "./internal/scheduler.js"
import type * as Metrics from "./Metrics.js"
import type * as Registry from "./Registry.js"
import * as Server from "./Server.js"

/**
 * A supervisor of record fibers.
 *
 * **Example** (Reporting the fibers running)
 *
 * ```ts
 * import { Effect } from "effect"
 * import type { Supervisor } from "effect-gen-server"
 *
 * const report = (supervisor: Supervisor.Supervisor) =>
 *   Effect.flatMap(supervisor.size, (n) => Effect.log(`${n} fibers running`))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Supervisor {
  /** Starts a record server running the create action; resolves with the created record. */
  readonly spawn: (
    resource: Compiled,
    createInput: Server.CreateInput,
    chain: Server.Chain,
    now: number,
    /** The caller's span, which the create action's span continues. */
    span?: Tracer.AnySpan | undefined
  ) => Effect.Effect<any, StoreError>
  /** The number of record fibers running. */
  readonly size: Effect.Effect<number>
  /**
   * A time before which no record of the resource is past its deadline
   * (`Infinity` when none has a deadline): every deadline at or before it
   * is still queued. Records whose deadline the supervisor has acted on have
   * left the registry's scans.
   */
  readonly nextDeadline: (resource: string) => number
}

/**
 * Whether a record is past its inactivity or lifetime deadline at `now`. An
 * expired record is never observable, even while its expiry is in progress.
 *
 * **Example** (Checking before serving)
 *
 * ```ts
 * import { Server, Supervisor } from "effect-gen-server"
 *
 * declare const server: Server.RecordServer
 * Supervisor.isExpired(server, 60_000)
 * ```
 *
 * @category expiry
 * @since 0.1.0
 */
export const isExpired = (
  server: Pick<Server.RecordServer, "resource" | "createdAt" | "lastActivity">,
  now: number
): boolean => {
  const { idleMillis, lifetimeMillis } = server.resource
  return (lifetimeMillis !== undefined && now >= server.createdAt + lifetimeMillis) ||
    (idleMillis !== undefined && now >= server.lastActivity + idleMillis)
}

/**
 * Records direct activity on a record at `now`: O(1), no timer touched.
 *
 * **Example** (A keep-alive)
 *
 * ```ts
 * import { Server, Supervisor } from "effect-gen-server"
 *
 * declare const server: Server.RecordServer
 * Supervisor.touch(server, 1_000)
 * ```
 *
 * @category expiry
 * @since 0.1.0
 */
export const touch = (server: Pick<Server.RecordServer, "lastActivity">, now: number): void => {
  if (now > server.lastActivity) server.lastActivity = now
}

interface Wheel {
  readonly idle: Deadlines<Server.RecordServer>
  readonly lifetime: Deadlines<Server.RecordServer>
  /** Completed to wake the expiry fiber early: a deadline earlier than the one it sleeps for arrived. */
  wake: Deferred.Deferred<void> | undefined
  /** The deadline the expiry fiber sleeps until (`Infinity`: until woken). */
  until: number
}

/**
 * The monotonic time of a clock in milliseconds, for measuring durations.
 *
 * **Example** (Timing something)
 *
 * ```ts
 * import { Clock, Effect } from "effect"
 * import { Supervisor } from "effect-gen-server"
 *
 * const elapsed = Clock.clockWith((clock) => Effect.sync(() => Supervisor.millis(clock)))
 * ```
 *
 * @category expiry
 * @since 0.1.0
 */
export const millis = (clock: Clock.Clock): number => Number(clock.monotonicTimeNanosUnsafe()) / 1e6

const wheelLoop = (resource: Compiled, wheel: Wheel, clock: Clock.Clock) =>
  Effect.gen(function*() {
    const idleMillis = resource.idleMillis ?? 0
    while (true) {
      const now = clock.currentTimeMillisUnsafe()
      while ((wheel.lifetime.peek() ?? Infinity) <= now) {
        const server = wheel.lifetime.pop()!
        if (server.status === "live") Server.expire(server, "lifetime")
      }
      while ((wheel.idle.peek() ?? Infinity) <= now) {
        const server = wheel.idle.pop()!
        if (server.status !== "live") continue
        const deadline = server.lastActivity + idleMillis
        if (deadline <= now) Server.expire(server, "inactivity")
        else wheel.idle.push(server, deadline)
      }
      const next = Math.min(wheel.idle.peek() ?? Infinity, wheel.lifetime.peek() ?? Infinity)
      const wake = Deferred.makeUnsafe<void>()
      wheel.wake = wake
      wheel.until = next
      yield* next === Infinity ? Deferred.await(wake) : Effect.raceFirst(Effect.sleep(next - now), Deferred.await(wake))
      wheel.wake = undefined
      wheel.until = Infinity
    }
  })

/**
 * Creates a supervisor whose record fibers live in the current `Scope`.
 * `context` gives the services hooks run with (the data layer's context).
 *
 * **Example** (What the GenServer data layer does)
 *
 * ```ts
 * import { Clock, Context, Effect } from "effect"
 * import { Registry, Supervisor } from "effect-gen-server"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const clock = yield* Clock.Clock
 *   const supervisor = yield* Supervisor.make({
 *     registry: Registry.make([]),
 *     resources: [],
 *     publish: () => {},
 *     context: () => Context.empty(),
 *     clock,
 *     metrics: new Map()
 *   })
 *   return yield* supervisor.size
 * }))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (options: {
  readonly registry: Registry.Registry
  readonly resources: ReadonlyArray<Compiled>
  readonly publish: (event: Event.Event) => void
  readonly context: () => Context.Context<never>
  /** The clock of deadlines and restart intensity. */
  readonly clock: Clock.Clock
  readonly metrics: ReadonlyMap<string, Metrics.ResourceMetrics>
}): Effect.Effect<Supervisor, never, Scope.Scope> =>
  Effect.gen(function*() {
    const fibers = yield* FiberSet.make<void, never>()
    const runFork = yield* FiberSet.runtime(fibers)<never>()
    const wheels = new Map<string, Wheel>()
    for (const resource of options.resources) {
      if (!resource.hasTimeouts) continue
      const wheel: Wheel = {
        idle: new Deadlines({ get: (s) => s.idleSlot, set: (s, i) => (s.idleSlot = i) }),
        lifetime: new Deadlines({ get: (s) => s.lifetimeSlot, set: (s, i) => (s.lifetimeSlot = i) }),
        wake: undefined,
        until: Infinity
      }
      wheels.set(resource.name, wheel)
      runFork(wheelLoop(resource, wheel, options.clock))
    }

    const started = (server: Server.RecordServer) => {
      const wheel = wheels.get(server.resource.name)
      if (wheel === undefined) return
      const { idleMillis, lifetimeMillis } = server.resource
      let earliest = Infinity
      if (lifetimeMillis !== undefined) {
        wheel.lifetime.push(server, server.createdAt + lifetimeMillis)
        earliest = server.createdAt + lifetimeMillis
      }
      if (idleMillis !== undefined) {
        wheel.idle.push(server, server.lastActivity + idleMillis)
        earliest = Math.min(earliest, server.lastActivity + idleMillis)
      }
      const wake = wheel.wake
      if (earliest < wheel.until && wake !== undefined) {
        // cleared before waking: the expiry fiber runs at once, inside this call, and may go back
        // to sleep with a new wake signal, which must not be overwritten when this call returns
        wheel.wake = undefined
        wheel.until = Infinity
        Deferred.doneUnsafe(wake, Effect.void)
      }
    }

    const stopped = (server: Server.RecordServer) => {
      const wheel = wheels.get(server.resource.name)
      if (wheel === undefined) return
      wheel.idle.remove(server)
      wheel.lifetime.remove(server)
    }

    const expired = (server: Server.RecordServer) =>
      server.resource.hasTimeouts && isExpired(server, options.clock.currentTimeMillisUnsafe())

    const restart = (server: Server.RecordServer, _cause: Cause.Cause<unknown>): Effect.Effect<boolean> =>
      Effect.gen(function*(): Generator<any, boolean, any> {
        const resource = server.resource
        const now = options.clock.currentTimeMillisUnsafe()
        const recent = (server.restarts ?? []).filter((t) => now - t < resource.withinMillis)
        recent.push(now)
        server.restarts = recent
        if (resource.resource.restart === "never" || recent.length > resource.maxRestarts) {
          Server.fail(server)
          return false
        }
        if (resource.resource.restart === "lastState") {
          Server.resumed(server)
          return true
        }
        const result = yield* Server.recreate(server)
        if (result._tag === "Ok") return true
        if (result._tag === "Crashed") return yield* restart(server, result.cause)
        Server.fail(server)
        return false
      }) as Effect.Effect<boolean>

    // one context per resource, shared by its record servers
    const now = () => millis(options.clock)
    const contexts = new Map<string, Server.ServerContext>()
    for (const resource of options.resources) {
      contexts.set(resource.name, {
        table: options.registry.tables.get(resource.name)!,
        publish: options.publish,
        started,
        restart,
        metrics: options.metrics.get(resource.name)!,
        now,
        expired,
        stopped
      })
    }

    // record fibers run with the hooks' services and the record scheduler: a fork runtime made in that context, once
    const recordContext = () => {
      const services = options.context()
      return Context.add(services, Scheduler.Scheduler, recordScheduler(Context.get(services, Scheduler.Scheduler)))
    }
    let runRecord: ((effect: Effect.Effect<void, never, any>) => Fiber.Fiber<void, never>) | undefined
    const recordRuntime: Effect.Effect<(effect: Effect.Effect<void, never, any>) => Fiber.Fiber<void, never>> = Effect
      .suspend(() =>
        runRecord !== undefined
          ? Effect.succeed(runRecord)
          : Effect.map(
            Effect.provideContext(FiberSet.runtime(fibers)<any>(), recordContext()) as Effect.Effect<any>,
            (run) => (runRecord = run)
          )
      )

    const closedWhileCreating = () =>
      Exit.fail(new StoreClosed({ message: "the store was closed while the record was being created" }))

    const spawn = (
      resource: Compiled,
      createInput: Server.CreateInput,
      chain: Server.Chain,
      now: number,
      span?: Tracer.AnySpan | undefined
    ): Effect.Effect<any, StoreError> =>
      Effect.flatMap(recordRuntime, (run) => {
        const deferred = Deferred.makeUnsafe<any, StoreError>()
        const ctx = contexts.get(resource.name)!
        // the server (its mailbox) is made inside its fiber, so the mailbox wakes it on the record scheduler
        const fiber = run(
          Effect.flatMap(
            Server.make(resource, createInput, now),
            (server) => Server.run(server, { _tag: "Create", deferred, chain, span }, ctx)
          )
        )
        // a fiber interrupted before it ran (the scope closing) never replies: the caller must not hang
        const forget = fiber.addObserver(() => Deferred.doneUnsafe(deferred, closedWhileCreating()))
        return Effect.ensuring(Deferred.await(deferred), Effect.sync(forget))
      })

    const nextDeadline = (resource: string): number => {
      const wheel = wheels.get(resource)
      // a queued deadline is never later than the record's own (activity only moves it later)
      return wheel === undefined ? Infinity : Math.min(wheel.idle.peek() ?? Infinity, wheel.lifetime.peek() ?? Infinity)
    }

    return {
      spawn,
      nextDeadline,
      size: FiberSet.size(fibers)
    }
  })
