/**
 * A runner process of `npm run bench:cluster`:
 * `node --import tsx bench/cluster/runner.ts <schema> <port>`. Prints READY
 * once its layer is up; answers a `stats` line on its standard input with
 * `STATS <json>` (its SQL counters and CPU time), `profile start` with PROFILING once its
 * CPU profile runs, `profile stop <path>` with PROFILED once written; exits when its standard input closes
 * (the bench process ended, however it ended).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { createInterface } from "node:readline"
import * as CpuProfile from "./cpuProfile.js"
import { countersNow, runnerLayer } from "./domain.js"

const [schema, port] = process.argv.slice(2)
process.stdin.on("end", () => process.exit(0))
process.stdin.on("close", () => process.exit(0))
createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "stats") process.stdout.write(`STATS ${JSON.stringify(countersNow())}\n`)
  else if (line === "profile start") void CpuProfile.start().then(() => process.stdout.write("PROFILING\n"))
  else if (line.startsWith("profile stop ")) {
    void CpuProfile.stop(line.slice(13)).then(() => process.stdout.write("PROFILED\n"))
  }
})

const main = Effect.gen(function*() {
  yield* Effect.sync(() => console.log("READY"))
  return yield* Effect.never
}).pipe(Effect.provide(runnerLayer(schema!, Number(port))))

NodeRuntime.runMain(main as Effect.Effect<never>)
