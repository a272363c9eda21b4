/**
 * Fault injection: changes and hooks that die at random, from a seeded
 * generator, while many callers use the records concurrently and the
 * `TestClock` moves between rounds.
 *
 * For every run the suite checks that
 *
 * - every call completes, or fails with a typed error, within a bounded
 *   number of scheduler turns (no hang, no defect, no interruption reaches a
 *   caller);
 * - every injected crash in a call reaches its caller as `RecordCrashed`, and
 *   is answered by exactly one `Restarted` or `Failed` event;
 * - restart policy and OTP intensity hold: replaying the crashes the chaos
 *   injected (crashes of a re-run create action included) through the OTP
 *   rule predicts the exact sequence of `Restarted` and `Failed` events;
 * - `"lastState"` restarts resume the last committed state, `"initial"` the
 *   created one, `"never"` removes at once; a removed record is `NotFound`
 *   from the next round on;
 * - the final state of every record is the record of its last event;
 * - records nobody called are untouched.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Clock, Effect, Exit, type Fiber, PubSub, References, Schema } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import { Action, Changeset, Resource, Store } from "../src/index.js"
import { numRuns, seed } from "./fixtures/Model.js"
import { prng } from "./fixtures/Random.js"

// ---------------------------------------------------------------------------
// Chaos: where and when hooks die
// ---------------------------------------------------------------------------

type Site = "create" | "created" | "change" | "throw" | "before" | "after" | "destroy"

interface Crash {
  readonly id: string
  readonly site: Site
  readonly at: number
}

/**
 * The chaos of the current run (runs are sequential). Only `armed` records
 * crash: a record is armed once created, so a crash in a create action is a
 * crash of a re-run (`restart: "initial"`), never of the first create.
 */
const chaos = {
  random: prng(1),
  probability: 0,
  /** When set, decides instead of the generator. */
  script: undefined as ((id: string, site: Site) => boolean) | undefined,
  armed: new Set<string>(),
  log: [] as Array<Crash>,
  now: () => 0
}

const roll = (id: string, site: Site): boolean => {
  if (!chaos.armed.has(id)) return false
  if (chaos.script !== undefined ? !chaos.script(id, site) : chaos.random() >= chaos.probability) return false
  chaos.log.push({ id, site, at: chaos.now() })
  return true
}

const maybeDie = <A>(id: string, site: Site, value: A): Effect.Effect<A> =>
  Effect.suspend(() => (roll(id, site) ? Effect.die(new Error(`chaos in ${site} of ${id}`)) : Effect.succeed(value)))

const fields = { id: Schema.String, a: Schema.Int, label: Schema.String }
type Rec = Schema.Struct.Type<typeof fields>

const makeChaotic = (name: string, restart: Resource.RestartPolicy, maxRestarts: number, withinMs: number) =>
  Resource.make(name, {
    fields,
    primaryKey: ["id"],
    restart,
    restartIntensity: { maxRestarts, within: `${withinMs} millis` },
    actions: {
      create: Action.create({
        accept: ["id", "a", "label"],
        change: (cs) =>
          Effect.map(
            maybeDie(cs.data.id, "create", cs),
            (cs) => Changeset.after(cs, (r: Rec) => maybeDie(r.id, "created", r))
          )
      }),
      work: Action.update({
        arguments: { n: Schema.Int },
        change: (cs) => {
          if (roll(cs.data.id, "throw")) throw new Error(`chaos thrown by the change of ${cs.data.id}`)
          return Effect.map(maybeDie(cs.data.id, "change", cs), (cs) =>
            cs.pipe(
              Changeset.set("a", Changeset.get(cs, "a") + cs.arguments.n),
              Changeset.before((cs) => Effect.andThen(Effect.yieldNow, maybeDie(cs.data.id, "before", cs))),
              Changeset.after((r: Rec) => Effect.andThen(Effect.yieldNow, maybeDie(r.id, "after", r)))
            ))
        }
      }),
      destroy: Action.destroy({ change: (cs) => maybeDie(cs.data.id, "destroy", cs) })
    }
  })

