/**
 * What crosses a process boundary: every error a real Store produces and
 * every lifecycle event it publishes, encoded with its JSON codec, sent as a
 * JSON string and decoded, is equal to what the caller saw locally.
 *
 * The TimeTravel story provides the characters and the machine; the clock
 * tower (struck by lightning, met by itself, waited on) and the almanac
 * (burnt, never restarted) provide the crashes and the full mailbox.
 */
import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Context, Deferred, Effect, Equal, Exit, Fiber, Layer, PubSub, Queue, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import { Action, Changeset, Errors, Event, Resource, Store, Testing } from "../src/index.js"
import { seed } from "./fixtures/Model.js"
import { assertRoundTrip, clusterOnlyTags, send, storeErrorTags } from "./fixtures/RoundTrip.js"
import { Character, Machine } from "./fixtures/TimeTravel.js"

class Gate extends Context.Service<Gate, {
  readonly entered: Queue.Queue<string>
  readonly open: Deferred.Deferred<void>
}>()("test/Codec/Gate") {}

const towerFields = { id: Schema.String, strikes: Schema.Int }
type Tower = Schema.Struct.Type<typeof towerFields>

const ClockTower = Resource.make("ClockTower", {
  fields: towerFields,
  primaryKey: ["id"],
  restart: "initial",
  mailboxCapacity: 1,
  actions: {
    strike: Action.update({ change: (cs) => Changeset.set(cs, "strikes", Changeset.get(cs, "strikes") + 1) }),
    // 1.21 gigawatts: a defect in an after hook crashes the record, which restarts
    lightning: Action.update({ change: (cs) => Changeset.after(cs, () => Effect.die(new Error("1.21 gigawatts"))) }),
    // a hook calling its own record gets ReentrantCall; the action fails with ActionError, caused by it
    meetYourself: Action.update({
      // declared: the ReentrantCall the hook meets is the call's own error
      error: Errors.ReentrantCall,
      change: (cs): Changeset.Changeset<Tower, {}, Store.Store> =>
        Changeset.after(
          cs,
          (tower: Tower): Effect.Effect<Tower, Errors.StoreError, Store.Store> =>
            Store.update(ClockTower, tower, "strike")
        )
    }),
    // a hook failing with an error the action does not declare
    paradox: Action.update({ change: (cs) => Changeset.before(cs, () => Effect.fail(new Error("a paradox"))) }),
    // holds the record's fiber until the gate opens
    wait: Action.update({
      change: (cs) =>
        Effect.gen(function*() {
          const gate = yield* Gate
          yield* Queue.offer(gate.entered, Changeset.get(cs, "id"))
          yield* Deferred.await(gate.open)
          return cs
        })
    })
  }
})

const Almanac = Resource.make("Almanac", {
  fields: { id: Schema.String, title: Schema.String, published: Schema.Date },
  primaryKey: ["id"],
  restart: "never",
  actions: { burn: Action.update({ change: () => Effect.die(new Error("burnt in 1955")) }) }
})

const resources = [Character, Machine, ClockTower, Almanac] as const

const errorOf = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.flip(effect)

const provide = (scope: Scope.Scope, options?: Store.LayerOptions) =>
  Effect.gen(function*() {
    const gate = { entered: yield* Queue.unbounded<string>(), open: yield* Deferred.make<void>() }
    const layer = Store.layer(resources, options).pipe(Layer.provide(Layer.succeed(Gate, gate)))
    const context = yield* Layer.buildWithScope(layer, scope)
    const use = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, Exclude<R, Store.Store>> =>
      Effect.provide(effect, context)
    return { gate, use }
  })

