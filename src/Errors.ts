/**
 * The typed errors of `effect-gen-server`.
 *
 * Every failure a caller can see is one of these `Schema.TaggedError` classes,
 * so it can be matched with `Effect.catchTag` and encoded across a process
 * boundary. Bad input never changes state: whenever one of these is returned,
 * the store is as it was before the call (the exceptions: a crashed record
 * may have been restarted, see {@link RecordCrashed}; and a cluster call
 * answered {@link Unavailable} with `applied: "unknown"` may have been
 * applied, once).
 *
 * Each class's JSON codec (`Schema.toCodecJson(NotFound)`, or
 * `Schema.toCodecJson(StoreError)` for any of them) round-trips it: encoded,
 * sent as JSON and decoded, it is equal to the error the caller would have
 * seen locally.
 *
 * **Gotchas**
 *
 * - A `key` is carried as JSON. A key whose fields are JSON values (strings,
 *   finite numbers, booleans) comes back unchanged; other field values cross
 *   in Effect's JSON form (a `bigint` as `"1n"`, a `Date` as its ISO string).
 * - A defect ({@link RecordCrashed}) or a cause ({@link ActionError}, unless
 *   it is one of these errors) crosses as `Schema.Defect` carries it: an
 *   `Error` comes back as an `Error` with the same `name`, `message` and
 *   `cause`, not as an instance of its original class and without its stack;
 *   a JSON value comes back unchanged, except an object with a string
 *   `message`, which comes back as an `Error`.
 *
 * @since 0.1.0
 * @module
 */
import { Schema } from "effect"
import * as Json from "./internal/json.js"

/**
 * One problem found in a value that failed its Schema: where (`path`, the
 * field names and array indexes from the root of the value) and what.
 *
 * **Example** (Listing the problems of bad input)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { type Errors, Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const show = (issue: Errors.Issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`
 *
 * const problems = Store.create(Character, "create", { name: 1985 } as never).pipe(
 *   Effect.catchTag("ValidationError", (e) => Effect.succeed((e.issues ?? []).map(show)))
 * )
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export const Issue = Schema.Struct({
  path: Schema.Array(Schema.Union([Schema.String, Schema.Number])),
  message: Schema.String
})

/**
 * @category models
 * @since 0.2.0
 */
export type Issue = typeof Issue.Type

