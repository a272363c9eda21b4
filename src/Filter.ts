/**
 * Filter expressions over a resource's fields.
 *
 * A `Filter` is plain data (`_tag`, `field`, `value`), so it can be encoded and
 * sent to a remote data layer, and it is checked twice: field names and value
 * types against the resource's record type by the compiler (in
 * `Query.filter`), and both again at run time by `Store.read` for untyped
 * callers.
 *
 * Evaluation compiles a filter once into a predicate. Equality (`eq`, `neq`,
 * `in`, `contains` on arrays) is SameValueZero for primitives, the equality
 * of `Map`, `Set` and `Array.prototype.includes`: `NaN` equals `NaN` and `-0`
 * equals `0`, so `in([v])` always agrees with `eq(v)`, and a scan agrees with
 * an index or a primary-key lookup. Other values compare with `Equal.equals`.
 * Ordering (`gt`, `lt`, ...) uses JavaScript's `<` between values of the same
 * type (numbers, strings, bigints, dates): `NaN` is neither greater nor less
 * than anything. `isNil` is true for `undefined` (an absent optional key) and
 * `null`.
 *
 * `Store.read` checks every compared value against its field's schema (the
 * type side): a value the field cannot hold is a `ValidationError`, not an
 * empty result. `in` checks each value; `contains` takes a string (any
 * substring) on a field that holds strings, or a valid element on an array
 * field; `isNil` has no value. `undefined` fits every field, as in the types (it
 * matches absent optional fields).
 *
 * @since 0.1.0
 * @module
 */
import { Equal } from "effect"

/**
 * A filter expression. `F` is the shape it requires of a record: the fields it
 * names, each with the type of the values it compares against.
 *
 * **Example** (A reusable, typed filter)
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
 * const inYear = (year: number): Filter.Filter<{ readonly currentYear?: number }> => Filter.eq("currentYear", year)
 *
 * const in1955 = Query.make(Character).pipe(Query.filter(inYear(1955)))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Filter<F = {}> = Expr & { readonly "~F"?: F }

/**
 * The filter expression as data.
 *
 * **Example** (Translating a filter for another engine)
 *
 * ```ts
 * import { Filter } from "effect-gen-server"
 *
 * const describe = (f: Filter.Expr): string => {
 *   switch (f._tag) {
 *     case "And":
 *       return f.filters.map(describe).join(" and ")
 *     case "Or":
 *       return f.filters.map(describe).join(" or ")
 *     case "Not":
 *       return `not (${describe(f.filter)})`
 *     case "IsNil":
 *       return `${f.field} is nil`
 *     case "In":
 *       return `${f.field} in ${JSON.stringify(f.values)}`
 *     default:
 *       return `${f.field} ${f._tag} ${JSON.stringify(f.value)}`
 *   }
 * }
 *
 * describe(Filter.eq("currentYear", 1955)) // => "currentYear Eq 1955"
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Expr =
  | { readonly _tag: "Eq"; readonly field: string; readonly value: unknown }
  | { readonly _tag: "Neq"; readonly field: string; readonly value: unknown }
  | { readonly _tag: "Gt"; readonly field: string; readonly value: unknown }
  | { readonly _tag: "Gte"; readonly field: string; readonly value: unknown }
  | { readonly _tag: "Lt"; readonly field: string; readonly value: unknown }
  | { readonly _tag: "Lte"; readonly field: string; readonly value: unknown }
  | { readonly _tag: "In"; readonly field: string; readonly values: ReadonlyArray<unknown> }
  | { readonly _tag: "Contains"; readonly field: string; readonly value: unknown }
  | { readonly _tag: "IsNil"; readonly field: string }
  | { readonly _tag: "And"; readonly filters: ReadonlyArray<Expr> }
  | { readonly _tag: "Or"; readonly filters: ReadonlyArray<Expr> }
  | { readonly _tag: "Not"; readonly filter: Expr }

/**
 * Helper types for filters.
 *
 * @since 0.1.0
 */
