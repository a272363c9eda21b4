/**
 * The client of the schedule test: `node --import tsx alarms-client.ts <schema> <count>`.
 * Creates `count` alarms, each ringing once 1 to 6 s after its create
 * (`Changeset.schedule`), printing `ACK <id>` once each create is
 * acknowledged, then `DONE`.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { Store } from "../../../src/index.js"
import { Alarm, storeLayer } from "./domain.js"

const [schema, count] = process.argv.slice(2)
const out = (line: string) => Effect.sync(() => process.stdout.write(line + "\n"))

const main = Effect.gen(function*() {
  yield* Effect.forEach(
    Array.from({ length: Number(count) }, (_, i) => i),
    (i) =>
      Effect.flatMap(
        Store.create(Alarm, "set", { id: `A${i}`, millis: 1000 + (i * 97) % 5000 }),
        () => out(`ACK A${i}`)
      ),
    { concurrency: 8, discard: true }
  )
  yield* out("DONE")
  return yield* Effect.never
}).pipe(Effect.provide(storeLayer(schema!, undefined)))

NodeRuntime.runMain(main as Effect.Effect<never>)
