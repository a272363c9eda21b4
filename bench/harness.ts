/**
 * Benchmark harness: throughput, latency percentiles and heap per item of
 * Effect workloads, and the one table that compares effect-gen-server with
 * its baselines.
 *
 * Every figure comes from a run of the workload on this machine: a warm-up,
 * then as many operations as fit in a time budget, bounded by a maximum count.
 * Heap figures need `global.gc` (node `--expose-gc`); without it they are
 * reported as not measured rather than guessed.
 *
 * @since 0.1.0
 */
import { Clock, type Duration, Effect, Exit } from "effect"
import { GCProfiler } from "node:v8"

/**
 * One measured figure.
 *
 * @category models
 * @since 0.1.0
 */
export interface Measurement {
  readonly value: number
  readonly unit: string
  readonly higherIsBetter: boolean
  /** How it was obtained: operation count, elapsed time, bounds that applied. */
  readonly note?: string | undefined
}

/**
 * A figure of a reference implementation, named as it appears in the table.
 *
 * @category models
 * @since 0.1.0
 */
export interface Baseline extends Measurement {
  readonly name: string
}

/**
 * One workload at one size: effect-gen-server's figure when it has one, and
 * every baseline measured for it. Each baseline is one row of the table.
 *
 * @category models
 * @since 0.1.0
 */
export interface WorkloadEntry {
  readonly workload: string
  readonly size: number
  readonly ours?: Measurement | undefined
  readonly baselines: ReadonlyArray<Baseline>
}

/**
 * How long a throughput or latency measurement runs.
 *
 * @category models
 * @since 0.1.0
 */
export interface Budget {
  readonly warmupMs: number
  readonly warmupMaxOps: number
  readonly timeMs: number
  readonly maxOps: number
}

/**
 * The command-line options every part of the benchmark shares.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly smoke: boolean
  readonly sizes: ReadonlyArray<number>
  readonly budget: Budget
  /** Concurrent callers of the "x64" workloads: 64. */
  readonly callers: number
}

/**
 * Budgets: a full run measures each figure for 1.5 s; `--smoke` for a few
 * hundred operations.
 *
 * @category constructors
 * @since 0.1.0
 */
export const budgets = {
  full: { warmupMs: 300, warmupMaxOps: 1_000_000, timeMs: 1_500, maxOps: 5_000_000 },
  smoke: { warmupMs: 20, warmupMaxOps: 100, timeMs: 150, maxOps: 400 }
} as const satisfies Record<string, Budget>

/**
 * The budget of a latency measurement over `size` records: the timed part
 * grows with the size (the full budget's 1.5 s up to 100k records, then
 * 1.5 s per 100k, at most 20 s), so that at a million records the window
 * holds the heap's collection cycle (a major collection every 6-20 s of
 * updates) instead of whichever part of it 1.5 s falls in: the p99 of a short
 * window at 1M swung between 84 µs and 11.8 ms on a quiet machine, as one
 * collection's stall fell in it or not. The OTP baseline gets the same
 * window.
 *
 * @category constructors
 * @since 0.5.0
 */
export const latencyBudget = (budget: Budget, size: number): Budget => ({
  ...budget,
  timeMs: Math.max(budget.timeMs, Math.min(20_000, Math.round(budget.timeMs * size / 100_000)))
})

/**
 * Reads `--smoke`, `--sizes=10000,100000` (`10k`, `1M` also read) and
 * `--time=<ms>` (the timed part of each measurement) from the command line.
 *
 * @category constructors
 * @since 0.1.0
 */
export const parseOptions = (argv: ReadonlyArray<string>): Options => {
  const smoke = argv.includes("--smoke")
  const value = (name: string): string | undefined =>
    argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3)
  const sizesArg = value("sizes")
  const sizes = sizesArg !== undefined
    ? sizesArg.split(",").map((s) => parseSize(s.trim()))
    : smoke
    ? [1_000]
    : [10_000, 100_000, 1_000_000]
  const base = smoke ? budgets.smoke : budgets.full
  const time = value("time")
  const budget = time !== undefined ? { ...base, timeMs: Number(time) } : base
  return { smoke, sizes, budget, callers: 64 }
}

