import { Layer } from "effect"
import { type Resource, Store } from "effect-gen-server"
import * as Pg from "../cluster/pg.js"
import { conformance } from "./suite.js"

/** The same resource, durable: the suite calls it by name, so the Store serves the copy. */
const durable = (resource: Resource.Any): Resource.Any =>
  Object.assign(Object.create(Object.getPrototypeOf(resource)), resource, { durable: true })

// every resource of the suite durable, its state in a fresh PostgreSQL schema per Store
conformance(
  "durable (PostgreSQL)",
  (rs) => Store.layer(rs.map(durable)).pipe(Layer.provide(Pg.layer("durconf"))),
  { supervision: true, eagerExpiry: true },
  {
    knownFailures: [
      // a primary key cannot change on a durable record (its stored row is keyed by it): ValidationError
      "a key change re-registers the record: the old key is free, the new one found",
      "read, by key, by an indexed field or by a scan, sees updates, key changes and destroys",
      "Created, Updated and Destroyed, in per-record order, with key and record"
    ],
    skipped: [
      // a create under the expired key must commit within the 50 yields of the hand-driven clock's wake: it needs a
      // PostgreSQL round trip (a race with real IO, as on the cluster layer)
      "past its deadline, before any expiry fiber ran, a record is NotFound everywhere and absent from read"
    ]
  }
)
