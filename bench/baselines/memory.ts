/**
 * The memory data layer of effect-gen-server: the same Store and resources,
 * records in a `Map` with no fibers (actions run in the caller's fiber under
 * a per-record lock). What the fibers cost, measured on the same workloads.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { Filter, Query, Store } from "effect-gen-server"
import type { BaselineReport, BaselineResult, Options } from "../harness.js"
import { baseline, measureHeap, measureOps } from "../harness.js"
import { Character, filteredQuery, indexFor, keyOf, makeRecord, Workload } from "../workloads.js"

const name = "effect-gen-server memory data layer"

/**
 * Runs the memory data layer's workloads at one size.
 *
 * @category baselines
 * @since 0.1.0
 */
export const run = (size: number, options: Options): Effect.Effect<BaselineReport, unknown> =>
  Effect.gen(function*() {
    const { budget, callers } = options
    const results: Array<BaselineResult> = []
    const created = yield* measureHeap(
      size,
      Effect.gen(function*() {
        for (let i = 0; i < size; i++) yield* Store.create(Character, "create", makeRecord(i))
      })
    )
    results.push(baseline(Workload.create.name, size, name, created.rate))
    const get = (i: number) => Store.get(Character, { id: keyOf(indexFor(i, size)) })
    const update = (i: number) =>
      Store.update(Character, { id: keyOf(indexFor(i, size)) }, "update", { currentYear: 1900 + (i % 100) })
    results.push(baseline(Workload.get1.name, size, name, yield* measureOps(get, { budget })))
    results.push(baseline(Workload.get64.name, size, name, yield* measureOps(get, { budget, callers })))
    results.push(baseline(Workload.update1.name, size, name, yield* measureOps(update, { budget })))
    results.push(baseline(Workload.update64.name, size, name, yield* measureOps(update, { budget, callers })))
    const query = Query.make(Character).pipe(
      Query.filter(Filter.gte("currentYear", filteredQuery.minYear)),
      Query.sort("name", "desc"),
      Query.limit(filteredQuery.limit)
    )
    results.push(baseline(Workload.read.name, size, name, yield* measureOps(() => Store.read(query), { budget })))
    return { results, notes: [] } satisfies BaselineReport
  }).pipe(Effect.provide(Store.layer([Character], { dataLayer: "memory" })))
