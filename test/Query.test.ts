/**
 * Query: building (immutable, dual), the reference semantics of `Query.run`,
 * run-time validation of sorts, offsets and limits, and properties checked
 * against an independent reference (plain filter, stable multi-key sort,
 * slice) written here: `Store.read` agrees with it for random records (some
 * updated or destroyed after creation), filters, sorts, offsets and limits;
 * several `Query.filter` calls equal one `Filter.and`; sorts are stable and
 * multi-key.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as fc from "fast-check"
import { Filter, Query, Resource, Store } from "../src/index.js"
import { Character } from "./fixtures/TimeTravel.js"

// --- the resource the properties run on --------------------------------------------------------

const Item = Resource.make("Item", {
  fields: {
    id: Schema.String,
    name: Schema.String,
    nickname: Schema.optionalKey(Schema.String),
    score: Schema.Int,
    tags: Schema.Array(Schema.String),
    partner: Schema.NullOr(Schema.String)
  },
  primaryKey: ["id"],
  // equality filters on these read an index instead of scanning: the properties cover both paths
  indexes: ["name", "nickname", "score"]
})
type Item = Resource.Record<typeof Item>

const items = () => Store.layer([Item])

// --- generators: small domains, so that filters match and sort keys tie often -------------------

const Name = Schema.Literals(["ann", "bob", "cy", "dee"])
const Small = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 4 }))
const Tag = Schema.Literals(["x", "y", "z"])
const Id = Schema.Literals(["r0", "r1", "r2", "r3", "r5", "r8", "nobody"])
const upTo = (n: number) => Schema.isMaxLength(n)

const RecordSpec = Schema.Struct({
  name: Name,
  nickname: Schema.optionalKey(Name),
  score: Small,
  tags: Schema.Array(Tag).check(upTo(3)),
  partner: Schema.NullOr(Name)
})

const UpdateSpec = Schema.Struct({
  name: Schema.optionalKey(Name),
  nickname: Schema.optionalKey(Name),
  score: Schema.optionalKey(Small)
})

const Life = Schema.Struct({
  initial: RecordSpec,
  update: Schema.optionalKey(UpdateSpec),
  // destroyed after its update when 0: one record in four
  destroy: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 3 }))
})
const Lives = Schema.Array(Life).check(Schema.isMinLength(4), upTo(12))

const Comparison = Schema.Literals(["eq", "neq", "gt", "gte", "lt", "lte"])
const Leaf = Schema.Union([
  Schema.Struct({ op: Comparison, field: Schema.Literal("score"), value: Small }),
  Schema.Struct({ op: Comparison, field: Schema.Literals(["name", "nickname", "partner"]), value: Name }),
  Schema.Struct({ op: Schema.Literals(["eq", "neq"]), field: Schema.Literal("id"), value: Id }),
  Schema.Struct({ op: Schema.Literals(["eq", "neq"]), field: Schema.Literal("partner"), value: Schema.Null }),
  Schema.Struct({
    op: Schema.Literals(["eq", "neq"]),
    field: Schema.Literal("tags"),
    value: Schema.Array(Tag).check(upTo(2))
  }),
  Schema.Struct({
    op: Schema.Literal("in"),
    field: Schema.Literal("score"),
    values: Schema.Array(Small).check(upTo(3))
  }),
  Schema.Struct({
    op: Schema.Literal("in"),
    field: Schema.Literals(["name", "nickname"]),
    values: Schema.Array(Name).check(upTo(3))
  }),
  Schema.Struct({
    op: Schema.Literal("in"),
    field: Schema.Literal("partner"),
    values: Schema.Array(Schema.NullOr(Name)).check(upTo(3))
  }),
  Schema.Struct({ op: Schema.Literal("in"), field: Schema.Literal("id"), values: Schema.Array(Id).check(upTo(3)) }),
  Schema.Struct({ op: Schema.Literal("contains"), field: Schema.Literal("tags"), value: Tag }),
  Schema.Struct({
    op: Schema.Literal("contains"),
    field: Schema.Literals(["name", "nickname"]),
    value: Schema.Literals(["a", "n", "nn", "e", "", "zz"])
  }),
  Schema.Struct({ op: Schema.Literal("isNil"), field: Schema.Literals(["name", "nickname", "partner"]) })
])
type Leaf = typeof Leaf.Type

const combinators = <S extends Schema.Top>(sub: S) =>
  [
    Schema.Struct({ op: Schema.Literals(["and", "or"]), filters: Schema.Array(sub).check(upTo(3)) }),
    Schema.Struct({ op: Schema.Literal("not"), filter: sub })
  ] as const
const Level1 = Schema.Union([Leaf, ...combinators(Leaf)])
const Level2 = Schema.Union([Level1, ...combinators(Level1)])
type Spec = Leaf | { readonly op: "and" | "or"; readonly filters: ReadonlyArray<Spec> } | {
  readonly op: "not"
  readonly filter: Spec
}

const SortField = Schema.Literals(["id", "name", "nickname", "score", "partner"])
const Direction = Schema.Literals(["asc", "desc"])
const SortSpec = Schema.Array(Schema.Struct({ field: SortField, direction: Direction })).check(upTo(3))
type SortSpec = typeof SortSpec.Type
const Page = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 4 }))

// an equality on the key or an indexed field, and-ed in front of the filter: these are answered
// from the registry or an index instead of a scan
const Pin = Schema.Union([
  Schema.Struct({ op: Schema.Literal("eq"), field: Schema.Literals(["name", "nickname"]), value: Name }),
  Schema.Struct({ op: Schema.Literal("eq"), field: Schema.Literal("score"), value: Small }),
  Schema.Struct({ op: Schema.Literal("eq"), field: Schema.Literal("id"), value: Id })
])

const QuerySpec = Schema.Struct({
  pin: Schema.optionalKey(Pin),
  filter: Level2,
  sort: SortSpec,
  // an offset of 0 half of the time, so that fewer pages come out empty
  offset: Schema.Union([Schema.Literal(0), Page]),
  limit: Schema.optionalKey(Page)
})
// the filter is often absent here
const LooseQuerySpec = Schema.Struct({ ...QuerySpec.fields, filter: Schema.optionalKey(Level2) })

// --- the reference, written independently of the library ------------------------------------------

const isNil = (v: unknown) => v === undefined || v === null

const same = (a: unknown, b: unknown): boolean =>
  Array.isArray(a) && Array.isArray(b) ? a.length === b.length && a.every((x, i) => x === b[i]) : a === b

const ordered = (op: string, a: unknown, b: unknown): boolean => {
  if (isNil(a) || isNil(b) || typeof a !== typeof b) return false
  const x = a as number | string
  const y = b as number | string
  return op === "gt" ? x > y : op === "gte" ? x >= y : op === "lt" ? x < y : x <= y
}

const holds = (spec: Spec, r: { readonly [k: string]: unknown }): boolean => {
  switch (spec.op) {
    case "and":
      return spec.filters.every((f) => holds(f, r))
    case "or":
      return spec.filters.some((f) => holds(f, r))
    case "not":
      return !holds(spec.filter, r)
    case "eq":
      return same(r[spec.field], spec.value)
    case "neq":
      return !same(r[spec.field], spec.value)
    case "gt":
    case "gte":
    case "lt":
    case "lte":
      return ordered(spec.op, r[spec.field], spec.value)
    case "in":
      return (spec.values as ReadonlyArray<unknown>).some((v) => same(r[spec.field], v))
    case "contains": {
      const v = r[spec.field]
      return typeof v === "string" ? v.includes(spec.value) : Array.isArray(v) ? v.includes(spec.value) : false
    }
    case "isNil":
      return isNil(r[spec.field])
  }
}

const toFilter = (spec: Spec): Filter.Expr => {
  switch (spec.op) {
    case "and":
      return Filter.and(...spec.filters.map(toFilter))
    case "or":
      return Filter.or(...spec.filters.map(toFilter))
    case "not":
      return Filter.not(toFilter(spec.filter))
    case "eq":
      return Filter.eq(spec.field, spec.value)
    case "neq":
      return Filter.neq(spec.field, spec.value)
    case "gt":
      return Filter.gt(spec.field, spec.value)
    case "gte":
      return Filter.gte(spec.field, spec.value)
    case "lt":
      return Filter.lt(spec.field, spec.value)
    case "lte":
      return Filter.lte(spec.field, spec.value)
    case "in":
      return Filter.in(spec.field, spec.values as ReadonlyArray<unknown>)
    case "contains":
      return Filter.contains(spec.field, spec.value)
    case "isNil":
      return Filter.isNil(spec.field)
  }
}

/** Absent and null first; otherwise `<`. */
const compareValues = (a: unknown, b: unknown): number => {
  if (isNil(a)) return isNil(b) ? 0 : -1
  if (isNil(b)) return 1
  return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0
}

