/**
 * An update to an idle record (its fiber waits on an empty mailbox) is
 * served in its caller's fiber; an action that needs the record's fiber
 * (hooks, an effectful change, a restart) is handed to it first in its
 * mailbox. Either way callers see the arrival order: what arrives while the
 * record is not idle waits behind what came first.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Schema } from "effect"
import { Action, Changeset, Resource, Store } from "effect-gen-server"
import { TestClock } from "effect/testing"
import { drain, tags } from "./fixtures/Events.js"

const Dial = Resource.make("Dial", {
  fields: { id: Schema.String, n: Schema.Int },
  primaryKey: ["id"],
  restart: "lastState",
  actions: {
    bump: Action.update({ change: (cs) => Changeset.set(cs, "n", Changeset.get(cs, "n") + 1) }),
    // waits a second of the clock, then multiplies by ten
    slowTimesTen: Action.update({
      change: (cs) =>
        Changeset.before(cs, (cs) => Effect.as(Effect.sleep("1 second"), Changeset.set(cs, "n", cs.data.n * 10)))
    }),
    // crashes synchronously, in the change itself
    boom: Action.update({
      change: () => {
        throw new Error("boom")
      }
    })
  }
})

/** Forks each call and runs it until it waits, in order; what each saw (n, or its error's tag). */
const inOrder = (actions: ReadonlyArray<string>, moveClock: boolean) =>
  Effect.gen(function*() {
    const calls = []
    for (const action of actions) {
      calls.push(
        yield* Effect.forkChild(Store.update(Dial, { id: "d" }, action as "bump"), { startImmediately: true })
      )
    }
    if (moveClock) yield* TestClock.adjust("1 second")
    const seen = []
    for (const call of calls) {
      const exit = yield* Fiber.await(call)
      seen.push(Exit.isSuccess(exit) ? exit.value.n : (exit.cause.reasons[0] as any)?.error?._tag)
    }
    return seen
  })

describe("updates to an idle record", () => {
  it.effect("a plain update on an idle record is answered before its caller waits", () =>
    Effect.gen(function*() {
      yield* Store.create(Dial, "create", { id: "d", n: 1 })
      const call = yield* Effect.forkChild(Store.update(Dial, { id: "d" }, "bump"), { startImmediately: true })
      // no other fiber ran: the caller's fiber served it
      assert.deepStrictEqual(call.pollUnsafe()?.pipe(Exit.map((r) => r.n)), Exit.succeed(2))
    }).pipe(Effect.provide(Store.layer([Dial]))))

  it.effect("calls arriving behind an action with a hook wait for it, in order", () =>
    Effect.gen(function*() {
      yield* Store.create(Dial, "create", { id: "d", n: 1 })
      assert.deepStrictEqual(yield* inOrder(["slowTimesTen", "bump", "bump"], true), [10, 11, 12])
      assert.strictEqual((yield* Store.get(Dial, { id: "d" })).n, 12)
    }).pipe(Effect.provide(Store.layer([Dial]))))

  it.effect("a crash on an idle record restarts it before the calls behind it are served", () =>
    Effect.gen(function*() {
      yield* Store.create(Dial, "create", { id: "d", n: 1 })
      const events = yield* Store.subscribe
      assert.deepStrictEqual(yield* inOrder(["boom", "bump", "boom", "bump"], false), [
        "RecordCrashed",
        2,
        "RecordCrashed",
        3
      ])
      assert.deepStrictEqual(tags(yield* drain(events)), ["Restarted", "Updated", "Restarted", "Updated"])
    }).pipe(Effect.provide(Store.layer([Dial]))))
})
