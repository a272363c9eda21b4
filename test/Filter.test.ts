/**
 * Filter: every operator, evaluated three ways that must agree — on the
 * records of a Store through `Store.read`, on a plain array through
 * `Query.run`, and with `Filter.toPredicate` — and the run-time validation
 * that untyped callers meet.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as fc from "fast-check"
import { Filter, Query, Resource, Store } from "../src/index.js"

const fields = {
  id: Schema.String,
  name: Schema.String,
  nickname: Schema.optionalKey(Schema.String),
  age: Schema.Int,
  tags: Schema.Array(Schema.String),
  spouse: Schema.NullOr(Schema.String),
  born: Schema.Date
}
const Person = Resource.make("Person", { fields, primaryKey: ["id"] })
type Person = Resource.Record<typeof Person>
// the same records, with equality filters answered from indexes instead of a scan
const Indexed = Resource.make("Indexed", {
  fields,
  primaryKey: ["id"],
  indexes: ["name", "nickname", "age", "spouse", "tags", "born"]
})

const people: ReadonlyArray<Person> = [
  {
    id: "a",
    name: "Marty",
    nickname: "Marty",
    age: 17,
    tags: ["skater", "guitar"],
    spouse: "Jennifer",
    born: new Date("1968-06-09")
  },
  { id: "b", name: "Emmett", nickname: "Doc", age: 65, tags: ["inventor"], spouse: null, born: new Date("1920-01-01") },
  { id: "c", name: "Jennifer", age: 17, tags: [], spouse: "Marty", born: new Date("1968-10-04") },
  { id: "d", name: "Biff", age: 18, tags: ["bully", "guitar"], spouse: null, born: new Date("1937-03-26") },
  { id: "e", name: "Einstein", nickname: "Einie", age: 3, tags: ["dog"], spouse: null, born: new Date("1982-01-01") }
]

const populate = Effect.forEach(people, (p) => Store.create(Person, "create", p))
const populateIndexed = Effect.forEach(people, (p) => Store.create(Indexed, "create", p))

const ids = (records: ReadonlyArray<{ readonly id: string }>) => records.map((r) => r.id).sort()

const queryOf = (filter: Filter.Filter<{}>, resource: typeof Person | typeof Indexed = Person): Query.Query<Person> =>
  Query.filter(Query.make(resource), filter) as Query.Query<Person>

/** A query as an untyped caller might build it. */
const untyped = (patch: { readonly [k: string]: unknown }): Query.Query<Person> =>
  Object.assign(Object.create(Object.getPrototypeOf(Query.make(Person))), Query.make(Person), patch)

interface Case {
  readonly name: string
  readonly filter: Filter.Filter<{}>
  readonly expected: ReadonlyArray<string>
}

