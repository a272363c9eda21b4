/**
 * A client-only load process of the rolling-upgrade test:
 * `node --import tsx upgrade-client.ts <schema> <version> <records> <callers> <prefix> <create> <maxSeconds>`.
 *
 * Runs version 1 or 2 of Tally (`upgrade-domain.ts`). With `create` = 1, creates
 * the records r0..r<records-1> first (as v1: `{ id, tokens: [] }`). Prints
 * `STARTED` (subscribed to events), waits for `GO` on its stdin, then appends unique tokens (`<prefix><caller>-<seq>`) with
 * `callers` sequential callers until it reads `STOP` on its stdin (or after
 * `maxSeconds`); prints `ACK <id> <token>` for every acknowledged append,
 * `FAIL <id> <token> <applied> <cause>` for every failed one,
 * `BADREPLY <id> <token> <record>` for an acknowledged append whose record is
 * not a valid record of this version holding the token, `EVT <id> <token>`
 * for every `Updated` event it hears, and at the end (once it heard the last
 * acknowledged update of each record, at most 20 s)
 * `DONE <acks> <fails> <longestCallMs> <badReplies>`.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Clock, Effect, PubSub, Schema } from "effect"
import { Store } from "../../../src/index.js"
import { storeLayer, TallyV1, TallyV2 } from "./upgrade-domain.js"

const [schema, version, records, callers, prefix, create, maxSeconds] = process.argv.slice(2)
const v2 = version === "2"
const out = (line: string) => Effect.sync(() => process.stdout.write(line + "\n"))

let go = false
let stopped = false
let input = ""
process.stdin.setEncoding("utf8")
process.stdin.on("data", (chunk: string) => {
  input += chunk
  if (input.includes("GO")) go = true
  if (input.includes("STOP")) stopped = true
})

/** Whether an acknowledged record is a valid record of this version. */
const valid = Schema.is(Schema.Struct(v2 ? TallyV2.fields : TallyV1.fields))

/** The tokens whose `Updated` event this process heard. */
const heard = new Set<string>()
/** The last acknowledged token of each record. */
const lastAcked = new Map<string, string>()

const main = Effect.gen(function*() {
  const store = yield* Store.Store
  // subscribed (the LISTEN confirmed) before STARTED: every update after GO is heard
  const events = yield* store.dataLayer.subscribe
  yield* PubSub.take(events).pipe(
    Effect.flatMap((e) => {
      if (e._tag !== "Updated") return Effect.void
      const record = e.record as { readonly id: string; readonly tokens: ReadonlyArray<string> }
      const token = record.tokens[record.tokens.length - 1]!
      heard.add(token)
      return out(`EVT ${record.id} ${token}`)
    }),
    Effect.forever,
    Effect.forkScoped
  )
  const ids = Array.from({ length: Number(records) }, (_, i) => `r${i}`)
  if (create === "1") {
    yield* Effect.forEach(ids, (id) => Store.create(TallyV1, "create", { id, tokens: [] }), { concurrency: 8 })
  }
  yield* out("STARTED")
  while (!go) yield* Effect.sleep("20 millis")
  const end = (yield* Clock.currentTimeMillis) + Number(maxSeconds) * 1000
  let acks = 0
  let fails = 0
  let bad = 0
  let stall = 0
  let seq = 0
  const append = (id: string, token: string) =>
    v2 ? Store.update(TallyV2, { id }, "append", { token }) : Store.update(TallyV1, { id }, "append", { token })
  yield* Effect.forEach(Array.from({ length: Number(callers) }, (_, c) => c), (c) =>
    Effect.gen(function*() {
      while (!stopped && (yield* Clock.currentTimeMillis) < end) {
        const id = ids[(seq++ * 7 + c) % ids.length]!
        const token = `${prefix}${c}-${seq}`
        const start = yield* Clock.currentTimeMillis
        const exit = yield* Effect.exit(append(id, token))
        const took = (yield* Clock.currentTimeMillis) - start
        if (took > stall) stall = took
        if (exit._tag === "Success") {
          acks++
          lastAcked.set(id, token)
          yield* out(`ACK ${id} ${token}`)
          const record: unknown = exit.value
          if (!valid(record) || !(record as { readonly tokens: ReadonlyArray<string> }).tokens.includes(token)) {
            bad++
            yield* out(`BADREPLY ${id} ${token} ${JSON.stringify(record).slice(0, 200)}`)
          }
        } else {
          fails++
          const error = Cause.findErrorOption(exit.cause)
          const applied = error._tag === "Some" && error.value._tag === "Unavailable" ? error.value.applied : "-"
          yield* out(`FAIL ${id} ${token} ${applied} ${JSON.stringify(String(exit.cause)).slice(0, 300)}`)
        }
      }
    }), { concurrency: "unbounded", discard: true })
  yield* out("STOPPED")
  // the events of the last calls may still be on their way: a second, then until each record's last acknowledged
  // update was heard, at most 20 s
  yield* Effect.sleep("1 second")
  const waitUntil = (yield* Clock.currentTimeMillis) + 20_000
  while (
    [...lastAcked.values()].some((token) => !heard.has(token)) && (yield* Clock.currentTimeMillis) < waitUntil
  ) yield* Effect.sleep("100 millis")
  yield* out(`DONE ${acks} ${fails} ${stall} ${bad}`)
}).pipe(Effect.scoped, Effect.provide(storeLayer(schema!, undefined, v2 ? 2 : 1)))

NodeRuntime.runMain(main)
