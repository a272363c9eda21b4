/**
 * Nothing leaks.
 *
 * When the Store layer's scope closes: every record fiber has ended (each
 * record's fiber is captured from inside its own create hook and polled),
 * hooks blocked forever were interrupted (`Effect.onInterrupt`), children a
 * hook forked were interrupted with their record, the expiry fibers ended and
 * no fiber is left asleep on the clock (a counting wrapper of the
 * `TestClock`), moving the clock afterwards runs nothing, and callers in
 * flight or queued — and callers after the close — got a typed `StoreClosed`.
 *
 * While the store is open: a record's fiber ends when the record is
 * destroyed, expires or fails for good, and a destroyed record is garbage
 * (weak references to destroyed records are cleared by a forced GC), with
 * and without timeouts.
 *
 * The heap check after 100k create/destroy/expiry cycles runs in the soak
 * script only (`test/soak/soak.ts`).
 */
import { assert, describe, it } from "@effect/vitest"
import {
  Cause,
  Clock,
  Context,
  Effect,
  Exit,
  type Fiber,
  Layer,
  Queue,
  References,
  Schema,
  Scope,
  Stream
} from "effect"
import { TestClock } from "effect/testing"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { Action, Changeset, Query, Resource, Store } from "../src/index.js"
import { countingTestClock } from "./fixtures/Model.js"

/** What the hooks of `Leaky` report. */
class Tracker extends Context.Service<Tracker, {
  /** The fiber of every record (by `<Resource>/<id>`), captured in its create action. */
  readonly fibers: Map<string, Fiber.Fiber<unknown, unknown>>
  /** `watcher <id>` and `block <id>` when those were interrupted. */
  readonly interrupted: Array<string>
  /** Announces `block <id>` when a blocking change has started. */
  readonly entered: Queue.Queue<string>
  /** What destroy hooks ran. */
  readonly destroyed: Array<string>
}>()("test/Leaks/Tracker") {}

const makeTracker = Effect.map(
  Queue.unbounded<string>(),
  (entered) => Tracker.of({ fibers: new Map(), interrupted: [], entered, destroyed: [] })
)

const blockForever = (name: string) =>
  Effect.gen(function*() {
    const tracker = yield* Tracker
    yield* Queue.offer(tracker.entered, name)
    return yield* Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => tracker.interrupted.push(name))))
  })

const leakyFields = { id: Schema.String, mode: Schema.String, n: Schema.Int }

/**
 * A record that reports its own fiber. Its create action captures the
 * record's fiber and forks a watcher (a child of that fiber, reporting
 * `watcher <id>` when interrupted); with `mode: "blockCreate"` the create
 * action never ends. `block` never ends either; `explode` dies. The primary
 * destroy writes `destroy <id>`.
 */
const makeLeaky = (name: string, options: { readonly idle?: string; readonly restart?: Resource.RestartPolicy }) =>
  Resource.make(name, {
    fields: leakyFields,
    primaryKey: ["id"],
    ...(options.idle === undefined ? {} : { inactivityTimeout: options.idle as "1 minute" }),
    restart: options.restart ?? "never",
    actions: {
      create: Action.create({
        accept: ["id", "mode", "n"],
        change: (cs) =>
          Effect.gen(function*() {
            const tracker = yield* Tracker
            const id = cs.data.id as string
            yield* Effect.withFiber((fiber) => Effect.sync(() => tracker.fibers.set(`${name}/${id}`, fiber)))
            if (cs.data.mode === "blockCreate") yield* blockForever(`create ${name} ${id}`)
            return Changeset.after(cs, (record: { readonly id: string }) =>
              Effect.as(
                Effect.forkChild(
                  Effect.never.pipe(
                    Effect.onInterrupt(() => Effect.sync(() => tracker.interrupted.push(`watcher ${id}`)))
                  ),
                  { startImmediately: true }
                ),
                record
              ))
          })
      }),
      bump: Action.update({ change: (cs) => Changeset.set(cs, "n", Changeset.get(cs, "n") + 1) }),
      block: Action.update({ change: (cs) => Effect.as(blockForever(`block ${name} ${cs.data.id}`), cs) }),
      explode: Action.update({ change: (cs) => Effect.as(Effect.die(new Error("boom")), cs) }),
      destroy: Action.destroy({
        change: (cs) =>
          Changeset.after(cs, (record: { readonly id: string }) =>
            Tracker.useSync((t) => {
              t.destroyed.push(`destroy ${record.id}`)
              return record
            }))
      })
    }
  })

