/**
 * The inspector's page in a real browser: Debian's `chromium`, driven by
 * `playwright-core` (whose own browser download cannot run here), checks what
 * a person sees: the resources listed with their counts, a record's state
 * changing after an update, a live event arriving, a 400 for a bad filter;
 * and that nothing the test started (this process, the browser and its
 * helpers) listens anywhere but on 127.0.0.1.
 *
 * `chromium` missing fails the test, with how to install it (`.ci/run` does).
 * The browser and its profile directory are removed whatever the outcome;
 * every wait is bounded.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Metric, Schema } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { type BrowserContext, chromium, type Page } from "playwright-core"
import { Inspector, Resource, Store } from "../src/index.js"
import { Character, Machine } from "./fixtures/TimeTravel.js"

/** Records that sleep as soon as they are idle: the page tells them apart from awake ones. */
const Sleeper = Resource.make("Sleeper", {
  fields: { id: Schema.String },
  primaryKey: ["id"],
  hibernateAfter: "50 millis"
})

const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium"

const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync"
]

/** How long any one thing the page should show may take to show. */
const wait = 10_000

/** A browser with a fresh profile directory, both gone when the scope closes. */
const browser = Effect.acquireRelease(
  Effect.tryPromise({
    try: async () => {
      if (!Fs.existsSync(executablePath)) {
        throw new Error(
          `the browser test needs Debian's chromium at ${executablePath}: ` +
            "apt-get update && apt-get install -y chromium (as root; .ci/run does it), or set CHROMIUM to its path"
        )
      }
      const profile = Fs.mkdtempSync(Path.join(Os.tmpdir(), "inspector-chromium-"))
      try {
        const context = await chromium.launchPersistentContext(profile, {
          executablePath,
          headless: true,
          args: chromiumArgs,
          timeout: 30_000,
          viewport: { width: 1440, height: 900 }
        })
        return { context, profile }
      } catch (error) {
        Fs.rmSync(profile, { recursive: true, force: true })
        throw error
      }
    },
    catch: (error) => error
  }).pipe(Effect.orDie),
  ({ context, profile }) =>
    Effect.promise(() => context.close().catch(() => undefined)).pipe(
      Effect.timeout("10 seconds"),
      Effect.ignore,
      Effect.ensuring(Effect.sync(() => Fs.rmSync(profile, { recursive: true, force: true })))
    )
)

/** A promise of the page, as an Effect that dies with its error. */
const on = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: (error) => error }).pipe(Effect.orDie)

const newPage = (context: BrowserContext) =>
  on(async () => {
    const page = context.pages()[0] ?? (await context.newPage())
    page.setDefaultTimeout(wait)
    return page
  })

/** The text of an element, once it satisfies `check`. */
const textOf = (page: Page, selector: string, check: (text: string) => boolean, what: string) =>
  on(async () => {
    const deadline = Date.now() + wait
    let text = ""
    while (Date.now() < deadline) {
      text = (await page.locator(selector).first().textContent().catch(() => null)) ?? ""
      if (check(text)) return text
      await page.waitForTimeout(50)
    }
    throw new Error(`${what}: ${selector} shows ${JSON.stringify(text)} after ${wait} ms`)
  })

// ---------------------------------------------------------------------------------------------------
// what listens: /proc, for this process and its descendants (the browser and its helpers)
// ---------------------------------------------------------------------------------------------------

const descendants = (root: number): Array<number> => {
  const parents = new Map<number, number>()
  for (const entry of Fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = Fs.readFileSync(`/proc/${entry}/stat`, "utf8")
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]))
    } catch {
      // gone meanwhile
    }
  }
  const out = [root]
  for (let i = 0; i < out.length; i++) {
    for (const [pid, parent] of parents) if (parent === out[i] && !out.includes(pid)) out.push(pid)
  }
  return out
}

