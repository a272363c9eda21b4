/**
 * effect-gen-server's own workloads, measured on the same records, keys and
 * query as the baselines. `run.ts` imports this module, which registers two
 * suites: per size the first creates the records (heap per record and create
 * rate), then measures gets, updates, latency, the filtered read and the
 * expiry of idle records; the second does the same with `hibernateAfter`
 * (heap per sleeping record, an update that wakes one, update latency).
 *
 * @since 0.1.0
 */
import { Deferred, Effect, Fiber, Metric, PubSub } from "effect"
import { Filter, Metrics, Query, Resource, Store } from "effect-gen-server"
import {
  canMeasureHeap,
  collectGarbage,
  latencyBudget,
  measureHeap,
  measureLatency,
  type Measurement,
  measureOps,
  percentile
} from "./harness.js"
import {
  Character,
  characterFields,
  filteredQuery,
  idleTimeoutMs,
  indexFor,
  keyOf,
  makeRecord,
  type OursResult,
  registerOurs,
  Workload,
  years
} from "./workloads.js"

// the records of the expiry workload
const Expiring = Resource.make("Expiring", {
  fields: characterFields,
  primaryKey: ["id"],
  inactivityTimeout: `${idleTimeoutMs} millis`
})

const query = Query.make(Character).pipe(
  Query.filter(Filter.gte("currentYear", filteredQuery.minYear)),
  Query.sort("name", "desc"),
  Query.limit(filteredQuery.limit)
)

/** Heap bytes of the records' own data, to subtract from a record's cost. */
const ownData = (count: number) =>
  measureHeap(count, Effect.sync(() => Array.from({ length: count }, (_, i) => makeRecord(i))))

/** The expiry of `count` idle records: time to drain them all, and get latency meanwhile. */
const expiry = (count: number) =>
  Effect.gen(function*() {
    const events = yield* Store.subscribe
    for (let i = 0; i < count; i++) yield* Store.create(Expiring, "create", makeRecord(i))
    const released = performance.now()
    const drained = yield* Deferred.make<number>()
    let destroyed = 0
    // a probe calling another resource while the records expire
    const samples: Array<number> = []
    const probe = yield* Effect.forkChild(
      Effect.gen(function*() {
        let i = 0
        while (!(yield* Deferred.isDone(drained))) {
          const start = performance.now()
          yield* Store.get(Character, { id: keyOf(indexFor(i++, 1_000)) })
          samples.push(performance.now() - start)
          // one call per millisecond: a busy loop of yields would starve the event loop's timers
          yield* Effect.sleep("1 millis")
        }
      })
    )
    yield* Effect.forkChild(
      Effect.gen(function*() {
        while (destroyed < count) {
          const batch = yield* PubSub.takeAll(events)
          for (const e of batch) if (e._tag === "Destroyed" && e.resource === "Expiring") destroyed++
        }
        yield* Deferred.succeed(drained, performance.now())
      })
    )
    // bounded: a drain that stalls is reported, not waited on forever
    const end = yield* Deferred.await(drained).pipe(
      Effect.timeoutOrElse({ duration: "120 seconds", orElse: () => Effect.succeed(Number.NaN) })
    )
    if (Number.isNaN(end)) {
      yield* Fiber.interrupt(probe)
      const stalled: Measurement = {
        value: Number.NaN,
        unit: "ms",
        higherIsBetter: false,
        note: `STALLED: ${destroyed} of ${count} records expired within 120 s`
      }
      return { drain: stalled, p99: { ...stalled, unit: "µs" } }
    }
    yield* Fiber.join(probe)
    samples.sort((a, b) => a - b)
    const drainMs = end - released - idleTimeoutMs
    return {
      drain: {
        value: drainMs,
        unit: "ms",
        higherIsBetter: false,
        note: `${count} records, ${idleTimeoutMs} ms idle timeout: ${
          (end - released).toFixed(0)
        } ms from release to the last Destroyed, less the timeout`
      } satisfies Measurement,
      p99: {
        value: percentile(samples, 0.99) * 1000,
        unit: "µs",
        higherIsBetter: false,
        note: `${samples.length} gets of another resource during the drain; p50 ${
          (percentile(samples, 0.5) * 1000).toFixed(0)
        } µs`
      } satisfies Measurement
    }
  })

