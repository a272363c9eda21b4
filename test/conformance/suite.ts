/**
 * The conformance suite: the Store's behaviour as DESIGN.md states it,
 * written once against the public `Store` API and run against every data
 * layer (`test/conformance/<layer>.test.ts`, one line each).
 *
 * A data layer is given as a {@link Factory} from resources to a `Store`
 * layer; the suite provides the services its resources' hooks need (a
 * journal, a barrier, a gate). What legitimately differs between layers, by their
 * documented Gotchas, is a {@link Capabilities} flag; everything else is
 * tested unconditionally. A test a layer is known to fail is named in
 * `knownFailures`: it still runs, and is expected to fail (`it.fails`), so
 * the day the layer is fixed the list must shrink.
 *
 * Time is the `TestClock`'s (it starts at 0), except where a test needs a
 * clock whose sleepers wake only when told ({@link manualClock}) or a live
 * clock to bound a call that might hang.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Deferred, Effect, Exit, Fiber, Layer, Metric, PubSub, References, Schema, Scope } from "effect"
import { Errors, Event, Filter, Metrics, Query, type Resource, Store } from "effect-gen-server"
import { TestClock } from "effect/testing"
import { makeManualClock } from "../fixtures/Model.js"
import {
  Alarm,
  allResources,
  Archive,
  Bucket,
  type Gate,
  Keeper,
  KeptAlarm,
  Link,
  Machine,
  makeServices,
  Mortal,
  Peer,
  Phoenix,
  Reading,
  Seat,
  Stubborn,
  Traveller
} from "./fixtures.js"

/** A data layer under test: a complete `Store` layer over the given resources. */
export type Factory = (resources: ReadonlyArray<Resource.Any>) => Layer.Layer<Store.Store, never, any>

/** What may differ between data layers, each by a Gotcha its documentation states. */
export interface Capabilities {
  /**
   * A supervisor restarts a crashed record by its `restart` policy, within
   * its restart intensity (`Restarted`, `Failed`). Without one (the memory
   * layer), a defect fails the call with `RecordCrashed` and the record keeps
   * its last committed state, whatever its policy.
   */
  readonly supervision: boolean
  /**
   * Records are destroyed at their deadline, through their primary destroy
   * action (its hooks run), without anyone touching them. Without it (the
   * memory layer), a record past its deadline is invisible at once and is
   * removed, with its `Destroyed` event, when next touched by a direct access.
   */
  readonly eagerExpiry: boolean
  /**
   * Expiry runs the record's destroy action (its hooks, and, when it fails,
   * its failure on `Destroyed`). Without it (the memory layer), an expired
   * record is removed without running it.
   */
  readonly expiryRunsDestroy: boolean
  /**
   * Records keep schedules (`Changeset.schedule`). Without it (the cluster
   * layer, for now), a change that schedules is refused with
   * `ValidationError` and `Store.schedules` answers `[]`.
   */
  readonly schedules: boolean
}

/** Tests a layer is known to fail, by title: each still runs, expected to fail. */
export interface Options {
  readonly knownFailures?: ReadonlyArray<string> | undefined
  /**
   * Tests whose outcome on the layer depends on a race the test cannot
   * control (a known failure that sometimes passes would turn red): skipped,
   * each with its cause written beside it.
   */
  readonly skipped?: ReadonlyArray<string> | undefined
}

type Journal = Array<string>
type Body<A, E> = (journal: Journal, gate: Gate["Service"]) => Effect.Effect<A, E, Store.Store | Scope.Scope>

const quiet = Effect.provideService(References.MinimumLogLevel, "None")

const tagOf = <A, E extends { readonly _tag: string }, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.match(effect, { onFailure: (e) => e._tag, onSuccess: () => "Success" })

const drain = (events: PubSub.Subscription<Store.Event>) => PubSub.takeUpTo(events, 10_000)

/**
 * What became of an interrupted caller's write of the Traveller key `id`
 * once it settled: `"free"` when a create under `id` now commits, `"held"`
 * when it is refused because a record holds `id`. A create refused while no
 * record holds `id` (a write still running, or the key left taken for good)
 * is tried again, for a second at most (a live clock), then `"taken by nobody"`.
 */
const claimable = (id: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100; i++) {
      const created = yield* Effect.exit(Store.create(Traveller, "create", { id, name: "Later", currentYear: 2000 }))
      if (Exit.isSuccess(created)) return "free"
      if ((yield* tagOf(Store.get(Traveller, { id }))) === "Success") return "held"
      yield* Effect.sleep("10 millis")
    }
    return "taken by nobody"
  })
const tags = (events: ReadonlyArray<Store.Event>) => events.map((e) => e._tag)

const byId = <A extends { readonly id: string }>(records: ReadonlyArray<A>) =>
  [...records].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0))

// ---------------------------------------------------------------------------
// A plain evaluation of queries, written from the documentation of Filter and Query
// ---------------------------------------------------------------------------

const isNil = (v: unknown) => v === undefined || v === null

const matches = (expr: Filter.Expr, r: any): boolean => {
  switch (expr._tag) {
    case "And":
      return expr.filters.every((f) => matches(f, r))
    case "Or":
      return expr.filters.some((f) => matches(f, r))
    case "Not":
      return !matches(expr.filter, r)
    case "IsNil":
      return isNil(r[expr.field])
    case "In":
      return expr.values.includes(r[expr.field])
    case "Contains": {
      const v = r[expr.field]
      return typeof v === "string" ? v.includes(expr.value as string) : Array.isArray(v) && v.includes(expr.value)
    }
    case "Eq":
      return r[expr.field] === expr.value
    case "Neq":
      return r[expr.field] !== expr.value
    default: {
      const v = r[expr.field]
      if (isNil(v)) return false
      return expr._tag === "Gt"
        ? v > expr.value!
        : expr._tag === "Gte"
        ? v >= expr.value!
        : expr._tag === "Lt"
        ? v < expr.value!
        : v <= expr.value!
    }
  }
}

/** Absent values first ascending, last descending; ties keep the order given (a stable sort). */
const expectedRead = (records: ReadonlyArray<any>, q: Query.Query<any>): Array<any> => {
  const compare = (x: unknown, y: unknown) =>
    x === y ? 0 : isNil(x) ? -1 : isNil(y) ? 1 : (x as any) < (y as any) ? -1 : (x as any) > (y as any) ? 1 : 0
  const sorted = records.filter((r) => q.filter === undefined || matches(q.filter, r)).sort((a, b) => {
    for (const { direction, field } of q.sort) {
      const c = compare(a[field], b[field])
      if (c !== 0) return direction === "asc" ? c : -c
    }
    return 0
  })
  return sorted.slice(q.offset, q.limit === undefined ? undefined : q.offset + q.limit)
}

/** The Archive, in the order of creation: ties, missing nicknames, shared tags. */
const archive: ReadonlyArray<Archive> = [
  { id: "a1", name: "Marty", nickname: "Calvin", year: 1985, tags: ["hero", "skater"] },
  { id: "a2", name: "Doc", year: 1955, tags: ["inventor"] },
  { id: "a3", name: "Biff", nickname: "Griff", year: 2015, tags: ["villain"] },
  { id: "a4", name: "Lorraine", year: 1955, tags: ["hero"] },
  { id: "a5", name: "George", nickname: "Calvin", year: 1955, tags: ["writer", "hero"] },
  { id: "a6", name: "Jennifer", year: 1985, tags: [] },
  { id: "a7", name: "Clara", nickname: "Miss Clayton", year: 1885, tags: ["teacher"] },
  { id: "a8", name: "Marvin", year: 1955, tags: ["musician", "hero"] }
]

const filters: ReadonlyArray<readonly [string, Filter.Expr]> = [
  ["eq", Filter.eq("year", 1955)],
  ["eq on an optional field", Filter.eq("nickname", "Calvin")],
  ["neq", Filter.neq("year", 1955)],
  ["neq on an optional field", Filter.neq("nickname", "Calvin")],
  ["gt", Filter.gt("year", 1955)],
  ["gte", Filter.gte("year", 1955)],
  ["lt", Filter.lt("year", 1985)],
  ["lte", Filter.lte("year", 1985)],
  ["gt on strings", Filter.gt("name", "George")],
  ["lt on an optional field", Filter.lt("nickname", "H")],
  ["in", Filter.in("name", ["Doc", "Biff", "Einstein"])],
  ["in, empty", Filter.in("name", [])],
  ["contains a substring", Filter.contains("name", "ar")],
  ["contains an element", Filter.contains("tags", "hero")],
  ["contains on an optional field", Filter.contains("nickname", "al")],
  ["isNil", Filter.isNil("nickname")],
  ["not isNil", Filter.not(Filter.isNil("nickname"))],
  ["and", Filter.and(Filter.eq("year", 1955), Filter.contains("tags", "hero"))],
  ["or", Filter.or(Filter.eq("year", 2015), Filter.isNil("nickname"))],
  ["not", Filter.not(Filter.eq("year", 1955))],
  [
    "nested",
    Filter.or(
      Filter.and(Filter.gte("year", 1955), Filter.lt("year", 1985), Filter.not(Filter.contains("tags", "hero"))),
      Filter.and(Filter.eq("nickname", "Calvin"), Filter.neq("name", "George"))
    )
  ],
  ["not of or", Filter.not(Filter.or(Filter.eq("year", 1955), Filter.eq("year", 1985)))]
]

const query = (
  filter: Filter.Expr | undefined,
  sort: ReadonlyArray<readonly [string, "asc" | "desc"]> = [],
  offset?: number,
  limit?: number
): Query.Query<Archive> => {
  let q: Query.Query<Archive> = Query.make(Archive)
  if (filter !== undefined) q = Query.filter(q, filter as Filter.Filter<{}>) as Query.Query<Archive>
  for (const [field, direction] of sort) q = (Query.sort as any)(q, field, direction)
  if (offset !== undefined) q = Query.offset(q, offset)
  if (limit !== undefined) q = Query.limit(q, limit)
  return q
}

// ---------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------

/**
 * Registers the conformance suite for one data layer.
 */
