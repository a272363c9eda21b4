import { Store } from "effect-gen-server"
import { conformance } from "./suite.js"

conformance("memory", (rs) => Store.layer(rs, { dataLayer: "memory" }), {
  supervision: false,
  eagerExpiry: false,
  expiryRunsDestroy: false,
  schedules: true
})
