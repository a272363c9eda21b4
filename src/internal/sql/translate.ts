/**
 * Queries in SQL: the part of a filter SQL can decide, as a `WHERE`
 * condition over the JSON state that keeps a superset of the matching rows
 * (exact where it can be), and the sorts SQL can run exactly as
 * `Query.sort` does. What SQL cannot decide exactly finishes in memory with
 * the in-memory evaluator, so a query's result never depends on the layer.
 *
 * Not pushed down: comparisons and sorts on strings (JavaScript compares
 * UTF-16 code units, PostgreSQL code points or a collation), dates,
 * transformed fields.
 *
 * @internal
 */
import { type Schema, SchemaAST } from "effect"
import { ValidationError } from "../../Errors.js"
import type * as Filter from "../../Filter.js"
import type * as Query from "../../Query.js"
import type { Compiled } from "../resource.js"
import { codecsOf } from "./codec.js"

/** A condition over the `state` column: it holds for every row the filter selects (a superset). @internal */
export interface Condition {
  readonly sql: string
  /** It holds exactly for the rows the filter selects (then it may be negated). */
  readonly exact: boolean
}

const always: Condition = { sql: "TRUE", exact: false }

const isPrimitive = (u: unknown) => u === null || (typeof u !== "object" && typeof u !== "function")

/**
 * Translates a filter to a SQL condition over the JSON state, pushing its
 * parameters on `params`. The result keeps every row the filter keeps
 * (`Filter.toPredicate` finishes the job in memory); it is `exact` when it
 * keeps no other, which is what a `Not` needs. Exact atoms: `eq`/`neq`/`in` on
 * a non-nil primitive (the field's JSON codec is injective: it round-trips),
 * `isNil`, and `gt`/`gte`/`lt`/`lte` on a finite number whose encoding is a
 * JSON number (non-finite numbers are stored as strings and handled). Not
 * translated (always true, inexact): comparisons of strings (JavaScript
 * compares UTF-16 code units, PostgreSQL code points or a collation), of
 * dates, of objects; `contains` (only narrowed to strings and arrays).
 *
 * @internal
 */
export const translate = (
  resource: Compiled,
  filter: Filter.Expr,
  params: Array<unknown>
): Condition => {
  const codecs = codecsOf(resource)
  const param = (value: unknown, cast: string) => {
    params.push(value)
    return `$${params.length}::${cast}`
  }
  /** Drops the parameters of a condition given up for `always`. */
  const discard = (mark: number): Condition => {
    params.length = mark
    return always
  }
  const field = (f: string) => `state->${param(f, "text")}`
  const exactly = (sql: string): Condition => ({ sql: `COALESCE(${sql}, FALSE)`, exact: true })
  const eq = (f: string, value: unknown): Condition => {
    if (value === undefined || value === null || !isPrimitive(value)) return always
    const encoded = codecs.encodeField(f, value)
    if (encoded === undefined) return always
    return exactly(`${field(f)} = ${param(JSON.stringify(encoded.json), "jsonb")}`)
  }
  const compare = (f: string, value: unknown, op: string): Condition => {
    if (typeof value !== "number" || !Number.isFinite(value)) return always
    const encoded = codecs.encodeField(f, value)
    if (encoded === undefined || typeof encoded.json !== "number") return always
    // the field encodes finite numbers as JSON numbers; +-Infinity are stored as strings
    const infinity = op[0] === ">" ? "\"Infinity\"" : "\"-Infinity\""
    const x = field(f)
    return exactly(
      `(CASE WHEN jsonb_typeof(${x}) = 'number' THEN (${x})::numeric ${op} ${param(value, "numeric")} ` +
        `ELSE ${x} = ${param(infinity, "jsonb")} END)`
    )
  }
  const go = (f: Filter.Expr): Condition => {
    switch (f._tag) {
      case "Eq":
        return eq(f.field, f.value)
      case "Neq": {
        const mark = params.length
        const c = eq(f.field, f.value)
        return c.exact ? { sql: `NOT ${c.sql}`, exact: true } : discard(mark)
      }
      case "Gt":
        return compare(f.field, f.value, ">")
      case "Gte":
        return compare(f.field, f.value, ">=")
      case "Lt":
        return compare(f.field, f.value, "<")
      case "Lte":
        return compare(f.field, f.value, "<=")
      case "In": {
        if (f.values.length === 0) return { sql: "FALSE", exact: true }
        return go({ _tag: "Or", filters: f.values.map((value) => ({ _tag: "Eq", field: f.field, value })) })
      }
      case "IsNil":
        // absent, or JSON null (an optional field holding `undefined` is encoded as null)
        return { sql: `COALESCE(${field(f.field)} = 'null'::jsonb, TRUE)`, exact: true }
      case "Contains": {
        const x = field(f.field)
        return typeof f.value === "string"
          ? { sql: `COALESCE(jsonb_typeof(${x}) IN ('string', 'array'), FALSE)`, exact: false }
          : { sql: `COALESCE(jsonb_typeof(${x}) = 'array', FALSE)`, exact: false }
      }
      case "And": {
        const parts = f.filters.map(go)
        const kept = parts.filter((c) => c !== always)
        if (kept.length === 0) return parts.length === 0 ? { sql: "TRUE", exact: true } : always
        return { sql: `(${kept.map((c) => c.sql).join(" AND ")})`, exact: parts.every((c) => c.exact) }
      }
      case "Or": {
        if (f.filters.length === 0) return { sql: "FALSE", exact: true }
        const mark = params.length
        const parts = f.filters.map(go)
        if (parts.some((c) => c === always)) return discard(mark)
        return { sql: `(${parts.map((c) => c.sql).join(" OR ")})`, exact: parts.every((c) => c.exact) }
      }
      case "Not": {
        const mark = params.length
        const c = go(f.filter)
        return c.exact ? { sql: `NOT ${c.sql}`, exact: true } : discard(mark)
      }
    }
  }
  return go(filter)
}

