/**
 * Hibernation (`hibernateAfter`, OTP's `hibernate_after`): a record idle that
 * long gives up its fiber and mailbox and keeps its state and deadlines; the
 * next request wakes it in a new fiber, and callers cannot tell: same
 * results, same events, same order, same expiry, restarts and re-entrancy.
 *
 * Whether a record sleeps is read from the metrics (`Metrics.hibernating`,
 * `Metrics.wakes`), each test on resources of its own names.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Metric, Ref, Scheduler, Schema, Scope } from "effect"
import { Changeset, Errors, Metrics, Resource, Store } from "effect-gen-server"
import { TestClock } from "effect/testing"
import { drain, tags } from "./fixtures/Events.js"

class Journal extends Context.Service<Journal, Ref.Ref<ReadonlyArray<string>>>()("test/Hibernation/Journal") {}

const note = (entry: string) => Journal.use((j) => Ref.update(j, (es) => [...es, entry]))

let names = 0

/** A clock tower that sleeps after 10 s without activity and expires after a minute. */
const makeTower = (options: { readonly restart?: Resource.RestartPolicy } = {}) => {
  const name = `Tower${++names}`
  const tower = (): Resource.Any => Tower
  const Tower = Resource.make(name, {
    fields: { id: Schema.String, strikes: Schema.Int, other: Schema.optionalKey(Schema.String) },
    primaryKey: ["id"],
    hibernateAfter: "10 seconds",
    inactivityTimeout: "1 minute",
    restart: options.restart ?? "lastState",
    actions: (Action) => ({
      strike: Action.update({
        change: (cs) => Changeset.set(cs, "strikes", cs.data.strikes + 1)
      }),
      lightning: Action.update({ change: () => Effect.die(new Error("1.21 gigawatts")) }),
      // waits an hour (of a clock the tests do not move that far) before striking
      slowStrike: Action.update({
        change: (cs) => Changeset.before(cs, (cs) => Effect.as(Effect.sleep("1 hour"), cs))
      }),
      // calls the other tower from a hook; that one may call back
      ring: Action.update({
        change: (cs) =>
          Changeset.before(
            cs,
            (cs) => Effect.as(Store.update(tower(), { id: cs.data.other } as never, "strike" as never), cs)
          )
      }),
      ringBack: Action.update({
        change: (cs) =>
          Changeset.before(
            cs,
            (cs) => Effect.as(Store.update(tower(), { id: cs.data.other } as never, "ring" as never), cs)
          )
      }),
      destroy: Action.destroy({
        change: (cs) => Changeset.after(cs, (record) => Effect.as(note(`farewell ${record.id}`), record))
      })
    })
  })
  return Tower
}

const sleeping = (resource: Resource.Any) =>
  Effect.map(Metric.value(Metric.withAttributes(Metrics.hibernating, { resource: resource.name })), (g) => g.value)
const woken = (resource: Resource.Any) =>
  Effect.map(Metric.value(Metric.withAttributes(Metrics.wakes, { resource: resource.name })), (c) => c.count)

/** Lets the expiry fiber and the record fibers run what the clock made due. */
const settle = Effect.repeat(Effect.yieldNow, { times: 50 })

const later = (duration: Parameters<typeof TestClock.adjust>[0]) => Effect.andThen(TestClock.adjust(duration), settle)

const withTower = <A, E, R>(
  Tower: Resource.Any,
  body: Effect.Effect<A, E, R>,
  /** The scheduler of the store's record fibers (Effect's default unless given). */
  scheduler?: Scheduler.Scheduler
) =>
  body.pipe(
    Effect.provide(
      Store.layer([Tower]).pipe(
        Layer.provideMerge(Layer.effect(Journal, Ref.make<ReadonlyArray<string>>([]))),
        Layer.provide(scheduler === undefined ? Layer.empty : Layer.succeed(Scheduler.Scheduler, scheduler))
      )
    )
  )

