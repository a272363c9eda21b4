/**
 * An update to an idle record (its fiber waits on an empty mailbox) is
 * served in its caller's fiber; an action that needs the record's fiber
 * (hooks, an effectful change, a restart) is handed to it first in its
 * mailbox. Either way callers see the arrival order: what arrives while the
 * record is not idle waits behind what came first.
 *
 * A record's fiber that finds its mailbox empty waits for `Server.post` to
 * ring its doorbell; a call posted after the check but before the wait began
 * (the fiber yielded in between) is still served. The fiber takes its whole
 * mailbox at once: `mailboxCapacity` counts what waits, not what is served.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Option, Scheduler, Schema } from "effect"
import { Action, Changeset, Resource, Store } from "effect-gen-server"
import { TestClock } from "effect/testing"
import { drain, tags } from "./fixtures/Events.js"

const Dial = Resource.make("Dial", {
  fields: { id: Schema.String, n: Schema.Int },
  primaryKey: ["id"],
  restart: "lastState",
  actions: {
    bump: Action.update({ change: (cs) => Changeset.set(cs, "n", Changeset.get(cs, "n") + 1) }),
    // waits a second of the clock, then multiplies by ten
    slowTimesTen: Action.update({
      change: (cs) =>
        Changeset.before(cs, (cs) => Effect.as(Effect.sleep("1 second"), Changeset.set(cs, "n", cs.data.n * 10)))
    }),
    // crashes synchronously, in the change itself
    boom: Action.update({
      change: () => {
        throw new Error("boom")
      }
    })
  }
})

/** Forks each call and runs it until it waits, in order; what each saw (n, or its error's tag). */
const inOrder = (actions: ReadonlyArray<string>, moveClock: boolean) =>
  Effect.gen(function*() {
    const calls = []
    for (const action of actions) {
      calls.push(
        yield* Effect.forkChild(Store.update(Dial, { id: "d" }, action as "bump"), { startImmediately: true })
      )
    }
    if (moveClock) yield* TestClock.adjust("1 second")
    const seen = []
    for (const call of calls) {
      const exit = yield* Fiber.await(call)
      seen.push(Exit.isSuccess(exit) ? exit.value.n : (exit.cause.reasons[0] as any)?.error?._tag)
    }
    return seen
  })

describe("updates to an idle record", () => {
  it.effect("a plain update on an idle record is answered before its caller waits", () =>
    Effect.gen(function*() {
      yield* Store.create(Dial, "create", { id: "d", n: 1 })
      const call = yield* Effect.forkChild(Store.update(Dial, { id: "d" }, "bump"), { startImmediately: true })
      // no other fiber ran: the caller's fiber served it
      assert.deepStrictEqual(call.pollUnsafe()?.pipe(Exit.map((r) => r.n)), Exit.succeed(2))
    }).pipe(Effect.provide(Store.layer([Dial]))))

  it.effect("calls arriving behind an action with a hook wait for it, in order", () =>
    Effect.gen(function*() {
      yield* Store.create(Dial, "create", { id: "d", n: 1 })
      assert.deepStrictEqual(yield* inOrder(["slowTimesTen", "bump", "bump"], true), [10, 11, 12])
      assert.strictEqual((yield* Store.get(Dial, { id: "d" })).n, 12)
    }).pipe(Effect.provide(Store.layer([Dial]))))

  it.effect("a crash on an idle record restarts it before the calls behind it are served", () =>
    Effect.gen(function*() {
      yield* Store.create(Dial, "create", { id: "d", n: 1 })
      const events = yield* Store.subscribe
      assert.deepStrictEqual(yield* inOrder(["boom", "bump", "boom", "bump"], false), [
        "RecordCrashed",
        2,
        "RecordCrashed",
        3
      ])
      assert.deepStrictEqual(tags(yield* drain(events)), ["Restarted", "Updated", "Restarted", "Updated"])
    }).pipe(Effect.provide(Store.layer([Dial]))))
})

/**
 * A scheduler that parks a record's fiber once, at its first chance to yield
 * after `bell.arm` ran in it (in a plain update, the last of its batch): that
 * chance comes after the fiber found its mailbox empty and before its wait on
 * the mailbox begins (the callback that sets its doorbell). The task that
 * would resume it is held for the test to run.
 */
const gapTrap = () => {
  const parent = new Scheduler.MixedScheduler("async")
  const trap = {
    armed: undefined as Fiber.Fiber<unknown, unknown> | undefined,
    fired: false,
    holding: false,
    held: [] as Array<() => void>
  }
  const scheduler: Scheduler.Scheduler = {
    executionMode: "async",
    shouldYield: (fiber) => {
      if (fiber !== trap.armed) return parent.shouldYield(fiber)
      trap.armed = undefined
      trap.fired = true
      trap.holding = true
      return true
    },
    makeDispatcher: () => {
      const dispatcher = parent.makeDispatcher()
      return {
        // the task the parked fiber resumes with is the next one scheduled
        scheduleTask: (task, priority) => {
          if (!trap.holding) return dispatcher.scheduleTask(task, priority)
          trap.holding = false
          trap.held.push(task)
        },
        flush: () => dispatcher.flush()
      }
    }
  }
  return { trap, scheduler }
}

/** What the Bell's actions tell the test: its slow call began; the fiber that served `arm`. */
const bell = { slowBegan: false, arm: (): void => {} }

