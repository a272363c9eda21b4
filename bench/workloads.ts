/**
 * The workloads every implementation is measured on, the sample records they
 * run over, and the place where effect-gen-server's own measurements plug in.
 *
 * A baseline and effect-gen-server meet in the table when they report the same
 * workload name at the same size, in the same unit. To add the library's
 * figures, call `registerOurs` with a suite (see its example); `bench/run.ts`
 * runs every registered suite at every size after the baselines.
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"
import { Resource } from "effect-gen-server"
import type { Measurement, Options } from "./harness.js"
import { measureHeap } from "./harness.js"

/**
 * The workloads, in table order, with the unit both sides must report.
 *
 * - `create`: make `size` records from nothing (spawn a server, register it).
 * - `get x1` / `get x64`: get a record by primary key, 1 or 64 concurrent
 *   callers, keys spread over `size` live records.
 * - `update x1` / `update x64`: a call that replaces one field and replies with
 *   the new record.
 * - `get p50 x64` / `get p99 x64` (and `update ...`): latency of a call under
 *   64 callers, closed-loop (see `measureLatency`): mean latency x throughput
 *   = 64.
 * - `memory/record`: heap bytes per idle record less the record's own data
 *   (`measureRecordData`): what keeping a record alive costs beyond its fields.
 *   OTP: `erlang:memory(processes)` per process less the state map's size.
 * - `read filter+sort+10`: `filteredQuery` over `size` records.
 * - `idle expiry drain`: with a 50 ms idle timeout, the time from the last
 *   activity on any of `size` records (RcMap: the last release of a held
 *   entry; effect-gen-server: the last create) until the last of them has
 *   expired and been finalized (the last `Destroyed` event), less the 50 ms:
 *   the expiry backlog. 0 is perfect.
 * - `memory/record hibernated`: `memory/record` of records asleep
 *   (`hibernateAfter`; OTP: `gen_server:start` with `{hibernate_after, 0}`).
 * - `update x1 hibernated`: an update that wakes a sleeping record (OTP: a
 *   call to a hibernated process, which hibernates again once it replied).
 * - `update p50 x64 hibernated` / `update p99 x64 hibernated`: update latency
 *   under 64 callers with hibernation on, the records asleep at the start.
 *
 * @category workloads
 * @since 0.1.0
 */
export const Workload = {
  create: { name: "create", unit: "ops/s", higherIsBetter: true },
  get1: { name: "get x1", unit: "ops/s", higherIsBetter: true },
  get64: { name: "get x64", unit: "ops/s", higherIsBetter: true },
  update1: { name: "update x1", unit: "ops/s", higherIsBetter: true },
  update64: { name: "update x64", unit: "ops/s", higherIsBetter: true },
  p50: { name: "get p50 x64", unit: "µs", higherIsBetter: false },
  p99: { name: "get p99 x64", unit: "µs", higherIsBetter: false },
  updateP50: { name: "update p50 x64", unit: "µs", higherIsBetter: false },
  updateP99: { name: "update p99 x64", unit: "µs", higherIsBetter: false },
  memory: { name: "memory/record", unit: "B/item", higherIsBetter: false },
  read: { name: "read filter+sort+10", unit: "ops/s", higherIsBetter: true },
  expiry: { name: "idle expiry drain", unit: "ms", higherIsBetter: false },
  memoryHibernated: { name: "memory/record hibernated", unit: "B/item", higherIsBetter: false },
  update1Hibernated: { name: "update x1 hibernated", unit: "ops/s", higherIsBetter: true },
  updateP50Hibernated: { name: "update p50 x64 hibernated", unit: "µs", higherIsBetter: false },
  updateP99Hibernated: { name: "update p99 x64 hibernated", unit: "µs", higherIsBetter: false }
} as const

/**
 * A workload's name as printed in the table.
 *
 * @category workloads
 * @since 0.1.0
 */
export type WorkloadName = (typeof Workload)[keyof typeof Workload]["name"]

/**
 * Table order of the workloads.
 *
 * @category workloads
 * @since 0.1.0
 */
export const workloadOrder: ReadonlyArray<string> = Object.values(Workload).map((w) => w.name)

/**
 * The idle timeout of the `idle expiry drain` workload.
 *
 * @category workloads
 * @since 0.1.0
 */
export const idleTimeoutMs = 50

/**
 * The record every implementation stores: the shape of the `Character`
 * resource of DESIGN.md. `bench/beam/gen_bench.erl` builds the same maps.
 *
 * @category records
 * @since 0.1.0
 */
export interface SampleRecord {
  readonly id: string
  readonly name: string
  readonly nickname?: string
  readonly currentYear: number
}

/**
 * The primary key of the `i`-th record.
 *
 * @category records
 * @since 0.1.0
 */
export const keyOf = (i: number): string => `id-${i}`

/**
 * The `i`-th record: names are distinct, years run 1900..1999 so the filtered
 * query selects a fifth of the records.
 *
 * @category records
 * @since 0.1.0
 */
export const makeRecord = (i: number): SampleRecord => ({
  id: keyOf(i),
  name: `name-${i}`,
  currentYear: 1900 + (i % 100)
})

