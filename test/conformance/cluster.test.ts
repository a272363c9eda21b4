import { Effect, Layer } from "effect"
import { Cluster } from "effect-gen-server"
import { TestRunner } from "effect/cluster"
import * as Pg from "../cluster/pg.js"
import { faults } from "./faults.js"
import { conformance } from "./suite.js"

// a single-process cluster (TestRunner, fresh for every Store a test builds) with its state in a fresh
// PostgreSQL schema per Store
conformance(
  "cluster",
  (rs) =>
    Cluster.layer(rs, { tablePrefix: "conf_", sweepInterval: "100 millis" }).pipe(
      Layer.provideMerge(Layer.fresh(TestRunner.layer)),
      Layer.provideMerge(Pg.layer("conf"))
    ),
  // eagerExpiry: false: a sweeper expires records (every sweepInterval, then SQL and a message), up to sweepInterval
  // late on the live clock; after a TestClock.adjust it may or may not have run when the test looks (a race with real
  // IO). What is certain is what the flag's absence describes: a record past its deadline is invisible to read at
  // once, and a direct access expires it on the spot (its destroy action, its Destroyed event). The sweeper itself
  // is tested in test/cluster (Cluster.test.ts, MultiProcess.test.ts).
  { supervision: true, eagerExpiry: false, expiryRunsDestroy: true, schedules: true },
  {
    skipped: [
      // a create under the expired key must commit within the 50 yields of the hand-driven clock's wake: it needs a
      // PostgreSQL round trip, so it fails in most runs of the whole file and passes in some (a race with real IO)
      "past its deadline, before any expiry fiber ran, a record is NotFound everywhere and absent from read"
    ]
  }
)

// the fault suite: storage refusing, dropping and losing answers, bad strings, versions sharing a table; each
// "process" a single-process cluster of its own over the test's schema
faults("cluster", {
  modelRuns: 8,
  database: Effect.gen(function*() {
    const schema = Pg.freshSchema("clfault")
    yield* Pg.schemaScoped(schema)
    return Pg.layer("clfault", schema, false)
  }),
  store: (rs, options) =>
    Cluster.layer(rs, { tablePrefix: options?.tablePrefix ?? "conf_", sweepInterval: "100 millis", retries: 2 }).pipe(
      Layer.provideMerge(Layer.fresh(TestRunner.layer))
    )
})
