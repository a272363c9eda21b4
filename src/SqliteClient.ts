/**
 * An embedded SQLite `SqlClient` over Node's built-in `node:sqlite`.
 *
 * `SqliteClient.layer({ filename })` provides `effect/sql`'s `SqlClient` (and
 * this module's `SqliteClient`) backed by one `DatabaseSync` connection: the
 * tagged template `sql`, `sql.withTransaction`, `sql.in`, the insert and
 * update helpers and `sql.onDialectOrElse` (dialect `"sqlite"`) work as with
 * any Effect SQL driver. It needs no native addon: `node:sqlite` ships with
 * every Node this package supports (22.19 or later, as its `engines` say;
 * SQLite 3.51 in Node 22.23).
 *
 * **Costs**: every statement runs synchronously on the calling thread, so it
 * blocks the event loop for as long as SQLite takes (microseconds for a
 * prepared point read or upsert; the `fsync` of a commit with
 * `synchronous: "FULL"`; up to `busyTimeout` while another process holds the
 * write lock). Statements are serialized through one semaphore: a transaction
 * holds the connection from `BEGIN` to `COMMIT`, and every other fiber's
 * statement waits for it. Prepared statements are kept in a bounded LRU
 * (`prepareCacheSize`), so a repeated statement is parsed once.
 *
 * **Gotchas**
 *
 * - Node 22 prints `ExperimentalWarning: SQLite is an experimental feature`
 *   once, the first time a database is opened (`node:sqlite` is loaded then,
 *   not when the package is imported). This module does not silence it (that
 *   would hide every other warning); start Node with
 *   `--disable-warning=ExperimentalWarning` to hide it. On a Node without
 *   `node:sqlite` (older than this package supports), opening fails with a
 *   `SqlError` naming the Node this package needs.
 * - With `synchronous: "NORMAL"` in WAL mode, a committed transaction
 *   survives a crash of the process (even `SIGKILL`) but **may be lost on
 *   power loss or an operating system crash**. The default, `"FULL"`, syncs
 *   the WAL on every commit.
 * - `busyTimeout` waits synchronously: while another process holds the write
 *   lock, the whole Node process stops for up to that long.
 * - One statement per call: `node:sqlite` prepares only the first statement
 *   of a text, so a text with more after it (`CREATE ...; INSERT ...`) fails
 *   with a `SqlError` (`SqlSyntaxError`) before anything runs. Send each
 *   statement separately.
 * - `stream` reads its rows from SQLite 256 at a time as they are pulled, and
 *   holds the connection until it ends.
 * - Parameters: `null`/`undefined` bind NULL, numbers, strings, bigints and
 *   `Uint8Array`s bind as they are, booleans bind as `1`/`0` and `Date`s as
 *   their ISO 8601 string (`toISOString`, UTC, so they sort as text); any
 *   other value fails with a `SqlError` before anything runs. Integers read
 *   back as numbers; one beyond `Number.MAX_SAFE_INTEGER` fails unless
 *   `SqlClient.SafeIntegers` is provided as `true`, which reads every integer
 *   as a `bigint`. Rows are plain objects.
 *
 * @since 0.3.0
 * @module
 */
import { type Array as Arr, Cause, Channel, Context, Duration, Effect, Layer, Scope, Semaphore, Stream } from "effect"
import { Reactivity } from "effect/reactivity"
import { SqlClient } from "effect/sql"
import type { Connection } from "effect/sql/SqlConnection"
import {
  AuthenticationError,
  AuthorizationError,
  ConnectionError,
  ConstraintError,
  LockTimeoutError,
  SqlError,
  type SqlErrorReason,
  SqlSyntaxError,
  UniqueViolation,
  UnknownError
} from "effect/sql/SqlError"
import * as Statement from "effect/sql/Statement"
import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite"

const TypeId = "~effect-gen-server/SqliteClient"

