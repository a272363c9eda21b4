/**
 * How long a process takes to start over a database holding `STARTUP_N`
 * (default 1,000,000) stored records of a durable resource, and the heap
 * they then hold: the rows are written straight into the state table (as a
 * previous process would have left them, in one transaction), then a Store
 * is built over them, timed until its first get answers. Every record comes
 * back hibernated: no fiber.
 *
 *   npm run bench:durable:startup                       # SQLite, in a temporary file
 *   npm run bench:durable:startup -- --db=postgres      # PostgreSQL, a fresh schema
 *
 * @since 0.3.0
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Metric, Schema } from "effect"
import { Metrics, Query, Resource, SqliteClient, Store } from "effect-gen-server"
import { SqlClient } from "effect/sql"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { collectGarbage } from "./harness.js"

const count = Number(process.env.STARTUP_N ?? 1_000_000)
const db = process.argv.find((a) => a.startsWith("--db="))?.slice(5) ?? "sqlite"

const Session = Resource.make("Session", {
  fields: { id: Schema.String, user: Schema.String, visits: Schema.Int },
  primaryKey: ["id"],
  durable: true,
  inactivityTimeout: "1 day",
  restart: "lastState"
})

const heap = () => {
  for (let i = 0; i < 4; i++) collectGarbage()
  return process.memoryUsage().heapUsed
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`

/** Creates the tables through a Store, then writes `count` rows in one statement per 10,000. */
const seed = (sql: SqlClient.SqlClient, client: Layer.Layer<SqlClient.SqlClient>) =>
  Effect.gen(function*() {
    yield* Effect.scoped(Layer.build(Store.layer([Session]).pipe(Layer.provide(client))))
    const now = Date.now()
    const started = performance.now()
    const pg = db === "postgres"
    for (let from = 0; from < count; from += 10_000) {
      const rows = Array.from({ length: Math.min(10_000, count - from) }, (_, i) => {
        const id = `s${from + i}`
        return [id, JSON.stringify({ id, user: `user${(from + i) % 977}`, visits: i % 100 })]
      })
      yield* sql.withTransaction(sql.unsafe(
        `INSERT INTO effect_gen_server_records (resource, key, version, alive, state, created_at, last_activity,
           inactivity_deadline, ops)
         SELECT 'Session', ${pg ? "r->>0" : "r.value->>0"}, 1, ${pg ? "TRUE" : "1"}, ${
          pg ? "(r->>1)::jsonb" : "r.value->>1"
        }, ${now}, ${now}, ${now + 86_400_000}, '[]'
         FROM ${pg ? "jsonb_array_elements($1::jsonb) AS r" : "json_each(?1) AS r"}`,
        [JSON.stringify(rows)]
      ))
    }
    console.log(`seeded ${count.toLocaleString()} rows in ${((performance.now() - started) / 1000).toFixed(1)} s`)
  })

const startup = (client: Layer.Layer<SqlClient.SqlClient>) =>
  Effect.gen(function*() {
    const before = heap()
    const started = performance.now()
    const context = yield* Layer.build(Store.layer([Session]).pipe(Layer.provide(client)))
    const first = yield* Store.get(Session, { id: `s${count - 1}` }).pipe(Effect.provideContext(context))
    const seconds = (performance.now() - started) / 1000
    const asleep = yield* Metric.value(Metric.withAttributes(Metrics.hibernating, { resource: "Session" }))
    const after = heap()
    const read = performance.now()
    const some = yield* Store.read(Query.make(Session).pipe(Query.limit(10))).pipe(Effect.provideContext(context))
    console.log(
      `started over ${count.toLocaleString()} stored records in ${seconds.toFixed(1)} s ` +
        `(${Math.round(count / seconds).toLocaleString()} records/s); ${asleep.value.toLocaleString()} hibernated; ` +
        `heap +${mib(after - before)} (${Math.round((after - before) / count)} B per record, its data included); ` +
        `first get: ${first.id}; a read of 10: ${(performance.now() - read).toFixed(1)} ms (${some.length})`
    )
  }).pipe(Effect.scoped)

const sqlite = Effect.gen(function*() {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "startup-"))),
    (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  )
  const client = SqliteClient.layer({ filename: Path.join(dir, "store.db") }).pipe(Layer.orDie)
  yield* Effect.gen(function*() {
    yield* seed(yield* SqlClient.SqlClient, client)
  }).pipe(Effect.provide(client))
  yield* startup(client)
})

const postgres = Effect.gen(function*() {
  const schema = `startup_${Date.now().toString(36)}`
  const admin = PgClient.layer({ host: "127.0.0.1", port: 5432, username: "postgres", database: "test" })
  yield* Effect.acquireRelease(
    Effect.provide(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`CREATE SCHEMA "${schema}"`)), admin),
    () =>
      Effect.ignore(
        Effect.provide(
          Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`DROP SCHEMA "${schema}" CASCADE`)),
          admin
        )
      )
  )
  const client = PgClient.layer({
    host: "127.0.0.1",
    port: 5432,
    username: "postgres",
    database: "test",
    startupParameters: { search_path: schema }
  }).pipe(Layer.orDie)
  yield* Effect.gen(function*() {
    yield* seed(yield* SqlClient.SqlClient, client)
  }).pipe(Effect.provide(client))
  yield* startup(client)
})

Effect.runPromise(Effect.scoped(db === "postgres" ? postgres : sqlite)).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
