/**
 * The supervisor: the scoped owner of every record fiber of a data layer.
 *
 * It spawns record fibers (on the record scheduler, in a `FiberSet` owned by
 * the layer's scope), tracks their deadlines and the due times of their
 * schedules (one expiry fiber per resource with timeouts, or once a record
 * of it schedules something, sleeping on the layer's `Clock` until the
 * earliest) and decides what a crash leads to: the restart policy and
 * OTP's restart intensity. Closing the scope interrupts every record fiber
 * and the expiry fibers.
 *
 * @internal
 */
import {
  Cause,
  type Clock,
  Context,
  Deferred,
  Effect,
  type Fiber,
  FiberSet,
  Scheduler,
  type Scope,
  type Tracer
} from "effect"
import type { StoreError } from "../../Errors.js"
import type * as Event from "../../Event.js"
import type * as Metrics from "../../Metrics.js"
import type { Chain, WaitGraph } from "../record/deadlock.js"
import * as Lifecycle from "../record/lifecycle.js"
import * as OperationId from "../record/operationId.js"
import * as Schedules from "../record/schedules.js"
import * as Write from "../record/write.js"
import type { Compiled } from "../resource.js"
import { Deadlines } from "./deadlines.js"
import * as Mailbox from "./mailbox.js"
import type * as Registry from "./registry.js"
import { recordScheduler } from "./scheduler.js"
import * as Server from "./server.js"