const cases: ReadonlyArray<Case> = [
  // eq
  { name: "eq on a string", filter: Filter.eq("name", "Marty"), expected: ["a"] },
  { name: "eq on an optional field", filter: Filter.eq("nickname", "Doc"), expected: ["b"] },
  { name: "eq on a number", filter: Filter.eq("age", 17), expected: ["a", "c"] },
  { name: "eq null", filter: Filter.eq("spouse", null), expected: ["b", "d", "e"] },
  { name: "eq on an array, structurally", filter: Filter.eq("tags", ["skater", "guitar"]), expected: ["a"] },
  { name: "eq on a date, structurally", filter: Filter.eq("born", new Date("1920-01-01")), expected: ["b"] },
  { name: "eq matching nothing", filter: Filter.eq("name", "George"), expected: [] },
  { name: "eq on the primary key", filter: Filter.eq("id", "c"), expected: ["c"] },
  { name: "eq on a missing primary key", filter: Filter.eq("id", "z"), expected: [] },
  { name: "eq undefined matches absent values", filter: Filter.eq("nickname", undefined), expected: ["c", "d"] },
  // neq
  { name: "neq on a string", filter: Filter.neq("name", "Marty"), expected: ["b", "c", "d", "e"] },
  {
    name: "neq on an optional field holds when absent",
    filter: Filter.neq("nickname", "Doc"),
    expected: ["a", "c", "d", "e"]
  },
  { name: "neq null", filter: Filter.neq("spouse", null), expected: ["a", "c"] },
  { name: "neq on an array", filter: Filter.neq("tags", []), expected: ["a", "b", "d", "e"] },
  // ordering
  { name: "gt on a number", filter: Filter.gt("age", 17), expected: ["b", "d"] },
  { name: "gte on a number", filter: Filter.gte("age", 17), expected: ["a", "b", "c", "d"] },
  { name: "lt on a number", filter: Filter.lt("age", 17), expected: ["e"] },
  { name: "lte on a number", filter: Filter.lte("age", 17), expected: ["a", "c", "e"] },
  { name: "gt on a string", filter: Filter.gt("name", "F"), expected: ["a", "c"] },
  { name: "lte on a string", filter: Filter.lte("name", "Emmett"), expected: ["b", "d", "e"] },
  { name: "lt on an optional field skips absent values", filter: Filter.lt("nickname", "E"), expected: ["b"] },
  {
    name: "gte on an optional field skips absent values",
    filter: Filter.gte("nickname", ""),
    expected: ["a", "b", "e"]
  },
  { name: "gt on a nullable field skips null", filter: Filter.gt("spouse", ""), expected: ["a", "c"] },
  { name: "gt on a date", filter: Filter.gt("born", new Date("1950-01-01")), expected: ["a", "c", "e"] },
  { name: "lte on a date", filter: Filter.lte("born", new Date("1937-03-26")), expected: ["b", "d"] },
  // in
  { name: "in numbers", filter: Filter.in("age", [3, 65]), expected: ["b", "e"] },
  { name: "in on an optional field", filter: Filter.in("nickname", ["Doc", "Einie", "Nobody"]), expected: ["b", "e"] },
  { name: "in with null", filter: Filter.in("spouse", [null, "Marty"]), expected: ["b", "c", "d", "e"] },
  { name: "in arrays, structurally", filter: Filter.in("tags", [["dog"], ["inventor"]]), expected: ["b", "e"] },
  { name: "in nothing", filter: Filter.in("age", []), expected: [] },
  { name: "in primary keys", filter: Filter.in("id", ["a", "e", "z"]), expected: ["a", "e"] },
  // contains
  { name: "contains a substring", filter: Filter.contains("name", "e"), expected: ["b", "c", "e"] },
  { name: "contains is case-sensitive", filter: Filter.contains("name", "E"), expected: ["b", "e"] },
  { name: "contains an element", filter: Filter.contains("tags", "guitar"), expected: ["a", "d"] },
  { name: "contains on an optional field", filter: Filter.contains("nickname", "i"), expected: ["e"] },
  // isNil
  { name: "isNil on an absent optional field", filter: Filter.isNil("nickname"), expected: ["c", "d"] },
  { name: "isNil on null", filter: Filter.isNil("spouse"), expected: ["b", "d", "e"] },
  { name: "isNil on a required field", filter: Filter.isNil("name"), expected: [] },
  // and, or, not
  { name: "and", filter: Filter.and(Filter.eq("age", 17), Filter.eq("spouse", "Marty")), expected: ["c"] },
  { name: "and of nothing holds", filter: Filter.and() as Filter.Filter<{}>, expected: ["a", "b", "c", "d", "e"] },
  { name: "and with the primary key", filter: Filter.and(Filter.eq("id", "b"), Filter.gt("age", 100)), expected: [] },
  {
    name: "and with an indexed field",
    filter: Filter.and(Filter.eq("name", "Biff"), Filter.gt("age", 17)),
    expected: ["d"]
  },
  { name: "or", filter: Filter.or(Filter.eq("name", "Biff"), Filter.lt("age", 10)), expected: ["d", "e"] },
  { name: "or of nothing never holds", filter: Filter.or() as Filter.Filter<{}>, expected: [] },
  { name: "or of primary keys", filter: Filter.or(Filter.eq("id", "a"), Filter.eq("id", "b")), expected: ["a", "b"] },
  { name: "not", filter: Filter.not(Filter.isNil("nickname")), expected: ["a", "b", "e"] },
  {
    name: "not of and",
    filter: Filter.not(Filter.and(Filter.gte("age", 17), Filter.lte("age", 18))),
    expected: ["b", "e"]
  },
  { name: "not of the primary key", filter: Filter.not(Filter.eq("id", "a")), expected: ["b", "c", "d", "e"] },
  {
    name: "nested",
    filter: Filter.or(
      Filter.and(Filter.contains("tags", "guitar"), Filter.not(Filter.isNil("spouse"))),
      Filter.and(Filter.isNil("spouse"), Filter.not(Filter.in("age", [18, 65])))
    ),
    expected: ["a", "e"]
  }
]

