/**
 * What the inspector costs a busy store, and how fast its page first loads:
 *
 * 1. `update x64` (the benchmark's update: 64 concurrent callers over
 *    `INSPECTOR_N` records, default 100,000) in rounds that alternate between
 *    no inspector and an inspector whose page is open in a real browser
 *    (Debian's chromium, driven by playwright-core), streaming the live
 *    events, polling the counts and the metrics, as a person's page does.
 *    One process, one Store: the medians of each side and their ratio
 *    (target: within 10%).
 * 2. The page's first load over those records: a fresh page, from the
 *    navigation until the first page of records is shown, three times
 *    (target: under 1 s on loopback).
 *
 *   npm run bench:inspector -- [--smoke] [--time=1500] [--rounds=3]
 *
 * `--smoke` (CI): 2,000 records, short rounds; it checks that the benchmark
 * runs, not the figures. Exits with 1 when chromium is missing or a page
 * does not load.
 *
 * @since 0.6.0
 */
import { Context, Effect, Layer, PubSub } from "effect"
import { Inspector, Store } from "effect-gen-server"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { type BrowserContext, chromium } from "playwright-core"
import { budgets, collectGarbage, percentile, runFor } from "./harness.js"
import { Character, indexFor, keyOf, makeRecord, years } from "./workloads.js"

const argv = process.argv.slice(2)
const option = (name: string) => argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3)
const smoke = argv.includes("--smoke")
const size = Number(process.env.INSPECTOR_N ?? (smoke ? 2_000 : 100_000))
const rounds = Number(option("rounds") ?? (smoke ? 1 : 3))
const budget = {
  ...(smoke ? budgets.smoke : budgets.full),
  ...(option("time") ? { timeMs: Number(option("time")) } : {})
}
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium"
// --no-page: the inspector runs, no page is open (what its subscription and fibers cost);
// --subscriber: no inspector, a plain Store.subscribe consumer (what any event subscriber costs)
const subscriberOnly = argv.includes("--subscriber")
const withoutPage = argv.includes("--no-page") || subscriberOnly
const withWhat = subscriberOnly ? "a bare subscriber" : withoutPage ? "an inspector, no page" : "its page open"

/** CPU time (ms) used so far by the processes this one started (the browser), from /proc; 0 where there is none. */
const childrenCpuMs = (): number => {
  let ticks = 0
  try {
    const parents = new Map<number, number>()
    const times = new Map<number, number>()
    for (const entry of Fs.readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue
      try {
        const stat = Fs.readFileSync(`/proc/${entry}/stat`, "utf8")
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
        parents.set(Number(entry), Number(fields[1]))
        times.set(Number(entry), Number(fields[11]) + Number(fields[12]))
      } catch {
        // gone meanwhile
      }
    }
    const family = [process.pid]
    for (let i = 0; i < family.length; i++) {
      for (const [pid, parent] of parents) if (parent === family[i]) family.push(pid)
    }
    for (const pid of family.slice(1)) ticks += times.get(pid) ?? 0
  } catch {
    return 0
  }
  return ticks * 10 // USER_HZ is 100 on Linux
}

const median = (xs: ReadonlyArray<number>) => percentile([...xs].sort((a, b) => a - b), 0.5)
const k = (n: number) => `${(n / 1000).toFixed(1)}k/s`

const browser = Effect.acquireRelease(
  Effect.promise(async () => {
    if (!Fs.existsSync(executablePath)) {
      throw new Error(`the inspector benchmark needs chromium at ${executablePath}: apt-get install -y chromium`)
    }
    const profile = Fs.mkdtempSync(Path.join(Os.tmpdir(), "inspector-bench-"))
    const context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      timeout: 30_000,
      viewport: { width: 1440, height: 900 },
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync"
      ]
    })
    return { context, profile }
  }),
  ({ context, profile }) =>
    Effect.promise(() => context.close().catch(() => undefined)).pipe(
      Effect.ensuring(Effect.sync(() => Fs.rmSync(profile, { recursive: true, force: true })))
    )
)

/** Opens the page and waits until its first page of records is shown; the milliseconds that took. */
const load = (context: BrowserContext, url: string) =>
  Effect.promise(async () => {
    const page = await context.newPage()
    const started = performance.now()
    await page.goto(url, { timeout: 30_000 })
    await page.waitForSelector("body[data-loaded]", { state: "attached", timeout: 30_000 })
    const ms = performance.now() - started
    const rows = await page.locator("[data-testid=records] tbody tr").count()
    if (rows === 0) throw new Error("the page showed no records")
    return { page, ms }
  })

/** An inspector, and its page open and streaming, for the scope. */
const inspected = (context: BrowserContext) =>
  Effect.gen(function*() {
    if (subscriberOnly) {
      const subscription = yield* Store.subscribe
      yield* Effect.forkScoped(Effect.forever(Effect.andThen(PubSub.takeAll(subscription), Effect.yieldNow)))
      return { inspector: undefined, page: undefined }
    }
    const scope = yield* Effect.scope
    const services = yield* Layer.buildWithScope(Inspector.layer({ port: 0 }), scope)
    const inspector = Context.get(services, Inspector.Inspector)
    if (withoutPage) return { inspector, page: undefined }
    const { page } = yield* Effect.acquireRelease(load(context, inspector.url), ({ page }) =>
      Effect.promise(() => page.close().catch(() => undefined)))
    yield* Effect.promise(() =>
      page.waitForSelector("[data-testid=events-status][data-status=live]", { state: "attached", timeout: 30_000 })
    )
    return { inspector, page }
  })

