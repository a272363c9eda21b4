import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Layer, Schema } from "effect"
import { Action, Changeset, Resource, Store } from "effect-gen-server"

// both hooks must be inside their actions before either calls the other
class Barrier extends Context.Service<Barrier, {
  readonly arrive: Effect.Effect<void>
}>()("test/Deadlock/Barrier") {}

const barrier = (parties: number) =>
  Layer.effect(
    Barrier,
    Effect.gen(function*() {
      let arrived = 0
      const open = yield* Deferred.make<void>()
      return Barrier.of({
        arrive: Effect.suspend(() => {
          arrived++
          return arrived >= parties ? Deferred.succeed(open, undefined) : Deferred.await(open)
        }).pipe(Effect.asVoid)
      })
    })
  )

// Peer's hook calls another Peer: an annotated accessor keeps its type from being circular
const peer = (): Resource.Any => Peer

const Peer = Resource.make("Peer", {
  fields: { id: Schema.String, other: Schema.String, pokes: Schema.Int },
  primaryKey: ["id"],
  actions: {
    noop: Action.update({ change: (cs) => Changeset.set(cs, "pokes", Changeset.get(cs, "pokes") + 1) }),
    poke: Action.update({
      change: (cs) =>
        Changeset.before(cs, (cs) =>
          Effect.gen(function*() {
            yield* (yield* Barrier).arrive
            yield* Store.update(peer(), { id: cs.data.other } as never, "noop" as never)
            return cs
          }))
    })
  }
})

describe("deadlock detection", () => {
  it.live("two records whose hooks call each other from two callers: one call is refused, none hangs", () =>
    Effect.gen(function*() {
      yield* Store.create(Peer, "create", { id: "a", other: "b", pokes: 0 })
      yield* Store.create(Peer, "create", { id: "b", other: "a", pokes: 0 })
      const [a, b] = yield* Effect.all([
        Effect.result(Store.update(Peer, { id: "a" }, "poke")),
        Effect.result(Store.update(Peer, { id: "b" }, "poke"))
      ], { concurrency: "unbounded" }).pipe(
        Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.die("deadlocked") })
      )
      const failures = [a, b].filter((r) => r._tag === "Failure")
      assert.strictEqual(failures.length, 1)
      const failure = failures[0]!
      assert.isTrue(failure._tag === "Failure" && failure.failure._tag === "ActionError")
      assert.match(failure._tag === "Failure" ? failure.failure.message : "", /deadlock/)
      // the refused poke changed nothing; the other went through and poked its peer once
      const pokes = [(yield* Store.get(Peer, { id: "a" })).pokes, (yield* Store.get(Peer, { id: "b" })).pokes]
      assert.deepStrictEqual(pokes.sort(), [0, 1])
      // neither record is left waiting: both still serve calls
      yield* Store.update(Peer, { id: "a" }, "noop")
      yield* Store.update(Peer, { id: "b" }, "noop")
    }).pipe(Effect.provide(Store.layer([Peer]).pipe(Layer.provide(barrier(2))))))
})
