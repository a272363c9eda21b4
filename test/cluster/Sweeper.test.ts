import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Layer, Schema } from "effect"
import { TestRunner } from "effect/cluster"
import { SqlClient } from "effect/sql"
import { Action, Changeset, Cluster, Resource, Store } from "../../src/index.js"
import * as Pg from "./pg.js"

/** Where the expiry of the record "stuck" waits: `entered` once its destroy hook runs (counted), then until `release`. */
const gate: { entered?: Deferred.Deferred<void>; release?: Deferred.Deferred<void>; runs: number } = { runs: 0 }

/** Idle 1 s; its destroy's after hook hangs at {@link gate} for the record "stuck". */
const Sticky = Resource.make("Sticky", {
  fields: { id: Schema.String },
  primaryKey: ["id"],
  inactivityTimeout: "1 second",
  actions: {
    destroy: Action.destroy({
      change: (cs) =>
        Changeset.after(cs, (record) =>
          record.id !== "stuck" ? Effect.succeed(record) : Effect.gen(function*() {
            gate.runs++
            yield* Deferred.succeed(gate.entered!, undefined)
            yield* Deferred.await(gate.release!)
            return record
          }))
    })
  }
})

/** No deadline: its destroy leaves a tombstone for the purge. */
const Plain = Resource.make("Plain", { fields: { id: Schema.String }, primaryKey: ["id"] })

describe("Cluster sweeper (TestRunner, PostgreSQL)", () => {
  it.live(
    "a record whose expiry hangs delays neither another record's expiry nor the tombstone purge",
    () =>
      Effect.gen(function*() {
        gate.entered = yield* Deferred.make<void>()
        gate.release = yield* Deferred.make<void>()
        gate.runs = 0
        const store = Cluster.layer([Sticky, Plain], {
          tablePrefix: "w_",
          sweepInterval: "100 millis",
          operationRetention: "1 second"
        }).pipe(Layer.provideMerge(TestRunner.layer), Layer.provideMerge(Pg.layer("sweeper")))
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const rows = (where: string) =>
            Effect.map(
              sql.unsafe<{ readonly n: string }>(`SELECT count(*) AS n FROM w_records WHERE ${where}`),
              (rows) => Number(rows[0]!.n)
            )
          /** Waits (at most `ms`) until `where` selects no row: how many it selects then. */
          const until = Effect.fnUntraced(function*(where: string, ms: number) {
            for (let waited = 0; waited < ms && (yield* rows(where)) > 0; waited += 100) {
              yield* Effect.sleep("100 millis")
            }
            return yield* rows(where)
          })
          yield* Store.create(Sticky, "create", { id: "stuck" })
          // past its deadline at 1 s: its expiry starts, and hangs in the destroy hook
          yield* Deferred.await(gate.entered!).pipe(
            Effect.timeoutOrElse({ duration: "10 seconds", orElse: () => Effect.die("stuck's expiry never ran") })
          )
          yield* Store.create(Sticky, "create", { id: "later" })
          yield* Store.create(Plain, "create", { id: "gone" })
          yield* Store.destroy(Plain, { id: "gone" })
          assert.strictEqual(yield* until(`alive AND key = 'later'`, 5_000), 0, "later expired")
          assert.strictEqual(yield* until(`key = 'gone'`, 5_000), 0, "gone's tombstone was purged")
          assert.strictEqual(yield* rows(`alive AND key = 'stuck'`), 1, "stuck is still being expired")
          assert.strictEqual(gate.runs, 1, "stuck's expiry was sent once, not again by every sweep")
          // once its hook returns, its expiry ends, and the record is gone
          yield* Deferred.succeed(gate.release!, undefined)
          assert.strictEqual(yield* until(`alive AND key = 'stuck'`, 5_000), 0, "stuck expired")
          assert.strictEqual(gate.runs, 1)
        }).pipe(Effect.provide(store), Effect.scoped, Effect.ensuring(Deferred.succeed(gate.release!, undefined)))
      }),
    { timeout: 30_000 }
  )
})
