import { Store } from "effect-gen-server"
import { conformance } from "./suite.js"

conformance("genServer", (rs) => Store.layer(rs), { supervision: true, eagerExpiry: true }, {
  knownFailures: [
    // create, get, read and update hand out the record's committed state object itself: a caller
    // assigning to it changes the committed state (issue 9)
    "records handed to callers are immutable: changing one changes nothing else",
    // `ValidationError.issue` and `RecordCrashed.defect` are not JSON values: `Schema.toCodecJson` fails
    // on them with "Expected JSON value" (issue 9)
    "every error and event a call produces round-trips through its JSON codec"
  ]
})
