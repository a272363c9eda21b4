/**
 * A runner process of `npm run bench:cluster`:
 * `node --import tsx bench/cluster/runner.ts <schema> <port>`. Prints READY
 * once its layer is up; answers a `stats` line on its standard input with
 * `STATS <json>` (its SQL counters); exits when its standard input closes
 * (the bench process ended, however it ended).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { createInterface } from "node:readline"
import { runnerLayer, sqlCounters } from "./domain.js"

const [schema, port] = process.argv.slice(2)
process.stdin.on("end", () => process.exit(0))
process.stdin.on("close", () => process.exit(0))
createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "stats") process.stdout.write(`STATS ${JSON.stringify(sqlCounters)}\n`)
})

const main = Effect.gen(function*() {
  yield* Effect.sync(() => console.log("READY"))
  return yield* Effect.never
}).pipe(Effect.provide(runnerLayer(schema!, Number(port))))

NodeRuntime.runMain(main as Effect.Effect<never>)
