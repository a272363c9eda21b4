/**
 * The domain and the cluster runtime of `npm run bench:cluster`, shared by its
 * runner processes and the bench process (a client-only process): a Counter
 * resource served by `Cluster.layer`, and a plain `effect/cluster` entity with
 * the same runtime and storage (NodeClusterSocket on loopback, PostgreSQL for
 * runners, shard locks and messages) answering three kinds of call:
 *
 * - `Call`: volatile, bumps a number in memory (the cost of the cluster alone);
 * - `Write`: volatile, writes its row (`UPDATE plain`) before replying;
 * - `WriteTx`: `ClusterSchema.Persisted` and `ClusterSchema.WithTransaction`:
 *   the message is stored by `SqlMessageStorage`, the handler writes its row
 *   inside the storage transaction, and the reply is stored with it (the
 *   plain way to get "committed before the reply" from `effect/cluster`).
 */
import { NodeClusterSocket, NodeCrypto } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Option, Schema } from "effect"
import {
  ClusterSchema,
  Entity,
  RunnerAddress,
  ShardingConfig,
  SqlMessageStorage,
  SqlRunnerStorage
} from "effect/cluster"
import { Rpc } from "effect/rpc"
import { SqlClient } from "effect/sql"
import { Action, Changeset, Cluster, Resource } from "../../src/index.js"

export const Counter = Resource.make("Counter", {
  fields: { id: Schema.String, n: Schema.Int, group: Schema.Int },
  primaryKey: ["id"],
  actions: { inc: Action.update({ change: (cs) => Changeset.set(cs, "n", Changeset.get(cs, "n") + 1) }) }
})

export const Plain = Entity.make("Plain", [
  Rpc.make("Call", { success: Schema.Number }),
  Rpc.make("Write", { success: Schema.Number }),
  Rpc.make("WriteTx", { success: Schema.Number }).annotate(ClusterSchema.Persisted, true).annotate(
    ClusterSchema.WithTransaction,
    true
  )
])

const PlainLive = Plain.toLayer(Effect.gen(function*() {
  const address = yield* Entity.CurrentAddress
  const sql = yield* SqlClient.SqlClient
  let n = 0
  const write = Effect.suspend(() =>
    Effect.orDie(Effect.as(sql.unsafe(`UPDATE plain SET n = n + 1 WHERE id = $1`, [address.entityId as string]), ++n))
  )
  return Plain.of({ Call: () => Effect.sync(() => ++n), Write: () => write, WriteTx: () => write })
}))

/** The sharding settings of every process (CLUSTER-NOTES.md: a killed runner's shards stall 3-5 s with them). */
export const shardingConfig = {
  shardsPerGroup: 32,
  shardLockExpiration: "4 seconds",
  shardLockRefreshInterval: "1 second",
  refreshAssignmentsInterval: "500 millis",
  entityMessagePollInterval: "500 millis",
  entityReplyPollInterval: "100 millis",
  runnerHealthCheckInterval: "2 seconds",
  // every record created stays resident until `entityMaxIdleTime`: the default cap (10,000 per runner) is below
  // what the create figures make on a quiet machine, and calls beyond it fail with `MailboxFull`
  maxResidentEntities: 1_000_000
} as const

export const shardLockExpirationMillis = 4000

export const pgConfig = {
  host: process.env.PGHOST ?? "127.0.0.1",
  port: Number(process.env.PGPORT ?? 5432),
  username: process.env.PGUSER ?? "postgres",
  database: process.env.PGDATABASE ?? "test"
} as const

export const tablePrefix = "bench_"

/** What went through this process's `SqlClient` (see `counting`). */
export const sqlCounters = { statements: 0, transactions: 0, batches: 0, batchRows: 0, batchMillis: 0 }

/** What a process reports: its SQL counters and the CPU time it used so far (user + system, µs). */
export type SqlCounters = typeof sqlCounters & { readonly cpuMicros: number }

