/**
 * A runner process of `npm run bench:cluster`:
 * `node --import tsx bench/cluster/runner.ts <schema> <port>`. Prints READY
 * once its layer is up; exits when its standard input closes (the bench
 * process ended, however it ended).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { runnerLayer } from "./domain.js"

const [schema, port] = process.argv.slice(2)
process.stdin.on("end", () => process.exit(0))
process.stdin.on("close", () => process.exit(0))
process.stdin.resume()

const main = Effect.gen(function*() {
  yield* Effect.sync(() => console.log("READY"))
  return yield* Effect.never
}).pipe(Effect.provide(runnerLayer(schema!, Number(port))))

NodeRuntime.runMain(main as Effect.Effect<never>)