/** @internal */
export interface Supervisor {
  /**
   * Hands the supervisor the context record fibers run hooks with; called
   * once, by the data layer, before its first create.
   */
  readonly provide: (context: Context.Context<never>) => Effect.Effect<void>
  /** Starts a record server running the create action; resolves with the created record. */
  readonly spawn: (
    resource: Compiled,
    id: number,
    createInput: Server.CreateInput,
    chain: Chain,
    now: number,
    /** The caller's span, which the create action's span continues. */
    span: Tracer.AnySpan | undefined,
    /** The operation id the caller chose, if any. */
    op: string | undefined
  ) => Effect.Effect<any, StoreError>
  /**
   * Registers a stored record of a durable resource, hibernated (no fiber):
   * what a data layer does with each stored record when it starts.
   */
  readonly restore: (resource: Compiled, id: number, stored: Stored) => Server.RecordServer
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

/** A stored record, decoded. @internal */
export interface Stored {
  readonly key: string
  readonly state: unknown
  readonly createdAt: number
  readonly lastActivity: number
  /** The version of its stored row. */
  readonly version: number
  readonly createInput: Server.CreateInput | undefined
  readonly schedules: ReadonlyArray<Schedules.Pending>
}

interface Wheel {
  readonly idle: Deadlines<Server.RecordServer>
  readonly lifetime: Deadlines<Server.RecordServer>
  /** Awake records, by the time they may hibernate (when the resource has `hibernateAfter`). */
  readonly hibernate: Deadlines<Server.RecordServer>
  /** Records with schedules, by the time the next is due (or retried). */
  readonly due: Deadlines<Server.RecordServer>
  /** Completed to wake the expiry fiber early: a deadline earlier than the one it sleeps for arrived. */
  wake: Deferred.Deferred<void> | undefined
  /** The deadline the expiry fiber sleeps until (`Infinity`: until woken). */
  until: number
}

/**
 * Handles the end of a record's fiber (`Mailbox.ended`). A module-level
 * function: the observer's closure holds the server alone, where one made in
 * `spawn` would share (and keep for the record's life) the context of the
 * create request.
 */
const observe = (fiber: Fiber.Fiber<void, never>, server: Server.RecordServer): void => {
  fiber.addObserver((exit) => Mailbox.ended(server, exit))
}

/** Monotonic milliseconds of a clock. @internal */
export const millis = (clock: Clock.Clock): number => Number(clock.monotonicTimeNanosUnsafe()) / 1e6

const wheelLoop = (resource: Compiled, wheel: Wheel, clock: Clock.Clock) =>
  Effect.gen(function*() {
    while (true) {
      const now = clock.currentTimeMillisUnsafe()
      while ((wheel.lifetime.peek() ?? Infinity) <= now) {
        const server = wheel.lifetime.pop()!
        // the deadline that passed first: found late (a process down past both), it may be the other one
        if (server.status === "live") Server.expire(server, Lifecycle.expiryReason(server))
      }
      while ((wheel.idle.peek() ?? Infinity) <= now) {
        const server = wheel.idle.pop()!
        if (server.status !== "live") continue
        const deadline = Lifecycle.idleDeadline(resource, server.lastActivity)
        if (deadline <= now) Server.expire(server, Lifecycle.expiryReason(server))
        else wheel.idle.push(server, deadline)
      }
      while ((wheel.due.peek() ?? Infinity) <= now) {
        const server = wheel.due.pop()!
        if (server.status !== "live") continue
        fireDue(server, now)
        const next = Schedules.nextDue(server)
        if (next !== Infinity) wheel.due.push(server, next)
      }
      while ((wheel.hibernate.peek() ?? Infinity) <= now) {
        const server = wheel.hibernate.pop()!
        if (server.status !== "live" || server.dispatcher === undefined) continue
        const deadline = Lifecycle.hibernatesAt(resource, server.lastActivity)
        // served after what the mailbox holds: a busy record stays awake and is tracked again
        if (deadline <= now) Server.deliver(server, Server.request.hibernate)
        else wheel.hibernate.push(server, deadline)
      }
      const next = Math.min(
        wheel.idle.peek() ?? Infinity,
        wheel.lifetime.peek() ?? Infinity,
        wheel.hibernate.peek() ?? Infinity,
        wheel.due.peek() ?? Infinity
      )
      const wake = Deferred.makeUnsafe<void>()
      wheel.wake = wake
      wheel.until = next
      yield* next === Infinity ? Deferred.await(wake) : Effect.raceFirst(Effect.sleep(next - now), Deferred.await(wake))
      wheel.wake = undefined
      wheel.until = Infinity
    }
  })

/** Hands the record every schedule due at `now` that is not running yet, earliest first. */
const fireDue = (server: Server.RecordServer, now: number) => {
  for (const p of Schedules.takeDue(server, now)) Server.deliver(server, Server.request.fire(p))
}

/** @internal */
export const make = (options: {
  readonly registry: Registry.Registry<Server.RecordServer>
  readonly graph: WaitGraph
  readonly resources: ReadonlyArray<Compiled>
  readonly publish: (event: Event.Event) => void
  /** The clock of deadlines and restart intensity. */
  readonly clock: Clock.Clock
  readonly metrics: ReadonlyMap<string, Metrics.ResourceMetrics>
  /** Where each durable resource keeps its records (`undefined` for the others). */
  readonly persist?: ((resource: Compiled) => Server.Persistence | undefined) | undefined
}): Effect.Effect<Supervisor, never, Scope.Scope> =>
  Effect.gen(function*() {
    const fibers = yield* FiberSet.make<void, never>()
    const runFork = yield* FiberSet.runtime(fibers)<never>()
    const wheels = new Map<string, Wheel>()
    /** The resource's wheel and its expiry fiber, started the first time a record needs one. */
    const wheelOf = (resource: Compiled): Wheel => {
      let wheel = wheels.get(resource.name)
      if (wheel !== undefined) return wheel
      wheel = {
        idle: new Deadlines({ get: (s) => s.idleSlot, set: (s, i) => (s.idleSlot = i) }),
        lifetime: new Deadlines({ get: (s) => s.lifetimeSlot, set: (s, i) => (s.lifetimeSlot = i) }),
        hibernate: new Deadlines({ get: (s) => s.hibernateSlot, set: (s, i) => (s.hibernateSlot = i) }),
        due: new Deadlines({ get: (s) => s.dueSlot, set: (s, i) => (s.dueSlot = i) }),
        wake: undefined,
        until: Infinity
      }
      wheels.set(resource.name, wheel)
      runFork(wheelLoop(resource, wheel, options.clock))
      return wheel
    }
    for (const resource of options.resources) {
      if (resource.hasTimeouts || resource.hibernateMillis !== undefined) wheelOf(resource)
    }

    const started = (server: Server.RecordServer) => {
      const wheel = wheels.get(server.resource.name)
      if (wheel === undefined) return
      const lifetime = Lifecycle.lifetimeDeadline(server.resource, server.createdAt)
      const idle = Lifecycle.idleDeadline(server.resource, server.lastActivity)
      if (lifetime !== Infinity) wheel.lifetime.push(server, lifetime)
      if (idle !== Infinity) wheel.idle.push(server, idle)
      const earliest = Math.min(lifetime, idle, awake(wheel, server))
      alarm(wheel, earliest)
    }

    /** Tracks when an awake record may hibernate; that time, or `Infinity`. */
    const awake = (wheel: Wheel, server: Server.RecordServer): number => {
      const at = Lifecycle.hibernatesAt(server.resource, server.lastActivity)
      if (at !== Infinity) wheel.hibernate.push(server, at)
      return at
    }

    /** Wakes the expiry fiber when `earliest` comes before the deadline it sleeps until. */
    const alarm = (wheel: Wheel, earliest: number) => {
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
      if (server.schedules.length > 0) {
        server.ctx.metrics.pending(-server.schedules.length)
        server.schedules = Schedules.none
      }
      server.retries = undefined
      const wheel = wheels.get(server.resource.name)
      if (wheel === undefined) return
      wheel.idle.remove(server)
      wheel.lifetime.remove(server)
      wheel.hibernate.remove(server)
      wheel.due.remove(server)
    }

    /** The record's schedules changed: tracked by when the next is due; retries of schedules gone are dropped. */
    const scheduled = (server: Server.RecordServer, previous: ReadonlyArray<Schedules.Pending>) => {
      if (server.schedules.length !== previous.length) {
        server.ctx.metrics.pending(server.schedules.length - previous.length)
      }
      Schedules.prune(server)
      track(server)
    }

    const track = (server: Server.RecordServer) => {
      if (server.status === "stopped") return
      const next = Schedules.nextDue(server)
      if (next === Infinity) {
        wheels.get(server.resource.name)?.due.remove(server)
        return
      }
      const wheel = wheelOf(server.resource)
      wheel.due.push(server, next)
      alarm(wheel, next)
    }

    /**
     * A scheduled run ended: done, or failed and retried after the
     * resource's `scheduleRetry` delay, or given up once it ends (removed in
     * a commit, `ScheduleFailed`).
     */
    const fired: Server.ServerContext["fired"] = (server, pending, failure) =>
      Effect.gen(function*() {
        server.ctx.metrics.fired(failure === undefined)
        const live = server.status === "live"
        const next = yield* Schedules.ended(server.resource, server, pending, failure, time(), live)
        if (next === "giveUp") {
          yield* Schedules.gaveUp(server.resource, server.key, pending, failure!)
          const done = Server.giveUp(server, pending, failure!)
          if (Effect.isEffect(done)) yield* done
        }
        track(server)
      })

    const stayAwake = (server: Server.RecordServer) => {
      const wheel = wheels.get(server.resource.name)
      if (wheel !== undefined) alarm(wheel, awake(wheel, server))
    }

    /** A hibernated record's new fiber: what arrived while it slept, then what comes next. */
    const wake = (server: Server.RecordServer) => {
      server.ctx.metrics.sleep(-1)
      const fiber = runRecord!(Mailbox.resume(server))
      observe(fiber, server)
      stayAwake(server)
    }

    const time = () => options.clock.currentTimeMillisUnsafe()
    const expired = (server: Server.RecordServer) => server.resource.hasTimeouts && Lifecycle.isExpired(server, time())

    /** The restart policy and OTP's intensity: `true` when the record lives on. */
    const restart = (server: Server.RecordServer, _cause: Cause.Cause<unknown>): Effect.Effect<boolean> =>
      Effect.gen(function*(): Generator<any, boolean, any> {
        const resource = server.resource
        // a durable record loaded without a create input it can decode resumes its last state
        const decision = Lifecycle.restart(
          resource,
          resource.restart,
          server.restarts ??= [],
          time(),
          server.createInput !== undefined
        )
        if (decision === "fail") {
          yield* unstore(server)
          Server.fail(server)
          return false
        }
        if (decision === "lastState") {
          Server.resumed(server)
          return true
        }
        const result = yield* Server.recreate(server)
        if (result._tag === "Ok") return true
        if (result._tag === "Crashed") return yield* restart(server, result.cause)
        if (result._tag === "Unstored") {
          // a storage failure is a refusal: the record keeps its last state, its row is left alone (DESIGN "Faults")
          yield* Write.unstoredRestart(resource, server.key, result.outcome)
          Server.resumed(server)
          return true
        }
        // refused by its create action: nothing was written, the record fails
        yield* unstore(server)
        Server.fail(server)
        return false
      }) as Effect.Effect<boolean>

    /** A durable record removed after a crash leaves storage too (else the next start would bring it back). */
    const unstore = (server: Server.RecordServer): Effect.Effect<void> => {
      const persist = server.ctx.persist
      if (persist === undefined) return Effect.void
      return Effect.catchCause(persist.removed(server, OperationId.make(), "failed"), (cause) =>
        Effect.logWarning(`${server.resource.name} failed and its stored row could not be removed`).pipe(
          Effect.annotateLogs({ resource: server.resource.name, key: server.key, cause: Cause.pretty(cause) })
        ))
    }

    // one context per resource, shared by its record servers
    const now = () =>
      millis(options.clock)
    const contexts = new Map<string, Server.ServerContext>()
    for (const resource of options.resources) {
      contexts.set(resource.name, {
        table: options.registry.tables.get(resource.name)!,
        graph: options.graph,
        publish: options.publish,
        started,
        restart,
        metrics: options.metrics.get(resource.name)!,
        now,
        time,
        expired,
        stopped,
        next: Mailbox.next,
        wake,
        stayAwake,
        persist: options.persist?.(resource),
        scheduled,
        fired
      })
    }

    // record fibers run with the hooks' services and the record scheduler: a fork runtime made in that context
    let runRecord: ((effect: Effect.Effect<void, never, any>) => Fiber.Fiber<void, never>) | undefined
    const provide = (context: Context.Context<never>): Effect.Effect<void> => {
      const services = Context.add(
        context,
        Scheduler.Scheduler,
        recordScheduler(Context.get(context, Scheduler.Scheduler))
      )
      return Effect.map(
        Effect.provideContext(FiberSet.runtime(fibers)<any>(), services) as Effect.Effect<any>,
        (run) => {
          runRecord = run
        }
      )
    }

    const spawn: Supervisor["spawn"] = (resource, id, createInput, chain, now, span, op) =>
      Effect.suspend(() => {
        const run = runRecord!
        const deferred = Deferred.makeUnsafe<any, StoreError>()
        const server = new Server.RecordServer(id, resource, createInput, contexts.get(resource.name)!, now)
        const first = Server.request.create(deferred, chain, span, op) as Extract<Server.Request, { _tag: "Create" }>
        server.current = first
        // its mailbox rings the record's fiber through that fiber's dispatcher, on the record scheduler
        const fiber = run(Mailbox.run(server, first))
        // also for a fiber interrupted before it ran (the scope closing): the caller must not hang
        observe(fiber, server)
        return Deferred.await(deferred)
      })

    const nextDeadline = (resource: string): number => {
      const wheel = wheels.get(resource)
      // a queued deadline is never later than the record's own (activity only moves it later)
      return wheel === undefined ? Infinity : Math.min(wheel.idle.peek() ?? Infinity, wheel.lifetime.peek() ?? Infinity)
    }

    const restore: Supervisor["restore"] = (resource, id, stored) => {
      const server = new Server.RecordServer(
        id,
        resource,
        stored.createInput,
        contexts.get(resource.name)!,
        stored.createdAt
      )
      server.lastActivity = server.storedActivity = stored.lastActivity
      server.stored = stored.version
      Server.restore(server, stored.state, stored.key, stored.schedules)
      return server
    }

    return {
      provide,
      spawn,
      restore,
      nextDeadline,
      size: FiberSet.size(fibers)
    }
  })