/** This process's counters now. */
export const countersNow = (): SqlCounters => {
  const cpu = process.cpuUsage()
  return { ...sqlCounters, cpuMicros: cpu.user + cpu.system }
}

/**
 * The profile of the SQL work: `client` counting every statement built
 * through it (template and `unsafe`), every `withTransaction`, and the state
 * store's group commit statements (`WITH w AS (...) ... jsonb_to_recordset`):
 * how many, how many rows each, how long each ran.
 */
const counting = (client: SqlClient.SqlClient): SqlClient.SqlClient =>
  new Proxy(client, {
    apply(target, self, args) {
      sqlCounters.statements++
      return Reflect.apply(target, self, args)
    },
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver)
      if (prop === "unsafe") {
        return (statement: string, params?: ReadonlyArray<unknown>) => {
          sqlCounters.statements++
          const built = (value as any).call(receiver, statement, params)
          if (!statement.trimStart().startsWith("WITH w AS (") || !statement.includes("jsonb_to_recordset")) {
            return built
          }
          sqlCounters.batches++
          sqlCounters.batchRows += JSON.parse(String(params?.[0] ?? "[]")).length
          return Effect.suspend(() => {
            const start = performance.now()
            return Effect.ensuring(
              built,
              Effect.sync(() => {
                sqlCounters.batchMillis += performance.now() - start
              })
            )
          })
        }
      }
      if (prop === "withTransaction") {
        return (effect: Effect.Effect<unknown, unknown, unknown>) => {
          sqlCounters.transactions++
          return (value as any).call(receiver, effect)
        }
      }
      if (prop === "withoutTransforms") return () => counting((value as any).call(receiver))
      if (prop === "safe") return counting(value as any)
      return value
    }
  })

const sqlLayer = (schema: string) =>
  Layer.effect(SqlClient.SqlClient)(Effect.map(Effect.service(SqlClient.SqlClient), counting)).pipe(
    Layer.provideMerge(
      PgClient.layer({ ...pgConfig, maxConnections: 8, startupParameters: { search_path: schema } }).pipe(Layer.orDie)
    )
  )

/**
 * `SqlRunnerStorage` and `SqlMessageStorage` with the schema's name as their
 * table prefix: `SqlRunnerStorage`'s shard locks are PostgreSQL advisory locks
 * named after the prefix alone, shared by every schema of the database, so two
 * clusters with the same prefix (two bench phases, or a test run of another
 * checkout) would fight over the same shard locks.
 */
const storageLayer = (schema: string) =>
  Layer.mergeAll(
    SqlMessageStorage.layerWith({ prefix: schema }).pipe(Layer.provide(NodeCrypto.layerDigest)),
    Layer.orDie(SqlRunnerStorage.layerWith({ prefix: schema }))
  ).pipe(Layer.provide(ShardingConfig.layer(shardingConfig)))

/** A runner on `port`: the Counter's records and the plain entity. */
export const runnerLayer = (schema: string, port: number) =>
  Layer.mergeAll(Cluster.layer([Counter], { tablePrefix }), PlainLive).pipe(
    Layer.provideMerge(Layer.orDie(NodeClusterSocket.layer({
      storage: "byo",
      shardingConfig: { ...shardingConfig, runnerAddress: Option.some(RunnerAddress.make("127.0.0.1", port)) }
    }))),
    Layer.provideMerge(storageLayer(schema)),
    Layer.provideMerge(sqlLayer(schema))
  )

/** The client-only bench process: the Store and `Sharding` (for the plain entity's client). */
export const clientLayer = (schema: string) =>
  Cluster.layer([Counter], { tablePrefix, runner: false }).pipe(
    Layer.provideMerge(Layer.orDie(NodeClusterSocket.layer({ clientOnly: true, storage: "byo", shardingConfig }))),
    Layer.provideMerge(storageLayer(schema)),
    Layer.provideMerge(sqlLayer(schema))
  )
