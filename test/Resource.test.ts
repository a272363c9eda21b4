/**
 * `Resource.make`: what a resource exposes, composite primary keys end to end
 * through the Store, and the definitions it refuses at make time.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, PubSub, Schema } from "effect"
import { Action, Errors, Filter, Query, Resource, Store } from "../src/index.js"
import { Character, layer, Machine } from "./fixtures/TimeTravel.js"

// A seat in a theatre: one key part a string, the other an integer.
const Seat = Resource.make("Seat", {
  fields: { venue: Schema.String, row: Schema.Int, holder: Schema.String },
  primaryKey: ["venue", "row"]
})
type Seat = Resource.Record<typeof Seat>

const seats = () => Store.layer([Seat])

const Pair = Resource.make("Pair", {
  fields: { left: Schema.String, right: Schema.String, n: Schema.Int },
  primaryKey: ["left", "right"]
})

const byKey = (records: ReadonlyArray<Seat>) =>
  [...records].sort((a, b) => a.venue < b.venue ? -1 : a.venue > b.venue ? 1 : a.row - b.row)

/** What `f` threw, or `undefined`. */
const thrown = (f: () => unknown): unknown => {
  try {
    f()
  } catch (e) {
    return e
  }
  return undefined
}

const assertInvalid = (f: () => unknown, mentions: string) => {
  const e = thrown(f)
  assert.instanceOf(e, Errors.InvalidResource)
  if (e instanceof Errors.InvalidResource) {
    assert.strictEqual(e._tag, "InvalidResource")
    assert.strictEqual(e.resource, "Broken")
    assert.include(e.message, mentions)
  }
}

const fields = { id: Schema.String, name: Schema.String, count: Schema.Int }

