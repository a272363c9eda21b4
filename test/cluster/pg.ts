/**
 * PostgreSQL for the cluster tests: 127.0.0.1:5432, trust auth, user
 * `postgres`, database `test`. Each layer gets a fresh schema (every
 * connection's `search_path`), dropped when the layer closes, even on failure.
 */
import { PgClient } from "@effect/sql-pg"
import { Cause, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"

export const pgConfig = {
  host: process.env.PGHOST ?? "127.0.0.1",
  port: Number(process.env.PGPORT ?? 5432),
  username: process.env.PGUSER ?? "postgres",
  database: process.env.PGDATABASE ?? "test"
} as const

/** A fresh schema name for one run. */
export const freshSchema = (label: string) =>
  `gs_${label}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`

const admin = PgClient.layer({ ...pgConfig, maxConnections: 1 })

/** Runs `f` with an admin connection; dies with a clear message when PostgreSQL is unreachable. */
export const withAdmin = <A, E>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return yield* f(sql)
  }).pipe(
    Effect.provide(admin),
    Effect.timeoutOrElse({
      duration: "10 seconds",
      orElse: () => Effect.die(new Error("PostgreSQL did not answer within 10 s"))
    }),
    Effect.catchTag("SqlError", (e: any) =>
      Effect.die(
        new Error(
          `PostgreSQL is not reachable at ${pgConfig.host}:${pgConfig.port} (user ${pgConfig.username}, database ${pgConfig.database}): ${e.message}`
        )
      ))
  )

/**
 * Drops `schema` and what is in it. The connections still holding locks on
 * its tables (a pool a failed or timed-out test left open, a runner that did
 * not stop) would make the `DROP` wait for them: they are terminated first,
 * as nothing outside the test that made the schema uses it.
 */
export const dropSchema = (schema: string) =>
  withAdmin((sql) =>
    Effect.gen(function*() {
      yield* sql.unsafe(
        `SELECT pg_terminate_backend(pid) FROM (
          SELECT DISTINCT l.pid FROM pg_locks l
          JOIN pg_class c ON c.oid = l.relation
          JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND l.pid <> pg_backend_pid()
        ) holders`,
        [schema]
      )
      yield* sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    })
  )

/** Creates `schema` now and drops it when the scope closes; a failed drop is reported, not silent. */
export const schemaScoped = (schema: string) =>
  Effect.acquireRelease(
    withAdmin((sql) => sql.unsafe(`CREATE SCHEMA "${schema}"`)),
    () =>
      dropSchema(schema).pipe(
        Effect.catchCause((cause) =>
          Effect.sync(() => console.warn(`could not drop the test schema ${schema}: ${Cause.pretty(cause)}`))
        )
      )
  )

/** A schema `freshSchema` made more than `olderThanMs` ago (from the time in its name). */
export const isStaleSchema = (name: string, now: number, olderThanMs: number): boolean => {
  const match = /^gs_.+_([0-9a-z]+)_[0-9a-z]+$/.exec(name)
  if (match === null) return false
  const made = parseInt(match[1] ?? "", 36)
  return Number.isFinite(made) && made > Date.UTC(2020, 0) && made < now - olderThanMs
}

/**
 * Drops the schemas of earlier runs that were killed before they could drop
 * their own (more than `olderThanMs` old, so never a schema of a run going on
 * now); returns their names.
 */
export const dropStaleSchemas = (olderThanMs: number) =>
  Effect.gen(function*() {
    const rows = yield* withAdmin((sql) =>
      sql.unsafe<{ readonly nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname LIKE 'gs\\_%'`)
    )
    const now = Date.now()
    const stale = rows.map((r) => r.nspname).filter((name) => isStaleSchema(name, now, olderThanMs))
    for (const schema of stale) yield* dropSchema(schema)
    return stale
  })

/**
 * A `SqlClient` over a fresh schema, dropped when the layer closes; with
 * `own: false`, over an existing schema (created and dropped by the caller).
 */
export const layer = (label: string, schema = freshSchema(label), own = true) => {
  const client = PgClient.layer({ ...pgConfig, maxConnections: 8, startupParameters: { search_path: schema } }).pipe(
    Layer.orDie
  )
  return own ? Layer.unwrap(Effect.as(schemaScoped(schema), client)) : client
}
