import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { TestRunner } from "effect/cluster"
import { Action, Changeset, Cluster, Filter, Query, Resource, Store } from "../../src/index.js"
import { Character, Machine } from "../fixtures/TimeTravel.js"
import * as Pg from "./pg.js"

// a hook of Counter calls Counter: an annotated accessor keeps the type from being circular
const self = (): Resource.Any => Counter

const Counter = Resource.make("Counter", {
  fields: { id: Schema.String, n: Schema.Int, tag: Schema.optionalKey(Schema.String) },
  primaryKey: ["id"],
  indexes: ["tag"],
  actions: {
    crash: Action.update({ change: () => Effect.die("boom") }),
    refuse: Action.update({
      change: (cs) => Changeset.addError(Changeset.set(cs, "n", 99), "no")
    }),
    failAfter: Action.update({
      change: (cs) => Changeset.after(Changeset.set(cs, "n", 42), () => Effect.fail("after hook failed"))
    }),
    rekey: Action.update({ change: (cs) => Changeset.set(cs, "id", "other") }),
    selfUpdate: Action.update({
      change: (cs) =>
        cs.pipe(
          Changeset.after((record) =>
            Effect.as(Store.update(self(), record as never, "update" as never, { n: 0 } as never), record)
          )
        )
    })
  }
})

const resources = [Character, Machine, Counter] as const

/** A single-process cluster (TestRunner) over the given SqlClient layer. */
const cluster = (sql: Layer.Layer<any>) =>
  Cluster.layer(resources, { tablePrefix: "c_" }).pipe(Layer.provide(TestRunner.layer), Layer.provide(sql))

const fresh = () => cluster(Pg.layer("cluster"))