// filters whose value does not fit their field: in memory they never hold; `Store.read` refuses them
const mismatched: ReadonlyArray<Case> = [
  { name: "contains on a number never holds", filter: Filter.contains("age", 1), expected: [] },
  { name: "contains a non-string in a string never holds", filter: Filter.contains("name", 1), expected: [] }
]

describe("Filter", () => {
  describe("operators", () => {
    it.effect.each(cases)("$name, through Store.read", ({ expected, filter }) =>
      Effect.gen(function*() {
        yield* populate
        assert.deepStrictEqual(ids(yield* Store.read(queryOf(filter))), [...expected])
      }).pipe(Effect.provide(Store.layer([Person]))))

    it.effect.each(cases)("$name, through Store.read with indexes", ({ expected, filter }) =>
      Effect.gen(function*() {
        yield* populateIndexed
        assert.deepStrictEqual(ids(yield* Store.read(queryOf(filter, Indexed))), [...expected])
        // and after every record changed and changed back, so the indexes had to follow
        for (const p of people) {
          yield* Store.update(Indexed, p, "update", { name: "X", age: 0, spouse: "X", tags: ["X"], nickname: "X" })
        }
        assert.deepStrictEqual(
          ids(yield* Store.read(queryOf(Filter.eq("name", "X"), Indexed))),
          ["a", "b", "c", "d", "e"]
        )
        yield* Effect.forEach(people, (p) => Store.destroy(Indexed, p))
        yield* populateIndexed
        assert.deepStrictEqual(ids(yield* Store.read(queryOf(filter, Indexed))), [...expected])
      }).pipe(Effect.provide(Store.layer([Indexed]))))

    it.each([...cases, ...mismatched])("$name, on an array", ({ expected, filter }) => {
      assert.deepStrictEqual(ids(Query.run(queryOf(filter), people)), [...expected])
      assert.deepStrictEqual(ids(people.filter(Filter.toPredicate(filter))), [...expected])
    })

    it("filters are plain data: an encoded filter evaluates the same", () => {
      for (const { filter } of cases) {
        if (JSON.stringify(filter).includes("born")) continue
        const decoded = JSON.parse(JSON.stringify(filter)) as Filter.Expr
        assert.deepStrictEqual(
          ids(people.filter(Filter.toPredicate(decoded))),
          ids(people.filter(Filter.toPredicate(filter)))
        )
      }
    })

    it("constructors build the documented expressions", () => {
      assert.deepStrictEqual(Filter.eq("a", 1), { _tag: "Eq", field: "a", value: 1 })
      assert.deepStrictEqual(Filter.in("a", [1, 2]), { _tag: "In", field: "a", values: [1, 2] })
      assert.deepStrictEqual(Filter.isNil("a"), { _tag: "IsNil", field: "a" })
      assert.deepStrictEqual(Filter.not(Filter.isNil("a")), { _tag: "Not", filter: { _tag: "IsNil", field: "a" } })
      assert.deepStrictEqual(
        Filter.fields(Filter.and(Filter.eq("a", 1), Filter.or(Filter.isNil("b"), Filter.not(Filter.gt("c", 1))))),
        ["a", "b", "c"]
      )
      assert.isUndefined(Filter.check(Filter.and(Filter.eq("a", 1), Filter.not(Filter.in("b", [])))))
    })
  })

  describe("equality is SameValueZero", () => {
    const Reading = Resource.make("Reading", {
      fields: { id: Schema.String, x: Schema.Number, xs: Schema.Array(Schema.Number) },
      primaryKey: ["id"]
    })
    const IndexedReading = Resource.make("IndexedReading", {
      fields: Reading.fields,
      primaryKey: ["id"],
      indexes: ["x"]
    })
    const readings = [
      { id: "nan", x: NaN, xs: [NaN] },
      { id: "zero", x: 0, xs: [0] },
      { id: "minus-zero", x: -0, xs: [-0] },
      { id: "one", x: 1, xs: [] }
    ]
    const idsOf = (records: ReadonlyArray<{ readonly id: string }>) => records.map((r) => r.id).sort()

    // caught a bug: `in` compiled to a Set (SameValueZero) and `eq` to `===`, so in([NaN]) matched NaN and
    // eq(NaN) did not, and eq(NaN) matched through an index (a Map) but not through a scan
    for (const resource of [Reading, IndexedReading]) {
      it.effect(`eq, in, neq and contains agree on NaN and -0 (${resource.name})`, () =>
        Effect.gen(function*() {
          yield* Effect.forEach(readings, (r) => Store.create(resource, "create", r))
          const read = (filter: Filter.Filter<{}>) =>
            Store.read(Query.filter(Query.make(resource), filter) as Query.Query<{ readonly id: string }>).pipe(
              Effect.map(idsOf)
            )
          assert.deepStrictEqual(yield* read(Filter.eq("x", NaN)), ["nan"])
          assert.deepStrictEqual(yield* read(Filter.in("x", [NaN])), ["nan"])
          assert.deepStrictEqual(yield* read(Filter.neq("x", NaN)), ["minus-zero", "one", "zero"])
          assert.deepStrictEqual(yield* read(Filter.contains("xs", NaN)), ["nan"])
          assert.deepStrictEqual(yield* read(Filter.eq("x", -0)), ["minus-zero", "zero"])
          assert.deepStrictEqual(yield* read(Filter.in("x", [0])), ["minus-zero", "zero"])
          assert.deepStrictEqual(yield* read(Filter.contains("xs", 0)), ["minus-zero", "zero"])
        }).pipe(Effect.provide(Store.layer([resource]))))
    }

    const value: fc.Arbitrary<unknown> = fc.oneof(
      fc.constantFrom(NaN, -0, 0, 1, null, undefined, "", "a", "NaN", true, 1n),
      fc.constantFrom(["a"], [NaN], new Date(0), new Date(NaN)),
      fc.double()
    )

    it("in([v]) is eq(v), and neq(v) is not eq(v), on any value", () => {
      fc.assert(
        fc.property(fc.array(value, { maxLength: 12 }), value, (xs, v) => {
          const records = xs.map((x, i) => ({ id: `r${i}`, x }))
          const eq = records.filter(Filter.toPredicate(Filter.eq("x", v)))
          assert.deepStrictEqual(records.filter(Filter.toPredicate(Filter.in("x", [v]))), eq)
          // with a non-primitive among the values, `in` takes its other path
          assert.deepStrictEqual(records.filter(Filter.toPredicate(Filter.in("x", [v, {}]))), eq)
          assert.deepStrictEqual(
            records.filter(Filter.toPredicate(Filter.neq("x", v))),
            records.filter((r) => !eq.includes(r))
          )
          // an element of an array field compares the same way
          assert.deepStrictEqual(
            records.map((r) => ({ id: r.id, x: [r.x] })).filter(Filter.toPredicate(Filter.contains("x", v))).map((r) =>
              r.id
            ),
            eq.map((r) => r.id)
          )
        }),
        { seed: 1985, numRuns: 2000 }
      )
    })
  })

  describe("run-time validation", () => {
    // caught a bug: a value of the wrong type was compared as is, so eq("age", "17") quietly returned []
    const mistyped: ReadonlyArray<readonly [string, Filter.Expr, string, string]> = [
      ["eq a string on an Int field", Filter.eq("age", "17"), "age", "Expected number"],
      ["eq a fraction on an Int field", Filter.eq("age", 17.5), "age", "Expected an integer"],
      ["neq a number on a string field", Filter.neq("name", 1), "name", "Expected string"],
      ["gt a string on an Int field", Filter.gt("age", "1"), "age", "Expected number"],
      ["gte a string on a Date field", Filter.gte("born", "1950-01-01"), "born", "Expected a valid Date"],
      ["lt a number on a nullable field", Filter.lt("spouse", 1), "spouse", "Expected string | null"],
      ["lte null on a required field", Filter.lte("age", null), "age", "Expected number"],
      ["in with one bad value", Filter.in("age", [17, "18"]), "age", "got \"18\""],
      ["eq on the primary key", Filter.eq("id", 1), "id", "Expected string"],
      ["eq an array of numbers on an array of strings", Filter.eq("tags", [1]), "tags", "Expected string"],
      ["contains a number in a string field", Filter.contains("name", 1), "name", "expected a string"],
      ["contains on an Int field", Filter.contains("age", 1), "age", "expected a string"],
      ["contains a number in an array of strings", Filter.contains("tags", 1), "tags", "an element"],
      [
        "a bad value deeply nested",
        Filter.or(Filter.isNil("name"), Filter.not(Filter.and(Filter.eq("name", "x"), Filter.eq("age", "1")))),
        "age",
        "Expected number"
      ]
    ]

    for (const resource of [Person, Indexed]) {
      it.effect.each(mistyped)(`%s is a ValidationError naming the field and its type (${resource.name})`, ([
        ,
        filter,
        field,
        expected
      ]) =>
        Effect.gen(function*() {
          yield* resource === Person ? populate : populateIndexed
          const error = yield* Store.read(queryOf(filter as Filter.Filter<{}>, resource)).pipe(Effect.flip)
          assert.strictEqual(error._tag, "ValidationError")
          if (error._tag !== "ValidationError") return
          assert.strictEqual(error.resource, resource.name)
          assert.include(error.message, `field ${JSON.stringify(field)}`)
          assert.include(error.message, expected)
        }).pipe(Effect.provide(Store.layer([resource]))))
    }

    it.effect("values that fit are accepted: undefined on any field, any substring, a valid element", () =>
      Effect.gen(function*() {
        yield* populate
        const read = (filter: Filter.Filter<{}>) => Store.read(queryOf(filter)).pipe(Effect.map(ids))
        // undefined fits every field, as in the types: it matches absent optional fields only
        assert.deepStrictEqual(yield* read(Filter.eq("age", undefined)), [])
        assert.deepStrictEqual(yield* read(Filter.in("nickname", [undefined, "Doc"])), ["b", "c", "d"])
        // a substring need not be a valid value of the field, an element must be one of its elements
        const Code = Resource.make("Code", {
          fields: { id: Schema.String, code: Schema.String.check(Schema.isPattern(/^[A-Z]{3}$/)) },
          primaryKey: ["id"]
        })
        const codes = yield* Effect.provide(
          Effect.gen(function*() {
            yield* Store.create(Code, "create", { id: "1", code: "ABC" })
            return yield* Store.read(Query.make(Code).pipe(Query.filter(Filter.contains("code", "B"))))
          }),
          Store.layer([Code])
        )
        assert.deepStrictEqual(codes.map((c) => c.id), ["1"])
        assert.deepStrictEqual(yield* read(Filter.contains("tags", "guitar")), ["a", "d"])
      }).pipe(Effect.provide(Store.layer([Person]))))

    const unknownFields: ReadonlyArray<readonly [string, Filter.Expr]> = [
      ["at the top", Filter.eq("nick", "Marty")],
      ["inside and", Filter.and(Filter.eq("name", "Marty"), Filter.gt("height", 1))],
      ["inside or", Filter.or(Filter.isNil("name"), Filter.isNil("address"))],
      ["inside not", Filter.not(Filter.contains("hobbies", "guitar"))],
      ["inside in", Filter.in("years", [1955])],
      ["deeply nested", Filter.not(Filter.and(Filter.or(Filter.eq("name", "x"), Filter.lte("weight", 1))))]
    ]

    it.effect.each(unknownFields)("an unknown field %s is a ValidationError", ([, filter]) =>
      Effect.gen(function*() {
        yield* populate
        const error = yield* Store.read(untyped({ filter })).pipe(Effect.flip)
        assert.strictEqual(error._tag, "ValidationError")
        if (error._tag === "ValidationError") assert.strictEqual(error.resource, "Person")
      }).pipe(Effect.provide(Store.layer([Person]))))

    it.effect("an unknown field is refused with or without records to scan", () =>
      Effect.gen(function*() {
        const error = yield* Store.read(untyped({ filter: Filter.eq("nick", "Marty") })).pipe(Effect.flip)
        assert.strictEqual(error._tag, "ValidationError")
        // also where a full-key equality would answer from the registry
        const byKey = yield* Store.read(untyped({ filter: Filter.and(Filter.eq("id", "a"), Filter.eq("nick", 1)) }))
          .pipe(Effect.flip)
        assert.strictEqual(byKey._tag, "ValidationError")
      }).pipe(Effect.provide(Store.layer([Person]))))

    const malformed: ReadonlyArray<readonly [string, unknown]> = [
      ["a string", "name = Marty"],
      ["null inside and", { _tag: "And", filters: [null] }],
      ["a number", 42],
      ["an unknown tag", { _tag: "Like", field: "name", value: "M%" }],
      ["no tag", { field: "name", value: "Marty" }],
      ["eq without a field", { _tag: "Eq", value: "Marty" }],
      ["eq with a number for a field", { _tag: "Eq", field: 1, value: "Marty" }],
      ["and without filters", { _tag: "And" }],
      ["or with an object for filters", { _tag: "Or", filters: { a: Filter.eq("name", "x") } }],
      ["in without values", { _tag: "In", field: "age" }],
      ["in with a number for values", { _tag: "In", field: "age", values: 17 }],
      ["not without a filter", { _tag: "Not" }],
      ["a bigint tag", { _tag: 1n, field: "name" }],
      ["a malformed filter deep inside", Filter.and(Filter.eq("name", "x"), Filter.not({ _tag: "Gt" } as never))]
    ]

    it.effect.each(mismatched)("$name, through Store.read: a ValidationError", ({ filter }) =>
      Effect.gen(function*() {
        yield* populate
        const error = yield* Store.read(queryOf(filter)).pipe(Effect.flip)
        assert.strictEqual(error._tag, "ValidationError")
      }).pipe(Effect.provide(Store.layer([Person]))))

    it.effect.each(malformed)("a malformed filter (%s) is a ValidationError", ([, filter]) =>
      Effect.gen(function*() {
        yield* populate
        const error = yield* Store.read(untyped({ filter })).pipe(Effect.flip)
        assert.strictEqual(error._tag, "ValidationError")
      }).pipe(Effect.provide(Store.layer([Person]))))

    it("Filter.check describes the problem", () => {
      assert.isString(Filter.check({ _tag: "Eq" }))
      assert.isString(Filter.check(null))
      assert.isString(Filter.check({ _tag: "And", filters: [{ _tag: "Nope" }] }))
      assert.isUndefined(Filter.check({ _tag: "IsNil", field: "name" }))
    })
  })
})
