/** A runner of the multi-process tests: `node --import tsx runner.ts <schema> <port>`. Prints READY. */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { storeLayer } from "./domain.js"

const [schema, port] = process.argv.slice(2)
// which runner owns a record, for the tests (Knot's `where`)
process.env.GS_RUNNER = port
const main = Effect.gen(function*() {
  yield* Effect.sync(() => console.log("READY"))
  return yield* Effect.never
}).pipe(Effect.provide(storeLayer(schema!, Number(port))))

NodeRuntime.runMain(main as Effect.Effect<never>)
