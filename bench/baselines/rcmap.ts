/**
 * `RcMap` baselines: Effect's own keyed, reference-counted resources with an
 * idle time-to-live, the closest built-in to "records that clean themselves
 * up after inactivity".
 *
 * Each entry holds a `Ref` of the record, acquired on a key's first
 * `RcMap.get` and finalized when it has been idle for `idleTimeoutMs`. The
 * drain figure runs on the real clock: every entry is held by one scope;
 * closing it releases them one after another (each release starts that
 * entry's idle clock and forks the fiber that will expire it); the figure is
 * the time from the last release to the last finalizer, less the timeout,
 * waited for at most `drainLimitMs`.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Exit, RcMap, Ref, Scope } from "effect"
import type { BaselineReport, BaselineResult, Options } from "../harness.js"
import { baseline, measureHeap, measureOps, progress } from "../harness.js"
import type { SampleRecord } from "../workloads.js"
import {
  idleTimeoutMs,
  indexFor,
  keyOf,
  lessRecordData,
  makeRecord,
  measureRecordData,
  Workload
} from "../workloads.js"

/**
 * The drain stops being waited for after this long.
 *
 * @category constants
 * @since 0.1.0
 */
export const drainLimitMs = 120_000

/**
 * Measures the `RcMap` baselines at one size.
 *
 * @category baselines
 * @since 0.1.0
 */
export const run = Effect.fnUntraced(function*(size: number, options: Options) {
  const { budget, callers } = options
  const keys = Array.from({ length: size }, (_, i) => keyOf(i))
  let finalized = 0
  let lastFinalizedAt = 0
  const mapScope = yield* Scope.make()
  const map = yield* RcMap.make({
    lookup: (key: string) =>
      Effect.acquireRelease(
        Ref.make<SampleRecord>(makeRecord(Number(key.slice(3)))),
        () =>
          Effect.sync(() => {
            finalized++
            lastFinalizedAt = performance.now()
          })
      ),
    idleTimeToLive: Duration.millis(idleTimeoutMs)
  }).pipe(Scope.provide(mapScope))

  const data = yield* measureRecordData(size)
  // create: the first get of each key acquires its entry; `holder` keeps them.
  const holder = yield* Scope.make()
  const created = yield* measureHeap(
    size,
    Effect.gen(function*() {
      for (let i = 0; i < size; i++) {
        yield* RcMap.get(map, keys[i]!).pipe(Scope.provide(holder))
      }
    })
  )
  yield* progress(`rcmap ${size}: acquired in ${created.elapsedMs.toFixed(0)} ms`)
  const name = "RcMap.get + Ref.get, held key"
  const get = (i: number) => Effect.scoped(Effect.flatMap(RcMap.get(map, keys[indexFor(i, size)]!), Ref.get))
  const results: Array<BaselineResult> = [
    baseline(Workload.create.name, size, "RcMap.get, new key (acquire)", created.rate),
    baseline(
      Workload.memory.name,
      size,
      "RcMap entry+Ref+holder finalizer",
      lessRecordData(created.bytesPerItem, data, "entry")
    ),
    baseline(Workload.get1.name, size, name, yield* measureOps(get, { budget })),
    baseline(Workload.get64.name, size, name, yield* measureOps(get, { budget, callers }))
  ]

  // Drain: release every entry, wait for the idle timeout to finalize them all.
  yield* progress(`rcmap ${size}: releasing ${size} entries, ttl ${idleTimeoutMs} ms`)
  const start = performance.now()
  yield* Scope.close(holder, Exit.void)
  const released = performance.now()
  while (finalized < size && performance.now() - start < drainLimitMs) {
    yield* Effect.sleep(Duration.millis(1))
  }
  const notes: Array<string> = []
  if (finalized < size) {
    notes.push(`RcMap ${size}: only ${finalized} of ${size} entries finalized within ${drainLimitMs} ms`)
  }
  results.push(baseline(Workload.expiry.name, size, `RcMap idleTimeToLive ${idleTimeoutMs} ms`, {
    // Timers fire on a whole-millisecond clock: the last entry can finalize a
    // fraction of a millisecond before the timeout has passed by this clock.
    value: finalized < size ? Number.NaN : Math.max(0, lastFinalizedAt - released - idleTimeoutMs),
    unit: "ms",
    higherIsBetter: false,
    note: `releasing ${size} held entries took ${
      (released - start).toFixed(0)
    } ms; the last of ${finalized} finalized ${
      (lastFinalizedAt - released).toFixed(1)
    } ms after the last release, less the ${idleTimeoutMs} ms timeout`
  }))
  yield* Scope.close(mapScope, Exit.void)
  return { results, notes } satisfies BaselineReport
})
