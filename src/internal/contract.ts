/**
 * The contract between the Store and a data layer, as types: what the
 * public `DataLayer` module re-declares (with its documentation) and what
 * the data layers implement. Here so that no data layer imports the module
 * that imports it. The public typings name these: they are not marked internal.
 */
import type { Context, Duration, Effect, PubSub, Scope, Stream } from "effect"
import type { PendingSchedule } from "../Changeset.js"
import type { NotFound, StoreClosed, StoreError, Unavailable, ValidationError } from "../Errors.js"
import type * as Event from "../Event.js"
import type * as Filter from "../Filter.js"
import type * as Query from "../Query.js"
import type * as Resource from "../Resource.js"

/** A query as data (see `DataLayer.QueryData`). */
export interface QueryData {
  readonly resource: string
  readonly filter: Filter.Expr | undefined
  readonly sort: ReadonlyArray<Query.SortKey>
  readonly offset: number
  readonly limit: number | undefined
}

/** What a data layer does (see `DataLayer.Service`). */
export interface Service {
  readonly create: (resource: string, action: string, input: unknown) => Effect.Effect<unknown, StoreError>
  readonly update: (
    resource: string,
    key: unknown,
    action: string,
    input: unknown
  ) => Effect.Effect<unknown, StoreError>
  /** Succeeds with the action's result where it declares `success`, otherwise `undefined`. */
  readonly destroy: (resource: string, key: unknown, action: string) => Effect.Effect<unknown, StoreError>
  readonly get: (
    resource: string,
    key: unknown
  ) => Effect.Effect<unknown, NotFound | ValidationError | StoreClosed | Unavailable>
  readonly read: (query: QueryData) => Effect.Effect<ReadonlyArray<unknown>, ValidationError | StoreClosed>
  readonly keepAlive: (
    resource: string,
    key: unknown
  ) => Effect.Effect<void, NotFound | ValidationError | StoreClosed | Unavailable>
  /** Every event published after the stream starts being pulled. */
  readonly events: Stream.Stream<Event.Event>
  /** A subscription receiving every event published after it is made. */
  readonly subscribe: Effect.Effect<PubSub.Subscription<Event.Event>, never, Scope.Scope>
  /**
   * The restart policy this data layer applies to a resource's crashed
   * records, where it is not the resource's own `restart` (`Cluster.layer`
   * stores every record: one that declares none restarts `"lastState"`).
   * Tools that show a resource (the `Inspector`) read it; `undefined`: the
   * resource's `restart`.
   */
  readonly restartOf?: ((resource: Resource.Any) => Resource.RestartPolicy) | undefined
  /**
   * A record's pending schedules (`Changeset.schedule`), earliest first.
   * `undefined`: the data layer keeps none (`Store.schedules` answers `[]`).
   */
  readonly schedules?: ((resource: string, key: unknown) => Listed) | undefined
}

/** What `Service.schedules` answers. */
export type Listed = Effect.Effect<
  ReadonlyArray<PendingSchedule>,
  NotFound | ValidationError | StoreClosed | Unavailable
>

/** Options every data layer constructor takes (see `DataLayer.Options`). */
export interface Options {
  /**
   * The services record actions (changes and hooks) run with, given the data
   * layer being built (so they can include a Store over it). Default: the
   * context the data layer is built in.
   */
  readonly context?: ((self: Service) => Context.Context<never>) | undefined
  /**
   * How many events a subscriber may leave unread: beyond it, the oldest it
   * has not read are dropped for it (a sliding `PubSub`), so a subscriber
   * that stops reading holds bounded memory. A positive integer; default
   * unbounded: no event is ever dropped.
   */
  readonly eventBuffer?: number | undefined
  /** Where and how durable resources keep their records (see {@link DurableOptions}). */
  readonly durable?: DurableOptions | undefined
}

/** Options of the storage of durable resources (see `DataLayer.DurableOptions`). */
export interface DurableOptions {
  /**
   * Prepended to the names of the tables (`<prefix>records`,
   * `<prefix>quarantine`): at most 45 bytes (PostgreSQL's names hold 63).
   * Default `"effect_gen_server_"`.
   */
  readonly tablePrefix?: string | undefined
  /**
   * How often the activity of records that were only read (get, keepAlive)
   * is written, which their inactivity deadline counts from after a restart:
   * after a crash, a record may expire up to this much early. Default 5
   * seconds.
   */
  readonly activityFlush?: Duration.Input | undefined
  /** The most writes one statement of the group commit holds. Default 256. */
  readonly maxBatch?: number | undefined
  /**
   * How long a removed record's row is kept, with the operation ids it
   * applied (a write sent again under its id within it is recognised, see
   * `Store.withOperationId`), before it is deleted. Default 1 day.
   */
  readonly operationRetention?: Duration.Input | undefined
}

/** A data layer constructor needing `R` besides a `Scope` (see `DataLayer.Make`). */
export type Make<R = never> = (
  resources: ReadonlyArray<Resource.Any>,
  options: Options
) => Effect.Effect<Service, never, Scope.Scope | R>

/** Options of the cluster data layer (see `Cluster.Options`). */
export interface ClusterOptions {
  /** Prepended to the state table's name: at most 45 bytes. Default `"effect_gen_server_"`. */
  readonly tablePrefix?: string | undefined
  /**
   * Whether this process runs records (registers the entity types); `false`
   * for a client-only process. Default `true`.
   */
  readonly runner?: boolean | undefined
  /** How long a record stays in a runner's memory without a message. Default 1 minute. */
  readonly maxIdleTime?: Duration.Input | undefined
  /**
   * How many times a call failing for a reason of the cluster is re-sent
   * (same operation id) before it fails with `Unavailable`. Default 10: the
   * waits between sends grow from 50 ms by half each time, capped at 2 s,
   * so 10 retries wait about 5.7 s in all, and each retry beyond that 2 s.
   */
  readonly retries?: number | undefined
  /**
   * How often the expiry sweeper (a cluster `Singleton`, running on one
   * runner) looks for records past their stored deadline. Default 1 second.
   */
  readonly sweepInterval?: Duration.Input | undefined
  /**
   * How long a destroyed record's row is kept, with the operation ids it
   * applied (a destroy re-sent under its id within it is recognised), before
   * the sweeper deletes it. Default 1 day.
   */
  readonly operationRetention?: Duration.Input | undefined
}
