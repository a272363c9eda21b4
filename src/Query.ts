/**
 * Reads over a resource: a filter, a sort, an offset and a limit.
 *
 * A `Query` is an immutable value built by piping `filter`, `sort`, `offset`
 * and `limit` onto `make(resource)`, then run by `Store.read`. Field names and
 * compared values are checked by the compiler against the resource's record
 * type, and again by `Store.read` at run time: untyped callers get a
 * `ValidationError` naming the field.
 *
 * **Costs** (GenServer data layer): a query never messages a record. A filter
 * that pins the whole primary key with `eq` is answered from the registry; an
 * `eq` on a field listed in the resource's `indexes` reads that index; any
 * other filter scans the committed state of every live record of the resource.
 * A read is not activity: it never keeps a record alive.
 *
 * @since 0.1.0
 * @module
 */
import { Predicate } from "effect"
import { dual } from "effect/Function"
import { type Pipeable, pipeArguments } from "effect/Pipeable"
import * as Filter from "./Filter.js"
import type * as Resource from "./Resource.js"

/** The identifier every value of this module carries: private, see the `is*` guard. */
const TypeId = "~effect-gen-server/Query" as const

/**
 * One sort key.
 *
 * **Example** (The keys a query sorts by)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Query, Resource } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const latestFirst: ReadonlyArray<Query.SortKey> = [
 *   { field: "currentYear", direction: "desc" },
 *   { field: "name", direction: "asc" }
 * ]
 * Query.make(Character).pipe(Query.sort("currentYear", "desc"), Query.sort("name")).sort // => latestFirst
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface SortKey {
  readonly field: string
  readonly direction: "asc" | "desc"
}

/**
 * A read over the records of type `A` of one resource.
 *
 * **Example** (A paging helper for any query)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Query, Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const page = <A>(query: Query.Query<A>, n: number, size = 20) =>
 *   Store.read(query.pipe(Query.offset(n * size), Query.limit(size)))
 *
 * const secondPage = page(Query.make(Character).pipe(Query.sort("name")), 1)
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Query<A> extends Pipeable {
  readonly [TypeId]: { readonly _A: (_: never) => A }
  readonly resource: Resource.Any
  readonly filter: Filter.Expr | undefined
  readonly sort: ReadonlyArray<SortKey>
  readonly offset: number
  readonly limit: number | undefined
}

/**
 * A query over `A` that a filter or sort key requiring `F` fits: the query,
 * or a type error naming the requirement when a field is not one of `A`'s or
 * a compared value is not a valid value of its field. (`filter` and `sort`
 * report such a mistake at their own argument, as a one- or two-line
 * message naming the field.)
 *
 * **Example** (A misspelt field does not compile)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Filter, Query, Resource } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 * type Character = Resource.Record<typeof Character>
 *
 * const in1955: Query.Query<Character> = Query.make(Character).pipe(Query.filter(Filter.eq("currentYear", 1955)))
 *
 * // @ts-expect-error: Character has no field "year"
 * const typo: Query.Query<Character> = Query.make(Character).pipe(Query.filter(Filter.eq("year", 1955)))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Checked<A, F> = [A] extends [Filter.Filter.Fits<A, F>] ? Query<A>
  : {
    readonly "~error": "a field is not one of the resource's fields, or a value does not fit its field"
    readonly requires: F
  }

/**
 * Why a filter requiring `F` does not fit the records `A`, as a short
 * message naming the field, or `never` when it fits: the compiler prints it
 * as the type the filter argument should have had.
 */
type Mistake<A, F> = [UnknownFields<A, F>] extends [never]
  ? [Misfits<A, F>] extends [never] ? never : `field '${Misfits<A, F>}' cannot hold the value it is compared with`
  : `unknown field '${UnknownFields<A, F>}'`

type UnknownFields<A, F> = Exclude<keyof F, keyof A> & string

type Misfits<A, F> =
  & { [K in keyof F & keyof A]-?: [Exclude<F[K], undefined>] extends [A[K]] ? never : K }[keyof F & keyof A]
  & string

/**
 * The type of `filter`'s argument over the records `A`: the filter itself
 * when it fits (or when `A` is not known yet), the message of its
 * {@link Mistake} when it does not, so the mistake is reported at the
 * filter, in a line or two.
 */
type FilterOf<A, F> = unknown extends A ? Filter.Filter<F> : [Mistake<A, F>] extends [never] ? Filter.Filter<F>
: Mistake<A, F>

/** Makes a query argument fail to compile where `F` does not fit its records. */
type Fits<A, F> = [Mistake<A, F>] extends [never] ? unknown : Mistake<A, F>

/** The fields a query over `A` may sort by (any name while `A` is not known yet). */
type SortField<A> = unknown extends A ? string : keyof A & string

/** Makes a query argument fail to compile where `K` is not one of its records' fields. */
type Sortable<A, K> = [K] extends [keyof A] ? unknown : `unknown field '${K & string}'`

const Proto = {
  [TypeId]: { _A: (_: never) => _ },
  pipe() {
    return pipeArguments(this, arguments)
  }
}

