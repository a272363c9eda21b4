/**
 * A runner of the rolling-upgrade test: `node --import tsx upgrade-runner.ts <schema> <port> <version>`, running
 * version 1 or 2 of Tally (`upgrade-domain.ts`). Prints READY.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { storeLayer } from "./upgrade-domain.js"

const [schema, port, version] = process.argv.slice(2)
const main = Effect.gen(function*() {
  yield* Effect.sync(() => console.log("READY"))
  return yield* Effect.never
}).pipe(Effect.provide(storeLayer(schema!, Number(port), version === "2" ? 2 : 1)))

NodeRuntime.runMain(main as Effect.Effect<never>)
