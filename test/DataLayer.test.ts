/**
 * Port of the original's `test/ash_gen_server/data_layer_test.exs`.
 *
 * The original calls `AshGenServer.DataLayer` callbacks directly and inspects
 * the registry and the server processes; here the same scenarios go through
 * the Store (backed by the GenServer data layer), and process liveness is
 * observed through lifecycle events, `get` and `read`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, PubSub, Schema } from "effect"
import { Filter, Query, Store } from "../src/index.js"
import { Character, layer, Machine } from "./fixtures/TimeTravel.js"

const ids = (records: ReadonlyArray<{ readonly id: string }>) => records.map((r) => r.id).sort()
const nicknames = (records: ReadonlyArray<Character>) => records.map((r) => r.nickname)

// `with_character_fixtures` of the original
const withCharacterFixtures = Effect.gen(function*() {
  const doc = yield* Store.create(Character, "create", {
    name: "Emmet Lathrop Brown",
    nickname: "Doc",
    currentYear: 1985
  })
  const marty = yield* Store.create(Character, "create", {
    name: "Martin Seamus McFly",
    nickname: "Marty",
    currentYear: 1985
  })
  return { doc, marty }
})

describe("DataLayer", () => {
  describe("create", () => {
    it.effect("it spawns and registers a new record server", () =>
      Effect.gen(function*() {
        const events = yield* Store.subscribe
        const marty = yield* Store.create(Character, "create", {
          name: "Martin Seamus McFly",
          nickname: "Marty",
          currentYear: 1985
        })
        assert.isString(marty.id)
        assert.isTrue(marty.id.length > 0)

        const created = yield* PubSub.take(events)
        assert.strictEqual(created._tag, "Created")
        assert.strictEqual(created.resource, "Character")
        assert.deepStrictEqual(created.key, { id: marty.id })
        assert.deepStrictEqual(created.record, marty)

        // the registry holds exactly this one record server
        assert.deepStrictEqual(ids(yield* Store.read(Query.make(Character))), [marty.id])
        assert.deepStrictEqual(yield* Store.read(Query.make(Machine)), [])

        const got = yield* Store.get(Character, { id: marty.id })
        assert.strictEqual(got.nickname, "Marty")
      }).pipe(Effect.provide(layer())))
  })

  describe("update", () => {
    it.effect("when a record exists, it updates it", () =>
      Effect.gen(function*() {
        const doc = yield* Store.create(Character, "create", {
          name: "Emmet Lathrop Brown",
          nickname: "Doc",
          currentYear: 1985
        })

        const updated = yield* Store.update(Character, doc, "travelInTime", { targetYear: 1955 })
        assert.strictEqual(updated.currentYear, 1955)

        const got = yield* Store.get(Character, { id: doc.id })
        assert.strictEqual(got.currentYear, 1955)
      }).pipe(Effect.provide(layer())))

    it.effect("when a record doesn't exist, it returns an error", () =>
      Effect.gen(function*() {
        const doc: Character = {
          id: crypto.randomUUID(),
          name: "Emmet Lathrop Brown",
          nickname: "Doc",
          currentYear: 1985
        }

        const error = yield* Store.update(Character, doc, "travelInTime", { targetYear: 1955 }).pipe(Effect.flip)
        assert.strictEqual(error._tag, "NotFound")
        if (error._tag === "NotFound") {
          assert.strictEqual(error.resource, "Character")
          assert.deepStrictEqual(error.key, { id: doc.id })
        }
        assert.deepStrictEqual(yield* Store.read(Query.make(Character)), [])
      }).pipe(Effect.provide(layer())))
  })

  describe("destroy", () => {
    it.effect("when a record exists, it stops its server", () =>
      Effect.gen(function*() {
        const doc = yield* Store.create(Character, "create", {
          name: "Emmet Lathrop Brown",
          nickname: "Doc",
          currentYear: 1985
        })
        const events = yield* Store.subscribe

        yield* Store.destroy(Character, doc, "destroy")

        const destroyed = yield* PubSub.take(events)
        assert.strictEqual(destroyed._tag, "Destroyed")
        assert.strictEqual(destroyed.resource, "Character")
        assert.deepStrictEqual(destroyed.key, { id: doc.id })
        if (destroyed._tag === "Destroyed") {
          assert.strictEqual(destroyed.reason, "action")
        }

        const error = yield* Store.get(Character, { id: doc.id }).pipe(Effect.flip)
        assert.strictEqual(error._tag, "NotFound")
        assert.deepStrictEqual(yield* Store.read(Query.make(Character)), [])
      }).pipe(Effect.provide(layer())))

    it.effect("when a record doesn't exist, it returns an error", () =>
      Effect.gen(function*() {
        const doc: Character = {
          id: crypto.randomUUID(),
          name: "Emmet Lathrop Brown",
          nickname: "Doc",
          currentYear: 1985
        }

        const error = yield* Store.destroy(Character, doc, "destroy").pipe(Effect.flip)
        assert.strictEqual(error._tag, "NotFound")
      }).pipe(Effect.provide(layer())))
  })

  describe("resource_to_query", () => {
    it.effect("a new empty query reads every record of its resource, and only those", () =>
      Effect.gen(function*() {
        const { doc, marty } = yield* withCharacterFixtures
        const delorean = yield* Store.create(Machine, "create", { name: "OUTATIME" })

        assert.deepStrictEqual(ids(yield* Store.read(Query.make(Character))), [doc.id, marty.id].sort())
        assert.deepStrictEqual(ids(yield* Store.read(Query.make(Machine))), [delorean.id])
      }).pipe(Effect.provide(layer())))
  })

  describe("filter", () => {
    it.effect("when the query contains no filter, it adds it", () =>
      Effect.gen(function*() {
        const delorean = yield* Store.create(Machine, "create", { name: "OUTATIME", powerSource: "Plutonium" })
        yield* Store.create(Machine, "create", { name: "Jules Verne Train", powerSource: "Steam" })

        const result = yield* Store.read(Query.make(Machine).pipe(Query.filter(Filter.eq("name", "OUTATIME"))))
        assert.deepStrictEqual(ids(result), [delorean.id])
      }).pipe(Effect.provide(layer())))

    // the original combines `name: "OUTATIME"` with `model: "DMC-12"`; DESIGN.md's Machine has no model
    it.effect("when the query contains a filter, it combines them", () =>
      Effect.gen(function*() {
        const delorean = yield* Store.create(Machine, "create", { name: "OUTATIME", powerSource: "Plutonium" })
        yield* Store.create(Machine, "create", { name: "OUTATIME", powerSource: "Mr Fusion" })
        yield* Store.create(Machine, "create", { name: "Jules Verne Train", powerSource: "Plutonium" })

        const result = yield* Store.read(
          Query.make(Machine).pipe(
            Query.filter(Filter.eq("name", "OUTATIME")),
            Query.filter(Filter.eq("powerSource", "Plutonium"))
          )
        )
        assert.deepStrictEqual(ids(result), [delorean.id])
      }).pipe(Effect.provide(layer())))
  })

  describe("run_query", () => {
    it.effect("when retrieving an existing record by the primary key, it works", () =>
      Effect.gen(function*() {
        const { doc } = yield* withCharacterFixtures
        const result = yield* Store.read(Query.make(Character).pipe(Query.filter(Filter.eq("id", doc.id))))
        assert.deepStrictEqual(result, [doc])
      }).pipe(Effect.provide(layer())))

    it.effect("when retrieving a non-existent record by the primary key, it returns an empty list", () =>
      Effect.gen(function*() {
        yield* withCharacterFixtures
        const result = yield* Store.read(
          Query.make(Character).pipe(Query.filter(Filter.eq("id", crypto.randomUUID())))
        )
        assert.deepStrictEqual(result, [])
      }).pipe(Effect.provide(layer())))

    it.effect("it can filter by arbitrary fields", () =>
      Effect.gen(function*() {
        yield* withCharacterFixtures
        const result = yield* Store.read(Query.make(Character).pipe(Query.filter(Filter.eq("nickname", "Marty"))))
        assert.deepStrictEqual(nicknames(result), ["Marty"])
      }).pipe(Effect.provide(layer())))

    it.effect("it can sort by arbitrary fields", () =>
      Effect.gen(function*() {
        yield* withCharacterFixtures
        const result = yield* Store.read(Query.make(Character).pipe(Query.sort("name", "desc")))
        assert.deepStrictEqual(nicknames(result), ["Marty", "Doc"])
      }).pipe(Effect.provide(layer())))

    it.effect("it can offset an arbitrary number of results", () =>
      Effect.gen(function*() {
        yield* withCharacterFixtures
        const result = yield* Store.read(Query.make(Character).pipe(Query.sort("name", "asc"), Query.offset(1)))
        assert.deepStrictEqual(nicknames(result), ["Marty"])
      }).pipe(Effect.provide(layer())))

    it.effect("it can limit to an arbitrary number of results", () =>
      Effect.gen(function*() {
        yield* withCharacterFixtures
        const result = yield* Store.read(Query.make(Character).pipe(Query.sort("name", "asc"), Query.limit(1)))
        assert.deepStrictEqual(nicknames(result), ["Doc"])
      }).pipe(Effect.provide(layer())))

    // the query of DESIGN.md's example program
    it.effect("it combines filters, sort, offset and limit", () =>
      Effect.gen(function*() {
        const { marty } = yield* withCharacterFixtures
        const result = yield* Store.read(
          Query.make(Character).pipe(
            Query.filter(Filter.eq("nickname", "Marty")),
            Query.filter(Filter.and(Filter.gte("currentYear", 1955), Filter.not(Filter.isNil("name")))),
            Query.sort("name", "desc"),
            Query.offset(0),
            Query.limit(10)
          )
        )
        assert.deepStrictEqual(result, [marty])
      }).pipe(Effect.provide(layer())))

    it.effect.prop(
      "sort, offset and limit agree with sorting and slicing every record",
      {
        years: Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 1885, maximum: 2015 })))
          .check(Schema.isMaxLength(8)),
        offset: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 10 })),
        limit: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 10 }))
      },
      ({ limit, offset, years }) =>
        Effect.gen(function*() {
          const created = yield* Effect.forEach(years, (currentYear, i) =>
            Store.create(Character, "create", { name: `Character ${String(i).padStart(2, "0")}`, currentYear }))
          const expected = [...created]
            .sort((a, b) =>
              b.currentYear - a.currentYear || a.name.localeCompare(b.name)
            )
            .slice(offset, offset + limit)

          const result = yield* Store.read(
            Query.make(Character).pipe(
              Query.sort("currentYear", "desc"),
              Query.sort("name", "asc"),
              Query.offset(offset),
              Query.limit(limit)
            )
          )
          assert.deepStrictEqual(result, expected)
        }).pipe(Effect.provide(layer())),
      { arbitrary: { seed: 1985, runs: 50 } }
    )
  })
})
