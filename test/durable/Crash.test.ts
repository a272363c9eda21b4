/**
 * Crash consistency of durable resources: a child process under load
 * (`procs/crash.ts`: 32 callers creating, appending to and destroying durable ledgers,
 * every write with a unique operation id, logged before it is sent and once
 * it is acknowledged) is killed with SIGKILL after a random number of
 * acknowledgements, restarted on the same database (it restores what the
 * last one left and goes on), killed again; then a Store in this process
 * reads every record and checks them against the log:
 *
 * - **0 lost**: every acknowledged write is in its record, and every record
 *   whose destroy was acknowledged is gone;
 * - **0 torn**: every record is the sequential application of whole writes
 *   that were sent to it (acknowledged, or in flight at a kill), each once,
 *   in an order consistent with real time (a write acknowledged before
 *   another was sent comes first).
 *
 * On SQLite (a file in a temporary directory) and PostgreSQL (a fresh
 * schema), both removed after. `DURABLE_CRASH_LONG=1` runs more rounds with
 * more writes each. Every child is killed when its test ends, even on failure.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Random, type Scope } from "effect"
import { Query, Store } from "effect-gen-server"
import type { SqlClient } from "effect/sql"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as Pg from "../cluster/pg.js"
import { trackChildren } from "../fixtures/Children.js"
import { Alarmed, database, type Entry, Ledger } from "./procs/ledger.js"

const long = process.env.DURABLE_CRASH_LONG === "1"
const rounds = long ? 8 : 2
/** A round is killed after between `minAcks` and `maxAcks` acknowledgements. */
const minAcks = long ? 2000 : 200
const maxAcks = long ? 20000 : 1000
const callers = 32
const procs = fileURLToPath(new URL("./procs/", import.meta.url))
const { killAll, track } = trackChildren()

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Counts the `A ` lines of the log, reading only what was appended since the last call. */
const ackCounter = (logFile: string) => {
  let offset = 0
  let count = 0
  let partial = ""
  return () => {
    const fd = Fs.openSync(logFile, "r")
    try {
      const size = Fs.fstatSync(fd).size
      if (size > offset) {
        const buffer = Buffer.alloc(size - offset)
        Fs.readSync(fd, buffer, 0, buffer.length, offset)
        offset = size
        const lines = (partial + buffer.toString("utf8")).split("\n")
        partial = lines.pop()!
        for (const line of lines) if (line.startsWith("A ")) count++
      }
      return count
    } finally {
      Fs.closeSync(fd)
    }
  }
}

/**
 * A child process running `procs/<script>` with `args`: its output kept,
 * killed when the test ends (`track`); `until` waits, bounded, for what it
 * writes, failing (with its output) if it ends first; `kill` sends SIGKILL
 * and waits, bounded, for it to end.
 */
const startProc = (label: string, script: string, args: ReadonlyArray<string>) => {
  const child = spawn(
    process.execPath,
    ["--disable-warning=ExperimentalWarning", "--import", "tsx", procs + script, ...args],
    { stdio: ["ignore", "pipe", "pipe"], cwd: fileURLToPath(new URL("../../", import.meta.url)) }
  )
  track(child)
  let stdout = ""
  let stderr = ""
  child.stdout!.on("data", (chunk) => (stdout += chunk.toString()))
  child.stderr!.on("data", (chunk) => (stderr = (stderr + chunk.toString()).slice(-4000)))
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const fail = (what: string) => new Error(`${label}: ${what}; stdout: ${stdout}; stderr: ${stderr}`)
  const until = async (done: () => boolean, ms: number, what: string) => {
    const end = Date.now() + ms
    while (!done()) {
      if (child.exitCode !== null || child.signalCode !== null) throw fail(`it ended before ${what}`)
      if (Date.now() > end) throw fail(`no ${what} within ${ms} ms`)
      await sleep(10)
    }
  }
  const kill = async () => {
    child.kill("SIGKILL")
    await Promise.race([exited, sleep(10_000).then(() => Promise.reject(fail("still running 10 s after SIGKILL")))])
  }
  /** Kills it if it still runs (whatever happened before). */
  const dispose = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  }
  return { ready: () => stdout.includes("READY"), until, kill, dispose }
}