/**
 * No live record of the resource has the given primary key: it was never
 * created, it was destroyed, it expired, or the restart policy removed it.
 *
 * **Example** (Recovering from a missing record)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const maybe = Store.get(Character, { id: "nobody" }).pipe(
 *   Effect.catchTag("NotFound", () => Effect.succeed(undefined))
 * )
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {
  resource: Schema.String,
  key: Json.Value,
  message: Schema.String
}) {}

/**
 * A create (or an update that changes the primary key) targeted a key that a
 * live record already holds.
 *
 * **Example** (Creating twice under one key)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const twice = Effect.gen(function*() {
 *   yield* Store.create(Character, "create", { id: "marty", name: "Marty", currentYear: 1985 })
 *   return yield* Store.create(Character, "create", { id: "marty", name: "Marty", currentYear: 1985 })
 * }) // fails with AlreadyExists
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class AlreadyExists extends Schema.TaggedError<AlreadyExists>()("AlreadyExists", {
  resource: Schema.String,
  key: Json.Value,
  message: Schema.String
}) {}

/**
 * Input did not match the resource's schemas: wrong types, missing required
 * fields, extra fields, malformed arguments, a key of the wrong shape, an
 * unknown field in a filter or sort, a bad limit or offset. When the check was
 * a Schema decode, `issues` lists every problem found (its path and message),
 * and `message` holds the whole formatted Schema issue.
 *
 * **Example** (Reading the message)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const bad = Store.create(Character, "create", { name: "Marty", currentYear: 1985.5 }).pipe(
 *   Effect.catchTag("ValidationError", (e) => Effect.succeed(e.message))
 * )
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class ValidationError extends Schema.TaggedError<ValidationError>()("ValidationError", {
  resource: Schema.String,
  message: Schema.String,
  issues: Schema.optionalKey(Schema.Array(Issue))
}) {}

/**
 * An action was refused by its own logic: messages added with
 * `Changeset.addError`, or a `change`, `before` or `after` hook that failed
 * with an error the action does not declare (that error is `cause`: when it
 * is one of these errors, as a hook's own Store call can fail, it crosses a
 * process boundary as itself; any other as a defect, see the module's Gotchas).
 * The record keeps its previous state.
 *
 * **Example** (Refused travel)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Action, Changeset, Resource, Store } from "effect-gen-server"
 *
 * const Machine = Resource.make("Machine", {
 *   fields: { id: Schema.String, hasPower: Schema.Boolean },
 *   primaryKey: ["id"],
 *   actions: {
 *     travelInTime: Action.update({
 *       arguments: { targetYear: Schema.Int },
 *       change: (cs) => Changeset.get(cs, "hasPower") ? cs : Changeset.addError(cs, "Power source needs topping up")
 *     })
 *   }
 * })
 *
 * const attempt = (id: string) =>
 *   Store.update(Machine, { id }, "travelInTime", { targetYear: 1955 }).pipe(
 *     Effect.catchTag("ActionError", (e) => Effect.succeed(e.errors))
 *   )
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class ActionError extends Schema.TaggedError<ActionError>()("ActionError", {
  resource: Schema.String,
  action: Schema.String,
  errors: Schema.Array(Schema.String),
  message: Schema.String,
  cause: Schema.optionalKey(Schema.Json)
}) {}

/**
 * The record's fiber died (a defect in a change or hook) while serving this
 * call; `defect` is what it died of. By the time the caller sees this error the supervisor has already
 * applied the restart policy: every later call sees the restarted record, or
 * `NotFound` where the record was removed.
 *
 * **Example** (Retrying once after a crash)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const travel = Store.update(Character, { id: "marty" }, "update", { currentYear: 1955 }).pipe(
 *   Effect.catchTag("RecordCrashed", () =>
 *     Store.update(Character, { id: "marty" }, "update", { currentYear: 1955 }))
 * )
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class RecordCrashed extends Schema.TaggedError<RecordCrashed>()("RecordCrashed", {
  resource: Schema.String,
  key: Json.Value,
  message: Schema.String,
  defect: Schema.optionalKey(Schema.Defect())
}) {}

/**
 * An action name that the resource does not define, or of the wrong kind for
 * the operation (an update action passed to `create`). The compiler rejects
 * these for typed callers; plain JavaScript callers get this error.
 *
 * **Example** (An untyped caller)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const untyped = Store.create(Character, "fly" as never, {} as never).pipe(
 *   Effect.catchTag("UnknownAction", (e) => Effect.succeed(e.message))
 * )
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class UnknownAction extends Schema.TaggedError<UnknownAction>()("UnknownAction", {
  resource: Schema.String,
  action: Schema.String,
  message: Schema.String
}) {}

/**
 * A record's own change or hook tried to send a request (update, destroy) to
 * itself, directly or through a chain of other records' hooks. Waiting on its
 * own mailbox would deadlock, so the call fails at once. Reads by key from a
 * hook never need the mailbox and are allowed.
 *
 * **Example** (Detecting a cycle)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const safe = Store.update(Character, { id: "marty" }, "update", { name: "Calvin" }).pipe(
 *   Effect.catchTag("ReentrantCall", (e) => Effect.logWarning(e.message))
 * )
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class ReentrantCall extends Schema.TaggedError<ReentrantCall>()("ReentrantCall", {
  resource: Schema.String,
  key: Json.Value,
  action: Schema.String,
  message: Schema.String
}) {}

/**
 * The store's layer scope was closed: the call arrived after the close, or
 * was in flight when the record fibers were interrupted.
 *
 * **Example** (A call after shutdown)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const orNothing = Store.get(Character, { id: "marty" }).pipe(
 *   Effect.catchTag("StoreClosed", () => Effect.succeed(undefined))
 * )
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class StoreClosed extends Schema.TaggedError<StoreClosed>()("StoreClosed", {
  message: Schema.String
}) {}

/**
 * The record's mailbox holds `mailboxCapacity` pending requests already (see
 * the resource option): the request was refused, nothing changed. Retry
 * later, or shed load. Without `mailboxCapacity` mailboxes are unbounded.
 *
 * **Example** (Backing off)
 *
 * ```ts
 * import { Effect, Schedule, Schema } from "effect"
 * import { Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const travel = Store.update(Character, { id: "marty" }, "update", { currentYear: 1955 }).pipe(
 *   Effect.retry({ while: (e) => e._tag === "MailboxFull", schedule: Schedule.exponential("10 millis") })
 * )
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class MailboxFull extends Schema.TaggedError<MailboxFull>()("MailboxFull", {
  resource: Schema.String,
  key: Json.Value,
  capacity: Schema.Number,
  message: Schema.String
}) {}

/**
 * The cluster could not get an answer from the record's owner: a call kept
 * failing for a reason of the cluster (its shard moving, a runner stopping or
 * gone, a reply lost, another runner committing first) until its retries
 * (`Cluster.Options.retries`) ran out. Only the `Cluster` data layer fails
 * with it; a store in one process never does.
 *
 * `applied` says what the caller may assume about the write:
 *
 * - `"no"`: no attempt reached the owner's commit (each one was refused
 *   before a handler ran, or fenced by a newer owner), so nothing was
 *   applied: calling again is safe.
 * - `"unknown"`: at least one attempt may have reached the owner and been
 *   applied before its answer was lost (an interrupted reply, a runner that
 *   stopped while serving it). Every attempt carried the same operation id,
 *   so the write was applied **at most once**: send it again under that id
 *   (`operationId`, with `Store.withOperationId`) and it is applied if it
 *   was not, or answered with the record if it was, never applied twice
 *   (a create whose key was generated: with `key` in its input, the key it
 *   was sent under, or it is another record).
 *
 * `operationId` is the id every attempt of a write carried: the one the
 * caller chose with `Store.withOperationId`, or the one the data layer made
 * (absent for `get` and `keepAlive`). For `get` and `keepAlive` (messages to
 * the owner on resources with an inactivity timeout), `applied` is about the
 * activity they record. `attempts` counts the sends; `lastFailure` says, in
 * words, the last failure seen (`EntityNotAssignedToRunner: ...`,
 * `interrupted: ...`, `fenced: ...`).
 *
 * **Example** (Sending a write again under its operation id)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Action, Changeset, Resource, Store } from "effect-gen-server"
 *
 * const Counter = Resource.make("Counter", {
 *   fields: { id: Schema.String, n: Schema.Int },
 *   primaryKey: ["id"],
 *   actions: { inc: Action.update({ change: (cs) => Changeset.set(cs, "n", Changeset.get(cs, "n") + 1) }) }
 * })
 *
 * const inc = Store.update(Counter, { id: "visits" }, "inc")
 * // not idempotent, yet safe to send again under the same id: applied once
 * const once = inc.pipe(
 *   Effect.catchTag("Unavailable", (e) =>
 *     e.operationId === undefined ? Effect.fail(e) : inc.pipe(Store.withOperationId(e.operationId)))
 * )
 * ```
 *
 * **Example** (Retrying a write that certainly did not happen)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const travel = Store.update(Character, { id: "marty" }, "update", { currentYear: 1955 })
 * const safely = travel.pipe(
 *   Effect.catchTag("Unavailable", (e) =>
 *     e.applied === "no"
 *       ? travel // nothing happened: try again
 *       : Effect.flatMap(Store.get(Character, { id: "marty" }), (marty) =>
 *         // setting a year is idempotent: applying it again changes nothing
 *         marty.currentYear === 1955 ? Effect.succeed(marty) : travel))
 * )
 * ```
 *
 * @category errors
 * @since 0.3.0
 */
