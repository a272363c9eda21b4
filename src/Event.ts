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
 * @category models
 * @since 0.1.0
 */
export const Created = Schema.TaggedStruct("Created", base)

/**
 * A record was updated (an update action committed).
 *
 * @category models
 * @since 0.1.0
 */
export const Updated = Schema.TaggedStruct("Updated", base)

/**
 * A record was destroyed, by an action or by expiry; `record` is its last
 * state.
 *
 * @category models
 * @since 0.1.0
 */
export const Destroyed = Schema.TaggedStruct("Destroyed", { ...base, reason: DestroyReason })

/**
 * A record's fiber crashed and was restarted; `record` is the state it
 * resumed with.
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