const policies = {
  Restarting: { restart: "initial", maxRestarts: 3, withinMs: 5_000 },
  Resuming: { restart: "lastState", maxRestarts: 2, withinMs: 3_000 },
  Brittle: { restart: "never", maxRestarts: 3, withinMs: 5_000 }
} as const
type PolicyName = keyof typeof policies

const chaotic = {
  Restarting: makeChaotic("Restarting", "initial", 3, 5_000),
  Resuming: makeChaotic("Resuming", "lastState", 2, 3_000),
  Brittle: makeChaotic("Brittle", "never", 3, 5_000)
}
const policyNames = Object.keys(chaotic) as ReadonlyArray<PolicyName>

// ---------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------

interface Call {
  readonly policy: PolicyName
  readonly record: number
  readonly op: "work" | "destroy" | "get" | "keepAlive"
  readonly n: number
}

interface Plan {
  readonly seed: number
  readonly probability: number
  readonly rounds: ReadonlyArray<{ readonly calls: ReadonlyArray<Call>; readonly advance: number }>
}

const RECORDS = 2

const callArb: fc.Arbitrary<Call> = fc.record({
  policy: fc.constantFrom(...policyNames),
  record: fc.nat(RECORDS - 1),
  op: fc.oneof(
    { weight: 8, arbitrary: fc.constant("work" as const) },
    { weight: 1, arbitrary: fc.constant("destroy" as const) },
    { weight: 1, arbitrary: fc.constant("get" as const) },
    { weight: 1, arbitrary: fc.constant("keepAlive" as const) }
  ),
  n: fc.integer({ min: 1, max: 9 })
})

const planArb: fc.Arbitrary<Plan> = fc.record({
  seed: fc.integer(),
  probability: fc.constantFrom(0.05, 0.15, 0.3, 0.5),
  rounds: fc.array(
    fc.record({
      calls: fc.array(callArb, { minLength: 1, maxLength: 12 }),
      advance: fc.constantFrom(0, 1, 500, 1_000, 2_999, 3_000, 5_000)
    }),
    { minLength: 1, maxLength: 8 }
  )
})

// ---------------------------------------------------------------------------
// The check
// ---------------------------------------------------------------------------

/** Lets other fibers run until every fiber is done, for at most `turns` scheduler turns; the fibers not done. */
const settle = (fibers: ReadonlyArray<Fiber.Fiber<unknown, unknown>>, turns: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < turns && fibers.some((f) => f.pollUnsafe() === undefined); i++) yield* Effect.yieldNow
    return fibers.filter((f) => f.pollUnsafe() === undefined).length
  })

const typed = new Set(["NotFound", "RecordCrashed", "StoreClosed"])

const errorTag = (exit: Exit.Exit<unknown, unknown>): string | undefined =>
  Exit.isFailure(exit) ? (Cause.findErrorOption(exit.cause) as any).value?._tag : undefined

/**
 * Replays the crashes of one record through OTP's rule: each crash at `t` is
 * a restart attempt counting the earlier attempts at `s` with `t - s <
 * within`; over `maxRestarts` (or policy `"never"`) it is `Failed`; a crash
 * in the create action (a re-run) is another attempt of the same restart.
 * Returns the events the restarts must publish, in order.
 */
const expectedRestarts = (policy: PolicyName, crashes: ReadonlyArray<Crash>): Array<"Restarted" | "Failed"> => {
  const { maxRestarts, restart, withinMs } = policies[policy]
  const out: Array<"Restarted" | "Failed"> = []
  let history: Array<number> = []
  for (let i = 0; i < crashes.length; i++) {
    const c = crashes[i]!
    history = history.filter((t) => c.at - t < withinMs)
    history.push(c.at)
    if (restart === "never" || history.length > maxRestarts) {
      out.push("Failed")
      break
    }
    // a re-run that crashes again is not a Restarted: the next crash continues this restart
    const next = crashes[i + 1]
    if (next !== undefined && (next.site === "create" || next.site === "created")) continue
    out.push("Restarted")
  }
  return out
}

