/**
 * The differential property: the same random operation sequences, run on
 * every data layer (genServer, memory, durable on SQLite and on PostgreSQL,
 * the cluster), give the same results (records, error tags and messages),
 * the same final state and the same events, record by record.
 *
 * The operations cover creates (valid, invalid, of a taken key, invalid and
 * of a taken key), updates that succeed, refuse (`addError`), fail in an
 * after hook, produce an invalid state, crash (a defect), change the primary
 * key, call another record from a hook (which may not exist), call back
 * through another record (a cycle: `ReentrantCall`) or call the record
 * itself; destroys, gets, reads; and a resource with a two-field key.
 *
 * Each layer is built once; a sequence runs on all of them under one key
 * prefix of its own, so sequences do not meet. The one difference the
 * guarantees guide names (docs/guarantees.md) is the memory layer's: no supervisor, so a crash publishes no
 * `Restarted` (the caller's `RecordCrashed` and the record's state are the
 * same). The genServer layer is the reference the others are compared to.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Layer, ManagedRuntime, PubSub, References, Schema } from "effect"
import { Action, Changeset, Cluster, type Event, Query, Resource, SqliteClient, Store } from "effect-gen-server"
import { TestRunner } from "effect/cluster"
import * as fc from "fast-check"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { isDeepStrictEqual } from "node:util"
import * as Pg from "../cluster/pg.js"
import { numRuns, seed } from "../fixtures/Model.js"

/** Accounts call each other from hooks: an annotated accessor keeps the type from being circular. */
const account = (): Resource.Any => Account

const Account = Resource.make("Account", {
  fields: {
    id: Schema.String,
    owner: Schema.String,
    balance: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
  },
  primaryKey: ["id"],
  // the same policy on every layer (a stored record's default is "lastState", an in-memory one's "initial")
  restart: "lastState",
  defaults: ["create", "read", "destroy"],
  actions: {
    deposit: Action.update({
      arguments: { amount: Schema.Int },
      change: (cs) => Changeset.set(cs, "balance", Changeset.get(cs, "balance") + cs.arguments.amount)
    }),
    refuse: Action.update({
      change: (cs) => cs.pipe(Changeset.set("owner", "nobody"), Changeset.addError("the vault is closed"))
    }),
    failAfter: Action.update({
      change: (cs) =>
        cs.pipe(
          Changeset.set("owner", "after"),
          Changeset.after((record: any) => Effect.as(Effect.fail("the ledger is full"), record))
        )
    }),
    crash: Action.update({
      change: (cs) => Effect.as(Effect.die(new Error("the abacus broke")), Changeset.set(cs, "owner", "crashed"))
    }),
    rename: Action.update({
      arguments: { to: Schema.String },
      change: (cs) => Changeset.set(cs, "id", cs.arguments.to)
    }),
    /** Pays `amount` into `to` from an after hook, then takes it from this account. */
    transfer: Action.update({
      arguments: { to: Schema.String, amount: Schema.Int },
      change: (cs) =>
        cs.pipe(
          Changeset.set("balance", Changeset.get(cs, "balance") - cs.arguments.amount),
          Changeset.after((record: any) =>
            Effect.as(
              Store.update(account(), { id: cs.arguments.to } as never, "deposit" as never, {
                amount: cs.arguments.amount
              } as never),
              record
            )
          )
        )
    }),
    /** Asks `via` to transfer 0 back to this account: a cycle, refused as `ReentrantCall`. */
    relay: Action.update({
      arguments: { via: Schema.String },
      change: (cs) =>
        Changeset.after(cs, (record: any) =>
          Effect.as(
            Store.update(account(), { id: cs.arguments.via } as never, "transfer" as never, {
              to: record.id,
              amount: 0
            } as never),
            record
          ))
    })
  }
})

const Slot = Resource.make("Slot", {
  fields: { venue: Schema.String, row: Schema.Int, holder: Schema.optionalKey(Schema.String) },
  primaryKey: ["venue", "row"],
  defaults: ["create", "read", "destroy"],
  actions: {
    assign: Action.update({
      arguments: { holder: Schema.String },
      change: (cs) =>
        cs.arguments.holder === ""
          ? Changeset.addError(cs, "a holder has a name")
          : Changeset.set(cs, "holder", cs.arguments.holder)
    })
  }
})

const resources = [Account, Slot] as const

// ---------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------

type Op =
  | { readonly op: "create"; readonly id: string; readonly owner: string; readonly balance: number }
  | { readonly op: "deposit"; readonly id: string; readonly amount: number }
  | { readonly op: "refuse" | "failAfter" | "crash" | "destroy" | "get"; readonly id: string }
  | { readonly op: "rename"; readonly id: string; readonly to: string }
  | { readonly op: "transfer"; readonly id: string; readonly to: string; readonly amount: number }
  | { readonly op: "relay"; readonly id: string; readonly via: string }
  | { readonly op: "read" }
  | { readonly op: "slotCreate" | "slotDestroy" | "slotGet"; readonly venue: string; readonly row: number }
  | { readonly op: "slotAssign"; readonly venue: string; readonly row: number; readonly holder: string }

