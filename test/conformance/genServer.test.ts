import { Store } from "effect-gen-server"
import { conformance } from "./suite.js"

conformance("genServer", (rs) => Store.layer(rs), {
  supervision: true,
  eagerExpiry: true,
  expiryRunsDestroy: true,
  schedules: true
})