/**
 * One round: starts the load on the database, waits for `acks` more
 * acknowledgements in the log, then kills it with SIGKILL. Every wait is bounded.
 */
const round = async (kind: string, where: string, n: number, logFile: string, acks: number) => {
  const proc = startProc(`round ${n} on ${kind}`, "crash.ts", [kind, where, String(n), String(callers), logFile])
  const ackCount = ackCounter(logFile)
  try {
    await proc.until(proc.ready, 60_000, "READY")
    const before = ackCount()
    await proc.until(() => ackCount() >= before + acks, 60_000, `${acks} acknowledgements`)
    await proc.kill()
    return ackCount() - before
  } finally {
    proc.dispose()
  }
}

interface Verdict {
  readonly acknowledged: number
  /** Records whose destroy was acknowledged. */
  readonly destroyed: number
  readonly records: number
  readonly lost: ReadonlyArray<string>
  readonly torn: ReadonlyArray<string>
  readonly failed: ReadonlyArray<string>
  readonly inFlightApplied: number
  readonly inFlightAbsent: number
}

/** Checks the records against the log (see the module's comment). */
export const verify = (log: string, records: ReadonlyArray<Entry>): Verdict => {
  const sent = new Map<string, { readonly id: string; readonly kind: string; readonly line: number }>()
  const acked = new Map<string, number>()
  /** The line of the first destroy sent to each record. */
  const destroySent = new Map<string, number>()
  const destroyAcked = new Set<string>()
  const failed: Array<string> = []
  log.split("\n").forEach((text, line) => {
    const [tag, op, id, kind] = text.split(" ")
    if (tag === "S") {
      sent.set(op!, { id: id!, kind: kind!, line })
      if (kind === "D" && !destroySent.has(id!)) destroySent.set(id!, line)
    } else if (tag === "A") {
      acked.set(op!, line)
      if (sent.get(op!)?.kind === "D") destroyAcked.add(sent.get(op!)!.id)
    } else if (tag === "F") {
      // only a write to a record whose destroy was sent before the failure may fail
      const target = sent.get(op!)?.id
      if (target === undefined || !((destroySent.get(target) ?? Infinity) < line)) failed.push(text)
    }
  })
  const byId = new Map(records.map((r) => [r.id, r]))
  const lost: Array<string> = []
  for (const op of acked.keys()) {
    const { id, kind } = sent.get(op)!
    const record = byId.get(id)
    if (kind === "D") {
      if (record !== undefined) lost.push(`${op} (destroy of ${id})`)
    } else if (record === undefined) {
      // gone only through a destroy sent to it
      if (!destroySent.has(id)) lost.push(op)
    } else if (!record.ops.includes(op)) lost.push(op)
  }
  const torn: Array<string> = []
  const applied = new Set<string>()
  for (const r of records) {
    const where = `${r.id} ${JSON.stringify(r)}`
    if (r.n !== r.ops.length || r.last !== r.ops[r.ops.length - 1]) torn.push(`${where}: n or last disagree with ops`)
    if (r.ops[0] !== r.id) torn.push(`${where}: not its create first`)
    // the earliest acknowledgement of the writes after each one: it must come after that one was sent
    let ackAfter = Infinity
    for (let i = r.ops.length - 1; i >= 0; i--) {
      const op = r.ops[i]!
      const send = sent.get(op)
      if (send === undefined || send.id !== r.id || send.kind === "D") torn.push(`${where}: ${op} was never sent to it`)
      else if (ackAfter < send.line) torn.push(`${where}: ${op} after a write acknowledged before it was sent`)
      if (applied.has(op)) torn.push(`${where}: ${op} applied twice`)
      applied.add(op)
      ackAfter = Math.min(ackAfter, acked.get(op) ?? Infinity)
    }
  }
  // a destroy is applied when its record is gone
  for (const [op, { id, kind }] of sent) if (kind === "D" && !byId.has(id)) applied.add(op)
  const inFlight = [...sent.keys()].filter((op) => !acked.has(op))
  const inFlightApplied = inFlight.filter((op) => applied.has(op)).length
  return {
    acknowledged: acked.size,
    destroyed: destroyAcked.size,
    records: records.length,
    lost,
    torn,
    failed,
    inFlightApplied,
    inFlightAbsent: inFlight.length - inFlightApplied
  }
}