const id = fc.constantFrom("a", "b", "c", "d")
const venue = fc.constantFrom("x", "y\u0000z", "é")
const row = fc.integer({ min: 0, max: 2 })

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("create"),
      id,
      owner: fc.constantFrom("ann", "bo"),
      balance: fc.integer({ min: -1, max: 30 })
    })
  },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("deposit"), id, amount: fc.integer({ min: -20, max: 20 }) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constantFrom("refuse", "failAfter", "crash", "get"), id }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("destroy"), id }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("rename"), id, to: id }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("transfer"), id, to: id, amount: fc.integer({ min: 0, max: 10 }) })
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("relay"), id, via: id }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("read") }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constantFrom("slotCreate", "slotDestroy", "slotGet"), venue, row }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("slotAssign"), venue, row, holder: fc.constantFrom("", "zoe") }) }
) as fc.Arbitrary<Op>

/** How every sequence starts: three accounts and a slot. */
const opening: ReadonlyArray<Op> = [
  { op: "create", id: "a", owner: "ann", balance: 10 },
  { op: "create", id: "b", owner: "bo", balance: 5 },
  { op: "create", id: "c", owner: "ann", balance: 0 },
  { op: "slotCreate", venue: "y\u0000z", row: 1 }
]

/** What a call came to, as a caller sees it. */
type Result =
  | { readonly ok: unknown }
  | { readonly error: string; readonly message: string }

const outcome = <A>(effect: Effect.Effect<A, { readonly _tag: string; readonly message: string }, Store.Store>) =>
  Effect.match(effect, {
    onFailure: (e): Result => ({ error: e._tag, message: e.message }),
    // what crossed a data layer compared as JSON (a cluster's reply is decoded from the wire)
    onSuccess: (a): Result => ({ ok: a === undefined ? null : JSON.parse(JSON.stringify(a)) })
  })

/** Runs one operation, the sequence's ids under its prefix `p`. */
const execute = (p: string, o: Op): Effect.Effect<Result, never, Store.Store> => {
  const k = (id: string) => ({ id: p + id })
  const s = (o: { readonly venue: string; readonly row: number }) => ({ venue: p + o.venue, row: o.row })
  switch (o.op) {
    case "create":
      return outcome(Store.create(Account, "create", { id: p + o.id, owner: o.owner, balance: o.balance }))
    case "deposit":
      return outcome(Store.update(Account, k(o.id), "deposit", { amount: o.amount }))
    case "refuse":
    case "failAfter":
    case "crash":
      return outcome(Store.update(Account, k(o.id), o.op))
    case "destroy":
      return outcome(Store.destroy(Account, k(o.id)))
    case "get":
      return outcome(Store.get(Account, k(o.id)))
    case "rename":
      return outcome(Store.update(Account, k(o.id), "rename", { to: p + o.to }))
    case "transfer":
      return outcome(Store.update(Account, k(o.id), "transfer", { to: p + o.to, amount: o.amount }))
    case "relay":
      return outcome(Store.update(Account, k(o.id), "relay", { via: p + o.via }))
    case "read":
      return outcome(
        Effect.map(
          Store.read(Query.make(Account)),
          (all) => all.filter((r) => r.id.startsWith(p)).sort((x, y) => (x.id < y.id ? -1 : 1))
        )
      )
    case "slotCreate":
      return outcome(Store.create(Slot, "create", s(o)))
    case "slotDestroy":
      return outcome(Store.destroy(Slot, s(o)))
    case "slotGet":
      return outcome(Store.get(Slot, s(o)))
    case "slotAssign":
      return outcome(Store.update(Slot, s(o), "assign", { holder: o.holder }))
  }
}

// ---------------------------------------------------------------------------
// The layers
// ---------------------------------------------------------------------------

/** The same resource, durable. */
const durable = (resource: Resource.Any): Resource.Any =>
  Object.assign(Object.create(Object.getPrototypeOf(resource)), resource, { durable: true })

const sqliteDir = Layer.unwrap(Effect.map(
  Effect.acquireRelease(
    Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "differential-"))),
    (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  ),
  (dir) => SqliteClient.layer({ filename: Path.join(dir, "store.db") }).pipe(Layer.orDie)
))

