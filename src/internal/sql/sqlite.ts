/**
 * The state store's statements on SQLite: JSON as text, and the group
 * commit's statements over `json_each` of one parameter. No notices (one
 * process), no per-field indexes.
 *
 * @internal
 */
import { Effect } from "effect"
import { backfillDeadSince, deadSinceIndex, type Names, quoteIdent, type Statements, type Written } from "./dialect.js"
import { rememberedOps } from "./rows.js"

/** @internal */
export const make = (names: Names): Statements => {
  const { name, quarantine, table } = names
  const v = (field: string) => `v.value->>'${field}'`
  const matches = `${table}.resource = ${v("resource")} AND ${table}.key = ${v("key")} AND ${table}.version = ${
    v("expected")
  } AND ${table}.alive`
  // the row's operation ids, the oldest dropped beyond `rememberedOps`, then the write's
  const kept = (ops: string) =>
    `CASE WHEN json_array_length(${ops}) >= ${rememberedOps} THEN json_remove(${ops}, '$[0]') ELSE ${ops} END`
  const append = `CASE WHEN ${v("op")} IS NULL THEN ${table}.ops ` +
    `ELSE json_insert(${kept(`${table}.ops`)}, '$[#]', ${v("op")}) END`
  // the record's schedules (JSON), none when null or absent
  const schedules = `CASE WHEN json_type(v.value, '$.schedules') IN ('array') THEN v.value->'schedules' END`
  return {
    dialect: "sqlite",
    parsesJson: false,
    p: (n) => `?${n}`,
    json: (placeholder) => placeholder,
    least: "MIN",
    forUpdate: "",
    create: (sql) =>
      sql.withTransaction(Effect.gen(function*() {
        yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${table} (
          resource text NOT NULL,
          key text NOT NULL,
          version integer NOT NULL,
          alive boolean NOT NULL,
          state text,
          created_at integer NOT NULL,
          last_activity integer NOT NULL,
          inactivity_deadline integer,
          lifetime_deadline integer,
          initial text,
          ops text NOT NULL,
          schema_version integer NOT NULL DEFAULT 1,
          dead_since integer,
          schedules text,
          wake_at integer,
          PRIMARY KEY (resource, key)
        )`)
        yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${quarantine} (
          resource text NOT NULL,
          key text NOT NULL,
          version integer NOT NULL,
          schema_version integer NOT NULL,
          state text,
          created_at integer NOT NULL,
          last_activity integer NOT NULL,
          initial text,
          reason text NOT NULL,
          quarantined_at integer NOT NULL
        )`)
        yield* sql.unsafe(
          `CREATE INDEX IF NOT EXISTS ${quoteIdent(`${name}_due`)} ON ${table} ` +
            `((MIN(inactivity_deadline, lifetime_deadline))) WHERE alive`
        )
        // tables made before 0.6 have no dead_since: their tombstones died at their last commit
        const columns = yield* sql.unsafe<{ readonly name: string }>(
          `SELECT name FROM pragma_table_info('${name.replace(/'/g, "''")}')`
        )
        if (!columns.some((c) => c.name === "dead_since")) {
          yield* sql.unsafe(`ALTER TABLE ${table} ADD COLUMN dead_since integer`)
        }
        // tables made before 0.6 have no schedules: their records have none
        if (!columns.some((c) => c.name === "schedules")) {
          yield* sql.unsafe(`ALTER TABLE ${table} ADD COLUMN schedules text`)
          yield* sql.unsafe(`ALTER TABLE ${table} ADD COLUMN wake_at integer`)
        }
        yield* sql.unsafe(deadSinceIndex(names))
        yield* sql.unsafe(backfillDeadSince(names))
      })),
    dml: {
      insert: `INSERT INTO ${table} (resource, key, version, alive, state, created_at, last_activity,
          inactivity_deadline, lifetime_deadline, initial, ops, schema_version, schedules, wake_at)
        SELECT ${v("resource")}, ${v("key")}, 1, 1, v.value->'state', ${v("created_at")}, ${v("last_activity")},
          ${v("inactivity_deadline")}, ${v("lifetime_deadline")},
          CASE WHEN json_type(v.value, '$.initial') = 'null' THEN NULL ELSE v.value->'initial' END,
          CASE WHEN ${v("op")} IS NULL THEN '[]' ELSE json_array(${v("op")}) END, ${v("schema_version")},
          ${schedules}, ${v("wake_at")}
        FROM json_each(?1) AS v WHERE TRUE
        ON CONFLICT (resource, key) DO UPDATE SET version = version + 1, alive = 1, state = excluded.state,
          created_at = excluded.created_at, last_activity = excluded.last_activity,
          inactivity_deadline = excluded.inactivity_deadline, lifetime_deadline = excluded.lifetime_deadline,
          initial = excluded.initial, ops = CASE WHEN json_array_length(excluded.ops) = 0 THEN ops
            ELSE json_insert(${kept("ops")}, '$[#]', excluded.ops->>'$[0]') END,
          schema_version = excluded.schema_version, dead_since = NULL, schedules = excluded.schedules,
          wake_at = excluded.wake_at
        WHERE NOT alive OR MIN(COALESCE(inactivity_deadline, lifetime_deadline),
          COALESCE(lifetime_deadline, inactivity_deadline)) <= excluded.last_activity
        RETURNING resource, key, version`,
      update: `UPDATE ${table} SET version = ${table}.version + 1, state = v.value->'state',
          last_activity = ${v("last_activity")}, inactivity_deadline = ${v("inactivity_deadline")},
          ops = ${append}, schema_version = ${v("schema_version")}, schedules = ${schedules},
          wake_at = ${v("wake_at")}
        FROM json_each(?1) AS v WHERE ${matches}
        RETURNING resource, key, version`,
      tombstone: `UPDATE ${table} SET version = ${table}.version + 1, alive = 0, state = NULL, initial = NULL,
          last_activity = ${v("last_activity")}, inactivity_deadline = NULL, lifetime_deadline = NULL,
          ops = ${append}, dead_since = ${v("dead_since")}, schedules = NULL, wake_at = NULL
        FROM json_each(?1) AS v WHERE ${matches}
        RETURNING resource, key, version`,
      touch: `UPDATE ${table} SET last_activity = ${v("last_activity")},
          inactivity_deadline = ${v("inactivity_deadline")}
        FROM json_each(?1) AS v WHERE ${matches}
        RETURNING resource, key, version`
    },
    runDml: (sql, text, rows) => sql.unsafe<Written>(text, [JSON.stringify(rows)])
  }
}
