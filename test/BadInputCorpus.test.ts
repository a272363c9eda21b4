/**
 * Bad input never changes state.
 *
 * A table of malformed inputs from untyped callers — wrong types, missing
 * and extra fields, NaN and infinities, strings over a `maxLength`,
 * `__proto__` and `constructor` as own keys (made with `JSON.parse`),
 * values that are not plain objects (Date, Map, class instances, arrays,
 * null, functions), keys of the wrong shape, unknown fields and tags in
 * filters and sorts, bad limits and offsets, unknown action names and
 * actions of the wrong kind. Each case runs against a fresh Store holding a
 * few records and must fail with the expected typed error whose `message`
 * is a non-empty sentence naming what was wrong; the full state (a read of
 * every resource) and the events published must be as before.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, PubSub, Schema } from "effect"
import { Action, Changeset, Query, Resource, Store } from "../src/index.js"

const Profile = Resource.make("Profile", {
  fields: {
    id: Schema.String,
    name: Schema.String.check(Schema.isMaxLength(20)),
    age: Schema.Int,
    email: Schema.optionalKey(Schema.String),
    tags: Schema.Array(Schema.String),
    active: Schema.Boolean
  },
  primaryKey: ["id"],
  actions: {
    rename: Action.update({
      arguments: { newName: Schema.String.check(Schema.isMaxLength(20)) },
      change: (cs) => Changeset.set(cs, "name", cs.arguments.newName)
    }),
    birthday: Action.update({ change: (cs) => Changeset.set(cs, "age", Changeset.get(cs, "age") + 1) }),
    retire: Action.destroy()
  }
})

const Seat = Resource.make("Seat", {
  fields: { year: Schema.Int, seat: Schema.String, holder: Schema.String },
  primaryKey: ["year", "seat"]
})

/** A resource the Store under test was not built with. */
const Stranger = Resource.make("Stranger", { fields: { id: Schema.String }, primaryKey: ["id"] })

const marty = { id: "marty", name: "Marty", age: 17, tags: ["guitar"], active: true }
const doc = { id: "doc", name: "Doc", age: 65, email: "doc@hill.valley", tags: [], active: true }
const seat = { year: 1955, seat: "A1", holder: "Lorraine" }

const huge = "x".repeat(1_000_000)
class Person {
  constructor(readonly id: string, readonly name: string) {}
}
const valid = { id: "new", name: "New", age: 1, tags: [], active: false }

/** `not(not(...(eq age 1)))`, `depth` times, as a JSON body would bring it. */
const deep = (depth: number): unknown => {
  let filter: unknown = { _tag: "Eq", field: "age", value: 1 }
  for (let i = 0; i < depth; i++) filter = { _tag: "Not", filter }
  return filter
}

/** Untyped access: what a plain JavaScript caller can do. */
const U = {
  create: (resource: Resource.Any, action: unknown, input?: unknown) =>
    Store.create(resource as any, action as never, input as never),
  update: (resource: Resource.Any, key: unknown, action: unknown, input?: unknown) =>
    Store.update(resource as any, key as never, action as never, input as never),
  destroy: (resource: Resource.Any, key: unknown, action?: unknown) =>
    Store.destroy(resource as any, key as never, action as never),
  get: (resource: Resource.Any, key: unknown) => Store.get(resource as any, key as never),
  keepAlive: (resource: Resource.Any, key: unknown) => Store.keepAlive(resource as any, key as never),
  read: (resource: Resource.Any, query: { filter?: unknown; sort?: unknown; offset?: unknown; limit?: unknown }) => {
    let q: any = Query.make(resource as typeof Profile)
    if ("filter" in query) q = { ...q, filter: query.filter }
    if ("sort" in query) q = { ...q, sort: query.sort }
    if ("offset" in query) q = { ...q, offset: query.offset }
    if ("limit" in query) q = { ...q, limit: query.limit }
    return Store.read(
      Object.assign(Object.create(Object.getPrototypeOf(Query.make(Profile))), q) as Query.Query<unknown>
    )
  }
}

interface Case {
  readonly name: string
  readonly run: Effect.Effect<unknown, { readonly _tag: string; readonly message: string }, Store.Store>
  readonly tag: string
  /** What the message must mention (case-insensitive), so it points at the problem. */
  readonly mentions: ReadonlyArray<string>
}

const c = (
  name: string,
  tag: string,
  mentions: ReadonlyArray<string>,
  run: Case["run"]
): Case => ({ name, run, tag, mentions })

const V = "ValidationError"
const UA = "UnknownAction"

