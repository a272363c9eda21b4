/**
 * The cluster data layer's wiring: what `Cluster.layer` builds in every
 * process of an `effect/cluster` cluster (see `src/Cluster.ts`).
 *
 * @internal
 */
import { Duration, Effect, Layer, Option, type Scope } from "effect"
import { RunnerStorage } from "effect/cluster"
import type { Sharding } from "effect/cluster/Sharding"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import type * as Resource from "../../Resource.js"
import * as Admission from "../admission.js"
import type * as Contract from "../contract.js"
import type * as DataLayer from "../contract.js"
import * as Hub from "../events.js"
import { type Compiled, storedRestart } from "../resource.js"
import { wireCodecs } from "../sql/codec.js"
import type { Row } from "../sql/rows.js"
import * as StateStore from "../sql/stateStore.js"
import * as Caller from "./caller.js"
import * as Notices from "./notices.js"
import * as Owner from "./owner.js"
import { type Protocol, protocolOf } from "./protocol.js"
import * as Sweeper from "./sweeper.js"
import { WaitGraph } from "./waitGraph.js"

/**
 * The cluster data layer over `resources`: every resource an
 * `effect/cluster` entity type (`protocol.ts`), every record an entity
 * whose id is its encoded primary key, its committed state a row of the SQL
 * state store. Requires `Sharding` and a `SqlClient`; registers the entity
 * types (`owner.ts`) and runs the sweeper (`sweeper.ts`) unless `runner:
 * false`. Calls from any process go through `caller.ts`; events through
 * `notices.ts`; `read` runs in SQL here and never activates an entity.
 *
 * @internal
 */
export const make = (
  resources: ReadonlyArray<Resource.Any>,
  options: DataLayer.Options,
  clusterOptions: Contract.ClusterOptions = {}
): Effect.Effect<
  DataLayer.Service & { readonly sweep: (limit: number) => Effect.Effect<number> },
  never,
  Scope.Scope | Sharding | SqlClient.SqlClient
> =>
  Effect.gen(function*() {
    const admission = yield* Admission.start(resources)
    const { admitQuery, clock, compiled, gate, own } = admission
    const sql = yield* SqlClient.SqlClient
    const state = yield* Effect.orDie(StateStore.make(sql, compiled.values(), { prefix: clusterOptions.tablePrefix }))
    const hub = yield* Hub.make(compiled.keys(), options.eventBuffer, own)
    yield* Effect.addFinalizer(() => Effect.sync(() => (gate.closed = true)))
    const retention = Duration.toMillis(Duration.fromInputUnsafe(clusterOptions.operationRetention ?? "1 day"))
    /** Set first when the layer's scope closes (its last finalizer): calls in flight stop re-sending. */
    let closing = false
    let context = own

    const protocols = new Map<string, Protocol>()
    const clients = new Map<string, (entityId: string) => any>()
    for (const resource of compiled.values()) {
      const protocol = protocolOf(resource)
      protocols.set(resource.name, protocol)
      clients.set(resource.name, yield* protocol.client)
    }
    const client = (name: string) => clients.get(name)!

    /**
     * The row of a record. A live row that cannot be loaded (its state does
     * not decode or migrate, is not JSON, or holds another key) is moved to
     * the quarantine table with the reason, logged and counted
     * (`Metrics.quarantined`), and the key read again: free, unless a newer
     * row was written meanwhile. A row of a newer version this one cannot
     * read is never quarantined: it is returned with `tooNew`.
     */
    const loadRow = (resource: Compiled, key: string): Effect.Effect<Row | undefined, SqlError> =>
      Effect.flatMap(state.load(resource, key), (row) => {
        if (row?.undecodable === undefined) return Effect.succeed(row)
        const { reason, stored } = row.undecodable
        return Effect.gen(function*() {
          const moved = yield* state.quarantine(stored, reason, clock.currentTimeMillisUnsafe())
          if (moved) {
            hub.metrics.get(resource.name)?.quarantined()
            yield* Effect.logError(`${resource.name}: a stored record could not be loaded and was quarantined`).pipe(
              Effect.annotateLogs({ resource: resource.name, key, version: stored.schemaVersion, reason })
            )
          }
          return yield* loadRow(resource, key)
        })
      })

    const notices = yield* Notices.make(sql, state, compiled, hub)
    const graph = new WaitGraph(notices.origin, (record, callers, visited) => {
      const resource = [...compiled.keys()].filter((name) => record.startsWith(`${name}/`)).sort((a, b) =>
        b.length - a.length
      )[0]
      if (resource === undefined) return Effect.succeed(false)
      return (client(resource)(record.slice(resource.length + 1)).Probe({ callers, visited }) as Effect.Effect<
        boolean,
        unknown
      >).pipe(
        Effect.timeoutOrElse({ duration: "2 seconds", orElse: () => Effect.succeed(false) }),
        Effect.catchCause(() => Effect.succeed(false))
      )
    })

    if (clusterOptions.runner !== false) {
      const { handlersOf } = Owner.make({
        state,
        clock,
        publish: hub.publish,
        notices,
        graph,
        loadRow,
        context: () => context,
        metrics: (resource) => hub.metrics.get(resource.name)!
      })
      const scope = yield* Effect.scope
      for (const resource of compiled.values()) {
        const protocol = protocols.get(resource.name)!
        yield* Layer.buildWithScope(
          protocol.toLayer(handlersOf(resource, protocol, wireCodecs(resource)), {
            disableFatalDefects: true,
            // calls queue on the record's own lock: a `get` does not wait for a running action
            concurrency: "unbounded",
            maxIdleTime: clusterOptions.maxIdleTime ?? "1 minute"
          }) as Layer.Layer<never, never, Sharding>,
          scope
        )
      }
    }

    const caller = yield* Caller.make({
      admission,
      clock,
      client,
      retries: clusterOptions.retries ?? 10,
      closing: () => closing,
      runners: clusterOptions.runner === false
        ? Option.getOrUndefined(yield* Effect.serviceOption(RunnerStorage.RunnerStorage))
        : undefined,
      graph,
      loadRow
    })

    const read: DataLayer.Service["read"] = (query) =>
      Effect.suspend(() => {
        const resource = admitQuery(query)
        if (!Admission.isCompiled(resource)) return Effect.fail(resource)
        // a row that cannot be loaded is quarantined through its key, then the query runs again
        const run: Effect.Effect<ReadonlyArray<unknown>> = Effect.orDie(Effect.catchTag(
          state.read(resource, query, clock.currentTimeMillisUnsafe()),
          "UndecodableRows",
          (e) => Effect.andThen(Effect.forEach(e.keys, (key) => loadRow(resource, key), { discard: true }), run)
        ))
        return run
      })

    const sweeper = yield* Sweeper.make({ state, compiled, clock, client, send: caller.send, retention })
    if (clusterOptions.runner !== false) {
      yield* sweeper.run(
        `effect-gen-server/sweeper/${state.table}`,
        clusterOptions.sweepInterval ?? "1 second"
      )
    }

    const self = {
      create: caller.create,
      update: caller.update,
      destroy: caller.destroy,
      get: caller.get,
      read,
      keepAlive: caller.keepAlive,
      schedules: caller.schedules,
      events: notices.events,
      subscribe: notices.subscribe,
      restartOf: storedRestart,
      sweep: sweeper.sweep
    }
    if (options.context !== undefined) context = options.context(self)
    // added last, so run first when the scope closes
    yield* Effect.addFinalizer(() => Effect.sync(() => (closing = true)))
    return self
  })
