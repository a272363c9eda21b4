/**
 * Concurrency: many fibers on a few records.
 *
 * - No update is lost: concurrent writers on a few records, every committed
 *   action counted, the final state and the `Updated` events add up.
 * - No read sees a half-applied action: `Pair` actions move an amount between
 *   two fields across a change, a `before` hook and `after` hooks that yield,
 *   and readers (get, scan, read by key) check `a + b === 0`, versions that
 *   never go back, and never a state that was refused or crashed.
 * - A record's hooks never run concurrently with each other, while hooks of
 *   different records do overlap (so the gauge could see it).
 * - Concurrent creates of one key: exactly one wins.
 * - Hooks that call other records: a cycle between two records' hooks run by
 *   concurrent callers must not hang its callers forever.
 * - A call that found a live record and is preempted before its request
 *   reaches the mailbox, while the record is destroyed, must not hang: the
 *   preemption is forced deterministically by a scheduler that parks the
 *   caller right after its lookup.
 * - Concurrent key changes onto one key: exactly one wins.
 *
 * Schedules are random (fast-check, fixed seed): which record, which action,
 * how many yields in each hook.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Context, Deferred, Effect, Exit, Fiber, Layer, PubSub, Scheduler, Schema } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import { Action, Changeset, type Errors, Filter, Query, Resource, Store } from "../src/index.js"
import { numRuns, seed } from "./fixtures/Model.js"

/** What the hooks of `Pair` report: hooks running now, per record and overall, and the maxima seen. */
class Gauge extends Context.Service<Gauge, {
  readonly perRecord: Map<string, number>
  maxPerRecord: number
  overall: number
  maxOverall: number
}>()("test/Concurrency/Gauge") {}

const makeGauge = () => Gauge.of({ perRecord: new Map(), maxPerRecord: 0, overall: 0, maxOverall: 0 })

const enter = (id: string) =>
  Gauge.useSync((g) => {
    const n = (g.perRecord.get(id) ?? 0) + 1
    g.perRecord.set(id, n)
    g.maxPerRecord = Math.max(g.maxPerRecord, n)
    g.overall++
    g.maxOverall = Math.max(g.maxOverall, g.overall)
  })

const leave = (id: string) =>
  Gauge.useSync((g) => {
    g.perRecord.set(id, g.perRecord.get(id)! - 1)
    g.overall--
  })

const yields = (n: number) => Effect.repeat(Effect.yieldNow, { times: Math.max(0, n - 1) })

const pairFields = {
  id: Schema.String,
  a: Schema.Int,
  b: Schema.Int,
  version: Schema.Int,
  label: Schema.String
}
type Pair = Schema.Struct.Type<typeof pairFields>

/** `move` on another pair, through the Store (typed apart: `Pair` cannot name itself in its own definition). */
const moveOn = (to: string, n: number, y: number): Effect.Effect<unknown, Errors.StoreError, Store.Store> =>
  (Store.update as any)(Pair, { id: to }, "move", { n, y })

/** An action that changes a pair like `move` (and sets `label`), then ends its last hook with `end`. */
const unmade = (label: string, end: Effect.Effect<never, Error>) =>
  Action.update({
    arguments: { n: Schema.Int, y: Schema.Int },
    change: (cs: Changeset.Changeset<Pair, { readonly n: number; readonly y: number }>) =>
      Effect.gen(function*() {
        const { n, y } = cs.arguments
        yield* enter(cs.data.id)
        yield* yields(y)
        return cs.pipe(
          Changeset.set("a", Changeset.get(cs, "a") + n),
          Changeset.set("b", Changeset.get(cs, "b") - n),
          Changeset.set("label", label),
          Changeset.after((r: Pair) => Effect.andThen(yields(y), Effect.andThen(leave(r.id), end)))
        )
      })
  })

/**
 * Two amounts that must add up to zero. Every action enters the gauge in its
 * change and leaves it in its last hook, yielding `y` times at every stage:
 *
 * - `move { n, y }`: `a += n` in the change, `b -= n` and `version += 1` in a
 *   `before` hook, then two `after` hooks that yield;
 * - `doomed { n, y }`: the same with label `"doomed"`, refused by its after hook;
 * - `dying { n, y }`: the same with label `"dying"`, dies in its after hook;
 * - `transfer { to, n, y }`: `move` here, then its after hook moves `n` on record `to` through the Store.
 */