/** A stable multi-key sort that does not rely on `Array.prototype.sort` being stable. */
const stableSort = <A extends { readonly [k: string]: unknown }>(records: ReadonlyArray<A>, keys: SortSpec) =>
  records
    .map((record, index) => ({ record, index }))
    .sort((x, y) => {
      for (const { direction, field } of keys) {
        const c = compareValues(x.record[field], y.record[field])
        if (c !== 0) return direction === "asc" ? c : -c
      }
      return x.index - y.index
    })
    .map(({ record }) => record)

interface Plan {
  readonly pin?: Spec
  readonly filter?: Spec
  readonly sort: SortSpec
  readonly offset: number
  readonly limit?: number
}

const matches = (spec: Plan) => (r: { readonly [k: string]: unknown }) =>
  (spec.pin === undefined || holds(spec.pin, r)) && (spec.filter === undefined || holds(spec.filter, r))

const reference = <A extends { readonly [k: string]: unknown }>(records: ReadonlyArray<A>, spec: Plan): Array<A> => {
  const kept = records.filter(matches(spec))
  const sorted = stableSort(kept, spec.sort)
  return sorted.slice(spec.offset, spec.limit === undefined ? undefined : spec.offset + spec.limit)
}

const build = (spec: Plan) => {
  let q: Query.Query<Item> = Query.make(Item)
  if (spec.pin !== undefined) q = Query.filter(q, toFilter(spec.pin) as Filter.Filter<{}>) as Query.Query<Item>
  if (spec.filter !== undefined) q = Query.filter(q, toFilter(spec.filter) as Filter.Filter<{}>) as Query.Query<Item>
  for (const { direction, field } of spec.sort) q = Query.sort(q, field, direction)
  q = Query.offset(q, spec.offset)
  if (spec.limit !== undefined) q = Query.limit(q, spec.limit)
  return q
}

