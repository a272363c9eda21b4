/**
 * The storage service the Store talks to: its contract, and the data layers
 * this package ships.
 *
 * A data layer names resources and actions by name and takes inputs as
 * plain values; every operation is an Effect, and what crosses it (inputs,
 * keys, records, errors, events) is Schema-encodable, so a remote engine
 * (records as `effect/cluster` entities) can implement it: nothing relies on
 * sharing a mutable object between a caller and a record.
 *
 * - {@link genServer}: every record in its own supervised fiber (the default).
 * - {@link memory}: records in a `Map`, no fibers; a baseline and a light test
 *   double.
 *
 * `Store.layer(resources, { dataLayer })` builds the Store over one of them,
 * or over your own {@link Make}; {@link layer} provides the {@link DataLayer}
 * service itself.
 *
 * **Costs** (genServer)
 *
 * - get, reload, keepAlive by key: a `Map` lookup and a read of the record's
 *   committed state, in the caller's fiber; no message to the record.
 * - create: one fiber forked per record; update and destroy: one message to
 *   the record's fiber and one reply (the price of a `GenServer.call`); the
 *   record's fiber wakes in a microtask (see the caveats, docs/guarantees.md).
 * - read: never messages a record. A full-key `eq` filter is a registry
 *   lookup, an `eq` on an indexed field reads the index, anything else scans
 *   the dense array of the resource's committed records, with a top-k for a
 *   sorted, limited query; it looks at the records' deadlines only once one
 *   of them is due.
 * - Each commit deep-freezes the new record (a few tens of nanoseconds for a
 *   flat record), so what callers receive is the committed record itself,
 *   never a copy, and nothing they do to it changes it.
 *
 * **Gotchas**
 *
 * - Records live in memory: **nothing survives the end of the process or of
 *   the layer's scope**.
 * - With `restart: "initial"` (the default of a resource that is not
 *   durable), a crashed record is restarted **with the input used by its
 *   create action: updates since creation are lost**. A durable one restarts
 *   `"lastState"` unless it declares otherwise.
 * - A `read` is not activity: a record that is only ever scanned expires.
 * - A call whose caller is interrupted may still be served.
 * - An operation id chosen with `Store.withOperationId` is checked by the
 *   Store, and ignored for records kept in memory: no such call is ambiguous
 *   (none fails with `Unavailable`), and a write made again under the same
 *   id is applied again. A durable record remembers it (see
 *   docs/durability.md).
 * - The deadline is checked when an action commits: an update or destroy
 *   that would commit after the record's deadline (its hooks ran too long)
 *   fails with `NotFound` and publishes nothing; a new record's inactivity
 *   and lifetime count from the moment its create commits.
 * - memory: no supervision (a defect fails the call with `RecordCrashed` and
 *   the record keeps its last committed state, whatever its `restart`
 *   policy) and no expiry fiber (a record past its deadline is invisible at
 *   once, and removed, with its `Destroyed` event, when next touched,
 *   **without running its destroy action**).
 *
 * @since 0.1.0
 * @module
 */
import { Context, Effect, Layer, type Scope } from "effect"
import type * as Contract from "./internal/contract.js"
import * as GenServer from "./internal/genServer.js"
import * as Memory from "./internal/memory.js"
import type * as Resource from "./Resource.js"

/**
 * A query as data: what crosses to a data layer.
 *
 * **Example** (A query, by names)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { DataLayer, Filter } from "effect-gen-server"
 *
 * const in1955: DataLayer.QueryData = {
 *   resource: "Character",
 *   filter: Filter.eq("currentYear", 1955),
 *   sort: [{ field: "name", direction: "asc" }],
 *   offset: 0,
 *   limit: 10
 * }
 *
 * const characters = DataLayer.DataLayer.use((dataLayer) => dataLayer.read(in1955))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface QueryData extends Contract.QueryData {}

/**
 * What a data layer does: the Store's operations by names and plain values.
 *
 * **Example** (Decorating a data layer)
 *
 * ```ts
 * import { Effect } from "effect"
 * import type { DataLayer } from "effect-gen-server"
 *
 * const logged = (inner: DataLayer.Service): DataLayer.Service => ({
 *   ...inner,
 *   update: (resource, key, action, input) =>
 *     inner.update(resource, key, action, input).pipe(Effect.tap(() => Effect.log(`${resource}.${action}`)))
 * })
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export interface Service extends Contract.Service {}

/**
 * The data layer service.
 *
 * **Example** (Using the data layer by names)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { DataLayer } from "effect-gen-server"
 *
 * const created = DataLayer.DataLayer.use((dataLayer) =>
 *   dataLayer.create("Character", "create", { name: "Marty", currentYear: 1985 })
 * )
 * ```
 *
 * @category services
 * @since 0.2.0
 */
export class DataLayer extends Context.Service<DataLayer, Service>()("effect-gen-server/DataLayer") {}

/**
 * Options every data layer constructor takes.
 *
 * **Example** (A data layer whose slow subscribers drop old events)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { DataLayer, Resource } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String },
 *   primaryKey: ["id"]
 * })
 *
 * const options: DataLayer.Options = { eventBuffer: 1000 }
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const dataLayer = yield* DataLayer.genServer([Character], options)
 *   yield* dataLayer.create("Character", "create", { id: "marty", name: "Marty" })
 *   return yield* dataLayer.get("Character", { id: "marty" })
 * }))
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export interface Options extends Contract.Options {}

/**
 * Options of the storage of durable resources (`durable: true`), which the
 * GenServer data layer keeps in the `SqlClient` of its context.
 *
 * **Example** (Tables named after the application)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Resource, SqliteClient, Store } from "effect-gen-server"
 * import { Layer } from "effect"
 *
 * const Cart = Resource.make("Cart", {
 *   fields: { id: Schema.String, items: Schema.Array(Schema.String) },
 *   primaryKey: ["id"],
 *   durable: true
 * })
 *
 * const StoreLive = Store.layer([Cart], { durable: { tablePrefix: "shop_", activityFlush: "10 seconds" } }).pipe(
 *   Layer.provide(SqliteClient.layer({ filename: "shop.db" }))
 * )
 * ```
 *
 * @category models
 * @since 0.3.0
 */
