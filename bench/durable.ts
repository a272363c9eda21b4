/**
 * `npm run bench:durable`: durable resources' writes through the Store
 * against the same writes done directly with the same client, and against
 * the same resource kept in memory only, in one run, as ratios, with the
 * distance to the target of issue 12.
 *
 * For each database, SQLite (`SqliteClient`, a file in a temporary
 * directory, WAL + `synchronous: "FULL"`) and PostgreSQL (`@effect/sql-pg`,
 * 8 connections, a fresh schema dropped after), with 1 and 64 callers:
 *
 * - **durable create / update**: `Store.create` of a new record,
 *   `Store.update` of one of 1,024 records (`--records`; caller `c` updates
 *   the records `c`, `c + 64`, ...: no two callers on one record), of a durable resource;
 * - **direct insert / upsert**: the same record's state written by one
 *   single-row statement per call with the same client (`INSERT`, and
 *   `INSERT ... ON CONFLICT DO UPDATE`), into a table keyed like the store's;
 * - **memory create / update**: the same resource, not durable.
 *
 * The SQL profile of each figure, counted through the client: statements
 * per operation, and for the group commit the writes per batch statement
 * and how long one ran. Every schema and directory is removed at the end,
 * also on failure and on SIGINT/SIGTERM. Usage:
 *
 * ```sh
 * npm run bench:durable                    # 3 s per figure, both databases; about 2 minutes
 * npm run bench:durable -- --time=200 --records=128   # the smoke run CI runs (a few seconds)
 * npm run bench:durable -- --db=pg --only=update
 * ```
 */
import { PgClient } from "@effect/sql-pg"
import { Cause, Effect, Exit, Layer, Schema, type Scope } from "effect"
import { SqlClient } from "effect/sql"
import { execSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Action, Changeset, Resource, SqliteClient, Store } from "../src/index.js"
import { closedLoops, percentile } from "./harness.js"

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const time = Number(arg("time") ?? 3000)
const dbs = (arg("db") ?? "sqlite,pg").split(",")
const only = arg("only")
const callerCounts = [1, 64]
const records = Number(arg("records") ?? 1024)
const callTimeout = "30 seconds"
const pgConfig = {
  host: process.env.PGHOST ?? "127.0.0.1",
  port: Number(process.env.PGPORT ?? 5432),
  username: process.env.PGUSER ?? "postgres",
  database: process.env.PGDATABASE ?? "test"
} as const

if (!(time > 0) || !Number.isInteger(records) || records < 64 || dbs.some((d) => d !== "sqlite" && d !== "pg")) {
  console.error(
    "usage: npm run bench:durable -- [--time=<ms per figure>] [--records=<n >= 64>] [--db=sqlite,pg] [--only=<text>]"
  )
  process.exit(2)
}

const log = (line: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`)

const fields = { id: Schema.String, owner: Schema.String, count: Schema.Int, tags: Schema.Array(Schema.String) }
const actions = {
  bump: Action.update({
    arguments: { count: Schema.Int },
    change: (cs) => Changeset.set(cs, "count", cs.arguments.count)
  })
}
const Durable = Resource.make("BenchDurable", { fields, primaryKey: ["id"], durable: true, actions })
const Memory = Resource.make("BenchMemory", { fields, primaryKey: ["id"], actions })

const stateOf = (id: string, count: number) => ({ id, owner: "doc", count, tags: ["flux", "capacitor"] })

// ---------------------------------------------------------------------------
// the SQL profile

const counters = { statements: 0, batches: 0, batchRows: 0, batchMillis: 0 }

/** Whether `statement` is one of the state store's group commit statements (a batch of writes). */
const isBatch = (statement: string) =>
  (statement.trimStart().startsWith("WITH w AS (") && statement.includes("jsonb_to_recordset")) ||
  statement.includes("FROM json_each(?1) AS v")

/** `client`, counting every statement built through it and the group commit's batches (rows, time). */
const counting = (client: SqlClient.SqlClient): SqlClient.SqlClient =>
  new Proxy(client, {
    apply(target, self, args) {
      counters.statements++
      return Reflect.apply(target, self, args)
    },
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver)
      if (prop === "unsafe") {
        return (statement: string, params?: ReadonlyArray<unknown>) => {
          counters.statements++
          const built = (value as any).call(receiver, statement, params)
          if (!isBatch(statement)) return built
          counters.batches++
          counters.batchRows += JSON.parse(String(params?.[0] ?? "[]")).length
          return Effect.suspend(() => {
            const start = performance.now()
            return Effect.ensuring(built, Effect.sync(() => (counters.batchMillis += performance.now() - start)))
          })
        }
      }
      if (prop === "withoutTransforms") return () => counting((value as any).call(receiver))
      if (prop === "safe") return counting(value as any)
      return value
    }
  })

const countingLayer = (client: Layer.Layer<SqlClient.SqlClient>) =>
  Layer.effect(SqlClient.SqlClient)(Effect.map(Effect.service(SqlClient.SqlClient), counting)).pipe(
    Layer.provide(client)
  )

// ---------------------------------------------------------------------------
// the databases

interface Database {
  readonly name: string
  readonly kind: "sqlite" | "pg"
  /** A client over a database of the run's own, removed when the scope closes. */
  readonly client: Effect.Effect<Layer.Layer<SqlClient.SqlClient>, never, Scope.Scope>
}

const sqlite: Database = {
  name: "SQLite",
  kind: "sqlite",
  client: Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "bench-durable-"))),
      (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
    ),
    (dir) => SqliteClient.layer({ filename: Path.join(dir, "bench.db") }).pipe(Layer.orDie)
  )
}

const admin = <A, E>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>) =>
  Effect.flatMap(Effect.service(SqlClient.SqlClient), f).pipe(
    Effect.provide(PgClient.layer({ ...pgConfig, maxConnections: 1 })),
    Effect.timeoutOrElse({
      duration: "10 seconds",
      orElse: () => Effect.die(new Error("PostgreSQL did not answer within 10 s"))
    }),
    Effect.orDie
  )

const pg: Database = {
  name: "PostgreSQL",
  kind: "pg",
  client: Effect.map(
    Effect.acquireRelease(
      Effect.gen(function*() {
        const schema = `gs_bench_durable_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
        yield* admin((sql) => sql.unsafe(`CREATE SCHEMA "${schema}"`))
        return schema
      }),
      (schema) => Effect.ignore(admin((sql) => sql.unsafe(`DROP SCHEMA "${schema}" CASCADE`)))
    ),
    (schema) =>
      PgClient.layer({ ...pgConfig, maxConnections: 8, startupParameters: { search_path: schema } }).pipe(
        Layer.orDie
      )
  )
}