/** Creates, updates and destroys the records; returns what should be live, in creation order. */
const play = (lives: ReadonlyArray<typeof Life.Type>) =>
  Effect.gen(function*() {
    const live: Array<Item> = []
    for (const [i, life] of lives.entries()) {
      const created = yield* Store.create(Item, "create", { id: `r${i}`, ...life.initial })
      const current = life.update === undefined
        ? created
        : yield* Store.update(Item, created, "update", life.update)
      if (life.destroy === 0) yield* Store.destroy(Item, current)
      else live.push(current)
    }
    return live
  })

const idsOf = (records: ReadonlyArray<{ readonly id: string }>) => records.map((r) => r.id)
const project = (records: ReadonlyArray<{ readonly [k: string]: unknown }>, keys: SortSpec) =>
  records.map((r) => keys.map((k) => r[k.field]))

const seeded = (seed: number, runs = 100) => ({ arbitrary: { seed, runs } })

const Noted = Resource.make("Noted", {
  fields: { id: Schema.String, note: Schema.optionalKey(Schema.NullOr(Schema.String)) },
  primaryKey: ["id"]
})

// --- plain data for the unit tests ----------------------------------------------------------------

const characters = [
  { id: "1", name: "Marty", nickname: "Marty", currentYear: 1985 },
  { id: "2", name: "Emmett", nickname: "Doc", currentYear: 1955 },
  { id: "3", name: "Jennifer", currentYear: 1985 },
  { id: "4", name: "Biff", currentYear: 1955 },
  { id: "5", name: "George", nickname: "George", currentYear: 1985 }
]

