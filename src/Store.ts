/**
 * The Store: the service users call (Ash's `Api`).
 *
 * `Store.layer(resources)` builds a complete `Layer<Store>` backed by the
 * GenServer data layer; the operations below are Effects that require
 * `Store`. Inputs are checked by the compiler (action names, argument and
 * field types, key shapes) and again at run time, so untyped callers get a
 * `ValidationError` or `UnknownAction` instead of a corrupted record.
 *
 * Each operation's error channel names only the errors it can fail with:
 * `get`, `reload` and `keepAlive` fail with `NotFound`, `ValidationError`
 * or `StoreClosed`; `create`, `update` and `destroy` with those their step
 * can meet ({@link CreateError}, {@link UpdateError}, {@link DestroyError})
 * plus the named action's own: its declared `error` and `ActionError`
 * (none for a default action). These six can also fail with
 * `Unavailable` where records are stored: on a cluster (`Cluster.layer`),
 * and for a durable resource when storage cannot be read or did not confirm
 * a write; never for a record kept in memory only.
 * `UnknownAction` appears only where the action's name is not checked by the
 * compiler (a `Resource.Any`, a cast).
 *
 * Changes and hooks run with the layer's services and with `Store` itself, so
 * a hook can call the Store. The services they require surface in the type of
 * `Store.layer` and are provided once, to the layer.
 *
 * @since 0.1.0
 * @module
 */
import { Context, Effect, Layer, type PubSub, type Scope, Stream } from "effect"
import { dual } from "effect/Function"
import type * as Action from "./Action.js"
import type { PendingSchedule } from "./Changeset.js"
import * as DataLayer from "./DataLayer.js"
import type {
  AlreadyExists,
  MailboxFull,
  NotFound,
  RecordCrashed,
  ReentrantCall,
  StoreClosed,
  Unavailable,
  UnknownAction,
  ValidationError
} from "./Errors.js"
import type * as LifecycleEvent from "./Event.js"
import * as Admission from "./internal/admission.js"
import { checkReadable } from "./internal/query.js"
import { spanned, spannedIn } from "./internal/tracing.js"
import type * as Query from "./Query.js"
import type * as Resource from "./Resource.js"

/**
 * The Store service.
 *
 * **Example** (The Store in a program's requirements)
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
 * type Character = Resource.Record<typeof Character>
 *
 * const arrive = (name: string): Effect.Effect<Character, Errors.StoreError, Store.Store> =>
 *   Store.create(Character, "create", { name, currentYear: 1985 })
 *
 * const tracesReads = Effect.gen(function*() {
 *   const store = yield* Store.Store
 *   return store.traceReads
 * })
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export class Store extends Context.Service<Store, {
  readonly dataLayer: DataLayer.Service
  /** Whether reads by key (`get`, `reload`, `keepAlive`) and `read` get a span. */
  readonly traceReads: boolean
  /**
   * The resources the Store serves, where its layer knows them (`Store.layer`,
   * `Cluster.layer`, `Testing.layer`): what a tool such as the `Inspector`
   * lists. `undefined` for a Store over a data layer of your own, unless
   * `fromDataLayer` is told.
   */
  readonly resources?: ReadonlyArray<Resource.Any> | undefined
}>()("effect-gen-server/Store") {}

/**
 * The context holding a Store over `dataLayer`: what record actions need to
 * call the Store. `Store.layer` gives it to the data layers it builds; give
 * it to `DataLayer.layer`'s `services` for a data layer you build yourself.
 *
 * **Example** (Hooks that call the Store, over your own data layer)
 *
 * ```ts
 * import { Layer, Schema } from "effect"
 * import { DataLayer, Resource, Store } from "effect-gen-server"
 *
 * const Counter = Resource.make("Counter", {
 *   fields: { id: Schema.String, count: Schema.Int },
 *   primaryKey: ["id"]
 * })
 *
 * const dataLayer = DataLayer.layer([Counter], {
 *   make: DataLayer.memory,
 *   services: (self) => Store.contextOf(self, { traceReads: true })
 * })
 * const layer = Store.fromDataLayer({ traceReads: true }).pipe(Layer.provide(dataLayer))
 * ```
 *
 * @category layers
 * @since 0.2.0
 */
