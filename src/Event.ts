/**
 * Lifecycle events, published by the data layer and read with
 * `Store.subscribeTo(resource)` (typed, and live once it returns),
 * `Store.eventsOf(resource)`, `Store.events` or `Store.subscribe`.
 *
 * Every event carries the resource name, the record's key and the record.
 * They are plain, Schema-encodable values, so they can cross a process
 * boundary: {@link Event} is the schema of any event, its `key` and `record`
 * typed `unknown` and carried as JSON; {@link schema} is the schema of one
 * resource's events, whose `key` and `record` are decoded by the resource's
 * own field schemas. Both round-trip through their JSON codec
 * (`Schema.toCodecJson`); {@link Event} only for records whose fields are
 * JSON values (a `Date` field crosses it as a string), {@link schema} for
 * every valid record.
 *
 * @since 0.1.0
 * @module
 */
import { Schema } from "effect"
import * as Json from "./internal/json.js"
import type * as Resource from "./Resource.js"

/**
 * Why a record was destroyed: by an action, or by expiry.
 *
 * **Example** (Telling expiry from destruction)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Event } from "effect-gen-server"
 *
 * const expired = (reason: Event.DestroyReason) => reason !== "action"
 * Schema.is(Event.DestroyReason)("inactivity") // => true
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export const DestroyReason = Schema.Literals(["action", "inactivity", "lifetime"])

/**
 * @category models
 * @since 0.1.0
 */
export type DestroyReason = typeof DestroyReason.Type

const base = { resource: Schema.String, key: Json.Value, record: Json.Value }

/**
 * A record was created (its create action committed).
 *
 * **Example** (Following arrivals)
 *
 * ```ts
 * import { Effect, Schema, Stream } from "effect"
 * import { Event, Store } from "effect-gen-server"
 *
 * const arrivals = Store.events.pipe(
 *   Stream.filter(Schema.is(Event.Created)),
 *   Stream.runForEach((created) => Effect.log(`${created.resource} ${JSON.stringify(created.key)} created`))
 * )
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export const Created = Schema.TaggedStruct("Created", base)

/**
 * A record was updated (an update action committed a new state). An
 * update that changes no field, or only the record's schedules, publishes
 * none.
 *
 * **Example** (An audit log)
 *
 * ```ts
 * import { Effect, Schema, Stream } from "effect"
 * import { Event, Store } from "effect-gen-server"
 *
 * const audit = (updated: typeof Event.Updated.Type) =>
 *   Effect.log(`${updated.resource} ${JSON.stringify(updated.key)} is now`, updated.record)
 *
 * const auditing = Store.events.pipe(Stream.filter(Schema.is(Event.Updated)), Stream.runForEach(audit))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export const Updated = Schema.TaggedStruct("Updated", base)

/**
 * A record was destroyed, by an action or by expiry; `record` is its last
 * state. An expiry removes the record even when its destroy action fails:
 * `failure` then says why the action failed (it is also logged).
 *
 * **Example** (Sending an event to another process)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Event } from "effect-gen-server"
 *
 * const toJson = Schema.encodeSync(Schema.fromJsonString(Event.Destroyed))
 * toJson({ _tag: "Destroyed", resource: "Character", key: { id: "marty" }, record: { id: "marty" }, reason: "inactivity" })
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export const Destroyed = Schema.TaggedStruct("Destroyed", {
  ...base,
  reason: DestroyReason,
  failure: Schema.optionalKey(Schema.String)
})

/**
 * A record's fiber crashed and was restarted; `record` is the state it
 * resumed with.
 *
 * **Example** (Warning on crashes)
 *
 * ```ts
 * import { Effect, Schema, Stream } from "effect"
 * import { Event, Store } from "effect-gen-server"
 *
 * const crashes = Store.events.pipe(
 *   Stream.filter(Schema.is(Event.Restarted)),
 *   Stream.runForEach((e) => Effect.logWarning(`${e.resource} ${JSON.stringify(e.key)} crashed and restarted`))
 * )
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export const Restarted = Schema.TaggedStruct("Restarted", base)

/**
 * A record's fiber crashed and the record was removed: its restart intensity
 * was exceeded, its policy is `"never"`, or its restart failed; `record` is its
 * last committed state.
 *
 * **Example** (Reporting lost records)
 *
 * ```ts
 * import { Effect, Schema, Stream } from "effect"
 * import { Event, Store } from "effect-gen-server"
 *
 * const losses = Store.events.pipe(
 *   Stream.filter(Schema.is(Event.Failed)),
 *   Stream.runForEach((e) => Effect.logError(`${e.resource} ${JSON.stringify(e.key)} was removed`, e.record))
 * )
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export const Failed = Schema.TaggedStruct("Failed", base)

/**
 * A scheduled action (`Changeset.schedule`) failed, and kept failing until
 * the resource's `scheduleRetry` ran out: the schedule `schedule` was
 * removed. `failure` says how its last run failed; `record` is the record
 * as it is.
 *
 * **Example** (Alerting on schedules given up)
 *
 * ```ts
 * import { Effect, Schema, Stream } from "effect"
 * import { Event, Store } from "effect-gen-server"
 *
 * const alerts = Store.events.pipe(
 *   Stream.filter(Schema.is(Event.ScheduleFailed)),
 *   Stream.runForEach((e) => Effect.logError(`${e.resource} ${e.schedule} (${e.action}) gave up: ${e.failure}`))
 * )
 * ```
 *
 * @category models
 * @since 0.6.0
 */
