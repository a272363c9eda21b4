import { Layer } from "effect"
import { TestRunner } from "effect/cluster"
import { Cluster } from "effect-gen-server"
import * as Pg from "../cluster/pg.js"
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
  { supervision: true, eagerExpiry: true }
)