interface Target {
  readonly name: string
  readonly kind: string
  /** The database's location (a file or a schema), removed when the scope closes. */
  readonly scoped: Effect.Effect<string, never, Scope.Scope>
}

const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "durable-crash-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

const targets: ReadonlyArray<Target> = [
  { name: "SQLite", kind: "sqlite", scoped: Effect.map(tempDir, (dir) => Path.join(dir, "store.db")) },
  {
    name: "PostgreSQL",
    kind: "pg",
    scoped: Effect.gen(function*() {
      const schema = Pg.freshSchema("crash")
      yield* Pg.schemaScoped(schema)
      return schema
    })
  }
]

describe("the crash tests' check", () => {
  const entry = (id: string, ops: Array<string>): Entry => ({ id, ops, n: ops.length, last: ops[ops.length - 1]! })
  const log = ["S a a C", "A a", "S b a U", "S c a U", "A b", "S d a U", "S e e C", "A e", "S f e D", "A f", ""]
    .join("\n")

  it("passes records holding their acknowledged writes and some in flight, without those destroyed", () => {
    const verdict = verify(log, [entry("a", ["a", "b", "c"])])
    assert.deepStrictEqual([verdict.lost, verdict.torn, verdict.failed], [[], [], []])
    assert.deepStrictEqual([verdict.inFlightApplied, verdict.inFlightAbsent, verdict.destroyed], [1, 1, 1])
  })

  it("finds an acknowledged write missing, a partial one, one applied twice or out of order, one never sent", () => {
    assert.deepStrictEqual(verify(log, [entry("a", ["a", "c"])]).lost, ["b"])
    assert.deepStrictEqual(verify(log, []).lost, ["a", "b"])
    assert.deepStrictEqual(verify(log, [entry("a", ["a", "b"]), entry("e", ["e"])]).lost, ["f (destroy of e)"])
    assert.strictEqual(verify(log, [{ ...entry("a", ["a", "b"]), n: 3 }]).torn.length, 1)
    assert.strictEqual(verify(log, [{ ...entry("a", ["a", "b"]), last: "a" }]).torn.length, 1)
    assert.strictEqual(verify(log, [entry("a", ["a", "b", "b"])]).torn.length, 1)
    assert.strictEqual(verify(log, [entry("a", ["b", "a"])]).torn.length, 2)
    assert.strictEqual(verify(log, [entry("a", ["a", "d", "b"])]).torn.length, 1)
    assert.strictEqual(verify(log, [entry("a", ["a", "b", "x"])]).torn.length, 1)
  })

  it("allows a failure only of a write to a record whose destroy was sent before", () => {
    assert.deepStrictEqual(verify(log + "F c NotFound\n", [entry("a", ["a", "b"])]).failed, ["F c NotFound"])
    assert.deepStrictEqual(verify(log + "S g e U\nF g NotFound\n", [entry("a", ["a", "b"])]).failed, [])
  })
})

for (const target of targets) {
  describe(`crash consistency of durable resources on ${target.name}`, () => {
    it.live(
      `SIGKILL under load, ${rounds} times: 0 acknowledged writes lost, 0 torn`,
      () =>
        Effect.gen(function*() {
          const where = yield* target.scoped
          const logFile = Path.join(yield* tempDir, "acks.log")
          Fs.writeFileSync(logFile, "")
          const acksPerRound: Array<number> = []
          for (let n = 1; n <= rounds; n++) {
            const acks = yield* Random.nextIntBetween(minAcks, maxAcks + 1)
            acksPerRound.push(yield* Effect.promise(() => round(target.kind, where, n, logFile, acks)))
          }
          // a Store in this process: every record as the last process left it, and still writable
          const sql: Layer.Layer<SqlClient.SqlClient> = database(target.kind, where)
          const records = yield* Effect.scoped(Effect.provide(
            Effect.gen(function*() {
              const records = yield* Store.read(Query.make(Ledger))
              for (const r of records.slice(0, 5)) {
                const after = yield* Store.update(Ledger, { id: r.id }, "append", { op: `check.${r.id}` })
                assert.deepStrictEqual(after.ops, [...r.ops, `check.${r.id}`])
              }
              return records
            }),
            Store.layer([Ledger]).pipe(Layer.provide(sql))
          ))
          const verdict = verify(Fs.readFileSync(logFile, "utf8"), records)
          console.log(
            `${target.name}: ${rounds} SIGKILLs after ${acksPerRound.join(", ")} acknowledgements; ` +
              `${verdict.acknowledged} acknowledged writes, ${verdict.records} records left, ${verdict.destroyed} destroyed; ` +
              `lost ${verdict.lost.length}, torn ${verdict.torn.length}; writes in flight at the kills: ` +
              `${verdict.inFlightApplied} applied, ${verdict.inFlightAbsent} absent`
          )
          assert.deepStrictEqual(verdict.failed, [], "no write failed under load")
          assert.deepStrictEqual(verdict.lost.slice(0, 20), [], `${verdict.lost.length} acknowledged writes lost`)
          assert.deepStrictEqual(verdict.torn.slice(0, 20), [], `${verdict.torn.length} torn records`)
          assert.isAtLeast(verdict.acknowledged, rounds * minAcks)
        }).pipe(Effect.scoped, Effect.ensuring(Effect.sync(killAll))),
      long ? 600_000 : 120_000
    )
  })
}

