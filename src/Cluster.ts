/**
 * Records on a cluster: the same resources and the same `Store` API, with
 * every record an `effect/cluster` entity on the runner that owns its shard
 * and its committed state in a SQL table, so records move with their shards
 * (a deploy, a runner dying) and resume from their last committed state.
 *
 * ```text
 *  client process            runner processes (effect/cluster)        SQL
 *  Store.update ──message──▶ record entity: pipeline, hooks ──commit──▶ state table
 *  Store.read   ─────────────────────── SELECT ─────────────────────▶ (one row per record)
 * ```
 *
 * - Each resource is an entity type named after it; each record an entity
 *   whose id is its encoded primary key. Its hooks run on its owner.
 * - create, update and destroy are admitted in the caller's process (bad input
 *   never leaves it), run on the owner, and **committed to the state table
 *   before the caller is answered** (concurrent commits share a transaction:
 *   group commit). A commit names the row's version it read: a stale owner
 *   (its shard moved) cannot overwrite a newer state.
 * - Every write carries an operation id; a call failing for a reason of the
 *   cluster (a shard moving, a runner gone, a reply lost, a commit fenced by a
 *   newer owner) is re-sent with the same id, and the row remembers its last
 *   16 operation ids, so a retry is never applied twice. After `retries` (or
 *   when the caller's own store closes) the call fails with `Unavailable`,
 *   whose `applied` says whether the write may have happened: `"no"` when no
 *   attempt reached the owner's commit (safe to call again), `"unknown"` when
 *   one may have (then it was applied at most once). A call never fails
 *   silently and is never applied twice. The caller may choose the id
 *   (`Store.withOperationId`), and `Unavailable.operationId` names it: a
 *   write sent again under an id its record remembers is answered with the
 *   record and not applied again.
 * - `Store.read` runs in SQL from any process, never activates a record, and
 *   returns what the in-memory evaluator returns on the same records. The
 *   filter runs in SQL where SQL decides it exactly (equality, `in`, `isNil`,
 *   number comparisons, `and`/`or`/`not` of those), and sort, offset and limit
 *   too when the filter does and the sort keys are numeric or boolean fields;
 *   the rest (string and date comparisons and sorts, `contains`) finishes in
 *   memory on the rows SQL narrowed down. `indexes` become SQL indexes.
 * - `get` and `keepAlive` read the row (read-your-writes, no message), except
 *   on resources with an inactivity timeout, where they are messages to the
 *   owner so that they count as activity (answered with the committed state,
 *   without waiting for an action the record is running).
 * - A key change (an update giving the record another primary key) is
 *   committed by the old key's owner in one transaction (the old row a
 *   tombstone, the new one inserted, fenced by version), published as
 *   `Updated` under the new key, and served from then on by the new key's
 *   entity, wherever it runs. A retry of it is recognised at the old key. A
 *   key change onto a live key, or losing a race with a create of that key,
 *   is `AlreadyExists` and changes nothing.
 * - A stored row that cannot be loaded (not decodable, no migration, another
 *   key in its state than its row's), found by an activation, a `get` or a
 *   `read`, is moved to the quarantine table (`<tablePrefix>quarantine`, with
 *   the reason), logged as an error and counted by `Metrics.quarantined`; its
 *   key is free again.
 *
 * **Costs**: a write is a message to the owner plus one (shared) SQL
 * transaction; a read by key, one `SELECT` by primary key; a query, one
 * `SELECT` of the resource's rows its filter keeps, decoded in the caller.
 *
 * **Gotchas**
 *
 * - Side effects in hooks run **at least once** across a failure: an owner
 *   killed after a hook ran and before its commit runs it again on the retry.
 * - A record's primary key must be known when it is created (in the input or
 *   a generated field): a create's hooks cannot change it. A key change onto
 *   a key whose row is alive but past its stored deadline is `AlreadyExists`
 *   until that record's expiry runs (its owner may hold activity not yet
 *   written). The old key's entity stays in its runner's memory, holding no
 *   record, until `maxIdleTime`.
 * - Events: `Store.events` in any process sees every record's events, each
 *   once, in per-record order: they are PostgreSQL notifications sent in the
 *   transaction of their commit. A process hears them only while it is
 *   connected (nothing is replayed). An event whose JSON exceeds a
 *   notification's 8,000 bytes is sent in chunks, in the same transaction,
 *   and joined back by each listener.
 *   Notifications are database-wide: each notice names its schema and table,
 *   so clusters in different schemas of one database hear only their own,
 *   but each listening process still receives the others' notices, and drops
 *   them. A process listens only while something subscribes to its events
 *   (its first subscription returns once the `LISTEN` is confirmed), and its
 *   metrics count only the events its own records committed.
 * - A runner keeps at most `maxResidentEntities` records in memory
 *   (`ShardingConfig`, 10,000 by default), each until `maxIdleTime` after
 *   its last call; a call beyond it fails with `MailboxFull`.
 * - A defect in an action is answered as `RecordCrashed`, then the record's
 *   `restart` policy applies: the declared one, else `"lastState"` (its last
 *   committed state); `"initial"`, declared, re-runs its create action with
 *   the stored input and **stores its result over every update since**;
 *   `"never"` removes it, with `Failed`. The restart intensity is counted per
 *   activation (it starts again when the record moves to another runner).
 * - A storage failure is never a crash: a commit storage refuses is
 *   `RecordCrashed` ("not applied"), alone in its group commit, and the
 *   record keeps its state; one whose answer was lost is settled from its
 *   row, or re-sent by the caller under its operation id.
 * - With no runner up, a call fails with `Unavailable` within its retries
 *   only in a process that can see the runners: a runner, or a client-only
 *   process with the `RunnerStorage` in its context (see "On a cluster" in
 *   docs/cluster.md); otherwise it waits for a runner, as effect/cluster does.
 * - Versions: a row stored by a newer version of the resource is served
 *   when this version's schema reads it (the fields it does not know are
 *   kept by its writes); otherwise its calls are refused as `Unavailable`
 *   until an upgraded runner serves it. Never quarantined.
 * - A hook calling `get` on its own record reads the last committed state
 *   (its row), not the state its running action is building.
 * - Re-entrancy: a call that would close a cycle of records waiting on each
 *   other is refused with `ReentrantCall`. A cycle along one chain of calls
 *   (A's hook calls B, whose hook calls A) is refused on any runners; two
 *   independent chains crossing (A's hook calls B while B's hook calls A) are
 *   found across runners by a `Probe` message following the waits (at most 16
 *   records deep; a probe failing or slower than 2 s counts as no cycle), and
 *   both calls may be refused.
 * - Messages are volatile (not stored by `effect/cluster`): what makes a
 *   retry safe is the operation ids kept in the record's row, its last 16: a
 *   retry arriving after 16 later writes to the same record is not
 *   recognised (a create then answers `AlreadyExists`, an update applies
 *   again). Retries come within seconds, so this takes a very hot record.
 * - Activity (get, keepAlive) is kept in the owner's memory and written to the
 *   row at most once per quarter of the inactivity timeout: a record can look
 *   expired to `read` up to that much early, and if its owner dies, activity
 *   not yet written is lost (it expires up to that much early).
 * - PostgreSQL only for now (the state table uses `jsonb`). Strings holding
 *   `\u0000`, `\u0001` or a lone surrogate are stored escaped and come back
 *   exactly.
 * - Expiry: a sweeper (a cluster `Singleton`, every `sweepInterval`) sends
 *   each record past its stored deadline an expire message; its owner runs
 *   its destroy action (hooks run), also for records whose deadline passed
 *   while the cluster was down. A record expires up to `sweepInterval` (plus
 *   the message's trip) late, or when next touched, also when its destroy
 *   action fails (`Destroyed.failure`). Tombstones are purged after
 *   `operationRetention`.
 * - Schedules (`Changeset.schedule`) are kept in the record's row: the
 *   runner holding the record runs each when due; one whose runner died, or
 *   whose record is not resident, is found by the same sweep (`wake_at`)
 *   and run by its owner, once cluster-wide.
 *
 * @since 0.2.0
 * @module
 */
