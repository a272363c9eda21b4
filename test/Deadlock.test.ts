import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Queue, Schema } from "effect"
import { Action, Changeset, Resource, Store } from "effect-gen-server"
import { TestClock } from "effect/testing"

// both hooks must be inside their actions before either calls the other
class Barrier extends Context.Service<Barrier, {
  readonly arrive: Effect.Effect<void>
}>()("test/Deadlock/Barrier") {}

const barrier = (parties: number) =>
  Layer.effect(
    Barrier,
    Effect.gen(function*() {
      let arrived = 0
      const open = yield* Deferred.make<void>()
      return Barrier.of({
        arrive: Effect.suspend(() => {
          arrived++
          return arrived >= parties ? Deferred.succeed(open, undefined) : Deferred.await(open)
        }).pipe(Effect.asVoid)
      })
    })
  )

// Peer's hook calls another Peer: an annotated accessor keeps its type from being circular
const peer = (): Resource.Any => Peer

const Peer = Resource.make("Peer", {
  fields: { id: Schema.String, other: Schema.String, pokes: Schema.Int },
  primaryKey: ["id"],
  actions: {
    noop: Action.update({ change: (cs) => Changeset.set(cs, "pokes", Changeset.get(cs, "pokes") + 1) }),
    poke: Action.update({
      change: (cs) =>
        Changeset.before(cs, (cs) =>
          Effect.gen(function*() {
            yield* (yield* Barrier).arrive
            yield* Store.update(peer(), { id: cs.data.other } as never, "noop" as never)
            return cs
          }))
    })
  }
})

describe("deadlock detection", () => {
  it.live("two records whose hooks call each other from two callers: one call is refused, none hangs", () =>
    Effect.gen(function*() {
      yield* Store.create(Peer, "create", { id: "a", other: "b", pokes: 0 })
      yield* Store.create(Peer, "create", { id: "b", other: "a", pokes: 0 })
      const [a, b] = yield* Effect.all([
        Effect.result(Store.update(Peer, { id: "a" }, "poke")),
        Effect.result(Store.update(Peer, { id: "b" }, "poke"))
      ], { concurrency: "unbounded" }).pipe(
        Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.die("deadlocked") })
      )
      const failures = [a, b].filter((r) => r._tag === "Failure")
      assert.strictEqual(failures.length, 1)
      const failure = failures[0]!
      assert.isTrue(failure._tag === "Failure" && failure.failure._tag === "ActionError")
      assert.match(failure._tag === "Failure" ? failure.failure.message : "", /deadlock/)
      // the refused poke changed nothing; the other went through and poked its peer once
      const pokes = [(yield* Store.get(Peer, { id: "a" })).pokes, (yield* Store.get(Peer, { id: "b" })).pokes]
      assert.deepStrictEqual(pokes.sort(), [0, 1])
      // neither record is left waiting: both still serve calls
      yield* Store.update(Peer, { id: "a" }, "noop")
      yield* Store.update(Peer, { id: "b" }, "noop")
    }).pipe(Effect.provide(Store.layer([Peer]).pipe(Layer.provide(barrier(2))))))
})

// ---------------------------------------------------------------------------
// The wait-for graph is keyed by ids and tied to the action that waits
// ---------------------------------------------------------------------------

/** Gates the hooks below wait at, and what they saw. */
class Gates extends Context.Service<Gates, {
  readonly holdB: Deferred.Deferred<void>
  readonly holdA: Deferred.Deferred<void>
  readonly entered: Queue.Queue<string>
  readonly seen: Queue.Queue<Exit.Exit<unknown, unknown>>
}>()("test/Deadlock/Gates") {}

const gates = Layer.effect(
  Gates,
  Effect.gen(function*() {
    return Gates.of({
      holdB: yield* Deferred.make<void>(),
      holdA: yield* Deferred.make<void>(),
      entered: yield* Queue.unbounded<string>(),
      seen: yield* Queue.unbounded<Exit.Exit<unknown, unknown>>()
    })
  })
)

const node = (): Resource.Any => Node
const child = (): Resource.Any => Child

class Refused extends Error {}

