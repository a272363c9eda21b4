/**
 * Runs every baseline and every registered effect-gen-server suite at each
 * size, then prints one table of ratios.
 *
 * Usage: `npm run bench -- [--smoke] [--sizes=10000,100000] [--time=1500]
 * [--only=effect,rcmap,cluster,otp,ours,hibernation] [--notes] [--limit=900]`
 * (`hibernation`: only the library's `hibernateAfter` suite). Progress
 * goes to stderr, the report to stdout; `--notes` adds how each figure was
 * obtained; `--limit` bounds each baseline module and each suite, per size, in
 * seconds. Heap figures need node's `--expose-gc`, which the npm script passes.
 *
 * The figures are only as good as the machine is quiet: the report says how
 * much of the CPU other processes took during the run (from /proc/stat, less
 * this process and the erl VMs it ran) and warns above 10%.
 *
 * @since 0.1.0
 */
import { Cause, Duration, Effect, Option } from "effect"
import { readFileSync } from "node:fs"
import { availableParallelism, cpus, loadavg, totalmem } from "node:os"
import * as ClusterBaseline from "./baselines/cluster.js"
import * as EffectBaseline from "./baselines/effect.js"
import * as MemoryBaseline from "./baselines/memory.js"
import * as OtpBaseline from "./baselines/otp.js"
import * as RcMapBaseline from "./baselines/rcmap.js"
import type { BaselineReport, Measurement, Options, WorkloadEntry } from "./harness.js"
import { canMeasureHeap, collectGarbage, parseOptions, progress, renderTable } from "./harness.js"
import "./ours.js"
import { oursSuites, workloadOrder } from "./workloads.js"

/**
 * The baseline modules, in the order they run at each size.
 *
 * @category baselines
 * @since 0.1.0
 */
export const baselines: ReadonlyArray<{
  readonly name: string
  readonly run: (size: number, options: Options) => Effect.Effect<BaselineReport, unknown>
}> = [
  { name: "effect", run: EffectBaseline.run },
  { name: "memory", run: MemoryBaseline.run },
  { name: "rcmap", run: RcMapBaseline.run },
  { name: "cluster", run: ClusterBaseline.run },
  { name: "otp", run: OtpBaseline.run }
]

interface CpuSample {
  /** All CPU time of the machine, in clock ticks. */
  readonly total: number
  /** CPU time not idle (steal included: another VM had the core). */
  readonly busy: number
  /** CPU time of this process and of its children it has reaped (the erl VMs). */
  readonly own: number
}

// Linux only: /proc/stat and /proc/self/stat, both in USER_HZ ticks.
const sampleCpu = (): CpuSample | undefined => {
  try {
    const ticks = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1, 9).map(Number)
    const total = ticks.reduce((a, b) => a + b, 0)
    const busy = total - ticks[3]! - ticks[4]!
    const stat = readFileSync("/proc/self/stat", "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    const own = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0)
    return Number.isFinite(total + busy + own) ? { total, busy, own } : undefined
  } catch {
    return undefined
  }
}

/** Share of the machine's CPU time other processes used between two samples. */
const othersShare = (start: CpuSample | undefined, end: CpuSample | undefined): number | undefined =>
  start === undefined || end === undefined || end.total <= start.total
    ? undefined
    : Math.max(0, (end.busy - start.busy) - (end.own - start.own)) / (end.total - start.total)

const describe = (cause: Cause.Cause<unknown>): string => String(Cause.squash(cause)).split("\n")[0]!