describe("hibernation", () => {
  it.effect("a record idle for hibernateAfter sleeps; a get reads it without waking it", () => {
    const Tower = makeTower()
    return withTower(
      Tower,
      Effect.gen(function*() {
        const created = yield* Store.create(Tower, "create", { id: "hill-valley", strikes: 0 })
        yield* later("9 seconds")
        assert.strictEqual(yield* sleeping(Tower), 0)
        yield* later("1 second")
        assert.strictEqual(yield* sleeping(Tower), 1)
        assert.deepStrictEqual(yield* Store.get(Tower, { id: "hill-valley" }), created)
        assert.strictEqual(yield* woken(Tower), 0)
      })
    )
  })

  it.effect("the next update wakes it: the same result and events, then it sleeps again", () => {
    const Tower = makeTower()
    return withTower(
      Tower,
      Effect.gen(function*() {
        yield* Store.create(Tower, "create", { id: "hill-valley", strikes: 0 })
        yield* later("10 seconds")
        const events = yield* Store.subscribe
        const struck = yield* Store.update(Tower, { id: "hill-valley" }, "strike")
        assert.strictEqual(struck.strikes, 1)
        assert.deepStrictEqual(tags(yield* drain(events)), ["Updated"])
        assert.strictEqual(yield* woken(Tower), 1)
        assert.strictEqual(yield* sleeping(Tower), 0)
        yield* later("10 seconds")
        assert.strictEqual(yield* sleeping(Tower), 1)
        assert.strictEqual((yield* Store.update(Tower, { id: "hill-valley" }, "strike")).strikes, 2)
      })
    )
  })

  it.effect("calls that arrive while it wakes are served once each, in order", () => {
    const Tower = makeTower()
    return withTower(
      Tower,
      Effect.gen(function*() {
        yield* Store.create(Tower, "create", { id: "hill-valley", strikes: 0 })
        yield* later("10 seconds")
        // the first call wakes the record (its new fiber runs at once, with Effect's default scheduler);
        // the rest find it awake: for calls buffered while it wakes, see the tests below
        const calls = []
        for (let i = 0; i < 5; i++) {
          calls.push(
            yield* Effect.forkChild(Store.update(Tower, { id: "hill-valley" }, "strike"), { startImmediately: true })
          )
        }
        const results = yield* Fiber.joinAll(calls)
        assert.deepStrictEqual(results.map((r) => r.strikes), [1, 2, 3, 4, 5])
        assert.strictEqual(yield* woken(Tower), 1)
      })
    )
  })

  it.effect("a busy record stays awake", () => {
    const Tower = makeTower()
    return withTower(
      Tower,
      Effect.gen(function*() {
        yield* Store.create(Tower, "create", { id: "hill-valley", strikes: 0 })
        for (let i = 0; i < 6; i++) {
          yield* later("6 seconds")
          yield* Store.update(Tower, { id: "hill-valley" }, "strike")
        }
        assert.strictEqual(yield* woken(Tower), 0)
        assert.strictEqual(yield* sleeping(Tower), 0)
      })
    )
  })

  it.effect("it expires while asleep, through its destroy action", () => {
    const Tower = makeTower()
    return withTower(
      Tower,
      Effect.gen(function*() {
        const events = yield* Store.subscribe
        yield* Store.create(Tower, "create", { id: "hill-valley", strikes: 0 })
        yield* later("10 seconds")
        assert.strictEqual(yield* sleeping(Tower), 1)
        yield* later("50 seconds")
        const destroyed = (yield* drain(events)).filter((e) => e._tag === "Destroyed")
        assert.deepStrictEqual(destroyed.map((e) => e._tag === "Destroyed" && e.reason), ["inactivity"])
        assert.deepStrictEqual(yield* Ref.get(yield* Journal), ["farewell hill-valley"])
        assert.strictEqual((yield* Effect.flip(Store.get(Tower, { id: "hill-valley" })))._tag, "NotFound")
      })
    )
  })

  it.effect("a crash right after waking is RecordCrashed, and the restart policy applies", () => {
    const Tower = makeTower({ restart: "lastState" })
    return withTower(
      Tower,
      Effect.gen(function*() {
        yield* Store.create(Tower, "create", { id: "hill-valley", strikes: 0 })
        yield* Store.update(Tower, { id: "hill-valley" }, "strike")
        yield* later("10 seconds")
        const events = yield* Store.subscribe
        const crashed = yield* Effect.flip(Store.update(Tower, { id: "hill-valley" }, "lightning"))
        assert.strictEqual(crashed._tag, "RecordCrashed")
        assert.deepStrictEqual(tags(yield* drain(events)), ["Restarted"])
        assert.strictEqual((yield* Store.update(Tower, { id: "hill-valley" }, "strike")).strikes, 2)
      })
    )
  })

  it.effect("a hook calling a sleeping record wakes it; a cycle through it is refused, none hangs", () => {
    const Tower = makeTower()
    return withTower(
      Tower,
      Effect.gen(function*() {
        yield* Store.create(Tower, "create", { id: "a", strikes: 0, other: "b" })
        yield* Store.create(Tower, "create", { id: "b", strikes: 0, other: "a" })
        yield* later("10 seconds")
        assert.strictEqual(yield* sleeping(Tower), 2)
        // a's hook wakes the sleeping b and strikes it
        yield* Store.update(Tower, { id: "a" }, "ring")
        assert.strictEqual((yield* Store.get(Tower, { id: "b" })).strikes, 1)
        yield* later("10 seconds")
        assert.strictEqual(yield* sleeping(Tower), 2)
        // a's hook calls the sleeping b, whose hook calls a: refused, and nothing waits for ever
        const call = yield* Effect.forkChild(Effect.flip(Store.update(Tower, { id: "a" }, "ringBack")), {
          startImmediately: true
        })
        yield* settle
        const refused = call.pollUnsafe()
        assert.isDefined(refused, "deadlocked")
        const error = Exit.isSuccess(refused!) ? refused.value : undefined
        assert.strictEqual(error?._tag, "ActionError")
        assert.match(error?.message ?? "", /deadlock|same record/)
      })
    )
  })

  it.effect("closing the store while a woken record serves fails the call with StoreClosed, and ends its fiber", () => {
    const Tower = makeTower()
    return Effect.gen(function*() {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        Store.layer([Tower]).pipe(Layer.provideMerge(Layer.effect(Journal, Ref.make<ReadonlyArray<string>>([])))),
        scope
      )
      const use = <A, E>(effect: Effect.Effect<A, E, Store.Store>) => Effect.provide(effect, context)
      yield* use(Store.create(Tower, "create", { id: "hill-valley", strikes: 0 }))
      yield* later("10 seconds")
      assert.strictEqual(yield* sleeping(Tower), 1)
      const call = yield* Effect.forkChild(use(Store.update(Tower, { id: "hill-valley" }, "slowStrike")), {
        startImmediately: true
      })
      yield* settle
      assert.strictEqual(yield* woken(Tower), 1)
      yield* Scope.close(scope, Exit.void)
      const exit = yield* Fiber.await(call)
      assert.deepStrictEqual(
        Exit.isFailure(exit) ? (exit.cause.reasons[0] as any)?.error : exit,
        new Errors.StoreClosed({ message: "the store was closed while the call was in flight" })
      )
    })
  })

  it.effect("a sleeping record's key change re-registers it; it sleeps and wakes under the new key", () => {
    const Tower = makeTower()
    return withTower(
      Tower,
      Effect.gen(function*() {
        yield* Store.create(Tower, "create", { id: "1955", strikes: 0 })
        yield* later("10 seconds")
        yield* Store.update(Tower, { id: "1955" }, "update", { id: "1985" })
        assert.strictEqual((yield* Effect.flip(Store.get(Tower, { id: "1955" })))._tag, "NotFound")
        yield* later("10 seconds")
        assert.strictEqual(yield* sleeping(Tower), 1)
        assert.strictEqual((yield* Store.update(Tower, { id: "1985" }, "strike")).strikes, 1)
        assert.strictEqual(yield* woken(Tower), 2)
      })
    )
  })
})

