/**
 * How the inspector turns records, keys and events into JSON and filter
 * values back into field values: each resource's JSON codec
 * (`Schema.toCodecJson`, what the SQL layers store), made once per resource.
 * Encoding never fails: a value its schema cannot encode (an event's record
 * as a cluster notice carried it, already JSON) is shown through Effect's
 * JSON formatter instead.
 *
 * @internal
 */
import { Cause, Exit, Formatter, Schema } from "effect"
import type { PendingSchedule } from "../../Changeset.js"
import type * as Event from "../../Event.js"
import type * as Filter from "../../Filter.js"
import type * as Resource from "../../Resource.js"

/** A resource's JSON encoders and decoders. @internal */
export interface Codec {
  readonly resource: Resource.Any
  readonly record: (record: unknown) => unknown
  readonly key: (key: unknown) => unknown
  /** The key of a record, as JSON: what the records page links a row with. */
  readonly keyOf: (record: unknown) => unknown
  /** Decodes a key given as JSON; a message when it is not one. */
  readonly decodeKey: (json: unknown) => { readonly key: { readonly [field: string]: unknown } } | string
  /** Decodes a value compared with a field from its JSON form, or gives it back as it is. */
  readonly fieldValue: (field: string, json: unknown) => unknown
}

const codecs = new WeakMap<Resource.Any, Codec>()

/** JSON as it is, anything else through Effect's formatter (a bigint as `"1n"`, a date as its ISO string). */
const toJson = (u: unknown): unknown => {
  try {
    const json = Formatter.formatJson(u)
    return json === undefined ? Formatter.format(u) : JSON.parse(json)
  } catch {
    return Formatter.format(u)
  }
}

const encoder = (schema: Schema.Top): (u: unknown) => unknown => {
  const encode = Schema.encodeUnknownExit(Schema.toCodecJson(schema) as unknown as Schema.Codec<unknown, unknown>)
  return (u) => {
    const exit = encode(u)
    return Exit.isSuccess(exit) ? exit.value : toJson(u)
  }
}

/**
 * A record's pending schedules as JSON: the time as an ISO string, the
 * action's input as JSON (decoded values a JSON form cannot hold, through
 * Effect's formatter).
 *
 * @internal
 */
export const schedules = (pending: ReadonlyArray<PendingSchedule>): unknown =>
  pending.map((p) => ({
    name: p.name,
    action: p.action,
    arguments: toJson(p.arguments),
    at: p.at.toISOString(),
    ...(p.cron === undefined ? {} : { cron: p.cron }),
    running: p.running
  }))

/** The codec of a resource, made on first use. @internal */
export const of = (resource: Resource.Any): Codec => {
  const cached = codecs.get(resource)
  if (cached !== undefined) return cached
  const fields = resource.fields as Schema.Struct.Fields
  const keyFields: { [field: string]: Schema.Top } = {}
  for (const k of resource.primaryKey) keyFields[k] = fields[k] as Schema.Top
  const keySchema = Schema.Struct(keyFields)
  const key = encoder(keySchema)
  const decodeKeyExit = Schema.decodeUnknownExit(
    Schema.toCodecJson(keySchema) as unknown as Schema.Codec<{ readonly [field: string]: unknown }, unknown>
  )
  const decoders = new Map<string, (json: unknown) => Exit.Exit<unknown, unknown>>()
  for (const [name, field] of Object.entries(fields)) {
    decoders.set(
      name,
      Schema.decodeUnknownExit(Schema.toCodecJson(Schema.toType(field)) as unknown as Schema.Codec<unknown, unknown>)
    )
  }
  const codec: Codec = {
    resource,
    record: encoder(resource.schema),
    key,
    keyOf: (record) => {
      const k: { [field: string]: unknown } = {}
      for (const f of resource.primaryKey) k[f] = (record as { readonly [field: string]: unknown })[f]
      return key(k)
    },
    decodeKey: (json) => {
      const exit = decodeKeyExit(json)
      if (Exit.isSuccess(exit)) return { key: exit.value }
      const failure = Cause.findErrorOption(exit.cause)
      const message = failure._tag === "Some" ? (failure.value as { readonly message?: unknown }).message : undefined
      return `key: not a key of ${resource.name} (${resource.primaryKey.join(", ")}): ${
        typeof message === "string" ? message : "invalid"
      }`
    },
    fieldValue: (field, json) => {
      const decode = decoders.get(field)
      if (decode === undefined) return json
      const exit = decode(json)
      return Exit.isSuccess(exit) ? exit.value : json
    }
  }
  codecs.set(resource, codec)
  return codec
}

/**
 * The filter with every compared value decoded from its JSON form with its
 * field's codec where it decodes (a date field's ISO string becomes a date),
 * left as it is otherwise, for the Store to check. The filter must be
 * well-formed (`Filter.check`).
 *
 * @internal
 */
export const decodeFilter = (codec: Codec, filter: Filter.Expr): Filter.Expr => {
  switch (filter._tag) {
    case "And":
    case "Or":
      return { _tag: filter._tag, filters: filter.filters.map((f) => decodeFilter(codec, f)) }
    case "Not":
      return { _tag: "Not", filter: decodeFilter(codec, filter.filter) }
    case "IsNil":
    case "Contains":
      return filter
    case "In":
      return { _tag: "In", field: filter.field, values: filter.values.map((v) => codec.fieldValue(filter.field, v)) }
    default:
      return { ...filter, value: codec.fieldValue(filter.field, filter.value) }
  }
}

/** An event as the inspector serves it. @internal */
export interface EventJson {
  readonly seq: number
  /** When the inspector received it, in milliseconds since the epoch (the Clock's). */
  readonly at: number
  readonly _tag: Event.Event["_tag"]
  readonly resource: string
  readonly key: unknown
  readonly record: unknown
  readonly reason?: Event.DestroyReason
}

/**
 * An event, encoded with its resource's codec (or the JSON formatter for a
 * resource the inspector does not know).
 *
 * @internal
 */
export const encodeEvent = (
  byName: ReadonlyMap<string, Resource.Any>,
  seq: number,
  at: number,
  event: Event.Event
): EventJson => {
  const resource = byName.get(event.resource)
  const codec = resource === undefined ? undefined : of(resource)
  return {
    seq,
    at,
    _tag: event._tag,
    resource: event.resource,
    key: codec === undefined ? toJson(event.key) : codec.key(event.key),
    record: codec === undefined ? toJson(event.record) : codec.record(event.record),
    ...(event._tag === "Destroyed" ? { reason: event.reason } : {})
  }
}
