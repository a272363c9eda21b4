/**
 * Multi-process tests: 3 runner processes (NodeClusterSocket on loopback,
 * PostgreSQL storage, a fresh schema per test) and a client-only load process
 * appending unique tokens and logging its acknowledgements. A runner is
 * killed (SIGKILL) or stopped (SIGTERM) under load; the database must hold
 * every acknowledged token exactly once, and no token twice.
 *
 * `CLUSTER_LONG=1` (`npm run test:cluster`) runs the load longer. Every
 * process started here is killed when its test ends, even on failure.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { trackChildren } from "../fixtures/Children.js"
import * as Pg from "./pg.js"

const long = process.env.CLUSTER_LONG === "1"
const loadSeconds = long ? 60 : 12
const procs = fileURLToPath(new URL("./procs/", import.meta.url))
const { killAll, track } = trackChildren()

interface Proc {
  readonly child: ChildProcess
  readonly lines: Array<string>
  readonly waitFor: (prefix: string, ms: number) => Promise<string>
  readonly exited: Promise<number | null>
}

const start = (script: string, args: ReadonlyArray<string>): Proc => {
  const child = spawn(process.execPath, ["--import", "tsx", procs + script, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    cwd: fileURLToPath(new URL("../../", import.meta.url))
  })
  track(child)
  const lines: Array<string> = []
  const waiters: Array<{ prefix: string; resolve: (line: string) => void }> = []
  let buffer = ""
  child.stdout!.on("data", (chunk) => {
    buffer += chunk.toString()
    let i: number
    while ((i = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, i)
      buffer = buffer.slice(i + 1)
      lines.push(line)
      for (const w of waiters.filter((w) => line.startsWith(w.prefix))) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(line)
      }
    }
  })
  let stderr = ""
  child.stderr!.on("data", (chunk) => {
    stderr = (stderr + chunk.toString()).slice(-4000)
  })
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  const waitFor = (prefix: string, ms: number) =>
    new Promise<string>((resolve, reject) => {
      const found = lines.find((l) => l.startsWith(prefix))
      if (found !== undefined) return resolve(found)
      const timer = setTimeout(
        () => reject(new Error(`${script} ${args.join(" ")}: no ${prefix} within ${ms} ms; stderr: ${stderr}`)),
        ms
      )
      waiters.push({
        prefix,
        resolve: (line) => {
          clearTimeout(timer)
          resolve(line)
        }
      })
      void exited.then((code) => {
        clearTimeout(timer)
        reject(new Error(`${script} ${args.join(" ")} exited (${code}) before ${prefix}; stderr: ${stderr}`))
      })
    })
  return { child, lines, waitFor, exited }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Runs the load against 3 runners, disturbing runner 2 with `disturb` after 3 s; checks the invariants. */