describe("Resource", () => {
  describe("make", () => {
    it("exposes its name, schema and primary key", () => {
      assert.strictEqual(Character.name, "Character")
      assert.deepStrictEqual(Character.primaryKey, ["id"])
      assert.deepStrictEqual(Seat.primaryKey, ["venue", "row"])
      assert.isTrue(Resource.isResource(Character))
      assert.isFalse(Resource.isResource({ name: "Character" }))
      assert.isTrue(Schema.isSchema(Character.schema))

      const marty = { id: "marty", name: "Marty", nickname: "Marty", currentYear: 1985 }
      assert.deepStrictEqual(Schema.decodeUnknownSync(Character.schema)(marty), marty)
      assert.isFalse(Schema.is(Character.schema)({ id: "marty", name: "Marty", currentYear: 1985.5 }))
      assert.isFalse(Schema.is(Character.schema)({ id: "marty", currentYear: 1985 }))
    })

    it("has the documented lifecycle defaults", () => {
      const Plain = Resource.make("Plain", { fields, primaryKey: ["id"] })
      assert.isUndefined(Plain.inactivityTimeout)
      assert.isUndefined(Plain.maximumLifetime)
      assert.strictEqual(Plain.restart, "initial")
      assert.strictEqual(Plain.restartIntensity.maxRestarts, 3)
      assert.strictEqual(Duration.toMillis(Plain.restartIntensity.within), 5_000)

      assert.strictEqual(Duration.toMillis(Character.inactivityTimeout!), 60_000)
      assert.strictEqual(Duration.toMillis(Character.maximumLifetime!), 2 * 60 * 60 * 1000)
    })

    it("its schema is usable inside other schemas", () => {
      const Crew = Schema.Struct({ ship: Schema.String, crew: Schema.Array(Character.schema) })
      const crew = {
        ship: "OUTATIME",
        crew: [{ id: "marty", name: "Marty", currentYear: 1985 }, { id: "doc", name: "Doc", currentYear: 1985 }]
      }
      assert.deepStrictEqual(Schema.decodeUnknownSync(Crew)(crew), crew)
      assert.isFalse(Schema.is(Crew)({ ship: "OUTATIME", crew: [{ id: "marty", name: "Marty" }] }))
    })

    it.effect("a resource's schema used in another resource's arguments is checked by the Store", () =>
      Effect.gen(function*() {
        const marty = yield* Store.create(Character, "create", { name: "Marty", currentYear: 1985 })
        const delorean = yield* Store.create(Machine, "create", { name: "OUTATIME" })
        const charged = yield* Store.update(Machine, delorean, "charge")

        const error = yield* Store.update(Machine, charged, "travelInTime", {
          occupants: [{ id: marty.id, name: "Marty", currentYear: "1955" }] as never,
          targetYear: 1955
        }).pipe(Effect.flip)
        assert.strictEqual(error._tag, "ValidationError")
        assert.deepStrictEqual(yield* Store.get(Machine, delorean), charged)

        yield* Store.update(Machine, charged, "travelInTime", { occupants: [marty], targetYear: 1955 })
        assert.strictEqual((yield* Store.get(Character, marty)).currentYear, 1955)
      }).pipe(Effect.provide(layer())))

    it("keyOf picks the key fields of a record", () => {
      assert.deepStrictEqual(Resource.keyOf(Seat, { venue: "Odeon", row: 3, holder: "Marty" } as never), {
        venue: "Odeon",
        row: 3
      })
    })
  })

  describe("composite primary keys", () => {
    it.effect("records that differ in one key part are distinct records", () =>
      Effect.gen(function*() {
        const a1 = yield* Store.create(Seat, "create", { venue: "Odeon", row: 1, holder: "Marty" })
        const a2 = yield* Store.create(Seat, "create", { venue: "Odeon", row: 2, holder: "Jennifer" })
        const b1 = yield* Store.create(Seat, "create", { venue: "Bijou", row: 1, holder: "Doc" })

        assert.deepStrictEqual(yield* Store.get(Seat, { venue: "Odeon", row: 1 }), a1)
        assert.deepStrictEqual(yield* Store.get(Seat, { venue: "Odeon", row: 2 }), a2)
        assert.deepStrictEqual(yield* Store.get(Seat, { venue: "Bijou", row: 1 }), b1)
        assert.deepStrictEqual(yield* Store.reload(Seat, a2), a2)
        assert.strictEqual((yield* Store.get(Seat, { venue: "Bijou", row: 2 }).pipe(Effect.flip))._tag, "NotFound")

        // a full-key filter is answered from the registry, and must pick the right one
        const found = yield* Store.read(
          Query.make(Seat).pipe(Query.filter(Filter.and(Filter.eq("venue", "Bijou"), Filter.eq("row", 1))))
        )
        assert.deepStrictEqual(found, [b1])
        assert.deepStrictEqual(byKey(yield* Store.read(Query.make(Seat))), byKey([a1, a2, b1]))
      }).pipe(Effect.provide(seats())))

    it.effect("an exact duplicate key is AlreadyExists, and the first record is kept", () =>
      Effect.gen(function*() {
        const first = yield* Store.create(Seat, "create", { venue: "Odeon", row: 1, holder: "Marty" })
        const error = yield* Store.create(Seat, "create", { venue: "Odeon", row: 1, holder: "Biff" }).pipe(Effect.flip)
        assert.strictEqual(error._tag, "AlreadyExists")
        if (error._tag === "AlreadyExists") {
          assert.strictEqual(error.resource, "Seat")
          assert.deepStrictEqual(error.key, { venue: "Odeon", row: 1 })
        }
        assert.deepStrictEqual(yield* Store.get(Seat, { venue: "Odeon", row: 1 }), first)
        assert.deepStrictEqual(yield* Store.read(Query.make(Seat)), [first])
      }).pipe(Effect.provide(seats())))

    it.effect("an update that changes a key part re-registers the record under its new key", () =>
      Effect.gen(function*() {
        yield* Store.create(Seat, "create", { venue: "Odeon", row: 1, holder: "Marty" })
        const other = yield* Store.create(Seat, "create", { venue: "Odeon", row: 2, holder: "Jennifer" })
        const events = yield* Store.subscribe

        const moved = yield* Store.update(Seat, { venue: "Odeon", row: 1 }, "update", { row: 7 })
        assert.deepStrictEqual(moved, { venue: "Odeon", row: 7, holder: "Marty" })

        const old = yield* Store.get(Seat, { venue: "Odeon", row: 1 }).pipe(Effect.flip)
        assert.strictEqual(old._tag, "NotFound")
        assert.deepStrictEqual(yield* Store.get(Seat, { venue: "Odeon", row: 7 }), moved)
        assert.deepStrictEqual(yield* Store.get(Seat, other), other)
        assert.deepStrictEqual(byKey(yield* Store.read(Query.make(Seat))), byKey([moved, other]))

        const [updated] = yield* PubSub.takeUpTo(events, 10)
        assert.strictEqual(updated?._tag, "Updated")
        assert.deepStrictEqual(updated?.key, { venue: "Odeon", row: 7 })

        // the record answers at its new key, and the old key is free again
        const renamed = yield* Store.update(Seat, { venue: "Odeon", row: 7 }, "update", { venue: "Bijou" })
        assert.deepStrictEqual(renamed, { venue: "Bijou", row: 7, holder: "Marty" })
        assert.strictEqual((yield* Store.get(Seat, moved).pipe(Effect.flip))._tag, "NotFound")
        const again = yield* Store.create(Seat, "create", { venue: "Odeon", row: 1, holder: "Biff" })
        assert.deepStrictEqual(yield* Store.get(Seat, { venue: "Odeon", row: 1 }), again)
        assert.strictEqual((yield* Store.read(Query.make(Seat))).length, 3)
      }).pipe(Effect.provide(seats())))

    it.effect("a key change onto a taken key is AlreadyExists and changes nothing", () =>
      Effect.gen(function*() {
        const one = yield* Store.create(Seat, "create", { venue: "Odeon", row: 1, holder: "Marty" })
        const two = yield* Store.create(Seat, "create", { venue: "Odeon", row: 2, holder: "Jennifer" })
        const events = yield* Store.subscribe

        const error = yield* Store.update(Seat, one, "update", { row: 2, holder: "Biff" }).pipe(Effect.flip)
        assert.strictEqual(error._tag, "AlreadyExists")
        assert.deepStrictEqual(yield* Store.get(Seat, one), one)
        assert.deepStrictEqual(yield* Store.get(Seat, two), two)
        assert.deepStrictEqual(byKey(yield* Store.read(Query.make(Seat))), byKey([one, two]))
        assert.deepStrictEqual(yield* PubSub.takeUpTo(events, 10), [])
      }).pipe(Effect.provide(seats())))

    it.effect("key parts are told apart however their values line up", () =>
      Effect.gen(function*() {
        // pairs that a naive encoding (concatenation, a separator, String()) would confuse
        const pairs: ReadonlyArray<readonly [string, number]> = [
          ["a", 11],
          ["a1", 1],
          ["a", -1],
          ["a-", 1],
          ["a,", 1],
          ["a", 1],
          ["a\u0000", 1],
          ["a\u00001", 1],
          ["\"a\"", 1],
          ["", 1],
          ["1", 1]
        ]
        for (const [venue, row] of pairs) yield* Store.create(Seat, "create", { venue, row, holder: `${venue}/${row}` })
        for (const [venue, row] of pairs) {
          assert.strictEqual((yield* Store.get(Seat, { venue, row })).holder, `${venue}/${row}`)
        }
        assert.strictEqual((yield* Store.read(Query.make(Seat))).length, pairs.length)

        // two string parts: a separator inside a value must not shift the boundary
        const splits: ReadonlyArray<readonly [string, string]> = [
          ["a,", "b"],
          ["a", ",b"],
          ["a\u0000", "b"],
          ["a", "\u0000b"],
          ["a\"", "b"],
          ["a", "\"b"],
          ["a\\", "b"],
          ["a", "\\b"],
          ["ab", ""],
          ["", "ab"]
        ]
        for (const [left, right] of splits) yield* Store.create(Pair, "create", { left, right, n: splits.length })
        for (const [left, right] of splits) {
          assert.deepStrictEqual(yield* Store.get(Pair, { left, right }), { left, right, n: splits.length })
        }
        assert.strictEqual((yield* Store.read(Query.make(Pair))).length, splits.length)
      }).pipe(Effect.provide(Store.layer([Seat, Pair]))))

    it.effect("a key of the wrong shape is a ValidationError", () =>
      Effect.gen(function*() {
        yield* Store.create(Seat, "create", { venue: "Odeon", row: 1, holder: "Marty" })
        const missingPart = yield* Store.get(Seat, { venue: "Odeon" } as never).pipe(Effect.flip)
        assert.strictEqual(missingPart._tag, "ValidationError")
        const wrongType = yield* Store.get(Seat, { venue: "Odeon", row: "1" } as never).pipe(Effect.flip)
        assert.strictEqual(wrongType._tag, "ValidationError")
      }).pipe(Effect.provide(seats())))

    it.effect.prop(
      "distinct composite keys never collide; equal ones always do",
      {
        keys: Schema.Array(
          Schema.Struct({
            // a few look-alike strings make collisions likely, and test the key encoding's escaping
            venue: Schema.Union([
              Schema.Literals(["", "a", "a1", "a-", "a\u0000", "\"a\"", "a\u00001", "1"]),
              Schema.String
            ]),
            row: Schema.Int.check(Schema.isBetween({ minimum: -12, maximum: 12 }))
          })
        ).check(Schema.isMaxLength(12))
      },
      ({ keys }) =>
        Effect.gen(function*() {
          const kept: Array<Seat> = []
          for (const [i, { row, venue }] of keys.entries()) {
            const taken = kept.some((s) => s.venue === venue && s.row === row)
            const exit = yield* Effect.exit(Store.create(Seat, "create", { venue, row, holder: `h${i}` }))
            if (taken) {
              assert.isTrue(exit._tag === "Failure")
              const error = yield* Store.create(Seat, "create", { venue, row, holder: "x" }).pipe(Effect.flip)
              assert.strictEqual(error._tag, "AlreadyExists")
            } else {
              assert.isTrue(exit._tag === "Success")
              kept.push({ venue, row, holder: `h${i}` })
            }
          }
          for (const seat of kept) {
            assert.deepStrictEqual(yield* Store.get(Seat, { venue: seat.venue, row: seat.row }), seat)
          }
          assert.strictEqual((yield* Store.read(Query.make(Seat))).length, kept.length)
        }).pipe(Effect.provide(seats())),
      { arbitrary: { seed: 1955, runs: 60 } }
    )
  })

  describe("invalid definitions throw InvalidResource at make time", () => {
    it("a primary key field that is not a field", () => {
      assertInvalid(() => Resource.make("Broken", { fields, primaryKey: ["uuid"] as never }), "uuid")
      assertInvalid(() => Resource.make("Broken", { fields, primaryKey: ["id", "tenant"] as never }), "tenant")
    })

    it("an empty primary key", () => {
      assertInvalid(() => Resource.make("Broken", { fields, primaryKey: [] }), "primary key")
    })

    it("a primary key that repeats a field", () => {
      assertInvalid(() => Resource.make("Broken", { fields, primaryKey: ["id", "id"] }), "primary key")
    })

    it("a generated field that is not a field", () => {
      assertInvalid(
        () => Resource.make("Broken", { fields, primaryKey: ["id"], generated: { uuid: () => "x" } as never }),
        "uuid"
      )
    })

    it("an indexed field that is not a field", () => {
      assertInvalid(() => Resource.make("Broken", { fields, primaryKey: ["id"], indexes: ["age"] as never }), "age")
    })

    it("an accepted field that is not a field", () => {
      assertInvalid(
        () =>
          Resource.make("Broken", {
            fields,
            primaryKey: ["id"],
            actions: { rename: Action.update({ accept: ["title"] as never }) }
          }),
        "title"
      )
    })

    it("an argument that is also an accepted field", () => {
      assertInvalid(
        () =>
          Resource.make("Broken", {
            fields,
            primaryKey: ["id"],
            actions: { rename: Action.update({ accept: ["name"], arguments: { name: Schema.String } }) }
          }),
        "name"
      )
    })

    it("an action that is not an Action", () => {
      assertInvalid(
        () => Resource.make("Broken", { fields, primaryKey: ["id"], actions: { rename: { kind: "update" } as never } }),
        "rename"
      )
    })

    it("a bad duration", () => {
      assertInvalid(
        () => Resource.make("Broken", { fields, primaryKey: ["id"], inactivityTimeout: "soon" as never }),
        "inactivityTimeout"
      )
      assertInvalid(
        () => Resource.make("Broken", { fields, primaryKey: ["id"], maximumLifetime: -1 }),
        "maximumLifetime"
      )
      assertInvalid(
        () =>
          Resource.make("Broken", {
            fields,
            primaryKey: ["id"],
            restartIntensity: { maxRestarts: 3, within: "a while" as never }
          }),
        "within"
      )
    })

    it("a bad restart policy or intensity", () => {
      assertInvalid(() => Resource.make("Broken", { fields, primaryKey: ["id"], restart: "always" as never }), "always")
      assertInvalid(
        () => Resource.make("Broken", { fields, primaryKey: ["id"], restartIntensity: { maxRestarts: -1, within: 1 } }),
        "maxRestarts"
      )
      assertInvalid(
        () =>
          Resource.make("Broken", { fields, primaryKey: ["id"], restartIntensity: { maxRestarts: 1.5, within: 1 } }),
        "maxRestarts"
      )
    })

    it("a bad mailbox capacity or name", () => {
      assertInvalid(() => Resource.make("Broken", { fields, primaryKey: ["id"], mailboxCapacity: 0 }), "mailbox")
      const e = thrown(() => Resource.make("", { fields, primaryKey: ["id"] }))
      assert.instanceOf(e, Errors.InvalidResource)
    })

    it("a malformed definition: missing or non-object parts are InvalidResource, never a TypeError", () => {
      const make = (options: unknown) => () => Resource.make("Broken", options as any)
      assertInvalid(make({ primaryKey: ["id"] }), "fields")
      assertInvalid(make(undefined), "definition")
      assertInvalid(make(null), "definition")
      assertInvalid(make("fields"), "definition")
      assertInvalid(make({ fields: null, primaryKey: ["id"] }), "fields")
      assertInvalid(make({ fields: [Schema.String], primaryKey: ["0"] }), "fields")
      assertInvalid(make({ fields: { id: "string" }, primaryKey: ["id"] }), "id")
      assertInvalid(make({ fields }), "primary key")
      assertInvalid(make({ fields, primaryKey: "id" }), "primary key")
      assertInvalid(make({ fields, primaryKey: ["id"], generated: "id" }), "generated")
      assertInvalid(make({ fields, primaryKey: ["id"], generated: { id: "x" } }), "generated")
      assertInvalid(make({ fields, primaryKey: ["id"], indexes: "name" }), "indexes")
      assertInvalid(make({ fields, primaryKey: ["id"], restartIntensity: 3 }), "restartIntensity")
    })

    it("bad action values are InvalidResource", () => {
      const make = (actions: unknown) => () => Resource.make("Broken", { fields, primaryKey: ["id"], actions } as any)
      assertInvalid(make({ rename: null }), "rename")
      assertInvalid(make({ rename: 42 }), "rename")
      assertInvalid(make("rename"), "actions")
      assertInvalid(make(() => null), "actions")
      assertInvalid(make(() => ({ rename: { kind: "update" } })), "rename")
      const action = (patch: object) => ({ ...Action.update(), ...patch })
      assertInvalid(make({ rename: action({ accept: "name" }) }), "accept")
      assertInvalid(make({ rename: action({ arguments: null }) }), "arguments")
      assertInvalid(make({ rename: action({ arguments: { to: 1 } }) }), "to")
      assertInvalid(make({ rename: action({ error: "NoPower" }) }), "error")
      assertInvalid(make({ rename: action({ change: "set" }) }), "change")
    })

    it("bad defaults are InvalidResource", () => {
      const make = (defaults: unknown) => () => Resource.make("Broken", { fields, primaryKey: ["id"], defaults } as any)
      assertInvalid(make("create"), "defaults")
      assertInvalid(make(["create", "upsert"]), "upsert")
      assert.isUndefined(thrown(make([])))
      assert.deepStrictEqual(
        Object.keys(Resource.make("Fine", { fields, primaryKey: ["id"], defaults: [] }).actions),
        []
      )
      assert.deepStrictEqual(
        Object.keys(Resource.make("Fine", { fields, primaryKey: ["id"], defaults: ["read", "create"] }).actions),
        ["read", "create"]
      )
    })

    it("valid definitions do not throw", () => {
      assert.isUndefined(thrown(() => Resource.make("Fine", { fields, primaryKey: ["id", "name"] })))
      assert.isUndefined(
        thrown(() =>
          Resource.make("Fine", {
            fields,
            primaryKey: ["id"],
            generated: { id: () => "x" },
            indexes: ["name"],
            inactivityTimeout: 0,
            maximumLifetime: Duration.infinity,
            restart: "lastState",
            restartIntensity: { maxRestarts: 0, within: "1 second" },
            actions: { rename: Action.update({ accept: ["name"] }) }
          })
        )
      )
    })
  })

  describe("values", () => {
    const Clock = Resource.make("ClockTower", {
      fields: { id: Schema.String, strikes: Schema.Int },
      primaryKey: ["id"]
    })

    it("a resource pipes, and prints as its name, key, fields and actions", () => {
      assert.strictEqual(Clock.pipe((r) => r.name), "ClockTower")
      const summary = {
        _id: "Resource",
        name: "ClockTower",
        primaryKey: ["id"],
        fields: ["id", "strikes"],
        actions: ["create", "update", "destroy", "read"]
      }
      assert.deepStrictEqual(Clock.toJSON(), summary)
      assert.deepStrictEqual(JSON.parse(JSON.stringify(Clock)), summary)
      assert.include(String(Clock), "ClockTower")
    })

    it("isResource tells a resource from a look-alike", () => {
      assert.isTrue(Resource.isResource(Clock))
      assert.isFalse(Resource.isResource({ ...Clock }))
      assert.isFalse(Resource.isResource({ name: "ClockTower", primaryKey: ["id"] }))
      assert.isFalse(Resource.isResource(null))
    })
  })
})
