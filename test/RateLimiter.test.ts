/**
 * The rate limiter example (`examples/rate-limiter.ts`): results answer each
 * request, and the bucket refills itself on its own schedule, driven by the
 * `TestClock`, on the GenServer and memory layers.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import { Metrics, Store } from "effect-gen-server"
import { TestClock } from "effect/testing"
import { Bucket, capacity } from "../examples/rate-limiter.js"

const key = { key: "k" }
const take = Store.update(Bucket, key, "take")
const tokens = Effect.map(Store.get(Bucket, key), (b) => b.tokens)

for (const dataLayer of ["genServer", "memory"] as const) {
  describe(`the rate limiter example (${dataLayer})`, () => {
    it.effect("answers each request with a result, refills a token a second until full, then stops", () =>
      Effect.gen(function*() {
        const firedOk = Effect.map(
          Metric.value(Metric.withAttributes(Metrics.schedulesFired, { resource: "Bucket", outcome: "ok" })),
          (state) => state.count
        )
        const firedBefore = yield* firedOk
        yield* Store.create(Bucket, "create", key)
        const answers = []
        for (let i = 0; i < capacity + 1; i++) answers.push(yield* take)
        assert.deepStrictEqual(answers.map((a) => a.remaining), [4, 3, 2, 1, 0, 0])
        assert.deepStrictEqual(answers.map((a) => a.allowed), [true, true, true, true, true, false])
        const [refill] = yield* Store.schedules(Bucket, key)
        assert.deepStrictEqual([refill?.action, refill?.at], ["refill", new Date(1_000)])
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* tokens, 1)
        assert.deepStrictEqual(yield* take, { allowed: true, remaining: 0 })
        yield* TestClock.adjust("1 minute")
        assert.strictEqual(yield* tokens, capacity)
        // full: no refill pending any more
        assert.deepStrictEqual(yield* Store.schedules(Bucket, key), [])
        // one refill for each token taken
        assert.strictEqual((yield* firedOk) - firedBefore, capacity + 1)
      }).pipe(Effect.provide(Store.layer([Bucket], { dataLayer }))))
  })
}
