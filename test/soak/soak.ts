/**
 * Soak: a mixed load on the live clock, with short real timeouts and
 * injected crashes, then a heap check over 100k create/destroy/expiry
 * cycles.
 *
 *   node --expose-gc --import tsx test/soak/soak.ts
 *
 * Environment: `SOAK_SECONDS` (default 60) bounds the mixed load;
 * `SOAK_WORKERS` (32) concurrent callers; `SOAK_SAMPLE_SECONDS` (5) between
 * samples; `SOAK_SEED` (1) the seed of every random choice; `SOAK_CYCLES`
 * (100000) the cycles of the heap check.
 *
 * It prints, every sample: operations (total and per second), errors by type,
 * restarts, failures, expiries by reason, live records and heap; at the end a
 * summary and the heap check. It exits with 1 when something went wrong: an
 * untyped failure (a defect or an interruption reaching a caller), a call
 * that did not complete within 5 s, a read that saw `a + b !== 0`, an event
 * count that disagrees with the crashes injected, or a heap that does not
 * return near its baseline.
 */
import { Duration, Effect, Exit, Fiber, Layer, PubSub, References, Scope } from "effect"
import { Query, Store } from "../../src/index.js"
import { type Item, Journal, makeItem, type Settings } from "../fixtures/Model.js"
import { prng } from "../fixtures/Random.js"

const env = (name: string, fallback: number) => {
  const v = Number(process.env[name])
  return Number.isFinite(v) && v > 0 ? v : fallback
}
const SECONDS = env("SOAK_SECONDS", 60)
const WORKERS = env("SOAK_WORKERS", 32)
const SAMPLE = env("SOAK_SAMPLE_SECONDS", 5)
const SEED = env("SOAK_SEED", 1)
const CYCLES = env("SOAK_CYCLES", 100_000)
const CALL_BOUND = Duration.seconds(5)