const Node = Resource.make("Node", {
  fields: { id: Schema.String, value: Schema.Int },
  primaryKey: ["id"],
  actions: {
    noop: Action.update({}),
    // a's after hook creates a child whose create hook calls b
    spawn: Action.update({
      change: (cs) =>
        Changeset.after(cs, (record) =>
          Effect.gen(function*() {
            yield* (yield* Barrier).arrive
            yield* Store.create(child(), "create" as never, { id: "c", target: "b" } as never)
            return record
          }))
    }),
    // b's hook calls a
    callA: Action.update({
      change: (cs) =>
        Changeset.before(cs, (cs) =>
          Effect.gen(function*() {
            yield* (yield* Barrier).arrive
            yield* Store.update(node(), { id: "a" } as never, "noop" as never)
            return cs
          }))
    }),
    // b is held busy until the test lets it go
    hold: Action.update({
      change: (cs) =>
        Changeset.before(cs, (cs) =>
          Effect.gen(function*() {
            const g = yield* Gates
            yield* Queue.offer(g.entered, "hold")
            yield* Deferred.await(g.holdB)
            return cs
          }))
    }),
    // b reads a, and reports what it saw
    readA: Action.update({
      change: (cs) =>
        Changeset.before(cs, (cs) =>
          Effect.gen(function*() {
            const g = yield* Gates
            const a = yield* Effect.exit(Store.get(node(), { id: "a" } as never))
            yield* Queue.offer(g.seen, Exit.map(a, (r: any) => r.value))
            return cs
          }))
    }),
    // a calls b, and gives up after a second
    tryB: Action.update({
      change: (cs) =>
        Changeset.before(cs, (cs) =>
          Store.update(node(), { id: "b" } as never, "readA" as never).pipe(
            Effect.timeout("1 second"),
            Effect.ignore,
            Effect.as(cs)
          ))
    }),
    // a's new value is pending while its after hook waits, then the action refuses
    setPending: Action.update({
      change: (cs) =>
        Changeset.after(Changeset.set(cs, "value", 99), () =>
          Effect.gen(function*() {
            const g = yield* Gates
            yield* Queue.offer(g.entered, "setPending")
            yield* Deferred.await(g.holdA)
            return yield* Effect.fail(new Refused("no"))
          }))
    }),
    // a forks a call to b and does not wait for it
    forkB: Action.update({
      change: (cs) =>
        Changeset.after(cs, (record) =>
          Effect.as(
            Effect.forkDetach(
              Effect.exit(Store.update(node(), { id: "b" } as never, "callAWhenLetGo" as never)).pipe(
                Effect.flatMap((exit) => Gates.use((g) => Queue.offer(g.seen, exit)))
              )
            ),
            record
          ))
    }),
    // b calls a once the test lets it go
    callAWhenLetGo: Action.update({
      change: (cs) =>
        Changeset.before(cs, (cs) =>
          Effect.gen(function*() {
            yield* Deferred.await((yield* Gates).holdB)
            yield* Store.update(node(), { id: "a" } as never, "noop" as never)
            return cs
          }))
    })
  }
})

const Child = Resource.make("Child", {
  fields: { id: Schema.String, target: Schema.String },
  primaryKey: ["id"],
  actions: {
    create: Action.create({
      accept: ["id", "target"],
      change: (cs) =>
        Changeset.after(
          cs,
          (record: any) => Effect.as(Store.update(node(), { id: record.target } as never, "noop" as never), record)
        )
    })
  }
})

const dataLayers = [["genServer"], ["memory"]] as const

describe.each(dataLayers)("the wait-for graph (%s)", (dataLayer) => {
  const layer = (parties: number) =>
    Store.layer([Node, Child], { dataLayer }).pipe(Layer.provideMerge(Layer.merge(barrier(parties), gates)))

  it.live("a cycle through a record created by a hook is refused: a's create of c waits on c, c on b, b on a", () =>
    Effect.gen(function*() {
      yield* Store.create(Node, "create", { id: "a", value: 0 })
      yield* Store.create(Node, "create", { id: "b", value: 0 })
      const [a, b] = yield* Effect.all([
        Effect.result(Store.update(Node, { id: "a" }, "spawn")),
        Effect.result(Store.update(Node, { id: "b" }, "callA"))
      ], { concurrency: "unbounded" }).pipe(
        Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.die("deadlocked") })
      )
      const failures = [a, b].filter((r) => r._tag === "Failure")
      assert.strictEqual(failures.length, 1)
      assert.match(failures[0]!._tag === "Failure" ? failures[0]!.failure.message : "", /deadlock|same record/)
      // neither record is left waiting
      yield* Store.update(Node, { id: "a" }, "noop")
      yield* Store.update(Node, { id: "b" }, "noop")
    }).pipe(Effect.provide(layer(2))))

  it.effect("a call that its caller gave up on lends the caller's pending state to nobody", () =>
    Effect.gen(function*() {
      const g = yield* Gates
      yield* Store.create(Node, "create", { id: "a", value: 0 })
      yield* Store.create(Node, "create", { id: "b", value: 0 })
      // b is busy; a's hook calls b and gives up after a second
      const heldB = yield* Effect.forkChild(Store.update(Node, { id: "b" }, "hold"))
      assert.strictEqual(yield* Queue.take(g.entered), "hold")
      const tried = yield* Effect.forkChild(Store.update(Node, { id: "a" }, "tryB"))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(tried)
      // a runs another action: 99 is pending while its after hook waits
      const pending = yield* Effect.forkChild(Effect.exit(Store.update(Node, { id: "a" }, "setPending")))
      assert.strictEqual(yield* Queue.take(g.entered), "setPending")
      // b now serves a's old call, and reads a: it sees a's committed state
      yield* Deferred.succeed(g.holdB, undefined)
      yield* Fiber.join(heldB)
      // (the memory layer runs a call in its caller's fiber: a call given up on is never served)
      if (dataLayer === "genServer") assert.deepStrictEqual(yield* Queue.take(g.seen), Exit.succeed(0))
      else assert.strictEqual(yield* Queue.size(g.seen), 0)
      yield* Deferred.succeed(g.holdA, undefined)
      assert.isTrue(Exit.isFailure(yield* Fiber.join(pending)))
      assert.strictEqual((yield* Store.get(Node, { id: "a" })).value, 0)
    }).pipe(Effect.provide(layer(1))))

  it.effect("a call forked by a hook that did not wait for it does not make its record look busy", () =>
    Effect.gen(function*() {
      const g = yield* Gates
      yield* Store.create(Node, "create", { id: "a", value: 0 })
      yield* Store.create(Node, "create", { id: "b", value: 0 })
      // a's action forks a call to b and ends
      yield* Store.update(Node, { id: "a" }, "forkB")
      // b's hook then calls a, which is idle
      yield* Deferred.succeed(g.holdB, undefined)
      const exit = yield* Queue.take(g.seen)
      assert.isTrue(Exit.isSuccess(exit), String(exit))
    }).pipe(Effect.provide(layer(1))))
})
