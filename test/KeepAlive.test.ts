/**
 * Port of the original's keep-alive test (`server_test.exs`, "when send
 * :keep_alive to server resets inactivity timer") and of the timers its
 * `Server` sets: `inactivity_timeout` and `maximum_lifetime`, both of which
 * destroy the record through its primary destroy action.
 *
 * The original compares timer references; here the timer is observed by what
 * it does, on the `TestClock`: when the record is destroyed, and why. Presence
 * is checked with `read`, which (unlike `get`) is not activity.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, PubSub, Ref, Schema } from "effect"
import { TestClock } from "effect/testing"
import { Action, Changeset, Query, Resource, Store } from "../src/index.js"
import { drain, tags } from "./fixtures/Events.js"
import { Character, layer } from "./fixtures/TimeTravel.js"

const presentIds = Effect.map(Store.read(Query.make(Character)), (records) => records.map((r) => r.id))

const createBiff = Store.create(Character, "create", { name: "Biff Tannen", currentYear: 2015 })

const assertExpired = (events: PubSub.Subscription<Store.Event>, biff: Character, reason: "inactivity" | "lifetime") =>
  Effect.gen(function*() {
    const seen = yield* drain(events)
    assert.deepStrictEqual(tags(seen), ["Destroyed"])
    const destroyed = seen[0]
    assert.isDefined(destroyed)
    assert.strictEqual(destroyed.resource, "Character")
    assert.deepStrictEqual(destroyed.key, { id: biff.id })
    if (destroyed._tag === "Destroyed") {
      assert.strictEqual(destroyed.reason, reason)
    }
    assert.deepStrictEqual(yield* presentIds, [])
    const error = yield* Store.get(Character, { id: biff.id }).pipe(Effect.flip)
    assert.strictEqual(error._tag, "NotFound")
  })

describe("KeepAlive", () => {
  it.effect("without activity, a record is destroyed after its inactivity timeout", () =>
    Effect.gen(function*() {
      const events = yield* Store.subscribe
      const biff = yield* createBiff
      assert.deepStrictEqual(tags(yield* drain(events)), ["Created"])

      yield* TestClock.adjust("59 seconds")
      assert.deepStrictEqual(yield* presentIds, [biff.id])
      assert.deepStrictEqual(yield* drain(events), [])

      yield* TestClock.adjust("1 second")
      yield* assertExpired(events, biff, "inactivity")
    }).pipe(Effect.provide(layer())))

  it.effect("keep-alive resets the inactivity timer", () =>
    Effect.gen(function*() {
      const events = yield* Store.subscribe
      const biff = yield* createBiff
      assert.deepStrictEqual(tags(yield* drain(events)), ["Created"])

      yield* TestClock.adjust("40 seconds")
      yield* Store.keepAlive(Character, { id: biff.id })

      // 80 seconds after creation, 40 after the keep-alive
      yield* TestClock.adjust("40 seconds")
      assert.deepStrictEqual(yield* presentIds, [biff.id])
      assert.deepStrictEqual(yield* drain(events), [])

      // 59 seconds after the keep-alive
      yield* TestClock.adjust("19 seconds")
      assert.deepStrictEqual(yield* presentIds, [biff.id])

      // 60 seconds after the keep-alive
      yield* TestClock.adjust("1 second")
      yield* assertExpired(events, biff, "inactivity")
    }).pipe(Effect.provide(layer())))

  it.effect("keep-alive of an unknown key fails with NotFound", () =>
    Effect.gen(function*() {
      const id = crypto.randomUUID()
      const error = yield* Store.keepAlive(Character, { id }).pipe(Effect.flip)
      assert.strictEqual(error._tag, "NotFound")
    }).pipe(Effect.provide(layer())))

  // The original resets the timer on every `get` and `update` call too.
  it.effect("get and update are activity", () =>
    Effect.gen(function*() {
      const events = yield* Store.subscribe
      const biff = yield* createBiff

      yield* TestClock.adjust("40 seconds")
      yield* Store.get(Character, { id: biff.id })
      yield* TestClock.adjust("40 seconds")
      yield* Store.update(Character, biff, "travelInTime", { targetYear: 1955 })
      yield* TestClock.adjust("40 seconds")
      yield* Store.reload(Character, biff)
      yield* TestClock.adjust("59 seconds")
      assert.deepStrictEqual(yield* presentIds, [biff.id])
      assert.deepStrictEqual(tags(yield* drain(events)), ["Created", "Updated"])

      yield* TestClock.adjust("1 second")
      yield* assertExpired(events, { ...biff, currentYear: 1955 }, "inactivity")
    }).pipe(Effect.provide(layer())))

  // DESIGN.md: scans by `read` are not activity (in the original they were).
  it.effect("reads are not activity", () =>
    Effect.gen(function*() {
      const events = yield* Store.subscribe
      const biff = yield* createBiff
      yield* drain(events)

      for (let i = 0; i < 5; i++) {
        yield* TestClock.adjust("10 seconds")
        assert.deepStrictEqual(yield* presentIds, [biff.id])
      }
      yield* TestClock.adjust("10 seconds")
      yield* assertExpired(events, biff, "inactivity")
    }).pipe(Effect.provide(layer())))

  it.effect("a record is destroyed at its maximum lifetime, however active", () =>
    Effect.gen(function*() {
      const events = yield* Store.subscribe
      const biff = yield* createBiff
      yield* drain(events)

      // keep-alive every 50 seconds up to 7150 seconds; the lifetime is 2 hours
      for (let i = 0; i < 143; i++) {
        yield* TestClock.adjust("50 seconds")
        yield* Store.keepAlive(Character, { id: biff.id })
      }
      assert.deepStrictEqual(yield* presentIds, [biff.id])
      assert.deepStrictEqual(yield* drain(events), [])

      yield* TestClock.adjust("50 seconds")
      yield* assertExpired(events, biff, "lifetime")
    }).pipe(Effect.provide(layer())))

  describe("expiry goes through the primary destroy action", () => {
    class Farewells extends Context.Service<Farewells, Ref.Ref<ReadonlyArray<string>>>()("test/KeepAlive/Farewells") {}

    const Session = Resource.make("Session", {
      fields: { id: Schema.String, user: Schema.String },
      primaryKey: ["id"],
      inactivityTimeout: "5 minutes",
      actions: {
        destroy: Action.destroy({
          change: (cs) =>
            Changeset.after(cs, (session) =>
              Effect.gen(function*() {
                const farewells = yield* Farewells
                yield* Ref.update(farewells, (names) => [...names, session.user])
                return session
              }))
        })
      }
    })

    it.effect("so its hooks run when the record expires", () =>
      Effect.gen(function*() {
        const farewells = yield* Ref.make<ReadonlyArray<string>>([])
        yield* Effect.gen(function*() {
          const events = yield* Store.subscribe
          const session = yield* Store.create(Session, "create", { id: "s-1", user: "Lorraine" })
          yield* drain(events)

          yield* TestClock.adjust("4 minutes")
          assert.deepStrictEqual(yield* Ref.get(farewells), [])

          yield* TestClock.adjust("1 minute")
          assert.deepStrictEqual(yield* Ref.get(farewells), ["Lorraine"])
          const seen = yield* drain(events)
          assert.deepStrictEqual(tags(seen), ["Destroyed"])
          const destroyed = seen[0]
          assert.isDefined(destroyed)
          assert.deepStrictEqual(destroyed.key, { id: session.id })
          if (destroyed._tag === "Destroyed") {
            assert.strictEqual(destroyed.reason, "inactivity")
          }
          const error = yield* Store.get(Session, { id: "s-1" }).pipe(Effect.flip)
          assert.strictEqual(error._tag, "NotFound")
        }).pipe(Effect.provide(Store.layer([Session]).pipe(Layer.provide(Layer.succeed(Farewells, farewells)))))
      }))
  })
})