registerOurs({
  name: "effect-gen-server",
  run: (size, options) =>
    Effect.gen(function*() {
      const results: Array<OursResult> = []
      const add = (workload: string, measurement: Measurement) => results.push({ workload, measurement })
      const { budget, callers } = options

      const own = yield* ownData(size)
      const created = yield* measureHeap(
        size,
        Effect.gen(function*() {
          for (let i = 0; i < size; i++) yield* Store.create(Character, "create", makeRecord(i))
        })
      )
      add(Workload.create.name, created.rate)
      add(Workload.memory.name, {
        ...created.bytesPerItem,
        value: created.bytesPerItem.value - own.bytesPerItem.value,
        note: `${created.bytesPerItem.value.toFixed(0)} B per live idle record less ${
          own.bytesPerItem.value.toFixed(0)
        } B of its own data (fiber, mailbox, Ref, registry entry, deadline)`
      })

      const get = (i: number) => Store.get(Character, { id: keyOf(indexFor(i, size)) })
      const year = years(size)
      const update = (i: number) => {
        const index = indexFor(i, size)
        return Store.update(Character, { id: keyOf(index) }, "update", { currentYear: year.next(index) })
      }
      add(Workload.get1.name, yield* measureOps(get, { budget }))
      add(Workload.get64.name, yield* measureOps(get, { budget, callers }))
      add(Workload.update1.name, yield* measureOps(update, { budget }))
      add(Workload.update64.name, yield* measureOps(update, { budget, callers }))
      const getLatency = yield* measureLatency(get, { budget: latencyBudget(budget, size), callers })
      add(Workload.p50.name, getLatency.p50)
      add(Workload.p99.name, getLatency.p99)
      const updateLatency = yield* measureLatency(update, { budget: latencyBudget(budget, size), callers })
      add("update p50 x64", updateLatency.p50)
      add("update p99 x64", updateLatency.p99)
      add(Workload.read.name, yield* measureOps(() => Store.read(query), { budget }))

      // at most 100k records expire at once: a million would take minutes of the run
      const expiring = Math.min(size, options.smoke ? size : 100_000)
      const expired = yield* expiry(expiring)
      add(Workload.expiry.name, expired.drain)
      add("get p99 during expiry", expired.p99)
      collectGarbage()
      return results
    }).pipe(Effect.scoped, Effect.provide(Store.layer([Character, Expiring])))
})

/**
 * The records of the hibernation workloads: the benchmark's Character with
 * `hibernateAfter` and `restart: "lastState"` (no create input kept).
 */
const sleepy = (hibernateMillis: number) =>
  Resource.make("Sleepy", {
    fields: characterFields,
    primaryKey: ["id"],
    inactivityTimeout: "1 hour",
    restart: "lastState",
    hibernateAfter: `${hibernateMillis} millis`
  })

/** heapUsed after collections until it stops falling (at most four). */
const settledHeap = () => {
  let used = Infinity
  for (let i = 0; i < 4; i++) {
    collectGarbage()
    const now = process.memoryUsage().heapUsed
    if (now >= used) break
    used = now
  }
  return used
}

const gauge = (resource: string) =>
  Effect.map(Metric.value(Metric.withAttributes(Metrics.hibernating, { resource })), (g) => g.value)
const wakeCount = (resource: string) =>
  Effect.map(Metric.value(Metric.withAttributes(Metrics.wakes, { resource })), (c) => c.count)