const main = Effect.gen(function*() {
  const argv = process.argv.slice(2)
  const options = parseOptions(argv)
  const only = argv.find((arg) => arg.startsWith("--only="))?.slice("--only=".length).split(",")
  const selected = (name: string) => only === undefined || only.includes(name)
  // Each baseline module and each suite gets this long per size; then it is
  // interrupted and the report says so.
  const limitSeconds = Number(argv.find((arg) => arg.startsWith("--limit="))?.slice("--limit=".length) ?? 900)
  const limit = Duration.seconds(limitSeconds)
  const started = performance.now()
  const loadAtStart = loadavg()[0]!
  const cpuAtStart = sampleCpu()
  const notes: Array<string> = []
  if (!canMeasureHeap()) notes.push("heap figures not measured: run node with --expose-gc")
  const entries = new Map<string, { ours?: Measurement; baselines: Array<WorkloadEntry["baselines"][number]> }>()
  const entry = (workload: string, size: number) => {
    const key = `${workload}\u0000${size}`
    let found = entries.get(key)
    if (found === undefined) {
      found = { baselines: [] }
      entries.set(key, found)
    }
    return found
  }

  for (const size of options.sizes) {
    for (const source of baselines) {
      if (!selected(source.name)) continue
      yield* progress(`${source.name} at ${size}`)
      collectGarbage()
      const report = yield* source.run(size, options).pipe(
        Effect.timeoutOption(limit),
        Effect.map((report) =>
          Option.getOrElse(report, (): BaselineReport => ({
            results: [],
            notes: [`${source.name} ${size} stopped after ${limitSeconds} s (--limit)`]
          }))
        ),
        Effect.catchCause((cause) =>
          Effect.succeed<BaselineReport>({ results: [], notes: [`${source.name} ${size} failed: ${describe(cause)}`] })
        )
      )
      for (const result of report.results) entry(result.workload, result.size).baselines.push(result.baseline)
      notes.push(...report.notes)
    }
    for (const suite of oursSuites) {
      // `--only=hibernation` runs the hibernateAfter suite alone
      if (!selected("ours") && !(suite.name.endsWith("hibernateAfter") && selected("hibernation"))) continue
      yield* progress(`effect-gen-server ${suite.name} at ${size}`)
      collectGarbage()
      const results = yield* suite.run(size, options).pipe(
        Effect.timeoutOption(limit),
        Effect.map((results) =>
          Option.getOrElse(results, () => {
            notes.push(`effect-gen-server ${suite.name} ${size} stopped after ${limitSeconds} s (--limit)`)
            return []
          })
        ),
        Effect.catchCause((cause) =>
          Effect.sync(() => {
            notes.push(`effect-gen-server ${suite.name} ${size} failed: ${describe(cause)}`)
            return []
          })
        )
      )
      for (const result of results) {
        if (result.baseline !== undefined) {
          entry(result.workload, size).baselines.push({ ...result.measurement, name: result.baseline })
        } else entry(result.workload, size).ours = result.measurement
      }
    }
  }

  const table: Array<WorkloadEntry> = Array.from(entries, ([key, value]) => {
    const [workload, size] = key.split("\u0000") as [string, string]
    return { workload, size: Number(size), ours: value.ours, baselines: value.baselines }
  })
  const rank = (workload: string) => {
    const i = workloadOrder.indexOf(workload)
    return i < 0 ? workloadOrder.length : i
  }
  table.sort((a, b) => rank(a.workload) - rank(b.workload) || a.workload.localeCompare(b.workload) || a.size - b.size)

  const cpu = cpus()[0]?.model ?? "unknown cpu"
  const cores = availableParallelism()
  const others = othersShare(cpuAtStart, sampleCpu())
  const contention = others === undefined
    ? `load average ${loadAtStart.toFixed(2)} at start`
    : `other processes used ${(others * 100).toFixed(0)}% of the CPU during the run (load average ${
      loadAtStart.toFixed(2)
    } at start)`
  if (others === undefined ? loadAtStart > cores * 0.5 : others > 0.1) {
    notes.unshift(`${contention}: other work shared the cores, figures are pessimistic`)
  }
  const rowNotes = argv.includes("--notes")
    ? table.flatMap((e) =>
      e.baselines.map((b) => `- ${e.workload} ${e.size} ${b.name}: ${b.note ?? ""}`).concat(
        e.ours === undefined ? [] : [`- ${e.workload} ${e.size} effect-gen-server: ${e.ours.note ?? ""}`]
      )
    )
    : []
  const lines = [
    `effect-gen-server benchmark, ${new Date().toISOString()}`,
    `node ${process.version}, ${cores} cores (${cpu}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB; ${contention}`,
    `${options.smoke ? "smoke" : "full"} budget ${options.budget.timeMs} ms per figure, sizes ${
      options.sizes.join(",")
    }`,
    `command: ${[process.execPath.split("/").pop(), ...process.execArgv, ...process.argv.slice(1)].join(" ")}`,
    "",
    renderTable(table),
    "",
    "ratio: how many times better effect-gen-server is than the baseline (above 1 better, below 1 worse,",
    "whichever direction is better for the unit); — where either figure is missing.",
    ...(notes.length > 0 ? ["", "notes:", ...Array.from(new Set(notes), (note) => `- ${note}`)] : []),
    ...(rowNotes.length > 0 ? ["", "how each figure was obtained:", ...rowNotes] : []),
    "",
    `total ${((performance.now() - started) / 1000).toFixed(0)} s`
  ]
  yield* Effect.sync(() => process.stdout.write(lines.join("\n") + "\n"))
})

Effect.runFork(main)