const runPlan = (plan: Plan) =>
  Effect.gen(function*() {
    chaos.random = prng(plan.seed)
    chaos.probability = plan.probability
    chaos.script = undefined
    chaos.armed = new Set()
    chaos.log = []
    const clock = yield* Clock.Clock
    chaos.now = () => clock.currentTimeMillisUnsafe()

    const id = (policy: PolicyName, record: number) => `${policy}-${record}`
    const created = new Map<string, Rec>()
    for (const policy of policyNames) {
      for (let r = 0; r < RECORDS; r++) {
        const rec = yield* Store.create(chaotic[policy], "create", { id: id(policy, r), a: 100 * r, label: policy })
        created.set(rec.id, rec)
        chaos.armed.add(rec.id)
      }
    }
    // bystanders: never called, never armed
    const bystanders = yield* Effect.forEach(policyNames, (policy) =>
      Effect.map(
        Store.create(chaotic[policy], "create", { id: `${policy}-bystander`, a: 7, label: "quiet" }),
        (record) => ({ policy, record })
      ))
    const events = yield* Store.subscribe

    const exits: Array<{ readonly call: Call; readonly round: number; readonly exit: Exit.Exit<unknown, unknown> }> = []
    const removedInRound = new Map<string, number>()
    const all: Array<Store.Event> = []
    for (const [round, { advance, calls }] of plan.rounds.entries()) {
      const fibers = yield* Effect.forEach(calls, (call) => {
        const r = chaotic[call.policy]
        const key = { id: id(call.policy, call.record) }
        const effect: Effect.Effect<unknown, { readonly _tag: string }, Store.Store> = call.op === "work"
          ? Store.update(r, key, "work", { n: call.n })
          : call.op === "destroy"
          ? Store.destroy(r, key)
          : call.op === "get"
          ? Store.get(r, key)
          : Store.keepAlive(r, key)
        return Effect.forkChild(effect, { startImmediately: true })
      })
      const pending = yield* settle(fibers, 5_000)
      assert.strictEqual(pending, 0, `round ${round}: ${pending} calls still running after 5000 turns`)
      for (const [i, fiber] of fibers.entries()) {
        const exit = fiber.pollUnsafe()!
        const call = calls[i]!
        if (Exit.isFailure(exit)) {
          assert.isFalse(Cause.hasDies(exit.cause), `a defect reached a caller: ${Cause.pretty(exit.cause)}`)
          assert.isFalse(Cause.hasInterrupts(exit.cause), "a caller was interrupted")
          const tag = errorTag(exit)
          assert.isTrue(tag !== undefined && typed.has(tag), `unexpected error ${tag}`)
          // a record removed in an earlier round is gone for good
        }
        const removed = removedInRound.get(id(call.policy, call.record))
        if (removed !== undefined && removed < round) assert.strictEqual(errorTag(exit), "NotFound", `round ${round}`)
        exits.push({ call, round, exit })
      }
      const seen = yield* PubSub.takeUpTo(events, 100_000)
      all.push(...seen)
      for (const e of seen) {
        const key = (e.key as { id: string }).id
        if ((e._tag === "Failed" || e._tag === "Destroyed") && !removedInRound.has(key)) removedInRound.set(key, round)
      }
      if (advance > 0) yield* TestClock.adjust(advance)
    }

    for (const policy of policyNames) {
      for (let r = 0; r < RECORDS; r++) {
        const key = id(policy, r)
        const mine = all.filter((e) => (e.key as { id: string }).id === key)
        const callExits = exits.filter((x) => id(x.call.policy, x.call.record) === key)
        const crashedCalls = callExits.filter((x) => errorTag(x.exit) === "RecordCrashed").length
        const crashes = chaos.log.filter((c) => c.id === key)
        const inCalls = crashes.filter((c) => c.site !== "create" && c.site !== "created").length
        assert.strictEqual(crashedCalls, inCalls, `${key}: every crash in a call reaches its caller as RecordCrashed`)

        const restarts = mine.filter((e) => e._tag === "Restarted" || e._tag === "Failed").map((e) => e._tag)
        assert.strictEqual(restarts.length, inCalls, `${key}: one Restarted or Failed per crash`)
        assert.deepStrictEqual(
          restarts,
          expectedRestarts(policy, crashes),
          `${key}: restart intensity (crashes ${JSON.stringify(crashes)})`
        )

        // what each restart resumed with
        let last = created.get(key)
        for (const e of mine) {
          const rec = e.record as Rec
          if (e._tag === "Restarted") {
            assert.deepStrictEqual(
              rec,
              policies[policy].restart === "initial" ? created.get(key) : last,
              `${key}: restarted with`
            )
          }
          last = rec
        }
        assert.strictEqual(
          mine.filter((e) => e._tag === "Updated").length,
          callExits.filter((x) => x.call.op === "work" && Exit.isSuccess(x.exit)).length,
          `${key}: one Updated per successful update`
        )
        const final = yield* Effect.exit(Store.get(chaotic[policy], { id: key }))
        const lastEvent = mine.at(-1)
        if (lastEvent !== undefined && (lastEvent._tag === "Failed" || lastEvent._tag === "Destroyed")) {
          assert.strictEqual(errorTag(final), "NotFound", `${key}: removed`)
        } else {
          const expected = lastEvent === undefined ? created.get(key) : lastEvent.record
          assert.deepStrictEqual(Exit.isSuccess(final) ? final.value : final, expected, `${key}: final state`)
        }
      }
    }
    for (const { policy, record } of bystanders) {
      assert.deepStrictEqual(yield* Store.get(chaotic[policy], record), record)
      assert.isTrue(all.every((e) => (e.key as { id: string }).id !== record.id), `${record.id} untouched`)
    }
    return { crashes: chaos.log.length, calls: exits.length }
  })

