/**
 * The lifecycle events of a record: one builder each, whatever the data
 * layer. An event names the resource, the record's key (as a key object)
 * and its state (the committed one; for `Destroyed` and `Failed`, the last).
 *
 * @internal
 */
import type * as Event from "../../Event.js"
import type { Compiled } from "../resource.js"

/** The key object of a record: its key fields. @internal */
export const keyObject = (resource: Compiled, record: any): { readonly [field: string]: unknown } => {
  const key: { [field: string]: unknown } = {}
  for (const k of resource.keyFields) key[k] = record?.[k]
  return key
}

const of =
  (tag: "Created" | "Updated" | "Restarted" | "Failed") => (resource: Compiled, record: unknown): Event.Event => ({
    _tag: tag,
    resource: resource.name,
    key: keyObject(resource, record),
    record
  })

/** @internal */
export const created = of("Created")
/** @internal */
export const updated = of("Updated")
/** @internal */
export const restarted = of("Restarted")
/** @internal */
export const failed = of("Failed")

/** `failure`: why the destroy action failed, when an expiry removed the record anyway. @internal */
export const destroyed = (
  resource: Compiled,
  record: unknown,
  reason: Event.DestroyReason,
  failure?: string
): Event.Event => ({
  _tag: "Destroyed",
  resource: resource.name,
  key: keyObject(resource, record),
  record,
  reason,
  ...(failure === undefined ? {} : { failure })
})

/** A schedule given up after its retries: removed, `failure` its last run's. @internal */
export const scheduleFailed = (
  resource: Compiled,
  record: unknown,
  schedule: string,
  action: string,
  failure: string
): Event.Event => ({
  _tag: "ScheduleFailed",
  resource: resource.name,
  key: keyObject(resource, record),
  record,
  schedule,
  action,
  failure
})
