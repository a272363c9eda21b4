/**
 * The supervisor's roles, observed through the Store: restarts of crashed
 * records (policy and OTP restart intensity), the ordering of calls with
 * restarts, expiry after inactivity or at the maximum lifetime, and the end
 * of record fibers.
 *
 * Crashes come from `test/fixtures/Lifecycle.ts`: counters whose actions die
 * in a change (`Effect.die` or a plain `throw`), a before hook or an after
 * hook. Time is the `TestClock`'s; it starts at 0 in every test.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Deferred, Effect, Fiber, PubSub, Queue, Ref, Schema } from "effect"
import { TestClock } from "effect/testing"
import { type Errors, Filter, Query, Store } from "../src/index.js"
import { drain, tags } from "./fixtures/Events.js"
import {
  Fragile,
  Initial,
  LastState,
  layer,
  Lingering,
  Lobby,
  makeProbe,
  Never,
  Pinned,
  type Probe,
  Session,
  SlowStart,
  Ticket,
  Watched,
  withStore
} from "./fixtures/Lifecycle.js"
import { makeManualClock } from "./fixtures/Model.js"
import { Character, layer as timeTravel } from "./fixtures/TimeTravel.js"

type ProbeService = Probe["Service"]

const journal = (probe: ProbeService) => Ref.get(probe.journal)

/** Lets other fibers run until `check` holds (at most 100 rounds), without touching the clock. */
const eventually = <E, R>(check: Effect.Effect<boolean, E, R>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100; i++) {
      if (yield* check) return true
      yield* Effect.yieldNow
    }
    return yield* check
  })

const ids = (records: ReadonlyArray<{ readonly id: string }>) => records.map((r) => r.id).sort()

const assertCrashed = (error: Errors.StoreError, resource: string, id: string, defect: string) => {
  assert.strictEqual(error._tag, "RecordCrashed")
  if (error._tag === "RecordCrashed") {
    assert.strictEqual(error.resource, resource)
    assert.deepStrictEqual(error.key, { id })
    assert.include(error.message, defect)
    assert.instanceOf(error.defect, Error)
  }
}