const copy = <A>(self: Query<A>, patch: Partial<Query<A>>): Query<A> => Object.assign(Object.create(Proto), self, patch)

/**
 * Returns `true` if the value is a {@link Query}.
 *
 * **Example** (Guarding)
 *
 * ```ts
 * import { Query } from "effect-gen-server"
 *
 * Query.isQuery(42) // => false
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isQuery = (u: unknown): u is Query<unknown> => Predicate.hasProperty(u, TypeId)

/**
 * A query for every record of the resource, in no particular order.
 *
 * **Example** (Every character)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Query, Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const everyone = Store.read(Query.make(Character))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <Res extends Resource.Any>(resource: Res): Query<Resource.Record<Res>> =>
  Object.assign(Object.create(Proto), {
    resource,
    filter: undefined,
    sort: [],
    offset: 0,
    limit: undefined
  })

/**
 * Adds a filter; several `filter` calls are and-ed.
 *
 * In a pipe, the compiler checks the filter against the records where it is
 * given: an unknown field reads "unknown field 'name'", a value its field
 * cannot hold "field 'name' cannot hold the value it is compared with".
 *
 * **Example** (Characters in 1955)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Filter, Query, Resource } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const in1955 = Query.make(Character).pipe(Query.filter(Filter.eq("currentYear", 1955)))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const filter: {
  <A, F>(
    filter: FilterOf<NoInfer<A>, F>
  ): unknown extends A ? <B>(self: Query<B> & Fits<B, F>) => Query<B> : (self: Query<A>) => Query<A>
  <A, F>(self: Query<A>, filter: FilterOf<NoInfer<A>, F>): Query<A>
} = dual(2, <A>(self: Query<A>, filter: Filter.Expr): Query<A> =>
  copy(self, {
    filter: self.filter === undefined
      ? filter
      : self.filter._tag === "And"
      ? { _tag: "And", filters: [...self.filter.filters, filter] }
      : { _tag: "And", filters: [self.filter, filter] }
  }))

/**
 * Adds a sort key (ascending by default). Each call adds a key after the
 * previous ones: a record is ordered by the first key on which it differs
 * from another. The sort is stable: records equal on every key keep the
 * order in which the data layer found them. In a pipe the field is checked
 * at this call: a field the records do not have does not compile here.
 *
 * **Details** (the order of values)
 *
 * Every sort (the full sort and the top-k of a sorted, limited query) uses
 * one total order over field values, so `offset`/`limit` pages are slices
 * of the full sort. Ascending, kinds come in this order:
 *
 * 1. nil: an absent optional field, `undefined` and `null`, all equal;
 * 2. booleans, `false` before `true`;
 * 3. numbers and bigints, by numeric value (`-0` equals `0`);
 * 4. `NaN`, after every number, all `NaN`s equal;
 * 5. strings, by UTF-16 code units (JavaScript's `<`, not a locale);
 * 6. valid dates, by time;
 * 7. invalid dates;
 * 8. any other value (arrays, objects), all equal.
 *
 * `"desc"` reverses the whole order: nil comes last and `NaN` first among
 * numbers. Values of different kinds in one field only meet when its schema
 * is a union.
 *
 * **Example** (By year, then by name)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Query, Resource } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const ordered = Query.make(Character).pipe(Query.sort("currentYear", "desc"), Query.sort("name"))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const sort: {
  <A, const K extends NoInfer<SortField<A>>>(
    field: K,
    direction?: "asc" | "desc"
  ): unknown extends A ? <B>(self: Query<B> & Sortable<B, K>) => Query<B> : (self: Query<A>) => Query<A>
  <A, const K extends NoInfer<keyof A & string>>(self: Query<A>, field: K, direction?: "asc" | "desc"): Query<A>
} = dual(
  (args) => isQuery(args[0]),
  <A>(self: Query<A>, field: string, direction: "asc" | "desc" = "asc"): Query<A> =>
    copy(self, { sort: [...self.sort, { field, direction }] })
)

/**
 * Skips the first `n` records of the result.
 *
 * **Example** (The second page)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Query, Resource } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const page2 = Query.make(Character).pipe(Query.sort("name"), Query.offset(10), Query.limit(10))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const offset: {
  (n: number): <A>(self: Query<A>) => Query<A>
  <A>(self: Query<A>, n: number): Query<A>
} = dual(2, <A>(self: Query<A>, n: number): Query<A> => copy(self, { offset: n }))

/**
 * Returns at most `n` records.
 *
 * **Example** (The first three)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Query, Resource } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const three = Query.make(Character).pipe(Query.sort("name"), Query.limit(3))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const limit: {
  (n: number): <A>(self: Query<A>) => Query<A>
  <A>(self: Query<A>, n: number): Query<A>
} = dual(2, <A>(self: Query<A>, n: number): Query<A> => copy(self, { limit: n }))

/** The rank of a value's kind in the total order of {@link compareValues}. */
const rank = (v: unknown): number => {
  switch (typeof v) {
    case "undefined":
      return 0
    case "boolean":
      return 1
    case "number":
      return v === v ? 2 : 3
    case "bigint":
      return 2
    case "string":
      return 4
    case "object":
      return v === null ? 0 : v instanceof Date ? (v.getTime() === v.getTime() ? 5 : 6) : 7
    default:
      return 7
  }
}

