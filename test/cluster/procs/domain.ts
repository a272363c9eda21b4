/**
 * The domain and the cluster runtime of the multi-process tests: a Ledger
 * whose `append` action adds a unique token to the record's list, so the
 * database tells what was applied, and how many times.
 */
import { NodeClusterSocket, NodeCrypto } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Option, Schema } from "effect"
import { RunnerAddress, ShardingConfig, SqlMessageStorage, SqlRunnerStorage } from "effect/cluster"
import { SqlClient } from "effect/sql"
import { Action, Changeset, Cluster, Resource, Store } from "../../../src/index.js"

export const Ledger = Resource.make("Ledger", {
  fields: { id: Schema.String, tokens: Schema.Array(Schema.String) },
  primaryKey: ["id"],
  actions: {
    append: Action.update({
      arguments: { token: Schema.String },
      change: (cs) => Changeset.set(cs, "tokens", [...Changeset.get(cs, "tokens"), cs.arguments.token])
    }),
    /** `append`, its after hook waiting `ms` first: a call whose handler runs long. */
    slowAppend: Action.update({
      arguments: { token: Schema.String, ms: Schema.Number },
      change: (cs) =>
        Changeset.after(
          Changeset.set(cs, "tokens", [...Changeset.get(cs, "tokens"), cs.arguments.token]),
          (record) => Effect.as(Effect.sleep(cs.arguments.ms), record)
        )
    })
  }
})

/** A session that expires after 2 s of inactivity; its destroy action logs each run in `expired_log`. */
export const Session = Resource.make("Session", {
  fields: { id: Schema.String },
  primaryKey: ["id"],
  inactivityTimeout: "2 seconds",
  actions: {
    destroy: Action.destroy({
      change: (cs) =>
        Changeset.after(cs, (record) =>
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            yield* Effect.orDie(sql.unsafe(`INSERT INTO expired_log (id) VALUES ($1)`, [record.id]))
            return record
          }))
    })
  }
})

/**
 * Knots: `pull`'s after hook waits 300 ms, then updates another knot (`bump`).
 * Two pulls crossing (A pulls towards B while B pulls towards A) on records of
 * different runners would wait on each other forever; one of them must be
 * refused with `ReentrantCall`. `where` records the port of the runner that
 * owns the knot (`GS_RUNNER`).
 */
export const Knot = Resource.make("Knot", {
  fields: { id: Schema.String, bumps: Schema.Number, runner: Schema.String },
  primaryKey: ["id"],
  actions: {
    where: Action.update({ change: (cs) => Changeset.set(cs, "runner", process.env.GS_RUNNER ?? "client") }),
    bump: Action.update({ change: (cs) => Changeset.set(cs, "bumps", Changeset.get(cs, "bumps") + 1) }),
    pull: Action.update({
      arguments: { towards: Schema.String },
      change: (cs) =>
        Changeset.after(cs, (record) =>
          Effect.sleep("300 millis").pipe(
            Effect.andThen(Store.update(Knot, { id: cs.arguments.towards }, "bump", {})),
            Effect.as(record)
          ))
    })
  }
})

/** An alarm that rings once, `millis` after its create: `rings` lists the runner (port) of each run. */
export const Alarm = Resource.make("Alarm", {
  fields: { id: Schema.String, rings: Schema.Array(Schema.String) },
  primaryKey: ["id"],
  actions: (Action) => ({
    set: Action.create({
      accept: ["id"],
      arguments: { millis: Schema.Int },
      change: (cs) =>
        cs.pipe(Changeset.set("rings", []), Changeset.schedule("ring", { after: `${cs.arguments.millis} millis` }))
    }),
    ring: Action.update({
      change: (cs) => Changeset.set(cs, "rings", [...cs.data.rings, process.env.GS_RUNNER ?? "client"])
    })
  })
})

export const shardingConfig = {
  shardsPerGroup: 32,
  shardLockExpiration: "4 seconds",
  shardLockRefreshInterval: "1 second",
  refreshAssignmentsInterval: "500 millis",
  entityMessagePollInterval: "500 millis",
  entityReplyPollInterval: "100 millis",
  runnerHealthCheckInterval: "2 seconds"
} as const

/**
 * The Store of a process of the test cluster: a runner on `port`, or a client when `port` is undefined; its
 * calls re-sent `retries` times. Its `RunnerStorage` is in its context (`storage: "byo"`, merged).
 */
export const storeLayer = (schema: string, port: number | undefined, retries = 30) => {
  const sql = PgClient.layer({
    host: process.env.PGHOST ?? "127.0.0.1",
    port: Number(process.env.PGPORT ?? 5432),
    username: process.env.PGUSER ?? "postgres",
    database: process.env.PGDATABASE ?? "test",
    maxConnections: 8,
    startupParameters: { search_path: schema }
  }).pipe(Layer.orDie)
  // the cluster's own storage with the schema's name as its table prefix: SqlRunnerStorage's shard locks are
  // PostgreSQL advisory locks named after the prefix alone, so two runs with one prefix (two checkouts' test
  // runs in the same database) would take each other's shard locks
  const storage = Layer.mergeAll(
    SqlMessageStorage.layerWith({ prefix: schema }).pipe(Layer.provide(NodeCrypto.layerDigest)),
    Layer.orDie(SqlRunnerStorage.layerWith({ prefix: schema }))
  ).pipe(Layer.provide(ShardingConfig.layer(shardingConfig)))
  const runtime = (port === undefined
    ? NodeClusterSocket.layer({ clientOnly: true, storage: "byo", shardingConfig })
    : NodeClusterSocket.layer({
      storage: "byo",
      shardingConfig: { ...shardingConfig, runnerAddress: Option.some(RunnerAddress.make("127.0.0.1", port)) }
    })).pipe(Layer.provideMerge(storage))
  return Cluster.layer([Ledger, Session, Knot, Alarm], { tablePrefix: "mp_", runner: port !== undefined, retries })
    .pipe(
      Layer.provideMerge(Layer.orDie(runtime)),
      Layer.provideMerge(sql)
    )
}
