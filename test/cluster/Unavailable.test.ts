/**
 * A call that gives up: `Unavailable`, and whether its write may have
 * happened. A single-process cluster (TestRunner, PostgreSQL) whose
 * `Sharding` hands out clients with scripted faults, each what a call meets
 * when a shard moves:
 *
 * - `refused`: routing refuses the message before any handler runs
 *   (`EntityNotAssignedToRunner`: no runner owns the shard, or this process
 *   is shutting down);
 * - `lost`: the owner runs it (and commits), then the reply is lost (the
 *   interrupt a caller sees when the runner serving it stops).
 *
 * And one fault on the owner's side, for real: another owner commits between
 * the action's start and its commit (fencing), on every attempt.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Schema, Scope } from "effect"
import { EntityAddress, EntityId, Sharding, TestRunner } from "effect/cluster"
import { EntityNotAssignedToRunner } from "effect/cluster/ClusterError"
import { SqlClient } from "effect/sql"
import { Action, Changeset, Cluster, type Errors, Resource, Store } from "../../src/index.js"
import { assertRoundTrip } from "../fixtures/RoundTrip.js"
import { Character } from "../fixtures/TimeTravel.js"
import * as Pg from "./pg.js"

const Counter = Resource.make("Counter", {
  fields: { id: Schema.String, n: Schema.Int },
  primaryKey: ["id"],
  actions: { inc: Action.update({ change: (cs) => Changeset.set(cs, "n", Changeset.get(cs, "n") + 1) }) }
})

/** Its `contend` action meets another owner every time: a commit lands on the row before its own. */
const Contested = Resource.make("Contested", {
  fields: { id: Schema.String, n: Schema.Int },
  primaryKey: ["id"],
  actions: {
    contend: Action.update({
      change: (cs) =>
        Changeset.before(Changeset.set(cs, "n", Changeset.get(cs, "n") + 1), (cs) =>
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            yield* Effect.orDie(
              sql.unsafe(`UPDATE u_records SET version = version + 1 WHERE resource = 'Contested'`)
            )
            return cs
          }))
    })
  }
})

type Fault = "refused" | "lost"

/** The faults the next sends meet, in order; none left: sends go through. */
const faults: Array<Fault> = []
const sent = { count: 0 }

/** `Sharding` whose clients meet `faults` (the rest of it is the real one). */
const faulty = Layer.effect(
  Sharding.Sharding,
  Effect.gen(function*() {
    const real = yield* Sharding.Sharding
    return Sharding.Sharding.of({
      ...real,
      makeClient: (entity) =>
        Effect.map(real.makeClient(entity), (client) => (entityId: string) =>
          new Proxy(client(entityId), {
            get: (target, tag) => {
              const method = (target as any)[tag]
              if (typeof method !== "function") return method
              return (payload: unknown, options?: unknown) =>
                Effect.suspend(() => {
                  sent.count++
                  const fault = faults.shift()
                  if (fault === undefined) return method(payload, options)
                  if (fault === "lost") return Effect.andThen(method(payload, options), Effect.interrupt)
                  const id = EntityId.make(entityId)
                  return Effect.fail(
                    new EntityNotAssignedToRunner({
                      address: EntityAddress.make({
                        shardId: real.getShardId(id, "default"),
                        entityType: entity.type,
                        entityId: id
                      })
                    })
                  )
                })
            }
          }) as any)
    })
  })
)

const store = (retries: number) =>
  Cluster.layer([Counter, Contested, Character], { tablePrefix: "u_", retries }).pipe(
    Layer.provideMerge(Layer.provideMerge(faulty, TestRunner.layer)),
    Layer.provideMerge(Pg.layer("unavailable"))
  )

/** Runs `body` with the faults armed, and none left after it. */
const withFaults = <A, E, R>(script: ReadonlyArray<Fault>, body: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    faults.splice(0, faults.length, ...script)
    sent.count = 0
    return Effect.ensuring(body, Effect.sync(() => faults.splice(0, faults.length)))
  })

const unavailable = (error: { readonly _tag: string }): Errors.Unavailable => {
  assert.strictEqual(error._tag, "Unavailable")
  return error as Errors.Unavailable
}