const parseSize = (s: string): number => {
  const match = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(s)
  if (match === null) throw new Error(`--sizes: cannot read "${s}"`)
  const n = Number(match[1]) * (match[2] === "" ? 1 : match[2]!.toLowerCase() === "k" ? 1_000 : 1_000_000)
  return Math.round(n)
}

/**
 * The outcome of running an operation repeatedly.
 *
 * @category models
 * @since 0.1.0
 */
export interface Run {
  readonly ops: number
  readonly elapsedMs: number
  /** Time V8 spent collecting garbage during the run. */
  readonly gc: GcTime
}

/**
 * Garbage collection during a run, in ms: all of it, and the full
 * (mark-compact) collections alone, as V8's `GCProfiler` reports collections
 * that finished during the run. The incremental marking steps of a full
 * collection still under way at the end are not in it: on a heap of a million
 * fibers marking takes seconds of main-thread time, longer than a whole
 * measurement, so a slow figure with little GC here can still be the GC's.
 *
 * @category models
 * @since 0.1.0
 */
export interface GcTime {
  readonly totalMs: number
  readonly fullMs: number
}

/**
 * Runs `effect` while V8's GC profiler records, and returns the time it spent
 * collecting garbage meanwhile.
 *
 * @category measuring
 * @since 0.1.0
 */
export const withGcTime = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<[A, GcTime], E, R> =>
  Effect.suspend(() => {
    const profiler = new GCProfiler()
    profiler.start()
    let stopped = false
    const stop = (): GcTime => {
      stopped = true
      let totalMs = 0
      let fullMs = 0
      for (const entry of profiler.stop()?.statistics ?? []) {
        totalMs += entry.cost / 1000
        if (entry.gcType === "MarkSweepCompact") fullMs += entry.cost / 1000
      }
      return { totalMs, fullMs }
    }
    return effect.pipe(
      Effect.map((a): [A, GcTime] => [a, stop()]),
      Effect.onExit(() =>
        Effect.sync(() => {
          if (!stopped) profiler.stop()
        })
      )
    )
  })

/**
 * Describes GC time for a note: `GC 120 ms (full 80 ms)`.
 *
 * @category measuring
 * @since 0.1.0
 */
export const formatGc = (gc: GcTime): string =>
  `GC ${gc.totalMs.toFixed(0)} ms${gc.fullMs > 0 ? ` (full ${gc.fullMs.toFixed(0)} ms)` : ""}`

/**
 * Runs `op(i)` from `callers` concurrent fibers until `timeMs` has passed or
 * `maxOps` operations have started, whichever comes first. `i` counts
 * operations across callers, so a workload can spread them over its keys.
 *
 * @category running
 * @since 0.1.0
 */
export const runFor = Effect.fnUntraced(function*<E, R>(
  op: (i: number) => Effect.Effect<unknown, E, R>,
  options: {
    readonly callers: number
    readonly timeMs: number
    readonly maxOps: number
    /**
     * Called with each operation's latency in ms, closed-loop: from the
     * caller's previous completion (or its start) to this completion, so time
     * a caller spends waiting to be scheduled between calls counts too.
     */
    readonly record?: ((ms: number) => void) | undefined
  }
) {
  const record = options.record
  let next = 0
  let done = 0
  let stop = false
  // Reading the clock costs tens of nanoseconds: once operations prove cheap,
  // only every 16th one looks at it.
  let mask = 0
  const start = performance.now()
  const deadline = start + options.timeMs
  const caller = Effect.gen(function*() {
    let last = performance.now()
    while (!stop) {
      const i = next++
      if (i >= options.maxOps) {
        stop = true
        break
      }
      if ((i & mask) === 0) {
        const now = performance.now()
        if (now >= deadline) {
          stop = true
          break
        }
        if (mask === 0 && i >= 64 && (now - start) / i < 0.01) mask = 15
      }
      yield* op(i)
      done++
      if (record !== undefined) {
        const now = performance.now()
        record(now - last)
        last = now
      }
    }
  })
  const [, gc] = yield* withGcTime(
    options.callers === 1
      ? caller
      : Effect.forEach(Array.from({ length: options.callers }), () => caller, {
        concurrency: "unbounded",
        discard: true
      })
  )
  return { ops: done, elapsedMs: performance.now() - start, gc } satisfies Run
})

