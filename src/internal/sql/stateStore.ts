/**
 * The SQL state store: one table holding one row per record (`rows.ts`) of
 * every resource of a store, for the layers that keep their committed state
 * in SQL (durable resources on one process, the cluster layer).
 *
 * - **Writes** go through a group commit (`groupCommit.ts`): concurrent
 *   writes share one transaction and one statement per kind (insert,
 *   update, tombstone, touch); a write that storage refuses fails alone; a
 *   write whose fate is unknown says so (`faults.ts`). A create over a
 *   tombstone reuses its row, as does a create over a row past its stored
 *   deadline (its record is dead: the expiry's own write, later, is fenced).
 * - **Reads** by key, by page, by deadline (`due`), and queries (`read`):
 *   the part of a filter SQL decides runs in SQL (`translate.ts`); the rest
 *   finishes in memory with `Query.collector` on the decoded records, in
 *   creation order, so the results are those of the in-memory evaluator by
 *   construction.
 * - **Versions** (`codec.ts`): an older row is migrated when loaded; a row
 *   that cannot be loaded is moved to the quarantine table, never dropped; a
 *   newer row is never quarantined.
 *
 * **Dialects**: PostgreSQL (`postgres.ts`) for everything; SQLite
 * (`sqlite.ts`) for what a durable resource on one process needs (no
 * `read`, `due` or notices, which the cluster layer uses).
 *
 * @internal
 */