const scenario = (
  label: string,
  disturb: (runners: Array<Proc>, ports: Array<number>, schema: string) => Promise<void>,
  seconds = loadSeconds
) =>
  Effect.gen(function*() {
    const schema = Pg.freshSchema(label)
    yield* Pg.schemaScoped(schema)
    const base = 20000 + Math.floor(Math.random() * 20000)
    const ports = [base, base + 1, base + 2]
    const result = yield* Effect.promise(async () => {
      const runners = ports.map((port) => start("runner.ts", [schema, String(port)]))
      await Promise.all(runners.map((r) => r.waitFor("READY", 60_000)))
      const client = start("client.ts", [schema, "64", String(seconds), "32"])
      await client.waitFor("STARTED", 60_000)
      await sleep(3000)
      await disturb(runners, ports, schema)
      const done = await client.waitFor("DONE", (seconds + 60) * 1000)
      return { client, done }
    })
    const [, acks, fails, stall] = result.done.split(" ").map(Number)
    const acked = result.client.lines.filter((l) => l.startsWith("ACK ")).map((l) => l.split(" "))
    const failed = result.client.lines.filter((l) => l.startsWith("FAIL "))
    const rows = yield* Pg.withAdmin((sql) =>
      sql.unsafe(`SELECT key, state->'tokens' AS tokens FROM "${schema}".mp_records WHERE alive`)
    )
    const stored = new Map<string, Array<string>>((rows as Array<any>).map((r) => [r.key, r.tokens]))
    const seen = new Map<string, number>()
    for (const tokens of stored.values()) for (const t of tokens) seen.set(t, (seen.get(t) ?? 0) + 1)
    const lost = acked.filter(([, id, token]) => !(stored.get(id!) ?? []).includes(token!))
    // a call that failed saying its write was not applied (Unavailable, applied "no") was not
    const notApplied = failed.map((l) => l.split(" ")).filter(([, , , applied]) => applied === "no")
    const saidNoButApplied = notApplied.filter(([, id, token]) => (stored.get(id!) ?? []).includes(token!))
    const twice = [...seen].filter(([, n]) => n > 1)
    console.log(
      `${label}: ${acks} acknowledged, ${fails} failed, longest call ${stall} ms, ` +
        `lost ${lost.length}, applied twice ${twice.length}`
    )
    assert.strictEqual(acked.length, acks)
    assert.isAbove(acks!, 100)
    assert.deepStrictEqual(lost, [], "acknowledged but not applied")
    assert.deepStrictEqual(twice, [], "applied twice")
    assert.deepStrictEqual(saidNoButApplied, [], "failed with applied \"no\" but applied")
    // without failures, the database holds exactly the acknowledged tokens
    if (fails === 0) assert.strictEqual(seen.size, acks)
    // events: every applied update heard once by the client-only process, in each record's order
    const events = new Map<string, Array<string>>()
    for (const line of result.client.lines.filter((l) => l.startsWith("EVT "))) {
      const [, id, token] = line.split(" ")
      events.set(id!, [...(events.get(id!) ?? []), token!])
    }
    for (const [id, tokens] of stored) {
      const heard = events.get(id) ?? []
      const diverge = tokens.findIndex((t, i) => heard[i] !== t)
      assert.deepStrictEqual(
        heard,
        tokens,
        `events of ${id}: ${heard.length} heard of ${tokens.length} applied, first difference at ${diverge}`
      )
    }
    // expiry: every session (2 s of inactivity) destroyed once, through its destroy action, its event heard once
    // (not after a SIGKILL: a destroy action's hooks run at least once across a crash)
    if (label !== "kill") {
      const log = yield* Pg.withAdmin((sql) => sql.unsafe(`SELECT id FROM "${schema}".expired_log ORDER BY id`))
      const sessions = Array.from({ length: 20 }, (_, i) => `S${i}`).sort()
      assert.deepStrictEqual((log as Array<any>).map((r) => r.id), sessions, "destroy actions run")
      const expired = result.client.lines.filter((l) => l.startsWith("EXPIRED ")).map((l) => l.split(" ")[1]).sort()
      assert.deepStrictEqual(expired, sessions, "expiry events heard")
    }
    // each caller is sequential: its tokens appear in each record in the order it sent them
    for (const [id, tokens] of stored) {
      const last = new Map<string, number>()
      for (const t of tokens) {
        const [caller, seq] = t.split("-")
        assert.isAbove(Number(seq), last.get(caller!) ?? -1, `${id}: ${t} out of order`)
        last.set(caller!, Number(seq))
      }
    }
    return { acks: acks!, fails: fails!, failed, stall: stall! }
  }).pipe(Effect.scoped, Effect.ensuring(Effect.sync(killAll)))

