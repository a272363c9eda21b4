/**
 * Schedules against a model: random sequences of schedule, replace,
 * unschedule and clock moves on one record, compared after every step with
 * a plain model of what must have run (each schedule once, when due, in
 * order of due time; a name scheduled again replaces it; an unscheduled one
 * never runs) and of what is pending. On the GenServer and memory layers;
 * the conformance suite covers every layer's behaviour one case at a time.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric, References, Schema } from "effect"
import { Changeset, Metrics, Resource, Store } from "effect-gen-server"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import { numRuns, seed } from "./fixtures/Model.js"

/** A record that schedules `mark`s of itself; each run appends its tag to `log`. */
const Ticker = Resource.make("Ticker", {
  fields: { id: Schema.String, log: Schema.Array(Schema.String) },
  primaryKey: ["id"],
  actions: (Action) => ({
    plan: Action.update({
      arguments: { name: Schema.String, seconds: Schema.Int, tag: Schema.String },
      change: (cs) =>
        Changeset.schedule(cs, "mark", {
          after: `${cs.arguments.seconds} seconds`,
          name: cs.arguments.name,
          arguments: { tag: cs.arguments.tag }
        })
    }),
    drop: Action.update({
      arguments: { name: Schema.String },
      change: (cs) => Changeset.unschedule(cs, cs.arguments.name)
    }),
    mark: Action.update({
      arguments: { tag: Schema.String },
      change: (cs) => Changeset.set(cs, "log", [...cs.data.log, cs.arguments.tag])
    })
  })
})

type Command =
  | { readonly _tag: "Plan"; readonly name: string; readonly seconds: number }
  | { readonly _tag: "Drop"; readonly name: string }
  | { readonly _tag: "Wait"; readonly seconds: number }

const names = fc.constantFrom("a", "b", "c", "d")
const command: fc.Arbitrary<Command> = fc.oneof(
  // from 1 s: one due at once runs as soon as the record gets to it, between the commands of the sequence
  fc.record({ _tag: fc.constant("Plan" as const), name: names, seconds: fc.integer({ min: 1, max: 20 }) }),
  fc.record({ _tag: fc.constant("Drop" as const), name: names }),
  fc.record({ _tag: fc.constant("Wait" as const), seconds: fc.integer({ min: 0, max: 15 }) })
)

interface Pending {
  readonly name: string
  readonly due: number
  readonly tag: string
}

/** The model: pending schedules in the order they were made (a replaced one moves last), and the log. */
const step = (state: { now: number; pending: Array<Pending>; log: Array<string> }, c: Command, i: number) => {
  switch (c._tag) {
    case "Plan":
      state.pending = [...state.pending.filter((p) => p.name !== c.name), {
        name: c.name,
        due: state.now + c.seconds * 1000,
        tag: `${c.name}${i}`
      }]
      return
    case "Drop":
      state.pending = state.pending.filter((p) => p.name !== c.name)
      return
    case "Wait": {
      const until = state.now + c.seconds * 1000
      // what comes due, in order of due time (made earlier first on a tie)
      const due = state.pending.filter((p) => p.due <= until).sort((x, y) => x.due - y.due)
      state.log.push(...due.map((p) => p.tag))
      state.pending = state.pending.filter((p) => p.due > until)
      state.now = until
    }
  }
}

const run = (commands: ReadonlyArray<Command>, dataLayer: "genServer" | "memory") =>
  Effect.gen(function*() {
    const model = { now: 0, pending: [] as Array<Pending>, log: [] as Array<string> }
    const t = { id: "t" }
    yield* Store.create(Ticker, "create", { id: "t", log: [] })
    for (const [i, c] of commands.entries()) {
      step(model, c, i)
      if (c._tag === "Plan") {
        yield* Store.update(Ticker, t, "plan", { name: c.name, seconds: c.seconds, tag: `${c.name}${i}` })
      } else if (c._tag === "Drop") yield* Store.update(Ticker, t, "drop", { name: c.name })
      // a second at a time: runs due at the same second run in one turn, in order of due time
      else for (let s = 0; s < c.seconds; s++) yield* TestClock.adjust("1 second")
      const record = yield* Store.get(Ticker, t)
      assert.deepStrictEqual(record.log, model.log, `after command ${i}: ${JSON.stringify(c)}`)
      const pending = yield* Store.schedules(Ticker, t)
      assert.deepStrictEqual(
        pending.map((p) => [p.name, p.at.getTime(), p.arguments["tag"]]),
        [...model.pending].sort((x, y) => x.due - y.due).map((p) => [p.name, p.due, p.tag]),
        `pending after command ${i}: ${JSON.stringify(c)}`
      )
    }
  }).pipe(
    Effect.provide(Store.layer([Ticker], { dataLayer })),
    Effect.provide(TestClock.layer()),
    Effect.provideService(References.MinimumLogLevel, "None")
  )

describe("schedules against a model", () => {
  for (const dataLayer of ["genServer", "memory"] as const) {
    it(`random schedule, replace, unschedule and clock moves (${dataLayer})`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(command, { maxLength: 30 }),
          (commands) => Effect.runPromise(run(commands, dataLayer))
        ),
        { numRuns: numRuns(150, 3_000), seed: seed(1955) }
      )
    }, 120_000)
  }
})

describe("the pending schedules gauge", () => {
  for (const dataLayer of ["genServer", "memory"] as const) {
    it.effect(`counts the schedules of live records: made, run, and gone with their record, destroyed or expired (${dataLayer})`, () => {
      const Nag = Resource.make(`Nag${dataLayer}`, {
        fields: { id: Schema.String, n: Schema.Int },
        primaryKey: ["id"],
        inactivityTimeout: "1 hour",
        actions: (Action) => ({
          set: Action.create({
            accept: ["id"],
            change: (cs) =>
              cs.pipe(
                Changeset.set("n", 0),
                Changeset.schedule("nag", { after: "1 minute" }),
                Changeset.schedule("nag", { after: "2 hours", name: "late" })
              )
          }),
          nag: Action.update({ change: (cs) => Changeset.set(cs, "n", cs.data.n + 1) })
        })
      })
      const pending = Effect.map(
        Metric.value(Metric.withAttributes(Metrics.schedulesPending, { resource: Nag.name })),
        (state) => state.value
      )
      return Effect.gen(function*() {
        yield* Store.create(Nag, "set", { id: "a" })
        yield* Store.create(Nag, "set", { id: "b" })
        assert.strictEqual(yield* pending, 4)
        yield* TestClock.adjust("1 minute")
        assert.strictEqual(yield* pending, 2, "the runs consumed theirs")
        yield* Store.destroy(Nag, { id: "a" })
        assert.strictEqual(yield* pending, 1)
        // b expires (an hour idle) before its late one: gone with it, also where expiry is found on access
        yield* TestClock.adjust("1 hour")
        assert.strictEqual(yield* Effect.flip(Store.get(Nag, { id: "b" })).pipe(Effect.map((e) => e._tag)), "NotFound")
        assert.strictEqual(yield* pending, 0)
      }).pipe(
        Effect.provide(Store.layer([Nag], { dataLayer })),
        Effect.provideService(References.MinimumLogLevel, "None")
      )
    })
  }
})