describe("Supervisor", () => {
  describe("a crash", () => {
    it.effect.each([
      { action: "explode" as const, defect: "boom in change" },
      { action: "throwUp" as const, defect: "boom in the change of Lorraine" },
      { action: "dieBefore" as const, defect: "boom in before hook" },
      { action: "dieAfter" as const, defect: "boom in after hook" }
    ])(
      "a defect ($action) fails the caller with RecordCrashed and the record is restarted",
      ({ action, defect }) =>
        withStore([Initial], () =>
          Effect.gen(function*() {
            const events = yield* Store.subscribe
            const lorraine = yield* Store.create(Initial, "create", { label: "Lorraine", count: 0 })
            yield* drain(events)

            const error = yield* Store.update(Initial, lorraine, action).pipe(Effect.flip)
            assertCrashed(error, "Initial", lorraine.id, defect)

            assert.deepStrictEqual(tags(yield* drain(events)), ["Restarted"])
            assert.deepStrictEqual(yield* Store.get(Initial, lorraine), lorraine)
            // the restarted record serves calls again
            assert.strictEqual((yield* Store.update(Initial, lorraine, "increment")).count, 1)
          }))
    )

    it.effect("restart \"initial\" re-runs the create action with its original input: updates are lost, the generated id kept", () =>
      withStore([Initial], (probe) =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const george = yield* Store.create(Initial, "create", { label: "George", count: 10 })
          yield* Store.update(Initial, george, "increment")
          yield* Store.update(Initial, george, "update", { label: "Calvin" })
          assert.deepStrictEqual(yield* Store.get(Initial, george), { id: george.id, label: "Calvin", count: 11 })
          yield* drain(events)

          const error = yield* Store.update(Initial, george, "explode").pipe(Effect.flip)
          assertCrashed(error, "Initial", george.id, "boom in change")

          // the create action ran again, with the same input
          assert.deepStrictEqual(yield* journal(probe), ["create George 10", "create George 10"])
          assert.deepStrictEqual(yield* Store.get(Initial, { id: george.id }), george)
          assert.deepStrictEqual(yield* Store.read(Query.make(Initial)), [george])

          const seen = yield* drain(events)
          assert.deepStrictEqual(tags(seen), ["Restarted"])
          assert.strictEqual(seen[0]!.resource, "Initial")
          assert.deepStrictEqual(seen[0]!.key, { id: george.id })
          assert.deepStrictEqual(seen[0]!.record, george)
        })))

    it.effect("restart \"initial\" keeps an id given by the caller", () =>
      withStore([Initial], () =>
        Effect.gen(function*() {
          const biff = yield* Store.create(Initial, "create", { id: "biff", label: "Biff", count: 1 })
          yield* Store.update(Initial, biff, "increment")
          yield* Store.update(Initial, biff, "throwUp").pipe(Effect.flip)
          assert.deepStrictEqual(yield* Store.get(Initial, { id: "biff" }), { id: "biff", label: "Biff", count: 1 })
        })))

    it.effect("restart \"initial\" brings a record whose key changed back under its original key", () =>
      withStore([Initial], () =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const doc = yield* Store.create(Initial, "create", { id: "doc", label: "Doc", count: 0 })
          yield* Store.update(Initial, doc, "update", { id: "emmett" })
          yield* drain(events)

          const error = yield* Store.update(Initial, { id: "emmett" }, "explode").pipe(Effect.flip)
          assert.strictEqual(error._tag, "RecordCrashed")

          assert.deepStrictEqual(yield* Store.get(Initial, { id: "doc" }), doc)
          assert.strictEqual((yield* Store.get(Initial, { id: "emmett" }).pipe(Effect.flip))._tag, "NotFound")
          assert.deepStrictEqual(yield* Store.read(Query.make(Initial)), [doc])
          const seen = yield* drain(events)
          assert.deepStrictEqual(seen.map((e) => [e._tag, e.key]), [["Restarted", { id: "doc" }]])
          // the key it had when it crashed is free
          yield* Store.create(Initial, "create", { id: "emmett", label: "Emmett", count: 0 })
        })))

    it.effect("restart \"lastState\" keeps the last committed state, never the crashed one", () =>
      withStore([LastState], (probe) =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const doc = yield* Store.create(LastState, "create", { label: "Doc", count: 0 })
          yield* Store.update(LastState, doc, "increment")
          const committed = yield* Store.update(LastState, doc, "increment")
          assert.strictEqual(committed.count, 2)
          yield* drain(events)

          // the after hook dies with count 102 validated and pending
          const error = yield* Store.update(LastState, doc, "dieAfter").pipe(Effect.flip)
          assertCrashed(error, "LastState", doc.id, "boom in after hook")

          assert.deepStrictEqual(yield* Store.get(LastState, doc), committed)
          assert.deepStrictEqual(yield* Store.read(Query.make(LastState)), [committed])
          // the create action did not run again
          assert.deepStrictEqual(yield* journal(probe), ["create Doc 0"])

          const seen = yield* drain(events)
          assert.deepStrictEqual(tags(seen), ["Restarted"])
          assert.deepStrictEqual(seen[0]!.key, { id: doc.id })
          assert.deepStrictEqual(seen[0]!.record, committed)

          assert.strictEqual((yield* Store.update(LastState, doc, "increment")).count, 3)
        })))

    it.effect("restart \"never\" removes the record and publishes Failed with its last state", () =>
      withStore([Never], () =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const einie = yield* Store.create(Never, "create", { id: "einie", label: "Einstein", count: 0 })
          const committed = yield* Store.update(Never, einie, "increment")
          yield* drain(events)

          const error = yield* Store.update(Never, einie, "dieAfter").pipe(Effect.flip)
          assertCrashed(error, "Never", "einie", "boom in after hook")

          const seen = yield* drain(events)
          assert.deepStrictEqual(tags(seen), ["Failed"])
          assert.strictEqual(seen[0]!.resource, "Never")
          assert.deepStrictEqual(seen[0]!.key, { id: "einie" })
          assert.deepStrictEqual(seen[0]!.record, committed)

          assert.strictEqual((yield* Store.get(Never, einie).pipe(Effect.flip))._tag, "NotFound")
          assert.strictEqual((yield* Store.update(Never, einie, "increment").pipe(Effect.flip))._tag, "NotFound")
          assert.strictEqual((yield* Store.keepAlive(Never, einie).pipe(Effect.flip))._tag, "NotFound")
          assert.deepStrictEqual(yield* Store.read(Query.make(Never)), [])
          // its key is free
          const again = yield* Store.create(Never, "create", { id: "einie", label: "Einstein II", count: 0 })
          assert.deepStrictEqual(yield* Store.get(Never, { id: "einie" }), again)
        })))

    it.effect("a crash in an after hook of a key change neither takes the new key nor frees the old one", () =>
      withStore([LastState], () =>
        Effect.gen(function*() {
          const marty = yield* Store.create(LastState, "create", { id: "marty", label: "Marty", count: 0 })

          const error = yield* Store.update(LastState, marty, "moveThenDie", { to: "calvin" }).pipe(Effect.flip)
          assertCrashed(error, "LastState", "marty", "boom in after hook of a move")

          assert.deepStrictEqual(yield* Store.get(LastState, { id: "marty" }), marty)
          assert.strictEqual((yield* Store.get(LastState, { id: "calvin" }).pipe(Effect.flip))._tag, "NotFound")
          assert.deepStrictEqual(ids(yield* Store.read(Query.make(LastState))), ["marty"])
          const calvin = yield* Store.create(LastState, "create", { id: "calvin", label: "Calvin", count: 0 })
          assert.deepStrictEqual(yield* Store.get(LastState, { id: "calvin" }), calvin)
        })))

    it.effect("other records are untouched by a crash", () =>
      withStore([Initial, LastState], () =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const doomed = yield* Store.create(Initial, "create", { label: "Doomed", count: 0 })
          const sibling = yield* Store.create(Initial, "create", { label: "Sibling", count: 0 })
          const other = yield* Store.create(LastState, "create", { label: "Other", count: 0 })
          const siblingNow = yield* Store.update(Initial, sibling, "increment")
          const otherNow = yield* Store.update(LastState, other, "increment")
          yield* drain(events)

          yield* Store.update(Initial, doomed, "explode").pipe(Effect.flip)

          const seen = yield* drain(events)
          assert.deepStrictEqual(seen.map((e) => [e._tag, e.key]), [["Restarted", { id: doomed.id }]])
          assert.deepStrictEqual(yield* Store.get(Initial, sibling), siblingNow)
          assert.deepStrictEqual(yield* Store.get(LastState, other), otherNow)
          assert.strictEqual((yield* Store.update(Initial, sibling, "increment")).count, 2)
          assert.strictEqual((yield* Store.update(LastState, other, "increment")).count, 2)
        })))
  })

  describe("restart intensity", () => {
    it.effect("by default, a 4th crash within 5 seconds removes the record and publishes Failed", () =>
      withStore([Initial], () =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const biff = yield* Store.create(Initial, "create", { label: "Biff", count: 0 })
          yield* drain(events)

          for (let i = 1; i <= 3; i++) {
            yield* TestClock.adjust("1 second")
            yield* Store.update(Initial, biff, "increment")
            const error = yield* Store.update(Initial, biff, "explode").pipe(Effect.flip)
            assert.strictEqual(error._tag, "RecordCrashed")
            // each crash is followed by exactly one restart, with the restored record
            const seen = yield* drain(events)
            assert.deepStrictEqual(tags(seen), ["Updated", "Restarted"])
            assert.deepStrictEqual(seen[1]!.record, biff)
            assert.deepStrictEqual(yield* Store.get(Initial, biff), biff)
          }

          // 4 seconds after the first crash
          yield* TestClock.adjust("1 second")
          const error = yield* Store.update(Initial, biff, "explode").pipe(Effect.flip)
          assert.strictEqual(error._tag, "RecordCrashed")

          const seen = yield* drain(events)
          assert.deepStrictEqual(tags(seen), ["Failed"])
          assert.deepStrictEqual(seen[0]!.key, { id: biff.id })
          assert.deepStrictEqual(seen[0]!.record, biff)
          assert.strictEqual((yield* Store.get(Initial, biff).pipe(Effect.flip))._tag, "NotFound")
          assert.deepStrictEqual(yield* Store.read(Query.make(Initial)), [])
        })))

    it.effect.each([
      { gap: 4_999, survives: false },
      { gap: 5_000, survives: true }
    ])(
      "3 crashes at once, then one $gap ms later: the record survives: $survives",
      ({ gap, survives }) =>
        withStore([Initial], () =>
          Effect.gen(function*() {
            const events = yield* Store.subscribe
            const biff = yield* Store.create(Initial, "create", { label: "Biff", count: 0 })
            yield* drain(events)

            for (let i = 0; i < 3; i++) yield* Store.update(Initial, biff, "throwUp").pipe(Effect.flip)
            assert.deepStrictEqual(tags(yield* drain(events)), ["Restarted", "Restarted", "Restarted"])

            yield* TestClock.adjust(gap)
            yield* Store.update(Initial, biff, "throwUp").pipe(Effect.flip)
            assert.deepStrictEqual(tags(yield* drain(events)), [survives ? "Restarted" : "Failed"])
            const found = yield* Store.get(Initial, biff).pipe(Effect.result)
            assert.strictEqual(found._tag, survives ? "Success" : "Failure")
          }))
    )

    it.effect("crashes spread beyond the 5 second window keep the record alive, however many", () =>
      withStore([Initial], () =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const biff = yield* Store.create(Initial, "create", { label: "Biff", count: 0 })
          yield* drain(events)

          // at most 3 crashes in any 5 seconds: 0, 1.7, 3.4, 5.1, ...
          for (let i = 0; i < 12; i++) {
            if (i > 0) yield* TestClock.adjust(1_700)
            const error = yield* Store.update(Initial, biff, "explode").pipe(Effect.flip)
            assert.strictEqual(error._tag, "RecordCrashed")
            assert.deepStrictEqual(yield* Store.get(Initial, biff), biff)
          }
          assert.deepStrictEqual(tags(yield* drain(events)), Array.from({ length: 12 }, () => "Restarted"))
        })))

    it.effect("4 crashes inside 5 seconds, even spread out, remove the record", () =>
      withStore([Initial], () =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const biff = yield* Store.create(Initial, "create", { label: "Biff", count: 0 })
          yield* drain(events)

          // 0, 1.6, 3.2, 4.8
          for (let i = 0; i < 4; i++) {
            if (i > 0) yield* TestClock.adjust(1_600)
            yield* Store.update(Initial, biff, "explode").pipe(Effect.flip)
          }
          assert.deepStrictEqual(tags(yield* drain(events)), ["Restarted", "Restarted", "Restarted", "Failed"])
          assert.strictEqual((yield* Store.get(Initial, biff).pipe(Effect.flip))._tag, "NotFound")
        })))

    it.effect("the intensity is counted per record", () =>
      withStore([Initial], () =>
        Effect.gen(function*() {
          const a = yield* Store.create(Initial, "create", { label: "A", count: 0 })
          const b = yield* Store.create(Initial, "create", { label: "B", count: 0 })
          for (let i = 0; i < 3; i++) {
            yield* Store.update(Initial, a, "explode").pipe(Effect.flip)
            yield* Store.update(Initial, b, "explode").pipe(Effect.flip)
          }
          assert.deepStrictEqual(ids(yield* Store.read(Query.make(Initial))), [a.id, b.id].sort())
        })))

    it.effect("a custom restartIntensity: at most 1 restart within 10 seconds", () =>
      withStore([Fragile], () =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const calm = yield* Store.create(Fragile, "create", { label: "Calm", count: 0 })
          const jumpy = yield* Store.create(Fragile, "create", { label: "Jumpy", count: 0 })
          yield* drain(events)

          yield* Store.update(Fragile, calm, "explode").pipe(Effect.flip)
          yield* Store.update(Fragile, jumpy, "explode").pipe(Effect.flip)
          assert.deepStrictEqual(tags(yield* drain(events)), ["Restarted", "Restarted"])

          yield* TestClock.adjust(9_999)
          yield* Store.update(Fragile, jumpy, "explode").pipe(Effect.flip)
          const failed = yield* drain(events)
          assert.deepStrictEqual(failed.map((e) => [e._tag, e.key]), [["Failed", { id: jumpy.id }]])
          assert.strictEqual((yield* Store.get(Fragile, jumpy).pipe(Effect.flip))._tag, "NotFound")

          yield* TestClock.adjust(1)
          yield* Store.update(Fragile, calm, "explode").pipe(Effect.flip)
          const restarted = yield* drain(events)
          assert.deepStrictEqual(restarted.map((e) => [e._tag, e.key]), [["Restarted", { id: calm.id }]])
          assert.deepStrictEqual(yield* Store.get(Fragile, calm), calm)
        })))
  })

  describe("calls are ordered with restarts", () => {
    it.effect.each([
      { policy: "initial", resource: Initial, expected: 1 },
      { policy: "lastState", resource: LastState, expected: 6 }
    ])(
      "requests queued behind a crash are served by the restarted record ($policy)",
      ({ expected, resource }) =>
        withStore([resource], (probe) =>
          Effect.gen(function*() {
            const r = resource as typeof Initial
            const record = yield* Store.create(r, "create", { label: "Queued", count: 0 })
            for (let i = 0; i < 5; i++) yield* Store.update(r, record, "increment")

            const crashing = yield* Store.update(r, record, "waitThenDie").pipe(Effect.flip, Effect.forkChild)
            assert.strictEqual(yield* Queue.take(probe.entered), "waitThenDie")
            // count -1 is validated and pending inside the after hook: nobody outside sees it
            assert.strictEqual((yield* Store.get(r, record)).count, 5)
            assert.deepStrictEqual(
              (yield* Store.read(Query.make(r))).map((x) => x.count),
              [5]
            )
            assert.deepStrictEqual(yield* Store.read(Query.make(r).pipe(Query.filter(Filter.eq("count", -1)))), [])

            const queued = yield* Store.update(r, record, "increment").pipe(Effect.forkChild)
            yield* Effect.yieldNow
            yield* Deferred.succeed(probe.release, undefined)

            const error = yield* Fiber.join(crashing)
            assert.strictEqual(error._tag, "RecordCrashed")
            // the call queued during the crash saw the restarted record
            assert.strictEqual((yield* Fiber.join(queued)).count, expected)
            assert.strictEqual((yield* Store.get(r, record)).count, expected)
          }))
    )

    it.effect("once a caller got RecordCrashed, the next get sees the restarted record", () =>
      withStore([Initial, LastState], () =>
        Effect.gen(function*() {
          const initial = yield* Store.create(Initial, "create", { label: "Initial", count: 7 })
          const last = yield* Store.create(LastState, "create", { label: "Last", count: 7 })
          for (let i = 0; i < 3; i++) {
            const updated = yield* Store.update(Initial, initial, "increment")
            const error = yield* Store.update(Initial, initial, "dieAfter").pipe(Effect.flip)
            assert.strictEqual(error._tag, "RecordCrashed")
            assert.notDeepEqual(yield* Store.get(Initial, initial), updated)
            assert.deepStrictEqual(yield* Store.get(Initial, initial), initial)

            const lastUpdated = yield* Store.update(LastState, last, "increment")
            yield* Store.update(LastState, last, "dieAfter").pipe(Effect.flip)
            assert.deepStrictEqual(yield* Store.get(LastState, last), lastUpdated)
          }
        })))

    it.effect("requests queued behind a crash that removes the record get NotFound", () =>
      withStore([Never], (probe) =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const record = yield* Store.create(Never, "create", { label: "Gone", count: 0 })
          const crashing = yield* Store.update(Never, record, "waitThenDie").pipe(Effect.flip, Effect.forkChild)
          yield* Queue.take(probe.entered)
          const queued = yield* Store.update(Never, record, "increment").pipe(Effect.flip, Effect.forkChild)
          yield* Effect.yieldNow
          yield* Deferred.succeed(probe.release, undefined)

          assert.strictEqual((yield* Fiber.join(crashing))._tag, "RecordCrashed")
          assert.strictEqual((yield* Fiber.join(queued))._tag, "NotFound")
          assert.deepStrictEqual(tags(yield* drain(events)), ["Created", "Failed"])
        })))
  })

  describe("expiry", () => {
    it.effect("without activity, a record is destroyed through its primary destroy action, hooks included", () =>
      withStore([Session], (probe) =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const session = yield* Store.create(Session, "create", { id: "s-1", user: "Lorraine", visits: 0 })
          yield* drain(events)

          yield* TestClock.adjust(59_999)
          assert.deepStrictEqual(yield* journal(probe), [])
          assert.deepStrictEqual(yield* drain(events), [])
          assert.deepStrictEqual(yield* Store.read(Query.make(Session)), [session])

          yield* TestClock.adjust(1)
          assert.deepStrictEqual(yield* journal(probe), ["farewell Lorraine"])
          const seen = yield* drain(events)
          assert.deepStrictEqual(seen, [{
            _tag: "Destroyed",
            resource: "Session",
            key: { id: "s-1" },
            record: session,
            reason: "inactivity"
          }])
          assert.strictEqual((yield* Store.get(Session, { id: "s-1" }).pipe(Effect.flip))._tag, "NotFound")
          assert.deepStrictEqual(yield* Store.read(Query.make(Session)), [])
          // the key is free again
          yield* Store.create(Session, "create", { id: "s-1", user: "Lorraine", visits: 0 })
        })))

    it.effect("expiry runs the destroy action inside the record's own fiber", () =>
      withStore([Pinned], (probe) =>
        Effect.gen(function*() {
          const self = yield* Effect.fiberId
          yield* Store.create(Pinned, "create", { id: "p" })
          yield* Store.update(Pinned, { id: "p" }, "touch")
          yield* TestClock.adjust("1 minute")
          const entries = yield* journal(probe)
          assert.deepStrictEqual(entries.map((e) => e.split(" ")[0]), ["create", "touch", "destroy"])
          const fibers = new Set(entries.map((e) => e.split(" ").at(-1)))
          assert.strictEqual(fibers.size, 1, entries.join(", "))
          assert.isFalse(fibers.has(String(self)))
        })))

    it.effect("at its maximum lifetime a record is destroyed, however active", () =>
      withStore([Ticket], (probe) =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          const ticket = yield* Store.create(Ticket, "create", { id: "t-1", visits: 0 })
          yield* drain(events)

          let last = ticket
          for (let second = 30; second < 600; second += 30) {
            yield* TestClock.adjust("30 seconds")
            last = yield* Store.update(Ticket, ticket, "visit")
            yield* Store.keepAlive(Ticket, ticket)
            yield* Store.get(Ticket, ticket)
          }
          yield* TestClock.adjust(29_999)
          assert.deepStrictEqual(yield* Store.get(Ticket, ticket), last)
          assert.deepStrictEqual(yield* journal(probe), [])

          yield* TestClock.adjust(1)
          assert.deepStrictEqual(yield* journal(probe), ["void t-1"])
          const destroyed = (yield* drain(events)).filter((e) => e._tag === "Destroyed")
          assert.deepStrictEqual(destroyed, [{
            _tag: "Destroyed",
            resource: "Ticket",
            key: { id: "t-1" },
            record: last,
            reason: "lifetime"
          }])
          assert.strictEqual((yield* Store.get(Ticket, ticket).pipe(Effect.flip))._tag, "NotFound")
        })))

    it.effect.each(["get", "reload", "update", "keepAlive"] as const)(
      "%s is activity: it pushes the inactivity deadline",
      (access) =>
        withStore([Session], (probe) =>
          Effect.gen(function*() {
            const session = yield* Store.create(Session, "create", { id: "s-1", user: "Marty", visits: 0 })
            yield* TestClock.adjust("40 seconds")
            switch (access) {
              case "get":
                yield* Store.get(Session, { id: "s-1" })
                break
              case "reload":
                yield* Store.reload(Session, session)
                break
              case "update":
                yield* Store.update(Session, session, "visit")
                break
              case "keepAlive":
                yield* Store.keepAlive(Session, { id: "s-1" })
                break
            }
            // 59.999 seconds after the access
            yield* TestClock.adjust(59_999)
            assert.deepStrictEqual(ids(yield* Store.read(Query.make(Session))), ["s-1"])
            assert.deepStrictEqual(yield* journal(probe), [])

            yield* TestClock.adjust(1)
            assert.deepStrictEqual(ids(yield* Store.read(Query.make(Session))), [])
            assert.deepStrictEqual(yield* journal(probe), ["farewell Marty"])
          }))
    )

    it.effect("create is activity: the deadline counts from creation", () =>
      withStore([Session], (probe) =>
        Effect.gen(function*() {
          yield* TestClock.adjust("45 seconds")
          yield* Store.create(Session, "create", { id: "s-1", user: "Marty", visits: 0 })
          yield* TestClock.adjust(59_999)
          assert.deepStrictEqual(yield* journal(probe), [])
          yield* TestClock.adjust(1)
          assert.deepStrictEqual(yield* journal(probe), ["farewell Marty"])
        })))

    it.effect("a read is not activity, not even a read by full key", () =>
      withStore([Session], (probe) =>
        Effect.gen(function*() {
          yield* Store.create(Session, "create", { id: "s-1", user: "Jennifer", visits: 0 })
          for (let i = 0; i < 5; i++) {
            yield* TestClock.adjust("10 seconds")
            assert.deepStrictEqual(ids(yield* Store.read(Query.make(Session))), ["s-1"])
            assert.deepStrictEqual(
              ids(yield* Store.read(Query.make(Session).pipe(Query.filter(Filter.eq("id", "s-1"))))),
              ["s-1"]
            )
            assert.deepStrictEqual(
              ids(yield* Store.read(Query.make(Session).pipe(Query.filter(Filter.eq("user", "Jennifer"))))),
              ["s-1"]
            )
          }
          yield* TestClock.adjust("10 seconds")
          assert.deepStrictEqual(yield* journal(probe), ["farewell Jennifer"])
          assert.deepStrictEqual(yield* Store.read(Query.make(Session)), [])
        })))

    it.effect("an expired record is NotFound at its deadline, even while its expiry has not finished", () =>
      withStore([Lingering], (probe) =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          yield* Store.create(Lingering, "create", { id: "l-1" })
          yield* drain(events)

          yield* TestClock.adjust("1 minute")
          // the expiry is running the destroy action, which waits at the gate
          assert.strictEqual(yield* Queue.take(probe.entered), "destroy l-1")
          assert.deepStrictEqual(yield* drain(events), [])

          assert.strictEqual((yield* Store.get(Lingering, { id: "l-1" }).pipe(Effect.flip))._tag, "NotFound")
          assert.strictEqual((yield* Store.keepAlive(Lingering, { id: "l-1" }).pipe(Effect.flip))._tag, "NotFound")
          assert.strictEqual(
            (yield* Store.update(Lingering, { id: "l-1" }, "update").pipe(Effect.flip))._tag,
            "NotFound"
          )
          assert.strictEqual((yield* Store.destroy(Lingering, { id: "l-1" }).pipe(Effect.flip))._tag, "NotFound")
          assert.deepStrictEqual(yield* Store.read(Query.make(Lingering)), [])
          assert.deepStrictEqual(
            yield* Store.read(Query.make(Lingering).pipe(Query.filter(Filter.eq("id", "l-1")))),
            []
          )

          yield* Deferred.succeed(probe.release, undefined)
          const destroyed = yield* PubSub.take(events)
          assert.strictEqual(destroyed._tag, "Destroyed")
          if (destroyed._tag === "Destroyed") assert.strictEqual(destroyed.reason, "inactivity")
        })))

    it.effect("a scan hides a record past its deadline before the expiry fiber has acted on it", () =>
      Effect.gen(function*() {
        // a clock moved by hand that wakes no sleeper: the expiry fiber never runs, only the time moves
        const manual = makeManualClock()
        const all = Query.make(Character)
        yield* Effect.gen(function*() {
          // Character: 1 minute of inactivity
          yield* Store.create(Character, "create", { id: "biff", name: "Biff Tannen", currentYear: 1955 })
          yield* manual.set(30_000)
          yield* Store.create(Character, "create", { id: "griff", name: "Griff Tannen", currentYear: 2015 })
          yield* manual.set(59_999)
          assert.deepStrictEqual(ids(yield* Store.read(all)), ["biff", "griff"])
          yield* manual.set(60_000)
          assert.deepStrictEqual(ids(yield* Store.read(all)), ["griff"])
          assert.deepStrictEqual(ids(yield* Store.read(all.pipe(Query.filter(Filter.eq("name", "Biff Tannen"))))), [])
          yield* manual.set(89_999)
          assert.deepStrictEqual(ids(yield* Store.read(all)), ["griff"])
          yield* manual.set(90_000)
          assert.deepStrictEqual(yield* Store.read(all), [])
        }).pipe(Effect.provide(Store.layer([Character])), Effect.provideService(Clock.Clock, manual.clock))
      }))

    it.effect("a keep-alive exactly at the deadline is too late", () =>
      withStore([Session], (probe) =>
        Effect.gen(function*() {
          yield* Store.create(Session, "create", { id: "s-1", user: "Biff", visits: 0 })
          yield* TestClock.adjust("1 minute")
          assert.strictEqual((yield* Store.keepAlive(Session, { id: "s-1" }).pipe(Effect.flip))._tag, "NotFound")
          assert.strictEqual((yield* Store.get(Session, { id: "s-1" }).pipe(Effect.flip))._tag, "NotFound")
          assert.deepStrictEqual(yield* journal(probe), ["farewell Biff"])
        })))

    it.effect("a record expires at its deadline even when a record created after it expires later", () =>
      withStore([Session], (probe) =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          // A's first deadline is 60 s; at 30 s it is touched, so its deadline moves to 90 s
          yield* Store.create(Session, "create", { id: "a", user: "A", visits: 0 })
          yield* TestClock.adjust("30 seconds")
          yield* Store.keepAlive(Session, { id: "a" })
          // B is created at 50 s: its deadline is 110 s
          yield* TestClock.adjust("20 seconds")
          yield* Store.create(Session, "create", { id: "b", user: "B", visits: 0 })
          yield* drain(events)

          yield* TestClock.adjust("40 seconds") // 90 s
          assert.deepStrictEqual(ids(yield* Store.read(Query.make(Session))), ["b"])
          assert.strictEqual((yield* Store.get(Session, { id: "a" }).pipe(Effect.flip))._tag, "NotFound")
          // A's expiry ran at its deadline: its destroy hook, its event, its key
          assert.deepStrictEqual(yield* journal(probe), ["farewell A"])
          assert.deepStrictEqual((yield* drain(events)).map((e) => [e._tag, e.key]), [["Destroyed", { id: "a" }]])
          const again = yield* Store.create(Session, "create", { id: "a", user: "A again", visits: 0 }).pipe(
            Effect.result
          )
          assert.strictEqual(again._tag, "Success")

          yield* TestClock.adjust("20 seconds") // 110 s
          assert.deepStrictEqual(yield* journal(probe), ["farewell A", "farewell B"])
        })))

    it.effect("a new record's inactivity counts from its commit, not from the create call", () =>
      withStore([SlowStart], (probe) =>
        Effect.gen(function*() {
          const events = yield* Store.subscribe
          // nothing to expire: the expiry fiber waits to be woken by the next record
          const slow = yield* Effect.forkChild(Store.create(SlowStart, "create", { id: "slow" }))
          assert.strictEqual(yield* Queue.take(probe.entered), "create slow")
          // its create hook outlasts the inactivity timeout
          yield* TestClock.adjust("61 seconds")
          yield* Deferred.succeed(probe.release, undefined)
          const created = yield* Fiber.join(slow)
          assert.strictEqual(created.id, "slow")
          // the record the caller got is there: its minute starts now
          assert.strictEqual((yield* Store.get(SlowStart, { id: "slow" })).id, "slow")
          yield* TestClock.adjust("59 seconds")
          assert.deepStrictEqual((yield* drain(events)).map((e) => [e._tag, e.key]), [["Created", { id: "slow" }]])
          yield* TestClock.adjust("1 second")
          assert.deepStrictEqual((yield* drain(events)).map((e) => [e._tag, e.key]), [["Destroyed", { id: "slow" }]])

          // the woken expiry fiber went back to sleep: a later record still expires at its deadline
          yield* Store.create(SlowStart, "create", { id: "later" })
          yield* TestClock.adjust("1 minute")
          assert.deepStrictEqual(
            (yield* drain(events)).map((e) => [e._tag, e.key]),
            [["Created", { id: "later" }], ["Destroyed", { id: "later" }]]
          )
          assert.strictEqual((yield* Store.get(SlowStart, { id: "later" }).pipe(Effect.flip))._tag, "NotFound")
        })))

    it.effect("a record expires at its deadline even while an older record's lifetime deadline is pending", () =>
      Effect.gen(function*() {
        // Character: 1 minute of inactivity, 2 hours of lifetime
        const events = yield* Store.subscribe
        yield* Store.create(Character, "create", { id: "biff", name: "Biff Tannen", currentYear: 1955 })
        yield* TestClock.adjust("1 minute")
        assert.deepStrictEqual(tags(yield* drain(events)), ["Created", "Destroyed"])

        // Biff is gone, but his lifetime deadline (2 hours) is still queued
        yield* TestClock.adjust("1 second")
        const griff = yield* Store.create(Character, "create", { id: "griff", name: "Griff Tannen", currentYear: 2015 })
        yield* drain(events)
        yield* TestClock.adjust("1 minute")
        assert.strictEqual((yield* Store.get(Character, griff).pipe(Effect.flip))._tag, "NotFound")
        assert.deepStrictEqual(yield* drain(events), [{
          _tag: "Destroyed",
          resource: "Character",
          key: { id: "griff" },
          record: griff,
          reason: "inactivity"
        }])
        const again = yield* Store.create(Character, "create", { id: "griff", name: "Griff", currentYear: 2015 }).pipe(
          Effect.result
        )
        assert.strictEqual(again._tag, "Success")
      }).pipe(Effect.provide(timeTravel())))

    const Step = Schema.Struct({
      at: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 40 })),
      via: Schema.Literals(["get", "reload", "update", "keepAlive"])
    })
    const Plan = Schema.Struct({
      bornAt: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 20 })),
      touches: Schema.Array(Step).check(Schema.isMaxLength(6))
    })

    it.effect.prop(
      "many records with staggered activity expire exactly when they should",
      { plans: Schema.Array(Plan).check(Schema.isMaxLength(6)) },
      ({ plans }) =>
        withStore([Lobby], () =>
          Effect.gen(function*() {
            // Lobby: 10 s inactivity timeout, 25 s maximum lifetime; the plan is in whole seconds
            const events = yield* Store.subscribe
            const model = plans.map((plan, i) => ({
              id: `lobby-${i}`,
              plan,
              born: false,
              alive: false,
              lastActivity: 0,
              record: undefined as Lobby | undefined
            }))
            for (let t = 0; t <= 50; t++) {
              if (t > 0) yield* TestClock.adjust("1 second")
              const expected: Array<readonly [string, string]> = []
              for (const m of model) {
                if (!m.alive) continue
                const lifetime = m.plan.bornAt + 25
                const idle = m.lastActivity + 10
                if (t >= Math.min(lifetime, idle)) {
                  m.alive = false
                  expected.push([m.id, lifetime <= idle ? "lifetime" : "inactivity"])
                }
              }
              const destroyed = (yield* drain(events)).flatMap((e) =>
                e._tag === "Destroyed" ? [[(e.key as { id: string }).id, e.reason] as const] : []
              )
              assert.deepStrictEqual(
                destroyed.map(([id]) => id).sort(),
                expected.map(([id]) => id).sort(),
                `destroyed at ${t} s`
              )
              for (const [id, reason] of destroyed) {
                const m = model.find((m) => m.id === id)!
                const lifetime = m.plan.bornAt + 25
                const idle = m.lastActivity + 10
                // on a tie either reason is true
                if (lifetime !== idle) assert.strictEqual(reason, lifetime < idle ? "lifetime" : "inactivity")
              }
              assert.deepStrictEqual(
                ids(yield* Store.read(Query.make(Lobby))),
                model.filter((m) => m.alive).map((m) => m.id).sort(),
                `alive at ${t} s`
              )

              for (const m of model) {
                if (m.plan.bornAt === t) {
                  m.record = yield* Store.create(Lobby, "create", { id: m.id, visits: 0 })
                  m.born = true
                  m.alive = true
                  m.lastActivity = t
                }
              }
              for (const m of model) {
                if (!m.born) continue
                for (const step of m.plan.touches) {
                  if (step.at !== t) continue
                  const key = { id: m.id }
                  const access = step.via === "get"
                    ? Store.get(Lobby, key)
                    : step.via === "reload"
                    ? Store.reload(Lobby, m.record!)
                    : step.via === "update"
                    ? Store.update(Lobby, key, "visit")
                    : Store.keepAlive(Lobby, key)
                  const result = yield* Effect.result(access)
                  assert.strictEqual(result._tag, m.alive ? "Success" : "Failure", `${step.via} ${m.id} at ${t} s`)
                  if (m.alive) m.lastActivity = t
                  if (result._tag === "Failure") assert.strictEqual(result.failure._tag, "NotFound")
                }
              }
              yield* drain(events).pipe(
                Effect.map((seen) =>
                  assert.isTrue(seen.every((e) => e._tag !== "Destroyed"), "nothing expires between ticks")
                )
              )
            }
          })),
      { arbitrary: { seed: 1955, runs: 60 } }
    )
  })

  describe("record fibers", () => {
    it.effect("a record's fiber ends when it is destroyed, crashes for good, or expires", () =>
      withStore([Watched], (probe) =>
        Effect.gen(function*() {
          const interrupted = Ref.get(probe.interrupted)
          const ended = (name: string) => eventually(Effect.map(interrupted, (names) => names.includes(name)))
          for (const id of ["destroyed", "crashed", "expired", "alive"]) {
            yield* Store.create(Watched, "create", { id })
          }
          yield* Effect.yieldNow
          assert.deepStrictEqual(yield* interrupted, [])

          yield* Store.destroy(Watched, { id: "destroyed" })
          assert.isTrue(yield* ended("watcher destroyed"))

          yield* Store.update(Watched, { id: "crashed" }, "explode").pipe(Effect.flip)
          assert.isTrue(yield* ended("watcher crashed"))

          yield* TestClock.adjust("30 seconds")
          yield* Store.keepAlive(Watched, { id: "alive" })
          yield* TestClock.adjust("30 seconds")
          assert.isTrue(yield* ended("watcher expired"))

          assert.deepStrictEqual(
            [...(yield* interrupted)].sort(),
            ["watcher crashed", "watcher destroyed", "watcher expired"]
          )
          assert.deepStrictEqual(ids(yield* Store.read(Query.make(Watched))), ["alive"])
        })))

    it.effect("closing the layer's scope ends every record fiber", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        yield* Effect.gen(function*() {
          for (let i = 0; i < 5; i++) yield* Store.create(Watched, "create", { id: `w-${i}` })
          assert.deepStrictEqual(yield* Ref.get(probe.interrupted), [])
        }).pipe(Effect.provide(layer([Watched], probe)))
        assert.isTrue(yield* eventually(Effect.map(Ref.get(probe.interrupted), (names) => names.length === 5)))
        assert.deepStrictEqual(
          [...(yield* Ref.get(probe.interrupted))].sort(),
          ["watcher w-0", "watcher w-1", "watcher w-2", "watcher w-3", "watcher w-4"]
        )
      }))
  })
})