registerOurs({
  name: "effect-gen-server hibernateAfter",
  run: (size, options) => {
    // long enough that the records an update round woke are still awake when the awake round
    // reaches them (each round lasts at most the budget's time), short enough to wait for
    const hibernateMillis = options.smoke ? 200 : 2_000
    const Sleepy = sleepy(hibernateMillis)
    return Effect.gen(function*() {
      const results: Array<OursResult> = []
      const { budget, callers } = options
      const asleep = gauge(Sleepy.name)
      const wakes = wakeCount(Sleepy.name)

      // what the previous suite's records left (interrupted fibers, their finalizers) goes first: a
      // full collection right after closing a store of a million records does not free all of it
      yield* Effect.sleep("200 millis")
      settledHeap()
      const own = yield* ownData(size)
      const before = settledHeap()
      for (let i = 0; i < size; i++) yield* Store.create(Sleepy, "create", makeRecord(i))
      // idle until every record sleeps (bounded: a record that never sleeps shows in the note)
      const deadline = performance.now() + hibernateMillis + 60_000
      while ((yield* asleep) < size && performance.now() < deadline) yield* Effect.sleep("50 millis")
      const sleeping = yield* asleep
      const perRecord = (settledHeap() - before) / size
      results.push({
        workload: Workload.memoryHibernated.name,
        measurement: {
          value: canMeasureHeap() ? perRecord - own.bytesPerItem.value : Number.NaN,
          unit: "B/item",
          higherIsBetter: false,
          note: `${perRecord.toFixed(0)} B per record less ${
            own.bytesPerItem.value.toFixed(0)
          } B of its own data; ${sleeping} of ${size} asleep (hibernateAfter ${hibernateMillis} ms, restart lastState)`
        }
      })

      const year = years(size)
      const update = (i: number) => {
        const index = indexFor(i, size)
        return Store.update(Sleepy, { id: keyOf(index) }, "update", { currentYear: year.next(index) })
      }
      /** `count` updates from the `from`-th key on (each key once while `count` <= size), within the budget's time. */
      const round = (from: number, count: number, timeMs: number) =>
        Effect.gen(function*() {
          const woke = yield* wakes
          const started = performance.now()
          const deadline = started + timeMs
          let done = 0
          while (done < count && ((done & 15) !== 0 || performance.now() < deadline)) yield* update(from + done++)
          const ms = performance.now() - started
          return { done, ms, rate: done / (ms / 1000), woke: (yield* wakes) - woke }
        })
      const warm = Math.min(Math.floor(size / 10), budget.warmupMaxOps)
      yield* round(0, warm, budget.warmupMs)
      const limit = Math.min(size - warm, budget.maxOps)
      const first = yield* round(warm, limit, budget.timeMs)
      // the same records again, awake now (woken less than hibernateAfter ago)
      const second = yield* round(warm, first.done, Infinity)
      results.push({
        workload: Workload.update1Hibernated.name,
        measurement: {
          value: first.rate,
          unit: "ops/s",
          higherIsBetter: true,
          note: `${first.done} updates in ${
            first.ms.toFixed(0)
          } ms, each on another record, ${first.woke} of them woke it`
        }
      })
      results.push({
        workload: Workload.update1Hibernated.name,
        baseline: "effect-gen-server awake (same records)",
        measurement: {
          value: second.rate,
          unit: "ops/s",
          higherIsBetter: true,
          note: `the same ${second.done} updates right after, in ${
            second.ms.toFixed(0)
          } ms; ${second.woke} woke a record`
        }
      })

      // 64 callers on keys no round touched yet: the records asleep at the start, woken as they are called
      const offset = warm + first.done
      const woke = yield* wakes
      const latency = yield* measureLatency((i) => update(offset + i), { budget: latencyBudget(budget, size), callers })
      const woken = (yield* wakes) - woke
      const note = (m: Measurement) => ({
        ...m,
        note: `${m.note}; hibernateAfter ${hibernateMillis} ms, ${woken} records woken (warm-up included)`
      })
      results.push({ workload: Workload.updateP50Hibernated.name, measurement: note(latency.p50) })
      results.push({ workload: Workload.updateP99Hibernated.name, measurement: note(latency.p99) })
      collectGarbage()
      return results
    }).pipe(Effect.scoped, Effect.provide(Store.layer([Sleepy])))
  }
})