const Bell = Resource.make("Bell", {
  fields: { id: Schema.String, n: Schema.Int },
  primaryKey: ["id"],
  actions: {
    bump: Action.update({ change: (cs) => Changeset.set(cs, "n", Changeset.get(cs, "n") + 1) }),
    // waits a second of the clock in the record's fiber
    slow: Action.update({
      change: (cs) =>
        Changeset.before(cs, (cs) =>
          Effect.suspend(() => {
            bell.slowBegan = true
            return Effect.as(Effect.sleep("1 second"), cs)
          }))
    }),
    // a plain update that arms the trap in the fiber serving it
    arm: Action.update({
      change: (cs) => {
        bell.arm()
        return Changeset.set(cs, "n", Changeset.get(cs, "n") + 1)
      }
    })
  }
})

describe("a record's fiber beginning to wait on its mailbox", () => {
  it.effect("a call posted while it yields between its check of the empty mailbox and its wait is served", () => {
    const { scheduler, trap } = gapTrap()
    bell.slowBegan = false
    bell.arm = () => {
      trap.armed = Fiber.getCurrent()
    }
    return Effect.gen(function*() {
      yield* Store.create(Bell, "create", { id: "b", n: 0 })
      // the record's fiber serves a slow call; the arming call waits in its mailbox, for a batch of its own
      const slow = yield* Effect.forkChild(Store.update(Bell, { id: "b" }, "slow"), { startImmediately: true })
      for (let i = 0; i < 50 && !bell.slowBegan; i++) yield* Effect.yieldNow
      assert.isTrue(bell.slowBegan, "the record's fiber serves the slow call")
      const armed = yield* Effect.forkChild(Store.update(Bell, { id: "b" }, "arm"), { startImmediately: true })
      yield* TestClock.adjust("1 second")
      for (let i = 0; i < 50 && !trap.fired; i++) yield* Effect.yieldNow
      assert.isTrue(trap.fired, "the record's fiber was parked after serving the arming call")
      assert.strictEqual(trap.held.length, 1)
      assert.strictEqual((yield* Fiber.join(slow)).n, 0)
      assert.strictEqual((yield* Fiber.join(armed)).n, 1)
      // posted while the fiber is parked: its mailbox was found empty, its wait has not begun
      const call = yield* Effect.forkChild(Store.update(Bell, { id: "b" }, "bump"), { startImmediately: true })
      assert.isUndefined(call.pollUnsafe(), "the call waits for the record's fiber")
      for (const task of trap.held.splice(0)) task()
      const answered = yield* Effect.forkChild(Effect.timeoutOption(Fiber.join(call), "1 second"))
      yield* TestClock.adjust("1 second")
      const result = yield* Fiber.join(answered)
      assert.isTrue(Option.isSome(result), "the call was answered without another request")
      assert.strictEqual(Option.getOrThrow(result).n, 2)
      assert.strictEqual((yield* Store.get(Bell, { id: "b" })).n, 2)
    }).pipe(
      Effect.provide(Store.layer([Bell]).pipe(Layer.provide(Layer.succeed(Scheduler.Scheduler, scheduler))))
    )
  })
})

/**
 * A record's mailbox holds what waits for its fiber: the fiber takes all of
 * it at once as its next batch, so `mailboxCapacity` counts the calls not yet
 * taken, never the batch being served, and the calls of one batch come
 * before those that arrive while it is served.
 */
const Gauge = Resource.make("Gauge", {
  fields: { id: Schema.String, n: Schema.Int },
  primaryKey: ["id"],
  mailboxCapacity: 2,
  actions: {
    bump: Action.update({ change: (cs) => Changeset.set(cs, "n", Changeset.get(cs, "n") + 1) }),
    // waits a second of the clock in the record's fiber, then multiplies by ten
    slowTimesTen: Action.update({
      change: (cs) =>
        Changeset.before(cs, (cs) =>
          Effect.suspend(() => {
            gauge.slowBegan++
            return Effect.as(Effect.sleep("1 second"), Changeset.set(cs, "n", cs.data.n * 10))
          }))
    })
  }
})

/** How many slow calls the Gauge's fiber has begun. */
const gauge = { slowBegan: 0 }

describe("a record's mailbox", () => {
  it.effect("capacity counts the calls not yet taken; a batch's calls come before the next arrivals", () => {
    gauge.slowBegan = 0
    const call = (action: "bump" | "slowTimesTen") =>
      Effect.forkChild(Effect.exit(Store.update(Gauge, { id: "g" }, action)), { startImmediately: true })
    const seen = (exit: Exit.Exit<{ readonly n: number }, { readonly _tag: string }>) =>
      Exit.isSuccess(exit) ? exit.value.n : (exit.cause.reasons[0] as any)?.error?._tag
    const slowBegins = (count: number) =>
      Effect.gen(function*() {
        for (let i = 0; i < 50 && gauge.slowBegan < count; i++) yield* Effect.yieldNow
        assert.strictEqual(gauge.slowBegan, count, "the record's fiber serves the slow call")
      })
    return Effect.gen(function*() {
      yield* Store.create(Gauge, "create", { id: "g", n: 1 })
      const first = yield* call("slowTimesTen")
      yield* slowBegins(1)
      // the record's fiber is busy: two calls wait, the third finds the mailbox full
      const a = yield* call("bump")
      const b = yield* call("slowTimesTen")
      const refused = yield* call("bump")
      yield* TestClock.adjust("1 second")
      // the fiber took a and b as one batch and serves b: the mailbox is empty again
      yield* slowBegins(2)
      const d = yield* call("bump")
      const e = yield* call("bump")
      const refusedToo = yield* call("bump")
      yield* TestClock.adjust("1 second")
      const results = []
      for (const fiber of [first, a, b, refused, d, e, refusedToo]) results.push(seen(yield* Fiber.join(fiber)))
      assert.deepStrictEqual(results, [10, 11, 110, "MailboxFull", 111, 112, "MailboxFull"])
      assert.strictEqual((yield* Store.get(Gauge, { id: "g" })).n, 112)
    }).pipe(Effect.provide(Store.layer([Gauge])))
  })
})
