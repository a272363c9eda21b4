/**
 * Record fibers on the live scheduler. With Effect's default scheduler a
 * record's fiber is woken in a microtask, and after a bounded run of them
 * the next waits for a turn of the event loop: calls do not wait for the
 * event loop, and timers and I/O still run while records call records
 * without pause. Another scheduler in the layer's services is kept.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Schema } from "effect"
import { Action, Changeset, Resource, Store } from "effect-gen-server"
import * as Scheduler from "effect/Scheduler"

// Counter's relay hook calls another Counter: an annotated accessor keeps its type from being circular
const counter = (): Resource.Any => Counter

const Counter = Resource.make("Counter", {
  fields: { id: Schema.String, n: Schema.Int },
  primaryKey: ["id"],
  actions: {
    bump: Action.update({ change: (cs) => Changeset.set(cs, "n", Changeset.get(cs, "n") + 1) }),
    relay: Action.update({
      arguments: { to: Schema.String, times: Schema.Int },
      change: (cs) =>
        Changeset.before(cs, (cs) =>
          Effect.as(
            Effect.forEach(
              Array.from({ length: cs.arguments.times }),
              () => Store.update(counter(), { id: cs.arguments.to } as never, "bump" as never),
              { discard: true }
            ),
            cs
          ))
    })
  }
})

/**
 * Runs `calls` with a 1 ms timer started just before them; returns what
 * `calls` reported done when the timer fired, and in all.
 */
const timerDuring = <E, R>(calls: (done: () => void) => Effect.Effect<void, E, R>) =>
  Effect.gen(function*() {
    let completed = 0
    let firedAt: number | undefined
    const timer = yield* Effect.forkChild(
      Effect.sleep("1 millis").pipe(Effect.tap(() => Effect.sync(() => (firedAt = completed))))
    )
    yield* Effect.yieldNow // the timer is set
    yield* calls(() => completed++)
    yield* Fiber.join(timer)
    return { completed, firedAt: firedAt! }
  })

describe("Scheduling", () => {
  it.live("a caller's loop of calls to a record does not starve timers", () =>
    Effect.gen(function*() {
      yield* Store.create(Counter, "create", { id: "a", n: 0 })
      const { completed, firedAt } = yield* timerDuring((done) =>
        Effect.gen(function*() {
          for (let i = 0; i < 20_000; i++) {
            yield* Store.update(Counter, { id: "a" }, "bump")
            done()
          }
        })
      )
      assert.strictEqual(completed, 20_000)
      assert.isBelow(firedAt, completed, "the timer waited for the whole loop")
      assert.strictEqual((yield* Store.get(Counter, { id: "a" })).n, 20_000)
    }).pipe(Effect.provide(Store.layer([Counter]))))

  it.live("a record's hook calling another record thousands of times does not starve timers", () =>
    Effect.gen(function*() {
      yield* Store.create(Counter, "create", { id: "a", n: 0 })
      yield* Store.create(Counter, "create", { id: "b", n: 0 })
      const { completed, firedAt } = yield* timerDuring((done) =>
        Effect.asVoid(
          Effect.tap(Store.update(Counter, { id: "a" }, "relay", { to: "b", times: 20_000 }), () => Effect.sync(done))
        )
      )
      // the relay runs between the two record fibers only: the timer fired inside it, not after
      assert.strictEqual(completed, 1)
      assert.strictEqual(firedAt, 0, "the timer waited for the whole relay")
      assert.strictEqual((yield* Store.get(Counter, { id: "b" })).n, 20_000)
    }).pipe(Effect.provide(Store.layer([Counter]))))

  it.live("64 callers on one record: each update is applied once", () =>
    Effect.gen(function*() {
      yield* Store.create(Counter, "create", { id: "a", n: 0 })
      yield* Effect.forEach(
        Array.from({ length: 64 }),
        () => Effect.repeat(Store.update(Counter, { id: "a" }, "bump"), { times: 99 }),
        { concurrency: "unbounded", discard: true }
      )
      assert.strictEqual((yield* Store.get(Counter, { id: "a" })).n, 6_400)
    }).pipe(Effect.provide(Store.layer([Counter]))))

  it.live("record fibers keep a scheduler the application provides", () =>
    Effect.gen(function*() {
      let tasks = 0
      const inner = new Scheduler.MixedScheduler()
      const counting: Scheduler.Scheduler = {
        executionMode: "async",
        shouldYield: (fiber) => inner.shouldYield(fiber),
        makeDispatcher: () => {
          const dispatcher = inner.makeDispatcher()
          return {
            scheduleTask: (task, priority) => {
              tasks++
              dispatcher.scheduleTask(task, priority)
            },
            flush: () => dispatcher.flush()
          }
        }
      }
      const ids = Array.from({ length: 10 }, (_, i) => `c${i}`)
      const program = Effect.gen(function*() {
        for (const id of ids) yield* Store.create(Counter, "create", { id, n: 0 })
        const before = tasks
        // an action with a hook runs in the record's fiber (a plain one on an idle record is served in its caller's)
        for (const id of ids) yield* Store.update(Counter, { id }, "relay", { to: id, times: 0 })
        return tasks - before
      })
      const woken = yield* program.pipe(
        Effect.provide(Store.layer([Counter]).pipe(Layer.provide(Layer.succeed(Scheduler.Scheduler, counting))))
      )
      // each of these updates wakes its record's waiting fiber through the mailbox, on the application's scheduler
      assert.isAtLeast(woken, ids.length)
    }))
})
