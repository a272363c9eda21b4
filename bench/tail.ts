/**
 * The update tail over a million awake records, with longer windows than
 * `npm run bench`: creates `TAIL_N` (default 1,000,000) idle records of the
 * benchmark's `Character` (no hibernation), collects garbage, then measures
 * `TAIL_ROUNDS` times (default 3), `TAIL_MS` each (default 3,000 ms),
 * update x1 (1 caller) and the update latency of 64 closed-loop callers,
 * with the GC time of each window. A window of 20 s holds several of the
 * major collections a heap of a million awake records goes through (one
 * every 6-12 s of updates): the steady state, where a short window shows
 * whichever part of the collection cycle it falls in. Run it with V8's
 * trace to see each collection's pause:
 *
 *   node --expose-gc --max-old-space-size=12288 --trace-gc --import tsx bench/tail.ts
 *   TAIL_MS=20000 TAIL_ROUNDS=2 node --expose-gc --max-old-space-size=12288 --import tsx bench/tail.ts
 *
 * @since 0.3.0
 */
import { Effect } from "effect"
import { Store } from "effect-gen-server"
import { type Budget, collectGarbage, measureLatency, measureOps } from "./harness.js"
import { Character, indexFor, keyOf, makeRecord, years } from "./workloads.js"

const size = Number(process.env.TAIL_N ?? 1_000_000)
const timeMs = Number(process.env.TAIL_MS ?? 3_000)
const rounds = Number(process.env.TAIL_ROUNDS ?? 3)
// room for 200k calls a second: a window never runs out of samples before its time
const budget: Budget = { warmupMs: 300, warmupMaxOps: 100_000, timeMs, maxOps: Math.max(600_000, timeMs * 200) }

const program = Effect.gen(function*() {
  const started = performance.now()
  for (let i = 0; i < size; i++) yield* Store.create(Character, "create", makeRecord(i))
  collectGarbage()
  console.log(
    `${size} records created in ${((performance.now() - started) / 1000).toFixed(1)} s, heap ${
      (process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)
    } MiB`
  )
  const year = years(size)
  const update = (i: number) => {
    const index = indexFor(i, size)
    return Store.update(Character, { id: keyOf(index) }, "update", { currentYear: year.next(index) })
  }
  for (let round = 0; round < rounds; round++) {
    const x1 = yield* measureOps(update, { budget })
    const latency = yield* measureLatency(update, { budget, callers: 64 })
    console.log(
      `update x1 ${(x1.value / 1000).toFixed(1)}k ops/s (${x1.note}); x64 p50 ${latency.p50.value.toFixed(1)} µs, p99 ${
        latency.p99.value.toFixed(0)
      } µs (${latency.p99.note})`
    )
  }
})

Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(Store.layer([Character])))).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
