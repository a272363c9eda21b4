/**
 * PostgreSQL for the cluster tests: 127.0.0.1:5432, trust auth, user
 * `postgres`, database `test`. Each layer gets a fresh schema (every
 * connection's `search_path`), dropped when the layer closes, even on failure.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer } from "effect"
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

/** Creates `schema` now and drops it when the scope closes. */
export const schemaScoped = (schema: string) =>
  Effect.acquireRelease(
    withAdmin((sql) => sql.unsafe(`CREATE SCHEMA "${schema}"`)),
    () => Effect.ignore(withAdmin((sql) => sql.unsafe(`DROP SCHEMA "${schema}" CASCADE`)))
  )

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