describe("Cluster (TestRunner, PostgreSQL)", () => {
  it.effect(
    "plays the TimeTravel plot: create, get, update through hooks, read, destroy",
    () =>
      Effect.gen(function*() {
        const marty = yield* Store.create(Character, "create", { name: "Marty", currentYear: 1985 })
        const delorean = yield* Store.create(Machine, "create", { name: "OUTATIME" })
        const refused = yield* Effect.flip(
          Store.update(Machine, delorean, "travelInTime", { occupants: [marty], targetYear: 1955 })
        )
        assert.strictEqual(refused._tag, "ActionError")
        yield* Store.update(Machine, delorean, "charge")
        yield* Store.update(Machine, delorean, "travelInTime", { occupants: [marty], targetYear: 1955 })
        assert.strictEqual((yield* Store.get(Character, marty)).currentYear, 1955)
        assert.strictEqual((yield* Store.get(Machine, delorean)).hasPower, false)
        const found = yield* Store.read(Query.make(Character).pipe(Query.filter(Filter.eq("currentYear", 1955))))
        assert.deepStrictEqual(found.map((c) => c.id), [marty.id])
        yield* Store.destroy(Character, marty)
        assert.strictEqual((yield* Effect.flip(Store.get(Character, marty)))._tag, "NotFound")
        assert.deepStrictEqual(yield* Store.read(Query.make(Character)), [])
        // the key is free again
        const again = yield* Store.create(Character, "create", { id: marty.id, name: "Marty", currentYear: 1985 })
        assert.strictEqual(again.currentYear, 1985)
      }).pipe(Effect.provide(fresh())),
    { timeout: 30_000 }
  )

  it.effect("typed errors through the wire; a refused action leaves the row unchanged", () =>
    Effect.gen(function*() {
      yield* Store.create(Counter, "create", { id: "c", n: 1 })
      const exists = yield* Effect.flip(Store.create(Counter, "create", { id: "c", n: 2 }))
      assert.strictEqual(exists._tag, "AlreadyExists")
      assert.deepStrictEqual((exists as any).key, { id: "c" })
      const refused = yield* Effect.flip(Store.update(Counter, { id: "c" }, "refuse"))
      assert.strictEqual(refused._tag, "ActionError")
      assert.deepStrictEqual((refused as any).errors, ["no"])
      const afterFailed = yield* Effect.flip(Store.update(Counter, { id: "c" }, "failAfter"))
      assert.strictEqual(afterFailed._tag, "ActionError")
      const crashed = yield* Effect.flip(Store.update(Counter, { id: "c" }, "crash"))
      assert.strictEqual(crashed._tag, "RecordCrashed")
      const rekeyed = yield* Effect.flip(Store.update(Counter, { id: "c" }, "rekey"))
      assert.strictEqual(rekeyed._tag, "ValidationError")
      const invalid = yield* Effect.flip(Store.update(Counter, { id: "c" }, "update", { n: "x" } as never))
      assert.strictEqual(invalid._tag, "ValidationError")
      const reentrant = yield* Effect.flip(Store.update(Counter, { id: "c" }, "selfUpdate"))
      assert.strictEqual(reentrant._tag, "ActionError") // the after hook's ReentrantCall refuses the action
      assert.include(reentrant.message, "would deadlock")
      const missing = yield* Effect.flip(Store.update(Counter, { id: "nope" }, "update", { n: 1 }))
      assert.strictEqual(missing._tag, "NotFound")
      // nothing of the above was committed, and the record still works
      assert.strictEqual((yield* Store.get(Counter, { id: "c" })).n, 1)
      assert.deepStrictEqual((yield* Store.read(Query.make(Counter))).map((c) => c.n), [1])
      assert.strictEqual((yield* Store.update(Counter, { id: "c" }, "update", { n: 5 })).n, 5)
      assert.strictEqual((yield* Store.get(Counter, { id: "c" })).n, 5)
    }).pipe(Effect.provide(fresh())), { timeout: 30_000 })

  it.effect("serialises a record's writes: concurrent updates all apply", () =>
    Effect.gen(function*() {
      yield* Store.create(Counter, "create", { id: "c", n: 0 })
      const Inc = Counter
      yield* Effect.forEach(
        Array.from({ length: 30 }, (_, i) => i),
        (i) => Store.update(Inc, { id: "c" }, "update", { tag: `t${i}` }),
        { concurrency: "unbounded" }
      )
      yield* Effect.forEach(
        Array.from({ length: 50 }, (_, i) => i),
        (i) => Store.create(Counter, "create", { id: `k${i}`, n: i, tag: i % 2 === 0 ? "even" : "odd" }),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(
        (yield* Store.read(Query.make(Counter).pipe(Query.filter(Filter.eq("tag", "even"))))).length,
        25
      )
    }).pipe(Effect.provide(fresh())), { timeout: 30_000 })

  it.effect("queries equal the GenServer layer's on the same data", () =>
    Effect.gen(function*() {
      const data = Array.from({ length: 40 }, (_, i) => ({
        id: `r${(i * 7) % 40}`,
        n: (i * 13) % 9 - 4,
        ...(i % 3 === 0 ? {} : { tag: ["a", "b", "ab", ""][i % 4]! })
      }))
      const queries = [
        Query.make(Counter),
        Query.make(Counter).pipe(Query.sort("n", "desc")),
        Query.make(Counter).pipe(Query.sort("tag"), Query.sort("n", "desc"), Query.offset(3), Query.limit(10)),
        Query.make(Counter).pipe(Query.filter(Filter.gt("n", 0)), Query.sort("id")),
        Query.make(Counter).pipe(Query.filter(Filter.isNil("tag")), Query.sort("n")),
        Query.make(Counter).pipe(Query.filter(Filter.not(Filter.in("tag", ["a", "b"]))), Query.sort("tag", "desc")),
        Query.make(Counter).pipe(Query.filter(Filter.or(Filter.contains("tag", "a"), Filter.lte("n", -3)))),
        Query.make(Counter).pipe(Query.filter(Filter.eq("id", "r3")))
      ]
      const run = Effect.gen(function*() {
        for (const record of data) yield* Store.create(Counter, "create", record)
        return yield* Effect.forEach(queries, (q) => Store.read(q))
      })
      const onCluster = yield* run.pipe(Effect.provide(fresh()))
      const onGenServer = yield* run.pipe(Effect.provide(Store.layer(resources)))
      assert.deepStrictEqual(onCluster, onGenServer)
    }), { timeout: 30_000 })

  it.effect(
    "a record resumes from SQL on a new runner: close the runner, open another over the same schema",
    () =>
      Effect.gen(function*() {
        const schema = Pg.freshSchema("restart")
        yield* Pg.schemaScoped(schema)
        const sql = Pg.layer("restart", schema, false)
        const first = yield* Effect.scoped(
          Effect.gen(function*() {
            const a = yield* Store.create(Counter, "create", { id: "a", n: 1 })
            yield* Store.update(Counter, a, "update", { n: 2 })
            const marty = yield* Store.create(Character, "create", { name: "Marty", currentYear: 1985 })
            yield* Store.update(Character, marty, "travelInTime", { targetYear: 2015 })
            return marty
          }).pipe(Effect.provide(cluster(sql)))
        )
        yield* Effect.scoped(
          Effect.gen(function*() {
            assert.strictEqual((yield* Store.get(Counter, { id: "a" })).n, 2)
            // Character has an inactivity timeout: get is a message to the (new) owner, which loads the row
            assert.strictEqual((yield* Store.get(Character, first)).currentYear, 2015)
            assert.strictEqual((yield* Store.update(Counter, { id: "a" }, "update", { n: 3 })).n, 3)
            assert.strictEqual(
              (yield* Effect.flip(Store.create(Counter, "create", { id: "a", n: 0 })))._tag,
              "AlreadyExists"
            )
            assert.deepStrictEqual((yield* Store.read(Query.make(Counter))).map((c) => c.n), [3])
          }).pipe(Effect.provide(cluster(sql)))
        )
      }).pipe(Effect.scoped),
    { timeout: 30_000 }
  )
})