export declare namespace Filter {
  /**
   * The requirement of a filter on a record type.
   *
   * @category models
   * @since 0.1.0
   */
  export type Requires<T> = T extends Filter<infer F> ? F : never
  /**
   * `A` satisfies the requirement `F`: every field `F` names exists in `A`,
   * and the compared value is a valid value of the field (`never` compares
   * with anything: `isNil`, `contains`, sort keys).
   *
   * @category models
   * @since 0.1.0
   */
  export type Fits<A, F> =
    & { readonly [K in keyof F & keyof A]?: [Exclude<F[K], undefined>] extends [A[K]] ? A[K] : never }
    & { readonly [K in Exclude<keyof F, keyof A>]: never }
}

type UnionToIntersection<U> = (U extends unknown ? (k: U) => void : never) extends (k: infer I) => void ? I : never

/**
 * Field equals value.
 *
 * **Example** (Marty by nickname)
 *
 * ```ts
 * import { Filter } from "effect-gen-server"
 *
 * const byNickname = Filter.eq("nickname", "Marty")
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const eq = <const K extends string, const V>(field: K, value: V): Filter<{ readonly [P in K]?: V }> => ({
  _tag: "Eq",
  field,
  value
})

/**
 * Field differs from value (an absent optional field differs from any value).
 *
 * **Example** (Everyone but Biff)
 *
 * ```ts
 * import { Filter } from "effect-gen-server"
 *
 * const notBiff = Filter.neq("name", "Biff")
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const neq = <const K extends string, const V>(field: K, value: V): Filter<{ readonly [P in K]?: V }> => ({
  _tag: "Neq",
  field,
  value
})

/**
 * Field greater than value.
 *
 * **Example** (After 1955)
 *
 * ```ts
 * import { Filter } from "effect-gen-server"
 *
 * const after = Filter.gt("currentYear", 1955)
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const gt = <const K extends string, const V>(field: K, value: V): Filter<{ readonly [P in K]?: V }> => ({
  _tag: "Gt",
  field,
  value
})

/**
 * Field greater than or equal to value.
 *
 * **Example** (From 1955 on)
 *
 * ```ts
 * import { Filter } from "effect-gen-server"
 *
 * const since = Filter.gte("currentYear", 1955)
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const gte = <const K extends string, const V>(field: K, value: V): Filter<{ readonly [P in K]?: V }> => ({
  _tag: "Gte",
  field,
  value
})

/**
 * Field less than value.
 *
 * **Example** (Before 2015)
 *
 * ```ts
 * import { Filter } from "effect-gen-server"
 *
 * const before = Filter.lt("currentYear", 2015)
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const lt = <const K extends string, const V>(field: K, value: V): Filter<{ readonly [P in K]?: V }> => ({
  _tag: "Lt",
  field,
  value
})

/**
 * Field less than or equal to value.
 *
 * **Example** (Up to 1985)
 *
 * ```ts
 * import { Filter } from "effect-gen-server"
 *
 * const upTo = Filter.lte("currentYear", 1985)
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const lte = <const K extends string, const V>(field: K, value: V): Filter<{ readonly [P in K]?: V }> => ({
  _tag: "Lte",
  field,
  value
})

/**
 * Field equals one of the values.
 *
 * **Example** (Either year)
 *
 * ```ts
 * import { Filter } from "effect-gen-server"
 *
 * const either = Filter.in("currentYear", [1955, 1985])
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
const in_ = <const K extends string, const V>(
  field: K,
  values: ReadonlyArray<V>
): Filter<{ readonly [P in K]?: V }> => ({
  _tag: "In",
  field,
  values
})
export { in_ as in }

/**
 * A string field contains the substring, or an array field contains the
 * element.
 *
 * **Gotchas**
 *
 * - The compiler does not check the value, `Store.read` does: a string on a
 *   field that may hold strings, or a valid element of an array field;
 *   anything else is a `ValidationError`.
 *
 * **Example** (Names with an "a")
 *
 * ```ts
 * import { Filter } from "effect-gen-server"
 *
 * const withA = Filter.contains("name", "a")
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const contains = <const K extends string, V>(
  field: K,
  value: V
): Filter<{ readonly [P in K]?: never }> => ({ _tag: "Contains", field, value })

/**
 * Field is absent, `undefined` or `null`.
 *
 * **Example** (No nickname)
 *
 * ```ts
 * import { Filter } from "effect-gen-server"
 *
 * const anonymous = Filter.isNil("nickname")
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const isNil = <const K extends string>(field: K): Filter<{ readonly [P in K]?: never }> => ({
  _tag: "IsNil",
  field
})

/**
 * All of the filters hold.
 *
 * **Example** (In 1955 and named)
 *
 * ```ts
 * import { Filter } from "effect-gen-server"
 *
 * const both = Filter.and(Filter.eq("currentYear", 1955), Filter.not(Filter.isNil("name")))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const and = <const Fs extends ReadonlyArray<Filter<any>>>(
  ...filters: Fs
): Filter<UnionToIntersection<Filter.Requires<Fs[number]>>> => ({ _tag: "And", filters })

/**
 * At least one of the filters holds.
 *
 * **Example** (Either era)
 *
 * ```ts
 * import { Filter } from "effect-gen-server"
 *
 * const either = Filter.or(Filter.eq("currentYear", 1955), Filter.eq("currentYear", 2015))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const or = <const Fs extends ReadonlyArray<Filter<any>>>(
  ...filters: Fs
): Filter<UnionToIntersection<Filter.Requires<Fs[number]>>> => ({ _tag: "Or", filters })

/**
 * The filter does not hold.
 *
 * **Example** (Has a name)
 *
 * ```ts
 * import { Filter } from "effect-gen-server"
 *
 * const named = Filter.not(Filter.isNil("name"))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const not = <F>(filter: Filter<F>): Filter<F> => ({ _tag: "Not", filter })

/**
 * The field names a filter mentions, for run-time validation.
 *
 * **Example** (Listing fields)
 *
 * ```ts
 * import { Filter } from "effect-gen-server"
 *
 * Filter.fields(Filter.and(Filter.eq("a", 1), Filter.isNil("b"))) // => ["a", "b"]
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const fields = (filter: Expr): Array<string> => {
  const out: Array<string> = []
  const go = (f: Expr): void => {
    switch (f._tag) {
      case "And":
      case "Or":
        f.filters.forEach(go)
        return
      case "Not":
        go(f.filter)
        return
      default:
        out.push(f.field)
    }
  }
  go(filter)
  return out
}

/**
 * Checks that a value is a well-formed filter expression; returns a message
 * describing the first problem, or `undefined`.
 *
 * **Example** (An untyped filter)
 *
 * ```ts
 * import { Filter } from "effect-gen-server"
 *
 * Filter.check({ _tag: "Eq" }) // => "filter Eq needs a string field"
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const check = (u: unknown): string | undefined => checkAt(u, 0)

/** How deep `and`, `or` and `not` may nest. */
const maxDepth = 64