const socketInodes = (pids: ReadonlyArray<number>): Set<string> => {
  const inodes = new Set<string>()
  for (const pid of pids) {
    let fds: Array<string> = []
    try {
      fds = Fs.readdirSync(`/proc/${pid}/fd`)
    } catch {
      continue
    }
    for (const fd of fds) {
      try {
        const match = /^socket:\[(\d+)\]$/.exec(Fs.readlinkSync(`/proc/${pid}/fd/${fd}`))
        if (match !== null) inodes.add(match[1]!)
      } catch {
        // closed meanwhile
      }
    }
  }
  return inodes
}

/** A local address of /proc/net/{tcp,udp}{,6}, in words. */
const decodeAddress = (hex: string): string => {
  const [address, port] = hex.split(":") as [string, string]
  const bytes = address.match(/../g)!.map((b) => parseInt(b, 16))
  // each 32-bit word is in host (little-endian) order
  const words: Array<number> = []
  for (let i = 0; i < bytes.length; i += 4) words.push(...bytes.slice(i, i + 4).reverse())
  const ip = words.length === 4
    ? words.join(".")
    : words.every((b, i) => i < 10 ? b === 0 : i < 12 ? b === 255 : true)
    ? `::ffff:${words.slice(12).join(".")}`
    : words.map((b, i) => i % 2 === 0 ? "" : ((words[i - 1]! << 8) | b).toString(16)).filter((s) => s !== "").join(":")
  return `${ip}:${parseInt(port, 16)}`
}

/** Every TCP socket listening and UDP socket bound, of these processes. */
const listening = (pids: ReadonlyArray<number>): Array<string> => {
  const inodes = socketInodes(pids)
  const out: Array<string> = []
  for (const table of ["tcp", "tcp6", "udp", "udp6"]) {
    let lines: Array<string> = []
    try {
      lines = Fs.readFileSync(`/proc/net/${table}`, "utf8").trim().split("\n").slice(1)
    } catch {
      continue
    }
    for (const line of lines) {
      const fields = line.trim().split(/\s+/)
      const [local, state, inode] = [fields[1]!, fields[3]!, fields[9]!]
      const bound = table.startsWith("tcp") ? state === "0A" : !local.endsWith(":0000")
      if (bound && inodes.has(inode)) out.push(`${table} ${decodeAddress(local)}`)
    }
  }
  return out
}

// ---------------------------------------------------------------------------------------------------