describe("Cluster: a call that gives up fails with Unavailable, saying whether it was applied", () => {
  it.live("refused on every attempt: applied \"no\", and nothing was applied", () =>
    Effect.gen(function*() {
      yield* Store.create(Counter, "create", { id: "c", n: 0 })
      const error = unavailable(
        yield* withFaults(["refused", "refused", "refused"], Effect.flip(Store.update(Counter, { id: "c" }, "inc")))
      )
      assert.strictEqual(sent.count, 3)
      assert.deepStrictEqual(
        { applied: error.applied, attempts: error.attempts, action: error.action, key: error.key },
        { applied: "no", attempts: 3, action: "inc", key: { id: "c" } }
      )
      assert.include(error.message, "was not applied")
      assertRoundTrip(error)
      assert.strictEqual((yield* Store.get(Counter, { id: "c" })).n, 0)
      // and calling again is safe
      assert.strictEqual((yield* Store.update(Counter, { id: "c" }, "inc")).n, 1)
    }).pipe(Effect.provide(store(2))), { timeout: 30_000 })

  it.live(
    "the owner applied it and the reply was lost, then refused: applied \"unknown\", applied once",
    () =>
      Effect.gen(function*() {
        yield* Store.create(Counter, "create", { id: "c", n: 0 })
        const error = unavailable(
          yield* withFaults(["lost", "refused", "refused"], Effect.flip(Store.update(Counter, { id: "c" }, "inc")))
        )
        assert.deepStrictEqual({ applied: error.applied, attempts: error.attempts }, {
          applied: "unknown",
          attempts: 3
        })
        assert.include(error.message, "may have been applied")
        assertRoundTrip(error)
        // it was: once
        assert.strictEqual((yield* Store.get(Counter, { id: "c" })).n, 1)
      }).pipe(Effect.provide(store(2))),
    { timeout: 30_000 }
  )

  it.live(
    "a lost reply then an answer: the retry (same operation id) answers, applied once",
    () =>
      Effect.gen(function*() {
        yield* Store.create(Counter, "create", { id: "c", n: 0 })
        const record = yield* withFaults(["lost", "refused", "lost"], Store.update(Counter, { id: "c" }, "inc"))
        assert.strictEqual(sent.count, 4)
        assert.strictEqual(record.n, 1)
        assert.strictEqual((yield* Store.get(Counter, { id: "c" })).n, 1)
      }).pipe(Effect.provide(store(5))),
    { timeout: 30_000 }
  )

  it.live(
    "create and destroy: \"no\" leaves the key free, \"unknown\" tells of a write that was applied",
    () =>
      Effect.gen(function*() {
        const refused = unavailable(
          yield* withFaults(["refused", "refused"], Effect.flip(Store.create(Counter, "create", { id: "a", n: 7 })))
        )
        assert.deepStrictEqual([refused.applied, refused.action], ["no", "create"])
        assert.strictEqual((yield* Effect.flip(Store.get(Counter, { id: "a" })))._tag, "NotFound")
        const lost = unavailable(
          yield* withFaults(["lost", "refused"], Effect.flip(Store.create(Counter, "create", { id: "a", n: 7 })))
        )
        assert.strictEqual(lost.applied, "unknown")
        assert.strictEqual((yield* Store.get(Counter, { id: "a" })).n, 7)
        const destroyed = unavailable(
          yield* withFaults(["lost", "refused"], Effect.flip(Store.destroy(Counter, { id: "a" })))
        )
        assert.deepStrictEqual([destroyed.applied, destroyed.action], ["unknown", "destroy"])
        assert.strictEqual((yield* Effect.flip(Store.get(Counter, { id: "a" })))._tag, "NotFound")
        for (const error of [refused, lost, destroyed]) assertRoundTrip(error)
      }).pipe(Effect.provide(store(1))),
    { timeout: 30_000 }
  )

  it.live("a get that is a message (inactivity timeout) gives up too", () =>
    Effect.gen(function*() {
      const marty = yield* Store.create(Character, "create", { name: "Marty", currentYear: 1985 })
      const error = unavailable(yield* withFaults(["refused", "refused"], Effect.flip(Store.get(Character, marty))))
      assert.deepStrictEqual([error.applied, error.action, error.attempts], ["no", "get", 2])
      assertRoundTrip(error)
    }).pipe(Effect.provide(store(1))), { timeout: 30_000 })

  it.live(
    "fenced on every attempt (a newer owner commits first): applied \"no\", the state unchanged",
    () =>
      Effect.gen(function*() {
        yield* Store.create(Contested, "create", { id: "x", n: 0 })
        const error = unavailable(yield* Effect.flip(Store.update(Contested, { id: "x" }, "contend")))
        assert.deepStrictEqual({ applied: error.applied, attempts: error.attempts }, { applied: "no", attempts: 3 })
        assertRoundTrip(error)
        assert.strictEqual((yield* Store.get(Contested, { id: "x" })).n, 0)
        assert.strictEqual((yield* Store.update(Contested, { id: "x" }, "update", { n: 5 })).n, 5)
      }).pipe(Effect.provide(store(2))),
    { timeout: 30_000 }
  )

  it.live("a store closing stops the retries: the call in flight ends at once", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(store(1000), scope)
      yield* Store.create(Counter, "create", { id: "c", n: 0 }).pipe(Effect.provide(context))
      faults.splice(0, faults.length, ...Array.from({ length: 1000 }, (): Fault => "refused"))
      const call = yield* Store.update(Counter, { id: "c" }, "inc").pipe(
        Effect.provide(context),
        Effect.flip,
        Effect.forkChild
      )
      yield* Effect.sleep("300 millis")
      yield* Scope.close(scope, Exit.void)
      const error = unavailable(yield* Fiber.join(call).pipe(Effect.timeout("5 seconds")))
      faults.splice(0, faults.length)
      assert.strictEqual(error.applied, "no")
      assert.include(error.message, "the store closed")
    }), { timeout: 30_000 })
})
