/**
 * Lifecycle events of one resource, typed: `Store.eventsOf` and
 * `Store.subscribeTo`, and why a subscription that is live before the
 * operations matters.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Schema, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Event, Store } from "../src/index.js"
import { Character, layer, Machine } from "./fixtures/TimeTravel.js"

const describeEvent = (event: Event.Of<typeof Character>) =>
  event._tag === "Destroyed"
    ? `Destroyed ${event.key.id} (${event.reason})`
    : `${event._tag} ${event.key.id} in ${event.record.currentYear}`

/**
 * `effect` with a one-second limit on the `TestClock`: a stream waiting for an
 * event that never comes fails with a `TimeoutError` instead of hanging.
 */
const withinDeadline = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(Effect.timeout(effect, "1 second"), { startImmediately: true })
    for (let i = 0; i < 100 && fiber.pollUnsafe() === undefined; i++) yield* Effect.yieldNow
    if (fiber.pollUnsafe() === undefined) yield* TestClock.adjust("1 second")
    return yield* Fiber.join(fiber)
  })

describe("Event", () => {
  describe("Store.subscribeTo", () => {
    it.effect("a stream run after the operations still receives each of the resource's events, typed", () =>
      Effect.gen(function*() {
        const events = yield* Store.subscribeTo(Character)
        // forked before the operations, but it starts only after them
        const collected = yield* events.pipe(Stream.take(3), Stream.runCollect, Effect.forkChild)
        const marty = yield* Store.create(Character, "create", { id: "marty", name: "Marty", currentYear: 1985 })
        yield* Store.create(Machine, "create", { id: "delorean", name: "DeLorean" })
        yield* Store.update(Character, marty, "travelInTime", { targetYear: 1955 })
        yield* Store.destroy(Character, marty)
        assert.deepStrictEqual((yield* withinDeadline(Fiber.join(collected))).map(describeEvent), [
          "Created marty in 1985",
          "Updated marty in 1955",
          "Destroyed marty (action)"
        ])
      }).pipe(Effect.provide(layer())))

    it.effect("events published while nobody reads wait in the subscription: an expiry under the TestClock", () =>
      Effect.gen(function*() {
        const events = yield* Store.subscribeTo(Character)
        yield* Store.create(Character, "create", { id: "doc", name: "Doc", currentYear: 1985 })
        yield* TestClock.adjust("1 minute")
        const received = yield* withinDeadline(events.pipe(Stream.take(2), Stream.runCollect))
        assert.deepStrictEqual(received.map(describeEvent), ["Created doc in 1985", "Destroyed doc (inactivity)"])
        // the record decodes through the resource's own event schema
        assert.deepStrictEqual(Schema.decodeUnknownSync(Event.schema(Character))(received[1]), received[1])
      }).pipe(Effect.provide(layer())))

    it.effect("the stream ends when the store closes, with the events read by then", () =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(layer(), scope)
        const events = yield* Store.subscribeTo(Character).pipe(Effect.provide(context))
        yield* Store.create(Character, "create", { id: "marty", name: "Marty", currentYear: 1985 }).pipe(
          Effect.provide(context)
        )
        const collected = yield* Stream.runCollect(events).pipe(Effect.forkChild({ startImmediately: true }))
        yield* Scope.close(scope, Exit.void)
        assert.deepStrictEqual((yield* withinDeadline(Fiber.join(collected))).map(describeEvent), [
          "Created marty in 1985"
        ])
      }))
  })

  describe("Store.eventsOf", () => {
    it.effect("only the resource's events, typed, from the moment the stream is pulled", () =>
      Effect.gen(function*() {
        const collected = yield* Store.eventsOf(Character).pipe(
          Stream.take(2),
          Stream.runCollect,
          Effect.forkChild({ startImmediately: true })
        )
        yield* Store.create(Machine, "create", { id: "delorean", name: "DeLorean" })
        const marty = yield* Store.create(Character, "create", { id: "marty", name: "Marty", currentYear: 1985 })
        yield* Store.update(Character, marty, "travelInTime", { targetYear: 2015 })
        assert.deepStrictEqual((yield* withinDeadline(Fiber.join(collected))).map(describeEvent), [
          "Created marty in 1985",
          "Updated marty in 2015"
        ])
      }).pipe(Effect.provide(layer())))
  })
})