const corpus: ReadonlyArray<Case> = [
  // create: not an object
  c("create: input null", V, ["Profile", "null"], U.create(Profile, "create", null)),
  c("create: no input at all", V, ["Profile", "name"], U.create(Profile, "create")),
  c("create: input a number", V, ["Profile", "number"], U.create(Profile, "create", 42)),
  c("create: input a string", V, ["Profile", "string"], U.create(Profile, "create", "marty")),
  c("create: input an array", V, ["Profile", "array"], U.create(Profile, "create", [valid])),
  c("create: input a Date", V, ["Profile", "Date"], U.create(Profile, "create", new Date(0))),
  c("create: input a Map", V, ["Profile", "Map"], U.create(Profile, "create", new Map(Object.entries(valid)))),
  c("create: input a class instance", V, ["Profile", "Person"], U.create(Profile, "create", new Person("p", "P"))),
  c("create: input a function", V, ["Profile", "function"], U.create(Profile, "create", () => valid)),
  // create: fields
  c("create: a required field missing", V, ["name"], U.create(Profile, "create", { ...valid, name: undefined })),
  c("create: a required field absent", V, ["age"], U.create(Profile, "create", (({ age: _, ...rest }) => rest)(valid))),
  c("create: a string for an Int", V, ["age"], U.create(Profile, "create", { ...valid, age: "17" })),
  c("create: a fraction for an Int", V, ["age"], U.create(Profile, "create", { ...valid, age: 1.5 })),
  c("create: NaN for an Int", V, ["age"], U.create(Profile, "create", { ...valid, age: NaN })),
  c("create: Infinity for an Int", V, ["age"], U.create(Profile, "create", { ...valid, age: Infinity })),
  c("create: -Infinity for an Int", V, ["age"], U.create(Profile, "create", { ...valid, age: -Infinity })),
  c("create: a string over maxLength", V, ["name"], U.create(Profile, "create", { ...valid, name: "x".repeat(21) })),
  c("create: a huge string", V, ["name"], U.create(Profile, "create", { ...valid, name: huge })),
  c("create: an extra field", V, ["extra"], U.create(Profile, "create", { ...valid, extra: 1 })),
  c(
    "create: __proto__ as an own key",
    V,
    ["__proto__"],
    U.create(
      Profile,
      "create",
      JSON.parse(`{"__proto__":{"admin":true},"id":"p","name":"P","age":1,"tags":[],"active":true}`)
    )
  ),
  c(
    "create: constructor as an own key",
    V,
    ["constructor"],
    U.create(
      Profile,
      "create",
      JSON.parse(`{"constructor":{"prototype":{"admin":true}},"id":"p","name":"P","age":1,"tags":[],"active":true}`)
    )
  ),
  c("create: a string for an array", V, ["tags"], U.create(Profile, "create", { ...valid, tags: "guitar" })),
  c("create: numbers in a string array", V, ["tags"], U.create(Profile, "create", { ...valid, tags: [1, 2] })),
  c("create: a string for a boolean", V, ["active"], U.create(Profile, "create", { ...valid, active: "true" })),
  c("create: null for an optional string", V, ["email"], U.create(Profile, "create", { ...valid, email: null })),
  c("create: a number for the key", V, ["id"], U.create(Profile, "create", { ...valid, id: 123 })),
  c("create: an object for the key", V, ["id"], U.create(Profile, "create", { ...valid, id: { id: "x" } })),
  c("create: a taken key", "AlreadyExists", ["marty"], U.create(Profile, "create", { ...valid, id: "marty" })),
  // create: actions
  c("create: an unknown action", UA, ["fly"], U.create(Profile, "fly", valid)),
  c("create: an update action", UA, ["rename", "update"], U.create(Profile, "rename", valid)),
  c("create: a destroy action", UA, ["retire"], U.create(Profile, "retire", valid)),
  c("create: an action name that is not a string", UA, ["42"], U.create(Profile, 42, valid)),
  c("create: __proto__ as the action", UA, ["__proto__"], U.create(Profile, "__proto__", valid)),
  c("create: toString as the action", UA, ["toString"], U.create(Profile, "toString", valid)),
  c("create: a resource the store does not have", V, ["Stranger"], U.create(Stranger, "create", { id: "s" })),
  // update: keys
  c("update: key null", V, ["Profile", "key"], U.update(Profile, null, "birthday")),
  c("update: key a string", V, ["Profile", "key"], U.update(Profile, "marty", "birthday")),
  c("update: key an empty object", V, ["id"], U.update(Profile, {}, "birthday")),
  c("update: key of the wrong type", V, ["id"], U.update(Profile, { id: 5 }, "birthday")),
  c("update: key an array", V, ["Profile"], U.update(Profile, ["marty"], "birthday")),
  c("update: composite key missing a field", V, ["seat"], U.update(Seat, { year: 1955 }, "update", { holder: "x" })),
  c(
    "update: composite key of the wrong type",
    V,
    ["year"],
    U.update(Seat, { year: "1955", seat: "A1" }, "update", { holder: "x" })
  ),
  c("update: composite key NaN", V, ["year"], U.update(Seat, { year: NaN, seat: "A1" }, "update", { holder: "x" })),
  c("update: an absent record", "NotFound", ["nobody"], U.update(Profile, { id: "nobody" }, "birthday")),
  // update: arguments
  c("update: a required argument missing", V, ["newName"], U.update(Profile, { id: "marty" }, "rename", {})),
  c(
    "update: an argument of the wrong type",
    V,
    ["newName"],
    U.update(Profile, { id: "marty" }, "rename", { newName: 5 })
  ),
  c(
    "update: an argument over maxLength",
    V,
    ["newName"],
    U.update(Profile, { id: "marty" }, "rename", { newName: huge })
  ),
  c(
    "update: an unknown argument",
    V,
    ["nickname"],
    U.update(Profile, { id: "marty" }, "rename", { newName: "M", nickname: "x" })
  ),
  c(
    "update: a field the action does not accept",
    V,
    ["age"],
    U.update(Profile, { id: "marty" }, "rename", { newName: "M", age: 3 })
  ),
  c("update: NaN through the default update", V, ["age"], U.update(Profile, { id: "marty" }, "update", { age: NaN })),
  c("update: input a Date", V, ["Date"], U.update(Profile, { id: "marty" }, "update", new Date())),
  c("update: input an array", V, ["array"], U.update(Profile, { id: "marty" }, "update", [{ age: 1 }])),
  c("update: input null", V, ["null"], U.update(Profile, { id: "marty" }, "update", null)),
  c(
    "update: __proto__ as an own key",
    V,
    ["__proto__"],
    U.update(Profile, { id: "marty" }, "update", JSON.parse(`{"__proto__":{"age":99}}`))
  ),
  c("update: an unknown action", UA, ["teleport"], U.update(Profile, { id: "marty" }, "teleport")),
  c("update: a create action", UA, ["create"], U.update(Profile, { id: "marty" }, "create", {})),
  c("update: a destroy action", UA, ["retire"], U.update(Profile, { id: "marty" }, "retire")),
  c("update: the read action", UA, ["read"], U.update(Profile, { id: "marty" }, "read")),
  // destroy
  c("destroy: an unknown action", UA, ["vaporize"], U.destroy(Profile, { id: "marty" }, "vaporize")),
  c("destroy: an update action", UA, ["birthday"], U.destroy(Profile, { id: "marty" }, "birthday")),
  c("destroy: key null", V, ["Profile", "key"], U.destroy(Profile, null)),
  c("destroy: key of the wrong type", V, ["id"], U.destroy(Profile, { id: true })),
  // get and keepAlive
  c("get: key null", V, ["Profile", "key"], U.get(Profile, null)),
  c("get: key with an undefined field", V, ["id"], U.get(Profile, { id: undefined })),
  c("get: key a Map", V, ["id"], U.get(Profile, new Map([["id", "marty"]]))),
  c("keepAlive: key an array", V, ["Profile"], U.keepAlive(Profile, [])),
  c("keepAlive: key a number", V, ["Profile", "key"], U.keepAlive(Profile, 7)),
  c("get: a resource the store does not have", V, ["Stranger"], U.get(Stranger, { id: "s" })),
  // read: filters
  c(
    "read: a filter on an unknown field",
    V,
    ["nickname"],
    U.read(Profile, { filter: { _tag: "Eq", field: "nickname", value: "x" } })
  ),
  c(
    "read: a filter with an unknown tag",
    V,
    ["Like"],
    U.read(Profile, { filter: { _tag: "Like", field: "name", value: "%" } })
  ),
  c("read: a filter that is not an object", V, ["filter"], U.read(Profile, { filter: "name = 'Marty'" })),
  c("read: a filter without its field", V, ["Eq", "field"], U.read(Profile, { filter: { _tag: "Eq", value: 1 } })),
  c("read: In without an array", V, ["In"], U.read(Profile, { filter: { _tag: "In", field: "age", values: 17 } })),
  c(
    "read: And without an array",
    V,
    ["And"],
    U.read(Profile, { filter: { _tag: "And", filters: { _tag: "IsNil", field: "email" } } })
  ),
  c(
    "read: an unknown field deep inside",
    V,
    ["height"],
    U.read(Profile, {
      filter: {
        _tag: "Or",
        filters: [{ _tag: "Eq", field: "age", value: 1 }, {
          _tag: "Not",
          filter: { _tag: "Gt", field: "height", value: 2 }
        }]
      }
    })
  ),
  c(
    "read: __proto__ as a filter field",
    V,
    ["__proto__"],
    U.read(Profile, { filter: { _tag: "Eq", field: "__proto__", value: null } })
  ),
  c("read: a filter nested 100 000 deep", V, ["filter"], U.read(Profile, { filter: deep(100_000) })),
  // read: sort, offset, limit
  c(
    "read: a sort on an unknown field",
    V,
    ["shoeSize"],
    U.read(Profile, { sort: [{ field: "shoeSize", direction: "asc" }] })
  ),
  c(
    "read: a sort direction that is not asc or desc",
    V,
    ["sideways"],
    U.read(Profile, { sort: [{ field: "age", direction: "sideways" }] })
  ),
  c("read: a sort that is not an array", V, ["sort"], U.read(Profile, { sort: "age" })),
  // a bare field name where a sort key object is expected: the message should name it, not say "unknown field undefined"
  c("read: a sort key that is not an object", V, ["sort", "age"], U.read(Profile, { sort: ["age"] })),
  c("read: a negative limit", V, ["limit"], U.read(Profile, { limit: -1 })),
  c("read: a fractional limit", V, ["limit"], U.read(Profile, { limit: 1.5 })),
  c("read: a NaN limit", V, ["limit"], U.read(Profile, { limit: NaN })),
  c("read: an infinite limit", V, ["limit"], U.read(Profile, { limit: Infinity })),
  // "got 10" would read as a valid limit: the message should show it was the string "10"
  c("read: a string limit", V, ["limit", `"10"`], U.read(Profile, { limit: "10" })),
  c("read: a negative offset", V, ["offset"], U.read(Profile, { offset: -1 })),
  c("read: a fractional offset", V, ["offset"], U.read(Profile, { offset: 0.5 })),
  c("read: a string offset", V, ["offset", `"1"`], U.read(Profile, { offset: "1" })),
  c("read: an undefined offset", V, ["offset"], U.read(Profile, { offset: undefined })),
  c("read: a resource the store does not have", V, ["Stranger"], U.read(Stranger, {}))
]

