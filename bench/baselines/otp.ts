/**
 * OTP baselines: drives `bench/beam/gen_bench.erl`, the minimal gen_server
 * record that ash_gen_server builds on.
 *
 * Compiles the module with `erlc` into a temporary directory, runs one
 * `erl +S 2 -noshell` VM per size (two schedulers, as many cores as Node gets
 * here) and turns its JSON lines into baselines. Without `erl` or `erlc` on
 * the PATH it reports a note instead of failing.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { spawn, spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import type { BaselineReport, BaselineResult, Measurement, Options } from "../harness.js"
import { baseline, latencyBudget, progress } from "../harness.js"
import { Workload } from "../workloads.js"

const source = fileURLToPath(new URL("../beam/gen_bench.erl", import.meta.url))

/** The VM gets this long per size before it is killed. */
const timeoutMs = 15 * 60 * 1000

const names: Record<string, string> = {
  [Workload.create.name]: "OTP gen_server:start",
  [Workload.memory.name]: "OTP gen_server process",
  [Workload.get1.name]: "OTP gen_server:call",
  [Workload.get64.name]: "OTP gen_server:call",
  [Workload.update1.name]: "OTP gen_server:call",
  [Workload.update64.name]: "OTP gen_server:call",
  [Workload.p50.name]: "OTP gen_server:call",
  [Workload.p99.name]: "OTP gen_server:call",
  [Workload.updateP50.name]: "OTP gen_server:call",
  [Workload.updateP99.name]: "OTP gen_server:call",
  [Workload.read.name]: "OTP: call every server, filter+sort+10 in caller",
  [Workload.memoryHibernated.name]: "OTP gen_server, hibernate_after 0",
  [Workload.update1Hibernated.name]: "OTP gen_server, hibernate_after 0",
  [Workload.updateP50Hibernated.name]: "OTP gen_server, hibernate_after 0",
  [Workload.updateP99Hibernated.name]: "OTP gen_server, hibernate_after 0"
}

/** Lines also reported under another workload, with their own baseline name: the awake OTP figure next to the hibernated ones. */
const alsoUnder: Record<string, { readonly workload: string; readonly name: string }> = {
  [Workload.update1.name]: { workload: Workload.update1Hibernated.name, name: "OTP gen_server:call (awake)" },
  [Workload.updateP99.name]: { workload: Workload.updateP99Hibernated.name, name: "OTP gen_server:call (awake)" }
}

/** Lines reported under another workload's name, with their own baseline name. */
const variants: Record<string, { readonly workload: string; readonly name: string }> = {
  "get x1 (one process)": { workload: Workload.get1.name, name: "OTP gen_server:call, one process, no lookup" }
}

interface Line {
  readonly workload?: string
  readonly size?: number
  readonly value?: number
  readonly unit?: string
  readonly higherIsBetter?: boolean
  readonly note?: string
}

const available = (command: string): boolean => {
  const probe = spawnSync(command, command === "erl" ? ["-noshell", "-eval", "halt()."] : ["-help"], {
    stdio: "ignore"
  })
  return probe.error === undefined
}

const compile = Effect.sync(() => {
  const dir = mkdtempSync(join(tmpdir(), "gen-bench-"))
  const result = spawnSync("erlc", ["-o", dir, source], { encoding: "utf8" })
  if (result.status !== 0) {
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`erlc failed: ${result.stderr}${result.stdout}`)
  }
  return dir
})

const runVm = (dir: string, size: number, options: Options) =>
  Effect.callback<ReadonlyArray<Line>, Error>((resume) => {
    const { budget } = options
    const args = [
      "+S",
      "2",
      "+P",
      String(Math.max(1_048_576, 2 * size + 1_000)),
      "-noshell",
      "-pa",
      dir,
      "-run",
      "gen_bench",
      "main",
      ...[
        size,
        budget.timeMs,
        budget.maxOps,
        budget.warmupMs,
        budget.warmupMaxOps,
        options.callers,
        latencyBudget(budget, size).timeMs
      ].map(String)
    ]
    const child = spawn("erl", args, { stdio: ["ignore", "pipe", "pipe"] })
    const lines: Array<Line> = []
    let pending = ""
    let stderr = ""
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.stdout.setEncoding("utf8")
    child.stdout.on("data", (chunk: string) => {
      pending += chunk
      let newline: number
      while ((newline = pending.indexOf("\n")) >= 0) {
        const text = pending.slice(0, newline).trim()
        pending = pending.slice(newline + 1)
        if (text.startsWith("{")) {
          const line = JSON.parse(text) as Line
          lines.push(line)
          if (line.workload !== undefined) {
            process.stderr.write(`[bench otp] ${size} ${line.workload}: ${line.value} ${line.unit}\n`)
          }
        } else if (text !== "") {
          stderr += text + "\n"
        }
      }
    })
    child.stderr.setEncoding("utf8")
    child.stderr.on("data", (chunk: string) => {
      stderr += chunk
    })
    child.on("error", (error) => {
      clearTimeout(timer)
      resume(Effect.fail(error))
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resume(
        code === 0
          ? Effect.succeed(lines)
          : Effect.fail(new Error(`erl exited with ${code ?? signal}: ${stderr.slice(0, 2_000)}`))
      )
    })
    return Effect.sync(() => {
      clearTimeout(timer)
      child.kill("SIGKILL")
    })
  })

const toMeasurement = (line: Line): Measurement => ({
  value: line.value ?? Number.NaN,
  unit: line.unit === "us" ? "µs" : line.unit ?? "",
  higherIsBetter: line.higherIsBetter ?? true,
  note: line.note
})

/**
 * Measures the OTP baselines at one size, or explains why it could not.
 *
 * @category baselines
 * @since 0.1.0
 */
export const run = Effect.fnUntraced(function*(size: number, options: Options) {
  if (!available("erl") || !available("erlc")) {
    return { results: [], notes: ["OTP baselines skipped: erl/erlc not found on the PATH"] } satisfies BaselineReport
  }
  const dir = yield* compile
  yield* progress(`otp ${size}: erl +S 2 running gen_bench`)
  const lines = yield* runVm(dir, size, options).pipe(
    Effect.ensuring(Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
  )
  const results: Array<BaselineResult> = []
  const notes: Array<string> = []
  for (const line of lines) {
    if (line.workload === undefined) {
      if (line.note !== undefined) notes.push(`OTP: ${line.note}`)
      continue
    }
    const variant = variants[line.workload]
    results.push(
      variant !== undefined
        ? baseline(variant.workload, size, variant.name, toMeasurement(line))
        : baseline(line.workload, size, names[line.workload] ?? `OTP ${line.workload}`, toMeasurement(line))
    )
    const also = alsoUnder[line.workload]
    if (also !== undefined) results.push(baseline(also.workload, size, also.name, toMeasurement(line)))
  }
  return { results, notes: Array.from(new Set(notes)) } satisfies BaselineReport
})
