/**
 * The cluster's sweeper: a `Singleton` (one runner of the cluster runs it)
 * that every `sweepInterval` sends each record past its stored deadline, or
 * with a schedule due, an `Expire` message (its owner runs the destroy
 * action, or writes back activity it had in memory, and runs the schedules
 * due), and, on a schedule of its own, purges the
 * tombstones no retry can need any more (older than `operationRetention`).
 *
 * A sweep pages through every due row, earliest first, and never waits long
 * for one record: each expiry runs on a fiber of its own, kept in a
 * `FiberMap` by record until it ends, and a sweep waits for it at most
 * {@link patience} (16 at a time) before passing on. A record whose expiry
 * is still running (its destroy hook is slow or stuck, or a long call holds
 * its lock) is passed over by later sweeps rather than sent again, so it
 * holds up neither another record's expiry nor the purge. At most
 * {@link maxInFlight} expiries run at once: beyond that, due records wait
 * for a later sweep.
 *
 * @internal
 */
import { type Clock, Duration, Effect, Exit, Fiber, FiberMap, Layer, Schedule, type Scope } from "effect"
import { Singleton } from "effect/cluster"
import type { Sharding } from "effect/cluster/Sharding"
import type { StoreError } from "../../Errors.js"
import type { Compiled } from "../resource.js"
import { escapeKey } from "../sql/escape.js"
import type * as StateStore from "../sql/stateStore.js"

/** @internal */
export interface SweeperContext {
  readonly state: StateStore.StateStore
  readonly compiled: ReadonlyMap<string, Compiled>
  readonly clock: Clock.Clock
  /** The entity client of a resource. */
  readonly client: (resource: string) => (entityId: string) => any
  /** Sends a message to a record, re-sending it while it fails for a reason of the cluster. */
  readonly send: <A>(
    resource: Compiled,
    key: unknown,
    action: string,
    call: Effect.Effect<A, unknown>
  ) => Effect.Effect<A, StoreError>
  /** How long a tombstone is kept, in milliseconds. */
  readonly retention: number
}

/** How long a sweep waits for one record's expiry before passing on (the expiry goes on). @internal */
export const patience: Duration.Duration = Duration.seconds(1)

/** How many expiries may run at once (a bound on the memory the sweeper holds). @internal */
export const maxInFlight = 1024

/** @internal */
export interface Sweeper {
  /**
   * Sends every record past its stored deadline (not already being expired)
   * an `Expire` message, a page of `limit` rows at a time: how many it saw
   * expired within {@link patience}.
   */
  readonly sweep: (limit: number) => Effect.Effect<number>
  /**
   * Runs the sweeper as a cluster `Singleton` until the scope closes: a
   * sweep every `interval` (when some resource has a deadline), and a purge
   * when it starts, then about every quarter of the retention, each on its
   * own fiber.
   */
  readonly run: (name: string, interval: Duration.Input) => Effect.Effect<void, never, Scope.Scope | Sharding>
}

/**
 * The sweeper of a layer: its expiries in flight live as long as the scope.
 *
 * @internal
 */
export const make = Effect.fnUntraced(function*(ctx: SweeperContext) {
  /** The expiries running, by record (`resource/escaped key`): whether each expired its record. */
  const inFlight = yield* FiberMap.make<string, boolean>()

  /** Expires one due record on a fiber of its own, unless it is being expired: whether it did, within patience. */
  const expire = (t: number, { key, resource: name }: StateStore.Due): Effect.Effect<boolean> =>
    Effect.gen(function*() {
      const resource = ctx.compiled.get(name)
      if (resource === undefined) return false
      const entityId = escapeKey(key)
      const id = `${name}/${entityId}`
      if (FiberMap.hasUnsafe(inFlight, id) || (yield* FiberMap.size(inFlight)) >= maxInFlight) return false
      const message = ctx.client(name)(entityId).Expire({ now: t }) as Effect.Effect<boolean, unknown>
      const fiber = yield* FiberMap.run(
        inFlight,
        id,
        Effect.map(
          Effect.exit(ctx.send(resource, key, "expire", message)),
          (done) => Exit.isSuccess(done) && done.value
        )
      )
      const done = yield* Effect.timeoutOption(Fiber.await(fiber), patience)
      return done._tag === "Some" && Exit.isSuccess(done.value) && done.value.value
    })

  const sweep = (limit: number): Effect.Effect<number> =>
    Effect.gen(function*() {
      const t = ctx.clock.currentTimeMillisUnsafe()
      let expired = 0
      let after: StateStore.Due | undefined = undefined
      while (true) {
        const due: ReadonlyArray<StateStore.Due> = yield* Effect.orDie(ctx.state.due(t, limit, after))
        yield* Effect.forEach(due, (row) => Effect.map(expire(t, row), (done) => done && expired++), {
          concurrency: 16,
          discard: true
        })
        if (due.length < limit) return expired
        after = due[due.length - 1]
      }
    })

  const run = (name: string, interval: Duration.Input): Effect.Effect<void, never, Scope.Scope | Sharding> =>
    Effect.gen(function*() {
      const every = Duration.fromInputUnsafe(interval)
      const sweeping = sweep(256).pipe(
        Effect.catchCause((cause) => Effect.logWarning("effect-gen-server: the expiry sweep failed", cause)),
        Effect.repeat(Schedule.spaced(every))
      )
      const purging = Effect.suspend(() => ctx.state.purge(ctx.clock.currentTimeMillisUnsafe() - ctx.retention)).pipe(
        Effect.catchCause((cause) => Effect.logWarning("effect-gen-server: the tombstone purge failed", cause)),
        Effect.repeat(Schedule.spaced(Duration.max(Duration.millis(ctx.retention / 4), every)))
      )
      // every resource: any record may have schedules due
      const sweeper = Effect.all([sweeping, purging], {
        concurrency: "unbounded",
        discard: true
      })
      yield* Layer.buildWithScope(
        Singleton.make(name, sweeper) as Layer.Layer<never, never, Sharding>,
        yield* Effect.scope
      )
    })

  return { sweep, run } satisfies Sweeper
})
