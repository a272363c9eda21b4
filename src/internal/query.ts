/**
 * Query checking and planning for the data layers: the shape of a
 * `QueryData` and the values it compares against the resource's schema, and
 * the candidates a query's `eq` filters pin (the primary key, an index).
 *
 * @internal
 */
import { Cause, Exit, Predicate, Schema, SchemaAST, SchemaIssue } from "effect"
import { ValidationError } from "../Errors.js"
import * as Filter from "../Filter.js"
import type * as Query from "../Query.js"
import type { QueryData } from "./contract.js"
import type { Compiled } from "./resource.js"

/** @internal */
export const invalidQuery = (resource: string, message: string) =>
  new ValidationError({ resource, message: `${resource}: invalid query: ${message}` })

/** A value an index (a `Map`) can hold as a key with the meaning of equality: a primitive. @internal */
export const isIndexable = (v: unknown) => v === null || (typeof v !== "object" && typeof v !== "function")

/** What a filter may compare a field with, built once per resource. */
interface FieldCheck {
  /** The field's type side accepts the value. */
  readonly is: (u: unknown) => boolean
  /** The field may hold a string: `contains` takes any string (a substring). */
  readonly holdsStrings: boolean
  /** The value is a valid element of an array the field may hold. */
  readonly isElement: (u: unknown) => boolean
  /** Why the value does not fit, in the schema's words. */
  readonly explain: (u: unknown) => string
}

const formatter = SchemaIssue.makeFormatterDefault()

const holdsStrings = (ast: SchemaAST.AST): boolean => {
  switch (ast._tag) {
    case "String":
    case "TemplateLiteral":
      return true
    case "Literal":
      return typeof ast.literal === "string"
    case "Union":
      return ast.types.some(holdsStrings)
    case "Suspend":
      return holdsStrings(ast.thunk())
    default:
      return false
  }
}

const elementGuards = (ast: SchemaAST.AST): Array<(u: unknown) => boolean> => {
  switch (ast._tag) {
    case "Arrays":
      return [...ast.elements, ...ast.rest].map((element) =>
        Schema.is(Schema.make<Schema.Top>(SchemaAST.toType(element))) as (u: unknown) => boolean
      )
    case "Union":
      return ast.types.flatMap(elementGuards)
    case "Suspend":
      return elementGuards(ast.thunk())
    default:
      return []
  }
}

const checksCache = new WeakMap<Compiled, Map<string, FieldCheck>>()

const checksOf = (compiled: Compiled): Map<string, FieldCheck> => {
  const cached = checksCache.get(compiled)
  if (cached !== undefined) return cached
  const out = new Map<string, FieldCheck>()
  const fields = compiled.resource.fields as Schema.Struct.Fields
  for (const [name, field] of Object.entries(fields)) {
    const type = Schema.toType(field)
    const decode = Schema.decodeUnknownExit(type as Schema.Codec<unknown>)
    const elements = elementGuards(SchemaAST.toType(field.ast))
    out.set(name, {
      is: Schema.is(type) as (u: unknown) => boolean,
      holdsStrings: holdsStrings(SchemaAST.toType(field.ast)),
      isElement: (u) => elements.some((is) => is(u)),
      explain: (u) => {
        const exit = decode(u)
        if (Exit.isSuccess(exit)) return "invalid value"
        const error = Cause.findErrorOption(exit.cause)
        return error._tag === "Some" ? formatter(error.value.issue) : "invalid value"
      }
    })
  }
  checksCache.set(compiled, out)
  return out
}

const show = (u: unknown): string => {
  if (typeof u === "bigint") return `${u}n`
  if (typeof u === "number" || u === undefined) return String(u)
  if (u instanceof Date) return `Date(${u.getTime() === u.getTime() ? u.toISOString() : "Invalid"})`
  try {
    return JSON.stringify(u) ?? String(u)
  } catch {
    return String(u)
  }
}

/** Checks one compared value against its field; a message or `undefined`. */
const checkValue = (check: FieldCheck, tag: string, field: string, value: unknown): string | undefined => {
  // `undefined` fits every field, as in the types (`Filter.Filter.Fits`): it matches absent optional fields
  if (value === undefined || check.is(value)) return undefined
  return `filter ${tag} on field ${JSON.stringify(field)}: ${check.explain(value)}, got ${show(value)}`
}