/**
 * Heap bytes per record of `count` records' own data (`makeRecord(i)` held in
 * an array), to subtract from a record's cost in `memory/record`.
 *
 * @category records
 * @since 0.1.0
 */
export const measureRecordData = (count: number): Effect.Effect<Measurement> =>
  Effect.map(
    measureHeap(count, Effect.sync(() => Array.from({ length: count }, (_, i) => makeRecord(i)))),
    (measured) => measured.bytesPerItem
  )

/**
 * Subtracts the records' own data from a per-record heap figure.
 *
 * @category records
 * @since 0.1.0
 */
export const lessRecordData = (perRecord: Measurement, data: Measurement, what: string): Measurement => ({
  ...perRecord,
  value: perRecord.value - data.value,
  note: `${perRecord.value.toFixed(0)} B per ${what} less ${data.value.toFixed(0)} B of record data; ${
    perRecord.note ?? ""
  }`
})

/**
 * The fields of the sample record as an effect-gen-server resource.
 *
 * @category records
 * @since 0.1.0
 */
export const characterFields = {
  id: Schema.String,
  name: Schema.String,
  nickname: Schema.optionalKey(Schema.String),
  currentYear: Schema.Int
}

/**
 * The `Character` of DESIGN.md, the resource of the effect-gen-server
 * workloads, with an inactivity timeout so that activity tracking is paid for.
 *
 * @category records
 * @since 0.1.0
 */
export const Character = Resource.make("Character", {
  fields: characterFields,
  primaryKey: ["id"],
  inactivityTimeout: "1 hour"
})

/**
 * The key the `i`-th operation of a workload addresses: a fixed stride through
 * `size` records, so consecutive calls hit different records.
 *
 * @category records
 * @since 0.1.0
 */
export const indexFor = (i: number, size: number): number => (i * 7919) % size

/**
 * The years the updates of `size` records set: `next(index)` is never the
 * year record `index` holds (its create's, `makeRecord`, or the one its
 * previous update set), so that every update writes, however the runs
 * number their calls: an update that changes no field commits nothing, and
 * would measure less than the write it stands for.
 */
export const years = (size: number): { readonly next: (index: number) => number } => {
  const offsets = new Uint8Array(size)
  return {
    next: (index) => {
      // 1 to 99 and round again: never 0 (the create's year), never the previous offset
      const offset = offsets[index] = (offsets[index]! % 99) + 1
      return 1900 + ((index % 100) + offset) % 100
    }
  }
}

/**
 * The filtered read, the same everywhere: `currentYear >= 1980`, sorted by
 * `name` descending, first 10. With effect-gen-server:
 * `Query.filter(Filter.gte("currentYear", 1980))`, `Query.sort("name", "desc")`,
 * `Query.limit(10)`.
 *
 * @category records
 * @since 0.1.0
 */
export const filteredQuery = {
  minYear: 1980,
  limit: 10,
  matches: (r: SampleRecord): boolean => r.currentYear >= 1980,
  compare: (a: SampleRecord, b: SampleRecord): number => a.name < b.name ? 1 : a.name > b.name ? -1 : 0
} as const

/**
 * What a suite of effect-gen-server workloads reports: figures by workload
 * name for one size.
 *
 * @category ours
 * @since 0.1.0
 */
export interface OursResult {
  readonly workload: WorkloadName | (string & {})
  readonly measurement: Measurement
  /** When set, the figure is a baseline of the workload under this name (e.g. the library without an option). */
  readonly baseline?: string | undefined
}

/**
 * A suite of effect-gen-server workloads. `run` is called once per size, so a
 * suite can create its records once and measure every workload over them.
 *
 * @category ours
 * @since 0.1.0
 */
export interface OursSuite {
  readonly name: string
  readonly run: (size: number, options: Options) => Effect.Effect<ReadonlyArray<OursResult>, unknown>
}

/**
 * The registered suites; empty until the library's workloads are added.
 *
 * @category ours
 * @since 0.1.0
 */
export const oursSuites: Array<OursSuite> = []

/**
 * Adds a suite of effect-gen-server workloads to the benchmark.
 *
 * **Example** (Measuring `Store.get`)
 *
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Store } from "effect-gen-server"
 * import { measureOps } from "./harness.js"
 * import { indexFor, keyOf, registerOurs, Workload } from "./workloads.js"
 *
 * registerOurs({
 *   name: "Store",
 *   run: (size, options) =>
 *     Effect.gen(function*() {
 *       // ... create `size` records with makeRecord(i) ...
 *       const get = yield* measureOps(
 *         (i) => Store.get(Character, { id: keyOf(indexFor(i, size)) }),
 *         { budget: options.budget }
 *       )
 *       return [{ workload: Workload.get1.name, measurement: get }]
 *     }).pipe(Effect.provide(Store.layer([Character])))
 * })
 * ```
 *
 * @category ours
 * @since 0.1.0
 */
export const registerOurs = (suite: OursSuite): void => {
  oursSuites.push(suite)
}