/**
 * Operations per second of `op` with `callers` concurrent callers: a warm-up,
 * then a timed run within the budget.
 *
 * @category measuring
 * @since 0.1.0
 */
export const measureOps = Effect.fnUntraced(function*<E, R>(
  op: (i: number) => Effect.Effect<unknown, E, R>,
  options: { readonly budget: Budget; readonly callers?: number | undefined }
) {
  const callers = options.callers ?? 1
  const { budget } = options
  yield* runFor(op, { callers, timeMs: budget.warmupMs, maxOps: budget.warmupMaxOps })
  const run = yield* runFor(op, { callers, timeMs: budget.timeMs, maxOps: budget.maxOps })
  return opsPerSecond(run, callers)
})

/**
 * Turns a run into an ops/s measurement.
 *
 * @category measuring
 * @since 0.1.0
 */
export const opsPerSecond = (run: Run, callers = 1): Measurement => ({
  value: run.ops / (run.elapsedMs / 1000),
  unit: "ops/s",
  higherIsBetter: true,
  note: `${run.ops} ops in ${run.elapsedMs.toFixed(0)} ms, ${callers} caller${callers === 1 ? "" : "s"}, ${
    formatGc(run.gc)
  }`
})

/**
 * Latency percentiles of `op` under `callers` concurrent callers, in
 * microseconds, from every operation of a timed run after a warm-up.
 * Closed-loop: each caller issues its next call as soon as the previous one
 * completes, and a call's latency runs from that moment to its completion, so
 * the mean latency times the throughput equals the number of callers.
 *
 * @category measuring
 * @since 0.1.0
 */
export const measureLatency = Effect.fnUntraced(function*<E, R>(
  op: (i: number) => Effect.Effect<unknown, E, R>,
  options: { readonly budget: Budget; readonly callers: number }
) {
  const { budget, callers } = options
  yield* runFor(op, { callers, timeMs: budget.warmupMs, maxOps: budget.warmupMaxOps })
  const samples = new Float64Array(budget.maxOps)
  let count = 0
  const run = yield* runFor(op, {
    callers,
    timeMs: budget.timeMs,
    maxOps: budget.maxOps,
    record: (ms) => {
      samples[count++] = ms
    }
  })
  const sorted = samples.subarray(0, count).sort()
  let sum = 0
  for (let i = 0; i < sorted.length; i++) sum += sorted[i]!
  const note = `${count} calls in ${run.elapsedMs.toFixed(0)} ms, ${callers} callers, ${formatGc(run.gc)}; mean ${
    (sum / count * 1000).toFixed(0)
  } µs, p99.9 ${(percentile(sorted, 0.999) * 1000).toFixed(0)} µs, max ${(percentile(sorted, 1) * 1000).toFixed(0)} µs`
  return {
    p50: { value: percentile(sorted, 0.5) * 1000, unit: "µs", higherIsBetter: false, note },
    p99: { value: percentile(sorted, 0.99) * 1000, unit: "µs", higherIsBetter: false, note }
  } satisfies Record<string, Measurement>
})

/**
 * The `q` quantile (0..1) of sorted samples, nearest rank.
 *
 * @category measuring
 * @since 0.1.0
 */
export const percentile = (sorted: ArrayLike<number>, q: number): number =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!