import { type Effect, Layer, type Scope } from "effect"
import type { Sharding } from "effect/cluster/Sharding"
import type { SqlClient } from "effect/sql/SqlClient"
import * as DataLayer from "./DataLayer.js"
import * as internal from "./internal/cluster/layer.js"
import type * as Contract from "./internal/contract.js"
import type * as Resource from "./Resource.js"
import * as Store from "./Store.js"

/**
 * Options of {@link layer} and {@link make}.
 *
 * **Example** (A client-only process, with its own table prefix)
 *
 * ```ts
 * import { Cluster } from "effect-gen-server"
 *
 * const options: Cluster.Options = { runner: false, tablePrefix: "shop_", retries: 20 }
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export interface Options extends Contract.ClusterOptions {
  /** See `DataLayer.Options.eventBuffer`. */
  readonly eventBuffer?: number | undefined
}

/**
 * The cluster data layer service, with `sweep`: sends every record past its
 * stored deadline (at most `limit` of them) an expire message, so its owner
 * runs its destroy action; returns how many were destroyed. It waits at most
 * a second for each record's expiry: one still running then goes on without
 * it (it is not counted, and no sweep sends it again meanwhile), so a slow or
 * stuck destroy delays no other record's expiry. Runners sweep by themselves
 * (one of them, a cluster `Singleton`, every `sweepInterval`).
 *
 * **Example** (Sweeping now)
 *
 * ```ts
 * import type { Cluster } from "effect-gen-server"
 *
 * declare const dataLayer: Cluster.Service
 *
 * const expiredNow = dataLayer.sweep(1000)
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export interface Service extends DataLayer.Service {
  readonly sweep: (limit: number) => Effect.Effect<number>
}

/**
 * The cluster data layer over `resources`, like a `DataLayer.Make` but
 * requiring `effect/cluster`'s `Sharding` and a `SqlClient`. Registers one
 * entity type per resource (unless `runner: false`) and creates the state
 * table if missing.
 *
 * **Example** (The cluster data layer by names)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Cluster, Resource } from "effect-gen-server"
 *
 * const Counter = Resource.make("Counter", {
 *   fields: { id: Schema.String, count: Schema.Int },
 *   primaryKey: ["id"]
 * })
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const dataLayer = yield* Cluster.make([Counter], {})
 *   return yield* dataLayer.create("Counter", "create", { id: "a", count: 0 })
 * }))
 * ```
 *
 * @category constructors
 * @since 0.2.0
 */