export const contextOf = (
  dataLayer: DataLayer.Service,
  options?: { readonly traceReads?: boolean | undefined }
): Context.Context<Store> => Store.context(Store.of({ dataLayer, traceReads: options?.traceReads ?? false }))

/** A read in a span when the store traces reads (and a tracing backend is installed). */
const tracedRead = <A, E, R>(
  traceReads: boolean,
  effect: Effect.Effect<A, E, R>,
  name: string,
  resource: string
): Effect.Effect<A, E, R> => traceReads ? spanned(effect, name, { resource }) : effect

/**
 * A write (create, update, destroy) in its span: refused with a
 * `ValidationError` before it reaches the data layer when the operation id
 * the caller chose ({@link withOperationId}) is malformed.
 */
const write = <A, E>(
  resource: string,
  action: string,
  name: string,
  run: (dataLayer: DataLayer.Service) => Effect.Effect<A, E>
): Effect.Effect<A, E | ValidationError, Store> =>
  Effect.withFiber((fiber) => {
    const id = fiber.getRef(Admission.CurrentOperationId)
    const refused = id === undefined ? undefined : Admission.checkOperationId(resource, action, id)
    return spannedIn(
      fiber,
      refused === undefined ? Store.use(({ dataLayer }) => run(dataLayer)) : Effect.fail<E | ValidationError>(refused),
      name,
      { resource, action }
    )
  })

/**
 * A lifecycle event: `Created`, `Updated`, `Destroyed` (with its `reason`),
 * `Restarted` or `Failed`.
 *
 * **Example** (A handler of lifecycle events)
 *
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Store } from "effect-gen-server"
 *
 * const describe = (event: Store.Event): string =>
 *   event._tag === "Destroyed" ? `${event.resource} destroyed (${event.reason})` : `${event.resource} ${event._tag}`
 *
 * const printing = Store.events.pipe(Stream.runForEach((event) => Effect.log(describe(event))))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Event = LifecycleEvent.Event

type InputArgs<I> = {} extends I ? [input?: I] : [input: I]

/**
 * The errors the action `N` of resource `R` itself can fail with: its
 * declared `error` and `ActionError` (none for a default action), plus
 * `UnknownAction` when the resource's action names are not known to the
 * compiler (a `Resource.Any`).
 *
 * **Example** (The errors a declared action adds)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Changeset, Resource, type Store } from "effect-gen-server"
 *
 * class NoPower extends Schema.TaggedError<NoPower>()("NoPower", {}) {}
 * const Lamp = Resource.make("Lamp", {
 *   fields: { id: Schema.String, on: Schema.Boolean },
 *   primaryKey: ["id"],
 *   actions: (Action) => ({
 *     switchOn: Action.update({ error: NoPower, change: (cs) => Changeset.set(cs, "on", true) })
 *   })
 * })
 * type SwitchOn = Store.ActionErrors<typeof Lamp, "switchOn"> // NoPower | ActionError
 * type Update = Store.ActionErrors<typeof Lamp, "update"> // never: the default update has no change
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export type ActionErrors<R, N> =
  | (N extends keyof Resource.Actions<R> ? Action.Action.Error<Resource.Actions<R>[N]> : never)
  | (string extends keyof Resource.Actions<R> ? UnknownAction : Untyped<N>)

/** An action name typed `never` or `any` (a cast) may name no action at all. */
type Untyped<N> = [N] extends [never] ? UnknownAction : 0 extends 1 & N ? UnknownAction : never

