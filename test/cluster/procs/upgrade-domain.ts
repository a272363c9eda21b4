/**
 * The domain of the rolling-upgrade test, in two versions of one resource
 * sharing one state table:
 *
 * - v1: `Tally { id, tokens }`, whose `append` adds a unique token;
 * - v2: `version: 2` adds `label` (an additive change), migrated from v1 with
 *   `label: "none"`; its `append` also sets `label: "v2"` on the records
 *   r0..r7 (`labelled`), so that the test can tell whether v1's writes kept a
 *   field v1 does not know; `relabel` is an action v1 does not have.
 *
 * `storeLayer(schema, port, version)` is the Store of a process of the test
 * cluster running that version: a runner on `port`, or a client-only process.
 */
import { NodeClusterSocket, NodeCrypto } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Layer, Option, Schema } from "effect"
import { RunnerAddress, ShardingConfig, SqlMessageStorage, SqlRunnerStorage } from "effect/cluster"
import { Action, Changeset, Cluster, Resource } from "../../../src/index.js"
import { shardingConfig } from "./domain.js"

/** The records whose label v2 sets. */
export const labelled: ReadonlySet<string> = new Set(Array.from({ length: 8 }, (_, i) => `r${i}`))

/** What v1 stores: also the schema v2's migration decodes a v1 row with. */
const v1Fields = { id: Schema.String, tokens: Schema.Array(Schema.String) }

export const TallyV1 = Resource.make("Tally", {
  fields: v1Fields,
  primaryKey: ["id"],
  actions: {
    append: Action.update({
      arguments: { token: Schema.String },
      change: (cs) => Changeset.set(cs, "tokens", [...Changeset.get(cs, "tokens"), cs.arguments.token])
    })
  }
})

export const TallyV2 = Resource.make("Tally", {
  fields: { ...v1Fields, label: Schema.String },
  primaryKey: ["id"],
  // Cluster.layer stores every record: no `durable: true` needed for a version and migrations
  version: 2,
  migrations: { 1: Resource.migration(Schema.Struct(v1Fields), (v1) => ({ ...v1, label: "none" })) },
  actions: {
    append: Action.update({
      arguments: { token: Schema.String },
      change: (cs) => {
        const appended = Changeset.set(cs, "tokens", [...Changeset.get(cs, "tokens"), cs.arguments.token])
        return labelled.has(Changeset.get(cs, "id")) ? Changeset.set(appended, "label", "v2") : appended
      }
    }),
    /** An action v1 does not have. */
    relabel: Action.update({
      arguments: { label: Schema.String },
      change: (cs) => Changeset.set(cs, "label", cs.arguments.label)
    })
  }
})

/** The state table's prefix (`up_records`, `up_quarantine`). */
export const tablePrefix = "up_"

/**
 * The Store of a process running `version` of Tally: a runner on `port`, or a
 * client-only process when `port` is undefined; its calls re-sent `retries`
 * times. As `domain.ts`'s `storeLayer`, with this file's resource.
 */
export const storeLayer = (schema: string, port: number | undefined, version: 1 | 2, retries = 30) => {
  const sql = PgClient.layer({
    host: process.env.PGHOST ?? "127.0.0.1",
    port: Number(process.env.PGPORT ?? 5432),
    username: process.env.PGUSER ?? "postgres",
    database: process.env.PGDATABASE ?? "test",
    maxConnections: 8,
    startupParameters: { search_path: schema }
  }).pipe(Layer.orDie)
  // the schema's name as the cluster's table prefix: its advisory shard locks are named after the prefix alone
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
  return Cluster.layer([version === 1 ? TallyV1 : TallyV2], {
    tablePrefix,
    runner: port !== undefined,
    retries
  }).pipe(
    Layer.provideMerge(Layer.orDie(runtime)),
    Layer.provideMerge(sql)
  )
}
