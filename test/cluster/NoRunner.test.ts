/**
 * A cluster with no runner up (issue 19): a client-only process in this test
 * process (NodeClusterSocket `clientOnly`, PostgreSQL runner and message
 * storage in a fresh schema, its `RunnerStorage` in its context, as
 * `procs/domain.ts` builds it) and no runner process at all.
 *
 * effect/cluster re-sends a volatile message to a shard nobody owns every
 * `sendRetryInterval`, without end (`Sharding.sendOutgoing`): the call must
 * not wait for it. A call must fail with `Unavailable` (`applied: "no"`:
 * nothing reached a handler) within its retry bound, and `Store.read` (SQL)
 * must still answer.
 *
 * And the effect/cluster behaviour a bound relies on: interrupting a client
 * call stops effect/cluster's re-sending, so a call abandoned while no runner
 * is up is never delivered once one comes up. A runner process is started for
 * it; it is killed when the test ends, even on failure.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import { TestRunner } from "effect/cluster"
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Cluster, Errors, Query, Store } from "../../src/index.js"
import { protocolOf } from "../../src/internal/cluster/protocol.js"
import { compile } from "../../src/internal/resource.js"
import { wireCodecs } from "../../src/internal/sql/codec.js"
import { escapeKey } from "../../src/internal/sql/escape.js"
import { trackChildren } from "../fixtures/Children.js"
import * as Pg from "./pg.js"
import { Knot, Ledger, Session, storeLayer } from "./procs/domain.js"

const procs = fileURLToPath(new URL("./procs/", import.meta.url))
const { killAll, track } = trackChildren()

/** A single-process cluster over `schema` (TestRunner: its runner registry is in memory, not in SQL). */
const seedLayer = (schema: string) =>
  Cluster.layer([Ledger, Session, Knot], { tablePrefix: "mp_" }).pipe(
    Layer.provideMerge(TestRunner.layer),
    Layer.provideMerge(Pg.layer("norunner", schema, false))
  )

/** Fails the test when `effect` has not ended within `seconds`. */
const within = (seconds: number, what: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.timeoutOrElse(effect, {
    duration: `${seconds} seconds`,
    orElse: () => Effect.die(new Error(`${what}: no answer within ${seconds} s`))
  })

const unavailable = (error: unknown): Errors.Unavailable => {
  assert.instanceOf(error, Errors.Unavailable, `expected Unavailable, got ${JSON.stringify(error)}`)
  return error as Errors.Unavailable
}

/** A runner process of `procs/runner.ts` on `schema`; resolves with it once it printed READY. */
const startRunner = (schema: string, port: number) =>
  new Promise<ChildProcess>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", procs + "runner.ts", schema, String(port)], {
      stdio: ["ignore", "pipe", "pipe"],
      cwd: fileURLToPath(new URL("../../", import.meta.url))
    })
    track(child)
    let stderr = ""
    const timer = setTimeout(() => reject(new Error(`runner: no READY within 60 s; stderr: ${stderr}`)), 60_000)
    child.stderr!.on("data", (chunk) => (stderr = (stderr + chunk.toString()).slice(-4000)))
    child.stdout!.on("data", (chunk) => {
      if (chunk.toString().includes("READY")) {
        clearTimeout(timer)
        resolve(child)
      }
    })
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`runner exited (${code}) before READY; stderr: ${stderr}`))
    })
  })