const sortableCache = new WeakMap<Compiled, Map<string, boolean>>()

/**
 * Whether SQL can sort on a field exactly as `Query.sort` does: its values
 * are numbers (JSON numbers, or the strings of NaN and +-Infinity), booleans,
 * null or absent, with no transformation. Strings are not (JavaScript
 * compares UTF-16 code units), nor dates, nor anything transformed.
 *
 * @internal
 */
export const isSortable = (resource: Compiled, field: string): boolean => {
  let cache = sortableCache.get(resource)
  if (cache === undefined) sortableCache.set(resource, cache = new Map())
  const cached = cache.get(field)
  if (cached !== undefined) return cached
  const schema = (resource.resource.fields as Schema.Struct.Fields)[field]
  const go = (ast: SchemaAST.AST): boolean => {
    if (ast.encoding !== undefined) return false
    switch (ast._tag) {
      case "Number":
      case "Boolean":
      case "Undefined":
      case "Null":
        return true
      case "Literal":
        return typeof ast.literal === "number" || typeof ast.literal === "boolean"
      case "Union":
        return ast.types.every(go)
      default:
        return false
    }
  }
  const out = schema !== undefined && go(schema.ast)
  cache.set(field, out)
  return out
}

/** The encoded key a filter pins with `eq` on every key field, if it does. @internal */
export const keyPinned = (resource: Compiled, filter: Filter.Expr): string | undefined => {
  const eqs = new Map<string, unknown>()
  const go = (f: Filter.Expr): void => {
    if (f._tag === "And") f.filters.forEach(go)
    else if (f._tag === "Eq" && !eqs.has(f.field)) eqs.set(f.field, f.value)
  }
  go(filter)
  if (!resource.keyFields.every((k) => eqs.has(k))) return undefined
  const key: { [k: string]: unknown } = {}
  for (const k of resource.keyFields) key[k] = eqs.get(k)
  const checked = resource.checkKey(key)
  return checked instanceof ValidationError ? undefined : resource.encodeKey(checked)
}

/**
 * The `ORDER BY` terms of a sort SQL runs exactly (every key
 * {@link isSortable}): the total order of `Query.sort` (nil, then booleans,
 * then numbers, then `NaN`), parameters pushed on `params`.
 *
 * @internal
 */
export const orderBy = (sort: ReadonlyArray<Query.SortKey>, params: Array<unknown>): Array<string> =>
  sort.flatMap(({ direction, field }) => {
    params.push(field)
    const x = `state->$${params.length}::text`
    const dir = direction === "asc" ? "ASC" : "DESC"
    return [
      `(CASE WHEN ${x} IS NULL OR jsonb_typeof(${x}) = 'null' THEN 0 WHEN jsonb_typeof(${x}) = 'boolean' ` +
      `THEN 1 WHEN ${x} = '"NaN"'::jsonb THEN 3 ELSE 2 END) ${dir}`,
      `(CASE WHEN jsonb_typeof(${x}) = 'boolean' THEN (${x})::boolean END) ${dir}`,
      `(CASE WHEN jsonb_typeof(${x}) = 'number' THEN (${x})::float8 WHEN ${x} = '"Infinity"'::jsonb ` +
      `THEN 'Infinity'::float8 WHEN ${x} = '"-Infinity"'::jsonb THEN '-Infinity'::float8 END) ${dir}`
    ]
  })
