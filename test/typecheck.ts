/**
 * Compile-time checks of the public API: every `@ts-expect-error` below must
 * be an error, so `tsc` (run by `npm test`) fails if a check stops working.
 */
import { Effect, type Layer, Schema } from "effect"
import { Action, Changeset, Filter, Query, Resource, Store } from "../src/index.js"
import { Character, Machine } from "./fixtures/TimeTravel.js"
const q = Query.make(Character)
export const ok = q.pipe(
  Query.filter(Filter.eq("nickname", "Marty")),
  Query.filter(Filter.and(Filter.gte("currentYear", 1955), Filter.not(Filter.isNil("name")))),
  Query.sort("name", "desc"),
  Query.offset(0),
  Query.limit(10)
)
// @ts-expect-error unknown field
export const bad1 = Store.read(q.pipe(Query.filter(Filter.eq("nick", "Marty"))))
// @ts-expect-error wrong value type
export const bad2 = Store.read(q.pipe(Query.filter(Filter.eq("currentYear", "1955"))))
// @ts-expect-error unknown sort field
export const bad3 = Store.read(q.pipe(Query.sort("age")))
// @ts-expect-error unknown field inside and
export const bad4 = Store.read(q.pipe(Query.filter(Filter.and(Filter.eq("name", "x"), Filter.eq("zzz", 1)))))
// @ts-expect-error unknown action
export const bad5 = Store.update(Machine, { id: "1" }, "fly")
// @ts-expect-error missing argument
export const bad6 = Store.update(Machine, { id: "1" }, "retrofit")
// @ts-expect-error wrong argument type
export const bad7 = Store.update(Character, { id: "1" }, "travelInTime", { targetYear: "1955" })
// @ts-expect-error missing required field on create
export const bad8 = Store.create(Character, "create", { name: "Marty" })
// @ts-expect-error update action passed to create
export const bad9 = Store.create(Machine, "charge", {})
export const good = Effect.gen(function*() {
  const m = yield* Store.create(Machine, "create", { name: "OUTATIME" })
  const c = yield* Store.update(Machine, m, "charge")
  yield* Store.update(Machine, c, "retrofit", { powerSource: "Lightning" })
  yield* Store.destroy(Machine, c)
  const r: ReadonlyArray<Resource.Record<typeof Character>> = yield* Store.read(ok)
  return r
})

// --- Resource, Action, Changeset, Filter, Query --------------------------------------------------

// @ts-expect-error a primary key field that is not a field
export const badKey = Resource.make("BadKey", { fields: { id: Schema.String }, primaryKey: ["uuid"] })
export const badGenerated = Resource.make("BadGen", {
  fields: { id: Schema.String },
  primaryKey: ["id"],
  // @ts-expect-error a generated field that is not a field
  generated: { uuid: () => "x" }
})
export const badGeneratedType = Resource.make("BadGenType", {
  fields: { id: Schema.String },
  primaryKey: ["id"],
  // @ts-expect-error a generator of the wrong type
  generated: { id: () => 1 }
})
export const badIndex = Resource.make("BadIndex", {
  fields: { id: Schema.String },
  primaryKey: ["id"],
  // @ts-expect-error an indexed field that is not a field
  indexes: ["age"]
})
export const badRestart = Resource.make("BadRestart", {
  fields: { id: Schema.String },
  primaryKey: ["id"],
  // @ts-expect-error a restart policy that does not exist
  restart: "always"
})

const Counter = Resource.make("Counter", {
  fields: { id: Schema.String, name: Schema.String, count: Schema.Int },
  primaryKey: ["id"],
  actions: {
    rename: Action.update({ accept: ["name"] }),
    add: Action.update({
      arguments: { amount: Schema.NumberFromString },
      change: (cs) => Changeset.set(cs, "count", Changeset.get(cs, "count") + cs.arguments.amount)
    }),
    close: Action.destroy()
  }
})
// the input of an argument is its encoded form
export const addOk = Store.update(Counter, { id: "1" }, "add", { amount: "41" })
// @ts-expect-error the decoded type is not the input
export const addBad = Store.update(Counter, { id: "1" }, "add", { amount: 41 })
export const renameOk = Store.update(Counter, { id: "1" }, "rename", { name: "x" })
// @ts-expect-error an update action is no destroy action
export const destroyBad = Store.destroy(Counter, { id: "1" }, "rename")
export const destroyOk = Store.destroy(Counter, { id: "1" }, "close")
// @ts-expect-error a key of the wrong shape
export const getBad = Store.get(Counter, { name: "x" })

// @ts-expect-error a sort direction that does not exist
export const badDirection = q.pipe(Query.sort("name", "up"))
// @ts-expect-error an ordering on a value of the wrong type
export const badGt = Store.read(q.pipe(Query.filter(Filter.gt("currentYear", "1955"))))
export const badNested = Store.read(
  // @ts-expect-error an unknown field inside or / not
  q.pipe(Query.filter(Filter.or(Filter.isNil("name"), Filter.not(Filter.isNil("age")))))
)

// actions declared without `arguments` or `accept` take no input
// @ts-expect-error charge takes no field
export const bad10 = Store.update(Machine, { id: "1" }, "charge", { hasPower: true })
// @ts-expect-error travelInTime accepts no field, only its arguments
export const bad11 = Store.update(Character, { id: "1" }, "travelInTime", { targetYear: 1955, name: "x" })

// an action without a change requires no service
const Plain = Resource.make("Plain", {
  fields: { id: Schema.String },
  primaryKey: ["id"],
  actions: { open: Action.create({ accept: ["id"] }) }
})
export const plainLayer: Layer.Layer<Store.Store> = Store.layer([Plain])

// an operation id keeps the write's type, data-last and data-first
const travel = Store.update(Character, { id: "1" }, "travelInTime", { targetYear: 1955 })
export const underId: typeof travel = travel.pipe(Store.withOperationId("travel-1"))
export const underIdFirst: typeof travel = Store.withOperationId(travel, "travel-1")
// @ts-expect-error an operation id is a string
export const badId = travel.pipe(Store.withOperationId(1))