const main = Effect.gen(function*() {
  const loadAtStart = Os.loadavg()[0]!
  const { context } = yield* browser
  const started = performance.now()
  for (let i = 0; i < size; i++) yield* Store.create(Character, "create", makeRecord(i))
  console.error(`${size} records created in ${((performance.now() - started) / 1000).toFixed(1)} s`)
  const year = years(size)
  const update = (i: number) => {
    const index = indexFor(i, size)
    return Store.update(Character, { id: keyOf(index) }, "update", { currentYear: year.next(index) })
  }

  // 1. update x64, without and with the inspector's page open, alternating; the rate, and this process's CPU
  // time per update (less sensitive to what else the machine runs)
  const without: Array<number> = []
  const withPage: Array<number> = []
  const cpuWithout: Array<number> = []
  const cpuWith: Array<number> = []
  const gcWithout: Array<number> = []
  const gcWith: Array<number> = []
  let streamed = 0
  const measure = (rates: Array<number>, cpu: Array<number>, gc: Array<number>) =>
    Effect.gen(function*() {
      collectGarbage()
      yield* runFor(update, { callers: 64, timeMs: budget.warmupMs, maxOps: budget.warmupMaxOps })
      const before = process.cpuUsage()
      const run = yield* runFor(update, { callers: 64, timeMs: budget.timeMs, maxOps: budget.maxOps })
      const used = process.cpuUsage(before)
      rates.push(run.ops / (run.elapsedMs / 1000))
      cpu.push((used.user + used.system) / run.ops)
      gc.push(run.gc.totalMs * 1000 / run.ops)
    })
  const measureWithout = measure(without, cpuWithout, gcWithout)
  const browserShare: Array<number> = []
  const measureWith = Effect.scoped(Effect.gen(function*() {
    const { page } = yield* inspected(context)
    const browserBefore = childrenCpuMs()
    const wallBefore = performance.now()
    yield* measure(withPage, cpuWith, gcWith)
    browserShare.push((childrenCpuMs() - browserBefore) / (performance.now() - wallBefore))
    if (page !== undefined) {
      // the stream sends 4 times a second: a short round may end before the page shows its first event
      yield* Effect.promise(() =>
        page.waitForSelector("[data-testid=events] li", { state: "attached", timeout: 5_000 }).catch(() => undefined)
      )
      streamed += yield* Effect.promise(() => page.locator("[data-testid=events] li").count())
    }
  }))
  for (let round = 0; round < rounds; round++) {
    // ABBA: neither side always runs first
    if (round % 2 === 0) {
      yield* measureWithout
      yield* measureWith
    } else {
      yield* measureWith
      yield* measureWithout
    }
    console.error(
      `round ${round + 1}: without ${k(without.at(-1)!)} (${cpuWithout.at(-1)!.toFixed(2)} µs CPU, ${
        gcWithout.at(-1)!.toFixed(2)
      } µs GC per update), with ${withWhat} ${k(withPage.at(-1)!)} (${cpuWith.at(-1)!.toFixed(2)} µs, ${
        gcWith.at(-1)!.toFixed(2)
      } µs)`
    )
  }
  if (streamed === 0 && !withoutPage) throw new Error("the open pages showed no live event")
  const ratio = median(withPage) / median(without)
  const cpuRatio = median(cpuWith) / median(cpuWithout)

  // 2. the first load of the page over the records
  const loads = yield* Effect.scoped(Effect.gen(function*() {
    const scope = yield* Effect.scope
    const services = yield* Layer.buildWithScope(Inspector.layer({ port: 0 }), scope)
    const inspector = Context.get(services, Inspector.Inspector)
    const out: Array<number> = []
    for (let i = 0; i < 3; i++) {
      const { ms, page } = yield* load(context, inspector.url)
      out.push(ms)
      yield* Effect.promise(() => page.close())
    }
    return out
  }))

  const loadAtEnd = Os.loadavg()[0]!
  console.log(
    `inspector, ${size} records, ${rounds} round${rounds === 1 ? "" : "s"} of ${budget.timeMs} ms each way:\n` +
      `  update x64 without an inspector: ${without.map(k).join(", ")} (median ${k(median(without))})\n` +
      `  update x64 with ${withWhat}: ${withPage.map(k).join(", ")} (median ${k(median(withPage))})\n` +
      `  with / without: ${ratio.toFixed(3)} (target >= 0.90)${ratio < 0.9 ? "  MISSED" : ""}\n` +
      `  CPU time of this process per update: ${median(cpuWithout).toFixed(2)} µs without, ${
        median(cpuWith).toFixed(2)
      } µs with (x${cpuRatio.toFixed(3)}); of which garbage collection ${median(gcWithout).toFixed(2)} µs and ${
        median(gcWith).toFixed(2)
      } µs\n` +
      (withoutPage
        ? ""
        : `  the browser (page open, streaming) used ${
          (median(browserShare) * 100).toFixed(0)
        }% of a core meanwhile\n`) +
      `  first load of the page: ${loads.map((ms) => `${ms.toFixed(0)} ms`).join(", ")} (target < 1000 ms)` +
      `${Math.max(...loads) >= 1000 ? "  MISSED" : ""}\n` +
      `  load average ${loadAtStart.toFixed(2)} at the start, ${loadAtEnd.toFixed(2)} at the end`
  )
}).pipe(Effect.scoped, Effect.provide(Store.layer([Character])))

Effect.runPromise(main).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