/**
 * A scheduler that starts every fiber on its next task instead of at once
 * (Effect's default scheduler otherwise): a woken record's fiber has not run
 * yet when the next calls arrive, so they wait in the record's `waking`
 * requests. (With Effect 4's default scheduler a forked fiber runs at once,
 * inside the call that wakes the record, and has its mailbox before the
 * next call.)
 */
const startingLater = (): Scheduler.Scheduler => {
  const parent = new Scheduler.MixedScheduler("async")
  const started = new WeakSet<object>()
  return {
    executionMode: parent.executionMode,
    shouldYield: (fiber) => {
      if (started.has(fiber)) return parent.shouldYield(fiber)
      started.add(fiber)
      return true
    },
    makeDispatcher: () => parent.makeDispatcher()
  }
}

/** What a caller saw: the strikes of the record it got back, or its error's tag. */
const outcome = (exit: Exit.Exit<{ readonly strikes: number }, { readonly _tag: string }>) =>
  Exit.isSuccess(exit) ? exit.value.strikes : (exit.cause.reasons[0] as any)?.error?._tag ?? "defect"

/**
 * Makes every call to record `id` at once, each forked and run until it
 * waits; then what each caller saw, in call order, and the events of that
 * record (tag and strikes), in publication order.
 */
const together = (Tower: Resource.Any, id: string, actions: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const events = yield* Store.subscribe
    const calls = []
    for (const action of actions) {
      calls.push(
        yield* Effect.forkChild(Store.update(Tower, { id } as never, action as never), { startImmediately: true })
      )
    }
    const exits = []
    for (const call of calls) exits.push(outcome((yield* Fiber.await(call)) as never))
    yield* settle
    const published = (yield* drain(events))
      .filter((e) => (e.key as { id?: string }).id === id)
      .map((e) => `${e._tag} ${"record" in e ? (e.record as { strikes?: number } | undefined)?.strikes : ""}`)
    return { exits, published }
  })

