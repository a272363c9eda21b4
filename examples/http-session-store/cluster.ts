/**
 * The HTTP session store as a cluster: three runner processes
 * (`cluster-runner.ts`), each serving the HTTP API on its own loopback port,
 * sharing their records through `effect/cluster` and PostgreSQL (a fresh
 * schema, dropped at the end).
 *
 *   npm run example:http:cluster                 # start, print the URLs, run until Ctrl-C
 *   npm run example:http:cluster -- --rolling    # start, then a rolling restart under load
 *
 * With `--rolling`, `WORKERS` clients (default 32) create sessions and add
 * items through the runners in turn for at least `DURATION` seconds (default
 * 30), and until `DURATION / 6` after the last runner is back, while each
 * runner in turn, `DURATION / 6` apart, is stopped with SIGTERM and started
 * again. A request a runner refused before handling it (connection refused
 * or closed by a runner draining, `503 Draining`) or answered `Unavailable`
 * with `applied: "no"` is sent again, to the next runner, as a load balancer
 * would. It prints the requests, the errors (any other answer than the
 * expected one: a timeout, a bare 503 of an interrupted request, an
 * `Unavailable` that may have been applied), the longest call, and checks
 * that every acknowledged item is in its cart.
 * Every process it started is killed when it ends, on failure too.
 *
 * Needs PostgreSQL at 127.0.0.1:5432 (`PGHOST`, `PGPORT`, `PGUSER`,
 * `PGDATABASE` override it), trust auth.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { type ChildProcess, spawn } from "node:child_process"
import * as Net from "node:net"
import { fileURLToPath } from "node:url"

const rolling = process.argv.includes("--rolling")
const workers = Number(process.env.WORKERS ?? 32)
const duration = Number(process.env.DURATION ?? 30) * 1000
const root = fileURLToPath(new URL("../..", import.meta.url))
const runnerScript = fileURLToPath(new URL("./cluster-runner.ts", import.meta.url))
const schema = `gs_example_${Date.now().toString(36)}`

const sql = PgClient.layer({
  host: process.env.PGHOST ?? "127.0.0.1",
  port: Number(process.env.PGPORT ?? 5432),
  username: process.env.PGUSER ?? "postgres",
  database: process.env.PGDATABASE ?? "test",
  maxConnections: 1
})
const admin = (statement: string) =>
  Effect.runPromise(
    SqlClient.SqlClient.use((client) => client.unsafe(statement)).pipe(
      Effect.provide(Layer.orDie(sql)),
      Effect.timeout("10 seconds")
    )
  )

/** A free loopback port. */
const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as Net.AddressInfo
      server.close(() => resolve(port))
    })
  })

interface Runner {
  readonly http: number
  readonly socket: number
  child: ChildProcess | undefined
}

const children = new Set<ChildProcess>()

const start = async (runner: Runner) => {
  const child = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), runnerScript], {
    cwd: root,
    env: { ...process.env, PORT: String(runner.http), RUNNER_PORT: String(runner.socket), PG_SCHEMA: schema },
    stdio: ["ignore", "ignore", "inherit"]
  })
  children.add(child)
  child.once("exit", () => children.delete(child))
  runner.child = child
  // healthy: the HTTP API answers (bounded)
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`runner on ${runner.http} exited with ${child.exitCode}`)
    try {
      // the first requests of a process that just started listening can stall: each try is bounded
      const response = await fetch(`http://127.0.0.1:${runner.http}/openapi.json`, {
        signal: AbortSignal.timeout(2_000)
      })
      if (response.ok) return
    } catch {
      // not listening yet, or not answering yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  throw new Error(`runner on ${runner.http} did not answer within 60 s`)
}