/**
 * The errors of `Store.create` with the action `N`: the input is invalid
 * (`ValidationError`), the key is taken (`AlreadyExists`), the create action
 * crashed the new record (`RecordCrashed`), the store is closed
 * (`StoreClosed`), the cluster's owner of the record did not answer
 * (`Unavailable`, the `Cluster` layer only), or the action failed
 * ({@link ActionErrors}).
 *
 * **Example** (Handling a taken key)
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
 * type Character = Resource.Record<typeof Character>
 *
 * const arrive: Effect.Effect<Character | undefined, Store.CreateError<typeof Character, "create">, Store.Store> =
 *   Store.create(Character, "create", { id: "marty", name: "Marty", currentYear: 1985 }).pipe(
 *     Effect.catchTag("AlreadyExists", () => Effect.undefined)
 *   )
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export type CreateError<R, N> =
  | ValidationError
  | AlreadyExists
  | RecordCrashed
  | StoreClosed
  | Unavailable
  | ActionErrors<R, N>

/**
 * The errors of `Store.update` with the action `N`: those of a call to a
 * record's fiber (`NotFound`, `ReentrantCall`, `MailboxFull`,
 * `RecordCrashed`, `StoreClosed`, and `Unavailable` on a cluster), an
 * invalid key, input or new state
 * (`ValidationError`), a new key that is taken (`AlreadyExists`), and the
 * action's own ({@link ActionErrors}).
 *
 * **Example** (Every error an update may meet)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Changeset, Resource, type Store } from "effect-gen-server"
 *
 * const Machine = Resource.make("Machine", {
 *   fields: { id: Schema.String, name: Schema.String, hasPower: Schema.Boolean },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID(), hasPower: () => false },
 *   actions: (Action) => ({
 *     charge: Action.update({ change: (cs) => Changeset.set(cs, "hasPower", true) })
 *   })
 * })
 *
 * // NotFound, ValidationError, AlreadyExists, RecordCrashed, ReentrantCall, MailboxFull, StoreClosed,
 * // Unavailable, or the ActionError of `charge`'s change
 * const describe = (error: Store.UpdateError<typeof Machine, "charge">): string => error._tag
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export type UpdateError<R, N> =
  | NotFound
  | ValidationError
  | AlreadyExists
  | RecordCrashed
  | ReentrantCall
  | MailboxFull
  | StoreClosed
  | Unavailable
  | ActionErrors<R, N>

/**
 * The errors of `Store.destroy` with the action `N`: those of a call to a
 * record's fiber, an invalid key, and the action's own ({@link ActionErrors}).
 *
 * **Example** (A destroy that tolerates a missing record)
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
 * const leave = Store.destroy(Character, { id: "marty" }).pipe(Effect.catchTag("NotFound", () => Effect.void))
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export type DestroyError<R, N> =
  | NotFound
  | ValidationError
  | RecordCrashed
  | ReentrantCall
  | MailboxFull
  | StoreClosed
  | Unavailable
  | ActionErrors<R, N>

/** `destroy`'s action is optional only where the resource has the default `"destroy"` action. */
type DestroyArgs<R, N> = "destroy" extends Resource.ActionName<R, "destroy"> ? [action?: N] : [action: N]

/**
 * Runs a create action; the created record is returned once its create
 * pipeline has committed inside its new fiber (or, where the action
 * declares `success`, its result: `Resource.Result`).
 *
 * **Example** (Marty arrives)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * // the id is generated
 * const marty = Store.create(Character, "create", { name: "Marty", currentYear: 1985 })
 * ```
 *
 * @category operations
 * @since 0.1.0
 */
// an operation's typed signature over its implementation by names and plain values (the data layer's): the
// compiler cannot see that the data layer returns the resource's records (its schema validated them) and fails
// only with the errors the signature names; so each operation below is cast once
export const create: <R extends Resource.Any, const N extends Resource.ActionName<R, "create">>(
  resource: R,
  action: N,
  ...input: InputArgs<Resource.Input<R, N>>
) => Effect.Effect<Resource.Result<R, N>, CreateError<R, N>, Store> =
  ((resource: Resource.Any, action: string, input?: unknown) =>
    write(resource.name, action, "Store.create", (dataLayer) => dataLayer.create(resource.name, action, input))) as any