/** The largest batch a record of the resource took at once (from its mailbox, or the calls that woke it). */
const largestBatch = (resource: Resource.Any) =>
  Effect.map(Metric.value(Metric.withAttributes(Metrics.mailboxDepth, { resource: resource.name })), (h) => h.max)

/**
 * Runs the same concurrent calls on a record asleep and on one awake (made
 * after the first fell asleep, so it has not been idle for long), both with
 * one strike already, and returns both sides. With `buffered`, checks the
 * sleeping one took every call in the batch that woke it: they all arrived
 * while it was waking.
 */
const sleepingVersusAwake = (Tower: Resource.Any, actions: ReadonlyArray<string>, buffered: boolean) =>
  Effect.gen(function*() {
    yield* Store.create(Tower, "create", { id: "asleep", strikes: 0 })
    yield* Store.update(Tower, { id: "asleep" }, "strike")
    yield* later("10 seconds")
    assert.strictEqual(yield* sleeping(Tower), 1)
    const asleep = yield* together(Tower, "asleep", actions)
    assert.strictEqual(yield* woken(Tower), 1)
    if (buffered) assert.strictEqual(yield* largestBatch(Tower), actions.length)
    yield* Store.create(Tower, "create", { id: "awake", strikes: 0 })
    yield* Store.update(Tower, { id: "awake" }, "strike")
    const awake = yield* together(Tower, "awake", actions)
    assert.strictEqual(yield* woken(Tower), 1, "the awake record did not sleep")
    return { asleep, awake }
  })

for (
  const [schedule, scheduler] of [
    ["fibers starting at once (Effect's default)", undefined],
    ["fibers starting on their next task", startingLater]
  ] as const
) {
  const buffered = scheduler !== undefined
  describe(`hibernation: calls that arrive while a record wakes, ${schedule}`, () => {
    it.effect("are served in arrival order: the same results and events as on an awake record", () => {
      const Tower = makeTower()
      return withTower(
        Tower,
        Effect.gen(function*() {
          const { asleep, awake } = yield* sleepingVersusAwake(
            Tower,
            ["strike", "strike", "update", "strike", "strike"],
            buffered
          )
          assert.deepStrictEqual(asleep.exits, [2, 3, 3, 4, 5])
          // the update changes no field: it commits nothing, and publishes nothing
          assert.deepStrictEqual(asleep.published, ["Updated 2", "Updated 3", "Updated 4", "Updated 5"])
          assert.deepStrictEqual(asleep, awake)
        }),
        scheduler?.()
      )
    })

    it.effect("a crash on the first one restarts the record (lastState) before the queued ones are served", () => {
      const Tower = makeTower({ restart: "lastState" })
      return withTower(
        Tower,
        Effect.gen(function*() {
          const { asleep, awake } = yield* sleepingVersusAwake(
            Tower,
            ["lightning", "strike", "strike", "lightning"],
            buffered
          )
          assert.deepStrictEqual(asleep.exits, ["RecordCrashed", 2, 3, "RecordCrashed"])
          assert.deepStrictEqual(asleep.published, ["Restarted 1", "Updated 2", "Updated 3", "Restarted 3"])
          assert.deepStrictEqual(asleep, awake)
          assert.strictEqual((yield* Store.update(Tower, { id: "asleep" }, "strike")).strikes, 4)
        }),
        scheduler?.()
      )
    })

    it.effect("a crash on the first one with restart never: the queued callers get NotFound", () => {
      const Tower = makeTower({ restart: "never" })
      return withTower(
        Tower,
        Effect.gen(function*() {
          const { asleep, awake } = yield* sleepingVersusAwake(Tower, ["lightning", "strike", "strike"], buffered)
          assert.deepStrictEqual(asleep.exits, ["RecordCrashed", "NotFound", "NotFound"])
          assert.deepStrictEqual(asleep.published, ["Failed 1"])
          assert.deepStrictEqual(asleep, awake)
          assert.strictEqual((yield* Effect.flip(Store.get(Tower, { id: "asleep" })))._tag, "NotFound")
        }),
        scheduler?.()
      )
    })
  })
}
