/**
 * The fault suite: what a SQL-backed data layer (durable, cluster) promises
 * when storage itself misbehaves (`../shared/DESIGN.md`, "Faults" and
 * "Versions across deploys"), written once against the public `Store` API
 * and run on each such layer (`durable.test.ts`, `cluster.test.ts`).
 *
 * Storage is a real database (PostgreSQL or SQLite) behind a client that
 * fails on demand (`test/fixtures/FaultySql.ts`). A test runs one or more
 * "processes" in turn, each a Store over the same database: what a process
 * finds is what storage kept.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Layer, PubSub, References, Schema, type Scope } from "effect"
import { Changeset, Filter, Query, Resource, Store } from "effect-gen-server"
import type { SqlClient } from "effect/sql"
import * as fc from "fast-check"
import * as FaultySql from "../fixtures/FaultySql.js"
import { numRuns, seed } from "../fixtures/Model.js"

/** A SQL-backed data layer under test. */
export interface FaultFactory {
  /** How many random sequences the model-based property runs (a database each). */
  readonly modelRuns: number
  /** A database of the test's own, removed when the test's scope closes. */
  readonly database: Effect.Effect<Layer.Layer<SqlClient.SqlClient>, never, Scope.Scope>
  /** A Store over `resources` in the database of its context: one "process". */
  readonly store: (
    resources: ReadonlyArray<Resource.Any>,
    options?: { readonly tablePrefix?: string }
  ) => Layer.Layer<Store.Store, never, SqlClient.SqlClient>
  /** Tests the layer is known to fail, by title: each still runs, expected to fail. */
  readonly knownFailures?: ReadonlyArray<string> | undefined
}

// ---------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------

/** A counter; its default restart policy (none declared) is the stored one. */
export const Counter = Resource.make("Counter", {
  fields: { id: Schema.String, n: Schema.Int, note: Schema.String },
  primaryKey: ["id"],
  durable: true,
  actions: (Action) => ({
    inc: Action.update({ change: (cs) => Changeset.set(cs, "n", cs.data.n + 1) }),
    crash: Action.update({ change: () => Effect.die(new Error("boom in crash")) }),
    /** Counts on, answering the new count (a result, `success`). */
    next: Action.update({
      success: Schema.Int,
      change: (cs) => cs.pipe(Changeset.set("n", cs.data.n + 1), Changeset.result(cs.data.n + 1))
    }),
    /** Changes nothing: answers the count. */
    peek: Action.update({ success: Schema.Int, change: (cs) => Changeset.result(cs, cs.data.n) }),
    /** A create answering a receipt; a destroy answering the last count. */
    open: Action.create({
      accept: ["id", "n", "note"],
      success: Schema.Struct({ opened: Schema.String, at: Schema.Int }),
      change: (cs) => Changeset.result(cs, { opened: Changeset.get(cs, "id"), at: Changeset.get(cs, "n") })
    }),
    close: Action.destroy({ success: Schema.Int, change: (cs) => Changeset.result(cs, cs.data.n) })
  })
})

const ItemV1Fields = { id: Schema.String, count: Schema.Int }
/** Version 1 of a resource that version 2 extends (a field with a migration) and version 3 changes (a retyped field). */
export const ItemV1 = Resource.make("Item", { fields: ItemV1Fields, primaryKey: ["id"], durable: true })
export const ItemV2 = Resource.make("Item", {
  fields: { ...ItemV1Fields, label: Schema.String },
  primaryKey: ["id"],
  durable: true,
  version: 2,
  migrations: { 1: Resource.migration(Schema.Struct(ItemV1Fields), (v1) => ({ ...v1, label: "none" })) }
})
export const ItemV3 = Resource.make("Item", {
  fields: { id: Schema.String, count: Schema.String, label: Schema.String },
  primaryKey: ["id"],
  durable: true,
  version: 3,
  migrations: {
    1: Resource.migration(Schema.Struct(ItemV1Fields), (v1) => ({ ...v1, count: String(v1.count), label: "none" })),
    2: Resource.migration(
      Schema.Struct({ ...ItemV1Fields, label: Schema.String }),
      (v2) => ({ ...v2, count: String(v2.count) })
    )
  }
})