/** SIGTERM, then SIGKILL after 45 s (past a runner's drain bound); resolves once the process is gone. */
const stop = (child: ChildProcess | undefined) =>
  new Promise<void>((resolve) => {
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return resolve()
    const kill = setTimeout(() => child.kill("SIGKILL"), 45_000)
    child.once("exit", () => {
      clearTimeout(kill)
      resolve()
    })
    child.kill("SIGTERM")
  })

const cleanup = async () => {
  await Promise.all([...children].map((child) => stop(child)))
  await admin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined)
}

interface Stats {
  requests: number
  errors: number
  /** Requests refused before they were handled (connection refused or closed, 503 `Draining`), sent again. */
  rerouted: number
  /** Requests answered `Unavailable` with `applied: "no"` (nothing happened), sent again. */
  resent: number
  longest: number
  readonly acknowledged: Map<string, number>
  readonly errorSamples: Array<string>
}

/** Sends a request to the runners in turn from `from`, skipping those that refuse connections. */
const call = async (
  runners: ReadonlyArray<Runner>,
  from: number,
  path: string,
  init: RequestInit,
  stats: Stats
): Promise<{ readonly status: number; readonly body: any }> => {
  const started = performance.now()
  for (let attempt = 0; attempt < 60; attempt++) {
    const runner = runners[(from + attempt) % runners.length]!
    try {
      const response = await fetch(`http://127.0.0.1:${runner.http}${path}`, {
        ...init,
        signal: AbortSignal.timeout(30_000)
      })
      const body: any = await response.json().catch(() => undefined)
      if (response.status === 503 && body?._tag === "Draining") {
        // a runner shutting down refused the request before handling it: as a load balancer would, the next one
        stats.rerouted++
        continue
      }
      if (response.status === 503 && body?._tag === "Unavailable" && body.applied === "no") {
        // the cluster did not reach the record's owner in time, and says nothing was applied: safe to send again
        stats.resent++
        continue
      }
      stats.longest = Math.max(stats.longest, performance.now() - started)
      return { status: response.status, body }
    } catch (error) {
      if ((error as Error).name === "TimeoutError") throw error
      // connection refused, or an idle keep-alive connection closed by a runner draining (the request was not
      // read): the next one
      stats.rerouted++
      if (attempt % runners.length === runners.length - 1) await new Promise((r) => setTimeout(r, 100))
    }
  }
  throw new Error(`no runner answered ${path}`)
}

const json = (body: unknown): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body)
})

/** One call of a worker: an answer, or `undefined` after counting the error (a timeout, a wrong status). */
const expect = async (
  stats: Stats,
  what: string,
  status: number,
  request: Promise<{ readonly status: number; readonly body: any }>
) => {
  stats.requests++
  try {
    const answer = await request
    if (answer.status === status) return answer
    stats.errors++
    if (stats.errorSamples.length < 5) {
      stats.errorSamples.push(`${what}: ${answer.status} ${JSON.stringify(answer.body)}`)
    }
  } catch (error) {
    stats.errors++
    if (stats.errorSamples.length < 5) stats.errorSamples.push(`${what}: ${String(error)}`)
  }
  return undefined
}

const worker = async (runners: ReadonlyArray<Runner>, w: number, load: { until: number }, stats: Stats) => {
  let turn = w
  while (Date.now() < load.until) {
    const created = await expect(
      stats,
      "create",
      201,
      call(runners, turn++, "/sessions", json({ userId: `user-${w}` }), stats)
    )
    if (created === undefined) continue
    const id = created.body.id as string
    for (let i = 0; i < 5 && Date.now() < load.until; i++) {
      const item = json({ sku: `sku-${i}`, quantity: 1, price: 1 })
      const added = await expect(
        stats,
        "addItem",
        200,
        call(runners, turn++, `/sessions/${id}/cart/items`, item, stats)
      )
      if (added !== undefined) stats.acknowledged.set(id, (stats.acknowledged.get(id) ?? 0) + 1)
    }
  }
}

