/**
 * A create re-sent under its operation id reaches another owner than its
 * first attempt (issue 19): it must be answered with the record its first
 * attempt committed, not `AlreadyExists`.
 *
 * Two owners of the same records: two single-process clusters (each its own
 * `TestRunner` `Sharding`, so each runs every record) over one PostgreSQL
 * schema and state table, as two runners are while a shard moves between
 * them (the old owner still finishing a call, or not knowing yet that it lost
 * the shard). Each owner's entity reads the row on activation and, while it
 * holds no record, before each call.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Schema } from "effect"
import { TestRunner } from "effect/cluster"
import { SqlClient } from "effect/sql"
import { Action, Changeset, Cluster, Resource, Store } from "../../src/index.js"
import { protocolOf } from "../../src/internal/cluster/protocol.js"
import { compile } from "../../src/internal/resource.js"
import { escapeKey } from "../../src/internal/sql/escape.js"
import * as Pg from "./pg.js"

/** How many times a create's after hook ran. */
const hooks = { runs: 0 }

/** When set, the next create's after hook signals `entered` and waits for `release`. */
const gate: { entered?: Deferred.Deferred<void> | undefined; release?: Deferred.Deferred<void> | undefined } = {}

const Gated = Resource.make("Gated", {
  fields: { id: Schema.String, n: Schema.Int },
  primaryKey: ["id"],
  actions: {
    create: Action.create({
      accept: ["id", "n"],
      change: (cs) =>
        Changeset.after(cs, (record) =>
          Effect.suspend(() => {
            hooks.runs++
            const { entered, release } = gate
            if (entered === undefined || release === undefined) return Effect.succeed(record)
            gate.entered = gate.release = undefined
            return Deferred.succeed(entered, undefined).pipe(Effect.andThen(Deferred.await(release)), Effect.as(record))
          }))
    }),
    inc: Action.update({ change: (cs) => Changeset.set(cs, "n", Changeset.get(cs, "n") + 1) })
  }
})

/** One owner: a single-process cluster of its own over `schema`. */
const owner = (schema: string) =>
  Effect.gen(function*() {
    const layer = Cluster.layer([Gated], { tablePrefix: "cr_", retries: 3 }).pipe(
      Layer.provideMerge(Layer.fresh(TestRunner.layer)),
      Layer.provideMerge(Pg.layer("createretry", schema, false))
    )
    return yield* Layer.buildWithMemoMap(layer, yield* Layer.makeMemoMap, yield* Effect.scope)
  })

/** Two owners over a fresh schema, dropped at the end. */
const owners = Effect.gen(function*() {
  const schema = Pg.freshSchema("createretry")
  yield* Pg.schemaScoped(schema)
  const a = yield* owner(schema)
  const b = yield* owner(schema)
  return { a, b }
})

const createK = (n: number, op: string) => Store.create(Gated, "create", { id: "k", n }).pipe(Store.withOperationId(op))

/** The row of `k`: alive, its state, the operation ids it remembers. */
const rowOfK = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* Effect.orDie(
    sql.unsafe<{ alive: boolean; state: any; ops: ReadonlyArray<string> }>(
      `SELECT alive, state, ops FROM cr_records WHERE resource = 'Gated'`
    )
  )
  assert.strictEqual(rows.length, 1)
  return rows[0]!
})

/** Answered with `record`, not failed (`AlreadyExists`). */
const assertAnswered = (exit: Exit.Exit<unknown, { readonly _tag: string }>, record: unknown, what: string) => {
  if (Exit.isFailure(exit)) assert.fail(`${what}: ${String(exit.cause)}`)
  else assert.deepStrictEqual(exit.value, record, what)
}