/** Checks the values of a well-formed filter against the fields it names; a message or `undefined`. */
const checkValues = (checks: Map<string, FieldCheck>, filter: Filter.Expr): string | undefined => {
  switch (filter._tag) {
    case "And":
    case "Or": {
      for (const sub of filter.filters) {
        const problem = checkValues(checks, sub)
        if (problem !== undefined) return problem
      }
      return undefined
    }
    case "Not":
      return checkValues(checks, filter.filter)
    case "IsNil":
      return undefined
    case "In": {
      const check = checks.get(filter.field)!
      for (const value of filter.values) {
        const problem = checkValue(check, "In", filter.field, value)
        if (problem !== undefined) return problem
      }
      return undefined
    }
    case "Contains": {
      // a substring of a string field, or an element of an array field: the field holding `[value]`
      const check = checks.get(filter.field)!
      const { value } = filter
      if ((typeof value === "string" && check.holdsStrings) || check.isElement(value)) return undefined
      return `filter Contains on field ${JSON.stringify(filter.field)}: expected a string on a field that holds ` +
        `strings, or an element of an array field, got ${show(value)}`
    }
    default:
      return checkValue(checks.get(filter.field)!, filter._tag, filter.field, filter.value)
  }
}

/**
 * Checks a query's shape and values against its resource; a message or
 * `undefined`. Never throws, whatever the query holds.
 *
 * @internal
 */
export const checkQuery = (compiled: Compiled, query: QueryData): string | undefined => {
  if (typeof query !== "object" || query === null) return `a query must be an object, got ${show(query)}`
  if (query.filter !== undefined) {
    const problem = Filter.check(query.filter)
    if (problem !== undefined) return problem
    for (const field of Filter.fields(query.filter)) {
      if (!compiled.fieldNames.has(field)) return `unknown field ${JSON.stringify(field)} in filter`
    }
    const mismatch = checkValues(checksOf(compiled), query.filter)
    if (mismatch !== undefined) return mismatch
  }
  if (!Array.isArray(query.sort)) return `sort must be an array, got ${show(query.sort)}`
  for (const key of query.sort as ReadonlyArray<Query.SortKey>) {
    if (typeof key !== "object" || key === null) {
      return `a sort key must be { field, direction }, got ${show(key)}`
    }
    if (typeof key.field !== "string" || !compiled.fieldNames.has(key.field)) {
      return `unknown field ${show(key.field)} in sort`
    }
    if (key.direction !== "asc" && key.direction !== "desc") {
      return `sort direction must be "asc" or "desc", got ${show(key.direction)}`
    }
  }
  if (!Number.isSafeInteger(query.offset) || query.offset < 0) {
    return `offset must be a non-negative integer, got ${show(query.offset)}`
  }
  if (query.limit !== undefined && (!Number.isSafeInteger(query.limit) || query.limit < 0)) {
    return `limit must be a non-negative integer, got ${show(query.limit)}`
  }
  return undefined
}

/**
 * A query's candidates from the primary key or an index, when its filter
 * pins one with `eq`; `undefined` when the query must scan.
 *
 * @internal
 */
export const pinned = <A>(
  resource: Compiled,
  query: QueryData,
  byKey: (key: string) => A | undefined,
  byIndex: ((field: string, value: unknown) => Iterable<A> | undefined) | undefined
): Iterable<A> | undefined => {
  if (query.filter === undefined) return undefined
  const eqs = Filter.equalities(query.filter)
  if (resource.keyFields.every((k) => eqs.has(k))) {
    const key: { [k: string]: unknown } = {}
    for (const k of resource.keyFields) key[k] = eqs.get(k)
    const checked = resource.checkKey(key)
    const found = checked instanceof ValidationError ? undefined : byKey(resource.encodeKey(checked))
    return found === undefined ? [] : [found]
  }
  if (byIndex === undefined) return undefined
  for (const field of resource.indexes) {
    if (eqs.has(field) && isIndexable(eqs.get(field))) return byIndex(field, eqs.get(field)) ?? []
  }
  return undefined
}

/**
 * Checks what `Store.read` was given before it is taken apart: a
 * `ValidationError` when it is not a query over a resource, or `undefined`.
 *
 * @internal
 */
export const checkReadable = (query: unknown): ValidationError | undefined => {
  const resource = typeof query === "object" && query !== null
    ? (query as { readonly resource?: unknown }).resource
    : undefined
  if (Predicate.hasProperty(resource, "name") && typeof resource.name === "string") return undefined
  return new ValidationError({
    resource: "unknown",
    message: typeof query !== "object" || query === null
      ? `Store.read needs a Query, got ${show(query)}`
      : `Store.read needs a Query over a resource, got a resource ${show(resource)}`
  })
}