export class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", {
  resource: Schema.String,
  key: Json.Value,
  /** The action, or `"get"` / `"keepAlive"`. */
  action: Schema.String,
  applied: Schema.Literals(["no", "unknown"]),
  attempts: Schema.Number,
  message: Schema.String,
  lastFailure: Schema.String,
  /** The operation id every attempt of the write carried (none for `get` and `keepAlive`). */
  operationId: Schema.optionalKey(Schema.String)
}) {}

/**
 * A resource definition is inconsistent: a primary key field that is not a
 * field, an empty primary key, an unknown field in `accept`, `generated` or
 * `indexes`, a bad duration. Thrown by `Resource.make`, at definition time.
 *
 * **Example** (A missing key field)
 *
 * ```ts
 * import { Schema, SchemaTransformation } from "effect"
 * import { Resource } from "effect-gen-server"
 *
 * try {
 *   Resource.make("Broken", { fields: { id: Schema.String }, primaryKey: [] as never })
 * } catch (e) {
 *   console.log(String(e)) // InvalidResource: ...
 * }
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class InvalidResource extends Schema.TaggedError<InvalidResource>()("InvalidResource", {
  resource: Schema.String,
  message: Schema.String
}) {}

/**
 * Every error a Store operation can fail with, as a Schema: a remote data
 * layer decodes whichever error it receives with its JSON codec.
 *
 * **Example** (An error across a process boundary)
 *
 * ```ts
 * import { Schema, SchemaTransformation } from "effect"
 * import { Errors } from "effect-gen-server"
 *
 * const codec = Schema.toCodecJson(Errors.StoreError)
 * const sent = JSON.stringify(
 *   Schema.encodeSync(codec)(new Errors.NotFound({ resource: "Character", key: { id: "marty" }, message: "not found" }))
 * )
 * const received = Schema.decodeUnknownSync(codec)(JSON.parse(sent)) // a NotFound again
 * ```
 *
 * @category errors
 * @since 0.2.0
 */
export const StoreError = Schema.Union([
  NotFound,
  AlreadyExists,
  ValidationError,
  ActionError,
  RecordCrashed,
  UnknownAction,
  ReentrantCall,
  StoreClosed,
  MailboxFull,
  Unavailable
])

/**
 * Every error a Store operation can fail with.
 *
 * **Example** (Handling every error in one place)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { type Errors, Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const describe = (error: Errors.StoreError): string => {
 *   switch (error._tag) {
 *     case "NotFound":
 *       return "no such character"
 *     case "MailboxFull":
 *       return "busy, try again later"
 *     default:
 *       return error.message
 *   }
 * }
 *
 * const travel = Store.update(Character, { id: "marty" }, "update", { currentYear: 1955 }).pipe(
 *   Effect.mapError(describe)
 * )
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export type StoreError =
  | NotFound
  | AlreadyExists
  | ValidationError
  | ActionError
  | RecordCrashed
  | UnknownAction
  | ReentrantCall
  | StoreClosed
  | MailboxFull
  | Unavailable
