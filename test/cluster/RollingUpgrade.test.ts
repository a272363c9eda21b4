/**
 * A rolling upgrade under load, a rollback and a roll forward (issue 19):
 * 3 runner processes (NodeClusterSocket on loopback, PostgreSQL storage, a
 * fresh schema) start on v1 of Tally; two client-only load processes, one
 * running v1 and one v2 (`procs/upgrade-domain.ts`: v2 adds `label` with a
 * migration), append unique tokens to 64 records. The runners are replaced
 * one at a time by v2 (SIGTERM, exit, v2 on the same port, READY), then by v1
 * (a rollback), then by v2 again. v2's appends set `label: "v2"` on r0..r7.
 *
 * Checked from the database and the clients' logs: no acknowledged token
 * lost, none applied twice, no row quarantined, no call failed, every reply
 * a valid record of its caller's version holding its token, every update
 * heard by both clients in each record's order, the labels v2 set kept by
 * v1's writes during the rollback (and every row still of version 2), and
 * every row decoding with v2 at the end.
 *
 * `CLUSTER_LONG=1` (`npm run test:cluster`) runs each phase longer. Every
 * process started here is killed when the test ends, even on failure.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { compile } from "../../src/internal/resource.js"
import { decodeStored } from "../../src/internal/sql/codec.js"
import { trackChildren } from "../fixtures/Children.js"
import * as Pg from "./pg.js"
import { labelled, TallyV2 } from "./procs/upgrade-domain.js"

const long = process.env.CLUSTER_LONG === "1"
/** Load on every set of runners (before the upgrade, after each roll), in ms. */
const phaseMs = long ? 15_000 : 3_000
/** Load between two runner replacements, in ms. */
const stepMs = long ? 3_000 : 500
const records = 64
const procs = fileURLToPath(new URL("./procs/", import.meta.url))
const { killAll, track } = trackChildren()

interface Proc {
  readonly child: ChildProcess
  readonly lines: Array<string>
  readonly waitFor: (prefix: string, ms: number) => Promise<string>
  readonly exited: Promise<number | null>
}

/** A child process whose stdout lines are kept; `waitFor` a line's prefix, bounded. */
const start = (script: string, args: ReadonlyArray<string>): Proc => {
  const child = spawn(process.execPath, ["--import", "tsx", procs + script, ...args], {
    stdio: ["pipe", "pipe", "pipe"],
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
  // a child killed before it reads its stdin
  child.stdin!.on("error", () => {})
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

/** `promise`, or a failure naming `what` after `ms`. */
const within = <A>(promise: Promise<A>, ms: number, what: string): Promise<A> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
    })
  ]).finally(() => clearTimeout(timer))
}

interface StoredRow {
  readonly key: string
  readonly schema_version: number
  readonly state: { readonly tokens: ReadonlyArray<string>; readonly label?: string }
}

/** What the state table holds of Tally (live rows). */
const snapshot = (schema: string) =>
  Effect.runPromise(
    Pg.withAdmin((sql) =>
      sql.unsafe<StoredRow>(
        `SELECT key, schema_version, state FROM "${schema}".up_records WHERE alive AND resource = 'Tally'`
      )
    )
  )

/** A phase's figures: rows by version, the labels of r0..r7, acknowledgements so far. */
const describeRows = (rows: ReadonlyArray<StoredRow>) => {
  const v2 = rows.filter((r) => Number(r.schema_version) === 2).length
  const labels = rows.filter((r) => labelled.has(r.key) && r.state.label === "v2").length
  return `rows v1 ${rows.length - v2}, v2 ${v2}, labelled "v2" ${labels}/${labelled.size}`
}