/**
 * Runs an update action on a record (given as a record or as its key),
 * through the record's fiber; returns the updated record, or, where the
 * action declares `success`, its result (`Resource.Result`). An update that
 * changes no field commits nothing (no write, no `Updated` event) but is
 * served in turn with the record's other calls and counts as activity.
 *
 * **Example** (Charging the DeLorean)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Changeset, Resource, Store } from "effect-gen-server"
 *
 * const Machine = Resource.make("Machine", {
 *   fields: { id: Schema.String, name: Schema.String, hasPower: Schema.Boolean },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID(), hasPower: () => false },
 *   actions: (Action) => ({
 *     charge: Action.update({ change: (cs) => Changeset.set(cs, "hasPower", true) })
 *   })
 * })
 *
 * const charge = (id: string) => Store.update(Machine, { id }, "charge")
 * ```
 *
 * @category operations
 * @since 0.1.0
 */
export const update: <R extends Resource.Any, const N extends Resource.ActionName<R, "update">>(
  resource: R,
  recordOrKey: Resource.Key<R>,
  action: N,
  ...args: InputArgs<Resource.Input<R, N>>
) => Effect.Effect<Resource.Result<R, N>, UpdateError<R, N>, Store> =
  ((resource: Resource.Any, key: unknown, action: string, input?: unknown) =>
    write(
      resource.name,
      action,
      "Store.update",
      (dataLayer) => dataLayer.update(resource.name, key, action, input)
    )) as any

/**
 * Runs a destroy action (default: `"destroy"`) on a record, inside its
 * fiber; the record's fiber then ends and its key is free. Answers nothing,
 * or, where the action declares `success`, its result.
 *
 * **Example** (Marty leaves)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const leave = (id: string) => Store.destroy(Character, { id })
 * ```
 *
 * @category operations
 * @since 0.1.0
 */
export const destroy: <R extends Resource.Any, const N extends Resource.ActionName<R, "destroy"> = never>(
  resource: R,
  recordOrKey: Resource.Key<R>,
  ...action: DestroyArgs<R, N>
) => Effect.Effect<
  Resource.Result<R, [N] extends [never] ? "destroy" : N, void>,
  DestroyError<R, [N] extends [never] ? "destroy" : N>,
  Store
> = ((resource: Resource.Any, key: unknown, action?: string) =>
  write(
    resource.name,
    action ?? "destroy",
    "Store.destroy",
    (dataLayer) => dataLayer.destroy(resource.name, key, action ?? "destroy")
  )) as any

/**
 * Runs `effect` with its writes (`create`, `update`, `destroy`) under the
 * operation id `id`, chosen by the caller. Where records are stored (a
 * cluster, `Cluster.layer`, and durable resources) every write carries an
 * operation id and its record remembers the ids of its last 16 writes; a
 * write sent again under an id its record remembers is answered without
 * being applied again. Choosing the id makes that
 * available to the caller: after `Unavailable` with `applied: "unknown"`
 * (whose `operationId` is the id the write was sent under, chosen or made),
 * or after a success whose answer the caller lost, send the same write again
 * under the same id and it is applied **once** in all: a create answers with
 * the record it created (not `AlreadyExists`), an update with the record,
 * a destroy without error; an action that declares `success` answers the
 * result it answered the first time (kept with the id).
 *
 * **Details**
 *
 * - The id is checked when the write starts, in the caller's process: a
 *   string of 1 to 200 characters, or the write fails with
 *   `ValidationError` and changes nothing.
 * - A write answered under a remembered id is not applied: it answers with
 *   the record as it is now (later writes show in it), or with the result
 *   its action answered then, and runs no hooks.
 * - An update that changes no field stores nothing, so its id is not
 *   remembered: sent again, it runs again (and still changes nothing).
 * - Nested, the innermost `withOperationId` applies.
 * - A durable resource (`durable: true`) remembers the id in its row too,
 *   at the cost of one read of the row per write under a chosen id: after
 *   `Unavailable` (storage did not confirm the write), send it again under
 *   the same id.
 * - For records kept in memory only (the GenServer and memory data layers)
 *   the id is checked, then ignored: a call there is never ambiguous (none
 *   fails with `Unavailable`, its answer is never lost), so there is nothing
 *   to send again. A write made again under the same id there is a new
 *   write, applied again.
 *
 * **Gotchas**
 *
 * - An id names one write: every write `effect` makes carries it, so two
 *   writes of one record under one id apply the first only (the second is
 *   answered with the record). Wrap a single write (writes of different
 *   records may share an id). Writes made by the record's own hooks carry ids
 *   of their own.
 * - The id is not compared with the write: another write sent under an id
 *   the record remembers is not applied either.
 * - A record recognises the id, so a write sent again must reach the same
 *   record: a create whose primary key is generated (`generated`) gets a new
 *   key at every call, and is a new record every time. Give such a create
 *   its key: from the input, or, after `Unavailable`, from its `key` (the key
 *   it was sent under).
 * - A record remembers the ids of its **last 16 writes** (also once destroyed,
 *   or moved to another key by a key change): a write sent again after 16
 *   later writes of its record is applied again. An update sent again after
 *   its record was destroyed fails with `NotFound`; a create sent again after
 *   its record was destroyed creates it again (its key is free), and one whose
 *   record has changed key since answers with the record at its new key.
 *
 * **Example** (An idempotent counter increment)
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
 * // `requestId`: the id of the request asking for the increment (an HTTP Idempotency-Key, say)
 * const inc = (requestId: string) =>
 *   Store.update(Counter, { id: "visits" }, "inc").pipe(
 *     Store.withOperationId(`visits-inc-${requestId}`),
 *     // sent again under the same id: applied at most once in all, whatever the first attempt did
 *     Effect.retry({ times: 3, while: (e) => e._tag === "Unavailable" })
 *   )
 * ```
 *
 * @category operations
 * @since 0.5.0
 */