/**
 * A `SqlClient` over one embedded SQLite connection, with the options it was
 * made with.
 *
 * **Example** (Reading the file name back)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { SqliteClient } from "effect-gen-server"
 *
 * const filename = Effect.map(SqliteClient.SqliteClient, (client) => client.config.filename)
 * ```
 *
 * @category models
 * @since 0.3.0
 */
export interface SqliteClient extends SqlClient.SqlClient {
  readonly [TypeId]: typeof TypeId
  readonly config: SqliteClientConfig
}

/**
 * The service tag of a {@link SqliteClient}; {@link layer} provides it next to
 * `SqlClient.SqlClient` (the same value).
 *
 * **Example** (Asking for the SQLite client)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { SqliteClient } from "effect-gen-server"
 *
 * const program = Effect.gen(function*() {
 *   const sql = yield* SqliteClient.SqliteClient
 *   return yield* sql<{ readonly version: string }>`SELECT sqlite_version() AS version`
 * }).pipe(Effect.provide(SqliteClient.layer({ filename: ":memory:" })))
 * ```
 *
 * @category services
 * @since 0.3.0
 */
export const SqliteClient: Context.Service<SqliteClient, SqliteClient> = Context.Service<SqliteClient>(
  "effect-gen-server/SqliteClient"
)

/**
 * Options of {@link make} and {@link layer}.
 *
 * **Details**
 *
 * - `filename`: a path, or `":memory:"` for a private in-memory database.
 * - `readonly`: open the file read-only (no pragma that writes is sent).
 *   Default `false`.
 * - `journalMode`: `PRAGMA journal_mode`, default `"WAL"` (ignored when
 *   `readonly`; an in-memory database keeps `"memory"`).
 * - `synchronous`: `PRAGMA synchronous`, default `"FULL"`: a committed
 *   transaction is on disk. `"NORMAL"` in WAL mode survives a process crash
 *   but **not power loss**.
 * - `busyTimeout`: how long a statement waits (synchronously) for another
 *   process's lock before failing with a `LockTimeoutError`. Default 5 seconds.
 * - `prepareCacheSize`: how many prepared statements are kept (least recently
 *   used evicted). Default 200; `0` prepares every statement afresh.
 * - `transformQueryNames` / `transformResultNames`: rename identifiers on the
 *   way in and column names on the way out, as other Effect SQL clients do.
 * - `spanAttributes`: extra attributes on every statement's span.
 *
 * **Example** (A durable file)
 *
 * ```ts
 * import { SqliteClient } from "effect-gen-server"
 *
 * const config: SqliteClient.SqliteClientConfig = {
 *   filename: "/var/lib/app/records.db",
 *   synchronous: "FULL",
 *   busyTimeout: "2 seconds"
 * }
 * ```
 *
 * @category models
 * @since 0.3.0
 */
