import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { TestRunner } from "effect/cluster"
import { Action, Cluster, Resource, Store } from "../../src/index.js"
import { protocolOf, retryableTag } from "../../src/internal/cluster/protocol.js"
import { compile } from "../../src/internal/resource.js"
import * as Pg from "./pg.js"

/** How many times Mortal's `quit` ran. */
const quits = { runs: 0 }

/** Removed by its first crash (`restart: "never"`): a crash is plain to see. */
const Mortal = Resource.make("Mortal", {
  fields: { id: Schema.String, n: Schema.Int },
  primaryKey: ["id"],
  restart: "never",
  actions: {
    bump: Action.update({ accept: ["n"] }),
    // an action that interrupts itself
    quit: Action.update({
      change: () =>
        Effect.suspend(() => {
          quits.runs++
          return Effect.interrupt
        })
    })
  }
})

const store = (label: string) =>
  Cluster.layer([Mortal], { tablePrefix: "o_" }).pipe(
    Layer.provideMerge(TestRunner.layer),
    Layer.provideMerge(Pg.layer(label))
  )

describe("Cluster owner (TestRunner, PostgreSQL)", () => {
  it.effect(
    "an input the owner's version cannot decode is refused, retryable and not applied: no restart policy runs",
    () =>
      Effect.gen(function*() {
        yield* Store.create(Mortal, "create", { id: "m", n: 1 })
        const client = yield* protocolOf(compile(Mortal)).client
        // what a caller of another version sends when this version narrowed n (say Schema.Number to Schema.Int)
        const update = yield* Effect.flip(
          client("m").Update({
            action: "bump",
            op: "op-update",
            input: { attributes: { n: 1.5 }, arguments: {} },
            callers: [],
            version: 7
          })
        )
        assert.strictEqual(update._tag, retryableTag)
        assert.strictEqual((update as any).applied, "no")
        assert.match((update as any).message, /version 7 that version 1 on this runner cannot decode/)
        // the record is kept as it was (with restart "never", a crash would have removed it)
        assert.deepStrictEqual(yield* Store.get(Mortal, { id: "m" }), { id: "m", n: 1 })
        const create = yield* Effect.flip(
          client("z").Create({
            action: "create",
            op: "op-create",
            data: { id: "z", n: 1.5 },
            input: { attributes: { id: "z", n: 1.5 }, arguments: {} },
            callers: [],
            version: 7
          })
        )
        assert.strictEqual(create._tag, retryableTag)
        assert.strictEqual((create as any).applied, "no")
        assert.strictEqual((yield* Effect.flip(Store.get(Mortal, { id: "z" })))._tag, "NotFound")
        // the record still takes what its version can decode
        assert.deepStrictEqual(yield* Store.update(Mortal, { id: "m" }, "bump", { n: 2 }), { id: "m", n: 2 })
      }).pipe(Effect.provide(store("undecodable"))),
    { timeout: 30_000 }
  )

  // live: without the fix the caller re-sends it on a real schedule, ending Unavailable after ~6 s
  it.live(
    "an action that interrupts itself is a crash: run once, RecordCrashed, then the restart policy",
    () =>
      Effect.gen(function*() {
        quits.runs = 0
        yield* Store.create(Mortal, "create", { id: "q", n: 1 })
        const crashed = yield* Effect.flip(Store.update(Mortal, { id: "q" }, "quit"))
        assert.strictEqual(crashed._tag, "RecordCrashed")
        assert.strictEqual(quits.runs, 1, "run once, not re-sent as a lost reply")
        // restart "never": the crash removed the record
        assert.strictEqual((yield* Effect.flip(Store.get(Mortal, { id: "q" })))._tag, "NotFound")
      }).pipe(Effect.provide(store("interrupted"))),
    { timeout: 30_000 }
  )
})
