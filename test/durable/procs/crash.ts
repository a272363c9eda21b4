/**
 * The load of the crash tests, run until it is killed:
 * `node --import tsx crash.ts <sqlite|pg> <file|schema> <round> <callers> <log>`.
 *
 * Opens a Store over the durable {@link Ledger} on the database (restoring
 * what an earlier round left), then `callers` sequential callers each create
 * records (1 in 8), destroy records (1 in 16) and append to records (their
 * own and others'), every write with a unique operation id
 * `<round>.<caller>.<seq>`. Each write is logged, with `fs.writeSync` to
 * `log` (appended), before it is sent (`S <op> <id> <C|U|D>`) and
 * once the Store answered (`A <op>`, or `F <op> <error>`): a line is on
 * disk before the next call of its caller starts. Prints `READY <records>`
 * once the Store is open, and ends by itself after 120 s (the test kills it
 * long before).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Random } from "effect"
import * as Fs from "node:fs"
import { Query, Store } from "../../../src/index.js"
import { database, Ledger } from "./ledger.js"

const [kind, where, round, callers, logFile] = process.argv.slice(2)
const log = Fs.openSync(logFile!, "a")
const line = (text: string) => Fs.writeSync(log, text + "\n")

const main = Effect.gen(function*() {
  // every record an earlier round left, and those created here once acknowledged
  const known: Array<string> = (yield* Store.read(Query.make(Ledger))).map((r) => r.id)
  process.stdout.write(`READY ${known.length}\n`)
  yield* Effect.forEach(Array.from({ length: Number(callers) }, (_, c) => c), (c) =>
    Effect.gen(function*() {
      for (let seq = 0;; seq++) {
        const op = `${round}.${c}.${seq}`
        const dice = yield* Random.nextIntBetween(0, 16, { halfOpen: true })
        const kind = known.length < 16 || dice < 2 ? "C" : dice === 2 ? "D" : "U"
        const id = kind === "C" ? op : known[yield* Random.nextIntBetween(0, known.length, { halfOpen: true })]!
        // a record is not picked again once its destroy is sent (writes to it already sent may fail: NotFound)
        if (kind === "D") known.splice(known.indexOf(id), 1)
        line(`S ${op} ${id} ${kind}`)
        const exit = yield* Effect.exit<unknown, unknown, Store.Store>(
          kind === "C"
            ? Store.create(Ledger, "create", { id, ops: [op], n: 1, last: op })
            : kind === "D"
            ? Store.destroy(Ledger, { id })
            : Store.update(Ledger, { id }, "append", { op })
        )
        if (exit._tag === "Success") {
          line(`A ${op}`)
          if (kind === "C") known.push(id)
        } else {
          line(`F ${op} ${JSON.stringify(String(exit.cause)).slice(0, 300)}`)
        }
      }
    }), { concurrency: "unbounded", discard: true })
}).pipe(
  Effect.timeout("120 seconds"),
  Effect.provide(Store.layer([Ledger]).pipe(Layer.provide(database(kind!, where!))))
)

NodeRuntime.runMain(main)
