/**
 * The load of the schedule crash test, run until it is killed:
 * `node --import tsx alarms.ts <sqlite|pg> <file|schema> <count> <log>`.
 *
 * Opens a Store over the durable {@link Alarmed} resource (restoring, and
 * so running what is due, what an earlier process left), creates `count`
 * alarms one after the other, each ringing once 50 to 1,500 ms after its
 * create (`Changeset.schedule`), logging `A <id>` (with `fs.writeSync`) once
 * each create is acknowledged. Prints `READY` once the Store is open, and
 * runs schedules until it is killed (or 60 s).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import * as Fs from "node:fs"
import { Store } from "../../../src/index.js"
import { Alarmed, database } from "./ledger.js"

const [kind, where, count, logFile] = process.argv.slice(2)
const log = Fs.openSync(logFile!, "a")

const main = Effect.gen(function*() {
  process.stdout.write("READY\n")
  for (let i = 0; i < Number(count); i++) {
    const id = `${process.pid}.${i}`
    yield* Store.create(Alarmed, "set", { id, millis: 50 + (i * 37) % 1450 })
    Fs.writeSync(log, `A ${id}\n`)
  }
  yield* Effect.never
}).pipe(
  Effect.timeout("60 seconds"),
  Effect.provide(Store.layer([Alarmed]).pipe(Layer.provide(database(kind!, where!))))
)

NodeRuntime.runMain(main)