/** Restarted `"initial"` (declared), in a version 1 and a version 2 whose create action is named otherwise. */
export const TallyV1 = Resource.make("Tally", {
  fields: { id: Schema.String, n: Schema.Int },
  primaryKey: ["id"],
  durable: true,
  restart: "initial",
  actions: (Action) => ({
    inc: Action.update({ change: (cs) => Changeset.set(cs, "n", cs.data.n + 1) }),
    crash: Action.update({ change: () => Effect.die(new Error("boom in crash")) })
  })
})
export const TallyV2 = Resource.make("Tally", {
  fields: { id: Schema.String, n: Schema.Int, unit: Schema.String },
  primaryKey: ["id"],
  durable: true,
  restart: "initial",
  version: 2,
  migrations: {
    1: Resource.migration(Schema.Struct({ id: Schema.String, n: Schema.Int }), (v1) => ({ ...v1, unit: "each" }))
  },
  defaults: ["read", "update", "destroy"],
  actions: (Action) => ({
    open: Action.create({}),
    inc: Action.update({ change: (cs) => Changeset.set(cs, "n", cs.data.n + 1) }),
    crash: Action.update({ change: () => Effect.die(new Error("boom in crash")) })
  })
})

/** What storage cannot hold as it is, every one of them: each must come back exactly. */
const awkward = [
  "a\u0000b",
  "\u0000",
  "\u0001starts with the escape mark",
  "lone high \ud800 surrogate",
  "\udc00 lone low",
  "\ud83d\ude00 a whole pair",
  "\\u0000 written out",
  "\\0",
  "\ufffd"
] as const

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const quiet = Effect.provideService(References.MinimumLogLevel, "None")

const tagOf = <A, E extends { readonly _tag: string }, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.match(effect, { onFailure: (e) => e._tag, onSuccess: () => "Success" })

const isPoisoned = (text: string, params: string) => FaultySql.isWrite(text) && params.includes("POISON")

/** Lets queued writes reach the group commit's queue (real I/O: a live pause). */
const pause = (ms: number) => Effect.sleep(ms)

// ---------------------------------------------------------------------------
// The model: counters under random storage faults
// ---------------------------------------------------------------------------

/** What a fault does to the next record write (`unreadable`: its answer is lost, and the read back fails too). */
type Injected = "none" | FaultySql.Fault | "unreadable"

type Command =
  | { readonly _tag: "Create"; readonly id: string; readonly fault: Injected }
  | { readonly _tag: "Inc"; readonly id: string; readonly fault: Injected }
  | { readonly _tag: "Note"; readonly id: string; readonly note: string; readonly fault: Injected }
  | { readonly _tag: "Destroy"; readonly id: string; readonly fault: Injected }

const faultArb = fc.constantFrom<Injected>("none", "none", "refuse", "drop", "lostReply", "deadlock", "unreadable")
const idArb = fc.constantFrom("a", "b", "c", "\u0000d", "\ud800e")
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ _tag: fc.constant("Create" as const), id: idArb, fault: faultArb }),
  fc.record({ _tag: fc.constant("Inc" as const), id: idArb, fault: faultArb }),
  fc.record({
    _tag: fc.constant("Note" as const),
    id: idArb,
    note: fc.constantFrom("fine", "POISON", "\u0000\ud800", "\u0001"),
    fault: faultArb
  }),
  fc.record({ _tag: fc.constant("Destroy" as const), id: idArb, fault: faultArb })
)

/** The records storage must hold: id -> record. */
type Model = Map<string, { readonly id: string; readonly n: number; readonly note: string }>

/**
 * Runs one command with its fault against the Store and the model: a
 * success is applied to the model once; a refusal (`RecordCrashed` "not
 * applied") changes nothing; `NotFound` and `AlreadyExists` only where the
 * model says so; `Unavailable` is sent again under the same operation id
 * until it is decided. Anything else (a defect, an untyped failure) fails.
 */