describe("Cluster, a rolling upgrade, a rollback and a roll forward under load (PostgreSQL)", () => {
  it.live(
    "v1 -> v2 -> v1 -> v2 one runner at a time: nothing lost, nothing applied twice, nothing quarantined, no call failed",
    () =>
      Effect.gen(function*() {
        const began = Date.now()
        const schema = Pg.freshSchema("upgrade")
        yield* Pg.schemaScoped(schema)
        const base = 20000 + Math.floor(Math.random() * 20000)
        const ports = [base, base + 1, base + 2]
        const run = yield* Effect.promise(async () => {
          const runners = ports.map((port) => start("upgrade-runner.ts", [schema, String(port), "1"]))
          await Promise.all(runners.map((r) => r.waitFor("READY", 60_000)))
          const clients = [
            start("upgrade-client.ts", [schema, "1", String(records), "16", "a", "1", "600"]),
            start("upgrade-client.ts", [schema, "2", String(records), "16", "b", "0", "600"])
          ]
          // the v1 client creates the records; the v2 client only subscribes
          await clients[0]!.waitFor("STARTED", 60_000)
          await clients[1]!.waitFor("STARTED", 60_000)
          for (const c of clients) c.child.stdin!.write("GO\n")
          const count = (prefix: string) =>
            clients.reduce((n, c) => n + c.lines.filter((l) => l.startsWith(prefix)).length, 0)
          const phases: Array<
            { readonly name: string; readonly rows: ReadonlyArray<StoredRow>; readonly line: string }
          > = []
          const steps: Array<string> = []
          let t = Date.now()
          let acks = 0
          let bad = 0
          const phase = async (name: string) => {
            const rows = await snapshot(schema)
            const [nowAcks, nowBad] = [count("ACK "), count("BADREPLY ")]
            const line = `${name}: ${nowAcks - acks} acknowledged (${nowBad - bad} bad replies) in ${
              ((Date.now() - t) / 1000).toFixed(1)
            } s, ${describeRows(rows)}`
            phases.push({ name, rows, line })
            t = Date.now()
            acks = nowAcks
            bad = nowBad
          }
          /** Replaces every runner, one at a time, by one running `version`, under load. */
          const roll = async (version: "1" | "2") => {
            const took: Array<string> = []
            for (let i = 0; i < runners.length; i++) {
              const t0 = Date.now()
              runners[i]!.child.kill("SIGTERM")
              await within(runners[i]!.exited, 30_000, `runner ${ports[i]} stopping`)
              const t1 = Date.now()
              runners[i] = start("upgrade-runner.ts", [schema, String(ports[i]), version])
              await runners[i]!.waitFor("READY", 60_000)
              took.push(`${t1 - t0}+${Date.now() - t1} ms`)
              await sleep(stepMs)
            }
            steps.push(`to v${version}: stopped+ready ${took.join(", ")}`)
            await sleep(phaseMs)
          }
          await sleep(phaseMs)
          await phase("v1")
          await roll("2")
          await phase("upgraded to v2")
          await roll("1")
          await phase("rolled back to v1")
          await roll("2")
          await phase("rolled forward to v2")
          for (const c of clients) c.child.stdin!.end("STOP\n")
          const done = await Promise.all(clients.map((c) => c.waitFor("DONE", 60_000)))
          return { clients, done, phases, steps }
        })
        const rows = yield* Effect.promise(() => snapshot(schema))
        const quarantined = Number(
          (yield* Pg.withAdmin((sql) =>
            sql.unsafe<{ readonly n: string }>(`SELECT count(*) AS n FROM "${schema}".up_quarantine`)
          ))[0]!.n
        )
        const stored = new Map(rows.map((r) => [r.key, r.state.tokens]))
        const seen = new Map<string, number>()
        for (const tokens of stored.values()) for (const t of tokens) seen.set(t, (seen.get(t) ?? 0) + 1)
        const lines = run.clients.flatMap((c) => c.lines)
        const acked = lines.filter((l) => l.startsWith("ACK ")).map((l) => l.split(" "))
        const failed = lines.filter((l) => l.startsWith("FAIL "))
        const badReplies = lines.filter((l) => l.startsWith("BADREPLY "))
        const lost = acked.filter(([, id, token]) => !(stored.get(id!) ?? []).includes(token!))
        const twice = [...seen].filter(([, n]) => n > 1)
        const v2 = compile(TallyV2)
        const undecodable = rows.filter((r) => {
          try {
            decodeStored(v2, r.state, Number(r.schema_version))
            return false
          } catch {
            return true
          }
        })
        const stall = Math.max(...run.done.map((d) => Number(d.split(" ")[3])))
        // the labels v2 set, and the version of every row, outlive v1's writes during the rollback
        const skewed = run.phases.filter((p) => p.name !== "v1").flatMap((p) =>
          p.rows.filter((r) =>
            Number(r.schema_version) !== 2 || r.state.label !== (labelled.has(r.key) ? "v2" : "none")
          ).map((r) => `${p.name}: ${r.key} version ${r.schema_version} label ${r.state.label}`)
        )
        // every update heard by both clients, in each record's order
        const unheard = run.clients.flatMap((client, c) => {
          const events = new Map<string, Array<string>>()
          for (const line of client.lines.filter((l) => l.startsWith("EVT "))) {
            const [, id, token] = line.split(" ")
            events.set(id!, [...(events.get(id!) ?? []), token!])
          }
          return [...stored].flatMap(([id, tokens]) => {
            const heard = events.get(id) ?? []
            const diverge = tokens.findIndex((t, i) => heard[i] !== t)
            return diverge < 0 && heard.length === tokens.length ? [] : [
              `client v${c + 1}, ${id}: ${heard.length} heard of ${tokens.length} applied, first difference at ${
                diverge < 0 ? tokens.length : diverge
              }`
            ]
          })
        })
        for (const p of run.phases) console.log(`upgrade: ${p.line}`)
        for (const step of run.steps) console.log(`upgrade: ${step}`)
        console.log(
          `upgrade: ${acked.length} acknowledged, ${failed.length} failed, lost ${lost.length}, ` +
            `applied twice ${twice.length}, quarantined ${quarantined}, undecodable by v2 ${undecodable.length}, ` +
            `labels or versions lost ${skewed.length}, bad replies ${badReplies.length}, ` +
            `records with events missed ${unheard.length}, longest call ${stall} ms, ` +
            `${((Date.now() - began) / 1000).toFixed(1)} s`
        )
        for (const sample of [failed, badReplies, skewed, unheard].flatMap((lines) => lines.slice(0, 3))) {
          console.log(`upgrade: ${sample}`)
        }
        for (const d of run.done) assert.isAbove(Number(d.split(" ")[1]), 100, "acknowledged by each client")
        assert.deepStrictEqual(lost, [], "acknowledged but not applied")
        assert.deepStrictEqual(twice, [], "applied twice")
        assert.strictEqual(quarantined, 0, "rows quarantined")
        assert.deepStrictEqual(failed, [], "calls failed")
        assert.strictEqual(seen.size, acked.length, "the database holds exactly the acknowledged tokens")
        assert.strictEqual(rows.length, records)
        assert.deepStrictEqual(skewed, [], "labels or versions v1 did not keep")
        assert.deepStrictEqual(undecodable.map((r) => r.key), [], "rows v2 cannot decode")
        assert.deepStrictEqual(
          badReplies.slice(0, 5),
          [],
          "replies that are not a valid record of the caller's version"
        )
        assert.deepStrictEqual(unheard.slice(0, 5), [], "updates not heard")
        // each caller is sequential: its tokens appear in each record in the order it sent them
        for (const [id, tokens] of stored) {
          const last = new Map<string, number>()
          for (const t of tokens) {
            const [caller, seq] = t.split("-")
            assert.isAbove(Number(seq), last.get(caller!) ?? -1, `${id}: ${t} out of order`)
            last.set(caller!, Number(seq))
          }
        }
      }).pipe(Effect.scoped, Effect.ensuring(Effect.sync(killAll))),
    { timeout: long ? 600_000 : 170_000 }
  )

  it.live(
    "a v2 caller's write of a field or an action v1 does not know: refused by a v1 owner (retryable), never " +
      "acknowledged without it; applied once a v2 owner serves it; a v1 caller's create on a v2 owner is migrated",
    () =>
      Effect.gen(function*() {
        const schema = Pg.freshSchema("newer")
        yield* Pg.schemaScoped(schema)
        const port = 20000 + Math.floor(Math.random() * 20000)
        const results = yield* Effect.promise(async () => {
          let runner = start("upgrade-runner.ts", [schema, String(port), "1"])
          await runner.waitFor("READY", 60_000)
          // r0 and r1, created by v1
          const setup = start("upgrade-client.ts", [schema, "1", "2", "1", "a", "1", "0"])
          await setup.waitFor("STARTED", 60_000)
          setup.child.stdin!.end("GO\n")
          await setup.waitFor("DONE", 60_000)
          const probe = async (round: number) => {
            const p = start("upgrade-probe.ts", [schema, String(round)])
            await p.waitFor("DONE", 60_000)
            const rows = await snapshot(schema)
            return {
              results: p.lines.filter((l) => l.startsWith("RESULT ")).map((l) => l.split(" ").slice(1).join(" ")),
              // what the table holds: each record's label (null: none stored)
              labels: Object.fromEntries(rows.map((r) => [r.key, r.state.label ?? null]))
            }
          }
          const v1 = await probe(1)
          runner.child.kill("SIGTERM")
          await within(runner.exited, 30_000, "the v1 runner stopping")
          runner = start("upgrade-runner.ts", [schema, String(port), "2"])
          await runner.waitFor("READY", 60_000)
          const v2 = await probe(2)
          // a v1 caller's create reaching the v2 owner: completed by v2's migration from v1 (label "none")
          const older = start("upgrade-probe.ts", [schema, "2", "older"])
          await older.waitFor("DONE", 60_000)
          const olderResults = older.lines.filter((l) => l.startsWith("RESULT ")).map((l) =>
            l.split(" ").slice(1).join(" ")
          )
          const olderLabels = Object.fromEntries((await snapshot(schema)).map((r) => [r.key, r.state.label ?? null]))
          return { v1, v2, older: { results: olderResults, label: olderLabels["q2"] } }
        })
        console.log(`newer writes: on v1 ${JSON.stringify(results.v1)}, on v2 ${JSON.stringify(results.v2)}`)
        // refused before anything was applied: nothing created, no label written
        assert.deepStrictEqual(results.v1.results, [
          "create Unavailable:no -",
          "update Unavailable:no -",
          "relabel Unavailable:no -"
        ])
        assert.deepStrictEqual(results.v1.labels, { r0: null, r1: null })
        assert.deepStrictEqual(results.v2.results, ["create ok x", "update ok y", "relabel ok z"])
        assert.deepStrictEqual(results.v2.labels, { p2: "x", r0: "y", r1: "z" })
        assert.deepStrictEqual(results.older, { results: ["older ok -"], label: "none" })
      }).pipe(Effect.scoped, Effect.ensuring(Effect.sync(killAll))),
    { timeout: 170_000 }
  )
})
