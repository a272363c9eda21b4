import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Effect, Schema } from "effect"
import { Store, Testing } from "../src/index.js"
import { Character, Machine } from "./fixtures/TimeTravel.js"

describe("Testing", () => {
  it.effect.prop(
    "every generated create input is accepted by the create action",
    [Testing.arbitrary(Character)],
    ([input]) =>
      Effect.gen(function*() {
        const created = yield* Store.create(Character, "create", input)
        assert.strictEqual(created.name, input.name)
        assert.strictEqual(created.currentYear, input.currentYear)
        assert.deepStrictEqual(yield* Store.get(Character, created), created)
      }).pipe(Effect.provide(Testing.layer([Character]))),
    { arbitrary: { runs: 50, seed: 1985 } }
  )

  it.effect.prop(
    "generated update arguments are accepted by the action they were derived from",
    [Testing.arbitrary(Character, "travelInTime")],
    ([args]) =>
      Effect.gen(function*() {
        const marty = yield* Store.create(Character, "create", { name: "Marty", currentYear: 1985 })
        const moved = yield* Store.update(Character, marty, "travelInTime", args)
        assert.strictEqual(moved.currentYear, args.targetYear)
      }).pipe(Effect.provide(Testing.layer([Character])))
  )

  it.effect("generated fields are left out unless asked for", () =>
    Effect.gen(function*() {
      const inputs = yield* Arbitrary.sampleEffect(Testing.arbitrary(Machine), { count: 20, seed: 1 })
      assert.isTrue(inputs.every((i) => !("id" in i) && !("hasPower" in i)))
      const withGenerated = yield* Arbitrary.sampleEffect(
        Testing.arbitrary(Machine, "create", { includeGenerated: true }),
        { count: 20, seed: 1 }
      )
      // included, generated fields are optional: sometimes given, always well typed when given
      assert.isTrue(withGenerated.some((i) => "id" in i))
      assert.isTrue(withGenerated.every((i) => !("id" in i) || typeof i.id === "string"))
    }))

  it.effect("inputSchema rejects what the action rejects", () =>
    Effect.gen(function*() {
      const decode = Schema.decodeUnknownExit(Testing.inputSchema(Character))
      assert.isTrue(decode({ name: "Marty", currentYear: 1985 })._tag === "Success")
      assert.isTrue(decode({ name: "Marty" })._tag === "Failure")
      assert.isTrue(decode({ name: "Marty", currentYear: 1985.5 })._tag === "Failure")
    }))

  it.effect("the test layer records every lifecycle event in order", () =>
    Effect.gen(function*() {
      const marty = yield* Store.create(Character, "create", { name: "Marty", currentYear: 1985 })
      yield* Store.update(Character, marty, "travelInTime", { targetYear: 1955 })
      yield* Store.destroy(Character, marty)
      const events = yield* Testing.recorded
      assert.deepStrictEqual(events.map((e) => e._tag), ["Created", "Updated", "Destroyed"])
      assert.deepStrictEqual(events[1]!.key, { id: marty.id })
    }).pipe(Effect.provide(Testing.layer([Character]))))
})