export const withOperationId: {
  (id: string): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, id: string): Effect.Effect<A, E, R>
} = dual(
  2,
  <A, E, R>(self: Effect.Effect<A, E, R>, id: string): Effect.Effect<A, E, R> =>
    Effect.provideService(self, Admission.CurrentOperationId, id)
)

/**
 * The operation id the writes of the current fiber are sent under, as set by
 * {@link withOperationId}; `undefined` (the default) lets the data layer
 * make one per write. A data layer of your own that remembers operations
 * reads it here.
 *
 * **Example** (Reading the chosen id)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Store } from "effect-gen-server"
 *
 * const chosen = Effect.withFiber((fiber) => Effect.succeed(fiber.getRef(Store.CurrentOperationId)))
 * const id = chosen.pipe(Store.withOperationId("order-42")) // "order-42"
 * ```
 *
 * @category references
 * @since 0.5.0
 */
export const CurrentOperationId: Context.Reference<string | undefined> = Admission.CurrentOperationId

/**
 * Gets a record by its full primary key: the fast path, read from the
 * record's committed state without messaging its fiber. Counts as activity.
 *
 * **Example** (Where is Marty now?)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const whereIs = (id: string) => Store.get(Character, { id })
 * ```
 *
 * @category operations
 * @since 0.1.0
 */
export const get: <R extends Resource.Any>(
  resource: R,
  key: Resource.Key<R>
) => Effect.Effect<Resource.Record<R>, NotFound | ValidationError | StoreClosed | Unavailable, Store> =
  ((resource: Resource.Any, key: unknown) =>
    Store.use(({ dataLayer, traceReads }) =>
      tracedRead(traceReads, dataLayer.get(resource.name, key), "Store.get", resource.name)
    )) as any

/**
 * A record's pending schedules (`Changeset.schedule`), earliest first: what
 * runs when, with which input, and whether it runs now. A read: not
 * activity. On `Cluster.layer` it asks the record's owner (which knows its
 * retries), without waiting for a call the record runs.
 *
 * **Example** (What a session will do next)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Changeset, Resource, Store } from "effect-gen-server"
 *
 * const Session = Resource.make("Session", {
 *   fields: { id: Schema.String },
 *   primaryKey: ["id"],
 *   actions: (Action) => ({
 *     open: Action.create({ accept: ["id"], change: (cs) => Changeset.schedule(cs, "destroy", { after: "1 hour" }) })
 *   })
 * })
 *
 * const next = Effect.map(Store.schedules(Session, { id: "s-1" }), (pending) => pending[0]?.at)
 * ```
 *
 * @category operations
 * @since 0.6.0
 */
