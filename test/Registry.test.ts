/**
 * Port of the original's `test/ash_gen_server/registry_test.exs`.
 *
 * The original registers and unregisters the test process by hand. Here the
 * registry is observed through the Store: a created record is found by its
 * key, a destroyed one is not, a record is re-registered when its primary key
 * changes, and a taken key is refused.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as fc from "fast-check"
import { Query, Resource, Store } from "../src/index.js"
import * as Registry from "../src/internal/fiber/registry.js"
import { Character, layer, Machine } from "./fixtures/TimeTravel.js"

const ids = (records: ReadonlyArray<{ readonly id: string }>) => records.map((r) => r.id).sort()

const createCharacters = (count: number) =>
  Effect.forEach(
    Array.from({ length: count }, (_, i) => i),
    (i) => Store.create(Character, "create", { name: `Extra ${i}`, currentYear: 1955 })
  )

describe("Registry", () => {
  describe("register", () => {
    it.effect("it registers a record server under its primary key", () =>
      Effect.gen(function*() {
        const id = crypto.randomUUID()
        const biff = yield* Store.create(Character, "create", { id, name: "Biff Tannen", currentYear: 2015 })
        assert.strictEqual(biff.id, id)

        const found = yield* Store.get(Character, { id })
        assert.deepStrictEqual(found, biff)
      }).pipe(Effect.provide(layer())))

    it.effect("a taken key is refused with AlreadyExists and the first record is kept", () =>
      Effect.gen(function*() {
        const id = crypto.randomUUID()
        const biff = yield* Store.create(Character, "create", { id, name: "Biff Tannen", currentYear: 2015 })

        const error = yield* Store.create(Character, "create", { id, name: "Griff Tannen", currentYear: 2015 })
          .pipe(Effect.flip)
        assert.strictEqual(error._tag, "AlreadyExists")
        if (error._tag === "AlreadyExists") {
          assert.strictEqual(error.resource, "Character")
          assert.deepStrictEqual(error.key, { id })
        }

        assert.deepStrictEqual(yield* Store.get(Character, { id }), biff)
        assert.deepStrictEqual(ids(yield* Store.read(Query.make(Character))), [id])
      }).pipe(Effect.provide(layer())))

    it.effect("keys are per resource: the same key can be taken by two resources", () =>
      Effect.gen(function*() {
        const id = crypto.randomUUID()
        const doc = yield* Store.create(Character, "create", { id, name: "Emmet Lathrop Brown", currentYear: 1985 })
        const delorean = yield* Store.create(Machine, "create", { id, name: "OUTATIME" })

        assert.deepStrictEqual(yield* Store.get(Character, { id }), doc)
        assert.deepStrictEqual(yield* Store.get(Machine, { id }), delorean)
      }).pipe(Effect.provide(layer())))
  })

  describe("unregister", () => {
    it.effect("a destroyed record's key is freed", () =>
      Effect.gen(function*() {
        const biff = yield* Store.create(Character, "create", { name: "Biff Tannen", currentYear: 2015 })
        yield* Store.destroy(Character, biff)

        const error = yield* Store.get(Character, { id: biff.id }).pipe(Effect.flip)
        assert.strictEqual(error._tag, "NotFound")

        // and can be taken again
        const again = yield* Store.create(Character, "create", { id: biff.id, name: "Biff Tannen", currentYear: 1955 })
        assert.strictEqual((yield* Store.get(Character, { id: biff.id })).currentYear, 1955)
        assert.strictEqual(again.currentYear, 1955)
      }).pipe(Effect.provide(layer())))
  })

  describe("find_server_by_resource_key", () => {
    it.effect("when given the key of a registered record, it returns it", () =>
      Effect.gen(function*() {
        const biff = yield* Store.create(Character, "create", { name: "Biff Tannen", currentYear: 2015 })
        assert.deepStrictEqual(yield* Store.get(Character, { id: biff.id }), biff)
        assert.deepStrictEqual(yield* Store.reload(Character, biff), biff)
      }).pipe(Effect.provide(layer())))

    it.effect("when given the key of a non-registered record, it returns a not found error", () =>
      Effect.gen(function*() {
        yield* Store.create(Character, "create", { name: "Biff Tannen", currentYear: 2015 })
        const id = crypto.randomUUID()

        const error = yield* Store.get(Character, { id }).pipe(Effect.flip)
        assert.strictEqual(error._tag, "NotFound")
        if (error._tag === "NotFound") {
          assert.strictEqual(error.resource, "Character")
          assert.deepStrictEqual(error.key, { id })
        }
      }).pipe(Effect.provide(layer())))
  })

  describe("find_servers_by_resource", () => {
    it.effect("when there are records of the resource, it returns all of them", () =>
      Effect.gen(function*() {
        const characters = yield* createCharacters(7)
        yield* Store.create(Machine, "create", { name: "OUTATIME" })

        const result = yield* Store.read(Query.make(Character))
        assert.strictEqual(result.length, 7)
        assert.deepStrictEqual(ids(result), ids(characters))
      }).pipe(Effect.provide(layer())))
  })

  describe("find_servers", () => {
    it.effect("it returns every registered record of every resource", () =>
      Effect.gen(function*() {
        const characters = yield* createCharacters(5)
        const machines = yield* Effect.forEach(
          ["OUTATIME", "Jules Verne Train"],
          (name) => Store.create(Machine, "create", { name })
        )

        const all = [
          ...(yield* Store.read(Query.make(Character))),
          ...(yield* Store.read(Query.make(Machine)))
        ]
        assert.strictEqual(all.length, 7)
        assert.deepStrictEqual(ids(all), ids([...characters, ...machines]))
      }).pipe(Effect.provide(layer())))
  })

  // From the original's Server.handle_call({:update, ...}): a changed primary
  // key unregisters the old key and registers the new one.
  describe("re-registration", () => {
    it.effect("a change of primary key moves the record to its new key", () =>
      Effect.gen(function*() {
        const biff = yield* Store.create(Character, "create", { name: "Biff Tannen", currentYear: 2015 })
        const newId = crypto.randomUUID()

        const moved = yield* Store.update(Character, biff, "update", { id: newId })
        assert.strictEqual(moved.id, newId)
        assert.strictEqual(moved.name, "Biff Tannen")

        const error = yield* Store.get(Character, { id: biff.id }).pipe(Effect.flip)
        assert.strictEqual(error._tag, "NotFound")
        assert.deepStrictEqual(yield* Store.get(Character, { id: newId }), moved)
        assert.deepStrictEqual(ids(yield* Store.read(Query.make(Character))), [newId])

        // the record's server keeps serving under the new key
        const older = yield* Store.update(Character, { id: newId }, "travelInTime", { targetYear: 1955 })
        assert.strictEqual(older.currentYear, 1955)
        assert.strictEqual((yield* Store.get(Character, { id: newId })).currentYear, 1955)
        // and the old key is free
        const other = yield* Store.create(Character, "create", { id: biff.id, name: "Griff Tannen", currentYear: 2015 })
        assert.deepStrictEqual(yield* Store.get(Character, { id: biff.id }), other)
      }).pipe(Effect.provide(layer())))

    it.effect("a change to a taken primary key fails with AlreadyExists and changes nothing", () =>
      Effect.gen(function*() {
        const biff = yield* Store.create(Character, "create", { name: "Biff Tannen", currentYear: 2015 })
        const griff = yield* Store.create(Character, "create", { name: "Griff Tannen", currentYear: 2015 })

        const error = yield* Store.update(Character, biff, "update", { id: griff.id, currentYear: 1955 })
          .pipe(Effect.flip)
        assert.strictEqual(error._tag, "AlreadyExists")

        assert.deepStrictEqual(yield* Store.get(Character, { id: biff.id }), biff)
        assert.deepStrictEqual(yield* Store.get(Character, { id: griff.id }), griff)
      }).pipe(Effect.provide(layer())))
  })

  describe("composite keys", () => {
    const Passenger = Resource.make("Passenger", {
      fields: { year: Schema.Int, seat: Schema.String, name: Schema.String },
      primaryKey: ["year", "seat"]
    })

    it.effect("a record is found by its full composite key", () =>
      Effect.gen(function*() {
        const marty1955 = yield* Store.create(Passenger, "create", { year: 1955, seat: "left", name: "Marty" })
        const doc1955 = yield* Store.create(Passenger, "create", { year: 1955, seat: "right", name: "Doc" })
        const marty1985 = yield* Store.create(Passenger, "create", { year: 1985, seat: "left", name: "Marty" })

        assert.deepStrictEqual(yield* Store.get(Passenger, { year: 1955, seat: "left" }), marty1955)
        assert.deepStrictEqual(yield* Store.get(Passenger, { year: 1955, seat: "right" }), doc1955)
        assert.deepStrictEqual(yield* Store.get(Passenger, { year: 1985, seat: "left" }), marty1985)

        const missing = yield* Store.get(Passenger, { year: 1985, seat: "right" }).pipe(Effect.flip)
        assert.strictEqual(missing._tag, "NotFound")

        const taken = yield* Store.create(Passenger, "create", { year: 1955, seat: "left", name: "Biff" })
          .pipe(Effect.flip)
        assert.strictEqual(taken._tag, "AlreadyExists")
      }).pipe(Effect.provide(Store.layer([Passenger]))))
  })

  // The original's RuntimeCase starts a fresh Registry and Supervisor per test.
  it.effect("each Store layer has its own registry", () =>
    Effect.gen(function*() {
      const biff = yield* Store.create(Character, "create", { name: "Biff Tannen", currentYear: 2015 })
        .pipe(Effect.provide(layer()))

      const error = yield* Store.get(Character, { id: biff.id }).pipe(Effect.flip, Effect.provide(layer()))
      assert.strictEqual(error._tag, "NotFound")
      assert.deepStrictEqual(yield* Store.read(Query.make(Character)).pipe(Effect.provide(layer())), [])
    }))
})

describe("dense arrays of live records", () => {
  type Op =
    | { readonly _tag: "enlist"; readonly server: number }
    | { readonly _tag: "commit"; readonly server: number; readonly value: number }
    | { readonly _tag: "delist"; readonly server: number }
    | { readonly _tag: "remove"; readonly server: number }
  const SERVERS = 6
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ _tag: fc.constant("enlist" as const), server: fc.nat(SERVERS - 1) }),
    fc.record({ _tag: fc.constant("commit" as const), server: fc.nat(SERVERS - 1), value: fc.nat(99) }),
    fc.record({ _tag: fc.constant("delist" as const), server: fc.nat(SERVERS - 1) }),
    fc.record({ _tag: fc.constant("remove" as const), server: fc.nat(SERVERS - 1) })
  )

  it("hold each enlisted server once, with its last committed record, whatever the order of changes", () =>
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        // the registry is generic over a minimal entry
        interface TestEntry extends Registry.Entry {
          record: unknown
        }
        const table = Registry.make<TestEntry>([{ name: "R", indexes: [] }]).tables.get("R")!
        const servers: Array<TestEntry> = Array.from({ length: SERVERS }, (_, i) => ({
          key: `k${i}`,
          status: "live",
          liveSlot: -1,
          record: { v: -1 }
        }))
        const model = new Map<number, unknown>()
        for (const op of ops) {
          const server = servers[op.server]!
          if (op._tag === "enlist") {
            Registry.enlistUnsafe(table, server, server.record)
            if (!model.has(op.server)) model.set(op.server, server.record)
          } else if (op._tag === "commit") {
            const record = { v: op.value }
            server.record = record
            Registry.commitUnsafe(table, server, {}, record, server.key)
            if (model.has(op.server)) model.set(op.server, record)
          } else if (op._tag === "delist") {
            Registry.delistUnsafe(table, server)
            model.delete(op.server)
          } else {
            Registry.removeUnsafe(table, server, undefined)
            model.delete(op.server)
          }
          assert.strictEqual(table.live.length, model.size)
          assert.strictEqual(table.records.length, model.size)
          table.live.forEach((s, i) => {
            assert.strictEqual(s.liveSlot, i)
            assert.strictEqual(table.records[i], model.get(servers.indexOf(s)))
          })
          servers.forEach((s, i) => assert.strictEqual(s.liveSlot >= 0, model.has(i)))
        }
      }),
      { seed: 1955, numRuns: 500 }
    ))
})