describe("Codec", () => {
  it.effect("every error a Store produces round-trips through its JSON codec and Errors.StoreError's", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const { gate, use } = yield* provide(scope)
      const seen = new Map<string, Array<Errors.StoreError>>()
      const keep = (error: Errors.StoreError) => {
        seen.set(error._tag, [...(seen.get(error._tag) ?? []), error])
        return error
      }

      const marty = yield* use(Store.create(Character, "create", { id: "marty", name: "Marty", currentYear: 1985 }))
      keep(yield* errorOf(use(Store.get(Character, { id: "biff" }))))
      keep(yield* errorOf(use(Store.create(Character, "create", { id: "marty", name: "Marty", currentYear: 1985 }))))
      const bad = keep(yield* errorOf(use(Store.create(Character, "create", { name: "Marty", currentYear: 1985.5 }))))
      assert.strictEqual(bad._tag, "ValidationError")
      if (bad._tag === "ValidationError") assert.deepStrictEqual(bad.issues?.map((i) => i.path), [["currentYear"]])
      keep(
        yield* errorOf(use(Store.create(Character, "create", { name: "Marty", extra: true } as never)))
      )
      keep(yield* errorOf(use(Store.get(Character, { id: 1985 } as never))))
      keep(yield* errorOf(use(Store.create(Character, "fly" as never, {} as never))))

      const delorean = yield* use(Store.create(Machine, "create", { name: "DeLorean" }))
      const refused = keep(
        yield* errorOf(use(Store.update(Machine, delorean, "travelInTime", { occupants: [marty], targetYear: 1955 })))
      )
      assert.deepStrictEqual(refused._tag === "ActionError" && refused.errors, ["Power source needs topping up"])

      const tower = yield* use(Store.create(ClockTower, "create", { id: "hill-valley", strikes: 0 }))
      const met = keep(yield* errorOf(use(Store.update(ClockTower, tower, "meetYourself"))))
      assert.strictEqual(met._tag, "ReentrantCall")
      const paradox = keep(yield* errorOf(use(Store.update(ClockTower, tower, "paradox"))))
      assert.deepStrictEqual(paradox._tag === "ActionError" && paradox.cause, { name: "Error", message: "a paradox" })
      const crashed = keep(yield* errorOf(use(Store.update(ClockTower, tower, "lightning"))))
      assert.strictEqual(crashed._tag === "RecordCrashed" && (crashed.defect as Error).message, "1.21 gigawatts")

      // the tower's fiber waits at the gate, one call waits in its mailbox: the next one is refused
      const waiting = yield* use(Store.update(ClockTower, tower, "wait")).pipe(Effect.exit, Effect.forkChild)
      assert.strictEqual(yield* Queue.take(gate.entered), "hill-valley")
      const queued = yield* use(Store.update(ClockTower, tower, "strike")).pipe(
        Effect.exit,
        Effect.forkChild({ startImmediately: true })
      )
      keep(yield* errorOf(use(Store.update(ClockTower, tower, "strike"))))

      // closing the store: the calls in flight and every later call fail with StoreClosed
      yield* Scope.close(scope, Exit.void)
      for (const exit of [yield* Fiber.join(waiting), yield* Fiber.join(queued)]) {
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) keep(yield* Effect.flip(exit))
      }
      keep(yield* errorOf(use(Store.get(Character, marty))))

      assert.deepStrictEqual([...seen.keys()].sort(), [
        "ActionError",
        "AlreadyExists",
        "MailboxFull",
        "NotFound",
        "RecordCrashed",
        "ReentrantCall",
        "StoreClosed",
        "UnknownAction",
        "ValidationError"
      ])
      // every error of the union is driven here, or, for those only a cluster produces, in test/cluster/
      assert.deepStrictEqual([...seen.keys(), ...clusterOnlyTags].sort(), [...storeErrorTags()].sort())
      for (const errors of seen.values()) for (const error of errors) assertRoundTrip(error)
    }))

  it.effect("the memory data layer's errors round-trip too", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const { use } = yield* provide(scope, { dataLayer: "memory" })
      const errors: Array<Errors.StoreError> = []
      const marty = yield* use(Store.create(Character, "create", { id: "marty", name: "Marty", currentYear: 1985 }))
      errors.push(yield* errorOf(use(Store.get(Character, { id: "biff" }))))
      errors.push(
        yield* errorOf(use(Store.create(Character, "create", { id: "marty", name: "Marty", currentYear: 1 })))
      )
      errors.push(yield* errorOf(use(Store.create(Character, "create", { name: "Marty", currentYear: 1985.5 }))))
      errors.push(yield* errorOf(use(Store.create(Character, "fly" as never, {} as never))))
      const tower = yield* use(Store.create(ClockTower, "create", { id: "hill-valley", strikes: 0 }))
      const met = yield* errorOf(use(Store.update(ClockTower, tower, "meetYourself")))
      errors.push(met)
      errors.push(yield* errorOf(use(Store.update(ClockTower, tower, "paradox"))))
      errors.push(yield* errorOf(use(Store.update(ClockTower, tower, "lightning"))))
      yield* Scope.close(scope, Exit.void)
      errors.push(yield* errorOf(use(Store.get(Character, marty))))
      assert.deepStrictEqual(errors.map((e) => e._tag), [
        "NotFound",
        "AlreadyExists",
        "ValidationError",
        "UnknownAction",
        "ReentrantCall",
        "ActionError",
        "RecordCrashed",
        "StoreClosed"
      ])
      for (const error of errors) assertRoundTrip(error)
    }))

  it.effect("every event a Store publishes round-trips through Event.Event and its resource's Event.schema", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const { use } = yield* provide(scope)
      const events = yield* use(Store.subscribe)

      const marty = yield* use(Store.create(Character, "create", { id: "marty", name: "Marty", currentYear: 1985 }))
      yield* use(Store.update(Character, marty, "travelInTime", { targetYear: 1955 }))
      yield* use(Store.destroy(Character, marty))
      yield* use(Store.create(Character, "create", { id: "doc", name: "Doc", currentYear: 1985 }))
      yield* TestClock.adjust("1 minute") // Doc is idle for a minute
      const einstein = yield* use(
        Store.create(Character, "create", { id: "einstein", name: "Einstein", currentYear: 1985 })
      )
      // Einstein is kept alive until his two hours of lifetime end
      for (let i = 1; i < 240; i++) {
        yield* TestClock.adjust("30 seconds")
        yield* use(Store.keepAlive(Character, einstein))
      }
      yield* TestClock.adjust("30 seconds")
      const tower = yield* use(Store.create(ClockTower, "create", { id: "hill-valley", strikes: 0 }))
      yield* Effect.flip(use(Store.update(ClockTower, tower, "lightning")))
      const almanac = yield* use(
        Store.create(Almanac, "create", {
          id: "almanac",
          title: "Grays Sports Almanac",
          published: new Date("2000-01-01")
        })
      )
      yield* Effect.flip(use(Store.update(Almanac, almanac, "burn")))

      const received = yield* PubSub.takeAll(events)
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(
        received.map((e) => e._tag === "Destroyed" ? `Destroyed ${e.reason}` : e._tag),
        [
          "Created",
          "Updated",
          "Destroyed action",
          "Created",
          "Destroyed inactivity",
          "Created",
          "Destroyed lifetime",
          "Created",
          "Restarted",
          "Created",
          "Failed"
        ]
      )
      const byName = new Map<string, Resource.Any>(resources.map((r) => [r.name, r]))
      for (const event of received) {
        const schema = Event.schema(byName.get(event.resource)!) as unknown as Schema.Codec<Event.Event, unknown>
        const typed = send(schema, event)
        assert.deepStrictEqual(typed.received, event)
        assert.deepStrictEqual(send(schema, typed.received).json, typed.json)
        // untyped, the same JSON; the same event back where the record's fields are JSON values
        const untyped = send(Event.Event, event)
        assert.deepStrictEqual(untyped.json, typed.json)
        if (event.resource === "Almanac") {
          assert.strictEqual((untyped.received.record as { published: unknown }).published, "2000-01-01T00:00:00.000Z")
        } else {
          assert.deepStrictEqual(untyped.received, event)
        }
      }
    }))

  describe("Event.schema", () => {
    const Session = Resource.make("Session", {
      fields: {
        id: Schema.String,
        region: Schema.Literals(["eu", "us"]),
        user: Schema.Struct({ name: Schema.String, tags: Schema.Array(Schema.String) }),
        visits: Schema.BigInt,
        lastSeen: Schema.Date.check(
          Schema.isBetweenDate({ minimum: new Date("1885-01-01"), maximum: new Date("2015-10-21") })
        ),
        note: Schema.optionalKey(Schema.String)
      },
      primaryKey: ["region", "id"]
    })
    const codec = Schema.toCodecJson(Event.schema(Session))

    it.effect.prop(
      "random records of a resource round-trip through its event schema",
      {
        record: Session.schema,
        tag: Schema.Literals(["Created", "Updated", "Destroyed", "Restarted", "Failed"]),
        reason: Event.DestroyReason
      },
      ({ reason, record, tag }) =>
        Effect.gen(function*() {
          const key = { region: record.region, id: record.id }
          const event: Event.Of<typeof Session> = tag === "Destroyed"
            ? { _tag: tag, resource: "Session", key, record, reason }
            : { _tag: tag, resource: "Session", key, record }
          const json = JSON.parse(JSON.stringify(yield* Schema.encodeEffect(codec)(event)))
          const received = yield* Schema.decodeUnknownEffect(codec)(json)
          assert.deepStrictEqual(received, event)
          assert.isTrue(Equal.equals(received, event))
        }),
      { arbitrary: { seed: seed(1955), runs: 200 } }
    )

    it("rejects another resource's events and records that are not the resource's", () => {
      const decode = Schema.decodeUnknownExit(codec)
      const record = {
        id: "s",
        region: "eu",
        user: { name: "Marty", tags: [] },
        visits: "1",
        lastSeen: "2015-10-21T00:00:00.000Z"
      }
      assert.isTrue(
        Exit.isSuccess(decode({ _tag: "Created", resource: "Session", key: { region: "eu", id: "s" }, record }))
      )
      assert.isTrue(
        Exit.isFailure(decode({ _tag: "Created", resource: "Other", key: { region: "eu", id: "s" }, record }))
      )
      assert.isTrue(
        Exit.isFailure(
          decode({ _tag: "Created", resource: "Session", key: { region: "eu", id: "s" }, record: { id: "s" } })
        )
      )
      assert.isTrue(
        Exit.isFailure(decode({ _tag: "Destroyed", resource: "Session", key: { region: "eu", id: "s" }, record }))
      )
    })
  })

  describe("inputs and records", () => {
    // what a caller sends and gets back crosses as its action's input codec and its resource's record codec
    const cases = [
      ["Character", "create", Character],
      ["Character", "travelInTime", Character],
      ["Machine", "travelInTime", Machine],
      ["Almanac", "create", Almanac]
    ] as const

    it.effect.each(cases)(
      "%s.%s: a valid input round-trips, and the record it makes too",
      ([, action, resource]) =>
        Effect.gen(function*() {
          const input = Schema.toCodecJson(Testing.inputSchema(resource as Resource.Any, action as never))
          const record = Schema.toCodecJson(resource.schema as Schema.Codec<unknown, unknown>)
          const inputs = yield* Arbitrary.sampleEffect(Testing.arbitrary(resource as Resource.Any, action as never), {
            seed: seed(1985),
            count: 50
          })
          for (const value of inputs) {
            const json = JSON.parse(JSON.stringify(yield* Schema.encodeEffect(input)(value)))
            assert.deepStrictEqual(yield* Schema.decodeUnknownEffect(input)(json), value)
          }
          if (action !== "create") return
          // sampled keys may repeat: a repeat is AlreadyExists, and left out
          const made = yield* Effect.forEach(
            inputs,
            (value) => Effect.option(Store.create(resource as Resource.Any, "create" as never, value as never))
          ).pipe(Effect.provide(Store.layer([Character, Machine, Almanac])))
          assert.isTrue(made.some((m) => m._tag === "Some"))
          for (const value of made.flatMap((m) => m._tag === "Some" ? [m.value] : [])) {
            const json = JSON.parse(JSON.stringify(yield* Schema.encodeEffect(record)(value)))
            assert.deepStrictEqual(yield* Schema.decodeUnknownEffect(record)(json), value)
          }
        })
    )
  })
})