import { Cause, Data, Effect, type Scope } from "effect"
import type { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import * as Query from "../../Query.js"
import type { QueryData } from "../contract.js"
import type { Compiled } from "../resource.js"
import { TooNew, Undecodable } from "./codec.js"
import { type Names, quoteIdent, type Statements } from "./dialect.js"
import { escapeKey, unescapeKey } from "./escape.js"
import { classify, type Dialect, StorageFailure } from "./faults.js"
import * as GroupCommit from "./groupCommit.js"
import { channelOf } from "./notices.js"
import * as Postgres from "./postgres.js"
import {
  cellText,
  decodeRow,
  type Kind,
  kindOf,
  type Move,
  type Outcome,
  type Row,
  rowOf,
  type StoredRow,
  toRow,
  toStored,
  type Write
} from "./rows.js"
import * as Sqlite from "./sqlite.js"
import { isSortable, keyPinned, orderBy, translate } from "./translate.js"

/** @internal */
export interface Options {
  /** Prepended to the tables' names (`<prefix>records`, `<prefix>quarantine`). Default `"effect_gen_server_"`. */
  readonly prefix?: string | undefined
  /** The largest batch of a group commit. Default 256. */
  readonly maxBatch?: number | undefined
}

/** A row past its deadline, as the expiry sweep finds it. @internal */
export interface Due {
  readonly resource: string
  /** Unescaped. */
  readonly key: string
  readonly deadline: number
}

/** @internal */
export interface StateStore {
  readonly table: string
  /** The channel `notify` payloads are sent on. */
  readonly channel: string
  readonly dialect: Dialect
  /**
   * The row of a key, if any. A live row that cannot be loaded is returned
   * with `undecodable` set (for `quarantine`) or `tooNew` (to refuse), not as
   * a failure.
   */
  readonly load: (resource: Compiled, key: string) => Effect.Effect<Row | undefined, SqlError>
  /** Writes through the group commit: the new version, `"conflict"`, or why storage did not take it. */
  readonly write: (write: Write) => Effect.Effect<Outcome, StorageFailure>
  /**
   * Learns from the row of `key` whether a write whose answer was lost
   * (`StorageFailure` with `applied: "unknown"`) was applied: it was when
   * the row remembers its `op` (then the row's version, or for a key change
   * the version of the row at `to`, is the writer's); it was not when the
   * row is as the write expected it (version `expected`, or for an insert,
   * `expected` 0, no live row); anything else is another writer's (fenced).
   */
  readonly settle: (
    resource: Compiled,
    key: string,
    expected: number,
    op: string,
    to?: string | undefined
  ) => Effect.Effect<Settled, SqlError>
  /**
   * Moves a live row to another key (a change of primary key), in one
   * transaction: the row at `from` becomes a tombstone if its version is
   * still `expected`, and the new state is inserted at `to` (over a
   * tombstone or a row past its deadline). `"conflict"`, with nothing
   * written, when either cannot be. With an `op`, the tombstone remembers
   * it and the new key (`Row.movedTo`, kept in its `initial` column).
   */
  readonly move: (move: Move) => Effect.Effect<Outcome, StorageFailure>
  /**
   * A page of the rows whose deadline, or earliest schedule, is at or before `now`, earliest first
   * (then by resource and key), after `after`: a sweep pages through every
   * due row, so records whose expiry keeps failing never hide the others.
   */
  readonly due: (
    now: number,
    limit: number,
    after?: Due | undefined
  ) => Effect.Effect<ReadonlyArray<Due>, SqlError>
  /**
   * The live records a query selects, not past their stored deadlines at
   * `now`. Rows of older versions are migrated; rows of a newer version that
   * this one cannot read are left out (logged); when a selected row cannot
   * be loaded, it fails with {@link UndecodableRows} naming every such key:
   * load them (to quarantine them) and read again.
   */
  readonly read: (
    resource: Compiled,
    query: QueryData,
    now: number
  ) => Effect.Effect<ReadonlyArray<unknown>, SqlError | UndecodableRows>
  /** Deletes tombstones that died before `before`; how many. */
  readonly purge: (before: number) => Effect.Effect<number, SqlError>
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
}

/** What a write whose answer was lost came to (see `StateStore.settle`). @internal */
export type Settled =
  | { readonly _tag: "Applied"; readonly version: number }
  | { readonly _tag: "NotApplied" }
  | { readonly _tag: "Fenced" }

/** Rows a read selected that cannot be loaded: their keys (unescaped). @internal */
export class UndecodableRows extends Data.TaggedError("UndecodableRows")<{ readonly keys: ReadonlyArray<string> }> {}

/**
 * The longest `tablePrefix`: PostgreSQL cuts names at 63 bytes, and the
 * longest name made from the prefix is `<prefix>records_dead_since` (a cut
 * one would collide with another, or skip an index). The same on SQLite, so
 * a prefix moves between the two.
 *
 * @internal
 */
export const maxPrefixBytes = 63 - "records_dead_since".length

/** A move that found its old row changed or its new key taken: rolls its transaction back. */
class MoveConflict extends Data.TaggedError("MoveConflict") {}

/** Marks a row `read` left out. */
const skipped: unique symbol = Symbol("skipped")

/**
 * The state store over `sql`: creates its tables (and the resources'
 * indexes) if missing, and runs its group commit until the scope closes.
 *
 * @internal
 */
export const make = (
  sql: SqlClient.SqlClient,
  resources: Iterable<Compiled>,
  options: Options = {}
): Effect.Effect<StateStore, SqlError, Scope.Scope> =>
  Effect.gen(function*() {
    const dialect: Dialect = sql.onDialectOrElse({
      pg: () => "pg" as const,
      sqlite: () => "sqlite" as const,
      orElse: () => {
        throw new Error("the SQL state store runs on PostgreSQL or SQLite")
      }
    })
    const pg = dialect === "pg"
    const prefix = options.prefix ?? "effect_gen_server_"
    const prefixBytes = new TextEncoder().encode(prefix).length
    if (prefixBytes > maxPrefixBytes) {
      return yield* Effect.die(
        new RangeError(
          `tablePrefix must be at most ${maxPrefixBytes} bytes (PostgreSQL cuts names at 63, and ` +
            `"<prefix>records_dead_since" is the longest made from it), got ${prefixBytes}: ${JSON.stringify(prefix)}`
        )
      )
    }
    const name = `${prefix}records`
    const names: Names = {
      name,
      table: quoteIdent(name),
      quarantine: quoteIdent(`${prefix}quarantine`),
      channel: channelOf(name)
    }
    const { channel, table } = names
    const statements: Statements = pg ? Postgres.make(names) : Sqlite.make(names)
    const { p } = statements
    yield* statements.create(sql, resources)

    const load: StateStore["load"] = (resource, key) =>
      Effect.map(
        sql.unsafe(`SELECT * FROM ${table} WHERE resource = ${p(1)} AND key = ${p(2)}`, [
          resource.name,
          escapeKey(key)
        ]),
        (rows) => rows.length === 0 ? undefined : toRow(resource, rows[0], pg)
      )

    /** Runs a batch: one statement per kind of write (several share a transaction); each write's outcome. */
    const runBatch = (batch: ReadonlyArray<Encoded>): Effect.Effect<ReadonlyArray<Outcome>, SqlError> =>
      Effect.gen(function*() {
        const outcomes: Array<Outcome> = batch.map(() => "conflict")
        const ids = new Map<string, number>()
        batch.forEach((w, i) => ids.set(w.id, i))
        const rows: { readonly [K in Kind]: Array<unknown> } = { insert: [], update: [], tombstone: [], touch: [] }
        for (const w of batch) rows[w.kind].push(w.row)
        const runs = (Object.keys(rows) as Array<Kind>).filter((kind) => rows[kind].length > 0).map((kind) =>
          Effect.map(statements.runDml(sql, statements.dml[kind], rows[kind]), (written) => {
            for (const r of written) outcomes[ids.get(`${r.resource}\u0000${r.key}`)!] = Number(r.version)
          })
        )
        // one statement is atomic by itself; several share a transaction
        if (runs.length === 1) yield* runs[0]!
        else yield* sql.withTransaction(Effect.forEach(runs, (run) => run, { discard: true }))
        return outcomes
      })

    /** A write as its statement reads it: encoded in the writer's fiber, so a value that cannot be fails alone. */
    interface Encoded {
      readonly id: string
      readonly kind: Kind
      readonly row: unknown
    }
    const submit = yield* GroupCommit.make<Encoded, Outcome>({
      maxBatch: options.maxBatch ?? 256,
      keyOf: (w) => w.id,
      run: runBatch,
      classify: (cause) => classify(dialect, cause)
    })
    const write: StateStore["write"] = (w) =>
      Effect.suspend(() => {
        let row: unknown
        try {
          row = rowOf(w)
        } catch (e) {
          return Effect.fail(
            new StorageFailure({
              applied: "no",
              message: `the record cannot be encoded for storage: ${e instanceof Error ? e.message : String(e)}`
            })
          )
        }
        return submit({ id: `${w.resource.name}\u0000${escapeKey(w.key)}`, kind: kindOf[w._tag], row })
      })

    const settle: StateStore["settle"] = (resource, key, expected, op, to) =>
      Effect.flatMap(load(resource, key), (row): Effect.Effect<Settled, SqlError> => {
        if (row !== undefined && row.ops.includes(op)) {
          // the version this write made (an update's is the one after `expected`), not the row's: another
          // process may have written it since, and the writer must be fenced from that write
          if (to === undefined) {
            const version = expected > 0 ? expected + 1 : row.ops[row.ops.length - 1] === op ? row.version : 0
            return Effect.succeed({ _tag: "Applied", version })
          }
          return Effect.map(
            load(resource, to),
            (moved): Settled => moved === undefined ? { _tag: "Fenced" } : { _tag: "Applied", version: moved.version }
          )
        }
        const untouched = expected === 0 ? row === undefined || !row.alive : row?.version === expected
        return Effect.succeed(untouched ? { _tag: "NotApplied" } : { _tag: "Fenced" })
      })

    const due: StateStore["due"] = (now, limit, after) => {
      // a deadline passed, or a schedule due (`wake_at`): the index `<prefix>records_wake`
      const deadline = `LEAST(inactivity_deadline, lifetime_deadline, wake_at)`
      return Effect.map(
        after === undefined
          ? sql.unsafe(
            `SELECT resource, key, ${deadline} AS deadline FROM ${table}
             WHERE alive AND ${deadline} <= $1 ORDER BY ${deadline}, resource, key LIMIT $2`,
            [now, limit]
          )
          : sql.unsafe(
            `SELECT resource, key, ${deadline} AS deadline FROM ${table}
             WHERE alive AND ${deadline} <= $1 AND (${deadline}, resource, key) > ($3, $4, $5)
             ORDER BY ${deadline}, resource, key LIMIT $2`,
            [now, limit, after.deadline, after.resource, escapeKey(after.key)]
          ),
        (rows) =>
          (rows as Array<any>).map((r) => ({
            resource: r.resource,
            key: unescapeKey(r.key),
            deadline: Number(r.deadline)
          }))
      )
    }

    const read: StateStore["read"] = Effect.fnUntraced(function*(resource, query, now) {
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
        if (condition.sql !== "TRUE") where += ` AND ${condition.sql}`
      }
      const undecodable: Array<string> = []
      const newer = new Map<number, string>()
      /** A row's record; a row that cannot be loaded is left out: its key reported, or (newer) logged. */
      const decode = (r: any): unknown => {
        try {
          return decodeRow(resource, toStored(r, pg)).state
        } catch (e) {
          if (e instanceof TooNew) newer.set(e.version, e.message)
          else if (e instanceof Undecodable) undecodable.push(unescapeKey(r.key))
          else throw e
          return skipped
        }
      }
      const finish = (records: Array<unknown>) =>
        Effect.gen(function*() {
          if (undecodable.length > 0) return yield* new UndecodableRows({ keys: undecodable })
          for (const message of newer.values()) {
            yield* Effect.logWarning(`${resource.name}: a read left out rows it cannot read: ${message}`)
          }
          return records
        })
      if (exact && query.sort.every((k) => isSortable(resource, k.field))) {
        // SQL decides everything: the order of `Query.sort`, ties in creation order, offset, limit
        const order = orderBy(query.sort, params)
        params.push(query.offset)
        let text = `SELECT key, schema_version, state FROM ${table} WHERE ${where} ORDER BY ${
          [...order, "seq"].join(", ")
        } OFFSET $${params.length}`
        if (query.limit !== undefined) {
          params.push(query.limit)
          text += ` LIMIT $${params.length}`
        }
        const rows = yield* sql.unsafe(text, params)
        return yield* finish((rows as Array<any>).map(decode).filter((r) => r !== skipped))
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
      return yield* finish(collected.done())
    })

    const purge: StateStore["purge"] = (before) =>
      Effect.map(
        sql.unsafe(`DELETE FROM ${table} WHERE NOT alive AND dead_since < ${p(1)} RETURNING key`, [before]),
        (rows) => rows.length
      )

    const move: StateStore["move"] = (m) => {
      const tombstone = rowOf({
        _tag: "Tombstone",
        resource: m.resource,
        key: m.from,
        state: undefined,
        expected: m.expected,
        lastActivity: m.lastActivity,
        removedAt: m.removedAt,
        op: m.op ?? ""
      })
      let insert: unknown
      try {
        insert = rowOf({
          _tag: "Insert",
          resource: m.resource,
          key: m.to,
          state: m.state,
          createdAt: m.createdAt,
          lastActivity: m.lastActivity,
          initial: m.initial,
          op: m.op ?? "",
          newer: m.newer,
          schedules: m.schedules,
          notify: m.notify
        })
      } catch (e) {
        return Effect.fail(
          new StorageFailure({
            applied: "no",
            message: `the record cannot be encoded for storage: ${e instanceof Error ? e.message : String(e)}`
          })
        )
      }
      const transaction = sql.withTransaction(Effect.gen(function*() {
        const removed = yield* statements.runDml(sql, statements.dml.tombstone, [tombstone])
        if (m.replaceExpired === false) {
          // locked until the transaction ends; a row inserted meanwhile is live, so the insert below conflicts
          const there = yield* sql.unsafe<{ readonly alive: boolean | number }>(
            `SELECT alive FROM ${table} WHERE resource = ${p(1)} AND key = ${p(2)}${statements.forUpdate}`,
            [m.resource.name, escapeKey(m.to)]
          )
          if (there.length > 0 && (there[0]!.alive === true || there[0]!.alive === 1)) {
            return yield* new MoveConflict()
          }
        }
        const inserted = yield* statements.runDml(sql, statements.dml.insert, [insert])
        if (removed.length === 0 || inserted.length === 0) return yield* new MoveConflict()
        if (m.op !== undefined) {
          // the tombstone remembers where the record went, for a retry of the change at the old key
          yield* sql.unsafe(
            `UPDATE ${table} SET initial = ${statements.json(p(1))} WHERE resource = ${p(2)} AND key = ${p(3)}`,
            [JSON.stringify({ movedTo: escapeKey(m.to) }), m.resource.name, escapeKey(m.from)]
          )
        }
        return Number(inserted[0]!.version)
      }))
      return Effect.catchCause(transaction, (cause): Effect.Effect<Outcome, StorageFailure> => {
        const error = Cause.findErrorOption(cause)
        if (error._tag === "Some" && error.value instanceof MoveConflict) return Effect.succeed("conflict")
        const { message, verdict } = classify(dialect, cause)
        return Effect.fail(new StorageFailure({ applied: verdict === "unknown" ? "unknown" : "no", message }))
      })
    }

    const page: StateStore["page"] = (resource, after, limit) =>
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
          rows: (rows as Array<any>).map((r) => toStored(r, pg)),
          last: rows.length < limit ? undefined : (rows[rows.length - 1] as { readonly key: string }).key
        })
      )

    const quarantine: StateStore["quarantine"] = (row, reason, at) =>
      sql.withTransaction(Effect.gen(function*() {
        const key = escapeKey(row.key)
        const moved = yield* sql.unsafe(
          `DELETE FROM ${table} WHERE resource = ${p(1)} AND key = ${p(2)} AND version = ${p(3)} RETURNING key`,
          [row.resource, key, row.version]
        )
        if (moved.length === 0) return false
        yield* sql.unsafe(
          `INSERT INTO ${names.quarantine} (resource, key, version, schema_version, state, created_at, last_activity,
             initial, reason, quarantined_at)
           VALUES (${[1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(p).join(", ")})`,
          [
            row.resource,
            key,
            row.version,
            row.schemaVersion,
            cellText(row),
            row.createdAt,
            row.lastActivity,
            row.initial === undefined ? null : JSON.stringify(row.initial),
            reason,
            at
          ]
        )
        return true
      }))

    return { table: name, channel, dialect, load, write, settle, due, read, purge, move, page, quarantine }
  })