const quiet = Effect.provideService(References.MinimumLogLevel, "None")

const run = (plan: Plan) =>
  runPlan(plan).pipe(
    Effect.scoped,
    Effect.provide(Store.layer(Object.values(chaotic))),
    Effect.provide(TestClock.layer()),
    quiet
  )

describe("Faults", () => {
  it(
    "random crashes in changes and hooks: calls complete with typed errors, policy, intensity and events hold",
    async () => {
      let crashes = 0
      await fc.assert(
        fc.asyncProperty(planArb, (plan) => Effect.runPromise(run(plan)).then((r) => void (crashes += r.crashes))),
        { numRuns: numRuns(300, 5_000), seed: seed(1955) }
      )
      assert.isAbove(crashes, 100, "the chaos did inject crashes")
    },
    120_000
  )

  it.effect.each(policyNames)(
    "%s: calls queued behind a crash are served after the restart, in order",
    (policy) =>
      Effect.gen(function*() {
        chaos.armed = new Set()
        chaos.log = []
        const r = chaotic[policy]
        yield* Store.create(r, "create", { id: "q", a: 0, label: "q" })
        yield* Store.update(r, { id: "q" }, "work", { n: 5 })
        const events = yield* Store.subscribe
        chaos.armed.add("q")
        // the first call dies in its after hook (its hooks yield first: the other calls queue behind it)
        chaos.script = (_, site) => site === "after" && chaos.log.length === 0
        const exits = yield* Effect.forEach(
          [1, 2, 3],
          (n) => Effect.exit(Store.update(r, { id: "q" }, "work", { n })),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(errorTag(exits[0]!), "RecordCrashed")
        const seen = (yield* PubSub.takeUpTo(events, 100)).map((e) => [e._tag, (e.record as Rec).a])
        if (policy === "Brittle") {
          assert.deepStrictEqual(exits.slice(1).map(errorTag), ["NotFound", "NotFound"])
          assert.deepStrictEqual(seen, [["Failed", 5]])
        } else {
          const base = policy === "Restarting" ? 0 : 5
          assert.deepStrictEqual(exits.slice(1).map((e) => Exit.isSuccess(e) ? (e.value as Rec).a : e), [
            base + 2,
            base + 5
          ])
          assert.deepStrictEqual(seen, [["Restarted", base], ["Updated", base + 2], ["Updated", base + 5]])
        }
      }).pipe(Effect.provide(Store.layer(Object.values(chaotic))), quiet)
  )
})