const gc: () => void = (globalThis as any).gc ?? (() => {})
const hasGc = (globalThis as any).gc !== undefined
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`
const delta = (bytes: number) => `${bytes < 0 ? "-" : "+"}${mb(Math.abs(bytes))}`
const heap = () => {
  gc()
  return process.memoryUsage().heapUsed
}

// short real timeouts, every restart policy
const soakSettings: Record<string, Settings> = {
  Session: { idleMs: 300, lifeMs: undefined, restart: "initial", maxRestarts: 3, withinMs: 5_000 },
  Ticket: { idleMs: undefined, lifeMs: 800, restart: "lastState", maxRestarts: 5, withinMs: 1_000 },
  Fragile: { idleMs: 500, lifeMs: 2_000, restart: "never", maxRestarts: 3, withinMs: 5_000 },
  Durable: { idleMs: undefined, lifeMs: undefined, restart: "lastState", maxRestarts: 1_000, withinMs: 1_000 }
}
const soakResources = Object.entries(soakSettings).map(([name, s]) => makeItem(name, s))

const KEYS = 500

/** The destroy hooks write to a journal: here one that keeps nothing, so it is not what the heap figures measure. */
const journalLayer = () => {
  const entries: Array<string> = []
  entries.push = () => 0
  return Layer.succeed(Journal, Journal.of({ entries }))
}

// ---------------------------------------------------------------------------
// Mixed load
// ---------------------------------------------------------------------------

const mixedLoad = Effect.gen(function*() {
  const random = prng(SEED)
  const pick = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(random() * xs.length)]!
  const stats = {
    ops: 0,
    byOp: new Map<string, number>(),
    errors: new Map<string, number>(),
    untyped: [] as Array<string>,
    hung: 0,
    torn: 0,
    crashesInjected: 0,
    crashesReported: 0,
    events: new Map<string, number>()
  }
  const bump = (m: Map<string, number>, k: string, by = 1) => m.set(k, (m.get(k) ?? 0) + by)

  const events = yield* Store.subscribe
  const eventPump = yield* Effect.forkChild(
    Effect.forever(
      Effect.map(PubSub.takeAll(events), (batch) => {
        for (const e of batch) bump(stats.events, e._tag === "Destroyed" ? `Destroyed(${e.reason})` : e._tag)
      })
    )
  )

  const op = (): readonly [string, Effect.Effect<unknown, { readonly _tag: string }, Store.Store>] => {
    const r = pick(soakResources)
    const id = `k${Math.floor(random() * KEYS)}`
    const key = { id }
    const roll = random()
    if (roll < 0.25) {
      const a = Math.floor(random() * 10)
      return ["create", Store.create(r, "create", { id, a, b: -a, label: pick(["x", "y", "sticky"]) })]
    }
    if (roll < 0.45) return ["shift", Store.update(r, key, "shift", { n: Math.floor(random() * 7) - 3 })]
    if (roll < 0.5) return ["stamp", Store.update(r, key, "stamp", { text: pick(["a", "b", "c"]) })]
    if (roll < 0.55) return ["spend", Store.update(r, key, "spend", { n: Math.floor(random() * 5) })]
    if (roll < 0.57) {
      return ["crash", Store.update(r, key, "crash", { where: pick(["change", "throw", "before", "after"] as const) })]
    }
    if (roll < 0.72) return ["get", Store.get(r, key)]
    if (roll < 0.8) return ["keepAlive", Store.keepAlive(r, key)]
    if (roll < 0.9) {
      return [
        "read",
        Effect.map(Store.read(Query.make(r).pipe(Query.sort("a", "desc"), Query.limit(20))), (records) => {
          for (const rec of records) if (rec.a + rec.b !== 0) stats.torn++
          return records
        })
      ]
    }
    return ["destroy", Store.destroy(r, key, pick(["destroy", "scrap"] as const))]
  }

  const end = Date.now() + SECONDS * 1000
  const worker = Effect.gen(function*() {
    while (Date.now() < end) {
      const [name, effect] = op()
      const exit = yield* Effect.exit(Effect.timeout(effect, CALL_BOUND))
      stats.ops++
      bump(stats.byOp, name)
      if (name === "crash" && Exit.isFailure(exit)) {
        const tag = (exit.cause.reasons[0] as any)?.error?._tag
        if (tag === "RecordCrashed") stats.crashesInjected++
      }
      if (Exit.isSuccess(exit)) {
        if (name === "get") {
          const rec = exit.value as Item
          if (rec.a + rec.b !== 0) stats.torn++
        }
        continue
      }
      const reason = exit.cause.reasons[0] as any
      if (reason?._tag !== "Fail") {
        stats.untyped.push(`${name}: ${String(reason?.defect ?? reason?._tag)}`)
        continue
      }
      const tag = reason.error._tag as string
      if (tag === "TimeoutError") stats.hung++
      bump(stats.errors, tag)
      if (tag === "RecordCrashed") stats.crashesReported++
    }
  })

  const live = Effect.gen(function*() {
    let n = 0
    for (const r of soakResources) n += (yield* Store.read(Query.make(r))).length
    return n
  })

  const started = Date.now()
  const baseline = heap()
  console.log(
    `mixed load: ${WORKERS} workers for ${SECONDS} s, seed ${SEED}; heap ${mb(baseline)}${
      hasGc ? "" : " (no --expose-gc: heap figures include garbage)"
    }`
  )
  console.log(
    "   t  ops      ops/s   errors by type                                       restarts failed expired(idle/life) live  heap"
  )
  const workers = yield* Effect.forEach(Array.from({ length: WORKERS }), () => Effect.forkChild(worker))
  let lastOps = 0
  let lastT = started
  const sample = Effect.gen(function*() {
    const now = Date.now()
    const rate = Math.round(((stats.ops - lastOps) * 1000) / Math.max(1, now - lastT))
    lastOps = stats.ops
    lastT = now
    const errors = [...stats.errors].sort().map(([k, v]) => `${k}:${v}`).join(" ")
    const ev = (k: string) => stats.events.get(k) ?? 0
    console.log(
      `${String(Math.round((now - started) / 1000)).padStart(4)}  ${String(stats.ops).padEnd(8)} ${
        String(rate).padEnd(7)
      } ${errors.padEnd(52)} ${String(ev("Restarted")).padEnd(8)} ${String(ev("Failed")).padEnd(6)} ${
        `${ev("Destroyed(inactivity)")}/${ev("Destroyed(lifetime)")}`.padEnd(19)
      } ${String(yield* live).padEnd(5)} ${mb(heap())}`
    )
  })
  while (Date.now() < end) {
    yield* Effect.sleep(Duration.seconds(Math.min(SAMPLE, Math.max(0.05, (end - Date.now()) / 1000))))
    yield* sample
  }
  yield* Effect.forEach(workers, Fiber.join)
  // let the last expiries and events land
  yield* Effect.sleep("3 seconds")
  yield* sample
  yield* Fiber.interrupt(eventPump)

  const ev = (k: string) => stats.events.get(k) ?? 0
  const problems: Array<string> = []
  if (stats.untyped.length > 0) {
    problems.push(`${stats.untyped.length} untyped failures, e.g. ${stats.untyped.slice(0, 3).join("; ")}`)
  }
  if (stats.hung > 0) problems.push(`${stats.hung} calls did not complete within ${Duration.format(CALL_BOUND)}`)
  if (stats.torn > 0) problems.push(`${stats.torn} reads saw a + b !== 0`)
  if (ev("Restarted") + ev("Failed") !== stats.crashesReported) {
    problems.push(
      `Restarted ${ev("Restarted")} + Failed ${ev("Failed")} != RecordCrashed replies ${stats.crashesReported}`
    )
  }
  console.log(`\nmixed load: ${stats.ops} operations in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  console.log(`  by operation: ${[...stats.byOp].sort().map(([k, v]) => `${k} ${v}`).join(", ")}`)
  console.log(`  errors by type: ${[...stats.errors].sort().map(([k, v]) => `${k} ${v}`).join(", ")}`)
  console.log(`  events: ${[...stats.events].sort().map(([k, v]) => `${k} ${v}`).join(", ")}`)
  console.log(
    `  crashes injected and reported: ${stats.crashesReported}; Restarted + Failed: ${ev("Restarted") + ev("Failed")}`
  )
  return problems
})