describe("Inspector in a browser", () => {
  it.live(
    "shows the resources, a record changing, live events, a 400; listens on 127.0.0.1 only",
    () =>
      Effect.gen(function*() {
        const inspector = yield* Inspector.Inspector
        const marty = yield* Store.create(Character, "create", { id: "marty", name: "Marty McFly", currentYear: 1985 })
        yield* Store.create(Character, "create", { id: "doc", name: "Emmett Brown", currentYear: 1985 })
        yield* Store.create(Character, "create", { id: "biff", name: "Biff Tannen", currentYear: 1955 })
        const delorean = yield* Store.create(Machine, "create", { id: "delorean", name: "OUTATIME" })
        yield* Store.create(Sleeper, "create", { id: "rip" })
        yield* Store.create(Sleeper, "create", { id: "van winkle" })

        const { context } = yield* browser
        const page = yield* newPage(context)
        const errors: Array<string> = []
        page.on("pageerror", (error) => errors.push(error.message))
        yield* on(() => page.goto(inspector.url, { timeout: wait }))

        // the resources, with their counts
        yield* textOf(
          page,
          "[data-testid=resources] tr[data-resource=Character] td:nth-child(2)",
          (t) => t === "3",
          "Character's records"
        )
        yield* textOf(
          page,
          "[data-testid=resources] tr[data-resource=Machine] td:nth-child(2)",
          (t) => t === "1",
          "Machine's records"
        )
        // the sleepers: counted, asleep, not awake
        yield* textOf(
          page,
          "[data-testid=resources] tr[data-resource=Sleeper] td:nth-child(4)",
          (t) => t === "2",
          "the Sleepers asleep"
        )
        const sleepers = yield* on(() =>
          page.locator("[data-testid=resources] tr[data-resource=Sleeper] td").allTextContents()
        )
        assert.deepStrictEqual(sleepers, ["Sleeper", "2", "0", "2"])
        const rows = yield* on(() => page.locator("[data-testid=records] tbody tr").count())
        assert.strictEqual(rows, 3)

        // a record: its state, then the same state after an update
        yield* on(() => page.locator("[data-testid=records] tbody tr[data-key='{\"id\":\"marty\"}']").click())
        yield* textOf(page, "[data-testid=record-state]", (t) => t.includes("\"currentYear\": 1985"), "Marty's state")
        yield* on(() => page.waitForSelector("[data-testid=events-status][data-status=live]", { timeout: wait }))
        yield* Store.update(Character, marty, "travelInTime", { targetYear: 1955 })
        yield* textOf(
          page,
          "[data-testid=record-state]",
          (t) => t.includes("\"currentYear\": 1955"),
          "Marty's new state"
        )
        // its row in the table follows
        yield* textOf(
          page,
          "[data-testid=records] tbody tr[data-key='{\"id\":\"marty\"}'] td:nth-child(4)",
          (t) => t === "1955",
          "Marty's row"
        )
        yield* textOf(
          page,
          "[data-testid=record-events] li:first-child",
          (t) => t.includes("Updated"),
          "Marty's events"
        )

        // a live event arriving
        yield* Store.update(Machine, delorean, "charge")
        yield* textOf(
          page,
          "[data-testid=events] li[data-resource=Machine]",
          (t) => t.includes("Updated") && t.includes("delorean") && t.includes("\"hasPower\":true"),
          "the Machine's live event"
        )

        // a bad filter: the page shows the 400 and its message
        yield* on(() => page.fill("[data-testid=filter]", "colour = red"))
        const [response] = yield* on(() =>
          Promise.all([
            page.waitForResponse((r) => r.url().includes("/records?"), { timeout: wait }),
            page.click("[data-testid=apply]")
          ])
        )
        assert.strictEqual(response.status(), 400)
        yield* textOf(
          page,
          "[data-testid=error]",
          (t) => t === "400: Character: invalid query: unknown field \"colour\" in filter",
          "the filter's error"
        )
        assert.isTrue(yield* on(() => page.isVisible("[data-testid=error]")))
        // and no records, nor a page count, under it
        assert.strictEqual(yield* on(() => page.locator("[data-testid=records] tbody tr").count()), 0)
        assert.strictEqual(yield* on(() => page.locator("[data-testid=page]").textContent()), "")
        // a good one clears it
        yield* on(() => page.fill("[data-testid=filter]", "currentYear = 1955"))
        yield* on(() => page.click("[data-testid=apply]"))
        yield* textOf(page, "[data-testid=page]", (t) => t === "records 1–2", "the filtered page")
        assert.isFalse(yield* on(() => page.isVisible("[data-testid=error]")))

        // the metrics plots are drawn
        yield* on(() =>
          page.waitForSelector("[data-testid=metrics] .plot svg polyline", { state: "attached", timeout: wait })
        )

        // nothing listens beyond 127.0.0.1: not this process, not the browser
        const sockets = listening(descendants(process.pid))
        assert.include(sockets, `tcp 127.0.0.1:${inspector.port}`)
        assert.deepStrictEqual(sockets.filter((s) => !/ 127\.0\.0\.1:\d+$/.test(s)), [], sockets.join(", "))
        assert.deepStrictEqual(errors, [])
      }).pipe(
        Effect.scoped,
        Effect.provide(
          Inspector.layer({ port: 0, sampleInterval: "200 millis" }).pipe(
            Layer.provideMerge(Store.layer([Character, Machine, Sleeper])),
            Layer.provideMerge(Layer.succeed(Metric.MetricRegistry, new Map()))
          )
        )
      ),
    { timeout: 90_000 }
  )
})