export const conformance = (name: string, make: Factory, caps: Capabilities, options: Options = {}) => {
  const known = new Set(options.knownFailures ?? [])
  const skipped = new Set(options.skipped ?? [])
  const used = new Set<string>()

  /** Runs `body` with a fresh Store of the layer under test over every fixture resource. */
  const withStore = <A, E>(body: Body<A, E>) =>
    Effect.gen(function*() {
      const services = yield* makeServices
      const store = make(allResources).pipe(Layer.provide(services.layer)) as Layer.Layer<Store.Store>
      return yield* body(services.journal.entries, services.gate).pipe(Effect.provide(store))
    }).pipe(quiet)

  /**
   * An `it.effect` (or `it.live`), expected to fail when the layer is known to
   * fail it; a known failure may hang (a sleeper the test clock never wakes):
   * it is given 2 seconds.
   */
  const test = <A, E>(title: string, body: Body<A, E>, clock: "test" | "live" = "test") => {
    const fails = known.has(title)
    if (fails || skipped.has(title)) used.add(title)
    const tester = clock === "live" ? it.live : it.effect
    if (skipped.has(title)) return tester.skip(title, () => withStore(body))
    if (fails) tester.fails(title, () => withStore(body), 2_000)
    else tester(title, () => withStore(body))
  }

  describe(`conformance: ${name}`, () => {
    describe("round trips", () => {
      test("create, get, reload, update and destroy round-trip a record", () =>
        Effect.gen(function*() {
          const marty = yield* Store.create(Traveller, "create", { name: "Marty", currentYear: 1985 })
          assert.deepStrictEqual(marty, { id: marty.id, name: "Marty", currentYear: 1985 })
          assert.deepStrictEqual(yield* Store.get(Traveller, { id: marty.id }), marty)
          assert.deepStrictEqual(yield* Store.reload(Traveller, marty), marty)
          const calvin = yield* Store.update(Traveller, marty, "update", { nickname: "Calvin" })
          assert.deepStrictEqual(calvin, { ...marty, nickname: "Calvin" })
          assert.deepStrictEqual(yield* Store.get(Traveller, marty), calvin)
          assert.deepStrictEqual(yield* Store.read(Query.make(Traveller)), [calvin])
          yield* Store.destroy(Traveller, marty)
          assert.deepStrictEqual(
            [
              yield* tagOf(Store.get(Traveller, marty)),
              yield* tagOf(Store.reload(Traveller, marty)),
              yield* tagOf(Store.update(Traveller, marty, "update", { name: "Again" })),
              yield* tagOf(Store.keepAlive(Traveller, marty)),
              yield* tagOf(Store.destroy(Traveller, marty))
            ],
            ["NotFound", "NotFound", "NotFound", "NotFound", "NotFound"]
          )
          assert.deepStrictEqual(yield* Store.read(Query.make(Traveller)), [])
          // destroy frees the key
          const again = yield* Store.create(Traveller, "create", { id: marty.id, name: "Marty", currentYear: 2015 })
          assert.deepStrictEqual(yield* Store.get(Traveller, marty), again)
        }))

      test("records handed to callers are immutable: changing one changes nothing else", () =>
        Effect.gen(function*() {
          const marty = yield* Store.create(Traveller, "create", { id: "marty", name: "Marty", currentYear: 1985 })
          const got = yield* Store.get(Traveller, marty)
          const [read] = yield* Store.read(Query.make(Traveller))
          const updated = yield* Store.update(Traveller, marty, "update", { nickname: "Calvin" })
          for (const record of [marty, got, read, updated]) {
            try {
              ;(record as any).name = "Biff"
              ;(record as any).id = "biff"
            } catch {
              // a frozen record refuses the change: as good
            }
          }
          const expected = { id: "marty", name: "Marty", nickname: "Calvin", currentYear: 1985 }
          assert.deepStrictEqual(yield* Store.get(Traveller, { id: "marty" }), expected)
          assert.deepStrictEqual(yield* Store.read(Query.make(Traveller)), [expected])
          assert.deepStrictEqual(
            yield* Store.read(Query.make(Traveller).pipe(Query.filter(Filter.eq("name", "Marty")))),
            [expected]
          )
          assert.strictEqual(yield* tagOf(Store.get(Traveller, { id: "biff" })), "NotFound")
        }))

      test("hooks call other records through the Store: the TimeTravel plot", () =>
        Effect.gen(function*() {
          const marty = yield* Store.create(Traveller, "create", { id: "marty", name: "Marty", currentYear: 1985 })
          const doc = yield* Store.create(Traveller, "create", { id: "doc", name: "Doc", currentYear: 1985 })
          const delorean = yield* Store.create(Machine, "create", { id: "delorean", name: "OUTATIME" })
          assert.strictEqual(delorean.hasPower, false)
          const refused = yield* Effect.flip(
            Store.update(Machine, delorean, "travelInTime", { occupants: ["marty", "doc"], targetYear: 1955 })
          )
          assert.strictEqual(refused._tag, "ActionError")
          assert.strictEqual((yield* Store.get(Traveller, marty)).currentYear, 1985)
          yield* Store.update(Machine, delorean, "charge")
          yield* Store.update(Machine, delorean, "travelInTime", { occupants: ["marty"], targetYear: 1955 })
          assert.strictEqual((yield* Store.get(Traveller, marty)).currentYear, 1955)
          assert.deepStrictEqual(yield* Store.get(Traveller, doc), doc)
          assert.strictEqual((yield* Store.get(Machine, delorean)).hasPower, false)
          // an occupant that does not exist fails the hook: the machine keeps its power
          yield* Store.update(Machine, delorean, "charge")
          const lost = yield* Effect.flip(
            Store.update(Machine, delorean, "travelInTime", { occupants: ["jennifer"], targetYear: 2015 })
          )
          assert.strictEqual(lost._tag, "ActionError")
          assert.strictEqual((yield* Store.get(Machine, delorean)).hasPower, true)
        }))

      test("default actions, declared actions with their hooks, and a declared destroy", (journal) =>
        Effect.gen(function*() {
          // Seat declares nothing: create, update and destroy are the defaults
          const seat = yield* Store.create(Seat, "create", { venue: "Hill Valley", row: 1 })
          assert.deepStrictEqual(yield* Store.update(Seat, seat, "update", { holder: "Marty" }), {
            venue: "Hill Valley",
            row: 1,
            holder: "Marty"
          })
          yield* Store.destroy(Seat, seat)
          assert.strictEqual(yield* tagOf(Store.get(Seat, seat)), "NotFound")
          // a declared action runs its change and its hooks, in order
          const doc = yield* Store.create(Traveller, "create", { id: "doc", name: "Doc", currentYear: 1985 })
          const travelled = yield* Store.update(Traveller, doc, "travelInTime", { targetYear: 1955 })
          assert.strictEqual(travelled.currentYear, 1955)
          assert.deepStrictEqual(yield* Store.get(Traveller, doc), travelled)
          assert.deepStrictEqual(journal.splice(0), ["before travel doc", "after travel doc"])
          // a declared create replaces the default one
          yield* Store.create(Phoenix, "create", { id: "p", n: 0 })
          assert.deepStrictEqual(journal.splice(0), ["create p"])
          // the declared destroy replaces the default one
          yield* Store.destroy(Traveller, doc)
          assert.deepStrictEqual(journal.splice(0), ["destroy doc"])
        }))

      test("generated fields are filled when absent, kept when given", () =>
        Effect.gen(function*() {
          const a = yield* Store.create(Traveller, "create", { name: "Marty", currentYear: 1985 })
          const b = yield* Store.create(Traveller, "create", { name: "Marty", currentYear: 1985 })
          assert.isString(a.id)
          assert.notStrictEqual(a.id, b.id)
          const given = yield* Store.create(Traveller, "create", {
            id: "einstein",
            name: "Einstein",
            currentYear: 1985
          })
          assert.strictEqual(given.id, "einstein")
          assert.deepStrictEqual(yield* Store.get(Traveller, { id: "einstein" }), given)
          assert.deepStrictEqual(byId(yield* Store.read(Query.make(Traveller))), byId([a, b, given]))
        }))

      test("composite keys: each part counts, a taken pair is AlreadyExists", () =>
        Effect.gen(function*() {
          const one = yield* Store.create(Seat, "create", { venue: "Hill Valley", row: 1 })
          const two = yield* Store.create(Seat, "create", { venue: "Hill Valley", row: 2 })
          const other = yield* Store.create(Seat, "create", { venue: "Twin Pines", row: 1 })
          assert.deepStrictEqual(yield* Store.get(Seat, { venue: "Hill Valley", row: 2 }), two)
          assert.deepStrictEqual(yield* Store.get(Seat, { venue: "Twin Pines", row: 1 }), other)
          const taken = yield* Effect.flip(
            Store.create(Seat, "create", { venue: "Hill Valley", row: 1, holder: "Biff" })
          )
          assert.strictEqual(taken._tag, "AlreadyExists")
          assert.deepStrictEqual(yield* Store.get(Seat, one), one)
          const held = yield* Store.update(Seat, { venue: "Twin Pines", row: 1 }, "update", { holder: "Marty" })
          assert.deepStrictEqual(held, { venue: "Twin Pines", row: 1, holder: "Marty" })
          yield* Store.destroy(Seat, { venue: "Hill Valley", row: 1 })
          assert.strictEqual(yield* tagOf(Store.get(Seat, one)), "NotFound")
          assert.deepStrictEqual(yield* Store.get(Seat, two), two)
          assert.deepStrictEqual(
            yield* Store.read(Query.make(Seat).pipe(Query.filter(Filter.eq("venue", "Twin Pines")))),
            [held]
          )
        }))

      test("a key change re-registers the record: the old key is free, the new one found", (journal) =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          yield* Store.create(Traveller, "create", { id: "marty", name: "Marty", currentYear: 1985 })
          const moved = yield* Store.update(Traveller, { id: "marty" }, "update", { id: "calvin" })
          assert.deepStrictEqual(moved, { id: "calvin", name: "Marty", currentYear: 1985 })
          assert.strictEqual(yield* tagOf(Store.get(Traveller, { id: "marty" })), "NotFound")
          assert.deepStrictEqual(yield* Store.get(Traveller, { id: "calvin" }), moved)
          assert.deepStrictEqual(
            yield* Store.read(Query.make(Traveller).pipe(Query.filter(Filter.eq("id", "calvin")))),
            [moved]
          )
          assert.deepStrictEqual(
            yield* Store.read(Query.make(Traveller).pipe(Query.filter(Filter.eq("id", "marty")))),
            []
          )
          // actions reach it under its new key only
          yield* Store.update(Traveller, { id: "calvin" }, "travelInTime", { targetYear: 1955 })
          assert.deepStrictEqual(journal.splice(0), ["before travel calvin", "after travel calvin"])
          // the old key is free again
          const again = yield* Store.create(Traveller, "create", { id: "marty", name: "Marty II", currentYear: 2015 })
          assert.deepStrictEqual(yield* Store.get(Traveller, { id: "marty" }), again)
          // a key change onto a taken key is refused and changes nothing
          yield* drain(events)
          const taken = yield* Effect.flip(Store.update(Traveller, { id: "calvin" }, "update", { id: "marty" }))
          assert.strictEqual(taken._tag, "AlreadyExists")
          assert.deepStrictEqual(yield* Store.get(Traveller, { id: "marty" }), again)
          assert.strictEqual((yield* Store.get(Traveller, { id: "calvin" })).currentYear, 1955)
          assert.deepStrictEqual(yield* drain(events), [])
        }))

      test("a create on a taken key is AlreadyExists and changes nothing", () =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const doc = yield* Store.create(Traveller, "create", { id: "doc", name: "Doc", currentYear: 1985 })
          yield* drain(events)
          const error = yield* Effect.flip(
            Store.create(Traveller, "create", { id: "doc", name: "Fake", currentYear: 1 })
          )
          assert.strictEqual(error._tag, "AlreadyExists")
          if (error._tag === "AlreadyExists") assert.deepStrictEqual(error.key, { id: "doc" })
          assert.deepStrictEqual(yield* Store.get(Traveller, { id: "doc" }), doc)
          assert.deepStrictEqual(yield* Store.read(Query.make(Traveller)), [doc])
          assert.deepStrictEqual(yield* drain(events), [])
        }))
      test("writes under an operation id the caller chose are applied", () =>
        Effect.gen(function*() {
          const marty = yield* Store.create(Traveller, "create", { name: "Marty", currentYear: 1985 }).pipe(
            Store.withOperationId("arrive")
          )
          const travelled = yield* Store.update(Traveller, marty, "travelInTime", { targetYear: 1955 }).pipe(
            Store.withOperationId("y".repeat(200))
          )
          assert.strictEqual(travelled.currentYear, 1955)
          assert.deepStrictEqual(yield* Store.get(Traveller, marty), travelled)
          yield* Store.destroy(Traveller, marty).pipe(Store.withOperationId("leave"))
          assert.strictEqual(yield* tagOf(Store.get(Traveller, marty)), "NotFound")
        }))
    })

    describe("atomicity", () => {
      const cases = [
        ["a change that refuses with addError", "refuse", "ActionError", []],
        ["a before hook failing", "failBefore", "ActionError", ["failBefore ran"]],
        ["an after hook failing", "failAfter", "ActionError", ["failAfter ran"]],
        ["an invalid new state", "corrupt", "ValidationError", []]
      ] as const
      for (const [what, action, tag, hooks] of cases) {
        test(`${what} is ${tag}, leaves the record exactly as it was and publishes nothing`, (journal) =>
          Effect.gen(function*() {
            const events = yield* Store.subscribe
            const marty = yield* Store.create(Traveller, "create", {
              id: "marty",
              name: "Marty",
              nickname: "Calvin",
              currentYear: 1985
            })
            yield* drain(events)
            const error = yield* Effect.flip(Store.update(Traveller, marty, action))
            assert.strictEqual(error._tag, tag)
            assert.deepStrictEqual(journal.splice(0), [...hooks], "the failing step ran")
            assert.deepStrictEqual(yield* Store.get(Traveller, marty), marty)
            assert.deepStrictEqual(yield* Store.read(Query.make(Traveller)), [marty])
            assert.deepStrictEqual(yield* drain(events), [])
            // the record still serves calls
            const later = yield* Store.update(Traveller, marty, "update", { currentYear: 1955 })
            assert.deepStrictEqual(later, { ...marty, currentYear: 1955 })
          }))
      }

      test(
        "only committed state is visible: a pending update is unseen until it commits",
        (_, gate) =>
          Effect.gen(function*() {
            const marty = yield* Store.create(Traveller, "create", { id: "marty", name: "Marty", currentYear: 1985 })
            const pending = yield* Effect.forkChild(Store.update(Traveller, marty, "ponder"))
            yield* Deferred.await(gate.entered)
            assert.deepStrictEqual(yield* Store.get(Traveller, marty), marty)
            assert.deepStrictEqual(yield* Store.read(Query.make(Traveller)), [marty])
            assert.deepStrictEqual(
              yield* Store.read(Query.make(Traveller).pipe(Query.filter(Filter.eq("name", "Pondering")))),
              []
            )
            yield* Deferred.succeed(gate.release, undefined)
            const done = yield* Fiber.join(pending)
            assert.strictEqual(done.name, "Pondering")
            assert.deepStrictEqual(yield* Store.get(Traveller, marty), done)
          })
      )

      test(
        "a caller interrupted in its create's after hooks leaves the key to whoever holds it",
        (_, gate) =>
          Effect.gen(function*() {
            const creating = yield* Effect.forkChild(
              Store.create(Traveller, "gatedCreate", { id: "doc", name: "Doc", currentYear: 1985 }),
              { startImmediately: true }
            )
            yield* Deferred.await(gate.entered)
            yield* Fiber.interrupt(creating)
            yield* Deferred.succeed(gate.release, undefined)
            // the create may still commit (served by the record's own fiber) or not (run in the caller's)
            const fate = yield* claimable("doc")
            assert.include(["free", "held"], fate)
            const doc = yield* Store.get(Traveller, { id: "doc" })
            assert.strictEqual(doc.name, fate === "free" ? "Later" : "Doc")
          }),
        "live"
      )

      test(
        "a caller interrupted in its key change's after hooks leaves the new key to whoever holds it",
        (_, gate) =>
          Effect.gen(function*() {
            const marty = yield* Store.create(Traveller, "create", { id: "marty", name: "Marty", currentYear: 1985 })
            const moving = yield* Effect.forkChild(
              Store.update(Traveller, marty, "gatedMove", { id: "mcfly" }),
              { startImmediately: true }
            )
            yield* Deferred.await(gate.entered)
            yield* Fiber.interrupt(moving)
            yield* Deferred.succeed(gate.release, undefined)
            const fate = yield* claimable("mcfly")
            assert.include(["free", "held"], fate)
            // moved, or not: never both, never neither
            assert.strictEqual(yield* tagOf(Store.get(Traveller, marty)), fate === "free" ? "Success" : "NotFound")
            assert.strictEqual((yield* Store.get(Traveller, { id: "mcfly" })).name, fate === "free" ? "Later" : "Marty")
          }),
        "live"
      )

      test("an after hook cannot change the state its action commits: the state it is given is frozen", () =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const marty = yield* Store.create(Traveller, "create", { id: "marty", name: "Marty", currentYear: 1985 })
          yield* drain(events)
          // writing to it throws: a defect in the hook, nothing committed
          assert.strictEqual(yield* tagOf(Store.update(Traveller, marty, "tamper")), "RecordCrashed")
          assert.deepStrictEqual(yield* Store.get(Traveller, marty), marty)
          // through a get of its own record: it throws as well, or writes to a copy; either way nothing unvalidated
          const seen = yield* tagOf(Store.update(Traveller, marty, "tamperSeen"))
          assert.include(["RecordCrashed", "Success"], seen)
          const now = seen === "Success" ? { ...marty, name: "Tampered" } : marty
          assert.deepStrictEqual(yield* Store.get(Traveller, marty), now)
          assert.deepStrictEqual(yield* Store.read(Query.make(Traveller)), [now])
          for (const e of yield* drain(events)) {
            if (e._tag === "Updated") assert.deepStrictEqual(e.record, now)
          }
        }))

      test("a create whose new state is invalid leaves no record and publishes nothing", () =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const error = yield* Effect.flip(
            Store.create(Traveller, "create", { id: "x", name: "Nobody", currentYear: -5 })
          )
          assert.strictEqual(error._tag, "ValidationError")
          assert.strictEqual(yield* tagOf(Store.get(Traveller, { id: "x" })), "NotFound")
          assert.deepStrictEqual(yield* Store.read(Query.make(Traveller)), [])
          assert.deepStrictEqual(yield* drain(events), [])
          // the key was never taken
          yield* Store.create(Traveller, "create", { id: "x", name: "Somebody", currentYear: 5 })
        }))
    })

    describe("errors", () => {
      const untyped = Store as any

      /** Each call fails with its tag; afterwards the record and the events are as they were. */
      const refusesAll = (
        cases: (
          marty: Traveller
        ) => ReadonlyArray<readonly [string, Effect.Effect<unknown, { readonly _tag: string }, any>]>
      ) =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const marty = yield* Store.create(Traveller, "create", { id: "marty", name: "Marty", currentYear: 1985 })
          yield* drain(events)
          for (const [i, [tag, effect]] of cases(marty).entries()) {
            assert.strictEqual(yield* tagOf(effect), tag, `case ${i}`)
          }
          assert.deepStrictEqual(yield* Store.get(Traveller, marty), marty)
          assert.deepStrictEqual(yield* Store.read(Query.make(Traveller)), [marty])
          assert.deepStrictEqual(yield* drain(events), [])
        })

      test("an unknown action is UnknownAction and changes nothing", () =>
        refusesAll((marty) => [
          ["UnknownAction", untyped.create(Traveller, "fly", { name: "Marty", currentYear: 1 })],
          ["UnknownAction", untyped.update(Traveller, marty, "fly", {})],
          ["UnknownAction", untyped.destroy(Traveller, marty, "vanish")],
          ["UnknownAction", untyped.create(Traveller, "travelInTime", { targetYear: 1 })],
          ["UnknownAction", untyped.update(Traveller, marty, "create", { name: "x" })],
          ["UnknownAction", untyped.destroy(Traveller, marty, "travelInTime")]
        ]))

      test("invalid input is ValidationError and changes nothing", () =>
        refusesAll((marty) => [
          ["ValidationError", untyped.create(Traveller, "create", { name: "Marty" })],
          ["ValidationError", untyped.create(Traveller, "create", { name: 7, currentYear: 1985 })],
          ["ValidationError", untyped.create(Traveller, "create", "Marty")],
          ["ValidationError", untyped.update(Traveller, marty, "travelInTime", { targetYear: "1955" })],
          ["ValidationError", untyped.update(Traveller, marty, "travelInTime", {})],
          ["ValidationError", untyped.update(Traveller, marty, "update", { currentYear: 1.5 })],
          ["ValidationError", untyped.update(Traveller, marty, "update", { currentYear: -1 })],
          ["ValidationError", untyped.read(Query.make(Traveller).pipe(Query.filter(Filter.eq("warp" as never, 1))))],
          ["ValidationError", untyped.read(Query.make(Traveller).pipe(Query.limit(-1)))]
        ]))

      test("a value storage would read back as another is ValidationError naming the field; the number is kept", () =>
        Effect.gen(function*() {
          // the numbers themselves, stored as the strings "Infinity", "NaN" and "-Infinity", come back as numbers
          const r = yield* Store.create(Reading, "create", { id: "r", v: Infinity, history: [NaN, "x", -Infinity] })
          assert.deepStrictEqual(yield* Store.get(Reading, r), { id: "r", v: Infinity, history: [NaN, "x", -Infinity] })
          // those strings in the same fields would come back as numbers: refused, on every layer alike
          for (const [field, value] of [["v", "Infinity"], ["history", [1, "NaN"]]] as const) {
            const update: Effect.Effect<unknown, Errors.StoreError> = untyped.update(Reading, r, "update", {
              [field]: value
            })
            const error = yield* Effect.flip(update)
            assert.strictEqual(error._tag, "ValidationError")
            if (error._tag === "ValidationError") {
              assert.deepStrictEqual(error.issues?.[0]?.path, [field])
              assert.match(error.message, new RegExp(`^Reading: invalid (record|input of action update): ${field}: `))
            }
          }
          assert.strictEqual(
            yield* tagOf(
              untyped.create(Reading, "create", { id: "s", v: "-Infinity", history: [] }) as Effect.Effect<
                unknown,
                Errors.StoreError
              >
            ),
            "ValidationError"
          )
          assert.strictEqual(yield* tagOf(Store.get(Reading, { id: "s" })), "NotFound")
          // an argument of such a type, too (it reaches the record as JSON on some layers)
          const noted: Effect.Effect<unknown, Errors.StoreError> = untyped.update(Reading, r, "note", { value: "NaN" })
          const refused = yield* Effect.flip(noted)
          assert.strictEqual(refused._tag, "ValidationError")
          assert.strictEqual((yield* Store.update(Reading, r, "note", { value: -Infinity })).v, -Infinity)
          assert.strictEqual((yield* Store.update(Reading, r, "update", { v: Infinity })).v, Infinity)
          assert.deepStrictEqual(yield* Store.get(Reading, r), { id: "r", v: Infinity, history: [NaN, "x", -Infinity] })
          // any other string is a string
          const s = yield* Store.create(Reading, "create", { id: "s", v: "infinity", history: ["Infinity!"] })
          assert.deepStrictEqual(yield* Store.get(Reading, s), { id: "s", v: "infinity", history: ["Infinity!"] })
        }))

      test("a malformed key is ValidationError and changes nothing", () =>
        refusesAll(() => [
          ["ValidationError", untyped.get(Traveller, { id: 5 })],
          ["ValidationError", untyped.get(Traveller, {})],
          ["ValidationError", untyped.get(Traveller, "marty")],
          ["ValidationError", untyped.reload(Traveller, null)],
          ["ValidationError", untyped.keepAlive(Traveller, { id: null })],
          ["ValidationError", untyped.update(Traveller, { id: 1 }, "update", { name: "x" })],
          ["ValidationError", untyped.destroy(Traveller, {})],
          ["ValidationError", untyped.get(Seat, { venue: "Hill Valley" })],
          ["ValidationError", untyped.get(Seat, { venue: "Hill Valley", row: "1" })]
        ]))

      test("a key longer than storage indexes (1,024 bytes stored) is ValidationError and changes nothing", (journal) =>
        Effect.gen(function*() {
          const long = "k".repeat(1025)
          const error = yield* Effect.flip(
            untyped.create(Traveller, "create", { id: long, name: "Long", currentYear: 1 }) as Effect.Effect<
              unknown,
              Errors.StoreError
            >
          )
          assert.strictEqual(error._tag, "ValidationError")
          assert.include(error.message, "at most 1024")
          yield* refusesAll((marty) => [
            ["ValidationError", untyped.create(Traveller, "create", { id: long, name: "Long", currentYear: 1 })],
            ["ValidationError", untyped.create(Seat, "create", { venue: "v".repeat(1100), row: 1 })],
            ["ValidationError", untyped.get(Traveller, { id: long })],
            ["ValidationError", untyped.keepAlive(Traveller, { id: long })],
            ["ValidationError", untyped.update(Traveller, { id: long }, "update", { name: "x" })],
            ["ValidationError", untyped.destroy(Traveller, { id: long })],
            // a key change onto a key too long
            ["ValidationError", untyped.update(Traveller, marty, "update", { id: long })]
          ])
          assert.deepStrictEqual(journal, [], "no hook ran")
          // the longest key that fits is a key like any other
          const fits = yield* Store.create(Traveller, "create", { id: "k".repeat(1024), name: "Fits", currentYear: 1 })
          assert.deepStrictEqual(yield* Store.get(Traveller, fits), fits)
        }))

      test("a malformed operation id is ValidationError and changes nothing", () =>
        refusesAll((marty) =>
          ["", "x".repeat(201), 42, null, "a\u0000b", "\u0001x", "x\ud800"].flatMap((id) => {
            const under = Store.withOperationId(id as string)
            return [
              ["ValidationError", Store.create(Traveller, "create", { name: "Biff", currentYear: 1955 }).pipe(under)],
              ["ValidationError", Store.update(Traveller, marty, "travelInTime", { targetYear: 1955 }).pipe(under)],
              ["ValidationError", Store.destroy(Traveller, marty).pipe(under)]
            ] as const
          })
        ))

      test("every error and event a call produces round-trips through its JSON codec", () =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const marty = yield* Store.create(Traveller, "create", { id: "marty", name: "Marty", currentYear: 1985 })
          yield* Store.update(Traveller, marty, "travelInTime", { targetYear: 1955 })
          const errors: ReadonlyArray<Errors.StoreError> = [
            yield* Effect.flip(Store.get(Traveller, { id: "nobody" })),
            yield* Effect.flip(Store.create(Traveller, "create", { id: "marty", name: "Again", currentYear: 1 })),
            yield* Effect.flip(Store.update(Traveller, marty, "refuse")),
            yield* Effect.flip(Store.update(Traveller, marty, "failBefore")),
            yield* Effect.flip(Store.update(Traveller, marty, "corrupt")),
            yield* Effect.flip(
              untyped.update(Traveller, marty, "fly", {}) as Effect.Effect<unknown, Errors.StoreError>
            ),
            yield* Effect.flip(Store.update(Traveller, marty, "crash"))
          ]
          yield* Store.destroy(Traveller, marty)
          const problems: Array<string> = []
          const roundTrip = (schema: Schema.Top, value: unknown, what: string) => {
            try {
              const codec = Schema.toCodecJson(schema as Schema.Codec<unknown, unknown>)
              const json = JSON.parse(JSON.stringify(Schema.encodeUnknownSync(codec)(value)))
              const back = Schema.decodeUnknownSync(codec)(json)
              assert.deepStrictEqual(Schema.encodeUnknownSync(codec)(back), json)
            } catch (e) {
              problems.push(`${what}: ${String(e).split("\n")[0]}`)
            }
          }
          for (const e of errors) roundTrip((Errors as any)[e._tag], e, e._tag)
          for (const e of yield* drain(events)) roundTrip(Event.Event, e, e._tag)
          assert.deepStrictEqual(problems, [])
        }))
    })

    describe("queries", () => {
      const seeded = <A, E>(body: (records: ReadonlyArray<Archive>) => Effect.Effect<A, E, Store.Store>) =>
        Effect.gen(function*() {
          const records: Array<Archive> = []
          for (const r of archive) records.push(yield* Store.create(Archive, "create", r))
          return yield* body(records)
        })

      const check = (q: Query.Query<Archive>, label: string) =>
        Effect.gen(function*() {
          const actual = yield* Store.read(q)
          assert.deepStrictEqual(actual, expectedRead(archive, q), label)
        })

      /** Without a sort, the order is not promised: compared by key. */
      const checkSet = (q: Query.Query<Archive>, label: string) =>
        Effect.gen(function*() {
          const actual = yield* Store.read(q)
          assert.deepStrictEqual(byId(actual), byId(expectedRead(archive, q)), label)
        })

      test("every Filter operator agrees with a plain evaluation", () =>
        seeded(() =>
          Effect.gen(function*() {
            for (const [label, filter] of filters.slice(0, 17)) yield* checkSet(query(filter), label)
          })
        ))

      test("and, or and not agree with a plain evaluation, as do several filters and-ed", () =>
        seeded(() =>
          Effect.gen(function*() {
            for (const [label, filter] of filters.slice(17)) yield* checkSet(query(filter), label)
            const twice = Query.make(Archive).pipe(
              Query.filter(Filter.eq("year", 1955)),
              Query.filter(Filter.not(Filter.isNil("nickname")))
            )
            yield* checkSet(twice, "two filters")
            assert.deepStrictEqual((yield* Store.read(twice)).map((r) => r.id), ["a5"])
          })
        ))

      test("a multi-key sort, ascending and descending, is stable", () =>
        seeded(() =>
          Effect.gen(function*() {
            const sorts: ReadonlyArray<ReadonlyArray<readonly [string, "asc" | "desc"]>> = [
              [["year", "asc"]],
              [["year", "desc"]],
              [["year", "asc"], ["name", "desc"]],
              [["year", "desc"], ["name", "asc"]],
              [["name", "asc"]],
              [["name", "desc"]],
              [["year", "desc"], ["nickname", "asc"]]
            ]
            for (const sort of sorts) yield* check(query(undefined, sort), JSON.stringify(sort))
            for (const sort of sorts) {
              yield* check(query(Filter.neq("name", "Doc"), sort), `filtered ${JSON.stringify(sort)}`)
            }
            // ties keep their order inside a window too (the top-k path of a sorted, limited read)
            for (const sort of sorts) {
              for (const [offset, limit] of [[0, 1], [0, 3], [1, 3], [2, 4], [5, 10]] as const) {
                yield* check(query(undefined, sort, offset, limit), `${JSON.stringify(sort)} [${offset}, +${limit}]`)
              }
            }
          })
        ))

      test("offset and limit window the sorted result", () =>
        seeded(() =>
          Effect.gen(function*() {
            const sort = [["year", "asc"], ["id", "desc"]] as const
            for (const offset of [0, 1, 3, 7, 8, 20]) {
              for (const limit of [undefined, 0, 1, 2, 5, 100]) {
                yield* check(query(undefined, sort, offset, limit), `offset ${offset} limit ${limit}`)
                yield* check(
                  query(Filter.gte("year", 1955), [["year", "desc"]], offset, limit),
                  `filtered, offset ${offset} limit ${limit}`
                )
              }
            }
            assert.strictEqual((yield* Store.read(query(undefined, [], undefined, 3))).length, 3)
            assert.strictEqual((yield* Store.read(query(undefined, [], 6))).length, 2)
          })
        ))

      test("missing optional fields: isNil, comparisons, and first ascending, last descending", () =>
        seeded(() =>
          Effect.gen(function*() {
            yield* check(query(undefined, [["nickname", "asc"]]), "asc")
            yield* check(query(undefined, [["nickname", "desc"]]), "desc")
            const asc = yield* Store.read(query(undefined, [["nickname", "asc"], ["id", "asc"]]))
            assert.deepStrictEqual(asc.slice(0, 4).map((r) => r.id), ["a2", "a4", "a6", "a8"])
            const desc = yield* Store.read(query(undefined, [["nickname", "desc"], ["id", "asc"]]))
            assert.deepStrictEqual(desc.slice(4).map((r) => r.id), ["a2", "a4", "a6", "a8"])
            yield* checkSet(query(Filter.gt("nickname", "A")), "gt skips the missing")
            yield* checkSet(query(Filter.neq("nickname", "Griff")), "neq keeps the missing")
          })
        ))

      test("read, by key, by an indexed field or by a scan, sees updates, key changes and destroys", () =>
        seeded((records) =>
          Effect.gen(function*() {
            yield* Store.update(Archive, records[0]!, "update", { year: 1955 })
            yield* Store.update(Archive, records[1]!, "update", { id: "a9" })
            yield* Store.destroy(Archive, records[2]!)
            yield* Store.update(Archive, records[4]!, "update", { year: 2015 })
            const in1955 = yield* Store.read(Query.make(Archive).pipe(Query.filter(Filter.eq("year", 1955))))
            assert.deepStrictEqual(byId(in1955).map((r) => r.id), ["a1", "a4", "a8", "a9"])
            const in2015 = yield* Store.read(Query.make(Archive).pipe(Query.filter(Filter.eq("year", 2015))))
            assert.deepStrictEqual(byId(in2015).map((r) => r.id), ["a5"])
            const byName = yield* Store.read(Query.make(Archive).pipe(Query.filter(Filter.eq("name", "Doc"))))
            assert.deepStrictEqual(byName.map((r) => r.id), ["a9"])
            const byKey = yield* Store.read(Query.make(Archive).pipe(Query.filter(Filter.eq("id", "a2"))))
            assert.deepStrictEqual(byKey, [])
            assert.deepStrictEqual((yield* Store.read(Query.make(Archive))).length, 7)
          })
        ))
    })

    describe("expiry", () => {
      const alive = Effect.map(Store.read(Query.make(Traveller)), (rs) => rs.map((r) => r.id))

      /** The Destroyed events published so far; without eager expiry, after a direct access by `key`. */
      const destroyedEvents = (events: PubSub.Subscription<Store.Event>, key: { readonly id: string }) =>
        Effect.gen(function*() {
          if (!caps.eagerExpiry) assert.strictEqual(yield* tagOf(Store.get(Traveller, key)), "NotFound")
          return (yield* drain(events)).filter((e) => e._tag === "Destroyed")
        })

      test("expiry removes a record whose destroy action refuses or dies; Destroyed says why", () =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          yield* Store.create(Stubborn, "create", { id: "no", mode: "refuse" })
          yield* Store.create(Stubborn, "create", { id: "die", mode: "die" })
          yield* drain(events)
          yield* TestClock.adjust("10 seconds")
          // without eager expiry, a direct access expires it on the spot
          for (const id of ["no", "die"]) assert.strictEqual(yield* tagOf(Store.get(Stubborn, { id })), "NotFound")
          assert.deepStrictEqual(yield* Store.read(Query.make(Stubborn)), [])
          const destroyed = (yield* drain(events)).filter((e) => e._tag === "Destroyed")
          const idOf = (e: Store.Event) => (e.key as { readonly id: string }).id
          assert.deepStrictEqual(destroyed.map(idOf).sort(), ["die", "no"])
          const failures = new Map(destroyed.map((e) => [idOf(e), e._tag === "Destroyed" ? e.failure : undefined]))
          if (caps.expiryRunsDestroy) {
            assert.include(failures.get("no"), "not today")
            assert.include(failures.get("die"), "boom in destroy")
          } else {
            assert.deepStrictEqual([...failures.values()], [undefined, undefined])
          }
          // the key is free again, and a new record under it lives its own life
          yield* Store.create(Stubborn, "create", { id: "no", mode: "die" })
          assert.deepStrictEqual(yield* Store.get(Stubborn, { id: "no" }), { id: "no", mode: "die" })
        }))

      test("read never counts as activity", () =>
        Effect.gen(function*() {
          yield* Store.create(Traveller, "create", { id: "biff", name: "Biff", currentYear: 2015 })
          for (let t = 2; t <= 8; t += 2) {
            yield* TestClock.adjust("2 seconds")
            assert.deepStrictEqual(yield* alive, ["biff"])
            assert.deepStrictEqual(
              (yield* Store.read(Query.make(Traveller).pipe(Query.filter(Filter.eq("id", "biff"))))).length,
              1
            )
          }
          yield* TestClock.adjust("2 seconds")
          assert.deepStrictEqual(yield* alive, [])
          assert.strictEqual(yield* tagOf(Store.get(Traveller, { id: "biff" })), "NotFound")
        }))

      test("inactivity: a record untouched for inactivityTimeout is destroyed, reason \"inactivity\"", (journal) =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const biff = yield* Store.create(Traveller, "create", { id: "biff", name: "Biff", currentYear: 2015 })
          yield* drain(events)
          yield* TestClock.adjust(9_999)
          assert.deepStrictEqual(yield* alive, ["biff"])
          yield* TestClock.adjust(1)
          assert.deepStrictEqual(yield* alive, [])
          if (caps.eagerExpiry) assert.deepStrictEqual(journal.splice(0), ["destroy biff"], "the destroy hook ran")
          const destroyed = yield* destroyedEvents(events, biff)
          assert.strictEqual(destroyed.length, 1)
          assert.deepStrictEqual(destroyed[0], {
            _tag: "Destroyed",
            resource: "Traveller",
            key: { id: "biff" },
            record: biff,
            reason: "inactivity"
          })
          assert.strictEqual(yield* tagOf(Store.get(Traveller, biff)), "NotFound")
          assert.strictEqual(yield* tagOf(Store.update(Traveller, biff, "update", { name: "Griff" })), "NotFound")
        }))

      test("lifetime: a record is destroyed at maximumLifetime whatever its activity, reason \"lifetime\"", (journal) =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const biff = yield* Store.create(Traveller, "create", { id: "biff", name: "Biff", currentYear: 2015 })
          yield* drain(events)
          for (let t = 5; t < 60; t += 5) {
            yield* TestClock.adjust("5 seconds")
            yield* Store.keepAlive(Traveller, biff)
          }
          assert.deepStrictEqual(yield* alive, ["biff"])
          yield* TestClock.adjust("5 seconds")
          assert.deepStrictEqual(yield* alive, [])
          if (caps.eagerExpiry) assert.deepStrictEqual(journal.splice(0), ["destroy biff"], "the destroy hook ran")
          const destroyed = yield* destroyedEvents(events, biff)
          assert.deepStrictEqual(destroyed.map((e) => e._tag === "Destroyed" && e.reason), ["lifetime"])
          assert.strictEqual(yield* tagOf(Store.get(Traveller, biff)), "NotFound")
        }))

      test("the reason is the deadline that passed first, even when the record is found after a later one", () =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const biff = yield* Store.create(Traveller, "create", { id: "biff", name: "Biff", currentYear: 2015 })
          yield* drain(events)
          // idle since 0: past its inactivity deadline at 10 s, and past its lifetime at 60 s
          yield* TestClock.adjust("61 seconds")
          const destroyed = yield* destroyedEvents(events, biff)
          assert.deepStrictEqual(destroyed.map((e) => e._tag === "Destroyed" && e.reason), ["inactivity"])
        }))

      test("an update committing after its record's deadline fails NotFound and publishes no Updated", () =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const biff = yield* Store.create(Traveller, "create", { id: "biff", name: "Biff", currentYear: 2015 })
          yield* drain(events)
          // accepted at 0 (deadline 10 s); its before hook runs until 11 s
          const lingering = yield* Effect.forkChild(Store.update(Traveller, biff, "linger"), { startImmediately: true })
          yield* TestClock.adjust("11 seconds")
          const exit = yield* Fiber.await(lingering)
          assert.isTrue(
            Exit.isFailure(exit) && (exit.cause.reasons[0] as any)?.error?._tag === "NotFound",
            `the late update: ${JSON.stringify(exit)}`
          )
          // it names the record it was called on, as every NotFound does
          const error = (exit as Exit.Failure<unknown, any>).cause.reasons[0] as any
          assert.deepStrictEqual(error.error.key, { id: "biff" })
          assert.strictEqual(error.error.message, "Traveller {\"id\":\"biff\"} not found")
          assert.strictEqual(yield* tagOf(Store.get(Traveller, biff)), "NotFound")
          const seen = yield* drain(events)
          assert.deepStrictEqual(seen.filter((e) => e._tag === "Updated"), [])
          assert.deepStrictEqual(seen.map((e) => e._tag === "Destroyed" && e.reason), ["inactivity"])
        }))

      test("a destroy committing after its record's deadline fails NotFound naming the record", () =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const biff = yield* Store.create(Traveller, "create", { id: "biff", name: "Biff", currentYear: 2015 })
          yield* drain(events)
          // accepted at 0 (deadline 10 s); its before hook runs until 11 s
          const lingering = yield* Effect.forkChild(Store.destroy(Traveller, biff, "lingeringDestroy"), {
            startImmediately: true
          })
          yield* TestClock.adjust("11 seconds")
          const error = yield* Effect.flip(Fiber.join(lingering))
          assert.strictEqual(error._tag, "NotFound")
          assert.deepStrictEqual((error as Errors.NotFound).key, { id: "biff" })
          assert.strictEqual(error.message, "Traveller {\"id\":\"biff\"} not found")
          // the record expired: not removed by the action
          const seen = yield* drain(events)
          assert.deepStrictEqual(seen.filter((e) => e._tag === "Destroyed" && e.reason === "action"), [])
        }))

      test("a new record's inactivity counts from the moment its create commits", (_, gate) =>
        Effect.gen(function*() {
          // the create's after hook runs from 0 to 11 s: the clock moves once it sleeps (on a layer that reaches the
          // hook through I/O, such as the cluster's message and row load, that is later than the create's call)
          const creating = yield* Effect.forkChild(
            Store.create(Traveller, "slowCreate", { id: "biff", name: "Biff", currentYear: 2015 }),
            { startImmediately: true }
          )
          yield* Deferred.await(gate.entered)
          yield* TestClock.adjust("11 seconds")
          const biff = yield* Fiber.join(creating)
          assert.strictEqual(biff.id, "biff")
          assert.deepStrictEqual(yield* alive, ["biff"], "alive when its create returns")
          yield* TestClock.adjust(9_999)
          assert.deepStrictEqual(yield* alive, ["biff"])
          yield* TestClock.adjust(1)
          assert.deepStrictEqual(yield* alive, [])
        }))

      test("keepAlive, get and reload extend inactivity", () =>
        Effect.gen(function*() {
          const biff = yield* Store.create(Traveller, "create", { id: "biff", name: "Biff", currentYear: 2015 })
          yield* TestClock.adjust("9 seconds")
          yield* Store.keepAlive(Traveller, biff)
          yield* TestClock.adjust("9 seconds")
          yield* Store.get(Traveller, biff)
          yield* TestClock.adjust("9 seconds")
          yield* Store.reload(Traveller, biff)
          yield* TestClock.adjust(9_999)
          assert.deepStrictEqual(yield* alive, ["biff"])
          yield* TestClock.adjust(1)
          assert.deepStrictEqual(yield* alive, [])
        }))

      test("an update extends inactivity", () =>
        Effect.gen(function*() {
          const biff = yield* Store.create(Traveller, "create", { id: "biff", name: "Biff", currentYear: 2015 })
          yield* TestClock.adjust("9 seconds")
          yield* Store.update(Traveller, biff, "travelInTime", { targetYear: 1955 })
          yield* TestClock.adjust(9_999)
          assert.deepStrictEqual(yield* alive, ["biff"])
          yield* TestClock.adjust(1)
          assert.deepStrictEqual(yield* alive, [])
          assert.strictEqual(yield* tagOf(Store.get(Traveller, biff)), "NotFound")
        }))

      test("past its deadline, before any expiry fiber ran, a record is NotFound everywhere and absent from read", () =>
        Effect.gen(function*() {
          // a Store of its own, built on the hand-driven clock
          const manual = makeManualClock()
          const services = yield* makeServices
          const store = make(allResources).pipe(Layer.provide(services.layer)) as Layer.Layer<Store.Store>
          yield* Effect.gen(function*() {
            const biff = yield* Store.create(Traveller, "create", { id: "biff", name: "Biff", currentYear: 2015 })
            yield* manual.set(9_999)
            assert.deepStrictEqual(yield* alive, ["biff"])
            yield* manual.set(10_000)
            assert.deepStrictEqual(yield* alive, [])
            assert.deepStrictEqual(
              yield* Store.read(Query.make(Traveller).pipe(Query.filter(Filter.eq("id", "biff")))),
              []
            )
            assert.deepStrictEqual(
              [
                yield* tagOf(Store.get(Traveller, biff)),
                yield* tagOf(Store.reload(Traveller, biff)),
                yield* tagOf(Store.keepAlive(Traveller, biff)),
                yield* tagOf(Store.update(Traveller, biff, "update", { name: "Griff" })),
                yield* tagOf(Store.destroy(Traveller, biff))
              ],
              ["NotFound", "NotFound", "NotFound", "NotFound", "NotFound"]
            )
            assert.deepStrictEqual(yield* alive, [], "the probes did not revive it")
            // the key is free: a create under it may wait for the expiry to finish, but must succeed
            const again = yield* Effect.forkChild(
              Store.create(Traveller, "create", { id: "biff", name: "Griff", currentYear: 2015 }),
              { startImmediately: true }
            )
            yield* manual.wake()
            if (caps.eagerExpiry) assert.deepStrictEqual(services.journal.entries, ["destroy biff"])
            const exit = again.pollUnsafe()
            assert.isTrue(
              exit !== undefined && Exit.isSuccess(exit),
              `create under an expired key: ${JSON.stringify(exit)}`
            )
            assert.strictEqual((yield* Store.get(Traveller, biff)).name, "Griff")
          }).pipe(Effect.provide(store), Effect.provideService(Clock.Clock, manual.clock))
        }))
    })

    describe("restarts", () => {
      test("a crashing action fails its caller with RecordCrashed", () =>
        Effect.gen(function*() {
          const marty = yield* Store.create(Traveller, "create", { id: "marty", name: "Marty", currentYear: 1985 })
          const error = yield* Effect.flip(Store.update(Traveller, marty, "crash"))
          assert.strictEqual(error._tag, "RecordCrashed")
          if (error._tag === "RecordCrashed") {
            assert.strictEqual(error.resource, "Traveller")
            assert.deepStrictEqual(error.key, { id: "marty" })
            assert.include(error.message, "boom in after hook")
          }
          const p = yield* Store.create(Phoenix, "create", { id: "p", n: 0 })
          assert.strictEqual(yield* tagOf(Store.update(Phoenix, p, "crash")), "RecordCrashed")
        }))

      test("an action that interrupts itself crashes its record once: RecordCrashed, then the restart policy", (journal) =>
        Effect.gen(function*() {
          const k = yield* Store.create(Keeper, "create", { id: "k", n: 0 })
          yield* Store.update(Keeper, k, "increment")
          const m = yield* Store.create(Mortal, "create", { id: "m", n: 0 })
          journal.splice(0)
          assert.strictEqual(yield* tagOf(Store.update(Keeper, k, "halt")), "RecordCrashed")
          assert.strictEqual(yield* tagOf(Store.update(Mortal, m, "halt")), "RecordCrashed")
          assert.deepStrictEqual(journal.splice(0), ["halt k", "halt m"], "each ran once")
          assert.deepStrictEqual(yield* Store.get(Keeper, k), { id: "k", n: 1 })
          // a supervised layer removes a record whose policy is "never" (the memory layer keeps it: no supervisor)
          assert.strictEqual(yield* tagOf(Store.get(Mortal, m)), caps.supervision ? "NotFound" : "Success")
        }))

      test("after RecordCrashed, the crashed state is never observable", () =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const marty = yield* Store.create(Traveller, "create", { id: "marty", name: "Marty", currentYear: 1985 })
          const k = yield* Store.create(Keeper, "create", { id: "k", n: 0 })
          yield* Store.update(Keeper, k, "increment")
          yield* drain(events)
          assert.strictEqual(yield* tagOf(Store.update(Traveller, marty, "crash")), "RecordCrashed")
          assert.strictEqual(yield* tagOf(Store.update(Keeper, k, "crash")), "RecordCrashed")
          assert.deepStrictEqual(yield* Store.get(Traveller, marty), marty)
          assert.deepStrictEqual(yield* Store.read(Query.make(Traveller)), [marty])
          assert.deepStrictEqual(yield* Store.get(Keeper, k), { id: "k", n: 1 })
          assert.deepStrictEqual(yield* Store.read(Query.make(Keeper)), [{ id: "k", n: 1 }])
          for (const e of yield* drain(events)) {
            assert.notInclude(["Created", "Updated", "Destroyed"], e._tag, "a crash publishes no change")
          }
          // the record serves calls again, from its committed state
          assert.deepStrictEqual(yield* Store.update(Keeper, k, "increment"), { id: "k", n: 2 })
        }))

      if (caps.supervision) {
        test("restart \"initial\" re-runs the create action: updates since creation are lost", (journal) =>
          Effect.gen(function*() {
            const events = yield* Store.subscribe
            const p = yield* Store.create(Phoenix, "create", { id: "p", n: 5 })
            yield* Store.update(Phoenix, p, "increment")
            yield* Store.update(Phoenix, p, "increment")
            yield* drain(events)
            assert.strictEqual(yield* tagOf(Store.update(Phoenix, p, "crash")), "RecordCrashed")
            assert.deepStrictEqual(yield* Store.get(Phoenix, p), { id: "p", n: 5 })
            assert.deepStrictEqual(journal, ["create p", "create p"])
            const seen = yield* drain(events)
            assert.deepStrictEqual(tags(seen), ["Restarted"])
            assert.deepStrictEqual(seen[0]!.key, { id: "p" })
            assert.deepStrictEqual(seen[0]!.record, { id: "p", n: 5 })
          }))

        test("restart \"lastState\" restores the last committed state", () =>
          Effect.gen(function*() {
            const events = yield* Store.subscribe
            const k = yield* Store.create(Keeper, "create", { id: "k", n: 5 })
            yield* Store.update(Keeper, k, "increment")
            yield* drain(events)
            assert.strictEqual(yield* tagOf(Store.update(Keeper, k, "crash")), "RecordCrashed")
            assert.deepStrictEqual(yield* Store.get(Keeper, k), { id: "k", n: 6 })
            assert.deepStrictEqual(tags(yield* drain(events)), ["Restarted"])
          }))

        test("restart \"never\" removes the record", () =>
          Effect.gen(function*() {
            const events = yield* Store.subscribe
            const m = yield* Store.create(Mortal, "create", { id: "m", n: 5 })
            yield* drain(events)
            assert.strictEqual(yield* tagOf(Store.update(Mortal, m, "crash")), "RecordCrashed")
            assert.strictEqual(yield* tagOf(Store.get(Mortal, m)), "NotFound")
            assert.deepStrictEqual(yield* Store.read(Query.make(Mortal)), [])
            const seen = yield* drain(events)
            assert.deepStrictEqual(tags(seen), ["Failed"])
            assert.deepStrictEqual(seen[0]!.key, { id: "m" })
            // the key is free
            yield* Store.create(Mortal, "create", { id: "m", n: 0 })
          }))

        test("restart intensity: a 4th crash within 5 seconds removes the record and publishes Failed", () =>
          Effect.gen(function*() {
            const events = yield* Store.subscribe
            const k = yield* Store.create(Keeper, "create", { id: "k", n: 0 })
            yield* drain(events)
            for (let i = 0; i < 3; i++) {
              assert.strictEqual(yield* tagOf(Store.update(Keeper, k, "crash")), "RecordCrashed")
              yield* TestClock.adjust("1 second")
            }
            assert.deepStrictEqual(yield* Store.get(Keeper, k), { id: "k", n: 0 })
            assert.strictEqual(yield* tagOf(Store.update(Keeper, k, "crash")), "RecordCrashed")
            assert.strictEqual(yield* tagOf(Store.get(Keeper, k)), "NotFound")
            assert.deepStrictEqual(yield* Store.read(Query.make(Keeper)), [])
            assert.deepStrictEqual(tags(yield* drain(events)), ["Restarted", "Restarted", "Restarted", "Failed"])
          }))

        test("restart intensity: crashes spread wider than the window never exhaust it", () =>
          Effect.gen(function*() {
            const k = yield* Store.create(Keeper, "create", { id: "k", n: 0 })
            for (let i = 0; i < 8; i++) {
              assert.strictEqual(yield* tagOf(Store.update(Keeper, k, "crash")), "RecordCrashed")
              yield* TestClock.adjust("2 seconds")
              yield* Store.keepAlive(Keeper, k)
            }
            assert.deepStrictEqual(yield* Store.get(Keeper, k), { id: "k", n: 0 })
          }))
      } else {
        test("without supervision, a crash keeps the last committed state whatever the restart policy", (journal) =>
          Effect.gen(function*() {
            const events = yield* Store.subscribe
            for (const resource of [Phoenix, Keeper, Mortal]) {
              const r = yield* Store.create(resource, "create", { id: "r", n: 5 })
              yield* Store.update(resource, r, "increment")
              for (let i = 0; i < 5; i++) {
                assert.strictEqual(yield* tagOf(Store.update(resource, r, "crash")), "RecordCrashed")
              }
              assert.deepStrictEqual(yield* Store.get(resource, r), { id: "r", n: 6 }, resource.name)
            }
            assert.deepStrictEqual(journal, ["create r", "create r", "create r"])
            assert.deepStrictEqual(tags(yield* drain(events)), [
              "Created",
              "Updated",
              "Created",
              "Updated",
              "Created",
              "Updated"
            ])
          }))
      }
    })

    describe("events", () => {
      test("Created, Updated and Destroyed, in per-record order, with key and record", () =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const marty = yield* Store.create(Traveller, "create", { id: "marty", name: "Marty", currentYear: 1985 })
          const doc = yield* Store.create(Traveller, "create", { id: "doc", name: "Doc", currentYear: 1985 })
          const m1 = yield* Store.update(Traveller, marty, "travelInTime", { targetYear: 1955 })
          const d1 = yield* Store.update(Traveller, doc, "update", { nickname: "Emmett" })
          const m2 = yield* Store.update(Traveller, marty, "update", { id: "calvin" })
          yield* Store.destroy(Traveller, doc)
          const seen = yield* drain(events)
          const of = (id: string, ...more: ReadonlyArray<string>) =>
            seen.filter((e) => [id, ...more].includes((e.key as { id: string }).id))
          assert.deepStrictEqual(of("marty", "calvin"), [
            { _tag: "Created", resource: "Traveller", key: { id: "marty" }, record: marty },
            { _tag: "Updated", resource: "Traveller", key: { id: "marty" }, record: m1 },
            { _tag: "Updated", resource: "Traveller", key: { id: "calvin" }, record: m2 }
          ])
          assert.deepStrictEqual(of("doc"), [
            { _tag: "Created", resource: "Traveller", key: { id: "doc" }, record: doc },
            { _tag: "Updated", resource: "Traveller", key: { id: "doc" }, record: d1 },
            { _tag: "Destroyed", resource: "Traveller", key: { id: "doc" }, record: d1, reason: "action" }
          ])
          assert.strictEqual(seen.length, 6)
        }))

      test("concurrent updates of one record publish one Updated per commit, in commit order", () =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const k = yield* Store.create(Keeper, "create", { id: "k", n: 0 })
          yield* Effect.forEach(Array.from({ length: 20 }), () => Store.update(Keeper, k, "increment"), {
            concurrency: "unbounded"
          })
          const seen = yield* drain(events)
          assert.deepStrictEqual(
            seen.map((e) => (e.record as { n: number }).n),
            Array.from({ length: 21 }, (_, i) => i)
          )
          assert.deepStrictEqual(yield* Store.get(Keeper, k), { id: "k", n: 20 })
        }))
    })

    describe("re-entrancy", () => {
      test("a hook calling its own record gets ReentrantCall", (journal) =>
        Effect.gen(function*() {
          const marty = yield* Store.create(Traveller, "create", { id: "marty", name: "Marty", currentYear: 1985 })
          const after = yield* Store.update(Traveller, marty, "selfCall").pipe(
            Effect.timeoutOrElse({ duration: "2 seconds", orElse: () => Effect.die("hung") })
          )
          assert.deepStrictEqual(journal, ["inner ReentrantCall"])
          assert.deepStrictEqual(after, marty)
          assert.deepStrictEqual(yield* Store.get(Traveller, marty), marty)
        }), "live")

      test("two records whose hooks call each other: one call is refused, none hangs", () =>
        Effect.gen(function*() {
          yield* Store.create(Peer, "create", { id: "a", other: "b", pokes: 0 })
          yield* Store.create(Peer, "create", { id: "b", other: "a", pokes: 0 })
          const [a, b] = yield* Effect.all([
            Effect.result(Store.update(Peer, { id: "a" }, "poke")),
            Effect.result(Store.update(Peer, { id: "b" }, "poke"))
          ], { concurrency: "unbounded" }).pipe(
            Effect.timeoutOrElse({ duration: "2 seconds", orElse: () => Effect.die("deadlocked") })
          )
          const failures = [a, b].flatMap((r) => (r._tag === "Failure" ? [r.failure] : []))
          assert.strictEqual(failures.length, 1)
          // the refusal reaches the hook as ReentrantCall; undeclared by the action, it is an ActionError
          assert.strictEqual(failures[0]!._tag, "ActionError")
          assert.match(failures[0]!.message, /ReentrantCall|deadlock|waiting on/)
          const pokes = [(yield* Store.get(Peer, { id: "a" })).pokes, (yield* Store.get(Peer, { id: "b" })).pokes]
          assert.deepStrictEqual(pokes.sort(), [0, 1])
          yield* Store.update(Peer, { id: "a" }, "noop")
          yield* Store.update(Peer, { id: "b" }, "noop")
        }), "live")
    })

    describe("re-entrancy through creates and forks", () => {
      test("a cycle through a create made from a hook: one call is refused, none hangs", () =>
        Effect.gen(function*() {
          // A's hook creates a child whose create hook calls B, while B's hook calls A
          yield* Store.create(Link, "create", { id: "a", pokes: 0 })
          yield* Store.create(Link, "create", { id: "b", pokes: 0 })
          const results = yield* Effect.all([
            Effect.result(Store.update(Link, { id: "a" }, "viaChild", { target: "b" })),
            Effect.result(Store.update(Link, { id: "b" }, "direct", { target: "a" }))
          ], { concurrency: "unbounded" }).pipe(
            Effect.timeoutOrElse({ duration: "2 seconds", orElse: () => Effect.die("deadlocked") })
          )
          assert.strictEqual(results.filter((r) => r._tag === "Failure").length, 1)
          // both still serve calls
          yield* Store.update(Link, { id: "a" }, "noop")
          yield* Store.update(Link, { id: "b" }, "noop")
        }), "live")

      test(
        "a call forked from a hook without waiting does not make its record look busy",
        (journal, gate) =>
          Effect.gen(function*() {
            // A's after hook forks B.callBack and returns; B's hook then calls A, idle by then
            yield* Store.create(Link, "create", { id: "a", pokes: 0 })
            yield* Store.create(Link, "create", { id: "b", pokes: 0 })
            yield* Store.update(Link, { id: "a" }, "fireAndForget", { target: "b" })
            yield* Deferred.succeed(gate.release, undefined)
            for (let i = 0; i < 500 && journal.length === 0; i++) yield* Effect.sleep("1 millis")
            assert.deepStrictEqual(journal, ["callBack Success"])
            assert.strictEqual((yield* Store.get(Link, { id: "a" })).pokes, 1)
          }),
        "live"
      )
    })

    describe("results", () => {
      test("an action with success answers its result instead of the record: create, update and destroy", () =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const opened: { readonly capacity: number } = yield* Store.create(Bucket, "open", { id: "b", tokens: 2 })
          assert.deepStrictEqual(opened, { capacity: 2 })
          const taken: ReadonlyArray<{ readonly allowed: boolean; readonly remaining: number }> = []
          for (let i = 0; i < 3; i++) (taken as Array<any>).push(yield* Store.update(Bucket, { id: "b" }, "take"))
          assert.deepStrictEqual(taken, [
            { allowed: true, remaining: 1 },
            { allowed: true, remaining: 0 },
            { allowed: false, remaining: 0 }
          ])
          assert.deepStrictEqual(yield* Store.get(Bucket, { id: "b" }), { id: "b", tokens: 0 })
          // an action without success still answers with the record
          assert.deepStrictEqual(yield* Store.update(Bucket, { id: "b" }, "update", { tokens: 5 }), {
            id: "b",
            tokens: 5
          })
          const left: number = yield* Store.destroy(Bucket, { id: "b" }, "drain")
          assert.strictEqual(left, 5)
          assert.strictEqual(yield* tagOf(Store.get(Bucket, { id: "b" })), "NotFound")
          // the default destroy answers nothing
          yield* Store.create(Bucket, "create", { id: "c", tokens: 1 })
          assert.strictEqual(yield* Store.destroy(Bucket, { id: "c" }), undefined)
          assert.deepStrictEqual(tags(yield* drain(events)), [
            "Created",
            "Updated",
            "Updated",
            "Updated",
            "Destroyed",
            "Created",
            "Destroyed"
          ])
        }))

      test("a before hook sets the result, seeing the change made so far", () =>
        Effect.gen(function*() {
          yield* Store.create(Bucket, "create", { id: "b", tokens: 1 })
          assert.strictEqual(yield* Store.update(Bucket, { id: "b" }, "late"), "before saw 100")
          assert.deepStrictEqual(yield* Store.get(Bucket, { id: "b" }), { id: "b", tokens: 100 })
        }))

      test("a result its success refuses, or none, is a ValidationError naming it, and commits nothing", () =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          yield* Store.create(Bucket, "create", { id: "b", tokens: 1 })
          yield* drain(events)
          for (const action of ["lie", "mute"] as const) {
            const error = yield* Effect.flip(Store.update(Bucket, { id: "b" }, action))
            assert.strictEqual(error._tag, "ValidationError")
            assert.include(error.message, `Bucket: invalid result of action ${action}`)
            assert.include(error.message, "Expected number")
            if (action === "mute") assert.include(error.message, "it set none (Changeset.result)")
          }
          assert.deepStrictEqual(yield* Store.get(Bucket, { id: "b" }), { id: "b", tokens: 1 })
          assert.deepStrictEqual(yield* drain(events), [])
        }))

      test("an update that changes no field answers, publishes nothing and counts as activity", () =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          yield* Store.create(Bucket, "create", { id: "b", tokens: 3 })
          yield* drain(events)
          yield* TestClock.adjust("8 seconds")
          assert.strictEqual(yield* Store.update(Bucket, { id: "b" }, "peek"), 3)
          // the default update setting a field to the value it holds changes nothing either
          assert.deepStrictEqual(yield* Store.update(Bucket, { id: "b" }, "update", { tokens: 3 }), {
            id: "b",
            tokens: 3
          })
          assert.deepStrictEqual(yield* drain(events), [])
          // 16 s after its create, 8 s after the peek: alive
          yield* TestClock.adjust("8 seconds")
          assert.deepStrictEqual(yield* Store.get(Bucket, { id: "b" }), { id: "b", tokens: 3 })
          // untouched for 10 s since the get: expired
          yield* TestClock.adjust("10 seconds")
          assert.strictEqual(yield* tagOf(Store.get(Bucket, { id: "b" })), "NotFound")
        }))

      test("an update that changes no field runs its hooks and refuses as any action does", () =>
        Effect.gen(function*() {
          yield* Store.create(Bucket, "create", { id: "b", tokens: 0 })
          assert.deepStrictEqual(yield* Store.update(Bucket, { id: "b" }, "take"), { allowed: false, remaining: 0 })
          assert.strictEqual(yield* tagOf(Store.update(Bucket, { id: "nobody" }, "peek")), "NotFound")
          assert.strictEqual(
            yield* tagOf(Store.update(Bucket, { id: "b" }, "peek", { tokens: 1 } as never)),
            "ValidationError"
          )
          assert.deepStrictEqual(yield* Store.get(Bucket, { id: "b" }), { id: "b", tokens: 0 })
        }))
    })

    describe("schedules", () => {
      const alarm = { id: "a" } as const
      // a read, not activity: the runs alone must not keep an alarm alive
      const ringsOf = (resource: typeof Alarm | typeof KeptAlarm) =>
        Effect.map(Store.read(Query.make(resource)), (all) => all.find((a) => a.id === "a")?.rings ?? -1)
      const rings = ringsOf(Alarm)
      /** Lets what a clock step woke finish (a storing layer commits through real I/O): until `done`, or 2 s. */
      const settled = <E, R>(done: Effect.Effect<boolean, E, R>) =>
        Effect.gen(function*() {
          for (let i = 0; i < 400; i++) {
            if (yield* done) return
            yield* Effect.yieldNow
            yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))
          }
        })
      const ringsBecome = (n: number) => settled(Effect.map(Effect.orDie(rings), (r) => r >= n))
      /** Lets `seconds` pass, the alarm kept from expiring (idle for a minute) by a call every 30 seconds. */
      const passing = (seconds: number, resource: typeof Alarm | typeof KeptAlarm = Alarm) =>
        Effect.gen(function*() {
          for (let left = seconds; left > 0; left -= 30) {
            yield* TestClock.adjust(`${Math.min(30, left)} seconds`)
            yield* Effect.ignore(Store.keepAlive(resource, alarm))
          }
        })

      if (!caps.schedules) {
        test("a layer without schedules refuses a change that schedules, and lists none", () =>
          Effect.gen(function*() {
            const error = yield* Effect.flip(Store.create(Alarm, "set", { id: "a" }))
            assert.strictEqual(error._tag, "ValidationError")
            assert.include(error.message, "does not keep schedules")
            assert.strictEqual(yield* tagOf(Store.get(Alarm, alarm)), "NotFound")
            yield* Store.create(Alarm, "create", { id: "a", rings: 0, broken: false })
            assert.deepStrictEqual(yield* Store.schedules(Alarm, alarm), [])
          }))
        return
      }

      test("a schedule runs its action once when due, in a commit that consumes it", () =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          yield* Store.create(Alarm, "set", { id: "a" })
          const [pending, ...none] = yield* Store.schedules(Alarm, alarm)
          assert.deepStrictEqual(none, [])
          assert.deepStrictEqual(pending, {
            name: "ring",
            action: "ring",
            arguments: {},
            at: new Date(3_600_000),
            running: false
          })
          const gauge = Effect.map(
            Metric.value(Metric.withAttributes(Metrics.schedulesPending, { resource: "Alarm" })),
            (state) => state.value
          )
          assert.strictEqual(yield* gauge, 1, "pending in this process")
          yield* passing(59 * 60 + 59)
          assert.strictEqual(yield* rings, 0)
          yield* TestClock.adjust("1 second")
          yield* ringsBecome(1)
          assert.strictEqual(yield* rings, 1)
          assert.deepStrictEqual(yield* Store.schedules(Alarm, alarm), [])
          assert.strictEqual(yield* gauge, 0)
          yield* TestClock.adjust("30 seconds")
          assert.strictEqual(yield* rings, 1, "it ran once")
          assert.deepStrictEqual(tags(yield* drain(events)), ["Created", "Updated"])
        }))

      test("a name scheduled again replaces it, unschedule removes it, a refused action schedules nothing", () =>
        Effect.gen(function*() {
          yield* Store.create(Alarm, "set", { id: "a", after: "5 minutes" })
          yield* Store.update(Alarm, alarm, "snooze")
          const [snoozed] = yield* Store.schedules(Alarm, alarm)
          assert.deepStrictEqual([snoozed!.at, snoozed!.arguments], [new Date(600_000), { note: "snoozed" }])
          assert.strictEqual(yield* tagOf(Store.update(Alarm, alarm, "refuse")), "ActionError")
          assert.strictEqual((yield* Store.schedules(Alarm, alarm)).length, 1)
          yield* passing(10 * 60)
          yield* ringsBecome(1)
          assert.deepStrictEqual(yield* Store.get(Alarm, alarm), { id: "a", rings: 1, broken: false, note: "snoozed" })
          // set again, then cancelled: nothing runs
          yield* Store.update(Alarm, alarm, "snooze")
          yield* Store.update(Alarm, alarm, "cancel")
          assert.deepStrictEqual(yield* Store.schedules(Alarm, alarm), [])
          yield* TestClock.adjust("30 seconds")
          yield* Store.keepAlive(Alarm, alarm)
          yield* TestClock.adjust("30 seconds")
          assert.strictEqual(yield* rings, 1)
        }))

      test("destroying a record cancels its schedules; a scheduled destroy removes it", () =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          yield* Store.create(Alarm, "set", { id: "a", after: "10 seconds" })
          yield* Store.destroy(Alarm, alarm)
          yield* TestClock.adjust("20 seconds")
          // the key is free: a new record under it has nothing of the old one's schedules
          yield* Store.create(Alarm, "create", { id: "a", rings: 0, broken: false })
          assert.deepStrictEqual(yield* Store.schedules(Alarm, alarm), [])
          yield* Store.update(Alarm, alarm, "leave")
          yield* TestClock.adjust("1 minute")
          yield* settled(Effect.map(tagOf(Store.get(Alarm, alarm)), (t) => t === "NotFound"))
          assert.strictEqual(yield* tagOf(Store.get(Alarm, alarm)), "NotFound")
          assert.deepStrictEqual(tags(yield* drain(events)), ["Created", "Destroyed", "Created", "Destroyed"])
        }))

      test("cron recurs: once per matching time", () =>
        Effect.gen(function*() {
          // at minute 0 of every hour; kept alive by a call every 30 s
          yield* Store.create(KeptAlarm, "set", { id: "a", cron: "0 * * * *" })
          const [first] = yield* Store.schedules(KeptAlarm, alarm)
          assert.deepStrictEqual([first!.at, first!.cron], [new Date(3_600_000), "0 * * * *"])
          for (let hour = 1; hour <= 3; hour++) {
            yield* passing(3600, KeptAlarm)
            yield* settled(Effect.map(Effect.orDie(Store.get(KeptAlarm, alarm)), (a) => a.rings >= hour))
            assert.strictEqual((yield* Store.get(KeptAlarm, alarm)).rings, hour)
          }
          const [next] = yield* Store.schedules(KeptAlarm, alarm)
          assert.deepStrictEqual(next!.at, new Date(4 * 3_600_000))
        }))

      test("a failing run is retried by scheduleRetry, then given up: removed, with ScheduleFailed", () =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          yield* Store.create(Alarm, "set", { id: "a", after: "10 seconds" })
          yield* Store.update(Alarm, alarm, "update", { broken: true })
          yield* drain(events)
          // due at 10 s, retried at 11 s and 12 s, then given up
          for (let t = 0; t < 3; t++) {
            yield* TestClock.adjust("1 second").pipe(Effect.andThen(TestClock.adjust("9 seconds")))
          }
          yield* settled(Effect.map(Store.schedules(Alarm, alarm), (s) => s.length === 0))
          assert.deepStrictEqual(yield* Store.schedules(Alarm, alarm), [])
          const seen = yield* drain(events)
          const failed = seen.filter((e) => e._tag === "ScheduleFailed")
          assert.strictEqual(failed.length, 1)
          assert.deepInclude(failed[0], { resource: "Alarm", key: alarm, schedule: "ring", action: "ring" })
          assert.include((failed[0] as { readonly failure: string }).failure, "the bell is broken")
          assert.strictEqual(yield* rings, 0)
        }))

      test("a run that fails, then succeeds on a retry, runs once", () =>
        Effect.gen(function*() {
          yield* Store.create(Alarm, "set", { id: "a", after: "10 seconds" })
          yield* Store.update(Alarm, alarm, "update", { broken: true })
          yield* TestClock.adjust("10 seconds")
          yield* settled(Effect.map(Store.schedules(Alarm, alarm), (s) => s[0]?.at.getTime() === 11_000))
          const [retried] = yield* Store.schedules(Alarm, alarm)
          assert.deepStrictEqual(retried!.at, new Date(11_000), "retried a second later")
          yield* Store.update(Alarm, alarm, "update", { broken: false })
          yield* TestClock.adjust("1 second")
          yield* ringsBecome(1)
          assert.strictEqual(yield* rings, 1)
          assert.deepStrictEqual(yield* Store.schedules(Alarm, alarm), [])
        }))

      test("a scheduled run is not activity, unless the resource says so", () =>
        Effect.gen(function*() {
          yield* Store.create(Alarm, "set", { id: "a", after: "50 seconds" })
          yield* Store.create(KeptAlarm, "set", { id: "a", after: "50 seconds" })
          yield* TestClock.adjust("50 seconds")
          yield* ringsBecome(1)
          yield* settled(Effect.map(ringsOf(KeptAlarm), (r) => r === 1))
          yield* TestClock.adjust("10 seconds")
          // 60 s since its create: the plain alarm expired, the kept one ran at 50 s
          assert.strictEqual(yield* tagOf(Store.get(Alarm, alarm)), "NotFound")
          assert.strictEqual((yield* Store.get(KeptAlarm, alarm)).rings, 1)
        }))

      test("what is wrong with a schedule is a ValidationError at the call that made it, and changes nothing", () =>
        Effect.gen(function*() {
          yield* Store.create(Alarm, "create", { id: "a", rings: 0, broken: false })
          const plans: ReadonlyArray<readonly [Record<string, unknown>, string]> = [
            [{ action: "nope", after: "1 second" }, `no action "nope" to schedule`],
            [{ action: "set", after: "1 second" }, "only update and destroy actions can be scheduled"],
            [{ action: "ring", after: "1 second", input: { note: 5 } }, "invalid input of action ring"],
            [{ action: "ring", after: "forever and a day" }, "after: not a finite duration"],
            [{ action: "ring", at: Number.NaN }, "at: not a valid date"],
            [{ action: "ring", cron: "61 * * * *" }, `cron "61 * * * *"`],
            [{ action: "ring" }, "needs exactly one of after, at and cron"],
            [{ action: "ring", after: "1 second", cron: "* * * * *" }, "needs exactly one of after, at and cron"]
          ]
          for (const [plan, says] of plans) {
            const error = yield* Effect.flip(Store.update(Alarm, alarm, "plan", plan as never))
            assert.strictEqual(error._tag, "ValidationError", JSON.stringify(plan))
            assert.include(error.message, says)
          }
          assert.deepStrictEqual(yield* Store.schedules(Alarm, alarm), [])
          assert.strictEqual(yield* tagOf(Store.schedules(Alarm, { id: "nobody" })), "NotFound")
        }))

      test("a due schedule wakes a hibernating record", () =>
        Effect.gen(function*() {
          yield* Store.create(KeptAlarm, "create", { id: "k", rings: 0, broken: false })
          yield* Store.create(Alarm, "set", { id: "a", after: "30 seconds" })
          // idle for 30 s: on a layer that hibernates, asleep (it hibernates after 1 s)
          yield* TestClock.adjust("30 seconds")
          yield* ringsBecome(1)
          assert.strictEqual(yield* rings, 1)
        }))
    })

    describe("closing", () => {
      test("once the layer's scope is closed, every call fails with StoreClosed", () =>
        Effect.gen(function*() {
          const services = yield* makeServices
          const scope = yield* Scope.make()
          const context = yield* Layer.buildWithScope(
            make(allResources).pipe(Layer.provide(services.layer)) as Layer.Layer<Store.Store>,
            scope
          )
          const marty = yield* Store.create(Traveller, "create", { id: "marty", name: "Marty", currentYear: 1985 })
            .pipe(
              Effect.provideContext(context)
            )
          yield* Scope.close(scope, Exit.void)
          const outcomes = yield* Effect.all([
            tagOf(Store.create(Traveller, "create", { name: "Doc", currentYear: 1985 })),
            tagOf(Store.update(Traveller, marty, "update", { name: "Calvin" })),
            tagOf(Store.destroy(Traveller, marty)),
            tagOf(Store.get(Traveller, marty)),
            tagOf(Store.reload(Traveller, marty)),
            tagOf(Store.keepAlive(Traveller, marty)),
            tagOf(Store.read(Query.make(Traveller)))
          ]).pipe(
            Effect.provideContext(context),
            Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.die("hung after close") })
          )
          assert.deepStrictEqual(outcomes, Array.from({ length: 7 }, () => "StoreClosed"))
        }), "live")
    })

    it("every known failure and every skipped test names a test of the suite", () => {
      assert.deepStrictEqual([...known, ...skipped].filter((t) => !used.has(t)), [])
    })
  })
}