const checkAt = (u: unknown, depth: number): string | undefined => {
  if (typeof u !== "object" || u === null) return `a filter must be an object, got ${u === null ? "null" : typeof u}`
  if (depth > maxDepth) return `filters nest at most ${maxDepth} deep`
  const f = u as Record<string, unknown>
  switch (f._tag) {
    case "And":
    case "Or": {
      if (!Array.isArray(f.filters)) return `filter ${f._tag} needs an array of filters`
      for (const sub of f.filters) {
        const problem = checkAt(sub, depth + 1)
        if (problem !== undefined) return problem
      }
      return undefined
    }
    case "Not":
      return checkAt(f.filter, depth + 1)
    case "In":
      if (typeof f.field !== "string") return "filter In needs a string field"
      return Array.isArray(f.values) ? undefined : "filter In needs an array of values"
    case "Eq":
    case "Neq":
    case "Gt":
    case "Gte":
    case "Lt":
    case "Lte":
    case "Contains":
    case "IsNil":
      return typeof f.field === "string" ? undefined : `filter ${f._tag} needs a string field`
    default:
      return `unknown filter ${typeof f._tag === "string" ? JSON.stringify(f._tag) : typeof f._tag}`
  }
}

const isPrimitive = (u: unknown) => u === null || (typeof u !== "object" && typeof u !== "function")

/** SameValueZero: `===`, except that `NaN` equals `NaN`. */
const sameValueZero = (a: unknown, b: unknown): boolean => a === b || (a !== a && b !== b)

