/**
 * A million live records under Node's default heap limit: creates
 * `MILLION_N` (default 1,000,000) idle records of the benchmark's
 * `Character` (with an inactivity timeout, so each has its deadline) in one
 * Store, then reports the time it took and the heap they hold, against the
 * limit. Run it without raising the limit:
 *
 *   npm run bench:million
 *
 * It exits with 1 when the records do not fit (the process would crash
 * first) or when fewer than the requested records are live.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { Query, Store } from "effect-gen-server"
import { getHeapStatistics } from "node:v8"
import { collectGarbage } from "./harness.js"
import { Character, makeRecord } from "./workloads.js"

const count = Number(process.env.MILLION_N ?? 1_000_000)
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`

const program = Effect.gen(function*() {
  const started = performance.now()
  for (let i = 0; i < count; i++) {
    yield* Store.create(Character, "create", makeRecord(i))
    if (i > 0 && i % 200_000 === 0) console.error(`${i} records, heap ${mib(process.memoryUsage().heapUsed)}`)
  }
  const seconds = (performance.now() - started) / 1000
  collectGarbage()
  const heap = process.memoryUsage().heapUsed
  const limit = getHeapStatistics().heap_size_limit
  const live = yield* Effect.map(Store.read(Query.make(Character)), (records) => records.length)
  console.log(
    `${live} live records created in ${seconds.toFixed(1)} s (${(count / seconds / 1000).toFixed(1)}k/s); ` +
      `heap ${mib(heap)} of a ${mib(limit)} limit (${(heap / count).toFixed(0)} B per record with its data)`
  )
  if (live !== count) process.exitCode = 1
})

Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(Store.layer([Character])))).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
