/**
 * The SQL state store: one table holding one row per record of every
 * resource of a store, for the data layers that keep their committed state in
 * SQL (the cluster layer; later, durable resources on one process).
 *
 * A row holds the resource name, the encoded key (`\u0000` escaped, as
 * PostgreSQL text cannot hold it), a version (bumped by every commit: a
 * commit names the version it read, so a stale owner fails, "fencing"), the
 * state as JSON (the resource's `Schema.toCodecJson` encoding), created_at,
 * last_activity, the inactivity and lifetime deadlines (epoch millis), the
 * create state (for `restart: "initial"`), the ids of the last few operations
 * applied (retries are de-duplicated) and a sequence number giving creation
 * order. A destroyed record leaves a tombstone (`alive = false`, no state) so
 * a retried destroy is recognised; a create over a tombstone reuses its row,
 * as does a create over a row past its stored deadline (its record is dead:
 * the expiry's own write, later, is fenced).
 *
 * Writes go through a group commit: concurrent writes are batched, one
 * transaction and one statement per kind (insert, update, tombstone, touch)
 * per batch; no caller is answered before the transaction holding its write
 * commits. Two writes to the same row never share a batch. A write may carry
 * a notice, sent with `pg_notify` in the same transaction if it succeeds.
 *
 * `read` translates the part of a filter SQL can decide to a `WHERE` clause
 * that keeps a superset of the matching rows (see `translate`). When SQL
 * decides the whole filter exactly and every sort key is on a numeric or
 * boolean field (`isSortable`), the sort (the total order of `Query.sort`,
 * ties in creation order), offset and limit run in SQL too. Otherwise it
 * finishes in memory with `Query.collector` on the decoded records, in
 * creation order: the results are those of the in-memory evaluator by
 * construction. Not pushed down: comparisons and sorts on strings
 * (JavaScript compares UTF-16 code units, PostgreSQL code points or a
 * collation), dates, transformed fields.
 *
 * A row also holds the version of the resource that stored it
 * (`schema_version`): loading an older row migrates it with the resource's
 * migration (`decodeStored`); a row that cannot be decoded or migrated is
 * moved to the quarantine table (`quarantine`), never dropped.
 *
 * **Dialects**: PostgreSQL (jsonb) for everything; SQLite (JSON as text) for
 * what a durable resource on one process needs: the table, the group
 * commit, `load`, `loadAll`, `quarantine` and `purge` (no `read`, `due` or
 * notices, which the cluster layer uses). Strings holding `\u0000` cannot be
 * stored in PostgreSQL (jsonb refuses them).
 *
 * @internal
 */
import { type Cause, Data, Deferred, Effect, Fiber, Queue, Schema, SchemaAST, type Scope } from "effect"
import type { SqlClient } from "effect/sql"
import { ConnectionError, SqlError } from "effect/sql/SqlError"
import type { QueryData } from "../DataLayer.js"
import { ValidationError } from "../Errors.js"
import type * as Filter from "../Filter.js"
import * as Query from "../Query.js"
import { type Compiled, type CompiledAction, type Decoded } from "./resource.js"

/** How many operation ids a row remembers for de-duplicating retries. @internal */
export const rememberedOps = 16

/** @internal */
export interface Options {
  /** Prepended to the table's name (`<prefix>records`). Default `"effect_gen_server_"`. */
  readonly prefix?: string | undefined
  /** The largest batch of a group commit. Default 256. */
  readonly maxBatch?: number | undefined
}

/** A stored record, as loaded. @internal */
export interface Row {
  readonly resource: string
  /** The encoded key (`Compiled.encodeKey`), unescaped. */
  readonly key: string
  readonly version: number
  readonly alive: boolean
  /** The decoded state; `undefined` for a tombstone. */
  readonly state: unknown
  readonly createdAt: number
  readonly lastActivity: number
  readonly inactivityDeadline: number | undefined
  readonly lifetimeDeadline: number | undefined
  /** What the create ran with, as the writer stored it (JSON), for `restart: "initial"`. */
  readonly initial: unknown
  readonly ops: ReadonlyArray<string>
  /** A tombstone left by a key change (`move` with an `op`): the encoded key the record moved to, unescaped. */
  readonly movedTo?: string | undefined
  /**
   * A live row that cannot be loaded (its state does not decode or migrate,
   * or holds another key than the row's): why, and the row as stored, for
   * `quarantine`. Its `state` is then `undefined`.
   */
  readonly undecodable?: { readonly reason: string; readonly stored: StoredRow } | undefined
}

/** A live row as stored: its state still JSON, of the version that wrote it. @internal */
export interface StoredRow {
  readonly resource: string
  readonly key: string
  readonly version: number
  readonly schemaVersion: number
  /** The state as JSON (parsed). */
  readonly json: unknown
  readonly createdAt: number
  readonly lastActivity: number
  readonly initial: unknown
}

/** What a write stores (times in epoch millis). @internal */
export interface Put {
  readonly resource: Compiled
  readonly key: string
  readonly state: unknown
  readonly lastActivity: number
  readonly op: string
  /**
   * The ops the row held (the new one is appended): for an update or
   * destroy, the live row's; for an insert, the tombstone's it replaces.
   */
  readonly ops: ReadonlyArray<string>
}

/**
 * A notice PostgreSQL completes from the row it writes: `head`, then the
 * state stored (as the JSON text the row was given), then `}`; in chunks
 * when longer than a notification holds ({@link noticeBytes}). The state is
 * serialized once, for the row.
 *
 * @internal
 */
export interface NoticeHead {
  readonly head: string
}

/**
 * A write of the group commit. `notify`: a payload sent with `pg_notify` on
 * the store's channel in the same transaction, if the write succeeds (so
 * listeners see it once it is committed, in commit order): the text, or for
 * a write storing a state, a {@link NoticeHead}.
 *
 * @internal
 */
export type Write =
  & (
    | (Put & {
      readonly _tag: "Insert"
      readonly createdAt: number
      /** What the create ran with, as JSON, kept for `restart: "initial"`. */
      readonly initial: unknown
    })
    | (Put & { readonly _tag: "Update"; readonly expected: number; readonly createdAt: number })
    | (Put & { readonly _tag: "Tombstone"; readonly expected: number })
    | {
      readonly _tag: "Touch"
      readonly resource: Compiled
      readonly key: string
      readonly expected: number
      readonly lastActivity: number
    }
  )
  & { readonly notify?: string | NoticeHead | undefined }

/**
 * What a write came to: the new version, or `"conflict"` (an insert over a
 * live row: the key is taken; an update, tombstone or touch whose expected
 * version is no longer the row's: a newer owner committed, "fenced").
 *
 * @internal
 */