const Pair = Resource.make("Pair", {
  fields: pairFields,
  primaryKey: ["id"],
  restart: "lastState",
  restartIntensity: { maxRestarts: 1_000_000, within: "1 second" },
  actions: {
    move: Action.update({
      arguments: { n: Schema.Int, y: Schema.Int },
      change: (cs) =>
        Effect.gen(function*() {
          const { n, y } = cs.arguments
          yield* enter(cs.data.id)
          yield* yields(y)
          return cs.pipe(
            Changeset.set("a", Changeset.get(cs, "a") + n),
            Changeset.before((cs) =>
              Effect.as(
                yields(y),
                cs.pipe(
                  Changeset.set("b", Changeset.get(cs, "b") - n),
                  Changeset.set("version", Changeset.get(cs, "version") + 1)
                )
              )
            ),
            Changeset.after((r: Pair) => Effect.as(yields(y), r)),
            Changeset.after((r: Pair) => Effect.as(Effect.andThen(yields(y), leave(r.id)), r))
          )
        })
    }),
    doomed: unmade("doomed", Effect.fail(new Error("refused after the fact"))),
    dying: unmade("dying", Effect.die(new Error("died after the fact"))),
    transfer: Action.update({
      arguments: { to: Schema.String, n: Schema.Int, y: Schema.Int },
      change: (cs) =>
        Effect.gen(function*() {
          const { n, to, y } = cs.arguments
          yield* yields(y)
          return cs.pipe(
            Changeset.set("a", Changeset.get(cs, "a") - n),
            Changeset.set("b", Changeset.get(cs, "b") + n),
            Changeset.set("version", Changeset.get(cs, "version") + 1),
            Changeset.after((r: Pair) => Effect.as(moveOn(to, n, y), r))
          )
        })
    })
  }
})

const withPairs = <A, E, R>(body: (gauge: Gauge["Service"]) => Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const gauge = makeGauge()
    return yield* body(gauge).pipe(
      Effect.provide(Store.layer([Pair]).pipe(Layer.provide(Layer.succeed(Gauge, gauge))) as Layer.Layer<Store.Store>)
    )
  })

/** Checks one observed state of a pair: the invariant, and nothing refused or crashed. */
const checkPair = (p: Pair, where: string) => {
  assert.strictEqual(p.a + p.b, 0, `${where}: a half-applied action: ${JSON.stringify(p)}`)
  assert.notInclude(
    ["doomed", "dying"],
    p.label,
    `${where}: a refused or crashed state is visible: ${JSON.stringify(p)}`
  )
}

/**
 * A reader: until `stop`, reads every pair by get, by full scan and by a key
 * filter; checks each state and that versions never go back; returns the
 * number of reads and the number of distinct versions it saw.
 */
const reader = (ids: ReadonlyArray<string>, stop: Deferred.Deferred<void>) =>
  Effect.gen(function*() {
    const last = new Map<string, number>()
    const seen = new Set<string>()
    let reads = 0
    const observe = (p: Pair, where: string) => {
      checkPair(p, where)
      const before = last.get(p.id) ?? -1
      assert.isAtLeast(p.version, before, `${where}: version went back from ${before} to ${p.version}`)
      last.set(p.id, p.version)
      seen.add(`${p.id}@${p.version}`)
      reads++
    }
    while (!(yield* Deferred.isDone(stop))) {
      for (const id of ids) {
        observe(yield* Store.get(Pair, { id }), `get ${id}`)
        for (const p of yield* Store.read(Query.make(Pair).pipe(Query.filter(Filter.eq("id", id))))) {
          observe(p, `read by key ${id}`)
        }
      }
      for (const p of yield* Store.read(Query.make(Pair))) observe(p, "scan")
      yield* Effect.yieldNow
    }
    return { reads, versions: seen.size }
  })

interface Op {
  readonly record: number
  readonly action: "move" | "doomed" | "dying"
  readonly n: number
  readonly y: number
}

const opArb = (records: number): fc.Arbitrary<Op> =>
  fc.record({
    record: fc.nat(records - 1),
    action: fc.oneof(
      { weight: 6, arbitrary: fc.constant("move" as const) },
      { weight: 1, arbitrary: fc.constant("doomed" as const) },
      { weight: 1, arbitrary: fc.constant("dying" as const) }
    ),
    n: fc.integer({ min: 1, max: 9 }),
    y: fc.integer({ min: 0, max: 4 })
  })

