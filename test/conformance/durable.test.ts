import { Effect, Layer } from "effect"
import { type Resource, SqliteClient, Store } from "effect-gen-server"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Pg from "../cluster/pg.js"
import { faults } from "./faults.js"
import { conformance } from "./suite.js"

/** The same resource, durable: the suite calls it by name, so the Store serves the copy. */
const durable = (resource: Resource.Any): Resource.Any =>
  Object.assign(Object.create(Object.getPrototypeOf(resource)), resource, { durable: true })

// every resource of the suite durable, its state in a fresh PostgreSQL schema per Store
conformance(
  "durable (PostgreSQL)",
  (rs) => Store.layer(rs.map(durable)).pipe(Layer.provide(Pg.layer("durconf"))),
  { supervision: true, eagerExpiry: true, expiryRunsDestroy: true, schedules: true },
  {
    skipped: [
      // a create under the expired key must commit within the 50 yields of the hand-driven clock's wake: it needs a
      // PostgreSQL round trip (a race with real IO, as on the cluster layer)
      "past its deadline, before any expiry fiber ran, a record is NotFound everywhere and absent from read"
    ]
  }
)

// and in a SQLite file of its own per Store, in a temporary directory removed after
conformance(
  "durable (SQLite)",
  (rs) =>
    Layer.unwrap(Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "durconf-"))),
        (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
      ),
      (dir) =>
        Store.layer(rs.map(durable)).pipe(
          Layer.provide(SqliteClient.layer({ filename: Path.join(dir, "store.db") }).pipe(Layer.orDie))
        )
    )),
  { supervision: true, eagerExpiry: true, expiryRunsDestroy: true, schedules: true }
)

// the fault suite: storage refusing, dropping and losing answers, bad strings, versions sharing a table
faults("durable (PostgreSQL)", {
  modelRuns: 12,
  database: Effect.gen(function*() {
    const schema = Pg.freshSchema("durfault")
    yield* Pg.schemaScoped(schema)
    return Pg.layer("durfault", schema, false)
  }),
  store: (rs, options) => Store.layer(rs.map(durable), { durable: { tablePrefix: options?.tablePrefix } })
})

faults("durable (SQLite)", {
  modelRuns: 30,
  database: Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "durfault-"))),
      (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
    ),
    (dir) => SqliteClient.layer({ filename: Path.join(dir, "store.db") }).pipe(Layer.orDie)
  ),
  store: (rs, options) => Store.layer(rs.map(durable), { durable: { tablePrefix: options?.tablePrefix } })
})
