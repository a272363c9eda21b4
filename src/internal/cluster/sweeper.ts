/**
 * The cluster's sweeper: a `Singleton` (one runner of the cluster runs it)
 * that every `sweepInterval` sends each record past its stored deadline an
 * `Expire` message (its owner runs the destroy action, or writes back
 * activity it had in memory), and purges the tombstones no retry can need
 * any more (older than `operationRetention`).
 *
 * A sweep pages through every due row, earliest first: a record whose
 * expiry keeps failing is passed over, never in another's way.
 *
 * @internal
 */
import { type Clock, Duration, Effect, Exit, Layer, type Scope } from "effect"
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

/**
 * Sends every record past its stored deadline an `Expire` message, a page
 * of `limit` rows at a time: how many it expired.
 *
 * @internal
 */
export const sweep = (ctx: SweeperContext) => (limit: number): Effect.Effect<number> =>
  Effect.gen(function*() {
    const t = ctx.clock.currentTimeMillisUnsafe()
    let expired = 0
    let after: StateStore.Due | undefined = undefined
    while (true) {
      const due: ReadonlyArray<StateStore.Due> = yield* Effect.orDie(ctx.state.due(t, limit, after))
      yield* Effect.forEach(due, ({ key, resource: name }) => {
        const resource = ctx.compiled.get(name)
        if (resource === undefined) return Effect.void
        const expire = ctx.client(name)(escapeKey(key)).Expire({ now: t }) as Effect.Effect<boolean, unknown>
        return Effect.map(Effect.exit(ctx.send(resource, key, "expire", expire)), (done) => {
          if (Exit.isSuccess(done) && done.value === true) expired++
        })
      }, { concurrency: 16, discard: true })
      if (due.length < limit) return expired
      after = due[due.length - 1]
    }
  })

/**
 * Runs the sweeper as a cluster `Singleton` until the scope closes: a sweep
 * every `interval` (when some resource has a deadline), and a purge when it
 * starts, then about every quarter of the retention.
 *
 * @internal
 */
export const run = (
  ctx: SweeperContext,
  name: string,
  interval: Duration.Input
): Effect.Effect<void, never, Scope.Scope | Sharding> =>
  Effect.gen(function*() {
    const every = Duration.fromInputUnsafe(interval)
    const sweeps = [...ctx.compiled.values()].some((r) => r.hasTimeouts)
    const purgeEvery = Math.max(1, Math.ceil(ctx.retention / 4 / Math.max(Duration.toMillis(every), 1)))
    const purge = Effect.suspend(() =>
      Effect.orDie(ctx.state.purge(ctx.clock.currentTimeMillisUnsafe() - ctx.retention))
    )
    const once = sweep(ctx)
    let round = 0
    const sweeper = Effect.forever(
      Effect.suspend(() => {
        round++
        return Effect.andThen(
          sweeps ? Effect.asVoid(once(256)) : Effect.void,
          round % purgeEvery === 1 || purgeEvery === 1 ? Effect.asVoid(purge) : Effect.void
        )
      }).pipe(
        Effect.catchCause((cause) => Effect.logWarning("effect-gen-server: the expiry sweep failed", cause)),
        Effect.andThen(Effect.sleep(every))
      )
    )
    yield* Layer.buildWithScope(
      Singleton.make(name, sweeper) as Layer.Layer<never, never, Sharding>,
      yield* Effect.scope
    )
  })
