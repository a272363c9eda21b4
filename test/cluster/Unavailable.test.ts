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
import { Action, Changeset, Cluster, type Errors, Query, Resource, Store } from "../../src/index.js"
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

/** The row of Counter `id`: its state, the operation ids it remembers, its version. */
const counterRow = (id: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* Effect.orDie(
      sql.unsafe<{ state: unknown; ops: unknown; version: unknown; alive: boolean }>(
        `SELECT state, ops, version, alive FROM u_records WHERE resource = 'Counter'`
      )
    )
    const parsed = (u: unknown) => typeof u === "string" ? JSON.parse(u) : u
    const row = rows.map((r) => ({ ...r, state: parsed(r.state), ops: parsed(r.ops) as ReadonlyArray<string> }))
      .find((r) => r.alive && r.state.id === id)
    assert.isDefined(row, `the row of Counter ${id}`)
    return { n: row!.state.n as number, ops: row!.ops, version: Number(row!.version) }
  })

describe("Cluster: a write sent again under the operation id the caller chose is applied once", () => {
  it.live(
    "an update after Unavailable \"unknown\": answered with the record, the counter up by one",
    () =>
      Effect.gen(function*() {
        yield* Store.create(Counter, "create", { id: "c", n: 0 })
        const before = yield* counterRow("c")
        const inc = Store.update(Counter, { id: "c" }, "inc").pipe(Store.withOperationId("inc-1"))
        const error = unavailable(yield* withFaults(["lost", "refused"], Effect.flip(inc)))
        assert.deepStrictEqual([error.applied, error.operationId], ["unknown", "inc-1"])
        assertRoundTrip(error)
        // sent again under its id: answered, not applied again
        assert.strictEqual((yield* inc).n, 1)
        // and again, after that success
        assert.strictEqual((yield* inc).n, 1)
        assert.strictEqual((yield* Store.get(Counter, { id: "c" })).n, 1)
        const after = yield* counterRow("c")
        assert.strictEqual(after.n, before.n + 1)
        assert.strictEqual(after.version, before.version + 1)
        assert.deepStrictEqual(after.ops.filter((op) => op === "inc-1"), ["inc-1"])
        // another id is another write
        assert.strictEqual((yield* Store.update(Counter, { id: "c" }, "inc").pipe(Store.withOperationId("inc-2"))).n, 2)
        assert.strictEqual((yield* counterRow("c")).n, 2)
      }).pipe(Effect.provide(store(1))),
    { timeout: 30_000 }
  )

  it.live("a create sent again: answered with the record it created, not AlreadyExists", () =>
    Effect.gen(function*() {
      const create = Store.create(Counter, "create", { id: "a", n: 7 }).pipe(Store.withOperationId("create-a"))
      const error = unavailable(yield* withFaults(["lost", "refused"], Effect.flip(create)))
      assert.deepStrictEqual([error.applied, error.action, error.operationId], ["unknown", "create", "create-a"])
      yield* Store.update(Counter, { id: "a" }, "inc")
      // answered with the record as it is now, nothing created again
      assert.deepStrictEqual(yield* create, { id: "a", n: 8 })
      assert.deepStrictEqual(yield* create, { id: "a", n: 8 })
      assert.strictEqual((yield* counterRow("a")).n, 8)
      // without the id, it is another create: the key is taken
      assert.strictEqual(
        (yield* Effect.flip(Store.create(Counter, "create", { id: "a", n: 7 })))._tag,
        "AlreadyExists"
      )
    }).pipe(Effect.provide(store(1))), { timeout: 30_000 })

  it.live(
    "a destroy sent again: answered without error, and a record created since under the key stays",
    () =>
      Effect.gen(function*() {
        yield* Store.create(Counter, "create", { id: "d", n: 1 })
        const destroy = Store.destroy(Counter, { id: "d" }).pipe(Store.withOperationId("destroy-d"))
        const error = unavailable(yield* withFaults(["lost", "refused"], Effect.flip(destroy)))
        assert.deepStrictEqual([error.applied, error.action, error.operationId], ["unknown", "destroy", "destroy-d"])
        yield* destroy
        assert.strictEqual((yield* Effect.flip(Store.get(Counter, { id: "d" })))._tag, "NotFound")
        // without the id, another destroy: nothing to destroy
        assert.strictEqual((yield* Effect.flip(Store.destroy(Counter, { id: "d" })))._tag, "NotFound")
        yield* Store.create(Counter, "create", { id: "d", n: 2 })
        yield* destroy
        assert.strictEqual((yield* Store.get(Counter, { id: "d" })).n, 2)
      }).pipe(Effect.provide(store(1))),
    { timeout: 30_000 }
  )

  it.live(
    "a malformed id is ValidationError before anything is sent, and changes nothing",
    () =>
      Effect.gen(function*() {
        yield* Store.create(Counter, "create", { id: "c", n: 0 })
        const before = yield* counterRow("c")
        sent.count = 0
        const bad: ReadonlyArray<unknown> = ["", "x".repeat(201), 42, null]
        for (const id of bad) {
          const under = Store.withOperationId(id as string)
          const errors = [
            yield* Effect.flip(Store.update(Counter, { id: "c" }, "inc").pipe(under)),
            yield* Effect.flip(Store.create(Counter, "create", { id: "b", n: 0 }).pipe(under)),
            yield* Effect.flip(Store.destroy(Counter, { id: "c" }).pipe(under))
          ]
          assert.deepStrictEqual(errors.map((e) => e._tag), ["ValidationError", "ValidationError", "ValidationError"])
          assert.include(errors[0]!.message, "operation id")
        }
        assert.strictEqual(sent.count, 0)
        assert.deepStrictEqual(yield* counterRow("c"), before)
        assert.strictEqual((yield* Effect.flip(Store.get(Counter, { id: "b" })))._tag, "NotFound")
        // 200 characters is the longest id
        assert.strictEqual(
          (yield* Store.update(Counter, { id: "c" }, "inc").pipe(Store.withOperationId("y".repeat(200)))).n,
          1
        )
      }).pipe(Effect.provide(store(1))),
    { timeout: 30_000 }
  )

  it.live(
    "without a chosen id, Unavailable names the one the data layer made: sent again under it, applied once",
    () =>
      Effect.gen(function*() {
        yield* Store.create(Counter, "create", { id: "c", n: 0 })
        const error = unavailable(
          yield* withFaults(["lost", "refused"], Effect.flip(Store.update(Counter, { id: "c" }, "inc")))
        )
        assert.strictEqual(error.applied, "unknown")
        assert.isString(error.operationId)
        assert.isAbove(error.operationId!.length, 0)
        assert.include((yield* counterRow("c")).ops, error.operationId!)
        assertRoundTrip(error)
        assert.strictEqual(
          (yield* Store.update(Counter, { id: "c" }, "inc").pipe(Store.withOperationId(error.operationId!))).n,
          1
        )
        assert.strictEqual((yield* counterRow("c")).n, 1)
        // a get names none: it is not a write
        const marty = yield* Store.create(Character, "create", { name: "Marty", currentYear: 1985 })
        const get = unavailable(yield* withFaults(["refused", "refused"], Effect.flip(Store.get(Character, marty))))
        assert.isUndefined(get.operationId)
      }).pipe(Effect.provide(store(1))),
    { timeout: 30_000 }
  )
})

describe("Cluster: a create whose key is generated, sent again", () => {
  it.live("with the key it was sent under (Unavailable.key) and its id: one record", () =>
    Effect.gen(function*() {
      const input = { name: "Marty", currentYear: 1985 }
      const error = unavailable(
        yield* withFaults(
          ["lost", "refused"],
          Effect.flip(Store.create(Character, "create", input).pipe(Store.withOperationId("arrive-marty")))
        )
      )
      assert.strictEqual(error.applied, "unknown")
      const id = (error.key as { readonly id: string }).id
      const marty = yield* Store.create(Character, "create", { ...input, id }).pipe(
        Store.withOperationId("arrive-marty")
      )
      assert.deepStrictEqual(marty, { id, name: "Marty", currentYear: 1985 })
      assert.deepStrictEqual(yield* Store.read(Query.make(Character)), [marty])
    }).pipe(Effect.provide(store(1))), { timeout: 30_000 })
})