// ---------------------------------------------------------------------------
// measuring

interface Figure {
  readonly db: string
  readonly name: string
  readonly callers: number
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
  readonly errors: number
  readonly statementsPerOp: number
  readonly batch: { readonly rows: number; readonly millis: number } | undefined
}

/** `callers` concurrent closed loops calling `op` for `time` ms. */
const load = <R>(callers: number, op: (caller: number, i: number) => Effect.Effect<unknown, unknown, R>) =>
  closedLoops(callers, time, callTimeout, op)

const measure = <R>(
  db: string,
  name: string,
  callers: number,
  op: (caller: number, i: number) => Effect.Effect<unknown, unknown, R>
) =>
  Effect.gen(function*() {
    if (only !== undefined && !name.includes(only)) return undefined
    const before = { ...counters }
    const run = yield* load(callers, op)
    const count = run.latencies.length + run.errors
    const batches = counters.batches - before.batches
    const figure: Figure = {
      db,
      name,
      callers,
      perSecond: Math.round((count * 1000) / run.elapsed),
      p50: percentile(run.latencies, 0.5),
      p99: percentile(run.latencies, 0.99),
      errors: run.errors,
      statementsPerOp: count === 0 ? 0 : (counters.statements - before.statements) / count,
      batch: batches === 0 ? undefined : {
        rows: (counters.batchRows - before.batchRows) / batches,
        millis: (counters.batchMillis - before.batchMillis) / batches
      }
    }
    log(
      `${db}: ${name} x${callers}: ${figure.perSecond}/s p50 ${figure.p50.toFixed(2)} ms` +
        (run.errors > 0 ? `, ${run.errors} errors, first: ${Cause.pretty(run.firstError as any).slice(0, 300)}` : "")
    )
    return figure
  })

/** Every figure on one database: the Store (durable and in memory) and the client directly. */
const onDatabase = (db: Database) =>
  Effect.gen(function*() {
    const client = countingLayer(yield* db.client)
    return yield* Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const json = db.kind === "pg" ? "jsonb" : "text"
      const p = (n: number) => db.kind === "pg" ? `$${n}` : `?${n}`
      // keyed like the store's table: (resource, key)
      yield* sql.unsafe(
        `CREATE TABLE direct_records (resource text NOT NULL, key text NOT NULL, version bigint NOT NULL,
        state ${json} NOT NULL, PRIMARY KEY (resource, key))`
      )
      const insert = `INSERT INTO direct_records (resource, key, version, state) VALUES (${p(1)}, ${p(2)}, 1, ${p(3)})`
      const upsert = `INSERT INTO direct_records (resource, key, version, state) VALUES (${p(1)}, ${p(2)}, 1, ${p(3)})
        ON CONFLICT (resource, key) DO UPDATE SET version = direct_records.version + 1, state = excluded.state`
      const figures: Array<Figure | undefined> = []
      let created = 0
      const ids = Array.from({ length: records }, (_, i) => `r${i}`)
      yield* Effect.forEach(ids, (id) =>
        Effect.all([
          Store.create(Durable, "create", stateOf(id, 0)),
          Store.create(Memory, "create", stateOf(id, 0)),
          sql.unsafe(insert, ["upserted", id, JSON.stringify(stateOf(id, 0))])
        ]), { concurrency: 64, discard: true })
      for (const callers of callerCounts) {
        const key = (c: number, i: number) => ids[(c + i * callers) % records]!
        const fresh = () => `n${created++}`
        figures.push(
          yield* measure(db.name, "durable create", callers, () => Store.create(Durable, "create", stateOf(fresh(), 0)))
        )
        figures.push(
          yield* measure(db.name, "direct insert", callers, () => {
            const id = fresh()
            return sql.unsafe(insert, ["inserted", id, JSON.stringify(stateOf(id, 0))])
          })
        )
        figures.push(
          yield* measure(db.name, "memory create", callers, () => Store.create(Memory, "create", stateOf(fresh(), 0)))
        )
        figures.push(
          yield* measure(db.name, "durable update", callers, (c, i) =>
            Store.update(Durable, { id: key(c, i) }, "bump", { count: i + 1 }))
        )
        figures.push(
          yield* measure(db.name, "direct upsert", callers, (c, i) => {
            const id = key(c, i)
            return sql.unsafe(upsert, ["upserted", id, JSON.stringify(stateOf(id, i + 1))])
          })
        )
        figures.push(
          yield* measure(db.name, "memory update", callers, (c, i) =>
            Store.update(Memory, { id: key(c, i) }, "bump", { count: i + 1 }))
        )
      }
      return figures.filter((f): f is Figure =>
        f !== undefined
      )
    }).pipe(Effect.provide(Layer.merge(Store.layer([Durable, Memory]).pipe(Layer.provide(client)), client)))
  }).pipe(Effect.scoped)

