/**
 * The databases durable resources are tested on: PostgreSQL (a fresh schema
 * per test, dropped after) and SQLite (a file in a fresh temporary directory,
 * removed after). `scoped` gives a `SqlClient` layer over the test's
 * database: each Store built on it is a "process"; the database outlives
 * them until the test's scope closes.
 */
import { Effect, Layer } from "effect"
import { SqliteClient } from "effect-gen-server"
import type { SqlClient } from "effect/sql"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Pg from "../cluster/pg.js"

export interface Database {
  readonly name: string
  /** A client layer over a database of the test's own, removed when the test's scope closes. */
  readonly scoped: Effect.Effect<Layer.Layer<SqlClient.SqlClient>, never, import("effect").Scope.Scope>
  /** The placeholder of the n-th parameter. */
  readonly param: (n: number) => string
  /** A JSON column as read. */
  readonly json: (u: unknown) => unknown
  /** A JSON value as a parameter of a JSON column. */
  readonly jsonParam: (u: unknown) => unknown
  /** Makes storage refuse every write of a state holding `word` (a trigger raising an error). */
  readonly refuseWrites: (sql: SqlClient.SqlClient, word: string) => Effect.Effect<void, unknown>
}

export const postgres: Database = {
  name: "PostgreSQL",
  scoped: Effect.gen(function*() {
    const schema = Pg.freshSchema("durable")
    yield* Pg.schemaScoped(schema)
    return Pg.layer("durable", schema, false)
  }),
  param: (n) => `$${n}`,
  json: (u) => u,
  jsonParam: (u) => JSON.stringify(u),
  refuseWrites: (sql, word) =>
    Effect.gen(function*() {
      yield* sql.unsafe(`CREATE FUNCTION refuse_${word}() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION 'refused by a trigger'; END $$ LANGUAGE plpgsql`)
      yield* sql.unsafe(`CREATE TRIGGER refuse_${word} BEFORE UPDATE ON effect_gen_server_records FOR EACH ROW
        WHEN (NEW.state::text LIKE '%${word}%') EXECUTE FUNCTION refuse_${word}()`)
    })
}

export const sqlite: Database = {
  name: "SQLite",
  scoped: Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "durable-"))),
      (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
    ),
    (dir) => SqliteClient.layer({ filename: Path.join(dir, "store.db") }).pipe(Layer.orDie)
  ),
  param: (n) => `?${n}`,
  json: (u) => typeof u === "string" ? JSON.parse(u) : u,
  jsonParam: (u) => JSON.stringify(u),
  refuseWrites: (sql, word) =>
    Effect.asVoid(sql.unsafe(`CREATE TRIGGER refuse_${word} BEFORE UPDATE ON effect_gen_server_records
      WHEN NEW.state LIKE '%${word}%' BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END`))
}

export const databases: ReadonlyArray<Database> = [postgres, sqlite]