export interface DurableOptions extends Contract.DurableOptions {}

/**
 * A data layer constructor: what `Store.layer`'s `dataLayer` option takes.
 * It owns everything it starts through the `Scope`: closing it stops every
 * record and fails later calls with `StoreClosed`.
 *
 * **Example** (A data layer that logs every update)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { DataLayer, Store } from "effect-gen-server"
 *
 * const logged: DataLayer.Make = (resources, options) =>
 *   Effect.map(DataLayer.genServer(resources, options), (inner) => ({
 *     ...inner,
 *     update: (resource, key, action, input) =>
 *       inner.update(resource, key, action, input).pipe(Effect.tap(() => Effect.log(`${resource}.${action}`)))
 *   }))
 *
 * const layer = Store.layer([], { dataLayer: logged })
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export type Make<R = never> = (
  resources: ReadonlyArray<Resource.Any>,
  options: Options
) => Effect.Effect<Service, never, Scope.Scope | R>

/**
 * The GenServer data layer: every record in its own fiber, supervised, owned
 * by the current `Scope`. Closing the scope interrupts every record fiber
 * and the expiry fibers; calls in flight fail with `StoreClosed`.
 *
 * **Example** (Using a data layer directly, by names)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { DataLayer, Resource } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const dataLayer = yield* DataLayer.genServer([Character], {})
 *   const marty = yield* dataLayer.create("Character", "create", { name: "Marty" })
 *   return yield* dataLayer.get("Character", marty)
 * }))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const genServer: Make = GenServer.make

/**
 * The memory data layer: records in a `Map`, no fibers. Actions run in the
 * caller's fiber under a per-record lock, with the same pipeline,
 * validation, atomicity, events, errors and deadlock detection as the
 * GenServer data layer. See the module's Gotchas for what it does not do
 * (supervision, eager expiry).
 *
 * **Example** (A store without fibers)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { DataLayer, Resource, Store } from "effect-gen-server"
 *
 * const Counter = Resource.make("Counter", {
 *   fields: { id: Schema.String, count: Schema.Int },
 *   primaryKey: ["id"]
 * })
 *
 * const layer = Store.layer([Counter], { dataLayer: DataLayer.memory })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const memory: Make = Memory.make

/**
 * Options of {@link layer}.
 *
 * **Example** (A memory data layer with a bounded event buffer)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { DataLayer, Resource } from "effect-gen-server"
 *
 * const Counter = Resource.make("Counter", {
 *   fields: { id: Schema.String, count: Schema.Int },
 *   primaryKey: ["id"]
 * })
 *
 * const options: DataLayer.LayerOptions = { make: DataLayer.memory, eventBuffer: 1000 }
 * const layer = DataLayer.layer([Counter], options)
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export interface LayerOptions<R = never, S = never> {
  /** The data layer constructor, needing `R` (besides a `Scope`). Default: {@link genServer}. */
  readonly make?: Make<R> | undefined
  /** See {@link Options}. */
  readonly eventBuffer?: number | undefined
  /** See {@link Options}. */
  readonly durable?: DurableOptions | undefined
  /**
   * Further services record actions (changes and hooks) run with, given the
   * data layer being built: `Store.layer` passes `Store.contextOf`, a Store
   * over this data layer, so hooks can call the Store.
   */
  readonly services?: ((self: Service) => Context.Context<S>) | undefined
}

/**
 * The {@link DataLayer} service over `resources`, made by `options.make`
 * (default {@link genServer}). Record actions (changes and hooks) run with
 * the layer's context, this data layer as the `DataLayer` service, and
 * `options.services` (give `Store.contextOf` for hooks that call the Store).
 *
 * **Example** (A Store over a data layer of your choice)
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
 * const layer = Store.fromDataLayer().pipe(
 *   Layer.provide(DataLayer.layer([Counter], { make: DataLayer.memory, services: (self) => Store.contextOf(self) }))
 * )
 * ```
 *
 * @category layers
 * @since 0.2.0
 */
export const layer = <const Resources extends ReadonlyArray<Resource.Any>, R = never, S = never>(
  resources: Resources,
  options: LayerOptions<R, S> = {}
): Layer.Layer<
  DataLayer,
  never,
  Exclude<R, Scope.Scope> | Exclude<Exclude<Resource.Services<Resources[number]>, DataLayer | S>, Scope.Scope>
> =>
  Layer.effect(
    DataLayer,
    Effect.flatMap(
      // the services the resources' actions need: provided to the layer, handed to the records as a context
      Effect.context<Exclude<Resource.Services<Resources[number]>, DataLayer | S>>(),
      (own) =>
        (options.make ?? (genServer as Make<R>))(resources, {
          eventBuffer: options.eventBuffer,
          durable: options.durable,
          context: (self) => {
            const context = Context.add(own, DataLayer, self)
            return (options.services === undefined
              ? context
              : Context.merge(context, options.services(self))) as Context.Context<never>
          }
        })
    )
  )
