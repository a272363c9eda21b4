/**
 * A million live records under Node's default heap limit: creates
 * `MILLION_N` (default 1,000,000) idle records of the benchmark's
 * `Character` (with an inactivity timeout, so each has its deadline) in one
 * Store, then reports the time it took and the heap they hold, against the
 * limit. Run it without raising the limit:
 *
 *   npm run bench:million
 *
 * With `MILLION_HIBERNATE=<ms>` the records use `hibernateAfter` (that many
 * milliseconds) and the figures are taken once every one of them sleeps:
 * ten million hibernated records, with the heap limit raised, is
 *
 *   MILLION_N=10000000 MILLION_HIBERNATE=200 node --expose-gc --max-old-space-size=20000 --import tsx bench/million.ts
 *
 * The run is bounded: past `MILLION_LIMIT` seconds (default 600) it stops
 * and says how far it got.
 *
 * It exits with 1 when the records do not fit (the process would crash
 * first), when fewer than the requested records are live (or asleep), or
 * when the time limit ran out.
 *
 * @since 0.1.0
 */
import { Effect, Metric } from "effect"
import { Metrics, Query, Resource, Store } from "effect-gen-server"
import { getHeapStatistics } from "node:v8"
import { collectGarbage } from "./harness.js"
import { Character as AwakeCharacter, characterFields, makeRecord } from "./workloads.js"

const count = Number(process.env.MILLION_N ?? 1_000_000)
const hibernateMillis = process.env.MILLION_HIBERNATE === undefined ? undefined : Number(process.env.MILLION_HIBERNATE)
const limitSeconds = Number(process.env.MILLION_LIMIT ?? 600)
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`

const Character = hibernateMillis === undefined ? AwakeCharacter : Resource.make("Character", {
  fields: characterFields,
  primaryKey: ["id"],
  inactivityTimeout: "1 hour",
  restart: "lastState",
  hibernateAfter: `${hibernateMillis} millis`
})

const asleep = Effect.map(
  Metric.value(Metric.withAttributes(Metrics.hibernating, { resource: Character.name })),
  (gauge) => gauge.value
)

const program = Effect.gen(function*() {
  const started = performance.now()
  const deadline = started + limitSeconds * 1000
  let created = 0
  for (; created < count && performance.now() < deadline; created++) {
    yield* Store.create(Character, "create", makeRecord(created))
    if (created > 0 && created % 500_000 === 0) {
      console.error(
        `${created} records in ${((performance.now() - started) / 1000).toFixed(0)} s, heap ${
          mib(process.memoryUsage().heapUsed)
        }${hibernateMillis === undefined ? "" : `, ${yield* asleep} asleep`}`
      )
    }
  }
  const seconds = (performance.now() - started) / 1000
  if (created < count) {
    console.log(`stopped after ${limitSeconds} s (MILLION_LIMIT): ${created} of ${count} records created`)
    process.exitCode = 1
    return
  }
  let sleeping = 0
  if (hibernateMillis !== undefined) {
    // idle until every record sleeps (bounded by the same limit)
    while ((sleeping = yield* asleep) < count && performance.now() < deadline) yield* Effect.sleep("100 millis")
  }
  collectGarbage()
  const heap = process.memoryUsage().heapUsed
  const limit = getHeapStatistics().heap_size_limit
  const live = yield* Effect.map(Store.read(Query.make(Character)), (records) => records.length)
  console.log(
    `${live} live records${
      hibernateMillis === undefined ? "" : ` (${sleeping} asleep, hibernateAfter ${hibernateMillis} ms)`
    } created in ${seconds.toFixed(1)} s (${(count / seconds / 1000).toFixed(1)}k/s); ` +
      `heap ${mib(heap)} of a ${mib(limit)} limit (${(heap / count).toFixed(0)} B per record with its data)`
  )
  if (live !== count || (hibernateMillis !== undefined && sleeping !== count)) process.exitCode = 1
})

Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(Store.layer([Character])))).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
