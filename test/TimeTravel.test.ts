/**
 * Port of the original's `test/api_integration_test.exs`: "it's the plot of
 * Back to the Future", played through the whole public API.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Store } from "../src/index.js"
import { Character, layer, Machine } from "./fixtures/TimeTravel.js"

describe("TimeTravel", () => {
  it.effect("it's the plot of Back to the Future", () =>
    Effect.gen(function*() {
      const einstein = yield* Store.create(Character, "create", {
        name: "Einstein Brown",
        nickname: "Einie",
        currentYear: 1985
      })
      const doc = yield* Store.create(Character, "create", {
        name: "Emmet Lathrop Brown",
        nickname: "Doc",
        currentYear: 1985
      })
      let marty = yield* Store.create(Character, "create", {
        name: "Martin Seamus McFly",
        nickname: "Marty",
        currentYear: 1985
      })
      const jennifer = yield* Store.create(Character, "create", {
        name: "Jennifer Jane Parker",
        nickname: "Jennifer",
        currentYear: 1985
      })

      let delorean = yield* Store.create(Machine, "create", {
        name: "OUTATIME",
        powerSource: "Plutonium"
      })
      assert.strictEqual(delorean.hasPower, false)

      // Einstein goes one minute into the future, still in 1985
      delorean = yield* Store.update(Machine, delorean, "charge")
      assert.strictEqual(delorean.hasPower, true)
      delorean = yield* Store.update(Machine, delorean, "travelInTime", { occupants: [einstein], targetYear: 1985 })
      assert.strictEqual(delorean.hasPower, false)
      assert.strictEqual((yield* Store.reload(Character, einstein)).currentYear, 1985)

      // Marty escapes to 1955
      delorean = yield* Store.update(Machine, delorean, "charge")
      assert.strictEqual(delorean.hasPower, true)
      delorean = yield* Store.update(Machine, delorean, "travelInTime", { occupants: [marty], targetYear: 1955 })
      assert.strictEqual(delorean.hasPower, false)
      marty = yield* Store.reload(Character, marty)
      assert.strictEqual(marty.currentYear, 1955)

      // no plutonium in 1955: the clock tower's lightning brings Marty back to 1985
      delorean = yield* Store.update(Machine, delorean, "retrofit", { powerSource: "Lightning" })
      assert.strictEqual(delorean.powerSource, "Lightning")
      delorean = yield* Store.update(Machine, delorean, "charge")
      assert.strictEqual(delorean.hasPower, true)
      delorean = yield* Store.update(Machine, delorean, "travelInTime", { occupants: [marty], targetYear: 1985 })
      assert.strictEqual(delorean.hasPower, false)
      marty = yield* Store.reload(Character, marty)
      assert.strictEqual(marty.currentYear, 1985)

      // Doc comes back with Mr Fusion and takes Marty and Jennifer to 2015
      delorean = yield* Store.update(Machine, delorean, "retrofit", { powerSource: "Mr Fusion" })
      assert.strictEqual(delorean.powerSource, "Mr Fusion")
      delorean = yield* Store.update(Machine, delorean, "charge")
      assert.strictEqual(delorean.hasPower, true)
      delorean = yield* Store.update(Machine, delorean, "travelInTime", {
        occupants: [marty, doc, jennifer],
        targetYear: 2015
      })
      assert.strictEqual(delorean.hasPower, false)

      assert.strictEqual((yield* Store.reload(Character, marty)).currentYear, 2015)
      assert.strictEqual((yield* Store.reload(Character, doc)).currentYear, 2015)
      assert.strictEqual((yield* Store.reload(Character, jennifer)).currentYear, 2015)
      // Einstein stayed behind
      assert.strictEqual((yield* Store.reload(Character, einstein)).currentYear, 1985)
    }).pipe(Effect.provide(layer())))

  // The original's MachineTravelChange adds this error; its plot never hits it.
  it.effect("the DeLorean does not travel without power, and nobody moves", () =>
    Effect.gen(function*() {
      const marty = yield* Store.create(Character, "create", {
        name: "Martin Seamus McFly",
        nickname: "Marty",
        currentYear: 1985
      })
      const delorean = yield* Store.create(Machine, "create", { name: "OUTATIME", powerSource: "Plutonium" })

      const error = yield* Store.update(Machine, delorean, "travelInTime", { occupants: [marty], targetYear: 1955 })
        .pipe(Effect.flip)
      assert.strictEqual(error._tag, "ActionError")
      if (error._tag === "ActionError") {
        assert.strictEqual(error.resource, "Machine")
        assert.strictEqual(error.action, "travelInTime")
        assert.deepStrictEqual(error.errors, ["Power source needs topping up"])
      }

      assert.deepStrictEqual(yield* Store.reload(Machine, delorean), delorean)
      assert.strictEqual((yield* Store.reload(Character, marty)).currentYear, 1985)
    }).pipe(Effect.provide(layer())))
})
