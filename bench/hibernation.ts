/**
 * What hibernation saves and what a wake-up costs: creates `HIBERNATION_N`
 * (default 100,000) records of the benchmark's Character fields, once
 * without `hibernateAfter` and once with it (after which they are left idle
 * until every one sleeps), and reports for each the heap a record holds
 * beyond its own data, then the rate of a first round of updates (which
 * wakes every sleeping record) and of a second one (all awake). Both
 * resources use `restart: "lastState"`, so no create input is kept.
 *
 *   npm run bench:hibernation
 *
 * It exits with 1 when a record that should sleep does not.
 *
 * @since 0.2.0
 */
import { Effect, Metric } from "effect"
import { Metrics, Resource, Store } from "effect-gen-server"
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { collectGarbage } from "./harness.js"
import { characterFields, makeRecord, measureRecordData } from "./workloads.js"

const count = Number(process.env.HIBERNATION_N ?? 100_000)
const updates = Math.min(count, 20_000)
const hibernateMillis = 200

const make = (name: string, hibernate: boolean) =>
  Resource.make(name, {
    fields: characterFields,
    primaryKey: ["id"],
    inactivityTimeout: "1 hour",
    restart: "lastState",
    ...(hibernate ? { hibernateAfter: `${hibernateMillis} millis` as const } : {})
  })

const heap = () => {
  for (let i = 0; i < 4; i++) collectGarbage()
  return process.memoryUsage().heapUsed
}

const rate = (f: (i: number) => Effect.Effect<unknown, unknown, Store.Store>) =>
  Effect.gen(function*() {
    const started = performance.now()
    for (let i = 0; i < updates; i++) yield* f(i)
    return updates / ((performance.now() - started) / 1000)
  })

const run = (hibernate: boolean, dataBytes: number) => {
  const Character = make(hibernate ? "Sleepy" : "Awake", hibernate)
  return Effect.gen(function*() {
    const before = heap()
    const started = performance.now()
    for (let i = 0; i < count; i++) yield* Store.create(Character, "create", makeRecord(i))
    const createRate = count / ((performance.now() - started) / 1000)
    // idle until every record may sleep, then let the expiry fiber and the records act
    yield* Effect.sleep(`${hibernateMillis * 2 + 500} millis`)
    const asleep = (yield* Metric.value(Metric.withAttributes(Metrics.hibernating, { resource: Character.name })))
      .value
    const perRecord = (heap() - before) / count - dataBytes
    const first = yield* rate((i) => Store.update(Character, { id: makeRecord(i).id }, "update", { currentYear: 1955 }))
    const second = yield* rate((i) =>
      Store.update(Character, { id: makeRecord(i).id }, "update", { currentYear: 1985 })
    )
    console.log(
      `${hibernate ? "hibernateAfter 200 ms" : "awake (no hibernation)"}: ${count} records, ${asleep} asleep, ` +
        `${perRecord.toFixed(0)} B per record beyond its data (${dataBytes.toFixed(0)} B); ` +
        `create ${(createRate / 1000).toFixed(1)}k/s; update ${(first / 1000).toFixed(1)}k/s first round, ` +
        `${(second / 1000).toFixed(1)}k/s second (ratio ${(second / first).toFixed(2)})`
    )
    if (hibernate && asleep !== count) process.exitCode = 1
  }).pipe(Effect.scoped, Effect.provide(Store.layer([Character])))
}

// each mode in a process of its own, so neither measures the other's garbage
const mode = process.argv[2]
if (mode === undefined) {
  for (const m of ["awake", "asleep"]) {
    const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), m], {
      stdio: "inherit",
      env: process.env
    })
    if (child.status !== 0) process.exitCode = 1
  }
} else {
  const program = Effect.gen(function*() {
    const dataBytes = (yield* measureRecordData(count)).value
    yield* run(mode === "asleep", dataBytes)
  })
  Effect.runPromise(program).catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
}