export interface SqliteClientConfig {
  readonly filename: string
  readonly readonly?: boolean | undefined
  readonly journalMode?: "WAL" | "DELETE" | "TRUNCATE" | "PERSIST" | "MEMORY" | "OFF" | undefined
  readonly synchronous?: "FULL" | "NORMAL" | "EXTRA" | "OFF" | undefined
  readonly busyTimeout?: Duration.Input | undefined
  readonly prepareCacheSize?: number | undefined
  readonly transformQueryNames?: ((name: string) => string) | undefined
  readonly transformResultNames?: ((name: string) => string) | undefined
  readonly spanAttributes?: Record<string, unknown> | undefined
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

const messageOf = (cause: unknown): string =>
  cause instanceof Error ? cause.message : typeof cause === "string" ? cause : String(cause)

/** Classifies an error thrown by `node:sqlite` (its `errcode` is SQLite's extended result code). */
const reasonOf = (cause: unknown, operation: string): SqlErrorReason => {
  const message = messageOf(cause)
  const props = { cause, message, operation }
  const errcode = typeof cause === "object" && cause !== null && "errcode" in cause ? cause.errcode : undefined
  if (typeof errcode !== "number") {
    // thrown by Node itself: a closed database, or a value it cannot bind
    const code = typeof cause === "object" && cause !== null && "code" in cause ? cause.code : undefined
    return code === "ERR_INVALID_STATE" ? new ConnectionError(props) : new UnknownError(props)
  }
  // SQLITE_CONSTRAINT_PRIMARYKEY and SQLITE_CONSTRAINT_UNIQUE
  if (errcode === 1555 || errcode === 2067) {
    const prefix = "constraint failed:"
    const at = message.indexOf(prefix)
    const constraint = at === -1 ? "" : message.slice(at + prefix.length).trim()
    return new UniqueViolation({ ...props, constraint: constraint === "" ? "unknown" : constraint })
  }
  switch (errcode & 0xff) {
    case 1:
      return /syntax error|incomplete input|unrecognized token/.test(message)
        ? new SqlSyntaxError(props)
        : new UnknownError(props)
    case 3:
      return new AuthorizationError(props)
    case 5:
    case 6:
      return new LockTimeoutError(props)
    case 14:
      return new ConnectionError(props)
    case 19:
      return new ConstraintError(props)
    case 23:
      return new AuthenticationError(props)
    default:
      return new UnknownError(props)
  }
}

const sqlError = (cause: unknown, operation: string): SqlError => new SqlError({ reason: reasonOf(cause, operation) })

// ---------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------

class UnbindableValue extends Error {}

/** The `SqlError` of a statement that failed to prepare, bind or run. */
const refused = (cause: unknown): SqlError =>
  cause instanceof UnbindableValue || cause instanceof SeveralStatements
    ? new SqlError({
      reason: cause instanceof UnbindableValue
        ? new UnknownError({ cause, message: cause.message, operation: "bind" })
        : new SqlSyntaxError({ cause, message: cause.message, operation: "prepare" })
    })
    : sqlError(cause, "execute")

/** How many rows a stream reads from SQLite per chunk. */
const streamChunk = 256

const encodeParam = (value: unknown, index: number): SQLInputValue => {
  switch (typeof value) {
    case "number":
    case "string":
    case "bigint":
      return value
    case "boolean":
      return value ? 1 : 0
    case "undefined":
      return null
    case "object":
      if (value === null || value instanceof Uint8Array) return value
      if (value instanceof Date) {
        if (Number.isNaN(value.getTime())) {
          throw new UnbindableValue(`parameter ${index + 1} is an invalid Date`)
        }
        return value.toISOString()
      }
  }
  throw new UnbindableValue(
    `parameter ${index + 1} cannot be bound to SQLite: ${
      typeof value === "object" && value !== null ? (value.constructor?.name ?? "object") : typeof value
    } (bind null, a number, a string, a bigint, a Uint8Array, a boolean or a Date)`
  )
}

const encodeParams = (params: ReadonlyArray<unknown>): Array<SQLInputValue> => {
  const out = new Array<SQLInputValue>(params.length)
  for (let i = 0; i < params.length; i++) out[i] = encodeParam(params[i], i)
  return out
}

// ---------------------------------------------------------------------------
// The connection
// ---------------------------------------------------------------------------

/** A prepared statement with what a run needs to know about it, computed once. */
interface Prepared {
  readonly statement: StatementSync
  /** column names; empty for a statement that returns no rows */
  readonly columns: ReadonlyArray<string>
  bigInts: boolean
}

/**
 * What follows the first statement of `sql`, when it is more than blanks,
 * comments and semicolons: `node:sqlite` prepares only the first statement
 * of a text (its `sourceSQL`) and would silently drop the rest.
 */
const trailingStatement = (sql: string, first: string): string | undefined => {
  if (!sql.startsWith(first)) return undefined
  const rest = sql.slice(first.length)
  let i = 0
  while (i < rest.length) {
    const c = rest[i]!
    if (c === ";" || c.trim() === "") i++
    else if (rest.startsWith("--", i)) {
      const end = rest.indexOf("\n", i)
      i = end < 0 ? rest.length : end + 1
    } else if (rest.startsWith("/*", i)) {
      const end = rest.indexOf("*/", i + 2)
      i = end < 0 ? rest.length : end + 2
    } else return rest.slice(i)
  }
  return undefined
}

/** Thrown by `prepareStatement` for a text of several statements. */
class SeveralStatements extends Error {}

const prepareStatement = (db: DatabaseSync, sql: string): Prepared => {
  const statement = db.prepare(sql)
  const more = trailingStatement(sql, statement.sourceSQL)
  if (more !== undefined) {
    throw new SeveralStatements(
      `SqliteClient runs one statement per call, and this text has more after its first statement (${
        JSON.stringify(more.length > 60 ? `${more.slice(0, 60)}...` : more)
      }): send each statement separately`
    )
  }
  statement.setReturnArrays(true)
  return { statement, columns: statement.columns().map((column) => column.name), bigInts: false }
}

/** Rows as plain objects (`node:sqlite`'s own have a null prototype, which row transforms and equality skip). */
const toObjects = (columns: ReadonlyArray<string>, values: ReadonlyArray<ReadonlyArray<unknown>>) => {
  const rows = new Array<Record<string, unknown>>(values.length)
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!
    const row: Record<string, unknown> = {}
    for (let c = 0; c < columns.length; c++) {
      const name = columns[c]!
      if (name === "__proto__") {
        Object.defineProperty(row, name, { value: value[c], enumerable: true, writable: true, configurable: true })
      } else {
        row[name] = value[c]
      }
    }
    rows[i] = row
  }
  return rows
}

