import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { TestClock } from "effect/testing"
import { Action, Changeset, Filter, Query, Resource, Store } from "../src/index.js"
import { Character, Machine } from "./fixtures/TimeTravel.js"

const memory = () => Store.layer([Character, Machine], { dataLayer: "memory" })

// a hook of Counter calls Counter: an annotated accessor keeps the type from being circular
const self = (): Resource.Any => Counter

const Counter = Resource.make("Counter", {
  fields: { id: Schema.String, n: Schema.Int },
  primaryKey: ["id"],
  actions: {
    slowIncrement: Action.update({
      change: (cs) => Effect.as(Effect.yieldNow, Changeset.set(cs, "n", Changeset.get(cs, "n") + 1))
    }),
    crash: Action.update({ change: () => Effect.die("boom") }),
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

describe("DataLayer.memory", () => {
  it.effect("plays the TimeTravel plot like the GenServer data layer", () =>
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
    }).pipe(Effect.provide(memory())))

  it.effect("serialises a record's actions", () =>
    Effect.gen(function*() {
      yield* Store.create(Counter, "create", { id: "c", n: 0 })
      yield* Effect.forEach(Array.from({ length: 20 }), () => Store.update(Counter, { id: "c" }, "slowIncrement"), {
        concurrency: "unbounded"
      })
      assert.strictEqual((yield* Store.get(Counter, { id: "c" })).n, 20)
    }).pipe(Effect.provide(Store.layer([Counter], { dataLayer: "memory" }))))

  it.effect("a defect is RecordCrashed and keeps the last state; a self call is ReentrantCall", () =>
    Effect.gen(function*() {
      yield* Store.create(Counter, "create", { id: "c", n: 7 })
      assert.strictEqual((yield* Effect.flip(Store.update(Counter, { id: "c" }, "crash")))._tag, "RecordCrashed")
      assert.strictEqual((yield* Store.get(Counter, { id: "c" })).n, 7)
      const error = yield* Effect.flip(Store.update(Counter, { id: "c" }, "selfUpdate"))
      assert.strictEqual(error._tag, "ActionError")
      assert.match(error.message, /ReentrantCall|would deadlock/)
      assert.strictEqual((yield* Store.get(Counter, { id: "c" })).n, 7)
    }).pipe(Effect.provide(Store.layer([Counter], { dataLayer: "memory" }))))

  it.effect("an expired record is invisible at its deadline and removed when touched", () =>
    Effect.gen(function*() {
      const marty = yield* Store.create(Character, "create", { name: "Marty", currentYear: 1985 })
      yield* TestClock.adjust("59 seconds")
      yield* Store.keepAlive(Character, marty)
      yield* TestClock.adjust("59 seconds")
      assert.strictEqual((yield* Store.get(Character, marty)).name, "Marty")
      yield* TestClock.adjust("60 seconds")
      assert.deepStrictEqual(yield* Store.read(Query.make(Character)), [])
      assert.strictEqual((yield* Effect.flip(Store.get(Character, marty)))._tag, "NotFound")
    }).pipe(Effect.provide(memory())))
})