/** The total order of field values every sort uses (documented on {@link sort}): kinds by rank, then values. */
const compareValues = (a: unknown, b: unknown): number => {
  if (a === b) return 0
  // the common cases first: two strings, two numbers that are not NaN (the same order as below)
  const ta = typeof a
  if (ta === typeof b) {
    // two strings or two numbers: JavaScript's operators compare them (the compiler is told strings)
    if (ta === "string" || (ta === "number" && a === a && b === b)) {
      return (a as string) < (b as string) ? -1 : (a as string) > (b as string) ? 1 : 0
    }
  }
  const ra = rank(a)
  const rb = rank(b)
  if (ra !== rb) return ra < rb ? -1 : 1
  switch (ra) {
    // booleans, numbers, strings: two of one kind, compared by JavaScript's operators (told strings)
    case 1:
    case 2:
    case 4:
      return (a as string) < (b as string) ? -1 : (a as string) > (b as string) ? 1 : 0
    case 5: {
      const x = (a as Date).getTime()
      const y = (b as Date).getTime()
      return x < y ? -1 : x > y ? 1 : 0
    }
    default:
      // nil, NaN, invalid dates, other objects: equal among themselves
      return 0
  }
}

/**
 * Builds the comparator of a list of sort keys, or `undefined` for none.
 *
 * **Example** (Sorting an array the way a query does)
 *
 * ```ts
 * import { Query } from "effect-gen-server"
 *
 * const cmp = Query.comparator([{ field: "year", direction: "desc" }])!
 * ;[{ year: 1955 }, { year: 1985 }].sort(cmp) // => [{ year: 1985 }, { year: 1955 }]
 * ```
 *
 * @category evaluation
 * @since 0.1.0
 */
export const comparator = (keys: ReadonlyArray<SortKey>): ((a: any, b: any) => number) | undefined => {
  if (keys.length === 0) return undefined
  if (keys.length === 1) {
    const { direction, field } = keys[0]!
    return direction === "asc"
      ? (a, b) => compareValues(a[field], b[field])
      : (a, b) => compareValues(b[field], a[field])
  }
  return (a, b) => {
    for (const { direction, field } of keys) {
      const c = compareValues(a[field], b[field])
      if (c !== 0) return direction === "asc" ? c : -c
    }
    return 0
  }
}

/**
 * Applies a query's filter, sort, offset and limit to an array of records, in
 * memory: the reference semantics of `Store.read`.
 *
 * **Example** (Running a query on plain data)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Filter, Query, Resource } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const q = Query.make(Character).pipe(Query.filter(Filter.gt("currentYear", 1955)), Query.limit(1))
 * Query.run(q, [])
 * ```
 *
 * @category evaluation
 * @since 0.1.0
 */
export const run = <A>(self: Query<A>, records: Iterable<A>): Array<A> => {
  const collected = collector<A>(self)
  for (const r of records) collected.add(r)
  return collected.done()
}

/**
 * A query's answer built one candidate at a time, so a caller that scans
 * records needs no array of candidates: `add` each record, then `done`.
 *
 * @internal
 */
export interface Collector<A> {
  readonly add: (record: A) => void
  readonly done: () => Array<A>
}

/** The collector of a query's filter, sort, offset and limit. @internal */
export const collector = <A>(
  self: Pick<Query<A>, "filter" | "sort" | "offset" | "limit">
): Collector<A> => {
  const predicate = self.filter === undefined ? undefined : Filter.toPredicate(self.filter)
  const cmp = comparator(self.sort)
  const end = self.limit === undefined ? undefined : self.offset + self.limit
  // a sorted, limited query keeps only its first `end` records: O(n log k), not a full sort
  if (cmp !== undefined && end !== undefined && end <= 256) {
    const top = topK(predicate, cmp, end)
    return { add: top.add, done: () => top.done().slice(self.offset) }
  }
  const out: Array<A> = []
  return {
    add: predicate === undefined ? (r) => void out.push(r) : (r) => {
      if (predicate(r)) out.push(r)
    },
    done: () => {
      if (cmp !== undefined) out.sort(cmp)
      return self.offset === 0 && end === undefined ? out : out.slice(self.offset, end)
    }
  }
}

/** The first `k` records in `cmp` order, stable: equal records keep the order they were added in. */
const topK = <A>(
  predicate: ((record: A) => boolean) | undefined,
  cmp: (a: A, b: A) => number,
  k: number
): Collector<A> => {
  const top: Array<A> = []
  const add = (r: A): void => {
    if (k === 0 || (predicate !== undefined && !predicate(r))) return
    if (top.length === k && cmp(r, top[k - 1]!) >= 0) return
    // insert after every record that sorts before or equal to it
    let lo = 0
    let hi = top.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (cmp(top[mid]!, r) <= 0) lo = mid + 1
      else hi = mid
    }
    top.splice(lo, 0, r)
    if (top.length > k) top.pop()
  }
  return { add, done: () => top }
}
