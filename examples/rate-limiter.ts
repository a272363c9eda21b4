/**
 * A rate limiter: one token bucket per API key, in its own record. `take`
 * answers `{ allowed, remaining }` (an action's result); the bucket refills
 * itself, one token a second, on a schedule of its own that stops once it
 * is full. Run with `npm run example:rate-limiter`.
 */
import { Effect, Schema } from "effect"
import { Changeset, Resource, Store } from "effect-gen-server"

export const capacity = 5

export const Bucket = Resource.make("Bucket", {
  fields: { key: Schema.String, tokens: Schema.Int },
  primaryKey: ["key"],
  generated: { tokens: () => capacity },
  // a key nobody used for an hour is forgotten (its refills do not count as use)
  inactivityTimeout: "1 hour",
  actions: (Action) => ({
    take: Action.update({
      success: Schema.Struct({ allowed: Schema.Boolean, remaining: Schema.Int }),
      change: (cs) => {
        if (cs.data.tokens === 0) return Changeset.result(cs, { allowed: false, remaining: 0 })
        const taken = cs.pipe(
          Changeset.set("tokens", cs.data.tokens - 1),
          Changeset.result({ allowed: true, remaining: cs.data.tokens - 1 })
        )
        // the first token out of a full bucket starts the refills
        return cs.data.tokens === capacity ? Changeset.schedule(taken, "refill", { after: "1 second" }) : taken
      }
    }),
    refill: Action.update({
      change: (cs) => {
        const tokens = cs.data.tokens + 1
        const refilled = Changeset.set(cs, "tokens", tokens)
        return tokens < capacity ? Changeset.schedule(refilled, "refill", { after: "1 second" }) : refilled
      }
    })
  })
})

const take = (key: string) => Store.update(Bucket, { key }, "take")

export const main = Effect.gen(function*() {
  yield* Store.create(Bucket, "create", { key: "api-key-1" })
  for (let i = 1; i <= capacity + 2; i++) {
    const { allowed, remaining } = yield* take("api-key-1")
    yield* Effect.log(`request ${i}: ${allowed ? "allowed" : "refused"}, ${remaining} left`)
  }
  const [refill] = yield* Store.schedules(Bucket, { key: "api-key-1" })
  yield* Effect.log(`next refill at ${refill?.at.toISOString()}`)
  yield* Effect.sleep("2500 millis")
  const { remaining } = yield* take("api-key-1")
  yield* Effect.log(`after 2.5 s: allowed, ${remaining} left (2 refilled, 1 taken)`)
}).pipe(Effect.provide(Store.layer([Bucket])))

if (import.meta.url === `file://${process.argv[1]}`) Effect.runPromise(main)
