/**
 * Actions: the default ones, declared ones adding to or replacing them by
 * name, `accept`, `arguments` decoded with their Schema, `change` returning a
 * Changeset or an Effect of one, and unknown or wrong-kind action names.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, PubSub, Schema } from "effect"
import { TestClock } from "effect/testing"
import { Action, Changeset, Errors, Query, Resource, Store } from "../src/index.js"

const fields = { id: Schema.String, name: Schema.String, count: Schema.Int }

// no declared actions: only the defaults
const Plain = Resource.make("Plain", { fields, primaryKey: ["id"] })

// an `update` that replaces the default one: it accepts only `name`, and shouts it
const Shouty = Resource.make("Shouty", {
  fields,
  primaryKey: ["id"],
  actions: {
    update: Action.update({
      accept: ["name"],
      change: (cs) => Changeset.set(cs, "name", Changeset.get(cs, "name").toUpperCase())
    }),
    destroy: Action.destroy({
      change: (cs) => Changeset.get(cs, "count") > 0 ? Changeset.addError(cs, "still counting") : cs
    }),
    create: Action.create({
      accept: ["id", "name"],
      change: (cs) => Changeset.set(cs, "count", 100)
    })
  }
})

class Multiplier extends Context.Service<Multiplier, { readonly factor: number }>()("test/Action/Multiplier") {}

const Counter = Resource.make("Counter", {
  fields,
  primaryKey: ["id"],
  actions: {
    rename: Action.update({ accept: ["name"] }),
    // a transformation: the input is a string, the change sees a number
    add: Action.update({
      arguments: { amount: Schema.NumberFromString },
      change: (cs) => Changeset.set(cs, "count", Changeset.get(cs, "count") + cs.arguments.amount)
    }),
    // a check: only 1 to 10 steps at a time
    step: Action.update({
      arguments: { steps: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 10 })) },
      change: (cs) => Changeset.set(cs, "count", Changeset.get(cs, "count") + cs.arguments.steps)
    }),
    // a change returning an Effect of a changeset, using a service
    multiply: Action.update({
      change: (cs) =>
        Effect.gen(function*() {
          const { factor } = yield* Multiplier
          return Changeset.set(cs, "count", Changeset.get(cs, "count") * factor)
        })
    }),
    open: Action.create({
      accept: ["id"],
      arguments: { label: Schema.String.check(Schema.isMinLength(1)) },
      change: (cs) => cs.pipe(Changeset.set("name", cs.arguments.label), Changeset.set("count", 0))
    }),
    close: Action.destroy()
  }
})

// a change returning an Effect that uses the Store itself
const Follower = Resource.make("Follower", {
  fields,
  primaryKey: ["id"],
  actions: {
    copyFrom: Action.update({
      arguments: { source: Schema.String },
      change: (cs) =>
        Effect.map(
          Store.get(Counter, { id: cs.arguments.source }),
          (source) => Changeset.set(cs, "count", source.count)
        )
    })
  }
})

const counters = () => Store.layer([Counter, Follower]).pipe(Layer.provide(Layer.succeed(Multiplier, { factor: 3 })))

describe("Action", () => {
  describe("default actions", () => {
    it("every resource has create, update, destroy and read", () => {
      assert.deepStrictEqual(Object.keys(Plain.actions).sort(), ["create", "destroy", "read", "update"])
      assert.strictEqual(Plain.actions.create.kind, "create")
      assert.strictEqual(Plain.actions.update.kind, "update")
      assert.strictEqual(Plain.actions.destroy.kind, "destroy")
      assert.strictEqual(Plain.actions.read.kind, "read")
      assert.isTrue(Action.isAction(Plain.actions.update))
      assert.isFalse(Action.isAction({ kind: "update" }))
    })

    it.effect("create and update accept every field; destroy removes the record", () =>
      Effect.gen(function*() {
        const a = yield* Store.create(Plain, "create", { id: "a", name: "A", count: 1 })
        assert.deepStrictEqual(a, { id: "a", name: "A", count: 1 })
        const b = yield* Store.update(Plain, a, "update", { name: "B", count: 2 })
        assert.deepStrictEqual(b, { id: "a", name: "B", count: 2 })
        const c = yield* Store.update(Plain, a, "update", {})
        assert.deepStrictEqual(c, b)
        const d = yield* Store.update(Plain, a, "update")
        assert.deepStrictEqual(d, b)
        yield* Store.destroy(Plain, a)
        assert.strictEqual((yield* Store.get(Plain, a).pipe(Effect.flip))._tag, "NotFound")
      }).pipe(Effect.provide(Store.layer([Plain]))))

    it.effect("the default create requires the required fields and refuses wrong types", () =>
      Effect.gen(function*() {
        const missing = yield* Store.create(Plain, "create", { id: "a", name: "A" } as never).pipe(Effect.flip)
        assert.strictEqual(missing._tag, "ValidationError")
        const wrong = yield* Store.create(Plain, "create", { id: "a", name: "A", count: "1" } as never).pipe(
          Effect.flip
        )
        assert.strictEqual(wrong._tag, "ValidationError")
        assert.deepStrictEqual(yield* Store.read(Query.make(Plain)), [])
      }).pipe(Effect.provide(Store.layer([Plain]))))
  })

  describe("declared actions", () => {
    it("add to the defaults", () => {
      assert.deepStrictEqual(
        Object.keys(Counter.actions).sort(),
        ["add", "close", "create", "destroy", "multiply", "open", "read", "rename", "step", "update"]
      )
      assert.strictEqual(Counter.actions.rename.kind, "update")
      assert.strictEqual(Counter.actions.open.kind, "create")
      assert.strictEqual(Counter.actions.close.kind, "destroy")
    })

    it.effect("a declared update replaces the default update", () =>
      Effect.gen(function*() {
        const a = yield* Store.create(Shouty, "create", { id: "a", name: "marty" })
        // the declared create replaced the default: count comes from its change
        assert.deepStrictEqual(a, { id: "a", name: "marty", count: 100 })

        const b = yield* Store.update(Shouty, a, "update", { name: "doc" })
        assert.deepStrictEqual(b, { id: "a", name: "DOC", count: 100 })

        // the default update accepted every field; this one does not
        const error = yield* Store.update(Shouty, a, "update", { count: 5 } as never).pipe(Effect.flip)
        assert.strictEqual(error._tag, "ValidationError")
        assert.deepStrictEqual(yield* Store.get(Shouty, a), b)
      }).pipe(Effect.provide(Store.layer([Shouty]))))

    it.effect("a declared destroy replaces the default destroy, also when called by default", () =>
      Effect.gen(function*() {
        const a = yield* Store.create(Shouty, "create", { id: "a", name: "marty" })
        const error = yield* Store.destroy(Shouty, a).pipe(Effect.flip)
        assert.strictEqual(error._tag, "ActionError")
        if (error._tag === "ActionError") assert.deepStrictEqual(error.errors, ["still counting"])
        assert.deepStrictEqual(yield* Store.get(Shouty, a), a)
      }).pipe(Effect.provide(Store.layer([Shouty]))))
  })

  describe("accept", () => {
    it.effect("an update may set only its accepted fields", () =>
      Effect.gen(function*() {
        const a = yield* Store.create(Counter, "create", { id: "a", name: "A", count: 1 })
        const renamed = yield* Store.update(Counter, a, "rename", { name: "B" })
        assert.deepStrictEqual(renamed, { id: "a", name: "B", count: 1 })

        const events = yield* Store.subscribe
        const extra = yield* Store.update(Counter, a, "rename", { name: "C", count: 9 } as never).pipe(Effect.flip)
        assert.strictEqual(extra._tag, "ValidationError")
        if (extra._tag === "ValidationError") assert.isDefined(extra.issues)
        const key = yield* Store.update(Counter, a, "rename", { id: "b" } as never).pipe(Effect.flip)
        assert.strictEqual(key._tag, "ValidationError")
        const args = yield* Store.update(Counter, a, "step", { steps: 1, count: 9 } as never).pipe(Effect.flip)
        assert.strictEqual(args._tag, "ValidationError")

        assert.deepStrictEqual(yield* Store.get(Counter, a), renamed)
        assert.deepStrictEqual(yield* PubSub.takeUpTo(events, 10), [])
      }).pipe(Effect.provide(counters())))

    // caught a bug: `Schema.Struct({})` lets any property through, even with `onExcessProperty: "error"`
    it.effect("an action that accepts no field and takes no argument refuses any field", () =>
      Effect.gen(function*() {
        const a = yield* Store.create(Counter, "create", { id: "a", name: "A", count: 1 })
        const events = yield* Store.subscribe
        const error = yield* Store.update(Counter, a, "multiply", { count: 9 } as never).pipe(Effect.flip)
        assert.strictEqual(error._tag, "ValidationError")
        assert.deepStrictEqual(yield* Store.get(Counter, a), a)
        assert.deepStrictEqual(yield* PubSub.takeUpTo(events, 10), [])
      }).pipe(Effect.provide(counters())))

    it.effect("a create may set only its accepted fields; the rest come from its change", () =>
      Effect.gen(function*() {
        const opened = yield* Store.create(Counter, "open", { id: "a", label: "first" })
        assert.deepStrictEqual(opened, { id: "a", name: "first", count: 0 })

        const extra = yield* Store.create(Counter, "open", { id: "b", label: "second", count: 5 } as never).pipe(
          Effect.flip
        )
        assert.strictEqual(extra._tag, "ValidationError")
        assert.strictEqual((yield* Store.get(Counter, { id: "b" }).pipe(Effect.flip))._tag, "NotFound")
      }).pipe(Effect.provide(counters())))

    it.effect("an input that is not a plain object is a ValidationError", () =>
      Effect.gen(function*() {
        const a = yield* Store.create(Counter, "create", { id: "a", name: "A", count: 1 })
        for (const input of [null, 42, "name", [1, 2], new Date(0)]) {
          const error = yield* Store.update(Counter, a, "rename", input as never).pipe(Effect.flip)
          assert.strictEqual(error._tag, "ValidationError")
          const created = yield* Store.create(Counter, "create", input as never).pipe(Effect.flip)
          assert.strictEqual(created._tag, "ValidationError")
        }
        assert.deepStrictEqual(yield* Store.get(Counter, a), a)
      }).pipe(Effect.provide(counters())))
  })

  describe("arguments", () => {
    it.effect("are decoded with their Schema before the change sees them", () =>
      Effect.gen(function*() {
        const a = yield* Store.create(Counter, "create", { id: "a", name: "A", count: 1 })
        const added = yield* Store.update(Counter, a, "add", { amount: "41" })
        // with the raw string the count would be "141", which is no Int
        assert.strictEqual(added.count, 42)

        const notANumber = yield* Store.update(Counter, a, "add", { amount: "forty" }).pipe(Effect.flip)
        assert.strictEqual(notANumber._tag, "ValidationError")
        const decodedType = yield* Store.update(Counter, a, "add", { amount: 41 } as never).pipe(Effect.flip)
        assert.strictEqual(decodedType._tag, "ValidationError")
        assert.strictEqual((yield* Store.get(Counter, a)).count, 42)
      }).pipe(Effect.provide(counters())))

    it.effect("their checks are applied", () =>
      Effect.gen(function*() {
        const a = yield* Store.create(Counter, "create", { id: "a", name: "A", count: 0 })
        assert.strictEqual((yield* Store.update(Counter, a, "step", { steps: 10 })).count, 10)

        for (const steps of [0, 11, 2.5]) {
          const error = yield* Store.update(Counter, a, "step", { steps }).pipe(Effect.flip)
          assert.strictEqual(error._tag, "ValidationError")
          if (error._tag === "ValidationError") assert.isDefined(error.issues)
        }
        const missing = yield* Store.update(Counter, a, "step", {} as never).pipe(Effect.flip)
        assert.strictEqual(missing._tag, "ValidationError")
        const unknown = yield* Store.update(Counter, a, "step", { steps: 1, jump: 2 } as never).pipe(Effect.flip)
        assert.strictEqual(unknown._tag, "ValidationError")

        const empty = yield* Store.create(Counter, "open", { id: "b", label: "" }).pipe(Effect.flip)
        assert.strictEqual(empty._tag, "ValidationError")
        assert.strictEqual((yield* Store.get(Counter, a)).count, 10)
      }).pipe(Effect.provide(counters())))
  })

  describe("change", () => {
    it.effect("returning a Changeset and returning an Effect of one both work", () =>
      Effect.gen(function*() {
        const a = yield* Store.create(Counter, "create", { id: "a", name: "A", count: 2 })
        const stepped = yield* Store.update(Counter, a, "step", { steps: 1 })
        assert.strictEqual(stepped.count, 3)
        const multiplied = yield* Store.update(Counter, a, "multiply")
        assert.strictEqual(multiplied.count, 9)
        assert.strictEqual((yield* Store.get(Counter, a)).count, 9)
      }).pipe(Effect.provide(counters())))

    it.effect("a change can call the Store", () =>
      Effect.gen(function*() {
        const a = yield* Store.create(Counter, "create", { id: "a", name: "A", count: 7 })
        const b = yield* Store.create(Follower, "create", { id: "b", name: "B", count: 0 })
        assert.strictEqual((yield* Store.update(Follower, b, "copyFrom", { source: a.id })).count, 7)

        // the Store's failure refuses the action
        const error = yield* Store.update(Follower, b, "copyFrom", { source: "nobody" }).pipe(Effect.flip)
        assert.strictEqual(error._tag, "ActionError")
        assert.strictEqual((yield* Store.get(Follower, b)).count, 7)
      }).pipe(Effect.provide(counters())))
  })

  describe("unknown actions", () => {
    it.effect("an action name the resource does not define is UnknownAction", () =>
      Effect.gen(function*() {
        const a = yield* Store.create(Counter, "create", { id: "a", name: "A", count: 0 })
        const create = yield* Store.create(Counter, "fly" as never, { id: "b" } as never).pipe(Effect.flip)
        assert.strictEqual(create._tag, "UnknownAction")
        if (create._tag === "UnknownAction") {
          assert.strictEqual(create.resource, "Counter")
          assert.strictEqual(create.action, "fly")
        }
        const update = yield* Store.update(Counter, a, "fly" as never, {} as never).pipe(Effect.flip)
        assert.strictEqual(update._tag, "UnknownAction")
        const destroy = yield* Store.destroy(Counter, a, "fly" as never).pipe(Effect.flip)
        assert.strictEqual(destroy._tag, "UnknownAction")
        // names inherited from Object.prototype are not actions
        for (const name of ["toString", "constructor", "__proto__", "hasOwnProperty"]) {
          const error = yield* Store.update(Counter, a, name as never, {} as never).pipe(Effect.flip)
          assert.strictEqual(error._tag, "UnknownAction", name)
        }
        assert.deepStrictEqual(yield* Store.get(Counter, a), a)
        assert.strictEqual((yield* Store.get(Counter, { id: "b" }).pipe(Effect.flip))._tag, "NotFound")
      }).pipe(Effect.provide(counters())))

    it.effect("an action of the wrong kind is UnknownAction", () =>
      Effect.gen(function*() {
        const a = yield* Store.create(Counter, "create", { id: "a", name: "A", count: 0 })
        const updateAsCreate = yield* Store.create(Counter, "rename" as never, { id: "b", name: "B" } as never).pipe(
          Effect.flip
        )
        assert.strictEqual(updateAsCreate._tag, "UnknownAction")
        if (updateAsCreate._tag === "UnknownAction") assert.strictEqual(updateAsCreate.action, "rename")
        const defaultUpdateAsCreate = yield* Store.create(Counter, "update" as never, { id: "b" } as never).pipe(
          Effect.flip
        )
        assert.strictEqual(defaultUpdateAsCreate._tag, "UnknownAction")
        const createAsUpdate = yield* Store.update(Counter, a, "open" as never, { label: "x" } as never).pipe(
          Effect.flip
        )
        assert.strictEqual(createAsUpdate._tag, "UnknownAction")
        const destroyAsUpdate = yield* Store.update(Counter, a, "close" as never, {} as never).pipe(Effect.flip)
        assert.strictEqual(destroyAsUpdate._tag, "UnknownAction")
        const readAsUpdate = yield* Store.update(Counter, a, "read" as never, {} as never).pipe(Effect.flip)
        assert.strictEqual(readAsUpdate._tag, "UnknownAction")
        const updateAsDestroy = yield* Store.destroy(Counter, a, "rename" as never).pipe(Effect.flip)
        assert.strictEqual(updateAsDestroy._tag, "UnknownAction")

        assert.deepStrictEqual(yield* Store.get(Counter, a), a)
        assert.strictEqual((yield* Store.get(Counter, { id: "b" }).pipe(Effect.flip))._tag, "NotFound")
      }).pipe(Effect.provide(counters())))

    it.effect("an unknown resource is refused", () =>
      Effect.gen(function*() {
        const error = yield* Store.create(Plain, "create", { id: "a", name: "A", count: 1 }).pipe(Effect.flip)
        assert.include(["ValidationError", "UnknownAction"], error._tag)
      }).pipe(Effect.provide(counters())))
  })

  it("UnknownAction is a tagged error class", () => {
    const e = new Errors.UnknownAction({ resource: "R", action: "a", message: "m" })
    assert.strictEqual(e._tag, "UnknownAction")
  })
})

// --- the typed form, declared errors, defaults --------------------------------------------------

class OutOfTokens extends Schema.TaggedError<OutOfTokens>()("OutOfTokens", { tokens: Schema.Int }) {}
class Frozen extends Schema.TaggedError<Frozen>()("Frozen", { bucket: Schema.String }) {}

// a rate limiter whose tokens only its declared actions may change
const Bucket = Resource.make("Bucket", {
  fields: { id: Schema.String, tokens: Schema.Int, frozen: Schema.Boolean },
  primaryKey: ["id"],
  defaults: ["create", "read", "destroy"],
  actions: (Action) => ({
    take: Action.update({
      arguments: { n: Schema.Int, stage: Schema.optionalKey(Schema.Literals(["change", "before", "after"])) },
      error: Schema.Union([OutOfTokens, Frozen]),
      change: (cs) => {
        const left = cs.data.tokens - cs.arguments.n
        const refuse: Effect.Effect<never, OutOfTokens | Frozen> | undefined = left < 0
          ? Effect.fail(new OutOfTokens({ tokens: cs.data.tokens }))
          : cs.data.frozen
          ? Effect.fail(new Frozen({ bucket: cs.data.id }))
          : undefined
        const next = Changeset.set(cs, "tokens", left)
        if (refuse === undefined) return next
        switch (cs.arguments.stage ?? "change") {
          case "change":
            return Effect.as(refuse, next)
          case "before":
            return Changeset.before(next, () => Effect.as(refuse, next))
          case "after":
            return Changeset.after(next, (bucket) => Effect.as(refuse, bucket))
        }
      }
    }),
    // fails with something that is not declared: an ActionError
    jam: Action.update({ error: OutOfTokens, change: () => Effect.fail("jammed") }),
    // a hook calling its own resource
    refill: Action.update({
      arguments: { n: Schema.Int },
      change: (cs) =>
        Changeset.after(
          cs,
          (bucket) =>
            Store.update(Bucket, { id: `${bucket.id}-spare` }, "take", { n: cs.arguments.n }).pipe(
              Effect.as({ ...bucket, tokens: bucket.tokens + cs.arguments.n })
            )
        )
    }),
    freeze: Action.update({ change: (cs) => Changeset.set(cs, "frozen", true) })
  })
})

const buckets = (dataLayer: "genServer" | "memory") => Store.layer([Bucket], { dataLayer })

describe("typed actions", () => {
  for (const dataLayer of ["genServer", "memory"] as const) {
    describe(dataLayer, () => {
      it.effect("a declared error reaches the caller as is, from a change and from either hook", () =>
        Effect.gen(function*() {
          const b = yield* Store.create(Bucket, "create", { id: "b", tokens: 2, frozen: false })
          for (const stage of ["change", "before", "after"] as const) {
            const error = yield* Store.update(Bucket, b, "take", { n: 3, stage }).pipe(Effect.flip)
            assert.instanceOf(error, OutOfTokens, stage)
            assert.deepStrictEqual(error, new OutOfTokens({ tokens: 2 }), stage)
            assert.deepStrictEqual(yield* Store.get(Bucket, b), b, stage)
          }
          // catchTag works on it, the other declared error stays in the channel
          const caught = yield* Store.update(Bucket, b, "take", { n: 5 }).pipe(
            Effect.catchTag("OutOfTokens", (e) => Effect.succeed(e.tokens))
          )
          assert.strictEqual(caught, 2)
          yield* Store.update(Bucket, b, "freeze")
          const frozen = yield* Store.update(Bucket, b, "take", { n: 1, stage: "after" }).pipe(Effect.flip)
          assert.deepStrictEqual(frozen, new Frozen({ bucket: "b" }))
          assert.strictEqual((yield* Store.get(Bucket, b)).tokens, 2)
        }).pipe(Effect.provide(buckets(dataLayer))))

      it.effect("a failure the action does not declare is an ActionError", () =>
        Effect.gen(function*() {
          const b = yield* Store.create(Bucket, "create", { id: "b", tokens: 2, frozen: false })
          const error = yield* Store.update(Bucket, b, "jam").pipe(Effect.flip)
          assert.instanceOf(error, Errors.ActionError)
          assert.strictEqual(error._tag, "ActionError")
          if (error._tag === "ActionError") assert.strictEqual(error.cause, "jammed")
        }).pipe(Effect.provide(buckets(dataLayer))))

      it.effect("a declared error of another record's action, met in a hook, is this action's ActionError", () =>
        Effect.gen(function*() {
          const b = yield* Store.create(Bucket, "create", { id: "b", tokens: 0, frozen: false })
          yield* Store.create(Bucket, "create", { id: "b-spare", tokens: 1, frozen: false })
          // refill declares nothing: the spare's OutOfTokens is refill's ActionError
          const error = yield* Store.update(Bucket, b, "refill", { n: 5 }).pipe(Effect.flip)
          assert.strictEqual(error._tag, "ActionError")
          // the cause is encoded: the ActionError crosses a process boundary as it is
          if (error._tag === "ActionError") assert.deepStrictEqual(error.cause, { _tag: "OutOfTokens", tokens: 1 })
          assert.strictEqual((yield* Store.get(Bucket, b)).tokens, 0)
          // the hook calls its own resource
          const refilled = yield* Store.update(Bucket, b, "refill", { n: 1 })
          assert.strictEqual(refilled.tokens, 1)
          assert.strictEqual((yield* Store.get(Bucket, { id: "b-spare" })).tokens, 0)
        }).pipe(Effect.provide(buckets(dataLayer))))

      it.effect("a default action left out by defaults is UnknownAction for an untyped caller", () =>
        Effect.gen(function*() {
          const b = yield* Store.create(Bucket, "create", { id: "b", tokens: 2, frozen: false })
          const error = yield* Store.update(Bucket, b, "update" as never, { tokens: 1_000_000 } as never).pipe(
            Effect.flip
          )
          assert.strictEqual(error._tag, "UnknownAction")
          assert.strictEqual((yield* Store.get(Bucket, b)).tokens, 2)
          // the defaults it keeps are there
          assert.deepStrictEqual(Object.keys(Bucket.actions).sort(), [
            "create",
            "destroy",
            "freeze",
            "jam",
            "read",
            "refill",
            "take"
          ])
          yield* Store.destroy(Bucket, b)
          assert.strictEqual((yield* Store.get(Bucket, b).pipe(Effect.flip))._tag, "NotFound")
        }).pipe(Effect.provide(buckets(dataLayer))))
    })
  }

  it.effect("an ActionError's cause is a JSON value: the error round-trips through its JSON codec", () =>
    Effect.gen(function*() {
      const cyclic: { self?: unknown } = {}
      cyclic.self = cyclic
      const Failing = Resource.make("Failing", {
        fields: { id: Schema.String },
        primaryKey: ["id"],
        actions: (Action) => ({
          fail: Action.update({
            arguments: { with: Schema.Literals(["tagged", "error", "bigint", "cyclic", "number"]) },
            change: (cs) =>
              Effect.fail(
                {
                  tagged: new Frozen({ bucket: "b" }),
                  error: new TypeError("boom"),
                  bigint: { n: 1n },
                  cyclic,
                  number: NaN
                }[cs.arguments.with]
              )
          })
        })
      })
      const codec = Schema.toCodecJson(Errors.ActionError)
      const causes = yield* Effect.forEach(
        ["tagged", "error", "bigint", "cyclic", "number"] as const,
        (kind) =>
          Effect.gen(function*() {
            const f = yield* Store.create(Failing, "create", { id: kind })
            const error = yield* Store.update(Failing, f, "fail", { with: kind }).pipe(Effect.flip)
            assert.strictEqual(error._tag, "ActionError")
            const json = JSON.parse(JSON.stringify(Schema.encodeSync(codec)(error as Errors.ActionError)))
            assert.deepStrictEqual(Schema.decodeSync(codec)(json), error)
            return (error as Errors.ActionError).cause
          })
      ).pipe(Effect.provide(Store.layer([Failing])))
      assert.deepStrictEqual(causes, [
        { _tag: "Frozen", bucket: "b" },
        { name: "TypeError", message: "boom" },
        "[object Object]",
        "[object Object]",
        "NaN"
      ])
    }))

  it.effect("a resource without any destroy action still expires", () => {
    const Ephemeral = Resource.make("Ephemeral", {
      fields: { id: Schema.String },
      primaryKey: ["id"],
      defaults: ["create"],
      inactivityTimeout: "1 minute"
    })
    return Effect.gen(function*() {
      const e = yield* Store.create(Ephemeral, "create", { id: "e" })
      const refused = yield* Store.destroy(Ephemeral, e, "destroy" as never).pipe(Effect.flip)
      assert.strictEqual(refused._tag, "UnknownAction")
      yield* TestClock.adjust("1 minute")
      assert.strictEqual((yield* Store.get(Ephemeral, e).pipe(Effect.flip))._tag, "NotFound")
    }).pipe(Effect.provide(Store.layer([Ephemeral])))
  })

  it("an action without an error schema passes nothing through", () => {
    assert.isUndefined(Action.update().error)
    assert.strictEqual(Bucket.actions.jam.error, OutOfTokens)
  })
})