export const schedules: <R extends Resource.Any>(
  resource: R,
  key: Resource.Key<R>
) => Effect.Effect<
  ReadonlyArray<PendingSchedule>,
  NotFound | ValidationError | StoreClosed | Unavailable,
  Store
> = (resource, key) =>
  Store.use(({ dataLayer, traceReads }) =>
    dataLayer.schedules === undefined
      ? Effect.succeed([])
      : tracedRead(traceReads, dataLayer.schedules(resource.name, key), "Store.schedules", resource.name)
  )

/**
 * Gets the current state of a record you hold: `get` by the record's key.
 *
 * **Example** (Refreshing a stale copy)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 * type Character = Resource.Record<typeof Character>
 *
 * declare const marty: Character
 * const fresh = Store.reload(Character, marty)
 * ```
 *
 * @category operations
 * @since 0.1.0
 */
export const reload: <R extends Resource.Any>(
  resource: R,
  record: Resource.Key<R>
) => Effect.Effect<Resource.Record<R>, NotFound | ValidationError | StoreClosed | Unavailable, Store> = get

/**
 * Runs a query. Never messages a record and is not activity.
 *
 * **Example** (Who is in 1955, by name)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Filter, Query, Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const in1955 = Store.read(
 *   Query.make(Character).pipe(Query.filter(Filter.eq("currentYear", 1955)), Query.sort("name"))
 * )
 * ```
 *
 * @category operations
 * @since 0.1.0
 */
export const read: <A>(
  query: Query.Query<A>
) => Effect.Effect<ReadonlyArray<A>, ValidationError | StoreClosed, Store> =
  ((query: Query.Query<unknown>) =>
    Store.use(({ dataLayer, traceReads }) => {
      const malformed = checkReadable(query)
      if (malformed !== undefined) return Effect.fail(malformed)
      const read = dataLayer.read({
        resource: query.resource.name,
        filter: query.filter,
        sort: query.sort,
        offset: query.offset,
        limit: query.limit
      })
      return tracedRead(traceReads, read, "Store.read", query.resource.name)
    })) as any

/**
 * Marks a record active without reading or changing it, pushing back its
 * inactivity deadline (not its maximum lifetime).
 *
 * **Example** (A heartbeat)
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
 * const heartbeat = (id: string) =>
 *   Store.keepAlive(Character, { id }).pipe(Effect.repeat(Schedule.spaced("30 seconds")))
 * ```
 *
 * @category operations
 * @since 0.1.0
 */
export const keepAlive: <R extends Resource.Any>(
  resource: R,
  key: Resource.Key<R>
) => Effect.Effect<void, NotFound | ValidationError | StoreClosed | Unavailable, Store> =
  ((resource: Resource.Any, key: unknown) =>
    Store.use(({ dataLayer, traceReads }) =>
      tracedRead(traceReads, dataLayer.keepAlive(resource.name, key), "Store.keepAlive", resource.name)
    )) as any

/**
 * The lifecycle events of every resource, from the moment the stream is
 * pulled; it ends when the store closes.
 *
 * **Gotchas**
 *
 * A `Stream` is a description: it subscribes when it is run and its first
 * element is pulled, not when it is built nor when the fiber running it is
 * forked. `Store.events.pipe(Stream.runForEach(f), Effect.forkChild)`
 * followed by operations usually misses their events, as the forked fiber has
 * not started yet. To receive every event published after a given point, use
 * {@link subscribeTo} (typed, one resource) or {@link subscribe}; use
 * `events` (or {@link eventsOf}) where a late start does not matter, such as a
 * long-running consumer started with the application.
 *
 * **Example** (Printing expiries)
 *
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Store } from "effect-gen-server"
 *
 * const expiries = Store.events.pipe(
 *   Stream.filter((e) => e._tag === "Destroyed" && e.reason !== "action"),
 *   Stream.runForEach((e) => Effect.log(`${e.resource} expired`))
 * )
 * ```
 *
 * @category events
 * @since 0.1.0
 */
