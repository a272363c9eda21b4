/**
 * One runner of the HTTP session store as a cluster: the same HTTP API as
 * `main.ts`, over `Cluster.layer` (records as `effect/cluster` entities,
 * their state in PostgreSQL), in a process that is also an `effect/cluster`
 * runner. `cluster.ts` starts three of them; SIGTERM hands its records to
 * the others (effect/cluster moves its shards) and stops serving.
 *
 * Configured from the environment: `PORT` (HTTP), `RUNNER_PORT` (the
 * cluster's socket), `PG_SCHEMA` (the PostgreSQL schema of the state and the
 * cluster's tables), and `PGHOST` / `PGPORT` / `PGUSER` / `PGDATABASE`
 * (default 127.0.0.1:5432, `postgres`, `test`), `SESSION_TIMEOUT`,
 * `CART_TIMEOUT`.
 */
import { NodeClusterSocket, NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Config, Duration, Effect, Layer, Option } from "effect"
import { Cluster } from "effect-gen-server"
import { RunnerAddress } from "effect/cluster"
import type * as Resources from "./resources.js"
import * as Server from "./server.js"

/** Every process of the cluster must agree on these. */
export const shardingConfig = {
  shardsPerGroup: 32,
  shardLockExpiration: "4 seconds",
  shardLockRefreshInterval: "1 second",
  refreshAssignmentsInterval: "500 millis",
  entityMessagePollInterval: "500 millis",
  entityReplyPollInterval: "100 millis",
  runnerHealthCheckInterval: "2 seconds"
} as const

const main = Effect.gen(function*() {
  const port = yield* Config.Int("PORT")
  const runnerPort = yield* Config.Int("RUNNER_PORT")
  const schema = yield* Config.String("PG_SCHEMA")
  const sessionTimeout = yield* Config.Duration("SESSION_TIMEOUT").pipe(Config.withDefault(Duration.minutes(30)))
  const cartTimeout = yield* Config.Duration("CART_TIMEOUT").pipe(Config.withDefault(Duration.minutes(30)))
  const sql = PgClient.layer({
    host: process.env.PGHOST ?? "127.0.0.1",
    port: Number(process.env.PGPORT ?? 5432),
    username: process.env.PGUSER ?? "postgres",
    database: process.env.PGDATABASE ?? "test",
    maxConnections: 8,
    startupParameters: { search_path: schema }
  }).pipe(Layer.orDie)
  const runtime = NodeClusterSocket.layer({
    storage: "sql",
    shardingConfig: { ...shardingConfig, runnerAddress: Option.some(RunnerAddress.make("127.0.0.1", runnerPort)) }
  }).pipe(Layer.orDie)
  const store = (resources: Resources.Resources) =>
    Cluster.layer([resources.Session, resources.Cart], { tablePrefix: "shop_", eventBuffer: 10_000, retries: 30 }).pipe(
      Layer.provide(runtime),
      Layer.provide(sql)
    )
  // on SIGTERM the HTTP server stops accepting and lets calls in flight finish (a shard moving can hold
  // one for a few seconds) before the runner hands its shards over
  return yield* Layer.launch(
    Server.layer({ port, sessionTimeout, cartTimeout, store, gracefulShutdownTimeout: "15 seconds", logAddress: false })
  )
})

NodeRuntime.runMain(main)