describe("Cluster: a create re-sent under its operation id to another owner", () => {
  it.live(
    "its first attempt commits on owner A while the retry runs on owner B: B answers with the record",
    () =>
      Effect.gen(function*() {
        const { a, b } = yield* owners
        gate.entered = yield* Deferred.make<void>()
        gate.release = yield* Deferred.make<void>()
        const entered = gate.entered
        const release = gate.release
        // the retry, on B: its entity read the row (none) and runs the create's hooks
        const retry = yield* Effect.forkChild(Effect.exit(createK(1, "create-k").pipe(Effect.provideContext(b))))
        yield* Deferred.await(entered).pipe(Effect.timeout("10 seconds"))
        // the first attempt, on A, commits meanwhile (its reply is what the caller lost)
        assert.deepStrictEqual(yield* createK(1, "create-k").pipe(Effect.provideContext(a)), { id: "k", n: 1 })
        yield* Deferred.succeed(release, undefined)
        assertAnswered(yield* Fiber.join(retry).pipe(Effect.timeout("10 seconds")), { id: "k", n: 1 }, "the retry")
        const row = yield* rowOfK.pipe(Effect.provideContext(a))
        assert.deepStrictEqual([row.alive, row.state, row.ops], [true, { id: "k", n: 1 }, ["create-k"]])
      }).pipe(Effect.scoped, Effect.ensuring(Effect.sync(() => (gate.entered = gate.release = undefined)))),
    { timeout: 60_000 }
  )

  it.live(
    "owner B's entity was activated (holding no record) before A committed, by a message that reads no row: " +
      "B answers with the record",
    () =>
      Effect.gen(function*() {
        const { a, b } = yield* owners
        // a cycle probe activates k's entity on B: it reads the row on activation (none), and no call since
        const gated = compile(Gated)
        const client = yield* protocolOf(gated).client.pipe(Effect.provideContext(b))
        const entityId = escapeKey(gated.encodeKey({ id: "k" }))
        assert.isFalse(yield* client(entityId).Probe({ callers: [], visited: [] }))
        hooks.runs = 0
        assert.deepStrictEqual(yield* createK(1, "create-k").pipe(Effect.provideContext(a)), { id: "k", n: 1 })
        assertAnswered(
          yield* Effect.exit(createK(1, "create-k").pipe(Effect.provideContext(b))),
          { id: "k", n: 1 },
          "the retry"
        )
        // B read the row before running anything: the create's hooks ran once, on A
        assert.strictEqual(hooks.runs, 1)
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )

  it.live(
    "owner B still holds an older record of the key (it did not know A destroyed and re-created it): " +
      "B answers with the record",
    () =>
      Effect.gen(function*() {
        const { a, b } = yield* owners
        yield* createK(1, "create-1").pipe(Effect.provideContext(a))
        // B serves k for a while: it holds the record
        assert.strictEqual((yield* Store.update(Gated, { id: "k" }, "inc").pipe(Effect.provideContext(b))).n, 2)
        // A serves it again: destroys it and creates it anew
        yield* Store.destroy(Gated, { id: "k" }).pipe(Effect.provideContext(a))
        assert.deepStrictEqual(yield* createK(5, "create-2").pipe(Effect.provideContext(a)), { id: "k", n: 5 })
        // the second create, re-sent, reaches B
        assertAnswered(
          yield* Effect.exit(createK(5, "create-2").pipe(Effect.provideContext(b))),
          { id: "k", n: 5 },
          "the retry"
        )
        // and a create of another operation is still refused there
        const other = yield* Effect.flip(createK(9, "create-3").pipe(Effect.provideContext(b)))
        assert.strictEqual(other._tag, "AlreadyExists")
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )

  it.live(
    "control: owner B's entity holds no record and served a call since it read the row: it reads it again",
    () =>
      Effect.gen(function*() {
        const { a, b } = yield* owners
        assert.strictEqual(
          (yield* Effect.flip(Store.update(Gated, { id: "k" }, "inc").pipe(Effect.provideContext(b))))._tag,
          "NotFound"
        )
        yield* createK(1, "create-k").pipe(Effect.provideContext(a))
        assertAnswered(
          yield* Effect.exit(createK(1, "create-k").pipe(Effect.provideContext(b))),
          { id: "k", n: 1 },
          "the retry"
        )
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )
})