export const make = (
  resources: ReadonlyArray<Resource.Any>,
  options: DataLayer.Options & Options
): Effect.Effect<Service, never, Scope.Scope | Sharding | SqlClient> =>
  internal.make(resources, options, options) as Effect.Effect<Service, never, Scope.Scope | Sharding | SqlClient>

/**
 * The `Store` over records on a cluster, in every process of it, runners and
 * clients alike (`runner: false` for a client-only process). Provide
 * `effect/cluster`'s runtime (e.g. `NodeClusterSocket.layer` from
 * `@effect/platform-node`, or `TestRunner.layer` in tests) and a
 * `SqlClient` (e.g. `PgClient.layer` from `@effect/sql-pg`).
 *
 * **Example** (A runner process)
 *
 * ```ts
 * import { Layer, Schema } from "effect"
 * import type { Sharding } from "effect/cluster/Sharding"
 * import type { SqlClient } from "effect/sql/SqlClient"
 * import { Cluster, Resource } from "effect-gen-server"
 *
 * const Counter = Resource.make("Counter", {
 *   fields: { id: Schema.String, count: Schema.Int },
 *   primaryKey: ["id"]
 * })
 *
 * declare const runtime: Layer.Layer<Sharding | SqlClient>
 *
 * const StoreLive = Cluster.layer([Counter]).pipe(Layer.provide(runtime))
 * ```
 *
 * @category layers
 * @since 0.2.0
 */
export const layer = <const Resources extends ReadonlyArray<Resource.Any>>(
  resources: Resources,
  options: Options = {}
): Layer.Layer<
  Store.Store,
  never,
  Sharding | SqlClient | Exclude<Resource.Services<Resources[number]>, Store.Store | DataLayer.DataLayer>
> =>
  Store.fromDataLayer({ resources }).pipe(
    Layer.provide(DataLayer.layer(resources, {
      make: (rs, dataLayerOptions) => internal.make(rs, dataLayerOptions, options),
      eventBuffer: options.eventBuffer,
      // record actions run with the data layer and a Store over it: hooks can call the Store
      services: (self) => Store.contextOf(self)
    }))
  )