export const events: Stream.Stream<Event, never, Store> = Stream.unwrap(
  Store.useSync(({ dataLayer }) => dataLayer.events)
)

/**
 * Subscribes to the lifecycle events: the subscription is live once this
 * returns, so no event after it is missed (use it where `events` would race
 * with the operations that follow). Read with `PubSub.take`, or as a
 * `Stream` with `Stream.fromSubscription`; for one resource's events, typed,
 * use {@link subscribeTo}.
 *
 * **Example** (Waiting for the next event)
 *
 * ```ts
 * import { Effect, PubSub } from "effect"
 * import { Store } from "effect-gen-server"
 *
 * const next = Effect.scoped(Effect.gen(function*() {
 *   const events = yield* Store.subscribe
 *   return yield* PubSub.take(events)
 * }))
 * ```
 *
 * @category events
 * @since 0.1.0
 */
export const subscribe: Effect.Effect<PubSub.Subscription<Event>, never, Store | Scope.Scope> = Store.use(
  ({ dataLayer }) => dataLayer.subscribe
)

/**
 * The lifecycle events of one resource, typed (`record` is the resource's
 * record, `key` its key), from the moment the stream is pulled; it ends when
 * the store closes. Like {@link events}, it misses the events published
 * before it is pulled: use {@link subscribeTo} to receive every event after a
 * given point.
 *
 * **Example** (Where each character travels)
 *
 * ```ts
 * import { Effect, Schema, Stream } from "effect"
 * import { Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const travels = Store.eventsOf(Character).pipe(
 *   Stream.filter((e) => e._tag === "Updated"),
 *   Stream.runForEach((e) => Effect.log(`${e.record.name} is in ${e.record.currentYear}`))
 * )
 * ```
 *
 * @category events
 * @since 0.2.0
 */
export const eventsOf = <R extends Resource.Any>(resource: R): Stream.Stream<LifecycleEvent.Of<R>, never, Store> =>
  // the events of the resource named: the compiler cannot narrow the union of every resource's events by name
  Stream.filter(events, (event) => event.resource === resource.name) as any

/**
 * Subscribes to the lifecycle events of one resource and returns them as a
 * typed `Stream`: the subscription is live once this effect returns, so the
 * stream receives every event of the resource published after that, however
 * late it is run (events wait in the subscription, within the store's
 * `eventBuffer`). The subscription ends with the scope. When the store
 * closes the stream ends, and the events it had not read yet are dropped. Run
 * the stream once: two runs would share, and split, one subscription.
 *
 * **Example** (Seeing the events of the operations that follow)
 *
 * ```ts
 * import { Effect, Fiber, Schema, Stream } from "effect"
 * import { Changeset, Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() },
 *   actions: (Action) => ({
 *     travelInTime: Action.update({
 *       arguments: { targetYear: Schema.Int },
 *       change: (cs) => Changeset.set(cs, "currentYear", cs.arguments.targetYear)
 *     })
 *   })
 * })
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const events = yield* Store.subscribeTo(Character)
 *   const printing = yield* events.pipe(
 *     Stream.take(2),
 *     Stream.runForEach((e) => Effect.log(e._tag, e.key.id)),
 *     Effect.forkChild
 *   )
 *   const marty = yield* Store.create(Character, "create", { name: "Marty", currentYear: 1985 })
 *   yield* Store.update(Character, marty, "travelInTime", { targetYear: 1955 })
 *   yield* Fiber.join(printing) // prints Created and Updated, though the fiber started after them
 * }))
 * ```
 *
 * @category events
 * @since 0.2.0
 */
export const subscribeTo = <R extends Resource.Any>(
  resource: R
): Effect.Effect<Stream.Stream<LifecycleEvent.Of<R>>, never, Store | Scope.Scope> =>
  Effect.map(
    subscribe,
    (subscription) =>
      // the events of the resource named: the compiler cannot narrow the union of every resource's events by name
      Stream.filter(Stream.fromSubscription(subscription), (event) => event.resource === resource.name) as any
  )

