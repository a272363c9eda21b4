/**
 * One runner of the HTTP session store as a cluster: the same HTTP API as
 * `main.ts`, over `Cluster.layer` (records as `effect/cluster` entities,
 * their state in PostgreSQL), in a process that is also an `effect/cluster`
 * runner. `cluster.ts` starts three of them; SIGTERM drains its HTTP server
 * (see `server.ts`), then hands its records to the others (effect/cluster
 * moves its shards).
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
  // a call re-sent while a shard moves gives up after 20 retries, about 26 s (5.7 s for the first 10, then 2 s
  // each): an answer (503 Unavailable, saying whether it was applied) before a client's 30 s timeout
  const store = (resources: Resources.Resources) =>
    Cluster.layer([resources.Session, resources.Cart], { tablePrefix: "shop_", eventBuffer: 10_000, retries: 20 }).pipe(
      Layer.provide(runtime),
      Layer.provide(sql)
    )
  // the HTTP server listens once this runner has joined the cluster; on SIGTERM it drains (stops accepting,
  // closes idle connections, refuses new requests with 503 Draining, lets calls in flight finish, bounded
  // above the calls' own retries) before the runner hands its shards over
  return yield* Layer.launch(
    Server.layer({ port, sessionTimeout, cartTimeout, store, gracefulShutdownTimeout: "30 seconds", logAddress: false })
  )
})

NodeRuntime.runMain(main)
