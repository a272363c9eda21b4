/**
 * A caller of the cluster reading its owner's reply: a reply stored by an
 * older version is migrated; one this version cannot read (its migration
 * fails) is `Unavailable` with `applied: "unknown"` (the write committed on
 * the owner), never a defect.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { TestRunner } from "effect/cluster"
import { Cluster, Resource, Store } from "../../src/index.js"
import * as Pg from "./pg.js"

/** The owner's version. */
const GaugeV1 = Resource.make("Gauge", {
  fields: { id: Schema.String, n: Schema.Int },
  primaryKey: ["id"]
})

/** The caller's version: its migration from version 1 refuses n = 13. */
const GaugeV2 = Resource.make("Gauge", {
  fields: { id: Schema.String, n: Schema.Int, unit: Schema.String },
  primaryKey: ["id"],
  version: 2,
  migrations: {
    1: Resource.migration(Schema.Struct({ id: Schema.String, n: Schema.Int }), (v1) => {
      if (v1.n === 13) throw new Error("13 has no unit")
      return { ...v1, unit: "each" }
    })
  }
})

describe("Cluster caller (TestRunner, PostgreSQL)", () => {
  it.live(
    "an older owner's reply this version cannot migrate: Unavailable, applied unknown, not a defect",
    () =>
      Effect.gen(function*() {
        // this process's runner owns the records with version 1; a client of version 2 calls them
        const v2 = yield* Layer.build(Cluster.layer([GaugeV2], { tablePrefix: "g_", runner: false }))
        yield* Store.create(GaugeV1, "create", { id: "g", n: 1 })
        const migrated = yield* Store.update(GaugeV2, { id: "g" }, "update", { n: 2 }).pipe(Effect.provideContext(v2))
        assert.deepStrictEqual(migrated, { id: "g", n: 2, unit: "each" })
        const error = yield* Effect.flip(
          Store.update(GaugeV2, { id: "g" }, "update", { n: 13 }).pipe(Effect.provideContext(v2))
        )
        assert.strictEqual(error._tag, "Unavailable")
        if (error._tag === "Unavailable") {
          assert.strictEqual(error.applied, "unknown")
          assert.include(error.message, "13 has no unit")
        }
        // it was applied, once: the owner's version reads it
        assert.deepStrictEqual(yield* Store.get(GaugeV1, { id: "g" }), { id: "g", n: 13 })
      }).pipe(
        Effect.scoped,
        Effect.provide(
          Cluster.layer([GaugeV1], { tablePrefix: "g_" }).pipe(
            Layer.provideMerge(TestRunner.layer),
            Layer.provideMerge(Pg.layer("caller"))
          )
        )
      ),
    { timeout: 30_000 }
  )
})
