/**
 * A first benchmark of the cluster data layer, in one process
 * (`TestRunner`, PostgreSQL storage on 127.0.0.1:5432, a fresh schema dropped
 * at the end): update, get (1 and 64 callers) and a filtered read through
 * `Cluster.layer`, against a plain `effect/cluster` entity on the same
 * runtime, volatile, with and without writing one row before its reply.
 *
 * Usage: `npm run bench:cluster -- [--time=3000]`.
 *
 * @since 0.3.0
 */
import { PgClient } from "@effect/sql-pg"
import { Clock, Effect, Layer, Schema } from "effect"
import { Entity, TestRunner } from "effect/cluster"
import { Rpc } from "effect/rpc"
import { SqlClient } from "effect/sql"
import { loadavg } from "node:os"
import { Action, Changeset, Cluster, Filter, Query, Resource, Store } from "../src/index.js"

const time = Number(process.argv.find((a) => a.startsWith("--time="))?.slice(7) ?? 3000)
const records = 64

const Counter = Resource.make("Counter", {
  fields: { id: Schema.String, n: Schema.Int, group: Schema.Int },
  primaryKey: ["id"],
  actions: { inc: Action.update({ change: (cs) => Changeset.set(cs, "n", Changeset.get(cs, "n") + 1) }) }
})

const Plain = Entity.make("Plain", [
  Rpc.make("Inc", { success: Schema.Number }),
  Rpc.make("IncRow", { success: Schema.Number })
])

const PlainLive = Plain.toLayer(Effect.gen(function*() {
  const address = yield* Entity.CurrentAddress
  const sql = yield* SqlClient.SqlClient
  let n = 0
  return Plain.of({
    Inc: () => Effect.sync(() => ++n),
    IncRow: () =>
      Effect.orDie(
        Effect.as(sql.unsafe(`UPDATE plain SET n = n + 1 WHERE id = $1`, [address.entityId as string]), ++n)
      )
  })
}))

interface Figure {
  readonly name: string
  readonly callers: number
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
}

const measure = <R>(name: string, callers: number, op: (i: number) => Effect.Effect<unknown, unknown, R>) =>
  Effect.gen(function*() {
    const latencies: Array<number> = []
    const start = yield* Clock.currentTimeMillis
    const end = start + time
    let count = 0
    yield* Effect.forEach(Array.from({ length: callers }, (_, c) => c), (c) =>
      Effect.gen(function*() {
        let i = c
        while ((yield* Clock.currentTimeMillis) < end) {
          const t0 = performance.now()
          yield* op(i)
          latencies.push(performance.now() - t0)
          i += callers
          count++
        }
      }), { concurrency: "unbounded", discard: true })
    const elapsed = (yield* Clock.currentTimeMillis) - start
    latencies.sort((a, b) => a - b)
    const figure: Figure = {
      name,
      callers,
      perSecond: Math.round((count * 1000) / elapsed),
      p50: latencies[Math.floor(latencies.length * 0.5)] ?? 0,
      p99: latencies[Math.floor(latencies.length * 0.99)] ?? 0
    }
    process.stderr.write(`${name} x${callers}: ${figure.perSecond}/s\n`)
    return figure
  })

const schema = `gs_bench_${Date.now().toString(36)}`
const pg = { host: "127.0.0.1", port: 5432, username: "postgres", database: "test" } as const
const admin = (statement: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(statement)
  }).pipe(Effect.provide(PgClient.layer({ ...pg, maxConnections: 1 })), Effect.orDie)

const main = Effect.gen(function*() {
  const store = yield* Store.Store
  const sql = yield* SqlClient.SqlClient
  const ids = Array.from({ length: records }, (_, i) => ({ id: `c${i}` }))
  yield* Effect.forEach(ids, ({ id }, i) => Store.create(Counter, "create", { id, n: 0, group: i % 8 }), {
    concurrency: 16
  })
  yield* sql.unsafe(`CREATE TABLE plain (id text PRIMARY KEY, n bigint NOT NULL)`)
  yield* sql.unsafe(`INSERT INTO plain SELECT 'p' || i, 0 FROM generate_series(0, ${records - 1}) AS i`)
  const plain = yield* Plain.client
  const figures: Array<Figure> = []
  for (const callers of [1, 64]) {
    figures.push(yield* measure("plain entity, volatile", callers, (i) => plain(`p${i % records}`).Inc()))
    figures.push(yield* measure("plain entity, writing its row", callers, (i) => plain(`p${i % records}`).IncRow()))
    figures.push(yield* measure("Cluster update", callers, (i) => Store.update(Counter, ids[i % records]!, "inc")))
    figures.push(yield* measure("Cluster get", callers, (i) => Store.get(Counter, ids[i % records]!)))
  }
  const q = Query.make(Counter).pipe(Query.filter(Filter.eq("group", 3)), Query.sort("n", "desc"), Query.limit(5))
  figures.push(yield* measure("Cluster read (filtered, sorted, limit 5)", 1, () => Store.read(q)))
  void store
  const base = (name: string, callers: number) => figures.find((f) => f.name === name && f.callers === callers)
  const rows = figures.map((f) => {
    const ref = base(
      f.name.startsWith("Cluster update") ? "plain entity, writing its row" : "plain entity, volatile",
      f.callers
    )
    const ratio = f.name.startsWith("plain") || ref === undefined ? "" : (f.perSecond / ref.perSecond).toFixed(2)
    return `| ${f.name} | ${f.callers} | ${f.perSecond} | ${f.p50.toFixed(2)} | ${f.p99.toFixed(2)} | ${ratio} |`
  })
  console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}; ${time} ms per figure; ${records} records`)
  console.log("| operation | callers | ops/s | p50 ms | p99 ms | vs plain entity |")
  console.log("| --- | --- | --- | --- | --- | --- |")
  for (const row of rows) console.log(row)
})

const layer = Layer.mergeAll(Cluster.layer([Counter], { tablePrefix: "bench_" }), PlainLive).pipe(
  Layer.provideMerge(TestRunner.layer),
  Layer.provideMerge(
    PgClient.layer({ ...pg, maxConnections: 8, startupParameters: { search_path: schema } }).pipe(Layer.orDie)
  )
)

Effect.runPromise(
  Effect.acquireUseRelease(
    admin(`CREATE SCHEMA "${schema}"`),
    () => Effect.scoped(Effect.provide(main, layer)),
    () => admin(`DROP SCHEMA "${schema}" CASCADE`)
  )
).then(() => process.exit(0), (e) => {
  console.error(e)
  process.exit(1)
})