/** Idle after a minute; removed on its first crash. */
const Expiring = makeLeaky("Expiring", { idle: "1 minute" })
/** No timeouts; restarted with its create input. */
const Lasting = makeLeaky("Lasting", { restart: "initial" })
/** Idle after an hour: its deadlines sit in the expiry queue long after a destroy. */
const LongLived = makeLeaky("LongLived", { idle: "1 hour" })

const resources = [Expiring, Lasting, LongLived] as const

const quiet = Effect.provideService(References.MinimumLogLevel, "None")

const tagOf = (exit: Exit.Exit<unknown, unknown> | undefined): string =>
  exit === undefined
    ? "running"
    : Exit.isSuccess(exit)
    ? "Success"
    : Cause.hasInterruptsOnly(exit.cause)
    ? "Interrupted"
    : ((Cause.findErrorOption(exit.cause) as any).value?._tag ?? "Defect")

/** Lets other fibers run for `turns` scheduler turns. */
const turns = (n: number) => Effect.repeat(Effect.yieldNow, { times: n - 1 })

/** A Store in a scope of its own: run Store effects in it, close its scope, watch its hooks and clock. */
interface OpenStore {
  readonly run: <X, Y>(effect: Effect.Effect<X, Y, Store.Store>) => Effect.Effect<X, Y>
  readonly close: Effect.Effect<void>
  readonly tracker: Tracker["Service"]
  readonly clock: Effect.Success<typeof countingTestClock>
}

/** Builds the Store in a scope of its own, on a counting `TestClock`. */
const withOpenStore = <A, E, R>(body: (store: OpenStore) => Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const clock = yield* countingTestClock
    const tracker = yield* makeTracker
    const scope = yield* Scope.make()
    const layer = Store.layer(resources).pipe(Layer.provide(Layer.succeed(Tracker, tracker))) as Layer.Layer<
      Store.Store
    >
    const context = yield* Layer.buildWithScope(layer, scope).pipe(Effect.provideService(Clock.Clock, clock.clock))
    return yield* body({
      run: (effect) => Effect.provideContext(effect, context),
      close: Scope.close(scope, Exit.void),
      tracker,
      clock
    })
  }).pipe(quiet)