const step = (model: Model, command: Command, i: number) =>
  Effect.gen(function*() {
    const faults = yield* FaultySql.Faults
    yield* faults.clear
    // a write storage refuses carries "POISON"; the others fail whatever they carry
    if (command.fault === "unreadable") {
      let lost = false
      yield* faults.inject({ when: (text) => FaultySql.isWrite(text) && (lost = true), fault: "lostReply", times: 1 })
      yield* faults.inject({ when: (text) => lost && /^\s*SELECT \*/.test(text), fault: "drop", times: 1 })
    } else if (command.fault !== "none" && command.fault !== "refuse") {
      yield* faults.inject({ when: (text) => FaultySql.isWrite(text), fault: command.fault, times: 1 })
    }
    yield* faults.inject({ when: isPoisoned, fault: "refuse" })
    const current = model.get(command.id)
    const key = { id: command.id }
    const call: Effect.Effect<unknown, { readonly _tag: string; readonly message: string }, Store.Store> =
      command._tag === "Create"
        ? Store.create(Counter, "create", { id: command.id, n: 0, note: "fine" })
        : command._tag === "Inc"
        ? Store.update(Counter, key, "inc")
        : command._tag === "Note"
        ? Store.update(Counter, key, "update", { note: command.note })
        : Store.destroy(Counter, key)
    const exit = yield* Effect.exit(call.pipe(
      Store.withOperationId(`op-${i}`),
      Effect.retry({ times: 8, while: (e) => e._tag === "Unavailable" })
    ))
    const poisoned = command._tag === "Note" && command.note === "POISON"
    const expected = command._tag === "Create"
      ? current === undefined ? (poisoned ? "RecordCrashed" : "Success") : "AlreadyExists"
      : current === undefined
      ? "NotFound"
      : poisoned
      ? "RecordCrashed"
      : "Success"
    if (Exit.isSuccess(exit)) {
      // a fault that refused the write in storage never reports success
      assert.strictEqual("Success", expected, `command ${i} ${JSON.stringify(command)}`)
      if (command._tag === "Create") model.set(command.id, { id: command.id, n: 0, note: "fine" })
      else if (command._tag === "Inc") model.set(command.id, { ...current!, n: current!.n + 1 })
      else if (command._tag === "Note") model.set(command.id, { ...current!, note: command.note })
      else model.delete(command.id)
      return
    }
    const error = Cause.findErrorOption(exit.cause)
    assert.isTrue(error._tag === "Some" && !Cause.hasDies(exit.cause), `command ${i}: a typed failure, got ${exit}`)
    const tag = (error as any).value._tag as string
    // a dropped connection before the write, or a refusal: typed, nothing applied
    const refusal = tag === "RecordCrashed" && (error as any).value.message.includes("not applied")
    if (refusal) return
    assert.strictEqual(tag, expected, `command ${i} ${JSON.stringify(command)}: ${(error as any).value.message}`)
  })

/** The store agrees with the model: each record by key, and all of them by read. */
const agrees = (model: Model) =>
  Effect.gen(function*() {
    for (const id of ["a", "b", "c", "\u0000d", "\ud800e"]) {
      const expected = model.get(id)
      const got = yield* Effect.exit(Store.get(Counter, { id }))
      if (expected === undefined) assert.isTrue(Exit.isFailure(got), `${JSON.stringify(id)} is absent`)
      else assert.deepStrictEqual(Exit.isSuccess(got) ? got.value : got, expected)
    }
    const all = yield* Store.read(Query.make(Counter))
    assert.deepStrictEqual(
      [...all].sort((a, b) => a.id < b.id ? -1 : 1),
      [...model.values()].sort((a, b) => a.id < b.id ? -1 : 1)
    )
  })

// ---------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------