/**
 * `callers` concurrent closed loops, each calling `op` again as soon as its
 * last call ended, for `ms` milliseconds of the clock, every call bounded by
 * `callTimeout`: the sorted latencies (ms) of the calls that succeeded, how
 * many failed and the first failure's cause, and the time it took.
 *
 * @category measuring
 * @since 0.3.0
 */
export const closedLoops = <R>(
  callers: number,
  ms: number,
  callTimeout: Duration.Input,
  op: (caller: number, i: number) => Effect.Effect<unknown, unknown, R>
) =>
  Effect.gen(function*() {
    const latencies: Array<number> = []
    let errors = 0
    let firstError: unknown = undefined
    const start = yield* Clock.currentTimeMillis
    const end = start + ms
    yield* Effect.forEach(Array.from({ length: callers }, (_, c) => c), (c) =>
      Effect.gen(function*() {
        let i = 0
        while ((yield* Clock.currentTimeMillis) < end) {
          const t0 = performance.now()
          const exit = yield* Effect.exit(Effect.timeout(op(c, i++), callTimeout))
          if (Exit.isSuccess(exit)) latencies.push(performance.now() - t0)
          else if (errors++ === 0) firstError = exit.cause
        }
      }), { concurrency: "unbounded", discard: true })
    const elapsed = (yield* Clock.currentTimeMillis) - start
    latencies.sort((a, b) => a - b)
    return { latencies, errors, firstError, elapsed }
  })

declare const gc: (() => void) | undefined

/**
 * Whether the process runs with `--expose-gc`, which heap figures need.
 *
 * @category measuring
 * @since 0.1.0
 */
export const canMeasureHeap = (): boolean => typeof gc === "function"

/**
 * Runs a full collection, so heapUsed reflects live objects only. Does
 * nothing without `--expose-gc`. Costly on a big heap: ~15 s with a million
 * fibers alive, so it runs once per reading.
 *
 * @category measuring
 * @since 0.1.0
 */
export const collectGarbage = (): void => {
  if (typeof gc === "function") gc()
}

/**
 * Creates `count` items with `create` and reports how long that took and how
 * many heap bytes each item holds: heapUsed after a full collection, before
 * and after, divided by `count`. The items must stay reachable from the
 * returned value (or from running fibers) until the second reading, so
 * `create` returns them.
 *
 * @category measuring
 * @since 0.1.0
 */
export const measureHeap = Effect.fnUntraced(function*<A, E, R>(
  count: number,
  create: Effect.Effect<A, E, R>,
  /** Runs after creation, before the second heap reading (e.g. let fibers settle). */
  settle: Effect.Effect<void> = Effect.void
) {
  collectGarbage()
  const before = process.memoryUsage().heapUsed
  const start = performance.now()
  const [value, gc] = yield* withGcTime(create)
  const elapsedMs = performance.now() - start
  yield* settle
  collectGarbage()
  const after = process.memoryUsage().heapUsed
  const bytesPerItem: Measurement = canMeasureHeap()
    ? {
      value: (after - before) / count,
      unit: "B/item",
      higherIsBetter: false,
      note: `heapUsed delta ${((after - before) / 2 ** 20).toFixed(1)} MiB over ${count} items`
    }
    : { value: Number.NaN, unit: "B/item", higherIsBetter: false, note: "run node with --expose-gc" }
  const rate: Measurement = {
    value: count / (elapsedMs / 1000),
    unit: "ops/s",
    higherIsBetter: true,
    note: `${count} created in ${elapsedMs.toFixed(0)} ms, ${formatGc(gc)}`
  }
  return { value, bytesPerItem, rate, elapsedMs }
})

/**
 * Formats a figure in its unit, compactly: `52.3k ops/s`, `2,412 B`,
 * `15.2 µs`.
 *
 * @category table
 * @since 0.1.0
 */