const equals = (a: unknown, b: unknown): boolean =>
  sameValueZero(a, b) || (!isPrimitive(a) && !isPrimitive(b) && Equal.equals(a, b))

const order = (a: unknown): unknown => a instanceof Date ? a.getTime() : a

const comparable = (a: unknown, b: unknown): boolean =>
  a !== undefined && a !== null && b !== undefined && b !== null && typeof order(a) === typeof order(b)

/**
 * Compiles a filter into a predicate over records.
 *
 * **Example** (Filtering an array)
 *
 * ```ts
 * import { Filter } from "effect-gen-server"
 *
 * const inFifties = Filter.toPredicate(Filter.and(Filter.gte("year", 1950), Filter.lt("year", 1960)))
 * ;[{ year: 1955 }, { year: 1985 }].filter(inFifties) // => [{ year: 1955 }]
 * ```
 *
 * @category evaluation
 * @since 0.1.0
 */
export const toPredicate = (filter: Expr): (record: any) => boolean => {
  switch (filter._tag) {
    case "Eq": {
      const { field, value } = filter
      return value !== value
        ? (r) => r[field] !== r[field]
        : isPrimitive(value)
        ? (r) => r[field] === value
        : (r) => equals(r[field], value)
    }
    case "Neq": {
      const { field, value } = filter
      return (r) => !equals(r[field], value)
    }
    // `comparable` admits two values of one primitive kind (a date is its time): JavaScript's operators
    // compare them; the compiler, seeing `unknown`, is told they are numbers
    case "Gt": {
      const { field } = filter
      const value = order(filter.value) as number
      return (r) => comparable(r[field], value) && (order(r[field]) as number) > value
    }
    case "Gte": {
      const { field } = filter
      const value = order(filter.value) as number
      return (r) => comparable(r[field], value) && (order(r[field]) as number) >= value
    }
    case "Lt": {
      const { field } = filter
      const value = order(filter.value) as number
      return (r) => comparable(r[field], value) && (order(r[field]) as number) < value
    }
    case "Lte": {
      const { field } = filter
      const value = order(filter.value) as number
      return (r) => comparable(r[field], value) && (order(r[field]) as number) <= value
    }
    case "In": {
      const { field, values } = filter
      return values.every(isPrimitive)
        ? ((set) => (r: any) => set.has(r[field]))(new Set(values))
        : (r) => values.some((v) => equals(r[field], v))
    }
    case "Contains": {
      const { field, value } = filter
      return (r) => {
        const v = r[field]
        if (typeof v === "string") return typeof value === "string" && v.includes(value)
        if (Array.isArray(v)) return v.some((x) => equals(x, value))
        return false
      }
    }
    case "IsNil": {
      const { field } = filter
      return (r) => r[field] === undefined || r[field] === null
    }
    case "And": {
      const ps = filter.filters.map(toPredicate)
      return (r) => {
        for (const p of ps) if (!p(r)) return false
        return true
      }
    }
    case "Or": {
      const ps = filter.filters.map(toPredicate)
      return (r) => {
        for (const p of ps) if (p(r)) return true
        return false
      }
    }
    case "Not": {
      const p = toPredicate(filter.filter)
      return (r) => !p(r)
    }
  }
}

/**
 * The equality constraints a filter imposes on every matching record: the
 * `eq` filters at its top level or inside top-level `and`s. Used to answer a
 * query by primary key from the registry, or an indexed field from its index.
 *
 * **Example** (Finding the key)
 *
 * ```ts
 * import { Filter } from "effect-gen-server"
 *
 * Filter.equalities(Filter.and(Filter.eq("id", "1"), Filter.gt("year", 1))) // => Map { "id" => "1" }
 * ```
 *
 * @category evaluation
 * @since 0.1.0
 */
export const equalities = (filter: Expr): Map<string, unknown> => {
  const out = new Map<string, unknown>()
  const go = (f: Expr): void => {
    if (f._tag === "And") f.filters.forEach(go)
    else if (f._tag === "Eq" && !out.has(f.field)) out.set(f.field, f.value)
  }
  go(filter)
  return out
}