/**
 * Options of {@link layer}.
 *
 * **Example** (Tracing reads too)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const options: Store.LayerOptions = { traceReads: true }
 * const StoreLive = Store.layer([Character], options)
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export interface LayerOptions {
  /**
   * `"genServer"` (default) keeps every record in its own supervised fiber;
   * `"memory"` keeps records in a `Map` without fibers (no supervision, lazy
   * expiry: see `DataLayer.memory`).
   */
  readonly dataLayer?: "genServer" | "memory" | DataLayer.Make | undefined
  /**
   * Give reads (`get`, `reload`, `keepAlive`, `read`) a span too. Default
   * `false`: writes get a span (`Store.create`, `Store.update`,
   * `Store.destroy`), but a span costs several times a read by key. Spans
   * are made only when a tracing backend is installed (a tracer other than
   * Effect's `Tracer.nativeTracer`).
   */
  readonly traceReads?: boolean | undefined
  /**
   * How many lifecycle events a subscriber (`Store.events`,
   * `Store.subscribe`) may leave unread: beyond it, the oldest it has not
   * read are dropped for it, so a subscriber that stops reading (a stalled
   * client of a stream) holds bounded memory. A positive integer; default
   * unbounded: no event is ever dropped.
   */
  readonly eventBuffer?: number | undefined
  /** Where and how durable resources keep their records (see `DataLayer.DurableOptions`). */
  readonly durable?: DataLayer.DurableOptions | undefined
}

/**
 * The Store backed by the GenServer data layer, for the given resources.
 * Building the layer starts the supervisor; closing its scope interrupts
 * every record fiber. The services the resources' changes and hooks require
 * (other than `Store`) are required by the layer.
 *
 * **Example** (Providing the store)
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
 * const Machine = Resource.make("Machine", {
 *   fields: { id: Schema.String, hasPower: Schema.Boolean },
 *   primaryKey: ["id"]
 * })
 *
 * const program = Store.create(Character, "create", { name: "Marty", currentYear: 1985 }).pipe(
 *   Effect.provide(Store.layer([Character, Machine]))
 * )
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = <const Resources extends ReadonlyArray<Resource.Any>>(
  resources: Resources,
  options?: LayerOptions
): Layer.Layer<
  Store,
  never,
  Exclude<Exclude<Resource.Services<Resources[number]>, DataLayer.DataLayer | Store>, Scope.Scope>
> => {
  const make = options?.dataLayer === "memory"
    ? DataLayer.memory
    : options?.dataLayer === "genServer" || options?.dataLayer === undefined
    ? DataLayer.genServer
    : options.dataLayer
  return fromDataLayer({ traceReads: options?.traceReads, resources }).pipe(
    Layer.provide(
      DataLayer.layer(resources, {
        make,
        eventBuffer: options?.eventBuffer,
        durable: options?.durable,
        services: (self) => contextOf(self, options)
      })
    )
  )
}

/**
 * The Store over the `DataLayer` service in the context: what
 * {@link layer} is made of, for a data layer you build yourself
 * (`DataLayer.layer` with your own constructor).
 *
 * **Example** (A Store over the memory data layer)
 *
 * ```ts
 * import { Layer, Schema } from "effect"
 * import { DataLayer, Resource, Store } from "effect-gen-server"
 *
 * const Counter = Resource.make("Counter", {
 *   fields: { id: Schema.String, count: Schema.Int },
 *   primaryKey: ["id"]
 * })
 *
 * const layer = Store.fromDataLayer({ traceReads: true }).pipe(
 *   Layer.provide(DataLayer.layer([Counter], { make: DataLayer.memory }))
 * )
 * ```
 *
 * @category layers
 * @since 0.2.0
 */
export const fromDataLayer = (
  options?: {
    readonly traceReads?: boolean | undefined
    /** The resources the data layer serves, for tools that list them (see {@link Store}). */
    readonly resources?: ReadonlyArray<Resource.Any> | undefined
  }
): Layer.Layer<Store, never, DataLayer.DataLayer> =>
  Layer.effect(
    Store,
    Effect.map(
      DataLayer.DataLayer,
      (dataLayer) => Store.of({ dataLayer, traceReads: options?.traceReads ?? false, resources: options?.resources })
    )
  )
