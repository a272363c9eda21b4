/**
 * Query planning for the in-memory data layers: the checks a query passes
 * against its resource, and the candidates a filter pins through the
 * primary key or a secondary index.
 *
 * @internal
 */
import type { QueryData } from "../DataLayer.js"
import { ValidationError } from "../Errors.js"
import * as Filter from "../Filter.js"
import type { Compiled } from "./resource.js"

/** @internal */
export const invalidQuery = (resource: string, message: string) =>
  new ValidationError({ resource, message: `${resource}: invalid query: ${message}` })

/** @internal */
export const isIndexable = (v: unknown) => v === null || (typeof v !== "object" && typeof v !== "function")

/** Checks a query's shape against its resource; a message or `undefined`. @internal */
export const checkQuery = (compiled: Compiled, query: QueryData): string | undefined => {
  if (query.filter !== undefined) {
    const problem = Filter.check(query.filter)
    if (problem !== undefined) return problem
    for (const field of Filter.fields(query.filter)) {
      if (!compiled.fieldNames.has(field)) return `unknown field ${JSON.stringify(field)} in filter`
    }
  }
  if (!Array.isArray(query.sort)) return "sort must be an array"
  for (const key of query.sort) {
    if (typeof key !== "object" || key === null) {
      return `a sort key must be { field, direction }, got ${JSON.stringify(key) ?? String(key)}`
    }
    if (!compiled.fieldNames.has(key.field)) return `unknown field ${JSON.stringify(key.field)} in sort`
    if (key.direction !== "asc" && key.direction !== "desc") {
      return `sort direction must be "asc" or "desc", got ${JSON.stringify(key.direction)}`
    }
  }
  if (!Number.isSafeInteger(query.offset) || query.offset < 0) {
    return `offset must be a non-negative integer, got ${JSON.stringify(query.offset) ?? String(query.offset)}`
  }
  if (query.limit !== undefined && (!Number.isSafeInteger(query.limit) || query.limit < 0)) {
    return `limit must be a non-negative integer, got ${JSON.stringify(query.limit) ?? String(query.limit)}`
  }
  return undefined
}

/** A query's candidates from the primary key or an index, when its filter pins one with `eq`. @internal */
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