describe("Query", () => {
  describe("building", () => {
    it("make reads everything, unsorted, from the start", () => {
      const q = Query.make(Character)
      assert.isTrue(Query.isQuery(q))
      assert.isFalse(Query.isQuery({ resource: Character }))
      assert.strictEqual(q.resource, Character)
      assert.isUndefined(q.filter)
      assert.deepStrictEqual(q.sort, [])
      assert.strictEqual(q.offset, 0)
      assert.isUndefined(q.limit)
    })

    it("every combinator returns a new query, data-first and data-last alike", () => {
      const q = Query.make(Character)
      const piped = q.pipe(
        Query.filter(Filter.eq("name", "Marty")),
        Query.sort("currentYear", "desc"),
        Query.sort("name"),
        Query.offset(2),
        Query.limit(3)
      )
      const direct = Query.limit(
        Query.offset(
          Query.sort(Query.sort(Query.filter(q, Filter.eq("name", "Marty")), "currentYear", "desc"), "name"),
          2
        ),
        3
      )
      for (const built of [piped, direct]) {
        assert.deepStrictEqual(built.filter, { _tag: "Eq", field: "name", value: "Marty" })
        assert.deepStrictEqual(built.sort, [{ field: "currentYear", direction: "desc" }, {
          field: "name",
          direction: "asc"
        }])
        assert.strictEqual(built.offset, 2)
        assert.strictEqual(built.limit, 3)
        assert.strictEqual(built.resource, Character)
        assert.isTrue(Query.isQuery(built))
      }
      // the original is untouched
      assert.isUndefined(q.filter)
      assert.deepStrictEqual(q.sort, [])
      assert.strictEqual(q.offset, 0)
      assert.isUndefined(q.limit)
      const sorted = q.pipe(Query.sort("name"))
      sorted.pipe(Query.sort("currentYear"))
      assert.deepStrictEqual(sorted.sort, [{ field: "name", direction: "asc" }])
    })

    it("filter calls are and-ed; offset and limit replace", () => {
      const a = Filter.eq("name", "Marty")
      const b = Filter.gte("currentYear", 1955)
      const c = Filter.isNil("nickname")
      const q = Query.make(Character).pipe(Query.filter(a), Query.filter(b), Query.filter(c))
      assert.deepStrictEqual(q.filter, { _tag: "And", filters: [a, b, c] })
      const first = Query.make(Character).pipe(Query.filter(a))
      first.pipe(Query.filter(b))
      assert.deepStrictEqual(first.filter, a)
      const paged = Query.make(Character).pipe(Query.offset(5), Query.limit(5), Query.offset(1), Query.limit(2))
      assert.strictEqual(paged.offset, 1)
      assert.strictEqual(paged.limit, 2)
    })
  })

  describe("run", () => {
    const q = Query.make(Character)

    it("filters, sorts, then skips and limits", () => {
      const result = Query.run(
        q.pipe(
          Query.filter(Filter.gte("currentYear", 1955)),
          Query.sort("currentYear", "desc"),
          Query.sort("name"),
          Query.offset(1),
          Query.limit(3)
        ),
        characters
      )
      assert.deepStrictEqual(idsOf(result), ["3", "1", "4"])
    })

    it("without a sort keeps the input order", () => {
      assert.deepStrictEqual(idsOf(Query.run(q, characters)), ["1", "2", "3", "4", "5"])
      assert.deepStrictEqual(idsOf(Query.run(q.pipe(Query.offset(3)), characters)), ["4", "5"])
    })

    it("limit 0, an offset past the end, and an empty input give nothing", () => {
      assert.deepStrictEqual(Query.run(q.pipe(Query.limit(0)), characters), [])
      assert.deepStrictEqual(Query.run(q.pipe(Query.offset(5)), characters), [])
      assert.deepStrictEqual(Query.run(q.pipe(Query.offset(99), Query.limit(2)), characters), [])
      assert.deepStrictEqual(Query.run(q.pipe(Query.sort("name")), []), [])
    })

    it("does not change its input", () => {
      const input = [...characters].reverse()
      const copy = [...input]
      Query.run(q.pipe(Query.sort("name")), input)
      assert.deepStrictEqual(input, copy)
    })

    it("absent values sort first ascending and last descending", () => {
      assert.deepStrictEqual(idsOf(Query.run(q.pipe(Query.sort("nickname")), characters)), ["3", "4", "2", "5", "1"])
      assert.deepStrictEqual(
        idsOf(Query.run(q.pipe(Query.sort("nickname", "desc")), characters)),
        ["1", "5", "2", "3", "4"]
      )
    })

    // caught a bug: the comparator answered -1 for both (null, undefined) and (undefined, null), so the order
    // of nil values (and whether later sort keys applied between them) depended on the input order
    it("null and absent values have one order, whatever the input order", () => {
      const records = [
        { id: "1", note: null },
        { id: "2" },
        { id: "3", note: null },
        { id: "4" },
        { id: "5", note: "x" }
      ]
      const sorted = (input: ReadonlyArray<{ readonly id: string; readonly note?: string | null }>) =>
        idsOf(Query.run(Query.make(Noted).pipe(Query.sort("note"), Query.sort("id")), input))
      const forward = sorted(records)
      assert.strictEqual(forward[4], "5")
      assert.deepStrictEqual(sorted([...records].reverse()), forward)
      assert.deepStrictEqual(sorted([records[1]!, records[0]!, records[3]!, records[2]!, records[4]!]), forward)
    })

    it("comparator", () => {
      assert.isUndefined(Query.comparator([]))
      const cmp = Query.comparator([{ field: "y", direction: "desc" }, { field: "x", direction: "asc" }])!
      assert.isTrue(cmp({ y: 2, x: 9 }, { y: 1, x: 0 }) < 0)
      assert.isTrue(cmp({ y: 1, x: 0 }, { y: 1, x: 9 }) < 0)
      assert.strictEqual(cmp({ y: 1, x: 1 }, { y: 1, x: 1 }), 0)
      const dates = Query.comparator([{ field: "d", direction: "asc" }])!
      assert.isTrue(dates({ d: new Date(1) }, { d: new Date(2) }) < 0)
    })
  })

  describe("Store.read", () => {
    it.effect("applies sort, offset and limit to the records of the store", () =>
      Effect.gen(function*() {
        yield* Effect.forEach(characters, (c) => Store.create(Character, "create", c))
        const result = yield* Store.read(
          Query.make(Character).pipe(
            Query.sort("currentYear"),
            Query.sort("name", "desc"),
            Query.offset(1),
            Query.limit(3)
          )
        )
        // 1955: Emmett, Biff; 1985: Marty, Jennifer, George
        assert.deepStrictEqual(idsOf(result), ["4", "1", "3"])
      }).pipe(Effect.provide(Store.layer([Character]))))

    it.effect("a read is a snapshot: changing the result changes nothing", () =>
      Effect.gen(function*() {
        yield* Effect.forEach(characters, (c) => Store.create(Character, "create", c))
        const first = yield* Store.read(Query.make(Character).pipe(Query.sort("id")))
        ;(first as Array<unknown>).length = 0
        assert.strictEqual((yield* Store.read(Query.make(Character))).length, characters.length)
      }).pipe(Effect.provide(Store.layer([Character]))))
  })

  describe("run-time validation", () => {
    const base = Query.make(Item)
    const untyped = (patch: { readonly [k: string]: unknown }): Query.Query<Item> =>
      Object.assign(Object.create(Object.getPrototypeOf(base)), base, patch)

    const bad: ReadonlyArray<readonly [string, Query.Query<Item>]> = [
      ["an unknown sort field", untyped({ sort: [{ field: "age", direction: "asc" }] })],
      [
        "an unknown sort field after a good one",
        untyped({ sort: [{ field: "name", direction: "asc" }, { field: "x", direction: "asc" }] })
      ],
      ["a bad sort direction", untyped({ sort: [{ field: "name", direction: "up" }] })],
      ["a sort that is not an array", untyped({ sort: "name" })],
      ["a sort key that is not an object", untyped({ sort: ["name"] })],
      ["a negative limit", Query.limit(base, -1)],
      ["a fractional limit", Query.limit(base, 1.5)],
      ["a NaN limit", Query.limit(base, NaN)],
      ["a limit that is a string", untyped({ limit: "10" })],
      ["a negative offset", Query.offset(base, -1)],
      ["a fractional offset", Query.offset(base, 0.5)],
      ["a NaN offset", Query.offset(base, NaN)],
      ["an offset that is a string", untyped({ offset: "1" })],
      // caught a bug: the messages were built with JSON.stringify, which throws on a bigint: a defect
      ["an offset that is a bigint", untyped({ offset: 1n })],
      ["a limit that is a bigint", untyped({ limit: 2n })],
      ["a sort field that is a bigint", untyped({ sort: [{ field: 1n, direction: "asc" }] })],
      ["a sort direction that is a bigint", untyped({ sort: [{ field: "name", direction: 1n }] })],
      ["a sort key that is a bigint", untyped({ sort: [1n] })],
      ["no sort", untyped({ sort: undefined })],
      ["no offset", untyped({ offset: undefined })],
      ["a null filter", untyped({ filter: null })],
      ["a filter with a bigint tag", untyped({ filter: { _tag: 1n, field: "name" } })],
      ["a filter value of the wrong type", untyped({ filter: Filter.eq("score", "1") })]
    ]

    it.effect.each(bad)("%s is a ValidationError", ([, query]) =>
      Effect.gen(function*() {
        yield* Store.create(Item, "create", { id: "r0", name: "ann", score: 1, tags: [], partner: null })
        const error = yield* Store.read(query).pipe(Effect.flip)
        assert.strictEqual(error._tag, "ValidationError")
        if (error._tag === "ValidationError") assert.strictEqual(error.resource, "Item")
      }).pipe(Effect.provide(items())))

    it.effect("a query over a resource the store does not hold is a ValidationError", () =>
      Effect.gen(function*() {
        const error = yield* Store.read(Query.make(Character)).pipe(Effect.flip)
        assert.strictEqual(error._tag, "ValidationError")
      }).pipe(Effect.provide(items())))

    it.effect("limit 0 and offsets past the end are fine", () =>
      Effect.gen(function*() {
        yield* Store.create(Item, "create", { id: "r0", name: "ann", score: 1, tags: [], partner: null })
        assert.deepStrictEqual(yield* Store.read(Query.limit(base, 0)), [])
        assert.deepStrictEqual(yield* Store.read(Query.offset(base, 10)), [])
      }).pipe(Effect.provide(items())))
  })

  describe("the order of values", () => {
    const Measured = Resource.make("Measured", {
      fields: { id: Schema.String, x: Schema.optionalKey(Schema.NullOr(Schema.Number)) },
      primaryKey: ["id"]
    })
    const xs = [1, 2, 3, NaN, 0, 4, 5]
    const xsOf = (records: ReadonlyArray<{ readonly x?: number | null }>) => records.map((r) => r.x)

    // caught a bug: `<` is false both ways with NaN, so the comparator called NaN equal to every number and the
    // order was not transitive: [1, 2, 3, NaN, 0, 4, 5] sorted to itself, and top-k pages disagreed with the sort
    it.effect("NaN sorts after every number, in the full sort and in the top-k of a limited sort", () =>
      Effect.gen(function*() {
        yield* Effect.forEach(xs, (x, i) => Store.create(Measured, "create", { id: `m${i}`, x }))
        const q = Query.make(Measured)
        assert.deepStrictEqual(xsOf(yield* Store.read(q.pipe(Query.sort("x")))), [0, 1, 2, 3, 4, 5, NaN])
        assert.deepStrictEqual(xsOf(yield* Store.read(q.pipe(Query.sort("x"), Query.limit(3)))), [0, 1, 2])
        assert.deepStrictEqual(
          xsOf(yield* Store.read(q.pipe(Query.sort("x"), Query.offset(5), Query.limit(5)))),
          [5, NaN]
        )
        assert.deepStrictEqual(xsOf(yield* Store.read(q.pipe(Query.sort("x", "desc")))), [NaN, 5, 4, 3, 2, 1, 0])
        assert.deepStrictEqual(xsOf(yield* Store.read(q.pipe(Query.sort("x", "desc"), Query.limit(2)))), [NaN, 5])
      }).pipe(Effect.provide(Store.layer([Measured]))))

    it("kinds in order: nil, booleans, numbers, NaN, strings, dates, invalid dates, other values", () => {
      const values: ReadonlyArray<unknown> = [
        undefined,
        false,
        true,
        -Infinity,
        -1n,
        0,
        1.5,
        Infinity,
        NaN,
        "",
        "B",
        "a",
        new Date(0),
        new Date(1),
        new Date(NaN),
        ["array"]
      ]
      const records = values.map((v, i) => ({ id: `v${i}`, v }))
      const sorted = (input: typeof records, direction: "asc" | "desc") =>
        Query.run(Query.sort(Query.make(Measured), "v" as "x", direction) as Query.Query<any>, input).map((r) => r.id)
      const ids = records.map((r) => r.id)
      assert.deepStrictEqual(sorted([...records].reverse(), "asc"), ids)
      assert.deepStrictEqual(sorted(records, "desc"), [...ids].reverse())
      // null is nil too: it ties with undefined, so the input order is kept
      const nil = [{ id: "n", v: null }, { id: "u", v: undefined }]
      assert.deepStrictEqual(sorted([...nil, ...records.slice(1)], "asc").slice(0, 2), ["n", "u"])
    })

    /** A value of a field holding numbers, with NaN, -0, infinities, null and absent values often. */
    const value: fc.Arbitrary<unknown> = fc.oneof(
      fc.constantFrom(NaN, null, undefined, -0, 0, 1, -1, Infinity, -Infinity),
      fc.integer({ min: -3, max: 3 }),
      fc.double()
    )
    // some fields of a union schema: strings, booleans, bigints and dates among the numbers
    const mixed: fc.Arbitrary<unknown> = fc.oneof(
      { weight: 4, arbitrary: value },
      { weight: 1, arbitrary: fc.constantFrom("", "a", "b", true, false, 1n, -2n, new Date(0), new Date(NaN)) }
    )
    const recordsOf = (field: fc.Arbitrary<unknown>) =>
      fc.array(
        fc.record({ x: field, y: field }, { requiredKeys: [] }),
        { maxLength: 40 }
      ).map((rs) => rs.map((r, i) => ({ id: `r${i}`, ...r })))
    const sortKeys = fc.array(
      fc.record({ field: fc.constantFrom("x", "y"), direction: fc.constantFrom("asc" as const, "desc" as const) }),
      { minLength: 1, maxLength: 2 }
    )

    /** The order, written independently: a rank per kind, then the value. */
    const rank = (v: unknown): number =>
      v === undefined || v === null
        ? 0
        : typeof v === "boolean"
        ? 1
        : typeof v === "bigint" || (typeof v === "number" && !Number.isNaN(v))
        ? 2
        : typeof v === "number"
        ? 3
        : typeof v === "string"
        ? 4
        : v instanceof Date
        ? Number.isNaN(v.getTime()) ? 6 : 5
        : 7
    const compare = (a: unknown, b: unknown): number => {
      const ra = rank(a)
      const rb = rank(b)
      if (ra !== rb) return ra - rb
      if (ra === 0 || ra === 3 || ra >= 6) return 0
      const x: any = a instanceof Date ? a.getTime() : a
      const y: any = b instanceof Date ? b.getTime() : b
      return x < y ? -1 : x > y ? 1 : 0
    }
    const referenceSort = <A extends { readonly [k: string]: unknown }>(
      records: ReadonlyArray<A>,
      keys: ReadonlyArray<Query.SortKey>
    ) =>
      records
        .map((record, index) => ({ record, index }))
        .sort((p, q) => {
          for (const { direction, field } of keys) {
            const c = compare(p.record[field], q.record[field])
            if (c !== 0) return direction === "asc" ? c : -c
          }
          return p.index - q.index
        })
        .map(({ record }) => record)

    const queryOf = (keys: ReadonlyArray<Query.SortKey>) => {
      let q: Query.Query<any> = Query.make(Measured)
      for (const { direction, field } of keys) q = Query.sort(q, field as "x", direction)
      return q
    }

    it("the full sort is the reference stable multi-key sort, with NaN, nil and mixed kinds", () => {
      fc.assert(
        fc.property(fc.oneof(recordsOf(value), recordsOf(mixed)), sortKeys, (records, keys) => {
          assert.deepStrictEqual(Query.run(queryOf(keys), records), referenceSort(records, keys))
        }),
        { seed: 2015, numRuns: 500 }
      )
    })

    it("a sorted page (the top-k collector) is exactly the slice of the full stable sort", () => {
      fc.assert(
        fc.property(
          fc.oneof(recordsOf(value), recordsOf(mixed)),
          sortKeys,
          fc.nat(45),
          fc.nat(45),
          (records, keys, offset, limit) => {
            const q = queryOf(keys)
            const full = Query.run(q, records)
            const page = Query.run(q.pipe(Query.offset(offset), Query.limit(limit)), records)
            assert.deepStrictEqual(page, full.slice(offset, offset + limit))
          }
        ),
        { seed: 1955, numRuns: 1000 }
      )
    })
  })

  describe("properties", () => {
    it.effect.prop(
      "Store.read equals the reference filter + stable sort + slice (sorts made total by the key)",
      { lives: Lives, query: QuerySpec },
      ({ lives, query }) =>
        Effect.gen(function*() {
          const live = yield* play(lives)
          const spec = { ...query, sort: [...query.sort, { field: "id" as const, direction: "asc" as const }] }
          const result = yield* Store.read(build(spec))
          assert.deepStrictEqual(result, reference(live, spec))
        }).pipe(Effect.provide(items())),
      seeded(1955)
    )

    it.effect.prop(
      "Store.read agrees with the reference on any sort: same records in, same key values out",
      { lives: Lives, query: LooseQuerySpec },
      ({ lives, query }) =>
        Effect.gen(function*() {
          const live = yield* play(lives)
          const expected = reference(live, query)
          const result = yield* Store.read(build(query))

          assert.strictEqual(result.length, expected.length)
          // ties may come out in any order, but the sort keys' values are determined
          assert.deepStrictEqual(project(result, query.sort), project(expected, query.sort))
          // every record returned is a live record matching the filter, returned once
          const matching = new Map(
            live.filter(matches(query)).map((r) => [r.id, r])
          )
          assert.strictEqual(new Set(idsOf(result)).size, result.length)
          for (const r of result) assert.deepStrictEqual(r, matching.get(r.id))
          if (query.offset === 0 && query.limit === undefined) {
            assert.deepStrictEqual(idsOf(result).sort(), idsOf(expected).sort())
          }
        }).pipe(Effect.provide(items())),
      seeded(1985)
    )

    it.effect.prop(
      "several Query.filter calls equal one Filter.and, in memory and in the store",
      {
        lives: Lives,
        filters: Schema.Array(Level1).check(Schema.isMinLength(1), upTo(4)),
        sort: SortSpec
      },
      ({ filters, lives, sort }) =>
        Effect.gen(function*() {
          const live = yield* play(lives)
          const total = [...sort, { field: "id" as const, direction: "asc" as const }]
          let chained = build({ sort: total, offset: 0 })
          for (const f of filters) {
            chained = Query.filter(chained, toFilter(f) as Filter.Filter<{}>) as Query.Query<Item>
          }
          const single = build({ filter: { op: "and", filters }, sort: total, offset: 0 })
          // a filter and-ed onto an and, and one and-ed onto something else
          const [head, ...rest] = filters
          const nested = build({
            filter: { op: "and", filters: [{ op: "and", filters: [head!] }, ...rest] },
            sort: total,
            offset: 0
          })

          const expected = reference(live, { filter: { op: "and", filters }, sort: total, offset: 0 })
          assert.deepStrictEqual(Query.run(chained, live), expected)
          assert.deepStrictEqual(Query.run(single, live), expected)
          assert.deepStrictEqual(Query.run(nested, live), expected)
          assert.deepStrictEqual(yield* Store.read(chained), expected)
          assert.deepStrictEqual(yield* Store.read(single), expected)
        }).pipe(Effect.provide(items())),
      seeded(2015)
    )

    it.prop(
      "Query.run sorts stably by several keys",
      {
        records: Schema.Array(RecordSpec).check(upTo(14)),
        sort: SortSpec,
        offset: Page,
        limit: Schema.optionalKey(Page)
      },
      ({ limit, offset, records, sort }) => {
        const withIds = records.map((r, i) => ({ id: `r${i}`, ...r }))
        const spec = limit === undefined ? { sort, offset } : { sort, offset, limit }
        assert.deepStrictEqual(Query.run(build(spec), withIds), reference(withIds, spec))
      },
      seeded(1885, 200)
    )

    it.prop(
      "Query.run with a filter equals the reference on plain arrays",
      { records: Schema.Array(RecordSpec).check(upTo(14)), filter: Level2 },
      ({ filter, records }) => {
        const withIds = records.map((r, i) => ({ id: `r${i}`, ...r }))
        assert.deepStrictEqual(
          Query.run(build({ filter, sort: [], offset: 0 }), withIds),
          withIds.filter((r) => holds(filter, r))
        )
        assert.deepStrictEqual(
          withIds.filter(Filter.toPredicate(toFilter(filter))),
          withIds.filter((r) => holds(filter, r))
        )
      },
      seeded(2045, 300)
    )
  })
})