export type Outcome = number | "conflict"

/** @internal */
export interface SqlState {
  readonly table: string
  /** The channel `notify` payloads are sent on. */
  readonly channel: string
  /**
   * The row of a key, if any. A live row that cannot be loaded is returned
   * with `undecodable` set (for `quarantine`), not as a failure.
   */
  readonly load: (resource: Compiled, key: string) => Effect.Effect<Row | undefined, SqlError>
  readonly write: (write: Write) => Effect.Effect<Outcome, SqlError>
  /** The rows whose deadline is at or before `now`, earliest first. */
  readonly due: (
    now: number,
    limit: number
  ) => Effect.Effect<
    ReadonlyArray<{ readonly resource: string; readonly key: string; readonly deadline: number }>,
    SqlError
  >
  /**
   * The live records a query selects, not past their stored deadlines at
   * `now`. Rows of older versions are migrated; when a selected row cannot
   * be loaded (see `load`), it fails with {@link UndecodableRows} naming
   * every such key: load them (to quarantine them) and read again.
   */
  readonly read: (
    resource: Compiled,
    query: QueryData,
    now: number
  ) => Effect.Effect<ReadonlyArray<unknown>, SqlError | UndecodableRows>
  /** Deletes tombstones whose last commit is older than `before`. */
  readonly purge: (before: number) => Effect.Effect<number, SqlError>
  /**
   * Moves a live row to another key (a change of primary key), in one
   * transaction: the row at `from` becomes a tombstone if its version is
   * still `expected`, and the new state is inserted at `to` (over a
   * tombstone or a row past its deadline). `"conflict"`, with nothing
   * written, when either cannot be. With an `op`, the tombstone remembers
   * it and the new key (`Row.movedTo`, kept in its `initial` column).
   */
  readonly move: (move: Move) => Effect.Effect<Outcome, SqlError>
  /** The live rows of a resource, a page at a time in key order, after `after` (an escaped key). */
  readonly page: (
    resource: Compiled,
    after: string | undefined,
    limit: number
  ) => Effect.Effect<{ readonly rows: ReadonlyArray<StoredRow>; readonly last: string | undefined }, SqlError>
  /**
   * Moves a row that cannot be loaded to the quarantine table (with the
   * reason), unless a newer version of it was written since it was read.
   */
  readonly quarantine: (row: StoredRow, reason: string, at: number) => Effect.Effect<boolean, SqlError>
  readonly dialect: Dialect
}

/** The kinds of write: one statement each per batch. */
type Kind = "insert" | "update" | "tombstone" | "touch"

const kindOf = { Insert: "insert", Update: "update", Tombstone: "tombstone", Touch: "touch" } as const

/** A change of a row's key: see `SqlState.move`. @internal */
export interface Move {
  readonly resource: Compiled
  readonly from: string
  readonly expected: number
  readonly to: string
  readonly state: unknown
  readonly createdAt: number
  readonly lastActivity: number
  /** What the create ran with, as JSON, kept for `restart: "initial"`. */
  readonly initial: unknown
  /**
   * The operation id of the change, remembered by both rows (the old one's
   * ops follow `ops`), so a retry is recognised at the old key; with it the
   * tombstone also remembers the key the record moved to (`Row.movedTo`).
   */
  readonly op?: string | undefined
  /** The ops the old row held. */
  readonly ops?: ReadonlyArray<string> | undefined
  /** A payload sent with `pg_notify` in the move's transaction, if it commits. */
  readonly notify?: string | NoticeHead | undefined
  /**
   * Whether a live row at `to` past its stored deadline is replaced (default
   * `true`). The cluster layer passes `false`: that row's owner may hold
   * activity not yet written (the record alive), and its expiry (destroy
   * action, `Destroyed`) is the owner's to run.
   */
  readonly replaceExpired?: boolean | undefined
}

/** Rows a read selected that cannot be loaded: their keys (unescaped). @internal */
export class UndecodableRows extends Data.TaggedError("UndecodableRows")<{ readonly keys: ReadonlyArray<string> }> {}

/** Marks a row `read` left out. */
const skipped: unique symbol = Symbol("skipped")

/** A move that found its old row changed or its new key taken: rolls its transaction back. */
class MoveConflict extends Data.TaggedError("MoveConflict") {}

/** The SQL dialects the state store speaks. @internal */
export type Dialect = "pg" | "sqlite"

/** The error a row that cannot be loaded gives: why, for the quarantine table. @internal */
export class Undecodable extends Error {}

/**
 * Decodes a stored state with the resource's current codec, migrating it
 * first when an older version stored it. Throws {@link Undecodable} saying
 * why when it cannot.
 *
 * @internal
 */
export const decodeStored = (resource: Compiled, json: unknown, schemaVersion: number): unknown => {
  const current = resource.version
  const codecs = codecsOf(resource)
  if (schemaVersion === current) {
    try {
      return codecs.decode(json)
    } catch (e) {
      throw new Undecodable(`cannot decode version ${schemaVersion}: ${messageOf(e)}`)
    }
  }
  if (schemaVersion > current) {
    throw new Undecodable(`stored by version ${schemaVersion}, newer than this resource's ${current}`)
  }
  const migration = resource.migrations[schemaVersion]
  if (migration === undefined) throw new Undecodable(`no migration from version ${schemaVersion} to ${current}`)
  let migrated: unknown
  try {
    const old = Schema.decodeUnknownSync(
      Schema.toCodecJson(migration.schema) as unknown as Schema.Codec<unknown, unknown>
    )(json)
    migrated = migration.migrate(old)
  } catch (e) {
    throw new Undecodable(`cannot migrate from version ${schemaVersion}: ${messageOf(e)}`)
  }
  try {
    // through the current codec both ways: the result is a valid record of this version
    return codecs.decode(codecs.encode(migrated))
  } catch (e) {
    throw new Undecodable(`the migration from version ${schemaVersion} made an invalid record: ${messageOf(e)}`)
  }
}

const messageOf = (e: unknown) => e instanceof Error ? e.message : String(e)

/** `\u0000` cannot be stored in PostgreSQL text: an injective escape. @internal */
export const escapeKey = (key: string): string =>
  key.includes("\u0000") || key.includes("\\") ? key.replace(/\\/g, "\\\\").replace(/\u0000/g, "\\0") : key

/** @internal */
export const unescapeKey = (key: string): string =>
  key.includes("\\") ? key.replace(/\\(\\|0)/g, (_, c) => c === "0" ? "\u0000" : "\\") : key

