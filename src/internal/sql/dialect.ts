/**
 * What differs between the SQL dialects the state store speaks: its tables'
 * definitions, the statements of the group commit, placeholders and casts.
 * One file each: `postgres.ts`, `sqlite.ts`.
 *
 * @internal
 */
import type { Effect } from "effect"
import type { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import type { Compiled } from "../resource.js"
import type { Dialect } from "./faults.js"
import type { Kind } from "./rows.js"

/** The names of a store's tables. @internal */
export interface Names {
  /** The state table's name, unquoted (`<prefix>records`). */
  readonly name: string
  /** The state table, quoted. */
  readonly table: string
  /** The quarantine table, quoted. */
  readonly quarantine: string
  /** The notification channel of the state table. */
  readonly channel: string
}

/** @internal */
export interface Statements {
  readonly dialect: Dialect
  /** Whether the JSON columns arrive parsed (PostgreSQL's jsonb) rather than as text. */
  readonly parsesJson: boolean
  /** Creates the tables and indexes that are missing. */
  readonly create: (sql: SqlClient.SqlClient, resources: Iterable<Compiled>) => Effect.Effect<void, SqlError>
  /** The placeholder of the n-th parameter. */
  readonly p: (n: number) => string
  /** A JSON parameter as the JSON column's type. */
  readonly json: (placeholder: string) => string
  /** The smaller of two values (NULL only when both are): `LEAST` / `MIN`. */
  readonly least: string
  /** Locks a selected row until the transaction ends, where the dialect can. */
  readonly forUpdate: string
  /** The statement of each kind of write, over one parameter: the batch's rows of that kind, as JSON. */
  readonly dml: { readonly [K in Kind]: string }
  /** Runs one statement of a batch (on PostgreSQL with its notices); the rows it wrote. */
  readonly runDml: (
    sql: SqlClient.SqlClient,
    text: string,
    rows: ReadonlyArray<unknown>
  ) => Effect.Effect<ReadonlyArray<Written>, SqlError>
}

/** A row a statement of the group commit wrote: its key (escaped) and new version. @internal */
export interface Written {
  readonly resource: string
  readonly key: string
  readonly version: number | string
}

/** An identifier, quoted. @internal */
export const quoteIdent = (name: string) => `"${name.replace(/"/g, "\"\"")}"`

/** The index by which tombstones are purged, in both dialects (see `rows.ts` for why `dead_since`). @internal */
export const deadSinceIndex = ({ name, table }: Names) =>
  `CREATE INDEX IF NOT EXISTS ${quoteIdent(`${name}_dead_since`)} ON ${table} (dead_since) WHERE NOT alive`

/** Tombstones written before `dead_since` existed died at their last commit (a no-op once filled: the index finds none). @internal */
export const backfillDeadSince = ({ table }: Names) =>
  `UPDATE ${table} SET dead_since = last_activity WHERE NOT alive AND dead_since IS NULL`