const main = async () => {
  await admin(`CREATE SCHEMA "${schema}"`)
  const runners: Array<Runner> = []
  // six distinct free ports (the system may hand the same free port out twice)
  const ports = new Set<number>()
  while (ports.size < 6) ports.add(await freePort())
  const [...free] = ports
  for (let i = 0; i < 3; i++) runners.push({ http: free[2 * i]!, socket: free[2 * i + 1]!, child: undefined })
  await Promise.all(runners.map(start))
  for (const runner of runners) {
    console.log(`runner on http://127.0.0.1:${runner.http} (cluster socket ${runner.socket})`)
  }
  if (!rolling) {
    console.log(`PostgreSQL schema ${schema}; Ctrl-C stops every runner and drops it`)
    await new Promise<void>((resolve) => process.once("SIGINT", () => resolve()))
    return
  }
  const stats: Stats = {
    requests: 0,
    errors: 0,
    rerouted: 0,
    resent: 0,
    longest: 0,
    acknowledged: new Map(),
    errorSamples: []
  }
  const began = Date.now()
  const window = { until: began + duration }
  const load = Promise.all(Array.from({ length: workers }, (_, w) => worker(runners, w, window, stats)))
  // a rolling restart: each runner in turn, a third of the way apart
  for (const runner of runners) {
    await new Promise((resolve) => setTimeout(resolve, duration / 6))
    const stopping = performance.now()
    await stop(runner.child)
    const stopped = performance.now()
    await start(runner)
    console.log(
      `restarted the runner on ${runner.http}: stopped in ${((stopped - stopping) / 1000).toFixed(1)} s ` +
        `(SIGTERM to exit), serving again ${((performance.now() - stopped) / 1000).toFixed(1)} s later`
    )
  }
  // the load goes on until a while after the last runner is back
  window.until = Math.max(window.until, Date.now() + duration / 6)
  await load
  const loadSeconds = (Date.now() - began) / 1000
  // every acknowledged addition is in its cart
  let missing = 0
  let unreadable = 0
  let unacknowledged = 0
  for (const [id, count] of stats.acknowledged) {
    const cart = await call(runners, 0, `/sessions/${id}/cart`, { method: "GET" }, stats).catch(() => undefined)
    if (cart === undefined || cart.status !== 200) {
      unreadable++
      continue
    }
    const lines = (cart.body?.items ?? []) as ReadonlyArray<{ readonly quantity: number }>
    const stored = lines.reduce((n, line) => n + line.quantity, 0)
    // fewer than acknowledged: an acknowledged write lost; more: a call that timed out was applied after all
    if (stored < count) missing++
    else if (stored > count) unacknowledged++
  }
  console.log(
    `rolling restart under load (${workers} workers, ${loadSeconds.toFixed(0)} s): ${stats.requests} requests, ` +
      `${stats.errors} errors, ${stats.rerouted} requests refused by a runner restarting and sent to another, ` +
      `${stats.resent} answered Unavailable (not applied) and sent again, ` +
      `longest call ${
        stats.longest.toFixed(0)
      } ms; ${stats.acknowledged.size} carts checked, ${missing} missing an acknowledged item, ` +
      `${unacknowledged} holding an item whose call got no answer, ${unreadable} not readable`
  )
  for (const sample of stats.errorSamples) console.log(`  error: ${sample}`)
  if (stats.errors > 0 || missing > 0 || unreadable > 0) process.exitCode = 1
}

// Ctrl-C or a SIGTERM stops every runner and drops the schema first
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    if (!rolling && signal === "SIGINT") return // main() is waiting for it, and cleans up
    void cleanup().then(() => process.exit(130))
  })
}

const bounded = setTimeout(() => {
  console.error("the example ran past its time bound")
  void cleanup().then(() => process.exit(1))
}, rolling ? duration + 240_000 : 2 ** 31 - 1)

main()
  .catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
  .finally(async () => {
    await cleanup()
    clearTimeout(bounded)
  })
