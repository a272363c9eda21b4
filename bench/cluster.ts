/**
 * `npm run bench:cluster`: the cluster data layer against a plain
 * `effect/cluster` entity with the same runtime and storage, in one run, as
 * ratios, with the distance to each target of issue 11.
 *
 * For each runner count (`--runners=1,3`): a fresh PostgreSQL schema, that
 * many runner processes (`bench/cluster/runner.ts`, NodeClusterSocket on
 * loopback ports picked by the OS, SQL runner and message storage) and this
 * process as a client-only process driving the load: create, get, update and
 * a filtered read through `Cluster.layer` (1 and 64 callers, ops/s, p50/p99),
 * and the plain entity's volatile call, volatile call writing its row, and
 * persisted call (`ClusterSchema.Persisted` + `WithTransaction`) writing its
 * row inside the message storage's transaction; a direct `UPDATE` from this
 * process as the SQL reference. With 3 runners, then, the stall: one runner
 * is killed (SIGKILL) under a light load (8 callers updating the records in
 * turn) and the longest call is compared with the shard lock expiration.
 *
 * The SQL profile of each figure, counted by every process's `SqlClient`
 * (`bench/cluster/domain.ts`), less the rate counted idle before: statements
 * and explicit transactions per operation, and for the state store's group
 * commit the writes per batch statement and how long one ran.
 *
 * Every wait is bounded; every runner is killed at the end, on failure and on
 * SIGINT/SIGTERM, and ends by itself if this process dies; every schema is
 * dropped. Usage:
 *
 * ```sh
 * npm run bench:cluster                         # 3 s per figure, 1 and 3 runners, the stall; ~4 minutes
 * npm run bench:cluster -- --time=200           # the smoke run CI runs (well under a minute)
 * npm run bench:cluster -- --runners=3 --no-stall
 * npm run bench:cluster -- --no-stall --only="Cluster update|persisted"   # figures naming either
 * # every figure in 3 slices of time/3, in turn with the others: figures compared see the same load
 * npm run bench:cluster -- --rounds=3
 * # CPU profiles of the runners and of this process during each figure run, then where their time went:
 * npm run bench:cluster -- --runners=1 --no-stall --only="Cluster update" --profile=/tmp/prof
 * npx tsx bench/cluster/profile.ts /tmp/prof
 * ```
 */
import { PgClient } from "@effect/sql-pg"
import { Cause, Clock, Effect, Exit, Fiber } from "effect"
import { SqlClient } from "effect/sql"
import { execSync } from "node:child_process"
import { mkdirSync } from "node:fs"
import { loadavg } from "node:os"
import { Filter, Query, Store } from "../src/index.js"
import * as CpuProfile from "./cluster/cpuProfile.js"
import { clientLayer, Counter, countersNow, pgConfig, Plain, shardLockExpirationMillis } from "./cluster/domain.js"
import { freePorts, killAll, type Runner, startRunner } from "./cluster/procs.js"
import { closedLoops, percentile } from "./harness.js"

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const time = Number(arg("time") ?? 3000)
const runnerCounts = (arg("runners") ?? "1,3").split(",").map(Number)
const stallWanted = !process.argv.includes("--no-stall")
const only = arg("only")
const profileDir = arg("profile")
const rounds = Number(arg("rounds") ?? 1)
if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true })
const records = 64
const callerCounts = [1, 64]
const idleWindow = Math.min(2000, Math.max(300, time))
const callTimeout = "30 seconds"

if (
  !(time > 0) || runnerCounts.some((n) => !Number.isInteger(n) || n < 1 || n > 8) ||
  !(Number.isInteger(rounds) && rounds >= 1)
) {
  console.error(
    "usage: npm run bench:cluster -- [--time=ms] [--runners=1,3] [--no-stall] [--only=name] [--profile=dir] [--rounds=n]"
  )
  process.exit(2)
}