/** Runs writers (one fiber per op list) and readers concurrently; checks the final tally against the committed ops. */
const runWorkload = (records: number, writers: ReadonlyArray<ReadonlyArray<Op>>, readers: number) =>
  withPairs((gauge) =>
    Effect.gen(function*() {
      const ids = Array.from({ length: records }, (_, i) => `p${i}`)
      for (const id of ids) yield* Store.create(Pair, "create", { id, a: 0, b: 0, version: 0, label: "" })
      const events = yield* Store.subscribe
      const stop = yield* Deferred.make<void>()
      const readerFibers = yield* Effect.forEach(
        Array.from({ length: readers }),
        () => Effect.forkChild(reader(ids, stop), { startImmediately: true })
      )
      const results = yield* Effect.forEach(
        writers,
        (ops) =>
          Effect.forEach(ops, (op) =>
            Effect.exit(Store.update(Pair, { id: ids[op.record]! }, op.action, { n: op.n, y: op.y }))),
        { concurrency: "unbounded" }
      )
      yield* Deferred.succeed(stop, undefined)
      const readerResults = yield* Effect.forEach(readerFibers, Fiber.join)

      // every committed move is there, nothing else is
      const expected = ids.map(() => ({ a: 0, version: 0 }))
      writers.forEach((ops, w) =>
        ops.forEach((op, i) => {
          const exit = results[w]![i]!
          if (op.action === "move") {
            assert.isTrue(Exit.isSuccess(exit), `move failed: ${JSON.stringify(exit)}`)
            expected[op.record]!.a += op.n
            expected[op.record]!.version++
          } else {
            assert.isTrue(Exit.isFailure(exit))
            const error = Exit.isFailure(exit) ? (exit.cause.reasons[0] as any)?.error?._tag : undefined
            assert.strictEqual(error, op.action === "doomed" ? "ActionError" : "RecordCrashed")
          }
        })
      )
      for (const [i, id] of ids.entries()) {
        const final = yield* Store.get(Pair, { id })
        checkPair(final, `final ${id}`)
        assert.deepStrictEqual({ a: final.a, version: final.version }, expected[i], `final ${id}`)
      }
      const published = yield* PubSub.takeUpTo(events, 1_000_000)
      const moves = writers.flat().filter((op) =>
        op.action === "move"
      ).length
      const crashes = writers.flat().filter((op) => op.action === "dying").length
      assert.strictEqual(published.filter((e) => e._tag === "Updated").length, moves, "one Updated per committed move")
      assert.strictEqual(published.filter((e) => e._tag === "Restarted").length, crashes, "one Restarted per crash")
      for (const e of published) checkPair(e.record as Pair, `event ${e._tag}`)
      assert.strictEqual(gauge.maxPerRecord, 1, "a record's hooks ran concurrently")
      assert.strictEqual(gauge.overall, 0)
      return { readers: readerResults, maxOverall: gauge.maxOverall }
    })
  )