export const ScheduleFailed = Schema.TaggedStruct("ScheduleFailed", {
  ...base,
  schedule: Schema.String,
  action: Schema.String,
  failure: Schema.String
})

/**
 * Any lifecycle event, of any resource: `key` and `record` are `unknown`,
 * carried as JSON. For one resource's events, typed, see {@link schema}.
 *
 * **Example** (Logging every event)
 *
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Store } from "effect-gen-server"
 *
 * const logAll = Store.events.pipe(
 *   Stream.runForEach((event) => Effect.log(event._tag, event.resource, event.key))
 * )
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export const Event = Schema.Union([Created, Updated, Destroyed, Restarted, Failed, ScheduleFailed])

/**
 * @category models
 * @since 0.1.0
 */
export type Event = typeof Event.Type

/**
 * The lifecycle events of one resource, typed: `record` is the resource's
 * record, `key` its primary key.
 *
 * **Example** (Handling one resource's events)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { type Event, Resource } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"]
 * })
 *
 * const describe = (event: Event.Of<typeof Character>): string =>
 *   event._tag === "Destroyed"
 *     ? `${event.key.id} left (${event.reason})`
 *     : `${event.key.id} is in ${event.record.currentYear}`
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export type Of<R> = R extends Resource.Resource<infer Name, infer F, any, any, any>
  ? OfTag<Name, Resource.Key<R>, Schema.Struct.Type<F>>
  : never

type OfTag<Name, Key, Record> =
  | { readonly _tag: "Created"; readonly resource: Name; readonly key: Key; readonly record: Record }
  | { readonly _tag: "Updated"; readonly resource: Name; readonly key: Key; readonly record: Record }
  | {
    readonly _tag: "Destroyed"
    readonly resource: Name
    readonly key: Key
    readonly record: Record
    readonly reason: DestroyReason
    /** Why the destroy action failed, when an expiry removed the record anyway. */
    readonly failure?: string
  }
  | { readonly _tag: "Restarted"; readonly resource: Name; readonly key: Key; readonly record: Record }
  | { readonly _tag: "Failed"; readonly resource: Name; readonly key: Key; readonly record: Record }
  | {
    readonly _tag: "ScheduleFailed"
    readonly resource: Name
    readonly key: Key
    readonly record: Record
    readonly schedule: string
    readonly action: string
    readonly failure: string
  }

