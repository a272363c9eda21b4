/**
 * The tests' own PostgreSQL schemas: a schema a test made is dropped even
 * when a connection left open still holds locks in it, and the schemas runs
 * killed mid-test left behind are recognised by their age.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Fiber, Layer } from "effect"
import { SqlClient } from "effect/sql"
import * as Pg from "./pg.js"

const exists = (schema: string) =>
  Pg.withAdmin((sql) =>
    Effect.map(
      sql.unsafe<{ readonly n: number }>(`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1`, [schema]),
      (rows) => rows[0]?.n === 1
    )
  )

describe("the tests' PostgreSQL schemas", () => {
  it.live("a schema is dropped even while another connection holds a lock in it", () =>
    Effect.gen(function*() {
      const schema = Pg.freshSchema("drop")
      yield* Pg.withAdmin((sql) => sql.unsafe(`CREATE SCHEMA "${schema}"`))
      const client = yield* Layer.build(Pg.layer("drop", schema, false))
      const sql = Context.get(client, SqlClient.SqlClient)
      yield* sql.unsafe(`CREATE TABLE t (id int)`)
      const locked = yield* Deferred.make<void>()
      // a transaction left open with a lock on the table, as a test that timed out leaves it
      const holder = yield* sql.withTransaction(
        sql.unsafe(`LOCK TABLE t IN ACCESS EXCLUSIVE MODE`).pipe(
          Effect.andThen(Deferred.succeed(locked, undefined)),
          Effect.andThen(sql.unsafe(`SELECT pg_sleep(60)`))
        )
      ).pipe(Effect.forkChild)
      yield* Deferred.await(locked)
      yield* Pg.dropSchema(schema).pipe(
        Effect.timeoutOrElse({
          duration: "8 seconds",
          orElse: () => Effect.die(new Error("the DROP waited for the lock"))
        })
      )
      assert.isFalse(yield* exists(schema))
      // the holder's connection was ended under it
      const exit = yield* Fiber.await(holder).pipe(Effect.timeout("5 seconds"))
      assert.isTrue(Exit.isFailure(exit))
    }).pipe(Effect.scoped), 30_000)

  it("a schema is stale by the time in its name, never a foreign one or one of a run going on", () => {
    const now = Date.now()
    const hour = 60 * 60 * 1000
    const made = (at: number, label = "durable") => `gs_${label}_${at.toString(36)}_abc123`
    assert.isFalse(Pg.isStaleSchema(Pg.freshSchema("durable"), now, 6 * hour))
    assert.isFalse(Pg.isStaleSchema(made(now - 5 * hour), now, 6 * hour))
    assert.isTrue(Pg.isStaleSchema(made(now - 7 * hour), now, 6 * hour))
    assert.isTrue(Pg.isStaleSchema(made(now - 7 * hour, "two_words"), now, 6 * hour))
    assert.isFalse(Pg.isStaleSchema("public", now, 6 * hour))
    assert.isFalse(Pg.isStaleSchema("gs_x_notatime!_abc", now, 6 * hour))
    assert.isFalse(Pg.isStaleSchema("gs_x_1_abc", now, 6 * hour)) // 1970: not a name freshSchema makes
  })

  it.live("stale schemas are dropped, fresh ones kept", () =>
    Effect.gen(function*() {
      const old = `gs_stale_${(Date.now() - 7 * 60 * 60 * 1000).toString(36)}_${Math.random().toString(36).slice(2, 8)}`
      const young = Pg.freshSchema("young")
      yield* Pg.withAdmin((sql) => sql.unsafe(`CREATE SCHEMA "${old}"`))
      yield* Pg.schemaScoped(young)
      const dropped = yield* Pg.dropStaleSchemas(6 * 60 * 60 * 1000)
      assert.include(dropped, old)
      assert.notInclude(dropped, young)
      assert.isFalse(yield* exists(old))
      assert.isTrue(yield* exists(young))
    }).pipe(Effect.scoped))
})