const quoteIdent = (name: string) => `"${name.replace(/"/g, "\"\"")}"`

/** The JSON codecs of a resource's records and of each of its fields. */
interface Codecs {
  readonly encode: (record: unknown) => unknown
  readonly decode: (json: unknown) => unknown
  readonly encodeField: (field: string, value: unknown) => { readonly json: unknown } | undefined
}

const codecsCache = new WeakMap<Compiled, Codecs>()

/** @internal */
export const codecsOf = (resource: Compiled): Codecs => {
  const cached = codecsCache.get(resource)
  if (cached !== undefined) return cached
  const codec = Schema.toCodecJson(resource.resource.schema as Schema.Top) as unknown as Schema.Codec<unknown, unknown>
  const fields = resource.resource.fields as Schema.Struct.Fields
  const fieldEncoders = new Map<string, (u: unknown) => unknown>()
  for (const [name, field] of Object.entries(fields)) {
    fieldEncoders.set(
      name,
      Schema.encodeUnknownSync(Schema.toCodecJson(field as Schema.Top) as unknown as Schema.Codec<unknown>)
    )
  }
  const out: Codecs = {
    encode: Schema.encodeUnknownSync(codec),
    decode: Schema.decodeUnknownSync(codec),
    encodeField: (field, value) => {
      try {
        return { json: fieldEncoders.get(field)!(value) }
      } catch {
        return undefined
      }
    }
  }
  codecsCache.set(resource, out)
  return out
}

/** JSON codecs of what is stored and sent besides records: a decoded input, a create's initial data. @internal */
export interface WireCodecs {
  readonly encodeInput: (action: CompiledAction, decoded: Decoded) => unknown
  readonly decodeInput: (action: CompiledAction, json: unknown) => Decoded
  readonly encodeData: (data: unknown) => unknown
  readonly decodeData: (json: unknown) => any
}

const json = <A>(schema: Schema.Top) => {
  const codec = Schema.toCodecJson(schema) as unknown as Schema.Codec<A, unknown>
  return { encode: Schema.encodeUnknownSync(codec), decode: Schema.decodeUnknownSync(codec) }
}

export const wireCodecs = (resource: Compiled): WireCodecs => {
  const fields = resource.resource.fields as Schema.Struct.Fields
  const data = json(
    Schema.Struct(Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, Schema.optionalKey(Schema.toType(f))])))
  )
  const inputs = new Map<CompiledAction, ReturnType<typeof json>>()
  const inputOf = (action: CompiledAction) => {
    let codec = inputs.get(action)
    if (codec === undefined) {
      const accepted = action.action.accept === "*" ? [...resource.fieldNames] : action.action.accept
      codec = json(Schema.Struct({
        attributes: Schema.Struct(
          Object.fromEntries(accepted.map((k: string) => [k, Schema.optionalKey(Schema.toType(fields[k]!))]))
        ),
        arguments: Schema.Struct(
          Object.fromEntries(
            Object.entries(action.action.arguments as Schema.Struct.Fields).map(([k, s]) => [k, Schema.toType(s)])
          )
        )
      }))
      inputs.set(action, codec)
    }
    return codec
  }
  return {
    encodeInput: (action, decoded) => inputOf(action).encode(decoded),
    decodeInput: (action, u) => inputOf(action).decode(u) as Decoded,
    encodeData: data.encode,
    decodeData: data.decode
  }
}

/** A condition over the `state` column: it holds for every row the filter selects (a superset). */
interface Condition {
  readonly sql: string
  /** It holds exactly for the rows the filter selects (then it may be negated). */
  readonly exact: boolean
}

const always: Condition = { sql: "TRUE", exact: false }

const isPrimitive = (u: unknown) => u === null || (typeof u !== "object" && typeof u !== "function")

/**
 * Translates a filter to a SQL condition over the JSON state, pushing its
 * parameters on `params`. The result keeps every row the filter keeps
 * (`Filter.toPredicate` finishes the job in memory); it is `exact` when it
 * keeps no other, which is what a `Not` needs. Exact atoms: `eq`/`neq`/`in` on
 * a non-nil primitive (the field's JSON codec is injective: it round-trips),
 * `isNil`, and `gt`/`gte`/`lt`/`lte` on a finite number whose encoding is a
 * JSON number (non-finite numbers are stored as strings and handled). Not
 * translated (always true, inexact): comparisons of strings (JavaScript
 * compares UTF-16 code units, PostgreSQL code points or a collation), of
 * dates, of objects; `contains` (only narrowed to strings and arrays).
 *
 * @internal
 */
export const translate = (
  resource: Compiled,
  filter: Filter.Expr,
  params: Array<unknown>
): Condition => {
  const codecs = codecsOf(resource)
  const param = (value: unknown, cast: string) => {
    params.push(value)
    return `$${params.length}::${cast}`
  }
  /** Drops the parameters of a condition given up for `always`. */
  const discard = (mark: number): Condition => {
    params.length = mark
    return always
  }
  const field = (f: string) => `state->${param(f, "text")}`
  const exactly = (sql: string): Condition => ({ sql: `COALESCE(${sql}, FALSE)`, exact: true })
  const eq = (f: string, value: unknown): Condition => {
    if (value === undefined || value === null || !isPrimitive(value)) return always
    const encoded = codecs.encodeField(f, value)
    if (encoded === undefined) return always
    return exactly(`${field(f)} = ${param(JSON.stringify(encoded.json), "jsonb")}`)
  }
  const compare = (f: string, value: unknown, op: string): Condition => {
    if (typeof value !== "number" || !Number.isFinite(value)) return always
    const encoded = codecs.encodeField(f, value)
    if (encoded === undefined || typeof encoded.json !== "number") return always
    // the field encodes finite numbers as JSON numbers; +-Infinity are stored as strings
    const infinity = op[0] === ">" ? "\"Infinity\"" : "\"-Infinity\""
    const x = field(f)
    return exactly(
      `(CASE WHEN jsonb_typeof(${x}) = 'number' THEN (${x})::numeric ${op} ${param(value, "numeric")} ` +
        `ELSE ${x} = ${param(infinity, "jsonb")} END)`
    )
  }
  const go = (f: Filter.Expr): Condition => {
    switch (f._tag) {
      case "Eq":
        return eq(f.field, f.value)
      case "Neq": {
        const mark = params.length
        const c = eq(f.field, f.value)
        return c.exact ? { sql: `NOT ${c.sql}`, exact: true } : discard(mark)
      }
      case "Gt":
        return compare(f.field, f.value, ">")
      case "Gte":
        return compare(f.field, f.value, ">=")
      case "Lt":
        return compare(f.field, f.value, "<")
      case "Lte":
        return compare(f.field, f.value, "<=")
      case "In": {
        if (f.values.length === 0) return { sql: "FALSE", exact: true }
        return go({ _tag: "Or", filters: f.values.map((value) => ({ _tag: "Eq", field: f.field, value })) })
      }
      case "IsNil":
        // absent, or JSON null (an optional field holding `undefined` is encoded as null)
        return { sql: `COALESCE(${field(f.field)} = 'null'::jsonb, TRUE)`, exact: true }
      case "Contains": {
        const x = field(f.field)
        return typeof f.value === "string"
          ? { sql: `COALESCE(jsonb_typeof(${x}) IN ('string', 'array'), FALSE)`, exact: false }
          : { sql: `COALESCE(jsonb_typeof(${x}) = 'array', FALSE)`, exact: false }
      }
      case "And": {
        const parts = f.filters.map(go)
        const kept = parts.filter((c) => c !== always)
        if (kept.length === 0) return parts.length === 0 ? { sql: "TRUE", exact: true } : always
        return { sql: `(${kept.map((c) => c.sql).join(" AND ")})`, exact: parts.every((c) => c.exact) }
      }
      case "Or": {
        if (f.filters.length === 0) return { sql: "FALSE", exact: true }
        const mark = params.length
        const parts = f.filters.map(go)
        if (parts.some((c) => c === always)) return discard(mark)
        return { sql: `(${parts.map((c) => c.sql).join(" OR ")})`, exact: parts.every((c) => c.exact) }
      }
      case "Not": {
        const mark = params.length
        const c = go(f.filter)
        return c.exact ? { sql: `NOT ${c.sql}`, exact: true } : discard(mark)
      }
    }
  }
  return go(filter)
}

