/**
 * Lifecycle events, published by the data layer and read with
 * `Store.events` (a `Stream`) or `Store.subscribe`.
 *
 * Every event carries the resource name, the record's key and the record.
 * They are plain, Schema-encodable values (see {@link Event} for the schema),
 * so they can cross a process boundary.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

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

const base = { resource: Schema.String, key: Schema.Unknown, record: Schema.Unknown }

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
 * A record was updated (an update action committed).
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
 * state.
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
export const Destroyed = Schema.TaggedStruct("Destroyed", { ...base, reason: DestroyReason })

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
 * Any lifecycle event.
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
export const Event = Schema.Union([Created, Updated, Destroyed, Restarted, Failed])

/**
 * @category models
 * @since 0.1.0
 */
export type Event = typeof Event.Type
