/**
 * The state store's statements on PostgreSQL: JSON as `jsonb`, a sequence
 * giving creation order, an index per indexed field, and the group commit's
 * statements over `jsonb_to_recordset` of one parameter, each sending the
 * notices of the rows it wrote in the same round trip.
 *
 * @internal
 */
import { Effect } from "effect"
import type { Compiled } from "../resource.js"
import { backfillDeadSince, deadSinceIndex, type Names, quoteIdent, type Statements, type Written } from "./dialect.js"
import { hash, noticeSql } from "./notices.js"
import { rememberedOps } from "./rows.js"

/** @internal */
export const make = (names: Names): Statements => {
  const { channel, name, quarantine, table } = names
  // the row's operation ids, the oldest dropped beyond `rememberedOps`, then the write's own
  const kept = `(CASE WHEN jsonb_array_length(t.ops) >= ${rememberedOps} THEN t.ops - 0 ELSE t.ops END)`
  const own = `(CASE WHEN v.op IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(v.op) END)`
  const append = `${kept} || ${own}`
  const remember = `${kept} || EXCLUDED.ops`
  return {
    dialect: "pg",
    parsesJson: true,
    p: (n) => `$${n}`,
    json: (placeholder) => `${placeholder}::jsonb`,
    least: "LEAST",
    forUpdate: " FOR UPDATE",
    create: (sql, resources: Iterable<Compiled>) =>
      sql.withTransaction(Effect.gen(function*() {
        // concurrent processes creating the same table would race on the catalog
        yield* sql.unsafe(`SELECT pg_advisory_xact_lock(hashtext($1))`, [name])
        yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${table} (
          resource text NOT NULL,
          key text NOT NULL,
          version bigint NOT NULL,
          alive boolean NOT NULL,
          state jsonb,
          created_at bigint NOT NULL,
          last_activity bigint NOT NULL,
          inactivity_deadline bigint,
          lifetime_deadline bigint,
          initial jsonb,
          ops jsonb NOT NULL,
          schema_version integer NOT NULL DEFAULT 1,
          seq bigserial NOT NULL,
          dead_since bigint,
          schedules jsonb,
          wake_at bigint,
          PRIMARY KEY (resource, key)
        )`)
        // what is there already is looked up first: `ALTER TABLE` and `CREATE INDEX` lock the table even when
        // they change nothing, and a process starting would wait for every transaction on it, then block them all
        const columns = new Set(
          (yield* sql.unsafe<{ readonly column_name: string }>(
            `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1`,
            [name]
          )).map((c) => c.column_name)
        )
        const missing = (index: string) =>
          Effect.map(
            sql.unsafe<{ readonly found: string | null }>(`SELECT to_regclass($1)::text AS found`, [quoteIdent(index)]),
            (rows) => rows[0]?.found == null
          )
        const indexOnce = (index: string, statement: string) =>
          Effect.flatMap(missing(index), (absent) => absent ? sql.unsafe(statement) : Effect.void)
        // tables made by 0.2 have no schema_version: their rows are version 1
        if (!columns.has("schema_version")) {
          yield* sql.unsafe(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS schema_version integer NOT NULL DEFAULT 1`)
        }
        // tables made before 0.6 have no dead_since: their tombstones died at their last commit
        if (!columns.has("dead_since")) {
          yield* sql.unsafe(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS dead_since bigint`)
        }
        // tables made before 0.6 have no schedules: their records have none
        if (!columns.has("schedules")) {
          yield* sql.unsafe(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS schedules jsonb`)
          yield* sql.unsafe(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS wake_at bigint`)
        }
        yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${quarantine} (
          resource text NOT NULL,
          key text NOT NULL,
          version bigint NOT NULL,
          schema_version integer NOT NULL,
          state text,
          created_at bigint NOT NULL,
          last_activity bigint NOT NULL,
          initial text,
          reason text NOT NULL,
          quarantined_at bigint NOT NULL
        )`)
        yield* indexOnce(
          `${name}_due`,
          `CREATE INDEX IF NOT EXISTS ${quoteIdent(`${name}_due`)} ON ${table} ` +
            `((LEAST(inactivity_deadline, lifetime_deadline))) WHERE alive`
        )
        yield* indexOnce(`${name}_dead_since`, deadSinceIndex(names))
        // what the cluster's sweeper looks for: a deadline passed, or a schedule due
        yield* indexOnce(
          `${name}_wake`,
          `CREATE INDEX IF NOT EXISTS ${quoteIdent(`${name}_wake`)} ON ${table} ` +
            `((LEAST(inactivity_deadline, lifetime_deadline, wake_at))) WHERE alive`
        )
        // row locks only, on what a 0.5 process may have left (none once filled: the index finds none)
        yield* sql.unsafe(backfillDeadSince(names))
        for (const resource of resources) {
          for (const field of resource.indexes) {
            const index = `${name}_${resource.name}_${field}`.replace(/[^A-Za-z0-9_]/g, "_").slice(0, 50) +
              `_${hash(`${resource.name}\u0000${field}`)}`
            yield* indexOnce(
              index,
              `CREATE INDEX IF NOT EXISTS ${quoteIdent(index)} ON ${table} ((state->'${
                field.replace(/'/g, "''")
              }')) WHERE resource = '${resource.name.replace(/'/g, "''")}' AND alive`
            )
          }
        }
      })),
    dml: {
      insert: `INSERT INTO ${table} AS t (resource, key, version, alive, state, created_at, last_activity,
           inactivity_deadline, lifetime_deadline, initial, ops, schema_version, schedules, wake_at)
         SELECT v.resource, v.key, 1, TRUE, v.state, v.created_at, v.last_activity, v.inactivity_deadline,
           v.lifetime_deadline, v.initial, ${own}, v.schema_version, v.schedules, v.wake_at
         FROM jsonb_to_recordset($1::jsonb) AS v(resource text, key text, state jsonb, created_at bigint,
           last_activity bigint, inactivity_deadline bigint, lifetime_deadline bigint, initial jsonb, op text,
           schema_version integer, schedules jsonb, wake_at bigint)
         ON CONFLICT (resource, key) DO UPDATE SET version = t.version + 1, alive = TRUE, state = EXCLUDED.state,
           created_at = EXCLUDED.created_at, last_activity = EXCLUDED.last_activity,
           inactivity_deadline = EXCLUDED.inactivity_deadline, lifetime_deadline = EXCLUDED.lifetime_deadline,
           initial = EXCLUDED.initial, ops = ${remember}, schema_version = EXCLUDED.schema_version, dead_since = NULL,
           schedules = EXCLUDED.schedules, wake_at = EXCLUDED.wake_at,
           seq = nextval(pg_get_serial_sequence('${table.replace(/'/g, "''")}', 'seq'))
         WHERE NOT t.alive OR LEAST(t.inactivity_deadline, t.lifetime_deadline) <= EXCLUDED.last_activity
         RETURNING t.resource, t.key, t.version`,
      update: `UPDATE ${table} AS t SET version = t.version + 1, state = v.state, last_activity = v.last_activity,
           inactivity_deadline = v.inactivity_deadline, ops = ${append}, schema_version = v.schema_version,
           schedules = v.schedules, wake_at = v.wake_at
         FROM jsonb_to_recordset($1::jsonb) AS v(resource text, key text, expected bigint, state jsonb,
           last_activity bigint, inactivity_deadline bigint, op text, schema_version integer, schedules jsonb,
           wake_at bigint)
         WHERE t.resource = v.resource AND t.key = v.key AND t.version = v.expected AND t.alive
         RETURNING t.resource, t.key, t.version`,
      tombstone: `UPDATE ${table} AS t SET version = t.version + 1, alive = FALSE, state = NULL, initial = NULL,
           last_activity = v.last_activity, inactivity_deadline = NULL, lifetime_deadline = NULL, ops = ${append},
           dead_since = v.dead_since, schedules = NULL, wake_at = NULL
         FROM jsonb_to_recordset($1::jsonb) AS v(resource text, key text, expected bigint, last_activity bigint,
           dead_since bigint, op text)
         WHERE t.resource = v.resource AND t.key = v.key AND t.version = v.expected AND t.alive
         RETURNING t.resource, t.key, t.version`,
      touch: `UPDATE ${table} AS t SET last_activity = v.last_activity, inactivity_deadline = v.inactivity_deadline
         FROM jsonb_to_recordset($1::jsonb) AS v(resource text, key text, expected bigint, last_activity bigint,
           inactivity_deadline bigint)
         WHERE t.resource = v.resource AND t.key = v.key AND t.version = v.expected AND t.alive
         RETURNING t.resource, t.key, t.version`
    },
    // one round trip: the statement, then the notices of the rows it wrote
    runDml: (sql, text, rows) =>
      sql.unsafe<Written>(
        `WITH w AS (${text}),
         t AS (
           SELECT w.resource, w.key, w.version, COALESCE(n.notice, n.head || n.state::text || '}') AS notice
           FROM w JOIN json_to_recordset($1::json) AS n(resource text, key text, notice text, head text, state json)
             ON n.resource = w.resource AND n.key = w.key
         )
         SELECT t.resource, t.key, t.version, ${noticeSql("t.notice", "t.resource || '/' || t.key")} AS notified
         FROM t`,
        [JSON.stringify(rows), channel]
      )
  }
}