// a last resort: whatever hangs, the bench ends, killing its runners
const watchdogMs = 120_000 + runnerCounts.length * (30 * time + 60_000)
setTimeout(() => {
  console.error(`bench:cluster: still running after ${watchdogMs} ms; killing everything`)
  killAll()
  process.exit(1)
}, watchdogMs).unref()

const t0 = performance.now()
const log = (line: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1)} s] ${line}\n`)

const admin = <A>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
  Effect.gen(function*() {
    return yield* f(yield* SqlClient.SqlClient)
  }).pipe(
    Effect.provide(PgClient.layer({ ...pgConfig, maxConnections: 1 })),
    Effect.timeoutOrElse({
      duration: "20 seconds",
      orElse: () => Effect.die(new Error("PostgreSQL did not answer within 20 s"))
    }),
    Effect.orDie
  )

/**
 * The SQL counters of this process and of every runner still up, summed; the
 * CPU time of the runners (summed) and of this process (the client), apart.
 */
const counters = (runners: ReadonlyArray<Runner>) =>
  Effect.map(
    Effect.forEach(runners, (r) => r.stats, { concurrency: "unbounded" }),
    (all) => {
      const client = countersNow()
      return {
        ...[...all, client].reduce((a, b) => ({
          cpuMicros: 0,
          statements: a.statements + b.statements,
          transactions: a.transactions + b.transactions,
          batches: a.batches + b.batches,
          batchRows: a.batchRows + b.batchRows,
          batchMillis: a.batchMillis + b.batchMillis
        })),
        runnerCpuMicros: all.reduce((sum, r) => sum + r.cpuMicros, 0),
        clientCpuMicros: client.cpuMicros
      }
    }
  )

/** The counters' rates per second with no load (heartbeats, shard locks, polling). */
interface Idle {
  readonly statements: number
  readonly transactions: number
}

interface Figure {
  readonly runners: number
  readonly name: string
  readonly callers: number
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
  readonly errors: number
  /** SQL statements per operation, every process (less the idle rate). */
  readonly statementsPerOp: number
  /** Explicit SQL transactions per operation (a statement outside one is its own). */
  readonly transactionsPerOp: number
  /** The state store's group commit: writes per batch statement, and how long one ran. */
  readonly batch: { readonly rows: number; readonly millis: number } | undefined
  /** CPU time per operation (ms): the runners' (summed), this process's (the client's). */
  readonly cpu: { readonly runners: number; readonly client: number }
}

/** `callers` concurrent closed loops calling `op` for `ms` ms. */
const load = <R>(callers: number, ms: number, op: (caller: number, i: number) => Effect.Effect<unknown, unknown, R>) =>
  closedLoops(callers, ms, callTimeout, op)

/** What the slices of one figure measured, summed (`--rounds`: a figure is measured in slices, in turn with the others). */
interface Slices {
  count: number
  errors: number
  elapsed: number
  window: number
  latencies: Array<number>
  statements: number
  transactions: number
  batches: number
  batchRows: number
  batchMillis: number
  runnerCpuMicros: number
  clientCpuMicros: number
}

const makeMeasure = (runners: ReadonlyArray<Runner>, idle: Idle) => {
  const measured = new Map<string, Slices>()
  return <R>(name: string, callers: number, op: (caller: number, i: number) => Effect.Effect<unknown, unknown, R>) =>
    Effect.gen(function*() {
      if (only !== undefined && !only.split("|").some((o) => name.includes(o))) return undefined
      const key = `${name}\u0000${callers}`
      const profile = profileDir === undefined
        ? undefined
        : `${profileDir}/${runners.length}r-${name.replace(/[^A-Za-z0-9]+/g, "-")}-x${callers}${
          rounds > 1 ? `-${measured.has(key) ? "more" : "first"}` : ""
        }`
      if (profile !== undefined) {
        yield* Effect.forEach(runners, (r) => r.command("profile start", "PROFILING"), { discard: true })
        yield* Effect.promise(() => CpuProfile.start())
      }
      const before = yield* counters(runners)
      const t0 = yield* Clock.currentTimeMillis
      const run = yield* load(callers, time / rounds, op)
      const after = yield* counters(runners)
      if (profile !== undefined) {
        yield* Effect.promise(() => CpuProfile.stop(`${profile}-client.cpuprofile`))
        yield* Effect.forEach(
          runners,
          (r, i) => r.command(`profile stop ${profile}-runner${i + 1}.cpuprofile`, "PROFILED"),
          { discard: true }
        )
      }
      const s: Slices = measured.get(key) ?? {
        count: 0,
        errors: 0,
        elapsed: 0,
        window: 0,
        latencies: [],
        statements: 0,
        transactions: 0,
        batches: 0,
        batchRows: 0,
        batchMillis: 0,
        runnerCpuMicros: 0,
        clientCpuMicros: 0
      }
      measured.set(key, s)
      s.count += run.latencies.length + run.errors
      s.errors += run.errors
      s.elapsed += run.elapsed
      s.window += ((yield* Clock.currentTimeMillis) - t0) / 1000
      s.latencies = [...s.latencies, ...run.latencies].sort((a, b) => a - b)
      for (
        const k of [
          "statements",
          "transactions",
          "batches",
          "batchRows",
          "batchMillis",
          "runnerCpuMicros",
          "clientCpuMicros"
        ] as const
      ) s[k] += after[k] - before[k]
      const count = s.count
      const perOp = (k: "statements" | "transactions") =>
        count === 0 ? 0 : Math.max(0, s[k] - idle[k] * s.window) / count
      const figure: Figure = {
        runners: runners.length,
        name,
        callers,
        perSecond: Math.round((count * 1000) / s.elapsed),
        p50: percentile(s.latencies, 0.5),
        p99: percentile(s.latencies, 0.99),
        errors: s.errors,
        statementsPerOp: perOp("statements"),
        transactionsPerOp: perOp("transactions"),
        batch: s.batches === 0 ? undefined : { rows: s.batchRows / s.batches, millis: s.batchMillis / s.batches },
        cpu: {
          runners: count === 0 ? 0 : s.runnerCpuMicros / 1000 / count,
          client: count === 0 ? 0 : s.clientCpuMicros / 1000 / count
        }
      }
      const thisSlice = Math.round(((run.latencies.length + run.errors) * 1000) / run.elapsed)
      log(
        `${runners.length} runner(s): ${name} x${callers}: ${thisSlice}/s` +
          (rounds > 1 ? ` (all slices: ${figure.perSecond}/s)` : "") +
          ` p50 ${figure.p50.toFixed(2)} ms, ` +
          `CPU ms/op runners ${figure.cpu.runners.toFixed(2)} client ${figure.cpu.client.toFixed(2)}` +
          (run.errors > 0 ? `, ${run.errors} errors, first: ${String(run.firstError).slice(0, 300)}` : "")
      )
      return figure
    })
}

const ids = Array.from({ length: records }, (_, i) => ({ id: `c${i}` }))
const filtered = Query.make(Counter).pipe(
  Query.filter(Filter.eq("group", 3)),
  Query.sort("n", "desc"),
  Query.limit(5)
)

/** SIGKILL of one of the runners under a light load: the longest call, against the shard lock expiration. */
const stall = (victim: Runner) =>
  Effect.gen(function*() {
    const calls: Array<{ readonly start: number; readonly took: number; readonly id: string; readonly ok: boolean }> =
      []
    let stop = false
    let seq = 0
    const callers = 8
    const inFlight = new Map<number, number>()
    const loadFiber = yield* Effect.forkChild(Effect.forEach(Array.from({ length: callers }, (_, c) => c), (c) =>
      Effect.gen(function*() {
        while (!stop) {
          const key = ids[seq++ % records]!
          const start = performance.now()
          inFlight.set(c, start)
          const exit = yield* Effect.exit(Effect.timeout(Store.update(Counter, key, "inc"), "60 seconds"))
          inFlight.delete(c)
          calls.push({ start, took: performance.now() - start, id: key.id, ok: Exit.isSuccess(exit) })
        }
      }), { concurrency: "unbounded", discard: true }))
    yield* Effect.sleep(Math.min(2000, Math.max(500, time)))
    const killedAt = performance.now()
    yield* victim.kill
    // the load goes on until the shard locks expired, and every call has been answered again
    while (
      performance.now() - killedAt < shardLockExpirationMillis + 1500 ||
      (inFlight.size > 0 && Math.min(...inFlight.values()) < performance.now() - 1000)
    ) {
      if (performance.now() - killedAt > 60_000) break
      yield* Effect.sleep(100)
    }
    stop = true
    yield* Fiber.join(loadFiber).pipe(
      Effect.timeoutOrElse({ duration: "90 seconds", orElse: () => Effect.die(new Error("the stall's load hung")) })
    )
    const around = calls.filter((c) => c.start + c.took >= killedAt)
    const longest = around.reduce((m, c) => Math.max(m, c.took), 0)
    const stalled = new Set(around.filter((c) => c.took > 1000).map((c) => c.id))
    const failed = around.filter((c) => !c.ok).length
    const done = Math.max(0, ...around.filter((c) => c.took > 1000).map((c) => c.start + c.took - killedAt))
    log(
      `stall: longest call ${longest.toFixed(0)} ms, ${stalled.size} records stalled > 1 s, ` +
        `every one answered again ${done.toFixed(0)} ms after the kill, ${failed} failed, ${calls.length} calls`
    )
    return { longest, stalled: stalled.size, recovered: done, failed, calls: calls.length, callers }
  })

/** A fresh schema and `runnerCount` runners over it, all gone when the scope closes (runners first). */
const prepare = (runnerCount: number) =>
  Effect.gen(function*() {
    const schema = `gs_bench_${runnerCount}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 6)}`
    yield* Effect.acquireRelease(
      admin((sql) =>
        Effect.gen(function*() {
          yield* sql.unsafe(`CREATE SCHEMA "${schema}"`)
          yield* sql.unsafe(`CREATE TABLE "${schema}".plain (id text PRIMARY KEY, n bigint NOT NULL)`)
          yield* sql.unsafe(
            `INSERT INTO "${schema}".plain SELECT 'p' || i, 0 FROM generate_series(0, ${records - 1}) AS i`
          )
        })
      ),
      () => Effect.ignore(admin((sql) => sql.unsafe(`DROP SCHEMA "${schema}" CASCADE`)))
    )
    const ports = yield* freePorts(runnerCount)
    const runners = yield* Effect.forEach(ports, (port) => startRunner(schema, port), { concurrency: "unbounded" })
    log(`${runnerCount} runner(s) ready on ports ${ports.join(", ")} (schema ${schema})`)
    return { schema, runners }
  })

/** The figures with `runnerCount` runners, this process a client-only process of their cluster. */
const phase = (runnerCount: number, { runners, schema }: Effect.Success<ReturnType<typeof prepare>>) =>
  Effect.gen(function*() {
    const plain = yield* Plain.client
    const sql = yield* SqlClient.SqlClient
    yield* Effect.forEach(ids, ({ id }, i) => Store.create(Counter, "create", { id, n: 0, group: i % 8 }), {
      concurrency: 16
    }).pipe(Effect.timeout("60 seconds"))
    log(`${records} records created`)
    // warm-up: every path, every runner's JIT
    yield* load(64, Math.min(1500, Math.max(300, time)), (c, i) =>
      [
        plain(`p${(c + i) % records}`).Call(),
        plain(`p${(c + i) % records}`).WriteTx(),
        Store.update(Counter, ids[(c + i) % records]!, "inc"),
        Store.get(Counter, ids[(c + i) % records]!)
      ][i % 4]!)
    const idleBefore = yield* counters(runners)
    yield* Effect.sleep(idleWindow)
    const idleAfter = yield* counters(runners)
    const idle: Idle = {
      statements: ((idleAfter.statements - idleBefore.statements) * 1000) / idleWindow,
      transactions: ((idleAfter.transactions - idleBefore.transactions) * 1000) / idleWindow
    }
    const measure = makeMeasure(runners, idle)
    const measured: Array<Figure | undefined> = []
    const figures = { push: (f: Figure | undefined) => measured.push(f) }
    for (const callers of callerCounts) {
      const key = (c: number, i: number) => (c + i * callers) % records
      // in rounds, each a slice of every figure, so that the figures compared share the machine's load alike
      for (let round = 0; round < rounds; round++) {
        figures.push(yield* measure("plain entity, volatile call", callers, (c, i) => plain(`p${key(c, i)}`).Call()))
        figures.push(
          yield* measure("plain entity, volatile, writing its row", callers, (c, i) => plain(`p${key(c, i)}`).Write())
        )
        figures.push(
          yield* measure(
            "plain entity, persisted + WithTransaction, writing its row",
            callers,
            (c, i) => plain(`p${key(c, i)}`).WriteTx()
          )
        )
        figures.push(
          yield* measure(
            "direct SQL UPDATE of one row (reference)",
            callers,
            (c, i) => sql.unsafe(`UPDATE plain SET n = n + 1 WHERE id = $1`, [`p${key(c, i)}`])
          )
        )
        figures.push(
          yield* measure("Cluster update", callers, (c, i) => Store.update(Counter, ids[key(c, i)]!, "inc"))
        )
        figures.push(yield* measure("Cluster get", callers, (c, i) => Store.get(Counter, ids[key(c, i)]!)))
        figures.push(yield* measure("Cluster read (filtered, sorted, limit 5)", callers, () => Store.read(filtered)))
        figures.push(
          yield* measure(
            "Cluster create",
            callers,
            (c, i) =>
              Store.create(Counter, "create", { id: `k${callers}-${round}-${c}-${i}`, n: 0, group: 8 + (i % 8) })
          )
        )
      }
    }
    const stallFigure = stallWanted && runnerCount >= 2 ? yield* stall(runners[1]!) : undefined
    // a figure measured in slices: its last, which sums them all
    const last = new Map<string, Figure>()
    for (const f of measured) if (f !== undefined) last.set(`${f.name}\u0000${f.callers}`, f)
    return { figures: [...last.values()], stall: stallFigure }
  }).pipe(Effect.provide(clientLayer(schema)))

const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })

/** The comparison of each Cluster figure: its baseline and, where issue 11 sets one, its target. */
const comparison = (name: string, callers: number) => {
  if (name === "Cluster update") {
    return {
      base: "plain entity, persisted + WithTransaction, writing its row",
      target: callers === 64 ? 10 : undefined
    }
  }
  if (name === "Cluster create") return { base: "plain entity, persisted + WithTransaction, writing its row" }
  if (name === "Cluster get") return { base: "plain entity, volatile call", target: 1 }
  if (name.startsWith("Cluster read")) return { base: "plain entity, volatile call" }
  return undefined
}

const short: Record<string, string> = {
  "plain entity, persisted + WithTransaction, writing its row": "plain persisted+tx",
  "plain entity, volatile call": "plain volatile call"
}

const main = Effect.gen(function*() {
  const uptimeBefore = execSync("uptime").toString().trim()
  const startedAt = new Date().toISOString()
  const done = (n: number) => Effect.sync(() => log(`${n} runner(s): done`))
  // a smoke run starts every runner at once (their start-up is most of its time); a full run one count at a time
  const results = time < 1000
    ? yield* Effect.scoped(Effect.gen(function*() {
      const prepared = yield* Effect.forEach(runnerCounts, prepare, { concurrency: "unbounded" })
      return yield* Effect.forEach(runnerCounts, (n, i) => Effect.tap(phase(n, prepared[i]!), done(n)))
    }))
    : yield* Effect.forEach(
      runnerCounts,
      (n) => Effect.scoped(Effect.tap(Effect.flatMap(prepare(n), (p) => phase(n, p)), done(n)))
    )
  const uptimeAfter = execSync("uptime").toString().trim()
  console.log(`effect-gen-server bench:cluster, ${startedAt}`)
  console.log(`command: npm run bench:cluster -- ${process.argv.slice(2).join(" ")}`)
  console.log(`uptime before: ${uptimeBefore}`)
  console.log(`uptime after:  ${uptimeAfter}`)
  console.log(
    `${time} ms per figure; ${records} records; PostgreSQL ${pgConfig.host}:${pgConfig.port}/${pgConfig.database}; ` +
      `load average now ${loadavg().map((l) => l.toFixed(2)).join(" ")}`
  )
  console.log("")
  console.log(
    "| runners | operation | callers | ops/s | p50 ms | p99 ms | errors | SQL stmts/op | SQL tx/op | rows/batch | ms/batch " +
      "| CPU ms/op runners | CPU ms/op client " +
      "| against | ratio | target | distance |"
  )
  console.log(
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |"
  )
  const missed: Array<string> = []
  for (const { figures, stall: s } of results) {
    for (const f of figures) {
      const cmp = comparison(f.name, f.callers)
      const ref = cmp && figures.find((g) => g.name === cmp.base && g.callers === f.callers)
      const ratio = ref && ref.perSecond > 0 ? f.perSecond / ref.perSecond : undefined
      let distance = ""
      if (cmp?.target !== undefined && ratio !== undefined) {
        if (ratio >= cmp.target) distance = `met (+${(ratio - cmp.target).toFixed(2)})`
        else {
          distance = `**missed by ${(cmp.target - ratio).toFixed(2)}** (x${(cmp.target / ratio).toFixed(2)} needed)`
          missed.push(`${f.name} x${f.callers}, ${f.runners} runner(s)`)
        }
      }
      console.log(
        `| ${f.runners} | ${f.name} | ${f.callers} | ${fmt(f.perSecond)} | ${fmt(f.p50, 2)} | ${
          fmt(f.p99, 2)
        } | ${f.errors} | ${f.statementsPerOp.toFixed(2)} | ${f.transactionsPerOp.toFixed(2)} | ${
          f.batch === undefined ? "" : f.batch.rows.toFixed(1)
        } | ${f.batch === undefined ? "" : f.batch.millis.toFixed(2)} | ${f.cpu.runners.toFixed(2)} | ${
          f.cpu.client.toFixed(2)
        } | ${cmp ? short[cmp.base] : ""} | ${ratio === undefined ? "" : ratio.toFixed(2) + "x"} | ${
          cmp?.target === undefined ? "" : `>= ${cmp.target}x`
        } | ${distance} |`
      )
    }
    if (s !== undefined) {
      const limit = shardLockExpirationMillis + 1000
      const distance = s.longest <= limit
        ? `met (${fmt(limit - s.longest)} ms to spare)`
        : `**missed by ${fmt(s.longest - limit)} ms**`
      if (s.longest > limit) missed.push("stall of a killed runner's records")
      console.log(
        `| ${figures[0]!.runners} | stall of a killed runner's records (SIGKILL; longest call; ${s.stalled} records ` +
          `stalled > 1 s, all answered ${fmt(s.recovered)} ms after the kill) | ${s.callers} | | | ${
            fmt(s.longest)
          } ms | ${s.failed} | | | | | | | shard lock expiration ${fmt(shardLockExpirationMillis)} ms | | <= ${
            fmt(limit)
          } ms | ${distance} |`
      )
    }
  }
  console.log("")
  console.log(
    missed.length === 0 ? "every target met" : `targets missed: ${missed.join("; ")} (BENCHMARKS.md: what limits them)`
  )
})

const fiber = Effect.runFork(main)
// SIGINT/SIGTERM: interrupted, so its finalizers run (runners killed, schemas dropped), at most 20 s
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping`)
    setTimeout(() => {
      killAll()
      process.exit(130)
    }, 20_000).unref()
    fiber.interruptUnsafe()
  })
}
fiber.addObserver((exit) => {
  if (Exit.isFailure(exit)) console.error(Cause.pretty(exit.cause))
  killAll()
  process.exit(Exit.isSuccess(exit) ? 0 : Cause.hasInterruptsOnly(exit.cause) ? 130 : 1)
})