describe("Leaks", () => {
  /**
   * Idle records of every kind, records waiting on their expiry, and work under
   * way at the close: a create whose action never ends, an update that never
   * ends with three callers queued behind it (taken in the same batch), and
   * another blocked update. Then the scope closes.
   */
  const closeWithWorkUnderWay = (store: OpenStore) =>
    Effect.gen(function*() {
      const { clock, close, run, tracker } = store
      for (const r of resources) {
        for (const id of ["a", "b", "c"]) yield* run(Store.create(r, "create", { id, mode: "", n: 0 }))
      }
      yield* run(Store.create(Expiring, "create", { id: "busy", mode: "", n: 0 }))
      yield* run(Store.create(Lasting, "create", { id: "busy", mode: "", n: 0 }))
      yield* TestClock.adjust("30 seconds") // the expiry fibers are asleep
      assert.isAbove(clock.sleeping(), 0, "the expiry fibers sleep on the clock")
      const wheels = [...clock.sleepers]

      const creating = yield* Effect.forkChild(
        run(Store.create(Expiring, "create", { id: "stuck", mode: "blockCreate", n: 0 })),
        { startImmediately: true }
      )
      const blocked = yield* Effect.forkChild(run(Store.update(Expiring, { id: "busy" }, "block")), {
        startImmediately: true
      })
      const queued = yield* Effect.forEach([1, 2, 3], () =>
        Effect.forkChild(run(Store.update(Expiring, { id: "busy" }, "bump")), { startImmediately: true }))
      const blockedToo = yield* Effect.forkChild(run(Store.update(Lasting, { id: "busy" }, "block")), {
        startImmediately: true
      })
      const entered = [
        yield* Queue.take(tracker.entered),
        yield* Queue.take(tracker.entered),
        yield* Queue.take(tracker.entered)
      ]
      assert.sameMembers(entered, ["create Expiring stuck", "block Expiring busy", "block Lasting busy"])
      // one more caller, queued after the blocked update had started
      const late = yield* Effect.forkChild(run(Store.update(Lasting, { id: "busy" }, "bump")), {
        startImmediately: true
      })

      const recordFibers = [...tracker.fibers.values()]
      assert.strictEqual(recordFibers.length, 3 * 3 + 2 + 1, "every record reported its fiber")
      assert.isTrue(
        recordFibers.every((f) =>
          f.pollUnsafe() === undefined
        ),
        "every record fiber is alive before the close"
      )

      yield* close
      yield* turns(10)
      return { wheels, recordFibers, callers: { creating, blocked, queued, blockedToo, late } }
    })

  it.effect("closing the layer's scope ends every record fiber, blocked hook, forked child and expiry fiber", () =>
    withOpenStore((store) =>
      Effect.gen(function*() {
        const { clock, run, tracker } = store
        const { recordFibers, wheels } = yield* closeWithWorkUnderWay(store)

        // every record fiber, and with them the children their hooks forked, ended
        assert.deepStrictEqual(recordFibers.map((f) => tagOf(f.pollUnsafe())).filter((t) => t !== "Interrupted"), [])
        const watchers = tracker.interrupted.filter((s) => s.startsWith("watcher")).sort()
        assert.deepStrictEqual(
          watchers,
          [...resources.flatMap(() => ["a", "b", "c"]), "busy", "busy"].map((id) => `watcher ${id}`).sort()
        )
        // the hooks blocked forever were interrupted
        assert.sameMembers(tracker.interrupted.filter((s) => !s.startsWith("watcher")), [
          "create Expiring stuck",
          "block Expiring busy",
          "block Lasting busy"
        ])
        // the expiry fibers ended, and nothing sleeps on the clock
        assert.deepStrictEqual(wheels.map((f) => tagOf(f.pollUnsafe())).filter((t) => t !== "Interrupted"), [])
        assert.strictEqual(clock.sleeping(), 0, "no fiber asleep on the clock")

        // time moving on runs nothing: no expiry, no destroy hook, no sleeper woken
        yield* TestClock.adjust("2 hours")
        yield* turns(10)
        assert.deepStrictEqual(tracker.destroyed, [])
        assert.strictEqual(clock.sleeping(), 0)

        // callers after the close get StoreClosed, whatever they ask
        const after = [
          yield* Effect.exit(run(Store.create(Lasting, "create", { id: "late", mode: "", n: 0 }))),
          yield* Effect.exit(run(Store.update(Lasting, { id: "a" }, "bump"))),
          yield* Effect.exit(run(Store.destroy(Lasting, { id: "a" }))),
          yield* Effect.exit(run(Store.get(Lasting, { id: "a" }))),
          yield* Effect.exit(run(Store.keepAlive(Lasting, { id: "a" }))),
          yield* Effect.exit(run(Store.read(Query.make(Lasting))))
        ]
        assert.deepStrictEqual(after.map(tagOf), after.map(() => "StoreClosed"))
      })
    ))

  it.effect("callers in flight when the scope closes get StoreClosed: the running call, a create, and calls queued behind", () =>
    withOpenStore((store) =>
      Effect.gen(function*() {
        const { callers } = yield* closeWithWorkUnderWay(store)
        const state = {
          creating: tagOf(callers.creating.pollUnsafe()),
          blocked: tagOf(callers.blocked.pollUnsafe()),
          blockedToo: tagOf(callers.blockedToo.pollUnsafe()),
          late: tagOf(callers.late.pollUnsafe()),
          queued: callers.queued.map((f) => tagOf(f.pollUnsafe()))
        }
        assert.deepStrictEqual(state, {
          creating: "StoreClosed",
          blocked: "StoreClosed",
          blockedToo: "StoreClosed",
          late: "StoreClosed",
          // taken from the mailbox in the same batch as the blocked call: they must not hang forever
          queued: ["StoreClosed", "StoreClosed", "StoreClosed"]
        })
      })
    ))

  it.effect("the events stream ends when the layer's scope closes", () =>
    withOpenStore(({ close, run }) =>
      Effect.gen(function*() {
        const collecting = yield* Effect.forkChild(run(Stream.runCollect(Store.events)), { startImmediately: true })
        yield* turns(10)
        yield* run(Store.create(Lasting, "create", { id: "x", mode: "", n: 0 }))
        yield* close
        yield* turns(10)
        const exit = collecting.pollUnsafe()
        assert.isDefined(exit, "the stream is still running after the close")
        assert.strictEqual(tagOf(exit), "Success", "the stream ended (rather than failed or was interrupted)")
        if (exit !== undefined && Exit.isSuccess(exit)) {
          assert.deepStrictEqual([...exit.value].map((e) => e._tag), ["Created"])
        }
      })
    ))

  it.effect("while the store is open, a record's fiber ends when it is destroyed, expires or fails for good", () =>
    withOpenStore(({ close, run, tracker }) =>
      Effect.gen(function*() {
        yield* run(Store.create(Lasting, "create", { id: "destroyed", mode: "", n: 0 }))
        yield* run(Store.create(Expiring, "create", { id: "expired", mode: "", n: 0 }))
        yield* run(Store.create(Expiring, "create", { id: "failed", mode: "", n: 0 }))
        yield* run(Store.create(Lasting, "create", { id: "restarted", mode: "", n: 0 }))
        yield* run(Store.create(Lasting, "create", { id: "alive", mode: "", n: 0 }))
        yield* run(Store.destroy(Lasting, { id: "destroyed" }))
        yield* Effect.exit(run(Store.update(Expiring, { id: "failed" }, "explode")))
        yield* Effect.exit(run(Store.update(Lasting, { id: "restarted" }, "explode")))
        yield* TestClock.adjust("1 minute")
        yield* turns(10)
        const state = Object.fromEntries([...tracker.fibers].map(([id, f]) => [id, tagOf(f.pollUnsafe())]))
        assert.deepStrictEqual(state, {
          "Lasting/destroyed": "Success",
          "Expiring/expired": "Success",
          "Expiring/failed": "Success",
          // a restart keeps the record's fiber: the same fiber serves the restarted record
          "Lasting/restarted": "running",
          "Lasting/alive": "running"
        })
        // the watchers of the ended records were interrupted with them
        assert.sameMembers(tracker.interrupted, ["watcher destroyed", "watcher expired", "watcher failed"])
        yield* close
      })
    ))

  it.effect("a destroyed record is garbage: nothing keeps it (registry, expiry queue, events)", () =>
    withOpenStore(({ close, run }) =>
      Effect.gen(function*() {
        setFlagsFromString("--expose-gc")
        const gc: () => void = runInNewContext("gc")
        const count = 500
        const alive = (refs: ReadonlyArray<WeakRef<object>>) => refs.filter((r) => r.deref() !== undefined).length
        const cycle = (r: typeof Lasting) =>
          Effect.gen(function*() {
            const refs: Array<WeakRef<object>> = []
            for (let i = 0; i < count; i++) {
              const record = yield* run(Store.create(r, "create", { id: `${r.name}-${i}`, mode: "", n: i }))
              refs.push(new WeakRef(record))
              yield* run(Store.destroy(r, record))
            }
            return refs
          })
        const without = yield* cycle(Lasting)
        const withTimeout = yield* cycle(LongLived)
        for (let i = 0; i < 3; i++) {
          yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
          gc()
        }
        assert.isAtMost(alive(without), 1, "destroyed records of a resource without timeouts")
        assert.isAtMost(alive(withTimeout), 1, "destroyed records of a resource with an inactivity timeout")
        yield* close
      })
    ))
})
