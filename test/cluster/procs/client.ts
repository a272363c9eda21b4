/**
 * The client-only load process: `node --import tsx client.ts <schema> <records> <seconds> <callers>`.
 * Creates the records, then appends unique tokens for `seconds`; prints
 * `ACK <id> <token>` for every acknowledged append, `FAIL <id> <token> <tag>`
 * for every failed one, `EVT <id> <token>` for every `Updated` event it
 * hears (the token the update appended), and `DONE <acks> <fails> <longestStallMs>`
 * at the end, a second after the last call.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Clock, Effect, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { Store } from "../../../src/index.js"
import { Ledger, Session, storeLayer } from "./domain.js"

const [schema, records, seconds, callers] = process.argv.slice(2)
const out = (line: string) => Effect.sync(() => process.stdout.write(line + "\n"))

/** The tokens whose `Updated` event this process heard. */
const heard = new Set<string>()
/** The last acknowledged token of each record. */
const lastAcked = new Map<string, string>()

const main = Effect.gen(function*() {
  const store = yield* Store.Store
  yield* store.dataLayer.events.pipe(
    Stream.runForEach((e) => {
      if (e._tag === "Destroyed" && e.resource === "Session") {
        return out(`EXPIRED ${(e.record as { readonly id: string }).id} ${e.reason}`)
      }
      if (e._tag !== "Updated") return Effect.void
      const record = e.record as { readonly id: string; readonly tokens: ReadonlyArray<string> }
      const token = record.tokens[record.tokens.length - 1]!
      heard.add(token)
      return out(`EVT ${record.id} ${token}`)
    }),
    Effect.forkScoped
  )
  const ids = Array.from({ length: Number(records) }, (_, i) => `L${i}`)
  yield* Effect.forEach(ids, (id) => Store.create(Ledger, "create", { id, tokens: [] }), { concurrency: 8 })
  // sessions nobody touches: each must expire once, through its destroy action
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS expired_log (id text NOT NULL)`)
  yield* Effect.forEach(
    Array.from({ length: 20 }, (_, i) => `S${i}`),
    (id) => Store.create(Session, "create", { id }),
    {
      concurrency: 8
    }
  )
  yield* out("STARTED")
  const end = (yield* Clock.currentTimeMillis) + Number(seconds) * 1000
  let acks = 0
  let fails = 0
  let stall = 0
  let seq = 0
  yield* Effect.forEach(Array.from({ length: Number(callers) }, (_, c) => c), (c) =>
    Effect.gen(function*() {
      while ((yield* Clock.currentTimeMillis) < end) {
        const id = ids[(seq++ * 7 + c) % ids.length]!
        const token = `${c}-${seq}`
        const start = yield* Clock.currentTimeMillis
        const exit = yield* Effect.exit(Store.update(Ledger, { id }, "append", { token }))
        const took = (yield* Clock.currentTimeMillis) - start
        if (took > stall) stall = took
        if (exit._tag === "Success") {
          acks++
          lastAcked.set(id, token)
          yield* out(`ACK ${id} ${token}`)
        } else {
          fails++
          // what a failure says of the write: Unavailable's `applied` ("no": certainly not applied), or "-"
          const error = Cause.findErrorOption(exit.cause)
          const applied = error._tag === "Some" && error.value._tag === "Unavailable" ? error.value.applied : "-"
          yield* out(`FAIL ${id} ${token} ${applied} ${JSON.stringify(String(exit.cause)).slice(0, 200)}`)
        }
      }
    }), { concurrency: "unbounded", discard: true })
  // the events of the last calls may still be on their way (a busy process decodes them late): a second, then
  // until each record's last acknowledged update was heard, at most 20 s
  yield* Effect.sleep("1 second")
  const waitUntil = (yield* Clock.currentTimeMillis) + 20_000
  while (
    [...lastAcked.values()].some((token) => !heard.has(token)) && (yield* Clock.currentTimeMillis) < waitUntil
  ) yield* Effect.sleep("100 millis")
  yield* out(`DONE ${acks} ${fails} ${stall}`)
}).pipe(Effect.scoped, Effect.provide(storeLayer(schema!, undefined)))

NodeRuntime.runMain(main)