describe("Cluster, 3 runner processes and a client (PostgreSQL)", () => {
  it.live(
    "schedules across a SIGKILL of a runner: every alarm rings once, on whichever runner owns it",
    () =>
      Effect.gen(function*() {
        const schema = Pg.freshSchema("alarms")
        yield* Pg.schemaScoped(schema)
        const base = 20000 + Math.floor(Math.random() * 20000)
        const ports = [base, base + 1, base + 2]
        const count = 60
        yield* Effect.promise(async () => {
          const runners = ports.map((port) => start("runner.ts", [schema, String(port)]))
          await Promise.all(runners.map((r) => r.waitFor("READY", 60_000)))
          const client = start("alarms-client.ts", [schema, String(count)])
          await client.waitFor("DONE", 60_000)
          // the alarms ring from 1 s to 6 s after their creates: runner 2 dies among them
          await sleep(1500)
          runners[1]!.child.kill("SIGKILL")
          await runners[1]!.exited
        })
        // its shards move (their locks expire in 4 s), and the sweeper finds what its alarms left due
        const rings = yield* Effect.promise(async () => {
          const end = Date.now() + 40_000
          while (true) {
            const rows = await Effect.runPromise(
              Pg.withAdmin((sql) =>
                sql.unsafe(`SELECT key, state->'rings' AS rings FROM "${schema}".mp_records WHERE resource = 'Alarm'`)
              )
            )
            const rung = new Map((rows as Array<any>).map((r) => [r.key as string, r.rings as Array<string>]))
            if (
              (rung.size === count && [...rung.values()].every((r) => r.length >= 1)) || Date.now() > end
            ) return rung
            await sleep(250)
          }
        })
        const byRunner = new Map<string, number>()
        for (const r of rings.values()) for (const port of r) byRunner.set(port, (byRunner.get(port) ?? 0) + 1)
        console.log(`alarms: ${rings.size} stored, rung by runner ${JSON.stringify(Object.fromEntries(byRunner))}`)
        assert.strictEqual(rings.size, count)
        const wrong = [...rings].filter(([, r]) => r.length !== 1)
        assert.deepStrictEqual(wrong, [], "every alarm rang exactly once")
      }).pipe(Effect.scoped, Effect.ensuring(Effect.sync(killAll))),
    120_000
  )

  it.live(
    "SIGKILL of a runner under load: nothing acknowledged is lost, nothing applied twice",
    () =>
      Effect.asVoid(scenario("kill", async (runners) => {
        runners[1]!.child.kill("SIGKILL")
      })),
    { timeout: 170_000 }
  )

  it.live("SIGTERM of a runner under load: its records resume elsewhere; no call fails", () =>
    Effect.gen(function*() {
      const { failed } = yield* scenario("term", async (runners) => {
        runners[1]!.child.kill("SIGTERM")
        await runners[1]!.exited
      })
      assert.deepStrictEqual(failed, [])
    }), { timeout: 170_000 })

  it.live("a rolling restart of every runner under load: no call fails", () =>
    Effect.gen(function*() {
      const { failed } = yield* scenario("rolling", async (runners, ports, schema) => {
        for (let i = 0; i < runners.length; i++) {
          runners[i]!.child.kill("SIGTERM")
          await runners[i]!.exited
          runners[i] = start("runner.ts", [schema, String(ports[i])])
          await runners[i]!.waitFor("READY", 60_000)
          await sleep(1000)
        }
      }, long ? 60 : 25)
      assert.deepStrictEqual(failed, [])
    }), { timeout: 170_000 })

  it.live(
    "two hooks' calls crossing on records of different runners: one is refused as re-entrant, none hangs",
    () =>
      Effect.gen(function*() {
        const schema = Pg.freshSchema("knot")
        yield* Pg.schemaScoped(schema)
        const base = 20000 + Math.floor(Math.random() * 20000)
        const pairs = 16
        const client = yield* Effect.promise(async () => {
          const runners = [base, base + 1].map((port) => start("runner.ts", [schema, String(port)]))
          await Promise.all(runners.map((r) => r.waitFor("READY", 60_000)))
          const client = start("knots.ts", [schema, String(pairs)])
          await client.waitFor("DONE", 90_000)
          return client
        })
        const results = client.lines.filter((l) => l.startsWith("PAIR ")).map((l) => l.split(" "))
        assert.strictEqual(results.length, pairs)
        // 16 random pairs over 2 runners: all on one runner has probability 2^-15
        const crossing = results.filter(([, , a, b]) => a !== b)
        assert.isAbove(crossing.length, 0, "no pair of knots on two runners")
        for (const [, i, ownerA, ownerB, a, b] of results) {
          const label = `pair ${i} (runners ${ownerA} and ${ownerB}): ${a}, ${b}`
          assert.isTrue([a, b].every((o) => o === "ok" || o === "deadlock"), label)
          assert.isTrue(a === "deadlock" || b === "deadlock", label)
        }
        const after = client.lines.find((l) => l.startsWith("AFTER "))!.split(" ").slice(1)
        assert.deepStrictEqual(after, Array.from({ length: pairs * 2 }, () => "ok"), "every knot answers afterwards")
      }).pipe(Effect.scoped, Effect.ensuring(Effect.sync(killAll))),
    { timeout: 170_000 }
  )

  it.live("a runner joining under load: no call fails", () =>
    Effect.gen(function*() {
      const { failed } = yield* scenario("join", async (runners, ports, schema) => {
        const port = ports[2]! + 1
        runners.push(start("runner.ts", [schema, String(port)]))
        await runners[3]!.waitFor("READY", 60_000)
      })
      assert.deepStrictEqual(failed, [])
    }), { timeout: 170_000 })
})