const num = (u: unknown): number | undefined => u === null || u === undefined ? undefined : Number(u)

/**
 * The state store over the current `SqlClient`: creates its tables (and the
 * resources' indexes) if missing, and runs its group commit until the scope
 * closes.
 *
 * @internal
 */
export const make = (
  sql: SqlClient.SqlClient,
  resources: Iterable<Compiled>,
  options: Options = {}
): Effect.Effect<SqlState, SqlError, Scope.Scope> =>
  Effect.gen(function*() {
    const dialect: Dialect = sql.onDialectOrElse({
      pg: () => "pg" as const,
      sqlite: () => "sqlite" as const,
      orElse: () => {
        throw new Error("the SQL state store runs on PostgreSQL or SQLite")
      }
    })
    const pg = dialect === "pg"
    const name = `${options.prefix ?? "effect_gen_server_"}records`
    const table = quoteIdent(name)
    const quarantineTable = quoteIdent(`${options.prefix ?? "effect_gen_server_"}quarantine`)
    const maxBatch = options.maxBatch ?? 256
    const channel = channelOf(name)
    yield* sql.withTransaction(Effect.gen(function*() {
      if (pg) {
        // concurrent processes creating the same table would race on the catalog
        yield* sql.unsafe(`SELECT pg_advisory_xact_lock(hashtext($1))`, [name])
      }
      const json = pg ? "jsonb" : "text"
      const int = pg ? "bigint" : "integer"
      yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${table} (
        resource text NOT NULL,
        key text NOT NULL,
        version ${int} NOT NULL,
        alive boolean NOT NULL,
        state ${json},
        created_at ${int} NOT NULL,
        last_activity ${int} NOT NULL,
        inactivity_deadline ${int},
        lifetime_deadline ${int},
        initial ${json},
        ops ${json} NOT NULL,
        schema_version integer NOT NULL DEFAULT 1,
        ${pg ? "seq bigserial NOT NULL," : ""}
        PRIMARY KEY (resource, key)
      )`)
      if (pg) {
        // tables made by 0.2 have no schema_version: their rows are version 1
        yield* sql.unsafe(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS schema_version integer NOT NULL DEFAULT 1`)
      }
      yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${quarantineTable} (
        resource text NOT NULL,
        key text NOT NULL,
        version ${int} NOT NULL,
        schema_version integer NOT NULL,
        state text,
        created_at ${int} NOT NULL,
        last_activity ${int} NOT NULL,
        initial text,
        reason text NOT NULL,
        quarantined_at ${int} NOT NULL
      )`)
      yield* sql.unsafe(
        `CREATE INDEX IF NOT EXISTS ${quoteIdent(`${name}_due`)} ON ${table} ` +
          `((${pg ? "LEAST" : "MIN"}(inactivity_deadline, lifetime_deadline))) WHERE alive`
      )
      if (!pg) return
      for (const resource of resources) {
        for (const field of resource.indexes) {
          const index = `${name}_${resource.name}_${field}`.replace(/[^A-Za-z0-9_]/g, "_").slice(0, 50) +
            `_${hash(`${resource.name}\u0000${field}`)}`
          yield* sql.unsafe(
            `CREATE INDEX IF NOT EXISTS ${quoteIdent(index)} ON ${table} ((state->'${
              field.replace(/'/g, "''")
            }')) WHERE resource = '${resource.name.replace(/'/g, "''")}' AND alive`
          )
        }
      }
    }))

    /** A JSON column as read: PostgreSQL parses jsonb, SQLite gives text. */
    const parsed = (u: unknown): any => pg || u === null || u === undefined ? u : JSON.parse(u as string)

    const toStored = (r: any): StoredRow => ({
      resource: r.resource,
      key: unescapeKey(r.key),
      version: Number(r.version),
      schemaVersion: Number(r.schema_version ?? 1),
      json: parsed(r.state),
      createdAt: Number(r.created_at),
      lastActivity: Number(r.last_activity),
      initial: parsed(r.initial) ?? undefined
    })

    const toRow = (resource: Compiled, r: any): Row => {
      const alive = r.alive === true || r.alive === 1
      const key = unescapeKey(r.key)
      const initial = parsed(r.initial) ?? undefined
      let state: unknown = undefined
      let undecodable: Row["undecodable"] = undefined
      if (alive) {
        try {
          state = decodeStored(resource, parsed(r.state), Number(r.schema_version ?? 1))
          const held = resource.encodeKey(state)
          if (held !== key) throw new Undecodable(`its state holds another key (${held}) than its row (${key})`)
        } catch (e) {
          if (!(e instanceof Undecodable)) throw e
          state = undefined
          undecodable = { reason: e.message, stored: toStored(r) }
        }
      }
      return {
        resource: r.resource,
        key,
        version: Number(r.version),
        alive,
        state,
        createdAt: Number(r.created_at),
        lastActivity: Number(r.last_activity),
        inactivityDeadline: num(r.inactivity_deadline),
        lifetimeDeadline: num(r.lifetime_deadline),
        initial: alive ? initial : undefined,
        ops: parsed(r.ops),
        movedTo: !alive && typeof initial?.movedTo === "string" ? unescapeKey(initial.movedTo) : undefined,
        undecodable
      }
    }

    /** `$n` placeholders: PostgreSQL's; SQLite reads `?n`. */
    const p = (n: number) => pg ? `$${n}` : `?${n}`

    const load: SqlState["load"] = (resource, key) =>
      Effect.map(
        sql.unsafe(`SELECT * FROM ${table} WHERE resource = ${p(1)} AND key = ${p(2)}`, [
          resource.name,
          escapeKey(key)
        ]),
        (rows) => rows.length === 0 ? undefined : toRow(resource, rows[0])
      )

    const deadlines = (resource: Compiled, createdAt: number, lastActivity: number) => ({
      inactivity_deadline: resource.idleMillis === undefined ? null : lastActivity + resource.idleMillis,
      lifetime_deadline: resource.lifetimeMillis === undefined ? null : createdAt + resource.lifetimeMillis
    })
    const opsAfter = (ops: ReadonlyArray<string>, op: string) => [...ops, op].slice(-rememberedOps)

    /** A write as the JSON row its kind's statement reads. */
    const rowOf = (w: Write): unknown => {
      const resource = w.resource.name
      const key = escapeKey(w.key)
      const notice = typeof w.notify === "string" ? w.notify : null
      const head = typeof w.notify === "object" ? w.notify.head : null
      switch (w._tag) {
        case "Insert":
          return {
            notice,
            head,
            resource,
            key,
            state: codecsOf(w.resource).encode(w.state),
            created_at: w.createdAt,
            last_activity: w.lastActivity,
            ...deadlines(w.resource, w.createdAt, w.lastActivity),
            initial: w.initial ?? null,
            // a create over a tombstone keeps the ops it remembers: a retry of the removal is still recognised
            ops: opsAfter(w.ops, w.op),
            schema_version: w.resource.version
          }
        case "Update":
          return {
            notice,
            head,
            resource,
            key,
            expected: w.expected,
            state: codecsOf(w.resource).encode(w.state),
            last_activity: w.lastActivity,
            inactivity_deadline: deadlines(w.resource, w.createdAt, w.lastActivity).inactivity_deadline,
            ops: opsAfter(w.ops, w.op),
            schema_version: w.resource.version
          }
        case "Tombstone":
          return {
            notice,
            resource,
            key,
            expected: w.expected,
            last_activity: w.lastActivity,
            ops: opsAfter(w.ops, w.op)
          }
        case "Touch":
          return {
            notice,
            resource,
            key,
            expected: w.expected,
            last_activity: w.lastActivity,
            inactivity_deadline: w.resource.idleMillis === undefined ? null : w.lastActivity + w.resource.idleMillis
          }
      }
    }

    /** One statement per kind of write; returns the outcome of each write, in order. */
    const runBatch = (writes: ReadonlyArray<Write>): Effect.Effect<Array<Outcome>, SqlError> =>
      Effect.gen(function*() {
        const outcomes: Array<Outcome> = writes.map(() => "conflict")
        const ids = new Map<string, number>()
        writes.forEach((w, i) => ids.set(`${w.resource.name}\u0000${w.key}`, i))
        const indexOf = (r: any) => ids.get(`${r.resource}\u0000${unescapeKey(r.key)}`)!
        const rows = { insert: [] as Array<unknown>, update: [], tombstone: [], touch: [] } as {
          readonly [K in Kind]: Array<unknown>
        }
        for (const w of writes) rows[kindOf[w._tag]].push(rowOf(w))
        const statements = (Object.keys(rows) as Array<Kind>).filter((kind) => rows[kind].length > 0).map((kind) =>
          Effect.map(runDml(dml[kind], rows[kind]), (written) => {
            for (const r of written as Array<any>) outcomes[indexOf(r)] = Number(r.version)
          })
        )
        // one statement is atomic by itself; several share a transaction
        if (statements.length === 1) yield* statements[0]!
        else yield* sql.withTransaction(Effect.forEach(statements, (st) => st, { discard: true }))
        return outcomes
      })

    /** The statement of each kind of write, over one parameter: the batch's rows of that kind, as JSON. */
    const dml: { readonly [K in Kind]: string } = pg
      ? {
        insert: `INSERT INTO ${table} AS t (resource, key, version, alive, state, created_at, last_activity,
             inactivity_deadline, lifetime_deadline, initial, ops, schema_version)
           SELECT v.resource, v.key, 1, TRUE, v.state, v.created_at, v.last_activity, v.inactivity_deadline,
             v.lifetime_deadline, v.initial, v.ops, v.schema_version
           FROM jsonb_to_recordset($1::jsonb) AS v(resource text, key text, state jsonb, created_at bigint,
             last_activity bigint, inactivity_deadline bigint, lifetime_deadline bigint, initial jsonb, ops jsonb,
             schema_version integer)
           ON CONFLICT (resource, key) DO UPDATE SET version = t.version + 1, alive = TRUE, state = EXCLUDED.state,
             created_at = EXCLUDED.created_at, last_activity = EXCLUDED.last_activity,
             inactivity_deadline = EXCLUDED.inactivity_deadline, lifetime_deadline = EXCLUDED.lifetime_deadline,
             initial = EXCLUDED.initial, ops = EXCLUDED.ops, schema_version = EXCLUDED.schema_version,
             seq = nextval(pg_get_serial_sequence('${name.replace(/'/g, "''")}', 'seq'))
           WHERE NOT t.alive OR LEAST(t.inactivity_deadline, t.lifetime_deadline) <= EXCLUDED.last_activity
           RETURNING t.resource, t.key, t.version`,
        update: `UPDATE ${table} AS t SET version = t.version + 1, state = v.state, last_activity = v.last_activity,
             inactivity_deadline = v.inactivity_deadline, ops = v.ops, schema_version = v.schema_version
           FROM jsonb_to_recordset($1::jsonb) AS v(resource text, key text, expected bigint, state jsonb,
             last_activity bigint, inactivity_deadline bigint, ops jsonb, schema_version integer)
           WHERE t.resource = v.resource AND t.key = v.key AND t.version = v.expected AND t.alive
           RETURNING t.resource, t.key, t.version`,
        tombstone: `UPDATE ${table} AS t SET version = t.version + 1, alive = FALSE, state = NULL, initial = NULL,
             last_activity = v.last_activity, inactivity_deadline = NULL, lifetime_deadline = NULL, ops = v.ops
           FROM jsonb_to_recordset($1::jsonb) AS v(resource text, key text, expected bigint, last_activity bigint,
             ops jsonb)
           WHERE t.resource = v.resource AND t.key = v.key AND t.version = v.expected AND t.alive
           RETURNING t.resource, t.key, t.version`,
        touch: `UPDATE ${table} AS t SET last_activity = v.last_activity, inactivity_deadline = v.inactivity_deadline
           FROM jsonb_to_recordset($1::jsonb) AS v(resource text, key text, expected bigint, last_activity bigint,
             inactivity_deadline bigint)
           WHERE t.resource = v.resource AND t.key = v.key AND t.version = v.expected AND t.alive
           RETURNING t.resource, t.key, t.version`
      }
      : sqliteDml(table)

    /** Runs one statement of a batch: on PostgreSQL with its notices, in the same round trip, for the rows it wrote. */
    const runDml = (text: string, rows: ReadonlyArray<unknown>) =>
      pg
        ? sql.unsafe(
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
        : sql.unsafe(text, [JSON.stringify(rows)])

    interface Pending {
      readonly write: Write
      readonly done: Deferred.Deferred<Outcome, SqlError>
    }
    const queue = yield* Queue.unbounded<Pending, Cause.Done>()
    /** Writes held back because their row already has a write in the current batch. */
    let held: Array<Pending> = []
    const drain = Effect.gen(function*() {
      const taken = held.length > 0 ? held : []
      held = []
      const more = taken.length > 0
        // the queue ended (the store closing): what was held back still goes
        ? yield* Effect.catch(Queue.takeBetween(queue, 0, maxBatch), () => Effect.succeed([]))
        : yield* Queue.takeBetween(queue, 1, maxBatch)
      const batch: Array<Pending> = []
      const seen = new Set<string>()
      for (const p of [...taken, ...more]) {
        const id = `${p.write.resource.name}\u0000${p.write.key}`
        if (seen.has(id)) held.push(p)
        else {
          seen.add(id)
          batch.push(p)
        }
      }
      const exit = yield* Effect.exit(runBatch(batch.map((p) => p.write)))
      if (exit._tag === "Success") batch.forEach((p, i) => Deferred.doneUnsafe(p.done, Effect.succeed(exit.value[i]!)))
      else batch.forEach((p) => Deferred.doneUnsafe(p.done, Effect.failCause(exit.cause)))
    })
    const drainer = yield* Effect.forkScoped(Effect.forever(drain))
    // closing: no new write is taken, and every write already taken or queued is written before the scope ends
    yield* Effect.addFinalizer(() => Effect.andThen(Queue.end(queue), Fiber.await(drainer)))

    const closed = new SqlError({
      reason: new ConnectionError({ cause: undefined, message: "the state store is closed" })
    })
    const write: SqlState["write"] = (w) =>
      Effect.flatMap(Deferred.make<Outcome, SqlError>(), (done) =>
        Effect.flatMap(
          Queue.offer(queue, { write: w, done }),
          (offered) => offered ? Deferred.await(done) : Effect.fail(closed)
        ))

    const due: SqlState["due"] = (now, limit) =>
      Effect.map(
        sql.unsafe(
          `SELECT resource, key, LEAST(inactivity_deadline, lifetime_deadline) AS deadline FROM ${table}
           WHERE alive AND LEAST(inactivity_deadline, lifetime_deadline) <= $1
           ORDER BY LEAST(inactivity_deadline, lifetime_deadline) LIMIT $2`,
          [now, limit]
        ),
        (rows) =>
          (rows as Array<any>).map((r) => ({
            resource: r.resource,
            key: unescapeKey(r.key),
            deadline: Number(r.deadline)
          }))
      )

    const read: SqlState["read"] = (resource, query, now) =>
      Effect.gen(function*() {
        const params: Array<unknown> = [resource.name, now]
        let where = `resource = $1 AND alive AND (LEAST(inactivity_deadline, lifetime_deadline) IS NULL OR ` +
          `LEAST(inactivity_deadline, lifetime_deadline) > $2)`
        let exact = true
        if (query.filter !== undefined) {
          const pinnedKey = keyPinned(resource, query.filter)
          if (pinnedKey !== undefined) {
            params.push(escapeKey(pinnedKey))
            where += ` AND key = $${params.length}`
          }
          const condition = translate(resource, query.filter, params)
          exact = condition.exact
          if (condition.sql !== "TRUE") {
            where += ` AND ${condition.sql}`
          }
        }
        const undecodable: Array<string> = []
        /** A row's record; a row that cannot be loaded (see `load`) is left out and its key reported. */
        const decode = (r: any): unknown => {
          const key = unescapeKey(r.key)
          try {
            const state = decodeStored(resource, r.state, Number(r.schema_version ?? 1))
            if (resource.encodeKey(state) === key) return state
          } catch (e) {
            if (!(e instanceof Undecodable)) throw e
          }
          undecodable.push(key)
          return skipped
        }
        if (
          exact && query.sort.every((k) => isSortable(resource, k.field))
        ) {
          // SQL decides everything: the order of `Query.sort`, ties in creation order, offset, limit
          const order = query.sort.flatMap(({ direction, field }) => {
            params.push(field)
            const x = `state->$${params.length}::text`
            const dir = direction === "asc" ? "ASC" : "DESC"
            return [
              `(CASE WHEN ${x} IS NULL OR jsonb_typeof(${x}) = 'null' THEN 0 WHEN jsonb_typeof(${x}) = 'boolean' ` +
              `THEN 1 WHEN ${x} = '"NaN"'::jsonb THEN 3 ELSE 2 END) ${dir}`,
              `(CASE WHEN jsonb_typeof(${x}) = 'boolean' THEN (${x})::boolean END) ${dir}`,
              `(CASE WHEN jsonb_typeof(${x}) = 'number' THEN (${x})::float8 WHEN ${x} = '"Infinity"'::jsonb ` +
              `THEN 'Infinity'::float8 WHEN ${x} = '"-Infinity"'::jsonb THEN '-Infinity'::float8 END) ${dir}`
            ]
          })
          params.push(query.offset)
          let text = `SELECT key, schema_version, state FROM ${table} WHERE ${where} ORDER BY ${
            [...order, "seq"].join(", ")
          } OFFSET $${params.length}`
          if (query.limit !== undefined) {
            params.push(query.limit)
            text += ` LIMIT $${params.length}`
          }
          const rows = yield* sql.unsafe(text, params)
          const records = (rows as Array<any>).map(decode)
          if (undecodable.length > 0) return yield* new UndecodableRows({ keys: undecodable })
          return records
        }
        const rows = yield* sql.unsafe(
          `SELECT key, schema_version, state FROM ${table} WHERE ${where} ORDER BY seq`,
          params
        )
        const collected = Query.collector(query)
        for (const r of rows as Array<any>) {
          const record = decode(r)
          if (record !== skipped) collected.add(record)
        }
        if (undecodable.length > 0) return yield* new UndecodableRows({ keys: undecodable })
        return collected.done()
      })

    const purge: SqlState["purge"] = (before) =>
      Effect.map(
        sql.unsafe(`DELETE FROM ${table} WHERE NOT alive AND last_activity < ${p(1)} RETURNING key`, [before]),
        (rows) => rows.length
      )

    const move: SqlState["move"] = (m) => {
      const tombstone = rowOf({
        _tag: "Tombstone",
        resource: m.resource,
        key: m.from,
        state: undefined,
        expected: m.expected,
        lastActivity: m.lastActivity,
        op: m.op ?? "",
        ops: m.ops ?? []
      })
      const insert = rowOf({
        _tag: "Insert",
        resource: m.resource,
        key: m.to,
        state: m.state,
        createdAt: m.createdAt,
        lastActivity: m.lastActivity,
        initial: m.initial,
        op: m.op ?? "",
        ops: [],
        notify: m.notify
      })
      return Effect.catchTag(
        sql.withTransaction(Effect.gen(function*() {
          const removed = yield* runDml(dml.tombstone, [tombstone])
          if (m.replaceExpired === false) {
            // locked until the transaction ends; a row inserted meanwhile is live, so the insert below conflicts
            const there = yield* sql.unsafe(
              `SELECT alive FROM ${table} WHERE resource = ${p(1)} AND key = ${p(2)}${pg ? " FOR UPDATE" : ""}`,
              [m.resource.name, escapeKey(m.to)]
            )
            if (there.length > 0 && ((there[0] as any).alive === true || (there[0] as any).alive === 1)) {
              return yield* new MoveConflict()
            }
          }
          const inserted = yield* runDml(dml.insert, [insert])
          if (removed.length === 0 || inserted.length === 0) return yield* new MoveConflict()
          if (m.op !== undefined) {
            // the tombstone remembers where the record went, for a retry of the change at the old key
            yield* sql.unsafe(
              `UPDATE ${table} SET initial = ${pg ? `${p(1)}::jsonb` : p(1)} WHERE resource = ${p(2)} AND key = ${
                p(3)
              }`,
              [JSON.stringify({ movedTo: escapeKey(m.to) }), m.resource.name, escapeKey(m.from)]
            )
          }
          return Number((inserted[0] as any).version)
        })),
        "MoveConflict",
        () => Effect.succeed("conflict" as const)
      )
    }

    const page: SqlState["page"] = (resource, after, limit) =>
      Effect.map(
        after === undefined
          ? sql.unsafe(
            `SELECT * FROM ${table} WHERE resource = ${p(1)} AND alive ORDER BY key LIMIT ${p(2)}`,
            [resource.name, limit]
          )
          : sql.unsafe(
            `SELECT * FROM ${table} WHERE resource = ${p(1)} AND alive AND key > ${p(2)} ORDER BY key LIMIT ${p(3)}`,
            [resource.name, after, limit]
          ),
        (rows) => ({
          rows: (rows as Array<any>).map(toStored),
          last: rows.length < limit ? undefined : (rows[rows.length - 1] as any).key
        })
      )

    const quarantine: SqlState["quarantine"] = (row, reason, at) =>
      sql.withTransaction(Effect.gen(function*() {
        const key = escapeKey(row.key)
        const moved = yield* sql.unsafe(
          `DELETE FROM ${table} WHERE resource = ${p(1)} AND key = ${p(2)} AND version = ${p(3)} RETURNING key`,
          [row.resource, key, row.version]
        )
        if (moved.length === 0) return false
        yield* sql.unsafe(
          `INSERT INTO ${quarantineTable} (resource, key, version, schema_version, state, created_at, last_activity,
             initial, reason, quarantined_at)
           VALUES (${[1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(p).join(", ")})`,
          [
            row.resource,
            key,
            row.version,
            row.schemaVersion,
            JSON.stringify(row.json),
            row.createdAt,
            row.lastActivity,
            row.initial === undefined ? null : JSON.stringify(row.initial),
            reason,
            at
          ]
        )
        return true
      }))

    return { table: name, channel, dialect, load, write, due, read, purge, move, page, quarantine }
  })

const sortableCache = new WeakMap<Compiled, Map<string, boolean>>()

/**
 * Whether SQL can sort on a field exactly as `Query.sort` does: its values
 * are numbers (JSON numbers, or the strings of NaN and +-Infinity), booleans,
 * null or absent, with no transformation. Strings are not (JavaScript
 * compares UTF-16 code units), nor dates, nor anything transformed.
 *
 * @internal
 */
export const isSortable = (resource: Compiled, field: string): boolean => {
  let cache = sortableCache.get(resource)
  if (cache === undefined) sortableCache.set(resource, cache = new Map())
  const cached = cache.get(field)
  if (cached !== undefined) return cached
  const schema = (resource.resource.fields as Schema.Struct.Fields)[field]
  const go = (ast: SchemaAST.AST): boolean => {
    if (ast.encoding !== undefined) return false
    switch (ast._tag) {
      case "Number":
      case "Boolean":
      case "Undefined":
      case "Null":
        return true
      case "Literal":
        return typeof ast.literal === "number" || typeof ast.literal === "boolean"
      case "Union":
        return ast.types.every(go)
      default:
        return false
    }
  }
  const out = schema !== undefined && go(schema.ast)
  cache.set(field, out)
  return out
}

/** The encoded key a filter pins with `eq` on every key field, if it does. */
const keyPinned = (resource: Compiled, filter: Filter.Expr): string | undefined => {
  const eqs = new Map<string, unknown>()
  const go = (f: Filter.Expr): void => {
    if (f._tag === "And") f.filters.forEach(go)
    else if (f._tag === "Eq" && !eqs.has(f.field)) eqs.set(f.field, f.value)
  }
  go(filter)
  if (!resource.keyFields.every((k) => eqs.has(k))) return undefined
  const key: { [k: string]: unknown } = {}
  for (const k of resource.keyFields) key[k] = eqs.get(k)
  const checked = resource.checkKey(key)
  return checked instanceof ValidationError ? undefined : resource.encodeKey(checked)
}

/** SQLite: the statements of each kind of write, over `json_each` of one parameter (no notices). */
const sqliteDml = (table: string) => {
  const v = (field: string) => `v.value->>'${field}'`
  const matches = `${table}.resource = ${v("resource")} AND ${table}.key = ${v("key")} AND ${table}.version = ${
    v("expected")
  } AND ${table}.alive`
  return {
    insert: `INSERT INTO ${table} (resource, key, version, alive, state, created_at, last_activity,
        inactivity_deadline, lifetime_deadline, initial, ops, schema_version)
      SELECT ${v("resource")}, ${v("key")}, 1, 1, v.value->'state', ${v("created_at")}, ${v("last_activity")},
        ${v("inactivity_deadline")}, ${v("lifetime_deadline")},
        CASE WHEN json_type(v.value, '$.initial') = 'null' THEN NULL ELSE v.value->'initial' END,
        v.value->'ops', ${v("schema_version")}
      FROM json_each(?1) AS v WHERE TRUE
      ON CONFLICT (resource, key) DO UPDATE SET version = version + 1, alive = 1, state = excluded.state,
        created_at = excluded.created_at, last_activity = excluded.last_activity,
        inactivity_deadline = excluded.inactivity_deadline, lifetime_deadline = excluded.lifetime_deadline,
        initial = excluded.initial, ops = excluded.ops, schema_version = excluded.schema_version
      WHERE NOT alive OR MIN(COALESCE(inactivity_deadline, lifetime_deadline),
        COALESCE(lifetime_deadline, inactivity_deadline)) <= excluded.last_activity
      RETURNING resource, key, version`,
    update: `UPDATE ${table} SET version = ${table}.version + 1, state = v.value->'state',
        last_activity = ${v("last_activity")}, inactivity_deadline = ${v("inactivity_deadline")},
        ops = v.value->'ops', schema_version = ${v("schema_version")}
      FROM json_each(?1) AS v WHERE ${matches}
      RETURNING resource, key, version`,
    tombstone: `UPDATE ${table} SET version = ${table}.version + 1, alive = 0, state = NULL, initial = NULL,
        last_activity = ${v("last_activity")}, inactivity_deadline = NULL, lifetime_deadline = NULL,
        ops = v.value->'ops'
      FROM json_each(?1) AS v WHERE ${matches}
      RETURNING resource, key, version`,
    touch: `UPDATE ${table} SET last_activity = ${v("last_activity")}, inactivity_deadline = ${v("inactivity_deadline")}
      FROM json_each(?1) AS v WHERE ${matches}
      RETURNING resource, key, version`
  }
}

/**
 * The longest notice sent as one notification (PostgreSQL's payload limit is
 * 8,000 bytes). A longer one is sent as chunks of {@link noticeChunk}
 * characters (at most 4 bytes each), each `\u0001`, an id of 32 characters
 * unique within its transaction, `i/n`, `\u0001`, then its part of the text:
 * a transaction's notifications reach a listener together and in order, so
 * the listener joins the parts.
 *
 * @internal
 */
export const noticeBytes = 7900
/** @internal */
export const noticeChunk = 1900

/**
 * The SQL that sends the notice `text` (NULL: none) on the channel `$2`,
 * in chunks when it is longer than a notification holds; `id` tells its
 * chunks from another notice's of the same transaction.
 */
const noticeSql = (text: string, id: string) =>
  `CASE WHEN ${text} IS NULL THEN NULL
     WHEN octet_length(${text}) <= ${noticeBytes} THEN pg_notify($2, ${text})::text
     ELSE (SELECT string_agg(pg_notify($2, chr(1) || md5(${id}) || i || '/' || c.n || chr(1) ||
       substr(${text}, (i - 1) * ${noticeChunk} + 1, ${noticeChunk}))::text, '')
       FROM (SELECT ceil(char_length(${text}) / ${noticeChunk}.0)::int AS n) AS c, generate_series(1, c.n) AS i)
   END`

/**
 * The payloads that carry `text`: itself, or its chunks (see
 * {@link noticeBytes}) under `id` (32 characters).
 *
 * @internal
 */
export const noticePayloads = (text: string, id: string): ReadonlyArray<string> => {
  if (text.length * 3 <= noticeBytes || encoder.encode(text).length <= noticeBytes) return [text]
  const parts: Array<string> = []
  for (let start = 0; start < text.length;) {
    let end = Math.min(start + noticeChunk, text.length)
    // never between the two halves of a surrogate pair: each part must be valid UTF-16 on its own
    const last = text.charCodeAt(end - 1)
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--
    parts.push(text.slice(start, end))
    start = end
  }
  return parts.map((part, i) => `\u0001${id}${i + 1}/${parts.length}\u0001${part}`)
}
const encoder = new TextEncoder()

/**
 * Joins the chunks of long notices, in the order a listener receives them;
 * `add` returns the notice a payload completes, if any (a payload that is no
 * chunk is a notice by itself). At most 64 notices are pending at once.
 *
 * @internal
 */
export const noticeJoiner = () => {
  const pending = new Map<string, { next: number; readonly parts: Array<string> }>()
  return (payload: string): string | undefined => {
    if (!payload.startsWith("\u0001")) return payload
    const slash = payload.indexOf("/", 33)
    const end = payload.indexOf("\u0001", 33)
    if (slash < 0 || end < 0) return undefined
    const id = payload.slice(1, 33)
    const i = Number(payload.slice(33, slash))
    const n = Number(payload.slice(slash + 1, end))
    const part = payload.slice(end + 1)
    if (i === 1) {
      if (pending.size >= 64) pending.delete(pending.keys().next().value!)
      pending.set(id, { next: 2, parts: [part] })
    } else {
      const joining = pending.get(id)
      // a chunk without its predecessors (heard from the middle of a notice): the notice is lost
      if (joining === undefined || joining.next !== i) {
        pending.delete(id)
        return undefined
      }
      joining.parts.push(part)
      joining.next++
    }
    if (i < n) return undefined
    const parts = pending.get(id)!.parts
    pending.delete(id)
    return parts.join("")
  }
}

/** A channel name (at most 63 bytes, lower case) for a table. @internal */
export const channelOf = (table: string): string =>
  `${table.toLowerCase().replace(/[^a-z0-9_]/g, "_").slice(0, 40)}_events_${hash(table)}`

const hash = (s: string): string => {
  let h = 2166136261
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619)
  return (h >>> 0).toString(36)
}