const layers: ReadonlyArray<readonly [string, Layer.Layer<Store.Store>]> = [
  ["genServer", Store.layer(resources)],
  ["memory", Store.layer(resources, { dataLayer: "memory" })],
  ["durable (SQLite)", Store.layer(resources.map(durable)).pipe(Layer.provide(sqliteDir))],
  ["durable (PostgreSQL)", Store.layer(resources.map(durable)).pipe(Layer.provide(Pg.layer("diffdur")))],
  [
    "cluster",
    Cluster.layer(resources, { tablePrefix: "diff_" }).pipe(
      Layer.provideMerge(TestRunner.layer),
      Layer.provideMerge(Pg.layer("diffcl"))
    ) as Layer.Layer<Store.Store>
  ]
]

/** The named difference (docs/guarantees.md): the memory layer has no supervisor, so no `Restarted`. */
const expectedEvents = (layer: string, events: ReadonlyArray<View>) =>
  layer === "memory" ? events.filter((e) => e.tag !== "Restarted") : events

interface View {
  readonly tag: string
  readonly resource: string
  readonly key: string
  readonly record: unknown
  readonly reason?: unknown
}

const view = (e: Event.Event): View => ({
  tag: e._tag,
  resource: e.resource,
  key: JSON.stringify(e.key),
  record: JSON.parse(JSON.stringify(e.record)),
  ...(e._tag === "Destroyed" ? { reason: e.reason } : {})
})

/** Events grouped by record, in the order each record published them. */
const byRecord = (events: ReadonlyArray<View>) => {
  const groups: Record<string, Array<View>> = {}
  for (const e of events) (groups[`${e.resource} ${e.key}`] ??= []).push(e)
  return Object.fromEntries(Object.entries(groups).sort(([x], [y]) => (x < y ? -1 : 1)))
}

interface Trace {
  readonly results: ReadonlyArray<Result>
  readonly events: ReadonlyArray<View>
  readonly final: Result
}

const quiet = Effect.provideService(References.MinimumLogLevel, "None")

/** Runs a sequence on one layer: each call's result, the events of its records, the state at the end. */
const run = (p: string, ops: ReadonlyArray<Op>) =>
  Effect.gen(function*() {
    const subscription = yield* Store.subscribe
    const results: Array<Result> = []
    for (const o of ops) results.push(yield* execute(p, o))
    const final = yield* execute(p, { op: "read" })
    // events published after a reply (a restart's) have had the read's round trip to arrive; then a bounded wait
    // for the last of them, ending when nothing new came for 30 ms
    const events: Array<Event.Event> = []
    for (let quietFor = 0, waited = 0; quietFor < 30 && waited < 2_000; waited += 10) {
      const taken = yield* PubSub.takeUpTo(subscription, 10_000)
      events.push(...taken)
      quietFor = taken.length === 0 ? quietFor + 10 : 0
      yield* Effect.sleep("10 millis")
    }
    const mine = events.filter((e) => JSON.stringify(e.key).includes(`"${p}`)).map(view)
    return { results, events: mine, final } satisfies Trace
  }).pipe(Effect.scoped, quiet)

const show = (ops: ReadonlyArray<Op>) => ops.map((o, i) => `${i}: ${JSON.stringify(o)}`).join("\n    ")

describe("differential: every data layer, the same operations, the same answers", () => {
  const runtimes = layers.map(([name, layer]) => [name, ManagedRuntime.make(layer)] as const)

  beforeAll(async () => {
    for (const [, runtime] of runtimes) await runtime.runPromise(Effect.void)
  }, 60_000)
  afterAll(async () => {
    for (const [, runtime] of runtimes) await runtime.dispose()
  }, 60_000)

  let sequence = 0

  it("random sequences give the same results, events and final state on every layer", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 3, maxLength: 20 }), async (random) => {
        // most operations meet a record: the sequence starts with some
        const ops: ReadonlyArray<Op> = [...opening, ...random]
        const p = `s${++sequence}_`
        const traces: Array<readonly [string, Trace]> = []
        for (const [name, runtime] of runtimes) traces.push([name, await runtime.runPromise(run(p, ops))])
        const [, reference] = traces[0]!
        for (const [name, trace] of traces.slice(1)) {
          const differ = (what: string, actual: unknown, expected: unknown) => {
            if (isDeepStrictEqual(actual, expected)) return
            throw new Error(
              `${name} differs from genServer in ${what}\n  sequence:\n    ${show(ops)}\n  genServer: ${
                JSON.stringify(expected)
              }\n  ${name}: ${JSON.stringify(actual)}`
            )
          }
          trace.results.forEach((r, i) => differ(`the result of step ${i}`, r, reference.results[i]))
          differ("the final state", trace.final, reference.final)
          differ("the events", byRecord(trace.events), byRecord(expectedEvents(name, reference.events)))
        }
      }),
      // a failure shrinks to a short sequence (each attempt under a fresh prefix), within a bounded time
      { numRuns: numRuns(50, 1_000), seed: seed(1955), interruptAfterTimeLimit: 500_000, markInterruptAsFailure: true }
    )
    assert.isAbove(sequence, 0)
  }, 600_000)
})