/**
 * The encoded form of {@link Of}: the record and key as the resource's field
 * schemas encode them.
 *
 * **Example** (What `Event.schema` encodes)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Event, Resource } from "effect-gen-server"
 *
 * const Session = Resource.make("Session", {
 *   fields: { id: Schema.String, visits: Schema.NumberFromString },
 *   primaryKey: ["id"]
 * })
 *
 * const encoded: Event.EncodedOf<typeof Session> = Schema.encodeSync(Event.schema(Session))({
 *   _tag: "Created",
 *   resource: "Session",
 *   key: { id: "s-1" },
 *   record: { id: "s-1", visits: 1 }
 * }) // record: { id: "s-1", visits: "1" }
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export type EncodedOf<R> = R extends Resource.Resource<any, infer F, infer K, any, any>
  ? OfTag<string, Pick<Schema.Struct.Encoded<F>, K & keyof Schema.Struct.Encoded<F>>, Schema.Struct.Encoded<F>>
  : never

/**
 * The type of {@link schema}: a codec from {@link EncodedOf} to {@link Of},
 * requiring the services the resource's field schemas require.
 *
 * **Example** (Keeping a resource's event schema)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Event, Resource } from "effect-gen-server"
 *
 * const Session = Resource.make("Session", { fields: { id: Schema.String }, primaryKey: ["id"] })
 *
 * const SessionEvent: Event.SchemaOf<typeof Session> = Event.schema(Session)
 * const isSessionEvent = Schema.is(SessionEvent)
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export type SchemaOf<R> = R extends Resource.Resource<any, infer F, any, any, any> ? Schema.Codec<
    Of<R>,
    EncodedOf<R>,
    Schema.Struct.DecodingServices<F>,
    Schema.Struct.EncodingServices<F>
  >
  : never

const schemas = new WeakMap<Resource.Any, Schema.Top>()

/**
 * The schema of one resource's lifecycle events: `resource` is the resource's
 * name, `key` its primary key and `record` its record, each decoded and
 * encoded by the resource's field schemas. Its JSON codec round-trips every
 * valid record; decoding rejects another resource's events. Built once per
 * resource.
 *
 * **Example** (Sending typed events to another process)
 *
 * ```ts
 * import { Effect, Schema, Stream } from "effect"
 * import { Event, Resource, Store } from "effect-gen-server"
 *
 * const Session = Resource.make("Session", {
 *   fields: { id: Schema.String, expiresAt: Schema.Date },
 *   primaryKey: ["id"]
 * })
 *
 * const codec = Schema.toCodecJson(Event.schema(Session))
 * const send = (line: string) => Effect.log(line)
 *
 * const forwarding = Effect.scoped(Effect.gen(function*() {
 *   const events = yield* Store.subscribeTo(Session)
 *   yield* events.pipe(
 *     Stream.runForEach((event) => send(JSON.stringify(Schema.encodeSync(codec)(event))))
 *   )
 * }))
 *
 * const receive = (line: string): Event.Of<typeof Session> => Schema.decodeUnknownSync(codec)(JSON.parse(line))
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export const schema = <R extends Resource.Any>(resource: R): SchemaOf<R> => {
  const cached = schemas.get(resource)
  // the union built below is `SchemaOf<R>` for this resource, which the compiler cannot compute from a value
  if (cached !== undefined) return cached as any
  const keyFields: { [field: string]: Schema.Top } = {}
  for (const k of resource.primaryKey) keyFields[k] = resource.fields[k]
  const fields = { resource: Schema.Literal(resource.name), key: Schema.Struct(keyFields), record: resource.schema }
  const made = Schema.Union([
    Schema.TaggedStruct("Created", fields),
    Schema.TaggedStruct("Updated", fields),
    Schema.TaggedStruct("Destroyed", { ...fields, reason: DestroyReason, failure: Schema.optionalKey(Schema.String) }),
    Schema.TaggedStruct("Restarted", fields),
    Schema.TaggedStruct("Failed", fields),
    Schema.TaggedStruct("ScheduleFailed", {
      ...fields,
      schedule: Schema.String,
      action: Schema.String,
      failure: Schema.String
    })
  ])
  schemas.set(resource, made)
  return made as any
}