export const formatValue = (m: Pick<Measurement, "value" | "unit">): string => {
  const { unit, value } = m
  if (!Number.isFinite(value)) return "n/a"
  if (unit === "ops/s") {
    if (value >= 1e6) return `${(value / 1e6).toFixed(2)}M ops/s`
    if (value >= 1e3) return `${(value / 1e3).toFixed(1)}k ops/s`
    return `${value >= 100 ? value.toFixed(0) : value.toPrecision(3)} ops/s`
  }
  if (unit === "B/item") return `${Math.round(value).toLocaleString("en-US")} B`
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2
  return `${value.toFixed(digits)} ${unit}`
}

/**
 * How many times better effect-gen-server is than a baseline: above 1 it is
 * better, below 1 worse, whichever direction "better" runs for the unit.
 * Undefined when either figure is missing or the units differ.
 *
 * @category table
 * @since 0.1.0
 */
export const ratio = (ours: Measurement | undefined, baseline: Measurement): number | undefined => {
  if (ours === undefined || ours.unit !== baseline.unit) return undefined
  if (!Number.isFinite(ours.value) || !Number.isFinite(baseline.value) || ours.value <= 0 || baseline.value <= 0) {
    return undefined
  }
  return baseline.higherIsBetter ? ours.value / baseline.value : baseline.value / ours.value
}

const formatSize = (n: number): string =>
  n >= 1e6 && n % 1e6 === 0 ? `${n / 1e6}M` : n >= 1e3 && n % 1e3 === 0 ? `${n / 1e3}k` : String(n)

/**
 * The table: one row per baseline of each entry, columns workload | size |
 * effect-gen-server | baseline name | baseline figure | ratio. A workload
 * without baselines still gets a row. Missing figures print "—".
 *
 * @category table
 * @since 0.1.0
 */
export const renderTable = (entries: ReadonlyArray<WorkloadEntry>): string => {
  const header = ["workload", "size", "effect-gen-server", "baseline name", "baseline figure", "ratio"]
  const rows: Array<Array<string>> = []
  for (const entry of entries) {
    const ours = entry.ours === undefined ? "—" : formatValue(entry.ours)
    const baselines: ReadonlyArray<Baseline | undefined> = entry.baselines.length > 0 ? entry.baselines : [undefined]
    for (const baseline of baselines) {
      const r = baseline === undefined ? undefined : ratio(entry.ours, baseline)
      rows.push([
        entry.workload,
        formatSize(entry.size),
        ours,
        baseline?.name ?? "—",
        baseline === undefined ? "—" : formatValue(baseline),
        r === undefined ? "—" : `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}x`
      ])
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  const numeric = new Set([2, 4, 5])
  const line = (cells: ReadonlyArray<string>) =>
    "| " + cells.map((c, i) => numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)).join(" | ") + " |"
  const separator = "|" + widths.map((w, i) => numeric.has(i) ? "-".repeat(w + 1) + ":" : "-".repeat(w + 2)).join("|") +
    "|"
  return [line(header), separator, ...rows.map(line)].join("\n")
}

/**
 * Writes a progress line to stderr, so stdout carries only the table.
 *
 * @category running
 * @since 0.1.0
 */
export const progress = (message: string): Effect.Effect<void> =>
  Effect.sync(() => {
    process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`)
  })

/**
 * One baseline figure for one workload at one size.
 *
 * @category models
 * @since 0.1.0
 */
export interface BaselineResult {
  readonly workload: string
  readonly size: number
  readonly baseline: Baseline
}

/**
 * What a baseline module reports for one size: its figures, and notes for
 * whatever it could not measure or had to bound (printed under the table).
 *
 * @category models
 * @since 0.1.0
 */
export interface BaselineReport {
  readonly results: ReadonlyArray<BaselineResult>
  readonly notes: ReadonlyArray<string>
}

/**
 * Names a measurement as a baseline of a workload.
 *
 * @category constructors
 * @since 0.1.0
 */
export const baseline = (workload: string, size: number, name: string, m: Measurement): BaselineResult => ({
  workload,
  size,
  baseline: { ...m, name }
})