describe("Cluster: no runner up", () => {
  it.live(
    "a call fails with Unavailable (applied \"no\") within its retry bound; read and get by row still answer",
    () =>
      Effect.gen(function*() {
        const schema = Pg.freshSchema("norunner")
        yield* Pg.schemaScoped(schema)
        // a record stored while a runner was up (a single-process cluster, closed since)
        yield* Store.create(Ledger, "create", { id: "L", tokens: ["a"] }).pipe(
          Effect.provide(seedLayer(schema)),
          within(30, "seeding")
        )
        // a client-only process; no runner registered in its RunnerStorage; the default retries (10, ~5.7 s)
        const client = yield* Layer.build(storeLayer(schema, undefined, 10)).pipe(within(30, "the client's layer"))
        const started = Date.now()
        const [update, create, get] = yield* Effect.all([
          Effect.flip(Store.update(Ledger, { id: "L" }, "append", { token: "b" })).pipe(within(15, "update")),
          Effect.flip(Store.create(Ledger, "create", { id: "M", tokens: [] })).pipe(within(15, "create")),
          // Session has an inactivity timeout: its get is a message to the owner
          Effect.flip(Store.get(Session, { id: "S" })).pipe(within(15, "get (a message)"))
        ], { concurrency: "unbounded" }).pipe(Effect.provide(client))
        const elapsed = Date.now() - started
        for (const [error, action] of [[update, "append"], [create, "create"], [get, "get"]] as const) {
          const e = unavailable(error)
          assert.strictEqual(e.action, action)
          assert.strictEqual(e.applied, "no", `${action}: ${e.message}`)
          assert.strictEqual(e.attempts, 11, `${action}: ${e.message}`)
        }
        assert.isBelow(elapsed, 15_000)
        // SQL answers without a runner: read, and get on a resource without inactivity timeout
        const read = yield* Store.read(Query.make(Ledger)).pipe(within(5, "read"), Effect.provide(client))
        assert.deepStrictEqual(read, [{ id: "L", tokens: ["a"] }])
        assert.deepStrictEqual(
          yield* Store.get(Ledger, { id: "L" }).pipe(within(5, "get (a row)"), Effect.provide(client)),
          { id: "L", tokens: ["a"] }
        )
      }).pipe(Effect.scoped),
    { timeout: 90_000 }
  )

  it.live(
    "a runner comes up: a call interrupted before is never delivered; a long hook is not cut; the runner killed " +
      "mid-call: Unavailable \"unknown\"",
    () =>
      Effect.gen(function*() {
        const schema = Pg.freshSchema("norunner_up")
        yield* Pg.schemaScoped(schema)
        const client = yield* Layer.build(storeLayer(schema, undefined, 30)).pipe(within(30, "the client's layer"))
        // the record entity's own client, below the data layer (which refuses to send with no runner up)
        const ledger = compile(Ledger)
        const codecs = wireCodecs(ledger)
        const makeClient = yield* protocolOf(ledger).client.pipe(Effect.provide(client))
        const create = (id: string) => {
          const data = { id, tokens: ["x"] }
          return makeClient(escapeKey(ledger.encodeKey(data))).Create({
            action: "create",
            op: `${id}-op`,
            data: codecs.encodeData(data),
            input: codecs.encodeInput(ledger.action("create", "create") as any, { attributes: data, arguments: {} }),
            callers: []
          })
        }
        // both re-sent by effect/cluster every sendRetryInterval (100 ms) meanwhile; one is interrupted
        const ghost = yield* Effect.forkChild(create("ghost"))
        const kept = yield* Effect.forkChild(create("kept"))
        yield* Effect.sleep("1500 millis")
        assert.isUndefined(ghost.pollUnsafe(), "the call ended with no runner up")
        yield* Fiber.interrupt(ghost).pipe(within(5, "interrupting the call"))
        const port = 20000 + Math.floor(Math.random() * 20000)
        const runner = yield* Effect.promise(() => startRunner(schema, port))
        // the one not interrupted is delivered: a message still re-sent would have been
        yield* Fiber.join(kept).pipe(within(40, "the call kept once the runner is up"))
        yield* Effect.sleep("2 seconds")
        const keys = yield* Pg.withAdmin((sql) =>
          sql.unsafe<{ key: string }>(`SELECT key FROM "${schema}".mp_records ORDER BY key`)
        )
        assert.deepStrictEqual(keys.map((r) => r.key), [escapeKey(ledger.encodeKey({ id: "kept" }))])

        // the default retries (10, ~5.7 s of back-off) bound no handler that runs: an 8 s hook answers
        const bounded = yield* Layer.build(storeLayer(schema, undefined, 10)).pipe(within(30, "a second client"))
        const slow = yield* Store.update(Ledger, { id: "kept" }, "slowAppend", { token: "slow", ms: 8000 }).pipe(
          within(30, "an 8 s hook"),
          Effect.provide(bounded)
        )
        assert.deepStrictEqual(slow.tokens, ["x", "slow"])

        // the only runner killed while a call runs there: nowhere to re-send it; Unavailable, it may have applied
        const started = Date.now()
        const pending = yield* Effect.forkChild(
          Effect.flip(Store.update(Ledger, { id: "kept" }, "slowAppend", { token: "lost", ms: 30_000 })).pipe(
            Effect.provide(bounded)
          )
        )
        yield* Effect.sleep("1 second")
        runner.kill("SIGKILL")
        const error = unavailable(yield* Fiber.join(pending).pipe(within(30, "a call whose runner was killed")))
        assert.strictEqual(error.applied, "unknown", error.message)
        // the runner's heartbeat expires (4 s), then the retries (~5.7 s): about 11 s measured
        assert.isBelow(Date.now() - started, 30_000, error.lastFailure)
      }).pipe(Effect.scoped, Effect.ensuring(Effect.sync(killAll))),
    { timeout: 150_000 }
  )
})