// ---------------------------------------------------------------------------
// the table

const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits })
const ratio = (a: Figure | undefined, b: Figure | undefined) =>
  a === undefined || b === undefined || b.perSecond === 0 ? "" : `${(a.perSecond / b.perSecond).toFixed(2)}x`

const main = Effect.gen(function*() {
  const startedAt = new Date().toISOString()
  const uptimeBefore = execSync("uptime").toString().trim()
  const figures: Array<Figure> = []
  for (const db of [sqlite, pg].filter((d) => dbs.includes(d.kind))) {
    log(`${db.name}: ${records} records of each kind, then ${time} ms per figure`)
    figures.push(...(yield* onDatabase(db)))
  }
  const uptimeAfter = execSync("uptime").toString().trim()
  const find = (db: string, name: string, callers: number) =>
    figures.find((f) => f.db === db && f.name === name && f.callers === callers)
  console.log(`effect-gen-server bench:durable, ${startedAt}`)
  console.log(`command: npm run bench:durable -- ${process.argv.slice(2).join(" ")}`)
  console.log(`uptime before: ${uptimeBefore}`)
  console.log(`uptime after:  ${uptimeAfter}`)
  console.log(`node ${process.version}, ${Os.cpus().length} cores`)
  console.log("")
  console.log(
    "| database | operation | callers | ops/s | p50 ms | p99 ms | errors | vs direct | vs memory | SQL stmts/op | " +
      "rows/batch | ms/batch |"
  )
  console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
  for (const f of figures) {
    const durable = f.name.startsWith("durable")
    const kind = f.name.endsWith("create") ? "create" : "update"
    const direct = find(f.db, kind === "create" ? "direct insert" : "direct upsert", f.callers)
    const memory = find(f.db, `memory ${kind}`, f.callers)
    console.log(
      `| ${f.db} | ${f.name} | ${f.callers} | ${fmt(f.perSecond)} | ${fmt(f.p50, 2)} | ${
        fmt(f.p99, 2)
      } | ${f.errors} | ` +
        `${durable ? ratio(f, direct) : ""} | ${durable ? ratio(f, memory) : ""} | ${fmt(f.statementsPerOp, 3)} | ` +
        `${f.batch === undefined ? "" : fmt(f.batch.rows, 1)} | ${
          f.batch === undefined ? "" : fmt(f.batch.millis, 2)
        } |`
    )
  }
  console.log("")
  console.log("vs direct: ops/s over the direct single-row statement's with as many callers (above 1: faster);")
  console.log("vs memory: ops/s over the same resource's without `durable` (the cost of durability).")
  for (const db of [sqlite, pg]) {
    const durable = find(db.name, "durable update", 64)
    const direct = find(db.name, "direct upsert", 64)
    if (durable === undefined || direct === undefined) continue
    const r = durable.perSecond / direct.perSecond
    console.log(
      `target, durable update x64 >= 1x direct upsert x64 on ${db.name}: ${r.toFixed(2)}x ` +
        `(${fmt(durable.perSecond)} vs ${fmt(direct.perSecond)}/s) ${r >= 1 ? "met" : "missed"}`
    )
  }
  if (figures.some((f) => f.errors > 0)) process.exitCode = 1
})

const fiber = Effect.runFork(main)
// SIGINT/SIGTERM: interrupted, so its finalizers run (schemas dropped, directories removed), at most 10 s
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping`)
    setTimeout(() => process.exit(130), 10_000).unref()
    fiber.interruptUnsafe()
  })
}
fiber.addObserver((exit) => {
  if (Exit.isFailure(exit)) console.error(Cause.pretty(exit.cause))
  process.exit(Exit.isFailure(exit) ? Cause.hasInterruptsOnly(exit.cause) ? 130 : 1 : process.exitCode ?? 0)
})