/** Registers the fault suite for one SQL-backed data layer. */
export const faults = (name: string, factory: FaultFactory) => {
  /**
   * Runs `body` with a database of its own; `process(resources, f)` runs `f`
   * in one "process" over it (a Store, and the `Faults` of its client),
   * closed when `f` ends.
   */
  const withDatabase = <A, E>(
    body: (
      process: <B, F>(
        resources: ReadonlyArray<Resource.Any>,
        f: Effect.Effect<B, F, Store.Store | FaultySql.Faults | Scope.Scope>,
        options?: { readonly tablePrefix?: string }
      ) => Effect.Effect<B, F>
    ) => Effect.Effect<A, E, Scope.Scope>
  ) =>
    Effect.scoped(Effect.gen(function*() {
      const database = yield* factory.database
      return yield* body((resources, f, options) =>
        Effect.scoped(Effect.gen(function*() {
          const context = yield* Layer.build(
            Layer.provideMerge(factory.store(resources, options), FaultySql.layer(database))
          )
          return yield* Effect.provide(f, context)
        })) as any
      )
    })).pipe(quiet)

  const known = new Set(factory.knownFailures ?? [])
  /** An `it.live`, expected to fail when the layer is known to fail it. */
  const live = (title: string, body: () => Effect.Effect<unknown, unknown>, timeout?: number) =>
    known.has(title) ? it.live.fails(title, body, timeout) : it.live(title, body, timeout)

  describe(`faults: ${name}`, () => {
    it.live("a write storage refuses fails its call typed; the record keeps its state, restarts nothing", () =>
      withDatabase((process) =>
        Effect.gen(function*() {
          yield* process(
            [Counter],
            Effect.gen(function*() {
              const faults = yield* FaultySql.Faults
              const events = yield* Store.subscribe
              const c = yield* Store.create(Counter, "create", { id: "c", n: 1, note: "fine" })
              yield* faults.inject({ when: isPoisoned, fault: "refuse" })
              const refused = yield* Effect.flip(Store.update(Counter, c, "update", { note: "POISON" }))
              assert.strictEqual(refused._tag, "RecordCrashed")
              assert.include(refused.message, "not applied")
              assert.deepStrictEqual(yield* Store.get(Counter, c), c)
              // the record was not restarted, failed or fenced: its next write goes through
              const next = yield* Store.update(Counter, c, "inc")
              assert.strictEqual(next.n, 2)
              const tags = (yield* PubSub.takeAll(events)).map((e) => e._tag)
              assert.deepStrictEqual(tags, ["Created", "Updated"])
              // a create storage refuses takes no key
              assert.strictEqual(
                yield* tagOf(Store.create(Counter, "create", { id: "d", n: 0, note: "POISON" })),
                "RecordCrashed"
              )
              assert.strictEqual(yield* tagOf(Store.get(Counter, { id: "d" })), "NotFound")
              yield* faults.clear
              yield* Store.create(Counter, "create", { id: "d", n: 0, note: "fine" })
            })
          )
          // storage kept what was acknowledged, nothing else
          yield* process(
            [Counter],
            Effect.gen(function*() {
              assert.deepStrictEqual(yield* Store.get(Counter, { id: "c" }), { id: "c", n: 2, note: "fine" })
              assert.deepStrictEqual(yield* Store.get(Counter, { id: "d" }), { id: "d", n: 0, note: "fine" })
            })
          )
        })
      ))

    it.live("in a group commit, one write storage refuses fails alone: the rest of its batch commits", () =>
      withDatabase((process) =>
        process(
          [Counter],
          Effect.gen(function*() {
            const faults = yield* FaultySql.Faults
            const ids = Array.from({ length: 40 }, (_, i) => `r${i}`)
            yield* Effect.forEach(ids, (id) => Store.create(Counter, "create", { id, n: 0, note: "fine" }), {
              discard: true
            })
            yield* Store.create(Counter, "create", { id: "warm", n: 0, note: "fine" })
            yield* faults.inject({ when: isPoisoned, fault: "refuse" })
            // one write held: the next ones queue behind it and go as one batch
            yield* faults.hold((text) => FaultySql.isWrite(text))
            const warm = yield* Effect.forkChild(Store.update(Counter, { id: "warm" }, "inc"))
            while ((yield* faults.held) === 0) yield* pause(5)
            const calls = yield* Effect.forkChild(Effect.forEach(
              ids,
              (id, i) =>
                Effect.exit(
                  i === 17
                    ? Store.update(Counter, { id }, "update", { note: "POISON" })
                    : Store.update(Counter, { id }, "inc")
                ),
              { concurrency: "unbounded" }
            ))
            yield* pause(300)
            yield* faults.release
            yield* Fiber.join(warm)
            const exits = yield* Fiber.join(calls)
            assert.isAbove(yield* faults.largestBatch, 1, "the writes shared a batch")
            const failed = exits.flatMap((exit, i) => Exit.isFailure(exit) ? [i] : [])
            assert.deepStrictEqual(failed, [17])
            const error = Cause.findErrorOption((exits[17] as Exit.Failure<unknown, any>).cause)
            assert.strictEqual(error._tag === "Some" && error.value._tag, "RecordCrashed")
            const records = yield* Store.read(Query.make(Counter).pipe(Query.filter(Filter.neq("id", "warm"))))
            assert.deepStrictEqual(
              records.map((r) => `${r.id}:${r.n}:${r.note}`).sort(),
              ids.map((id, i) => `${id}:${i === 17 ? 0 : 1}:fine`).sort()
            )
          })
        )
      ))

    it.live("a commit whose answer was lost is settled from its row: the call succeeds, and the next write too", () =>
      withDatabase((process) =>
        Effect.gen(function*() {
          yield* process(
            [Counter],
            Effect.gen(function*() {
              const faults = yield* FaultySql.Faults
              const events = yield* Store.subscribe
              const c = yield* Store.create(Counter, "create", { id: "c", n: 0, note: "fine" })
              yield* faults.inject({ when: (text) => FaultySql.isWrite(text), fault: "lostReply", times: 1 })
              assert.strictEqual((yield* Store.update(Counter, c, "inc")).n, 1)
              // not fenced by its own commit
              assert.strictEqual((yield* Store.update(Counter, c, "inc")).n, 2)
              // a key change whose answer was lost (a move: one transaction)
              yield* faults.inject({ when: (text) => FaultySql.isWrite(text), fault: "lostReply", times: 1 })
              const moved = yield* Store.update(Counter, c, "update", { id: "c2" })
              assert.deepStrictEqual(moved, { id: "c2", n: 2, note: "fine" })
              assert.strictEqual(yield* tagOf(Store.get(Counter, c)), "NotFound")
              assert.strictEqual((yield* Store.update(Counter, moved, "inc")).n, 3)
              assert.strictEqual(yield* faults.injected, 2)
              const tags = (yield* PubSub.takeAll(events)).map((e) => e._tag)
              assert.deepStrictEqual(tags, ["Created", "Updated", "Updated", "Updated", "Updated"])
            })
          )
          yield* process(
            [Counter],
            Effect.gen(function*() {
              assert.deepStrictEqual(yield* Store.get(Counter, { id: "c2" }), { id: "c2", n: 3, note: "fine" })
              assert.strictEqual(yield* tagOf(Store.get(Counter, { id: "c" })), "NotFound")
            })
          )
        })
      ))

    it.live("a commit whose answer was lost and whose row cannot be read: sent again under its id, applied once", () =>
      withDatabase((process) =>
        Effect.gen(function*() {
          yield* process(
            [Counter],
            Effect.gen(function*() {
              const faults = yield* FaultySql.Faults
              const events = yield* Store.subscribe
              const c = yield* Store.create(Counter, "create", { id: "c", n: 0, note: "fine" })
              // the write's answer is lost, and so is the first read of its row after it
              let lost = false
              yield* faults.inject({
                when: (text) => FaultySql.isWrite(text) && (lost = true),
                fault: "lostReply",
                times: 1
              })
              yield* faults.inject({ when: (text) => lost && /^\s*SELECT \*/.test(text), fault: "drop", times: 1 })
              const seen: Array<unknown> = []
              const result = yield* Store.update(Counter, c, "inc").pipe(
                Store.withOperationId("inc-once"),
                Effect.tapError((e) => Effect.sync(() => seen.push(e))),
                Effect.retry({ times: 5, while: (e) => e._tag === "Unavailable" })
              )
              assert.strictEqual(result.n, 1)
              // a layer that could not settle it said so, typed: it may have been applied, under the call's id
              for (const e of seen as Array<any>) {
                assert.deepStrictEqual([e._tag, e.applied, e.operationId], ["Unavailable", "unknown", "inc-once"])
              }
              assert.deepStrictEqual(yield* Store.get(Counter, c), { id: "c", n: 1, note: "fine" })
              // sent again later under the same id: applied already, answered as the record is
              assert.strictEqual((yield* Store.update(Counter, c, "inc").pipe(Store.withOperationId("inc-once"))).n, 1)
              const tags = (yield* PubSub.takeAll(events)).map((e) => e._tag)
              assert.deepStrictEqual(tags, ["Created", "Updated"])
            })
          )
          yield* process(
            [Counter],
            Effect.gen(function*() {
              assert.deepStrictEqual(yield* Store.get(Counter, { id: "c" }), { id: "c", n: 1, note: "fine" })
            })
          )
        })
      ))

    it.live("a result is kept with its operation id: sent again, a write answers the result it answered, once", () =>
      withDatabase((process) =>
        Effect.gen(function*() {
          yield* process(
            [Counter],
            Effect.gen(function*() {
              const faults = yield* FaultySql.Faults
              const opened = yield* Store.create(Counter, "open", { id: "c", n: 0, note: "fine" }).pipe(
                Store.withOperationId("open-c")
              )
              assert.deepStrictEqual(opened, { opened: "c", at: 0 })
              // the write's answer is lost, and so is the first read of its row after it
              let lost = false
              yield* faults.inject({
                when: (text) => FaultySql.isWrite(text) && (lost = true),
                fault: "lostReply",
                times: 1
              })
              yield* faults.inject({ when: (text) => lost && /^\s*SELECT \*/.test(text), fault: "drop", times: 1 })
              const next = yield* Store.update(Counter, { id: "c" }, "next").pipe(
                Store.withOperationId("next-once"),
                Effect.retry({ times: 5, while: (e) => e._tag === "Unavailable" })
              )
              assert.strictEqual(next, 1)
              yield* Store.update(Counter, { id: "c" }, "next")
              // sent again: the result it answered, not the count now, and not applied again
              assert.strictEqual(
                yield* Store.update(Counter, { id: "c" }, "next").pipe(Store.withOperationId("next-once")),
                1
              )
              assert.deepStrictEqual(
                yield* Store.create(Counter, "open", { id: "c", n: 0, note: "fine" }).pipe(
                  Store.withOperationId("open-c")
                ),
                { opened: "c", at: 0 }
              )
              assert.deepStrictEqual(yield* Store.get(Counter, { id: "c" }), { id: "c", n: 2, note: "fine" })
            })
          )
          // another process: the row keeps the results
          yield* process(
            [Counter],
            Effect.gen(function*() {
              assert.strictEqual(
                yield* Store.update(Counter, { id: "c" }, "next").pipe(Store.withOperationId("next-once")),
                1
              )
              assert.strictEqual(
                yield* Store.destroy(Counter, { id: "c" }, "close").pipe(Store.withOperationId("close-c")),
                2
              )
              assert.strictEqual(
                yield* Store.destroy(Counter, { id: "c" }, "close").pipe(Store.withOperationId("close-c")),
                2
              )
              assert.strictEqual(yield* tagOf(Store.get(Counter, { id: "c" })), "NotFound")
            })
          )
        })
      ))

    it.live("an update that changes no field sends no write to storage", () =>
      withDatabase((process) =>
        process(
          [Counter],
          Effect.gen(function*() {
            const faults = yield* FaultySql.Faults
            yield* Store.create(Counter, "create", { id: "c", n: 4, note: "fine" })
            const writes: Array<string> = []
            // a rule that never fires: it sees every statement
            yield* faults.inject({
              when: (text) => (FaultySql.isWrite(text) && writes.push(text), false),
              fault: "refuse"
            })
            for (let i = 0; i < 3; i++) assert.strictEqual(yield* Store.update(Counter, { id: "c" }, "peek"), 4)
            assert.deepStrictEqual(yield* Store.update(Counter, { id: "c" }, "update", { n: 4 }), {
              id: "c",
              n: 4,
              note: "fine"
            })
            assert.deepStrictEqual(writes, [])
            assert.strictEqual(yield* Store.update(Counter, { id: "c" }, "next"), 5)
            assert.strictEqual(writes.length, 1)
          })
        )
      ))

    it.live("a connection dropped before a write: typed, not applied; a deadlock is run again", () =>
      withDatabase((process) =>
        process(
          [Counter],
          Effect.gen(function*() {
            const faults = yield* FaultySql.Faults
            const c = yield* Store.create(Counter, "create", { id: "c", n: 0, note: "fine" })
            yield* faults.inject({ when: (text) => FaultySql.isWrite(text), fault: "drop", times: 1 })
            const dropped = yield* Effect.flip(Store.update(Counter, c, "inc"))
            assert.strictEqual(dropped._tag, "RecordCrashed")
            assert.include(dropped.message, "not applied")
            assert.strictEqual((yield* Store.get(Counter, c)).n, 0)
            yield* faults.inject({ when: (text) => FaultySql.isWrite(text), fault: "deadlock", times: 2 })
            assert.strictEqual((yield* Store.update(Counter, c, "inc")).n, 1)
            assert.strictEqual((yield* Store.update(Counter, c, "inc")).n, 2)
          })
        )
      ))

    it.live("strings and keys storage cannot hold as they are come back exactly; no two keys alias", () =>
      withDatabase((process) =>
        Effect.gen(function*() {
          const expected = awkward.map((s, i) => ({ id: s, n: i, note: `${s}|${i}` }))
          yield* process(
            [Counter],
            Effect.gen(function*() {
              for (const record of expected) {
                assert.deepStrictEqual(yield* Store.create(Counter, "create", record), record)
              }
              for (const record of expected) {
                assert.deepStrictEqual(yield* Store.get(Counter, { id: record.id }), record)
                assert.deepStrictEqual(
                  yield* Store.read(Query.make(Counter).pipe(Query.filter(Filter.eq("note", record.note)))),
                  [record]
                )
              }
              const updated = yield* Store.update(Counter, { id: "\ud800" + "" }, "update", { note: "\u0000\ud800" })
                .pipe(Effect.flip)
              assert.strictEqual(updated._tag, "NotFound", "a key never created does not alias another")
            })
          )
          yield* process(
            [Counter],
            Effect.gen(function*() {
              const read = yield* Store.read(Query.make(Counter).pipe(Query.sort("n")))
              assert.deepStrictEqual(read, expected)
              for (const record of expected) {
                assert.deepStrictEqual(yield* Store.get(Counter, { id: record.id }), record)
              }
            })
          )
        })
      ))

    it.live("a row of a newer version: read and written by an older process, which keeps what it does not know", () =>
      withDatabase((process) =>
        Effect.gen(function*() {
          yield* process(
            [ItemV2],
            Effect.gen(function*() {
              yield* Store.create(ItemV2, "create", { id: "a", count: 1, label: "from v2" })
            })
          )
          // a rollback: version 1 over version 2's rows
          yield* process(
            [ItemV1],
            Effect.gen(function*() {
              assert.deepStrictEqual(yield* Store.get(ItemV1, { id: "a" }), { id: "a", count: 1 })
              assert.deepStrictEqual(yield* Store.read(Query.make(ItemV1)), [{ id: "a", count: 1 }])
              assert.deepStrictEqual(yield* Store.update(ItemV1, { id: "a" }, "update", { count: 2 }), {
                id: "a",
                count: 2
              })
              yield* Store.create(ItemV1, "create", { id: "b", count: 7 })
            })
          )
          // forward again: nothing lost, nothing quarantined
          yield* process(
            [ItemV2],
            Effect.gen(function*() {
              assert.deepStrictEqual(yield* Store.get(ItemV2, { id: "a" }), { id: "a", count: 2, label: "from v2" })
              assert.deepStrictEqual(yield* Store.get(ItemV2, { id: "b" }), { id: "b", count: 7, label: "none" })
              // version 3 changes what version 1 cannot read
              yield* Store.update(ItemV2, { id: "b" }, "update", { count: 8 })
            })
          )
          yield* process(
            [ItemV3],
            Effect.gen(function*() {
              assert.deepStrictEqual(yield* Store.get(ItemV3, { id: "a" }), { id: "a", count: "2", label: "from v2" })
              yield* Store.update(ItemV3, { id: "a" }, "update", { count: "two" })
            })
          )
          yield* process(
            [ItemV1],
            Effect.gen(function*() {
              // a row it cannot read: refused as Unavailable, naming both versions; never NotFound, never quarantined
              const get = yield* Effect.flip(Store.get(ItemV1, { id: "a" }))
              assert.strictEqual(get._tag, "Unavailable")
              assert.match(get.message, /version 3.*version 1/)
              const update = yield* Effect.flip(Store.update(ItemV1, { id: "a" }, "update", { count: 3 }))
              assert.deepStrictEqual([update._tag, update._tag === "Unavailable" && update.applied], [
                "Unavailable",
                "no"
              ])
              assert.strictEqual(
                yield* tagOf(Store.create(ItemV1, "create", { id: "a", count: 3 })),
                "Unavailable"
              )
              // the rows it can read, it reads
              assert.deepStrictEqual(yield* Store.read(Query.make(ItemV1)), [{ id: "b", count: 8 }])
            })
          )
          yield* process(
            [ItemV3],
            Effect.gen(function*() {
              assert.deepStrictEqual(yield* Store.get(ItemV3, { id: "a" }), { id: "a", count: "two", label: "from v2" })
              assert.deepStrictEqual(yield* Store.get(ItemV3, { id: "b" }), { id: "b", count: "8", label: "none" })
            })
          )
        })
      ))

    live(
      "restart \"initial\": a restart's write storage does not take keeps the record's last state",
      () =>
        withDatabase((process) =>
          Effect.gen(function*() {
            yield* process(
              [TallyV1],
              Effect.gen(function*() {
                const faults = yield* FaultySql.Faults
                const events = yield* Store.subscribe
                const t = yield* Store.create(TallyV1, "create", { id: "t", n: 0 })
                yield* Store.update(TallyV1, t, "inc")
                // storage refuses the restart's write: a refusal, not a failure of the record
                yield* faults.inject({ when: (text) => FaultySql.isWrite(text), fault: "refuse", times: 1 })
                assert.strictEqual(yield* tagOf(Store.update(TallyV1, t, "crash")), "RecordCrashed")
                assert.strictEqual(yield* faults.injected, 1)
                assert.deepStrictEqual(yield* Store.get(TallyV1, t), { id: "t", n: 1 })
                assert.strictEqual((yield* Store.update(TallyV1, t, "inc")).n, 2)
                // the restart's write whose answer was lost and could not be read back (Unavailable): kept too
                let lost = false
                yield* faults.inject({
                  when: (text) => FaultySql.isWrite(text) && (lost = true),
                  fault: "lostReply",
                  times: 1
                })
                yield* faults.inject({ when: (text) => lost && /^\s*SELECT \*/.test(text), fault: "drop", times: 1 })
                assert.strictEqual(yield* tagOf(Store.update(TallyV1, t, "crash")), "RecordCrashed")
                assert.strictEqual(yield* faults.injected, 3)
                assert.strictEqual(yield* tagOf(Store.get(TallyV1, t)), "Success")
                const tags = (yield* PubSub.takeAll(events)).map((e) => e._tag)
                assert.deepStrictEqual(tags.slice(0, 4), ["Created", "Updated", "Restarted", "Updated"])
                assert.notInclude(tags, "Failed")
              })
            )
            // storage kept the record: what the store holds now, it holds in the next process
            yield* process(
              [TallyV1],
              Effect.gen(function*() {
                const t = yield* Store.get(TallyV1, { id: "t" })
                assert.include([0, 2], t.n)
                assert.strictEqual((yield* Store.update(TallyV1, t, "inc")).n, t.n + 1)
              })
            )
          })
        )
    )

    it.live("a stored record restarts from its stored state by default; a migrated one keeps its migrated state", () =>
      withDatabase((process) =>
        Effect.gen(function*() {
          yield* process(
            [Counter, TallyV1],
            Effect.gen(function*() {
              const c = yield* Store.create(Counter, "create", { id: "c", n: 0, note: "fine" })
              yield* Store.update(Counter, c, "inc")
              assert.strictEqual(yield* tagOf(Store.update(Counter, c, "crash")), "RecordCrashed")
              assert.deepStrictEqual(yield* Store.get(Counter, c), { id: "c", n: 1, note: "fine" })
              const t = yield* Store.create(TallyV1, "create", { id: "t", n: 0 })
              yield* Store.update(TallyV1, t, "inc")
            })
          )
          yield* process(
            [Counter, TallyV2],
            Effect.gen(function*() {
              assert.deepStrictEqual(yield* Store.get(Counter, { id: "c" }), { id: "c", n: 1, note: "fine" })
              // restart "initial" declared, but its create no longer exists: it resumes its (migrated) last state
              assert.strictEqual(yield* tagOf(Store.update(TallyV2, { id: "t" }, "crash")), "RecordCrashed")
              assert.deepStrictEqual(yield* Store.get(TallyV2, { id: "t" }), { id: "t", n: 1, unit: "each" })
              assert.strictEqual((yield* Store.update(TallyV2, { id: "t" }, "inc")).n, 2)
            })
          )
          yield* process(
            [TallyV2],
            Effect.gen(function*() {
              assert.deepStrictEqual(yield* Store.get(TallyV2, { id: "t" }), { id: "t", n: 2, unit: "each" })
            })
          )
        })
      ))

    it.live(
      "property: under random storage faults every acknowledged write is kept once, every failure typed",
      () =>
        Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(fc.array(commandArb, { minLength: 1, maxLength: 12 }), (commands) =>
              Effect.runPromise(withDatabase((process) =>
                Effect.gen(function*() {
                  const model: Model = new Map()
                  yield* process(
                    [Counter],
                    Effect.gen(function*() {
                      for (const [i, command] of commands.entries()) {
                        yield* step(model, command, i)
                        yield* (yield* FaultySql.Faults).clear
                        yield* agrees(model)
                      }
                    })
                  )
                  // what storage holds is what was acknowledged
                  yield* process([Counter], agrees(model))
                })
              ))),
            { numRuns: numRuns(factory.modelRuns, factory.modelRuns * 20), seed: seed(1885) }
          )
        ),
      120_000
    )

    it.live("tables named with upper-case letters: a destroyed key is created again", () =>
      withDatabase((process) =>
        process(
          [Counter],
          Effect.gen(function*() {
            const c = yield* Store.create(Counter, "create", { id: "c", n: 0, note: "fine" })
            yield* Store.destroy(Counter, c)
            assert.deepStrictEqual(yield* Store.create(Counter, "create", { id: "c", n: 5, note: "again" }), {
              id: "c",
              n: 5,
              note: "again"
            })
          }),
          { tablePrefix: "Faults_Shop_" }
        )
      ))
  })
}