type Mode = "rows" | "values" | "raw"

class SqliteConnection implements Connection {
  readonly db: DatabaseSync
  readonly cacheSize: number
  readonly cache = new Map<string, Prepared>()

  constructor(db: DatabaseSync, cacheSize: number) {
    this.db = db
    this.cacheSize = cacheSize
  }

  private prepared(sql: string): Prepared {
    const cached = this.cache.get(sql)
    if (cached !== undefined) {
      // most recently used last
      this.cache.delete(sql)
      this.cache.set(sql, cached)
      return cached
    }
    const prepared = prepareStatement(this.db, sql)
    if (this.cacheSize > 0) {
      if (this.cache.size >= this.cacheSize) this.cache.delete(this.cache.keys().next().value!)
      this.cache.set(sql, prepared)
    }
    return prepared
  }

  private run(sql: string, params: ReadonlyArray<unknown>, mode: Mode, cached: boolean) {
    return Effect.withFiber<any, SqlError>((fiber) => {
      try {
        const prepared = cached ? this.prepared(sql) : prepareStatement(this.db, sql)
        const bigInts = fiber.getRef(SqlClient.SafeIntegers)
        if (prepared.bigInts !== bigInts) {
          prepared.statement.setReadBigInts(bigInts)
          prepared.bigInts = bigInts
        }
        const args = encodeParams(params)
        if (prepared.columns.length === 0) {
          const result = prepared.statement.run(...args)
          return Effect.succeed(mode === "raw" ? result : [])
        }
        const values = prepared.statement.all(...args) as unknown as ReadonlyArray<ReadonlyArray<unknown>>
        return Effect.succeed(mode === "values" ? values : toObjects(prepared.columns, values))
      } catch (cause) {
        return Effect.fail(refused(cause))
      }
    })
  }

