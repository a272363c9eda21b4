/**
 * SqliteClient: the embedded SQLite `SqlClient` over `node:sqlite`. Values go
 * in and come back out, transactions commit, roll back and nest as
 * savepoints, a transaction holds the one connection while other fibers wait,
 * SQLite's errors arrive as `SqlError`s, a file outlives the client that wrote
 * it, and closing the scope lets go of the file.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Scope, Stream } from "effect"
import { SqliteClient } from "effect-gen-server"
import { Reactivity } from "effect/reactivity"
import { SqlClient } from "effect/sql"
import { SqlError } from "effect/sql/SqlError"
import * as fc from "fast-check"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { DatabaseSync } from "node:sqlite"
import { numRuns, seed } from "./fixtures/Model.js"

/** A temporary directory removed when the test's scope closes. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-gen-server-sqlite-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

const memory = (options?: Partial<SqliteClient.SqliteClientConfig>) =>
  SqliteClient.make({ filename: ":memory:", ...options }).pipe(Effect.provide(Reactivity.layer))

const failure = <A>(exit: Exit.Exit<A, SqlError>): SqlError => {
  assert.isTrue(Exit.isFailure(exit), "expected a failure")
  const error = Exit.isFailure(exit) ? exit.cause.reasons.find((reason) => reason._tag === "Fail") : undefined
  assert.isDefined(error)
  const value = (error as { readonly error: unknown }).error
  assert.instanceOf(value, SqlError)
  return value as SqlError
}

describe("SqliteClient", () => {
  describe("values", () => {
    it.effect("every parameter type round-trips through a column", () =>
      Effect.gen(function*() {
        const sql = yield* memory()
        yield* sql`CREATE TABLE v (id INTEGER PRIMARY KEY, value ANY)`
        const bytes = new Uint8Array([0, 1, 2, 254, 255])
        const date = new Date("1985-10-26T09:00:00.000Z")
        const cases: ReadonlyArray<readonly [unknown, unknown]> = [
          [null, null],
          [undefined, null],
          [0, 0],
          [-42, -42],
          [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
          [1.21, 1.21],
          [-0.5, -0.5],
          ["", ""],
          ["Great Scott! ⚡ 1.21 gigawatts", "Great Scott! ⚡ 1.21 gigawatts"],
          ["it's \"quoted\"", "it's \"quoted\""],
          [1955n, 1955],
          [true, 1],
          [false, 0],
          [bytes, bytes],
          [date, "1985-10-26T09:00:00.000Z"]
        ]
        for (const [index, [input]] of cases.entries()) {
          yield* sql`INSERT INTO v (id, value) VALUES (${index}, ${input as any})`
        }
        const rows = yield* sql<{ readonly id: number; readonly value: unknown }>`SELECT id, value FROM v ORDER BY id`
        assert.deepStrictEqual(rows, cases.map(([, expected], id) => ({ id, value: expected })))
        // rows are plain objects
        assert.strictEqual(Object.getPrototypeOf(rows[0]), Object.prototype)
      }))

    it.effect("integers beyond 2^53 read as bigints with SafeIntegers, and fail without", () =>
      Effect.gen(function*() {
        const sql = yield* memory()
        const big = 2n ** 62n + 1n
        yield* sql`CREATE TABLE b (value INTEGER)`
        yield* sql`INSERT INTO b VALUES (${big})`
        const read = sql<{ readonly value: bigint }>`SELECT value FROM b`
        const safe = yield* read.pipe(Effect.provideService(SqlClient.SafeIntegers, true))
        assert.deepStrictEqual(safe, [{ value: big }])
        const error = failure(yield* Effect.exit(read))
        assert.match(error.message, /too large/)
        // the statement's cached mode follows the fiber's SafeIntegers each time
        assert.deepStrictEqual(yield* read.pipe(Effect.provideService(SqlClient.SafeIntegers, true)), [{ value: big }])
      }))

    it.effect("a value SQLite cannot bind fails with a SqlError and inserts nothing", () =>
      Effect.gen(function*() {
        const sql = yield* memory()
        yield* sql`CREATE TABLE v (a ANY, b ANY)`
        const object = failure(yield* Effect.exit(sql`INSERT INTO v VALUES (${1}, ${{ year: 1985 } as any})`))
        assert.strictEqual(object.reason._tag, "UnknownError")
        assert.match(object.message, /parameter 2 cannot be bound to SQLite: Object/)
        const invalidDate = failure(yield* Effect.exit(sql`INSERT INTO v VALUES (${new Date(Number.NaN)}, ${1})`))
        assert.match(invalidDate.message, /parameter 1 is an invalid Date/)
        assert.deepStrictEqual(yield* sql`SELECT count(*) AS n FROM v`, [{ n: 0 }])
      }))

    it.effect("executeValues, executeRaw, stream and unsafe reach the same connection", () =>
      Effect.gen(function*() {
        const sql = yield* memory()
        yield* sql`CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)`
        const raw = yield* sql`INSERT INTO t ${sql.insert([{ id: 1, name: "Marty" }, { id: 2, name: "Doc" }])}`.raw
        assert.deepStrictEqual(raw, { changes: 2, lastInsertRowid: 2 })
        assert.deepStrictEqual(yield* sql`SELECT id, name FROM t ORDER BY id`.values, [[1, "Marty"], [2, "Doc"]])
        const streamed = yield* Stream.runCollect(sql<{ readonly name: string }>`SELECT name FROM t ORDER BY id`.stream)
        assert.deepStrictEqual(streamed, [{ name: "Marty" }, { name: "Doc" }])
        const names = yield* sql.unsafe("SELECT name FROM t WHERE id IN (?, ?) ORDER BY id", [2, 1])
        assert.deepStrictEqual(names, [{ name: "Marty" }, { name: "Doc" }])
        assert.deepStrictEqual(yield* sql`SELECT id FROM t WHERE ${sql.in("id", [2])}`, [{ id: 2 }])
        assert.strictEqual(
          sql.onDialectOrElse({ sqlite: () => "sqlite", orElse: () => "other" }),
          "sqlite"
        )
      }))

    it.effect("transformQueryNames and transformResultNames rename identifiers", () =>
      Effect.gen(function*() {
        const snake = (name: string) => name.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase())
        const camel = (name: string) => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())
        const sql = yield* memory({ transformQueryNames: snake, transformResultNames: camel })
        yield* sql`CREATE TABLE people (id INTEGER, current_year INTEGER)`
        yield* sql`INSERT INTO people ${sql.insert({ id: 1, currentYear: 1985 })}`
        assert.deepStrictEqual(yield* sql`SELECT * FROM people`, [{ id: 1, currentYear: 1985 }])
      }))

    it.effect("a small prepared-statement cache evicts and still answers, and 0 disables it", () =>
      Effect.gen(function*() {
        for (const prepareCacheSize of [0, 2]) {
          const sql = yield* memory({ prepareCacheSize })
          const answers: Array<unknown> = []
          for (let round = 0; round < 2; round++) {
            for (let n = 0; n < 5; n++) {
              answers.push(...(yield* sql.unsafe(`SELECT ${n} AS n, ? AS round`, [round])))
            }
          }
          assert.deepStrictEqual(
            answers,
            [0, 1].flatMap((round) => [0, 1, 2, 3, 4].map((n) => ({ n, round })))
          )
        }
      }))
  })

  describe("transactions", () => {
    it.effect("a transaction commits on success and rolls back on failure", () =>
      Effect.gen(function*() {
        const sql = yield* memory()
        yield* sql`CREATE TABLE t (id INTEGER PRIMARY KEY)`
        yield* sql.withTransaction(sql`INSERT INTO t VALUES (1)`)
        const failed = yield* Effect.exit(
          sql.withTransaction(Effect.andThen(sql`INSERT INTO t VALUES (2)`, Effect.fail("flux capacitor broke")))
        )
        assert.deepStrictEqual(failed, Exit.fail("flux capacitor broke"))
        assert.deepStrictEqual(yield* sql`SELECT id FROM t`, [{ id: 1 }])
      }))

    it.effect("a nested transaction that fails rolls back to its savepoint and keeps the outer one", () =>
      Effect.gen(function*() {
        const sql = yield* memory()
        yield* sql`CREATE TABLE t (id INTEGER PRIMARY KEY)`
        yield* sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO t VALUES (1)`
          const inner = yield* Effect.exit(
            sql.withTransaction(Effect.andThen(sql`INSERT INTO t VALUES (2)`, Effect.fail("inner")))
          )
          assert.isTrue(Exit.isFailure(inner))
          yield* sql.withTransaction(sql`INSERT INTO t VALUES (3)`)
          yield* sql`INSERT INTO t VALUES (4)`
        }))
        assert.deepStrictEqual(yield* sql`SELECT id FROM t ORDER BY id`, [{ id: 1 }, { id: 3 }, { id: 4 }])
        // nothing left open: a fresh transaction begins
        yield* sql.withTransaction(sql`INSERT INTO t VALUES (5)`)
        assert.deepStrictEqual(yield* sql`SELECT count(*) AS n FROM t`, [{ n: 4 }])
      }))

    it.effect("another fiber's statement waits until the transaction commits", () =>
      Effect.gen(function*() {
        const sql = yield* memory()
        yield* sql`CREATE TABLE t (id INTEGER PRIMARY KEY)`
        const log: Array<string> = []
        const inside = yield* Deferred.make<void>()
        const gate = yield* Deferred.make<void>()
        const writer = yield* sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO t VALUES (1)`
          yield* Deferred.succeed(inside, undefined)
          yield* Deferred.await(gate)
          yield* sql`INSERT INTO t VALUES (2)`
          log.push("writer done")
        })).pipe(Effect.forkChild)
        yield* Deferred.await(inside)
        const reader = yield* sql<{ readonly n: number }>`SELECT count(*) AS n FROM t`.pipe(
          Effect.tap(() => Effect.sync(() => log.push("reader ran"))),
          Effect.forkChild
        )
        for (let i = 0; i < 20; i++) yield* Effect.yieldNow
        assert.deepStrictEqual(log, [])
        assert.isUndefined(reader.pollUnsafe())
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(writer)
        // the reader saw the committed transaction, whole
        assert.deepStrictEqual(yield* Fiber.join(reader), [{ n: 2 }])
        assert.deepStrictEqual(log, ["writer done", "reader ran"])
      }))

    it.effect("an interrupted transaction rolls back and frees the connection", () =>
      Effect.gen(function*() {
        const sql = yield* memory()
        yield* sql`CREATE TABLE t (id INTEGER PRIMARY KEY)`
        const inside = yield* Deferred.make<void>()
        const stuck = yield* sql.withTransaction(
          Effect.andThen(
            sql`INSERT INTO t VALUES (1)`,
            Effect.andThen(Deferred.succeed(inside, undefined), Effect.never)
          )
        ).pipe(Effect.forkChild)
        yield* Deferred.await(inside)
        yield* Fiber.interrupt(stuck)
        assert.deepStrictEqual(yield* sql`SELECT count(*) AS n FROM t`, [{ n: 0 }])
        yield* sql.withTransaction(sql`INSERT INTO t VALUES (2)`)
        assert.deepStrictEqual(yield* sql`SELECT id FROM t`, [{ id: 2 }])
      }))

    it.effect("a COMMIT that fails (deferred foreign key) is a SqlError and leaves no transaction open", () =>
      Effect.gen(function*() {
        const sql = yield* memory()
        yield* sql`CREATE TABLE parent (id INTEGER PRIMARY KEY)`
        yield* sql`CREATE TABLE child (id INTEGER PRIMARY KEY,
          parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)`
        const error = failure(yield* Effect.exit(sql.withTransaction(sql`INSERT INTO child VALUES (1, 42)`)))
        assert.strictEqual(error.reason._tag, "ConstraintError")
        assert.match(error.message, /FOREIGN KEY constraint failed/)
        assert.deepStrictEqual(yield* sql`SELECT count(*) AS n FROM child`, [{ n: 0 }])
        yield* sql.withTransaction(
          Effect.andThen(sql`INSERT INTO parent VALUES (42)`, sql`INSERT INTO child VALUES (1, 42)`)
        )
        assert.deepStrictEqual(yield* sql`SELECT id, parent FROM child`, [{ id: 1, parent: 42 }])
      }))

    it.effect("the project's multi-row upsert inserts new rows and updates existing ones", () =>
      Effect.gen(function*() {
        const sql = yield* memory()
        yield* sql`CREATE TABLE records (
          resource TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL,
          PRIMARY KEY (resource, id))`
        yield* sql`INSERT INTO records ${sql.insert({ resource: "Character", id: "marty", version: 1, data: "1985" })}`
        const batch = [
          { resource: "Character", id: "marty", version: 2, data: "1955" },
          { resource: "Character", id: "doc", version: 1, data: "1955" },
          { resource: "Car", id: "delorean", version: 1, data: "88mph" }
        ] as const
        yield* sql.withTransaction(
          sql`INSERT INTO records ${sql.insert(batch)}
              ON CONFLICT (resource, id) DO UPDATE SET version = excluded.version, data = excluded.data`
        )
        assert.deepStrictEqual(
          yield* sql`SELECT resource, id, version, data FROM records ORDER BY resource, id`,
          [
            { resource: "Car", id: "delorean", version: 1, data: "88mph" },
            { resource: "Character", id: "doc", version: 1, data: "1955" },
            { resource: "Character", id: "marty", version: 2, data: "1955" }
          ]
        )
      }))

    it("random rows inserted in one transaction read back equal", async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.uniqueArray(
            fc.record({
              id: fc.integer(),
              name: fc.string(),
              score: fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })),
              note: fc.option(fc.string(), { nil: null }),
              blob: fc.uint8Array({ maxLength: 16 })
            }),
            { selector: (row) => row.id, minLength: 1, maxLength: 40 }
          ),
          (rows) =>
            Effect.runPromise(Effect.scoped(Effect.gen(function*() {
              const sql = yield* memory()
              yield* sql`CREATE TABLE r (id INTEGER PRIMARY KEY, name TEXT, score REAL, note TEXT, blob BLOB)`
              yield* sql.withTransaction(sql`INSERT INTO r ${sql.insert(rows as [(typeof rows)[0], ...typeof rows])}`)
              const back = yield* sql`SELECT id, name, score, note, blob FROM r ORDER BY id`
              const expected = [...rows].sort((a, b) => a.id - b.id).map((row) => ({
                ...row,
                // SQLite has no negative zero
                score: Object.is(row.score, -0) ? 0 : row.score
              }))
              assert.deepStrictEqual(back, expected)
            })))
        ),
        { numRuns: numRuns(100, 1_000), seed: seed(1885) }
      )
    })
  })

  describe("errors", () => {
    it.effect("a syntax error is a SqlError with SQLite's message", () =>
      Effect.gen(function*() {
        const sql = yield* memory()
        const error = failure(yield* Effect.exit(sql`SELEC 1`))
        assert.strictEqual(error.reason._tag, "SqlSyntaxError")
        assert.strictEqual(error.message, "near \"SELEC\": syntax error")
        assert.instanceOf(error.reason.cause, Error)
      }))

    it.effect("a text of several statements fails with a SqlSyntaxError and runs none of them", () =>
      Effect.gen(function*() {
        const sql = yield* memory()
        const error = failure(yield* Effect.exit(sql.unsafe(`CREATE TABLE a (x); CREATE TABLE b (x)`)))
        assert.strictEqual(error.reason._tag, "SqlSyntaxError")
        assert.include(error.message, "one statement per call")
        assert.include(error.message, "CREATE TABLE b (x)")
        assert.deepStrictEqual(yield* sql`SELECT name FROM sqlite_schema`, [])
        const streamed = failure(yield* Effect.exit(Stream.runCollect(sql.unsafe(`SELECT 1; SELECT 2`).stream)))
        assert.strictEqual(streamed.reason._tag, "SqlSyntaxError")
        // blanks, semicolons and comments after the one statement are no second statement
        yield* sql.unsafe(`CREATE TABLE a (x);;  -- the first table\n /* done */ ;\n`)
        assert.deepStrictEqual(yield* sql`SELECT name FROM sqlite_schema`, [{ name: "a" }])
      }))

    it.effect("a duplicate key is a UniqueViolation naming the constraint", () =>
      Effect.gen(function*() {
        const sql = yield* memory()
        yield* sql`CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)`
        yield* sql`INSERT INTO t VALUES (1, 'marty')`
        const error = failure(yield* Effect.exit(sql`INSERT INTO t VALUES (2, 'marty')`))
        assert.strictEqual(error.reason._tag, "UniqueViolation")
        assert.strictEqual((error.reason as { readonly constraint: string }).constraint, "t.name")
        const missing = failure(yield* Effect.exit(sql`SELECT * FROM nowhere`))
        assert.strictEqual(missing.reason._tag, "UnknownError")
        assert.strictEqual(missing.message, "no such table: nowhere")
      }))

    it.effect("on a Node without node:sqlite, opening fails with a SqlError saying so", () =>
      Effect.gen(function*() {
        const original = process.getBuiltinModule
        yield* Effect.acquireRelease(
          Effect.sync(() => {
            process.getBuiltinModule = ((id: string) =>
              id === "node:sqlite" ? undefined : original(id)) as typeof process.getBuiltinModule
          }),
          () => Effect.sync(() => (process.getBuiltinModule = original))
        )
        const error = failure(yield* Effect.exit(memory()))
        assert.match(error.message, /node:sqlite is not available in Node v\d+.*needs Node 22\.19 or later/)
      }))

    it("importing the package loads no node:sqlite, so prints no ExperimentalWarning", () => {
      const root = Path.join(import.meta.dirname, "..")
      const child = ChildProcess.spawnSync(
        process.execPath,
        ["--import", "tsx", "-e", "import('./src/index.ts').then((m) => console.log(typeof m.SqliteClient.make))"],
        { cwd: root, encoding: "utf8", timeout: 60_000 }
      )
      assert.strictEqual(child.status, 0, child.stderr)
      assert.strictEqual(child.stdout.trim(), "function")
      assert.notMatch(child.stderr, /ExperimentalWarning/)
    }, 60_000)

    it.effect("opening a file that cannot exist fails with a SqlError", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const error = failure(
          yield* Effect.exit(
            SqliteClient.make({ filename: Path.join(dir, "no", "such", "dir.db") }).pipe(
              Effect.provide(Reactivity.layer)
            )
          )
        )
        assert.strictEqual(error.reason._tag, "ConnectionError")
        assert.match(error.message, /unable to open database file/)
      }))
  })

  describe("files", () => {
    it.effect("rows persist across two layers on the same file", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const filename = Path.join(dir, "records.db")
        const first = Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql`CREATE TABLE t (id TEXT PRIMARY KEY, year INTEGER)`
          yield* sql.withTransaction(sql`INSERT INTO t ${sql.insert([{ id: "marty", year: 1985 }])}`)
        })
        yield* first.pipe(Effect.provide(SqliteClient.layer({ filename })))
        const second = Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const client = yield* SqliteClient.SqliteClient
          assert.strictEqual(client as unknown, sql as unknown)
          assert.deepStrictEqual(yield* sql`PRAGMA journal_mode`, [{ journal_mode: "wal" }])
          assert.deepStrictEqual(yield* sql`PRAGMA synchronous`, [{ synchronous: 2 }])
          return yield* sql`SELECT id, year FROM t`
        })
        assert.deepStrictEqual(yield* second.pipe(Effect.provide(SqliteClient.layer({ filename }))), [{
          id: "marty",
          year: 1985
        }])
        const normal = Effect.flatMap(SqlClient.SqlClient, (sql) => sql`PRAGMA synchronous`)
        assert.deepStrictEqual(
          yield* normal.pipe(Effect.provide(SqliteClient.layer({ filename, synchronous: "NORMAL" }))),
          [{ synchronous: 1 }]
        )
      }))

    it.effect("a stream returns every row in order, and one ended early leaves no reader open (the WAL checkpoints)", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const filename = Path.join(dir, "stream.db")
        const sql = yield* SqliteClient.make({ filename }).pipe(Effect.provide(Reactivity.layer))
        yield* sql`CREATE TABLE t (id INTEGER PRIMARY KEY)`
        yield* sql`WITH RECURSIVE n(id) AS (SELECT 0 UNION ALL SELECT id + 1 FROM n WHERE id < 999) INSERT INTO t SELECT id FROM n`
        const all = yield* Stream.runCollect(sql<{ readonly id: number }>`SELECT id FROM t ORDER BY id`.stream)
        assert.deepStrictEqual(all.map((row) => row.id), Array.from({ length: 1_000 }, (_, id) => id))
        const firstThree = yield* Stream.runCollect(
          Stream.take(sql<{ readonly id: number }>`SELECT id FROM t ORDER BY id`.stream, 3)
        )
        assert.deepStrictEqual(firstThree.map((row) => row.id), [0, 1, 2])
        // another connection's checkpoint is not held back by a reader left open by the stream
        const other = new DatabaseSync(filename)
        yield* Effect.addFinalizer(() => Effect.sync(() => other.close()))
        other.exec("INSERT INTO t VALUES (1000)")
        const checkpoint = other.prepare("PRAGMA wal_checkpoint(TRUNCATE)").get() as { readonly busy: number }
        assert.strictEqual(checkpoint.busy, 0)
      }))

    it.effect("another process's write lock is a LockTimeoutError once busyTimeout passes, and the client recovers", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const filename = Path.join(dir, "records.db")
        const sql = yield* SqliteClient.make({ filename, busyTimeout: 0 }).pipe(Effect.provide(Reactivity.layer))
        yield* sql`CREATE TABLE t (id INTEGER)`
        const other = new DatabaseSync(filename)
        yield* Effect.addFinalizer(() => Effect.sync(() => other.isOpen && other.close()))
        other.exec("BEGIN IMMEDIATE")
        const error = failure(yield* Effect.exit(sql.withTransaction(sql`INSERT INTO t VALUES (1)`)))
        assert.strictEqual(error.reason._tag, "LockTimeoutError")
        assert.match(error.message, /database is locked/)
        other.exec("ROLLBACK")
        yield* sql.withTransaction(sql`INSERT INTO t VALUES (2)`)
        assert.deepStrictEqual(yield* sql`SELECT id FROM t`, [{ id: 2 }])
      }))

    it.effect("a readonly client reads and refuses to write", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const filename = Path.join(dir, "records.db")
        yield* Effect.flatMap(
          SqlClient.SqlClient,
          (sql) => Effect.andThen(sql`CREATE TABLE t (id INTEGER)`, sql`INSERT INTO t VALUES (1)`)
        ).pipe(Effect.provide(SqliteClient.layer({ filename })))
        const program = Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql`INSERT INTO t VALUES (1)`
        })
        const run = Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const rows = yield* sql`SELECT id FROM t`
          const write = failure(yield* Effect.exit(program))
          return [rows, write.message] as const
        }).pipe(Effect.provide(SqliteClient.layer({ filename, readonly: true })))
        const [rows, message] = yield* run
        assert.deepStrictEqual(rows, [{ id: 1 }])
        assert.match(message, /readonly database/)
      }))

    it.effect("closing the scope closes the database and releases the file", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const filename = Path.join(dir, "records.db")
        const scope = yield* Scope.make()
        const sql = yield* SqliteClient.make({ filename }).pipe(
          Effect.provide(Reactivity.layer),
          Scope.provide(scope)
        )
        yield* sql`CREATE TABLE t (id INTEGER)`
        // the client holds the file, in WAL mode
        assert.isTrue(Fs.existsSync(filename + "-wal"))
        const exclusiveWrite = () => {
          const other = new DatabaseSync(filename, { timeout: 0 })
          try {
            other.exec("PRAGMA locking_mode = EXCLUSIVE")
            other.exec("INSERT INTO t VALUES (1)")
          } finally {
            other.close()
          }
        }
        assert.throws(exclusiveWrite, /database is locked/)
        yield* Scope.close(scope, Exit.void)
        // the last connection closed checkpoints and removes the WAL, and another connection may lock the file
        assert.isFalse(Fs.existsSync(filename + "-wal"))
        exclusiveWrite()
        const after = failure(yield* Effect.exit(sql`SELECT 1`))
        assert.strictEqual(after.reason._tag, "ConnectionError")
        assert.match(after.message, /not open/)
      }))
  })
})