/**
 * Starts `procs/alarms.ts` (see there), waits until it printed `READY` and
 * `acks` creates are acknowledged, then `linger` ms (alarms ring meanwhile),
 * and kills it with SIGKILL. Every wait is bounded.
 */
const alarms = async (kind: string, where: string, count: number, logFile: string, acks: number, linger: number) => {
  const proc = startProc(`alarms on ${kind}`, "alarms.ts", [kind, where, String(count), logFile])
  const ackCount = ackCounter(logFile)
  try {
    await proc.until(proc.ready, 60_000, "READY")
    await proc.until(() => ackCount() >= acks, 60_000, `${acks} acknowledgements`)
    await sleep(linger)
    await proc.kill()
  } finally {
    proc.dispose()
  }
}

for (const target of targets) {
  describe(`schedules across SIGKILL on ${target.name}`, () => {
    it.live(
      "a schedule survives two SIGKILLs of its process and runs once: none lost, none run twice",
      () =>
        Effect.gen(function*() {
          const where = yield* target.scoped
          const logFile = Path.join(yield* tempDir, "alarms.log")
          Fs.writeFileSync(logFile, "")
          // killed while creating alarms and ringing the first ones; then a process that only restores and rings,
          // killed too
          yield* Effect.promise(() => alarms(target.kind, where, 80, logFile, 40, 300))
          yield* Effect.promise(() => alarms(target.kind, where, 0, logFile, 0, 250))
          const acknowledged = Fs.readFileSync(logFile, "utf8").split("\n").filter((l) => l.startsWith("A "))
            .map((l) => l.slice(2))
          const sql: Layer.Layer<SqlClient.SqlClient> = database(target.kind, where)
          const rings = yield* Effect.scoped(Effect.provide(
            Effect.gen(function*() {
              // what is still due rings here (the last alarm is due 1.5 s after its create at most)
              const end = Date.now() + 10_000
              while (Date.now() < end) {
                const all = yield* Store.read(Query.make(Alarmed))
                if (all.length >= acknowledged.length && all.every((a) => a.rings >= 1)) break
                yield* Effect.sleep("50 millis")
              }
              const all = yield* Store.read(Query.make(Alarmed))
              for (const a of all) assert.deepStrictEqual(yield* Store.schedules(Alarmed, { id: a.id }), [])
              return new Map(all.map((a) => [a.id, a.rings]))
            }),
            Store.layer([Alarmed]).pipe(Layer.provide(sql))
          ))
          console.log(
            `${target.name}: ${acknowledged.length} alarms acknowledged, ${rings.size} stored, rung ${
              [...rings.values()].reduce((a, b) => a + b, 0)
            } times`
          )
          assert.isAtLeast(acknowledged.length, 40)
          const missing = acknowledged.filter((id) => rings.get(id) !== 1)
          assert.deepStrictEqual(missing.map((id) => [id, rings.get(id)]), [], "every acknowledged alarm rang once")
          // a create in flight at the kill is stored or not, and rings once if stored
          for (const [id, n] of rings) assert.strictEqual(n, 1, `${id} rang ${n} times`)
        }).pipe(Effect.scoped, Effect.ensuring(Effect.sync(killAll))),
      120_000
    )
  })
}