describe("Concurrency", () => {
  it.effect("32 writers on 3 records lose no update, 3 readers never see a half-applied, refused or crashed state", () =>
    Effect.gen(function*() {
      const ops = fc.sample(fc.array(opArb(3), { minLength: 12, maxLength: 12 }), { numRuns: 32, seed: seed(2015) })
      const { maxOverall, readers } = yield* runWorkload(3, ops, 3)
      for (const r of readers) {
        assert.isAbove(r.reads, 100, "the readers ran while the writers did")
        assert.isAbove(r.versions, 10, "the readers saw the records change")
      }
      // the gauge can see overlap: hooks of different records did run at once
      assert.isAbove(maxOverall, 1)
    }))

  it("random schedules: no lost update, no torn read, no overlapping hooks", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 4 }).chain((records) =>
          fc.array(fc.array(opArb(records), { minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 16 }).map((
            writers
          ) => [records, writers] as const)
        ),
        (_, readers, [records, writers]) =>
          Effect.runPromise(
            Effect.asVoid(runWorkload(records, writers, readers)).pipe(Effect.scoped, Effect.provide(TestClock.layer()))
          )
      ),
      { numRuns: numRuns(40, 1_000), seed: seed(1885) }
    )
  }, 120_000)

  it.effect("while a long after hook runs, others see the committed state, then the new one: nothing in between", () =>
    withPairs(() =>
      Effect.gen(function*() {
        yield* Store.create(Pair, "create", { id: "p0", a: 0, b: 0, version: 0, label: "" })
        const stop = yield* Deferred.make<void>()
        const watcher = yield* Effect.forkChild(reader(["p0"], stop), { startImmediately: true })
        // a long after hook: the new state is pending for 200 yields
        yield* Store.update(Pair, { id: "p0" }, "move", { n: 5, y: 200 })
        yield* yields(20)
        yield* Deferred.succeed(stop, undefined)
        const { versions } = yield* Fiber.join(watcher)
        assert.strictEqual(versions, 2, "the watcher saw version 0, then version 1, nothing in between")
        assert.deepStrictEqual(yield* Store.get(Pair, { id: "p0" }), { id: "p0", a: 5, b: -5, version: 1, label: "" })
      })
    ))

  it.effect("concurrent creates of one key: exactly one wins, the others get AlreadyExists", () =>
    withPairs(() =>
      Effect.gen(function*() {
        const exits = yield* Effect.forEach(
          Array.from({ length: 50 }, (_, i) => i),
          (i) => Effect.exit(Store.create(Pair, "create", { id: "same", a: i, b: -i, version: 0, label: `${i}` })),
          { concurrency: "unbounded" }
        )
        const winners = exits.filter(Exit.isSuccess)
        assert.strictEqual(winners.length, 1)
        for (const exit of exits.filter(Exit.isFailure)) {
          assert.strictEqual((exit.cause.reasons[0] as any).error._tag, "AlreadyExists")
        }
        assert.deepStrictEqual(yield* Store.read(Query.make(Pair)), [winners[0]!.value])
      })
    ))

  it.effect("concurrent destroy and updates: each update lands before the destroy or finds NotFound", () =>
    withPairs(() =>
      Effect.gen(function*() {
        yield* Store.create(Pair, "create", { id: "p0", a: 0, b: 0, version: 0, label: "" })
        const events = yield* Store.subscribe
        const exits = yield* Effect.forEach(
          Array.from({ length: 40 }, (_, i) => i),
          (i) =>
            Effect.exit<unknown, Errors.StoreError, Store.Store>(
              i === 20
                ? Store.destroy(Pair, { id: "p0" })
                : Store.update(Pair, { id: "p0" }, "move", { n: 1, y: i % 3 })
            ),
          { concurrency: "unbounded" }
        )
        const published = yield* PubSub.takeUpTo(events, 1_000)
        const destroyed = published.findIndex((e) => e._tag === "Destroyed")
        assert.isAtLeast(destroyed, 0)
        const before = published.slice(0, destroyed).filter((e) => e._tag === "Updated").length
        assert.strictEqual(published.slice(destroyed + 1).length, 0, "nothing after the destroy")
        const succeeded = exits.filter((e, i) => i !== 20 && Exit.isSuccess(e)).length
        assert.strictEqual(succeeded, before)
        for (const [i, exit] of exits.entries()) {
          if (i !== 20 && Exit.isFailure(exit)) {
            assert.strictEqual((exit.cause.reasons[0] as any).error._tag, "NotFound")
          }
        }
        assert.strictEqual((published[destroyed]!.record as Pair).a, before)
      })
    ))

  it.effect("two records whose hooks call each other, by concurrent callers, do not hang their callers", () =>
    withPairs(() =>
      Effect.gen(function*() {
        yield* Store.create(Pair, "create", { id: "A", a: 0, b: 0, version: 0, label: "" })
        yield* Store.create(Pair, "create", { id: "B", a: 0, b: 0, version: 0, label: "" })
        // A's after hook waits on B's mailbox while B's after hook waits on A's
        const ab = yield* Effect.forkChild(Store.update(Pair, { id: "A" }, "transfer", { to: "B", n: 1, y: 3 }), {
          startImmediately: true
        })
        const ba = yield* Effect.forkChild(Store.update(Pair, { id: "B" }, "transfer", { to: "A", n: 1, y: 3 }), {
          startImmediately: true
        })
        for (let i = 0; i < 500; i++) yield* Effect.yieldNow
        const done = [ab.pollUnsafe(), ba.pollUnsafe()].filter((e) => e !== undefined)
        assert.strictEqual(done.length, 2, "both calls complete or fail with a typed error (a cycle is not a hang)")
        yield* Effect.forEach([ab, ba], Fiber.interrupt)
      })
    ))

  it.effect("concurrent key changes onto one key: exactly one wins, the others get AlreadyExists", () =>
    withPairs(() =>
      Effect.gen(function*() {
        for (let i = 0; i < 20; i++) {
          yield* Store.create(Pair, "create", { id: `p${i}`, a: 0, b: 0, version: 0, label: "" })
        }
        const exits = yield* Effect.forEach(
          Array.from({ length: 20 }, (_, i) => i),
          (i) => Effect.exit(Store.update(Pair, { id: `p${i}` }, "update", { id: "target" })),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(exits.filter(Exit.isSuccess).length, 1)
        for (const exit of exits.filter(Exit.isFailure)) {
          assert.strictEqual((exit.cause.reasons[0] as any).error._tag, "AlreadyExists")
        }
        const all = yield* Store.read(Query.make(Pair))
        assert.strictEqual(all.length, 20)
        assert.strictEqual(
          all.filter((p) => p.id === "target").length,
          1
        )
      })
    ))

  it.effect("a call preempted between its lookup and its mailbox while the record is destroyed does not hang", () =>
    Effect.gen(function*() {
      // the caller is parked by its scheduler right after the lookup found the record live
      const trap = { armed: false, located: false, fired: false, holding: true, held: [] as Array<() => void> }
      const base = new Scheduler.MixedScheduler()
      const parking: Scheduler.Scheduler = {
        executionMode: "async",
        shouldYield: (fiber) => {
          if (trap.located && !trap.fired) {
            trap.fired = true
            return true
          }
          return base.shouldYield(fiber)
        },
        makeDispatcher: () => {
          const dispatcher = base.makeDispatcher()
          return {
            scheduleTask: (task, priority) =>
              trap.fired && trap.holding ? void trap.held.push(task) : dispatcher.scheduleTask(task, priority),
            flush: () => dispatcher.flush()
          }
        }
      }
      const inner = yield* Clock.clockWith(Effect.succeed)
      // the lookup of a resource with timeouts reads the layer's clock: that is how the trap knows
      const clock: Clock.Clock = {
        ...inner,
        currentTimeMillisUnsafe: () => {
          if (trap.armed) trap.located = true
          return inner.currentTimeMillisUnsafe()
        }
      }
      const Timed = Resource.make("Timed", {
        fields: { id: Schema.String, n: Schema.Int },
        primaryKey: ["id"],
        inactivityTimeout: "1 hour",
        actions: { bump: Action.update({ change: (cs) => Changeset.set(cs, "n", Changeset.get(cs, "n") + 1) }) }
      })
      yield* Effect.gen(function*() {
        yield* Store.create(Timed, "create", { id: "t", n: 0 })
        // the destroy is in the mailbox, not served yet
        const destroying = yield* Effect.forkChild(Store.destroy(Timed, { id: "t" }), { startImmediately: true })
        trap.armed = true
        const updating = yield* Effect.forkChild(
          Effect.provideService(Store.update(Timed, { id: "t" }, "bump"), Scheduler.Scheduler, parking),
          { startImmediately: true }
        )
        trap.armed = false
        assert.isTrue(trap.located && trap.fired, "the update looked the record up and was parked")
        assert.strictEqual(trap.held.length, 1)
        for (let i = 0; i < 50; i++) yield* Effect.yieldNow
        assert.isTrue(destroying.pollUnsafe() !== undefined && Exit.isSuccess(destroying.pollUnsafe()!), "destroyed")
        // the update resumes and sends its request to the destroyed record
        trap.holding = false
        for (const task of trap.held.splice(0)) task()
        for (let i = 0; i < 50; i++) yield* Effect.yieldNow
        const exit = updating.pollUnsafe()
        assert.isDefined(exit, "the update still waits for a reply from a record whose fiber has ended")
        if (exit !== undefined) {
          assert.strictEqual(Exit.isFailure(exit) ? (exit.cause.reasons[0] as any).error?._tag : "Success", "NotFound")
        }
        yield* Fiber.interrupt(updating)
      }).pipe(Effect.provide(Store.layer([Timed])), Effect.provideService(Clock.Clock, clock))
    }))
})