// ---------------------------------------------------------------------------
// Heap check: 100k create/destroy and expiry cycles
// ---------------------------------------------------------------------------

const withStore = <A, E>(
  resources: ReadonlyArray<ReturnType<typeof makeItem>>,
  body: Effect.Effect<A, E, Store.Store>
) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      Store.layer(resources).pipe(Layer.provide(journalLayer())) as Layer.Layer<Store.Store>,
      scope
    )
    const result = yield* Effect.provideContext(body, context)
    yield* Scope.close(scope, Exit.void)
    return result
  })

const heapCheck = Effect.gen(function*() {
  const problems: Array<string> = []
  // destroyed by action (inactivity timeout 2 s: its deadlines outlive the records), expired after 100 ms idle
  const Churn = makeItem("Churn", {
    idleMs: 2_000,
    lifeMs: undefined,
    restart: "initial",
    maxRestarts: 3,
    withinMs: 5_000
  })
  const Fleeting = makeItem("Fleeting", {
    idleMs: 100,
    lifeMs: undefined,
    restart: "initial",
    maxRestarts: 3,
    withinMs: 5_000
  })
  const Plain = makeItem("PlainChurn", {
    idleMs: undefined,
    lifeMs: undefined,
    restart: "lastState",
    maxRestarts: 3,
    withinMs: 5_000
  })
  const LongIdle = makeItem("LongIdle", {
    idleMs: 3_600_000,
    lifeMs: undefined,
    restart: "initial",
    maxRestarts: 3,
    withinMs: 5_000
  })

  console.log(
    `\nheap check: ${CYCLES} create/destroy and expiry cycles${
      hasGc ? "" : " (run with --expose-gc for exact figures)"
    }`
  )
  const report = yield* withStore(
    [Churn, Fleeting, Plain, LongIdle],
    Effect.gen(function*() {
      // warm up, then the baseline
      for (let i = 0; i < 1_000; i++) {
        const r = yield* Store.create(Plain, "create", { id: `w${i}`, a: 0, b: 0, label: "x" })
        yield* Store.destroy(Plain, r)
      }
      const baseline = heap()
      const t0 = Date.now()
      const third = Math.floor(CYCLES / 3)
      for (let i = 0; i < third; i++) {
        const r = yield* Store.create(Plain, "create", { id: `p${i}`, a: i, b: -i, label: "x" })
        yield* Store.update(Plain, r, "shift", { n: 1 })
        yield* Store.destroy(Plain, r)
      }
      const afterPlain = heap()
      for (let i = 0; i < third; i++) {
        const r = yield* Store.create(Churn, "create", { id: `c${i}`, a: i, b: -i, label: "x" })
        yield* Store.destroy(Churn, r)
      }
      const afterChurn = heap()
      const rest = CYCLES - 2 * third
      for (let i = 0; i < rest; i += 1_000) {
        for (let j = i; j < Math.min(rest, i + 1_000); j++) {
          yield* Store.create(Fleeting, "create", { id: `f${j}`, a: 0, b: 0, label: "x" })
        }
        yield* Effect.sleep("5 millis")
      }
      const peak = heap()
      // every deadline has passed: destroyed records' deadlines (2 s) and the fleeting records' expiry (100 ms)
      yield* Effect.sleep("2500 millis")
      let left = 0
      for (const r of [Churn, Fleeting, Plain]) left += (yield* Store.read(Query.make(r))).length
      const after = heap()
      // a long inactivity timeout: destroyed records wait in the expiry queue until their deadline
      const retained = 20_000
      for (let i = 0; i < retained; i++) {
        const r = yield* Store.create(LongIdle, "create", { id: `l${i}`, a: 0, b: 0, label: "x" })
        yield* Store.destroy(LongIdle, r)
      }
      const withLongIdle = heap()
      return {
        baseline,
        afterPlain,
        afterChurn,
        peak,
        after,
        left,
        withLongIdle,
        retained,
        seconds: (Date.now() - t0) / 1000
      }
    })
  )
  const closed = heap()
  const { after, afterChurn, afterPlain, baseline, left, peak, retained, seconds, withLongIdle } = report
  console.log(`  baseline (store built, warmed up)             ${mb(baseline)}`)
  console.log(
    `  after ${Math.floor(CYCLES / 3)} create/update/destroy (no timeouts)   ${mb(afterPlain)}  (${
      delta(afterPlain - baseline)
    })`
  )
  console.log(
    `  after ${Math.floor(CYCLES / 3)} create/destroy (2 s inactivity)    ${mb(afterChurn)}  (${
      delta(afterChurn - baseline)
    }) before their deadlines`
  )
  console.log(
    `  after ${CYCLES - 2 * Math.floor(CYCLES / 3)} creates left to expire (100 ms)     ${mb(peak)}  (${
      delta(peak - baseline)
    })`
  )
  console.log(
    `  every deadline passed, ${left} records left      ${mb(after)}  (${delta(after - baseline)})  in ${
      seconds.toFixed(1)
    } s`
  )
  console.log(
    `  ${retained} create/destroy with a 1 h inactivity timeout ${mb(withLongIdle)}  (${delta(withLongIdle - after)}, ${
      Math.round((withLongIdle - after) / retained)
    } B per destroyed record)`
  )
  console.log(`  store closed                                  ${mb(closed)}`)
  const tolerance = 8 * 1024 * 1024
  if (left !== 0) problems.push(`${left} records left after every deadline passed`)
  if (hasGc && after - baseline > tolerance) {
    problems.push(`heap did not return near its baseline: +${mb(after - baseline)}`)
  }
  if (hasGc && afterPlain - baseline > tolerance) {
    problems.push(`create/destroy without timeouts grows the heap: +${mb(afterPlain - baseline)}`)
  }
  if (hasGc && withLongIdle - after > tolerance) {
    problems.push(
      `destroyed records are retained until their inactivity deadline: +${
        mb(withLongIdle - after)
      } for ${retained} destroyed records (see test/Leaks.test.ts)`
    )
  }
  return problems
})

const main = Effect.gen(function*() {
  const problems = yield* mixedLoad.pipe(
    Effect.scoped,
    Effect.provide(Store.layer(soakResources).pipe(Layer.provide(journalLayer())) as Layer.Layer<Store.Store>)
  )
  problems.push(...(yield* heapCheck))
  console.log(
    problems.length === 0 ? "\nsoak: OK" : `\nsoak: ${problems.length} problem(s)\n  - ${problems.join("\n  - ")}`
  )
  return problems.length === 0
})

// expiries of "sticky" records log a warning each: keep the output to the figures
Effect.runPromise(main.pipe(Effect.provideService(References.MinimumLogLevel, "Error"))).then(
  (ok) => process.exit(ok ? 0 : 1),
  (error) => {
    console.error(error)
    process.exit(2)
  }
)
