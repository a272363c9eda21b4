/**
 * Port of the original's `test/ash_gen_server/server_test.exs`, plus the
 * server behaviour its `handle_call` implements.
 *
 * The original calls `Server.init/1` directly and inspects the GenServer
 * state; here a record server is started through `Store.create` and observed
 * through the Store. The `:keep_alive` test lives in `KeepAlive.test.ts`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Layer, Schema } from "effect"
import { Action, Changeset, Query, Resource, Store } from "../src/index.js"
import { Character, layer } from "./fixtures/TimeTravel.js"

// A read-modify-write action that yields between reading and writing, so a
// server that did not serialise its requests would lose increments.
const Counter = Resource.make("Counter", {
  fields: { id: Schema.String, count: Schema.Int },
  primaryKey: ["id"],
  actions: {
    increment: Action.update({
      change: (cs) =>
        Effect.gen(function*() {
          const count = Changeset.get(cs, "count")
          yield* Effect.yieldNow
          yield* Effect.yieldNow
          return Changeset.set(cs, "count", count + 1)
        })
    })
  }
})

// An action that, on the record "blocked", signals `entered` and then waits
// until the test opens `release`; on any other record it passes at once.
class Gate extends Context.Service<Gate, {
  readonly entered: Deferred.Deferred<void>
  readonly release: Deferred.Deferred<void>
}>()("test/Server/Gate") {}

const Gated = Resource.make("Gated", {
  fields: { id: Schema.String, passed: Schema.Boolean },
  primaryKey: ["id"],
  actions: {
    pass: Action.update({
      change: (cs) =>
        Effect.gen(function*() {
          if (Changeset.get(cs, "id") === "blocked") {
            const gate = yield* Gate
            yield* Deferred.succeed(gate.entered, undefined)
            yield* Deferred.await(gate.release)
          }
          return Changeset.set(cs, "passed", true)
        })
    })
  }
})

describe("Server", () => {
  describe("init", () => {
    it.effect("it registers itself using the primary key provided", () =>
      Effect.gen(function*() {
        const id = crypto.randomUUID()
        yield* Store.create(Character, "create", { id, name: "Biff Tannen", currentYear: 2015 })

        const found = yield* Store.get(Character, { id })
        assert.strictEqual(found.id, id)
      }).pipe(Effect.provide(layer())))

    it.effect("it registers itself using the generated primary key", () =>
      Effect.gen(function*() {
        const biff = yield* Store.create(Character, "create", { name: "Biff Tannen", currentYear: 2015 })

        const found = yield* Store.get(Character, { id: biff.id })
        assert.strictEqual(found.id, biff.id)
      }).pipe(Effect.provide(layer())))

    it.effect("it returns the correct state", () =>
      Effect.gen(function*() {
        const id = crypto.randomUUID()
        const biff = yield* Store.create(Character, "create", { id, name: "Biff Tannen", currentYear: 2015 })

        assert.strictEqual(Character.name, "Character")
        assert.deepStrictEqual(Character.primaryKey, ["id"])
        assert.deepStrictEqual(biff, { id, name: "Biff Tannen", currentYear: 2015 })
        assert.isFalse("nickname" in biff)
        assert.deepStrictEqual(yield* Store.get(Character, { id }), biff)
      }).pipe(Effect.provide(layer())))
  })

  describe("handle_call update", () => {
    it.effect("it applies the changeset and replies with the new record", () =>
      Effect.gen(function*() {
        const biff = yield* Store.create(Character, "create", { name: "Biff Tannen", currentYear: 2015 })

        const older = yield* Store.update(Character, biff, "travelInTime", { targetYear: 1955 })
        assert.deepStrictEqual(older, { ...biff, currentYear: 1955 })
        assert.deepStrictEqual(yield* Store.get(Character, { id: biff.id }), older)
      }).pipe(Effect.provide(layer())))

    it.effect("when the changeset cannot be applied, it replies with an error and keeps its state", () =>
      Effect.gen(function*() {
        const biff = yield* Store.create(Character, "create", { name: "Biff Tannen", currentYear: 2015 })

        const error = yield* Store.update(Character, biff, "update", { currentYear: 1955.5 }).pipe(Effect.flip)
        assert.strictEqual(error._tag, "ValidationError")

        assert.deepStrictEqual(yield* Store.get(Character, { id: biff.id }), biff)
      }).pipe(Effect.provide(layer())))

    it.effect("one record's requests are handled one at a time", () =>
      Effect.gen(function*() {
        const counter = yield* Store.create(Counter, "create", { id: "clock-tower", count: 0 })

        const replies = yield* Effect.forEach(
          Array.from({ length: 20 }, (_, i) => i),
          () => Store.update(Counter, counter, "increment"),
          { concurrency: "unbounded" }
        )

        assert.deepStrictEqual(
          replies.map((r) => r.count).sort((a, b) => a - b),
          Array.from({ length: 20 }, (_, i) => i + 1)
        )
        assert.strictEqual((yield* Store.get(Counter, { id: "clock-tower" })).count, 20)
      }).pipe(Effect.provide(Store.layer([Counter]))))

    it.effect("each record has its own server: a blocked record does not block another", () =>
      Effect.gen(function*() {
        const gate = { entered: yield* Deferred.make<void>(), release: yield* Deferred.make<void>() }
        yield* Effect.gen(function*() {
          const blocked = yield* Store.create(Gated, "create", { id: "blocked", passed: false })
          const free = yield* Store.create(Gated, "create", { id: "free", passed: false })

          const waiting = yield* Store.update(Gated, blocked, "pass").pipe(Effect.forkChild)
          yield* Deferred.await(gate.entered)

          // "blocked" is inside its change; other records are still served
          const passedFree = yield* Store.update(Gated, free, "pass")
          assert.isTrue(passedFree.passed)
          const other = yield* Store.create(Gated, "create", { id: "other", passed: false })
          assert.isFalse(other.passed)
          assert.isUndefined(waiting.pollUnsafe())

          yield* Deferred.succeed(gate.release, undefined)
          const passedBlocked = yield* Fiber.join(waiting)
          assert.isTrue(passedBlocked.passed)

          const all = yield* Store.read(Query.make(Gated))
          assert.deepStrictEqual(all.map((r) => [r.id, r.passed]).sort(), [
            ["blocked", true],
            ["free", true],
            ["other", false]
          ])
        }).pipe(Effect.provide(Store.layer([Gated]).pipe(Layer.provide(Layer.succeed(Gate, gate)))))
      }))
  })
})