  execute(
    sql: string,
    params: ReadonlyArray<unknown>,
    transformRows: (<A extends object>(row: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined
  ) {
    const rows = this.run(sql, params, "rows", true)
    return transformRows ? Effect.map(rows, transformRows) : rows
  }

  executeRaw(sql: string, params: ReadonlyArray<unknown>) {
    return this.run(sql, params, "raw", true)
  }

  executeValues(sql: string, params: ReadonlyArray<unknown>) {
    return this.run(sql, params, "values", true)
  }

  executeValuesUnprepared(sql: string, params: ReadonlyArray<unknown>) {
    return this.run(sql, params, "values", false)
  }

  executeUnprepared(
    sql: string,
    params: ReadonlyArray<unknown>,
    transformRows: (<A extends object>(row: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined
  ) {
    const rows = this.run(sql, params, "rows", false)
    return transformRows ? Effect.map(rows, transformRows) : rows
  }

  /**
   * Rows read `streamChunk` at a time from a statement of its own (not the
   * cache's: another call running the same text would reset its cursor).
   */
  executeStream(
    sql: string,
    params: ReadonlyArray<unknown>,
    transformRows: (<A extends object>(row: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined
  ): Stream.Stream<any, SqlError> {
    const open = Effect.try({
      try: () => {
        const prepared = prepareStatement(this.db, sql)
        const rows = prepared.statement.iterate(...encodeParams(params)) as Iterator<ReadonlyArray<unknown>>
        return { columns: prepared.columns, rows }
      },
      catch: refused
    })
    return Stream.fromChannel(Channel.fromTransform((_, scope) =>
      Effect.flatMap(open, ({ columns, rows }) => {
        // a stream ended early resets its statement, which ends its read of the database
        let finished = false
        const finish = () => {
          if (!finished) {
            finished = true
            rows.return?.()
          }
        }
        const pull = Effect.suspend((): Effect.Effect<Arr.NonEmptyReadonlyArray<any>, SqlError | Cause.Done> => {
          if (finished) return Cause.done()
          const values: Array<ReadonlyArray<unknown>> = []
          try {
            while (values.length < streamChunk) {
              const next = rows.next()
              if (next.done === true) {
                finished = true
                break
              }
              values.push(next.value)
            }
          } catch (cause) {
            finish()
            return Effect.fail(refused(cause))
          }
          if (values.length === 0) return Cause.done()
          const objects = toObjects(columns, values)
          return Effect.succeed(
            (transformRows ? transformRows(objects) : objects) as unknown as Arr.NonEmptyReadonlyArray<any>
          )
        })
        return Effect.as(Scope.addFinalizer(scope, Effect.sync(finish)), pull)
      })
    ))
  }
}

// ---------------------------------------------------------------------------
// Constructors
// ---------------------------------------------------------------------------

/**
 * `node:sqlite`, loaded when the first database is opened rather than when this
 * module is imported: importing the package must neither print Node's
 * ExperimentalWarning nor fail on a Node without `node:sqlite` (an older Node
 * than this package supports has it only behind `--experimental-sqlite`, or
 * not at all).
 */
const loadSqlite = (): typeof import("node:sqlite") => {
  const sqlite = process.getBuiltinModule("node:sqlite")
  if (sqlite === undefined) {
    throw new Error(
      `node:sqlite is not available in Node ${process.version}: ` +
        "effect-gen-server needs Node 22.19 or later (^22.19.0 || ^24.0.0 || >=26.0.0)"
    )
  }
  return sqlite
}

const openDatabase = (config: SqliteClientConfig) =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        const db = new (loadSqlite().DatabaseSync)(config.filename, {
          readOnly: config.readonly === true,
          timeout: Duration.toMillis(config.busyTimeout ?? Duration.seconds(5))
        })
        try {
          if (config.readonly !== true) db.exec(`PRAGMA journal_mode = ${config.journalMode ?? "WAL"}`)
          db.exec(`PRAGMA synchronous = ${config.synchronous ?? "FULL"}`)
        } catch (cause) {
          db.close()
          throw cause
        }
        return db
      },
      catch: (cause) => sqlError(cause, "open")
    }),
    (db) =>
      Effect.sync(() => {
        // closing rolls back a transaction still open and checkpoints the WAL
        if (db.isOpen) db.close()
      })
  )

/**
 * Opens the database and builds a `SqliteClient`; closing the scope closes
 * the database (an open transaction is rolled back, the file handle released).
 *
 * **Details**
 *
 * One connection serves every fiber: statements take turns through one
 * semaphore, `withTransaction` holds it from `BEGIN IMMEDIATE` (plain `BEGIN`
 * when `readonly`) to `COMMIT`, and nested `withTransaction`s become
 * savepoints, rolled back alone when they fail. Opening fails with a
 * `SqlError` (for example a missing directory, or a missing file when
 * `readonly`).
 *
 * **Example** (A scoped client)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Reactivity } from "effect/reactivity"
 * import { SqliteClient } from "effect-gen-server"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function*() {
 *     const sql = yield* SqliteClient.make({ filename: ":memory:" })
 *     yield* sql`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)`
 *     yield* sql`INSERT INTO notes ${sql.insert({ id: 1, body: "Great Scott!" })}`
 *     return yield* sql<{ readonly body: string }>`SELECT body FROM notes WHERE id = ${1}`
 *   })
 * ).pipe(Effect.provide(Reactivity.layer))
 * ```
 *
 * @category constructors
 * @since 0.3.0
 */
export const make = (
  config: SqliteClientConfig
): Effect.Effect<SqliteClient, SqlError, Scope.Scope | Reactivity.Reactivity> =>
  Effect.gen(function*() {
    const db = yield* openDatabase(config)
    const connection = new SqliteConnection(db, Math.max(0, Math.floor(config.prepareCacheSize ?? 200)))
    yield* Effect.addFinalizer(() => Effect.sync(() => connection.cache.clear()))
    const semaphore = Semaphore.makeUnsafe(1)
    const acquirers = SqlClient.makeSqliteAcquirers({
      connection: Effect.succeed(connection),
      semaphore,
      isTransaction: (conn) => conn.db.isOpen && conn.db.isTransaction
    })
    const client = yield* SqlClient.make({
      driver: "node-sqlite",
      acquirer: acquirers.acquirer,
      borrower: acquirers.borrower,
      transactionAcquirer: acquirers.transactionAcquirer,
      onCommitFailure: acquirers.onCommitFailure,
      isTransaction: acquirers.isTransaction,
      compiler: Statement.makeCompilerSqlite(config.transformQueryNames),
      prepareTransactionControls: true,
      beginTransaction: config.readonly === true ? "BEGIN" : "BEGIN IMMEDIATE",
      releaseSavepoint: (name) => `RELEASE SAVEPOINT ${name}`,
      spanAttributes: [
        ...(config.spanAttributes ? Object.entries(config.spanAttributes) : []),
        ["db.system.name", "sqlite"],
        ["db.namespace", config.filename]
      ],
      transformRows: config.transformResultNames
        ? Statement.defaultTransforms(config.transformResultNames, false).array
        : undefined
    })
    return Object.assign(client, { [TypeId]: TypeId as typeof TypeId, config }) as SqliteClient
  })

/**
 * A layer providing `SqlClient.SqlClient` and {@link SqliteClient} over one
 * SQLite database (and its own `Reactivity`); the database closes with the
 * layer.
 *
 * **Example** (Committed rows in a file)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql"
 * import { SqliteClient } from "effect-gen-server"
 *
 * const program = Effect.gen(function*() {
 *   const sql = yield* SqlClient.SqlClient
 *   yield* sql`CREATE TABLE IF NOT EXISTS years (id TEXT PRIMARY KEY, year INTEGER NOT NULL)`
 *   yield* sql.withTransaction(
 *     sql`INSERT INTO years ${sql.insert([{ id: "marty", year: 1985 }, { id: "doc", year: 1955 }])}
 *         ON CONFLICT (id) DO UPDATE SET year = excluded.year`
 *   )
 *   return yield* sql<{ readonly id: string; readonly year: number }>`SELECT * FROM years ORDER BY id`
 * }).pipe(Effect.provide(SqliteClient.layer({ filename: "records.db" })))
 * ```
 *
 * @category layers
 * @since 0.3.0
 */
export const layer = (
  config: SqliteClientConfig
): Layer.Layer<SqliteClient | SqlClient.SqlClient, SqlError> =>
  Layer.effectContext(
    Effect.map(make(config), (client) =>
      Context.make(SqliteClient, client).pipe(Context.add(SqlClient.SqlClient, client)))
  ).pipe(Layer.provide(Reactivity.layer))