/** Every record of every resource, in a stable order. */
const snapshot = Effect.gen(function*() {
  const byKey = (x: any, y: any) => (JSON.stringify(x) < JSON.stringify(y) ? -1 : 1)
  return {
    profiles: [...(yield* Store.read(Query.make(Profile)))].sort(byKey),
    seats: [...(yield* Store.read(Query.make(Seat)))].sort(byKey)
  }
})

describe("Bad input corpus", () => {
  it("has at least 50 cases", () => {
    assert.isAtLeast(corpus.length, 50)
  })

  it.effect.each(corpus)("$name: $tag", ({ mentions, run, tag }) =>
    Effect.gen(function*() {
      yield* Store.create(Profile, "create", marty)
      yield* Store.create(Profile, "create", doc)
      yield* Store.create(Seat, "create", seat)
      const before = yield* snapshot
      const events = yield* Store.subscribe

      const exit = yield* Effect.exit(run)

      assert.isTrue(Exit.isFailure(exit), `succeeded: ${JSON.stringify(exit)}`)
      if (Exit.isFailure(exit)) {
        const reason = exit.cause.reasons[0] as any
        assert.strictEqual(reason?._tag, "Fail", `not a typed failure: ${String(reason?.defect ?? reason)}`)
        const error = reason.error as { readonly _tag: string; readonly message: unknown }
        assert.strictEqual(error._tag, tag, `error: ${String(error.message)}`)
        assert.isString(error.message)
        const message = error.message as string
        assert.isAbove(message.trim().length, 10, "a message that says something")
        assert.isAtMost(message.length, 2_000, "a message that does not repeat a huge input")
        for (const m of mentions) {
          assert.include(message.toLowerCase(), m.toLowerCase(), `the message names ${m}: ${message}`)
        }
      }
      assert.deepStrictEqual(yield* snapshot, before, "no state changed")
      assert.deepStrictEqual(yield* PubSub.takeUpTo(events, 100), [], "no event published")
      assert.isUndefined(({} as any).admin, "Object.prototype is not polluted")
      assert.isUndefined(({} as any).age, "Object.prototype is not polluted")
    }).pipe(Effect.provide(Store.layer([Profile, Seat]))))
})
