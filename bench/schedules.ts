/**
 * What schedules cost (`Changeset.schedule`): the heap each pending
 * schedule holds, and how fast schedules run when many come due at once.
 * Creates `SCHEDULES_N` (default 100,000) records of the benchmark's
 * Character fields, each scheduling one update an hour ahead, beside as
 * many records without one, and reports the heap per pending schedule
 * beyond its record; then as many records whose schedules all come due at
 * the same moment (a `TestClock` moved on an hour), and the rate at which
 * they run (each an update of its record, in its fiber, consumed in its
 * commit), in wall-clock time. GenServer layer, in memory.
 *
 *   npm run bench:schedules
 *   SCHEDULES_N=1000000 npm run bench:schedules
 *
 * It exits with 1 when a schedule does not run.
 *
 * @since 0.6.0
 */
import { Effect, Metric, References } from "effect"
import { Changeset, Metrics, Resource, Store } from "effect-gen-server"
import { TestClock } from "effect/testing"
import { collectGarbage } from "./harness.js"
import { characterFields, makeRecord } from "./workloads.js"

const count = Number(process.env.SCHEDULES_N ?? 100_000)

const make = (name: string, after: "1 hour" | undefined) =>
  Resource.make(name, {
    fields: characterFields,
    primaryKey: ["id"],
    restart: "lastState",
    actions: (Action) => ({
      arrive: Action.create({
        accept: ["id", "name", "currentYear"],
        change: (cs) => after === undefined ? cs : Changeset.schedule(cs, "travel", { after })
      }),
      travel: Action.update({ change: (cs) => Changeset.set(cs, "currentYear", 1955) })
    })
  })

const heap = () => {
  for (let i = 0; i < 4; i++) collectGarbage()
  return process.memoryUsage().heapUsed
}

/** The heap `count` records take, created by `arrive`. */
const heapOf = (Character: Resource.Any) =>
  Effect.gen(function*() {
    const before = heap()
    for (let i = 0; i < count; i++) {
      const { id, name, currentYear } = makeRecord(i)
      yield* Store.create(Character, "arrive", { id, name, currentYear } as never)
    }
    return (heap() - before) / count
  }).pipe(Effect.scoped, Effect.provide(Store.layer([Character])))

const fired = (resource: string) =>
  Effect.map(
    Metric.value(Metric.withAttributes(Metrics.schedulesFired, { resource, outcome: "ok" })),
    (state) => state.count
  )

const program = Effect.gen(function*() {
  const plain = yield* heapOf(make("Plain", undefined))
  const scheduled = yield* heapOf(make("Scheduled", "1 hour"))
  console.log(
    `${count} records: ${plain.toFixed(0)} B each without a schedule, ${scheduled.toFixed(0)} B with one pending: ` +
      `${(scheduled - plain).toFixed(0)} B per pending schedule (${
        (((scheduled - plain) * 1e6) / 2 ** 20).toFixed(0)
      } ` +
      `MiB per million)`
  )
  const Due = make("Due", "1 hour")
  yield* Effect.gen(function*() {
    for (let i = 0; i < count; i++) {
      const { id, name, currentYear } = makeRecord(i)
      yield* Store.create(Due, "arrive", { id, name, currentYear } as never)
    }
    // on the TestClock (all created at its time 0): every schedule comes due at once when it moves an hour on
    const started = performance.now()
    yield* TestClock.adjust("1 hour")
    while ((yield* fired("Due")) < count && performance.now() - started < 120_000) yield* Effect.yieldNow
    const ran = yield* fired("Due")
    const seconds = (performance.now() - started) / 1000
    console.log(
      `${count} schedules due at once: ${ran} ran in ${(seconds * 1000).toFixed(0)} ms, ` +
        `${(ran / seconds / 1000).toFixed(1)}k/s`
    )
    if (ran !== count) process.exitCode = 1
  }).pipe(
    Effect.scoped,
    Effect.provide(Store.layer([Due])),
    Effect.provide(TestClock.layer()),
    // the test clock's warning that nobody moves it while the runs go on: this bench moves it once, on purpose
    Effect.provideService(References.MinimumLogLevel, "Error")
  )
})

Effect.runPromise(program)
