/**
 * A bounded load test of the HTTP session store.
 *
 * Starts the server (`main.ts`) in a child process on a free loopback port,
 * so that the server and the load generator do not share one event loop;
 * creates `SESSIONS` sessions; then runs autocannon against 127.0.0.1 for
 * `DURATION` seconds with `CONNECTIONS` connections on each of
 * `GET /sessions/:id` and `POST /sessions/:id/cart/items` (a random session
 * per request). It prints requests per second, latency p50 / p99 and the
 * errors of each, checks that every successful addition is in a cart, and
 * stops the server.
 *
 * Run with `node_modules/.bin/tsx examples/http-session-store/load.ts`
 * (defaults: `SESSIONS=1000 DURATION=10 CONNECTIONS=64`).
 */
import autocannon, { type Options, type Request, type Result } from "autocannon"
import { Config, Console, Effect } from "effect"
import { spawn } from "node:child_process"
import * as Os from "node:os"
import { fileURLToPath } from "node:url"

const skus = Array.from({ length: 50 }, (_, i) => ({ sku: `sku-${i}`, price: (i + 1) * 0.25 }))

const pick = <A>(as: ReadonlyArray<A>): A => as[Math.floor(Math.random() * as.length)]!

/** The server, in a child process; interrupted (SIGINT, then SIGKILL) when the scope closes. */
const startServer = Effect.acquireRelease(
  Effect.callback<{ readonly url: string; readonly child: ReturnType<typeof spawn> }, Error>((resume) => {
    const main = fileURLToPath(new URL("./main.ts", import.meta.url))
    const child = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), main], {
      // from the repository's root, where tsx finds the tsconfig `paths` that
      // map `effect-gen-server` to `src/`
      cwd: fileURLToPath(new URL("../..", import.meta.url)),
      env: { ...process.env, PORT: "0", LOG_REQUESTS: "false" },
      stdio: ["ignore", "pipe", "inherit"]
    })
    let output = ""
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      resume(Effect.fail(new Error(`the server did not start within 60 s:\n${output}`)))
    }, 60_000)
    child.stdout!.setEncoding("utf8")
    child.stdout!.on("data", (chunk: string) => {
      output += chunk
      const url = /Listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1]
      if (url !== undefined) {
        clearTimeout(timer)
        child.stdout!.removeAllListeners("data")
        child.stdout!.resume()
        resume(Effect.succeed({ url, child }))
      }
    })
    child.once("exit", (code) => {
      clearTimeout(timer)
      resume(Effect.fail(new Error(`the server exited with ${code}:\n${output}`)))
    })
  }),
  ({ child }) =>
    Effect.callback<void>((resume) => {
      if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
      const kill = setTimeout(() => child.kill("SIGKILL"), 10_000)
      child.once("exit", () => {
        clearTimeout(kill)
        resume(Effect.void)
      })
      child.kill("SIGINT")
    })
)

const post = (url: string, body: unknown) =>
  Effect.tryPromise(async (): Promise<any> => {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body)
    })
    if (!response.ok) throw new Error(`POST ${url}: ${response.status} ${await response.text()}`)
    return await response.json()
  })

const get = (url: string) =>
  Effect.tryPromise(async (): Promise<any> => {
    const response = await fetch(url)
    if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${await response.text()}`)
    return await response.json()
  })

interface Cart {
  readonly items: ReadonlyArray<{ readonly quantity: number; readonly price: number }>
  readonly total: number
}

interface Row {
  readonly route: string
  readonly result: Result
}

const format = (rows: ReadonlyArray<Row>): string => {
  const header = ["route", "req/s", "p50 ms", "p99 ms", "requests", "non-2xx", "errors", "timeouts"]
  const lines = rows.map(({ result, route }) => [
    route,
    result.requests.average.toFixed(0),
    String(result.latency.p50),
    String(result.latency.p99),
    String(result.requests.total),
    String(result.non2xx),
    String(result.errors),
    String(result.timeouts)
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)))
  return [header, ...lines]
    .map((cells) => cells.map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join("  "))
    .join("\n")
}

const program = Effect.gen(function*() {
  const sessions = yield* Config.Int("SESSIONS").pipe(Config.withDefault(1000))
  const duration = yield* Config.Int("DURATION").pipe(Config.withDefault(10))
  const connections = yield* Config.Int("CONNECTIONS").pipe(Config.withDefault(64))

  yield* Console.log(
    `${new Date().toISOString()}  node ${process.version}  ${Os.availableParallelism()} cpus (${
      Os.cpus()[0]?.model ?? "?"
    })`
  )
  const { url } = yield* startServer
  yield* Console.log(`server: ${url} (child process)`)

  const ids = yield* Effect.forEach(
    Array.from({ length: sessions }, (_, i) => i),
    (i) => Effect.map(post(`${url}/sessions`, { userId: `user-${i}` }), (s: { readonly id: string }) => s.id),
    { concurrency: 32 }
  )
  yield* Console.log(`created ${ids.length} sessions; ${duration} s per route, ${connections} connections\n`)

  const run = (route: string, requests: Options["requests"]) =>
    Effect.map(
      Effect.promise(() => autocannon({ url, connections, duration, ...(requests === undefined ? {} : { requests }) })),
      (result): Row => ({ route, result })
    )

  const rows = [
    yield* run("GET /sessions/:id", [{
      method: "GET",
      setupRequest: (request: Request) => ({ ...request, path: `/sessions/${pick(ids)}` })
    }]),
    yield* run("POST /sessions/:id/cart/items", [{
      method: "POST",
      headers: { "content-type": "application/json" },
      setupRequest: (request: Request) => {
        const { price, sku } = pick(skus)
        return {
          ...request,
          path: `/sessions/${pick(ids)}/cart/items`,
          body: JSON.stringify({ sku, quantity: 1, price })
        }
      }
    }])
  ]
  yield* Console.log(format(rows))

  // every addition answered 200 is in a cart (plus at most one in flight per
  // connection when autocannon stopped); every total matches its lines
  const carts = yield* Effect.forEach(
    ids,
    (id): Effect.Effect<Cart, unknown> => get(`${url}/sessions/${id}/cart`),
    { concurrency: 32 }
  )
  const inCarts = carts.reduce((n, cart) => n + cart.items.reduce((m, line) => m + line.quantity, 0), 0)
  const answered = rows[1]!.result.statusCodeStats["200"]?.count ?? 0
  const wrongTotals = carts.filter((cart) =>
    Math.abs(
      cart.total - cart.items.reduce((t, line) => t + line.price * line.quantity, 0)
    ) > 0.005
  ).length
  yield* Console.log(
    `\nconsistency: ${inCarts} items in carts, ${answered} additions answered 200 ` +
      `(${inCarts >= answered && inCarts <= answered + connections ? "ok" : "MISMATCH"}); ` +
      `${wrongTotals} carts with a wrong total`
  )
})

program.pipe(Effect.scoped, Effect.runPromise).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
