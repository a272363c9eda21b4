/**
 * Resources: the types of record a store keeps.
 *
 * A resource names its `Schema` fields, its primary key (one field or
 * several), the fields generated on create, its actions and its lifecycle:
 * `inactivityTimeout` and `maximumLifetime` (both default to never), the
 * `restart` policy applied when a record's fiber crashes, and the restart
 * intensity beyond which a crashing record is removed. The definition is
 * checked when it is made: a malformed definition (a missing or non-object
 * part, a field or argument that is not a Schema, an action that is not an
 * Action, an unknown default), an empty key, a key or generated field that
 * is not a field, or a bad duration throws `InvalidResource` at once.
 *
 * A resource is only a description; records live in a `Store`.
 *
 * @since 0.1.0
 * @module
 */
import { Duration, Schedule, Schema } from "effect"
import { Inspectable, Pipeable, Predicate } from "effect"
import type { SqlClient } from "effect/sql"
import type { Simplify } from "effect/Types"
import * as Action from "./Action.js"
import { InvalidResource } from "./Errors.js"

const TypeId = "~effect-gen-server/Resource" as const

/** What every resource shares: its identifier, `pipe`, and how it prints. */
const Proto = {
  [TypeId]: TypeId,
  pipe() {
    return Pipeable.pipeArguments(this, arguments)
  },
  toJSON(this: Any) {
    return {
      _id: "Resource",
      name: this.name,
      primaryKey: this.primaryKey,
      fields: Object.keys(this.fields),
      actions: Object.keys(this.actions)
    }
  },
  toString(this: Any) {
    return Inspectable.toStringUnknown(this.toJSON())
  },
  [Inspectable.NodeInspectSymbol](this: Any) {
    return this.toJSON()
  }
}

/**
 * What happens to a record whose fiber crashed:
 *
 * - `"initial"` (the default of a record kept in memory only, the original's
 *   behaviour): the create action is run again with the input it was created
 *   with; **every update since creation is lost** (on a durable or cluster
 *   resource, lost from storage too).
 * - `"lastState"` (the default of a stored record: `durable: true`, or any
 *   resource on `Cluster.layer`): the record resumes with its last committed
 *   state.
 * - `"never"`: the record is removed (`Failed` is published).
 *
 * A storage failure is never a crash: it fails its call and the record keeps
 * its state, whatever the policy.
 *
 * **Example** (Sessions that survive a crash)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Resource } from "effect-gen-server"
 *
 * const restart: Resource.RestartPolicy = "lastState" // keep the cart a crash would otherwise empty
 * const Session = Resource.make("Session", {
 *   fields: { id: Schema.String, cart: Schema.Array(Schema.String) },
 *   primaryKey: ["id"],
 *   restart
 * })
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type RestartPolicy = "initial" | "lastState" | "never"

/**
 * A resource named `Name`, with Schema fields `Fields`, primary key fields
 * `Key`, generated fields `Generated` and actions `Actions`.
 *
 * **Example** (Describing any resource)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Resource } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 * const Machine = Resource.make("Machine", {
 *   fields: { id: Schema.String, name: Schema.String, hasPower: Schema.Boolean },
 *   primaryKey: ["id"],
 *   restart: "lastState"
 * })
 *
 * const describe = (resource: Resource.Any) =>
 *   `${resource.name}: keyed by ${resource.primaryKey.join(", ")}, restart ${resource.restart}`
 * ;[Character, Machine].map(describe)
 * // => ["Character: keyed by id, restart initial", "Machine: keyed by id, restart lastState"]
 *
 * // `schema` is an ordinary Schema, usable in other schemas
 * const Party = Schema.Struct({ members: Schema.Array(Character.schema) })
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Resource<
  out Name extends string,
  in out Fields extends Schema.Struct.Fields,
  out Key extends string,
  Generated extends string,
  Actions
> extends Pipeable.Pipeable, Inspectable.Inspectable {
  readonly [TypeId]: typeof TypeId
  readonly name: Name
  /** The record's schema, usable inside other schemas. */
  readonly schema: Schema.Struct<Fields>
  readonly fields: Fields
  readonly primaryKey: ReadonlyArray<Key>
  readonly generated: { readonly [K in Generated]: () => unknown }
  /** Every action of the resource, the default ones included. */
  readonly actions: Evaluate<Actions, Schema.Struct.Type<Fields>>
  readonly inactivityTimeout: Duration.Duration | undefined
  readonly maximumLifetime: Duration.Duration | undefined
  /**
   * The restart policy on one process: the one asked for, else `"lastState"`
   * for a durable resource and `"initial"` for the others.
   */
  readonly restart: RestartPolicy
  /**
   * The restart policy the definition asked for, if any. A data layer that
   * stores records (durable, `Cluster.layer`) uses `"lastState"` when it is
   * `undefined`.
   */
  readonly restartDeclared: RestartPolicy | undefined
  readonly restartIntensity: { readonly maxRestarts: number; readonly within: Duration.Duration }
  readonly indexes: ReadonlyArray<string>
  readonly mailboxCapacity: number | undefined
  readonly hibernateAfter: Duration.Duration | undefined
  /** Whether committed state is kept in SQL, and so survives the end of the process (see {@link Options}). */
  readonly durable: boolean
  /** The version of the stored state; a row of an older version is migrated when loaded. */
  readonly version: number
  /** How a record stored by an older version becomes a record of this one, by version. */
  readonly migrations: { readonly [version: number]: Migration<any> }
  /** How a scheduled action that fails is retried (`Changeset.schedule`); see {@link Options}. */
  readonly scheduleRetry: Schedule.Schedule<unknown, unknown>
  /** Whether a scheduled action's run counts as activity for `inactivityTimeout`. */
  readonly schedulesKeepAlive: boolean
}

/**
 * Any resource.
 *
 * **Example** (A function over every resource)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Resource } from "effect-gen-server"
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
 * const names = (resources: ReadonlyArray<Resource.Any>) => resources.map((resource) => resource.name)
 * names([Character, Machine]) // => ["Character", "Machine"]
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Any = Resource<string, any, string, string, any>

/**
 * The actions of a resource as its definition gave them: `Declared` is the
 * object of actions or the type of the typed form's function (whose result is
 * read only when the actions are needed, so that a hook may call its own
 * resource), `Defaults` the default actions it keeps.
 *
 * **Example** (Reading a resource's actions)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Changeset, Resource } from "effect-gen-server"
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
 * // the fifth type argument of a resource is a Definition; Resource.Actions evaluates it
 * type MachineActions = Resource.Actions<typeof Machine>
 * const charge: MachineActions["charge"] = Machine.actions.charge
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export interface Definition<out Declared, out Defaults extends string, out Durable extends boolean = false> {
  readonly declared: Declared
  readonly defaults: Defaults
  readonly durable: Durable
}

type IsAny<T> = 0 extends 1 & T ? true : false

type DeclaredActions<D> = D extends (Action: any) => infer X ? X : D

/** The actions described by a resource's 5th type argument. */
type Evaluate<S, A> = IsAny<S> extends true ? { readonly [name: string]: Action.Action.Any }
  : S extends Definition<infer D, infer Df, any> ? Simplify<
      Omit<Pick<DefaultActions<A>, Df & keyof DefaultActions<A>>, keyof DeclaredActions<D>> & DeclaredActions<D>
    >
  : S

/**
 * The record type of a resource.
 *
 * **Example** (Naming the record type after the resource)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Resource } from "effect-gen-server"
 *
 * const Lobby = Resource.make("Lobby", { fields: { id: Schema.String, players: Schema.Int }, primaryKey: ["id"] })
 * type Lobby = Resource.Record<typeof Lobby> // { readonly id: string; readonly players: number }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Record<R> = R extends Resource<any, infer F, any, any, any> ? Schema.Struct.Type<F> : never

/**
 * The primary key of a resource's records: the record restricted to its key
 * fields.
 *
 * **Example** (A key, typed)
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
 * type CharacterKey = Resource.Key<typeof Character> // { readonly id: string }
 *
 * const marty: CharacterKey = { id: "marty" }
 * const whereIsMarty = Store.get(Character, marty)
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Key<R> = R extends Resource<any, infer F, infer K, any, any>
  ? Simplify<Pick<Schema.Struct.Type<F>, K & keyof Schema.Struct.Type<F>>>
  : never

/**
 * The actions of a resource (defaults included).
 *
 * **Example** (The names of every action)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Changeset, Resource } from "effect-gen-server"
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
 * type MachineAction = keyof Resource.Actions<typeof Machine>
 * // "create" | "update" | "destroy" | "read" | "charge"
 *
 * const names = Object.keys(Machine.actions) as Array<MachineAction>
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Actions<R> = R extends Resource<any, infer F, any, any, infer S> ? Evaluate<S, Schema.Struct.Type<F>>
  : never

/**
 * The names of a resource's actions of kind `K`.
 *
 * **Example** (The commands a user interface offers)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Changeset, Resource } from "effect-gen-server"
 *
 * const Machine = Resource.make("Machine", {
 *   fields: { id: Schema.String, name: Schema.String, hasPower: Schema.Boolean },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID(), hasPower: () => false },
 *   actions: (Action) => ({
 *     charge: Action.update({ change: (cs) => Changeset.set(cs, "hasPower", true) }),
 *     scrap: Action.destroy()
 *   })
 * })
 *
 * type MachineUpdate = Resource.ActionName<typeof Machine, "update">
 * // "update" | "charge": not "scrap", a destroy action
 *
 * const commands: ReadonlyArray<MachineUpdate> = ["update", "charge"]
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type ActionName<R, K extends Action.Kind> = string extends keyof Actions<R> ? string :
  & {
    [N in keyof Actions<R>]: Actions<R>[N] extends Action.Action<K, any, any, any, any, any, any> ? N : never
  }[keyof Actions<R>]
  & string

/**
 * The services a resource's actions and hooks require.
 *
 * **Example** (A change that requires a service)
 *
 * ```ts
 * import { Context, Effect, Schema } from "effect"
 * import { Changeset, Resource, Store } from "effect-gen-server"
 *
 * class ClockTower extends Context.Service<ClockTower, { readonly strike: Effect.Effect<number> }>()("ClockTower") {}
 *
 * const Lightning = Resource.make("Lightning", {
 *   fields: { id: Schema.String, year: Schema.Int },
 *   primaryKey: ["id"],
 *   actions: (Action) => ({
 *     strike: Action.update({
 *       change: (cs) => Effect.map(ClockTower.use((tower) => tower.strike), (year) => Changeset.set(cs, "year", year))
 *     })
 *   })
 * })
 *
 * type Needs = Resource.Services<typeof Lightning> // ClockTower
 * const layer = Store.layer([Lightning]) // Layer<Store, never, ClockTower>
 * ```
 *
 * A durable resource (`durable: true`) also requires the `SqlClient` its
 * state is kept with.
 *
 * @category models
 * @since 0.1.0
 */
export type Services<R> = R extends Resource<any, any, any, any, any> ?
  Action.Action.Services<Actions<R>[keyof Actions<R>]> | DurableServices<R>
  : never

type DurableServices<R> = R extends Resource<any, infer _F, any, any, infer D> ? IsAny<D> extends true ? never
  : D extends Definition<any, any, infer Durable> ? true extends Durable ? SqlClient.SqlClient : never
  : never
  : never

type OptionalKeys<A> = { [K in keyof A]-?: {} extends Pick<A, K> ? K : never }[keyof A]

type Accepted<R, Act> = Act extends Action.Action<any, any, infer Accept, any, any, any, any>
  ? string extends Accept ? keyof Record<R> : Accept & keyof Record<R>
  : never

type ArgsInput<Act> = Act extends Action.Action<any, any, any, infer Args, any, any, any> ? Schema.Struct.Encoded<Args>
  : {}

type Generated<R> = R extends Resource<any, any, any, infer G, any> ? G : never

/**
 * The input of the action `N` of resource `R`: the accepted fields (required
 * on create unless optional or generated, all optional on update) and the
 * action's arguments.
 *
 * **Example** (Inputs, typed)
 *
 * ```ts
 * import { Schema } from "effect"
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
 * // on create, required fields are required; generated and optional ones are not
 * const marty: Resource.Input<typeof Character, "create"> = { name: "Marty", currentYear: 1985 }
 * // the action's arguments
 * const to1955: Resource.Input<typeof Character, "travelInTime"> = { targetYear: 1955 }
 *
 * const trip = Store.update(Character, { id: "marty" }, "travelInTime", to1955)
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Input<R, N extends keyof Actions<R>> = NoFields<
  Actions<R>[N] extends Action.Action<"create", any, any, any, any, any, any> ? Simplify<
      & {
        readonly [K in Exclude<Accepted<R, Actions<R>[N]>, OptionalKeys<Record<R>> | Generated<R>>]: Record<R>[K]
      }
      & {
        readonly [K in Accepted<R, Actions<R>[N]> & (OptionalKeys<Record<R>> | Generated<R>)]?: Record<R>[K]
      }
      & ArgsInput<Actions<R>[N]>
    >
    : Simplify<
      & { readonly [K in Accepted<R, Actions<R>[N]>]?: Record<R>[K] }
      & ArgsInput<Actions<R>[N]>
    >
>

/**
 * What a Store call running the action `N` of resource `R` succeeds with:
 * the action's result where it declares `success` (a Schema), otherwise the
 * record (`Store.create`, `Store.update`) or nothing (`Store.destroy`,
 * `Otherwise = void`).
 *
 * **Example** (An action that answers with a value)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Changeset, Resource } from "effect-gen-server"
 *
 * const Counter = Resource.make("Counter", {
 *   fields: { id: Schema.String, n: Schema.Int },
 *   primaryKey: ["id"],
 *   actions: (Action) => ({
 *     next: Action.update({
 *       success: Schema.Int,
 *       change: (cs) => cs.pipe(Changeset.set("n", cs.data.n + 1), Changeset.result(cs.data.n + 1))
 *     })
 *   })
 * })
 *
 * type Next = Resource.Result<typeof Counter, "next"> // number
 * type Update = Resource.Result<typeof Counter, "update"> // { readonly id: string; readonly n: number }
 * ```
 *
 * @category models
 * @since 0.6.0
 */
export type Result<R, N, Otherwise = Record<R>> = N extends keyof Actions<R>
  ? [Action.Action.Success<Actions<R>[N]>] extends [never] ? Otherwise : Action.Action.Success<Actions<R>[N]>
  : Otherwise

/** An input with no field at all: `{}` would accept anything, this accepts only `{}`. */
type NoFields<T> = [keyof T] extends [never] ? { readonly [field: string]: never } : T

/**
 * The default actions every resource has.
 *
 * **Example** (The default destroy action of a resource)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Resource } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 * type Character = Resource.Record<typeof Character>
 *
 * const destroy: Resource.DefaultActions<Character>["destroy"] = Character.actions.destroy
 * destroy.kind // => "destroy"
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type DefaultActions<A> = {
  readonly create: Action.Action<"create", A, string, {}, never>
  readonly update: Action.Action<"update", A, string, {}, never>
  readonly destroy: Action.Action<"destroy", A, never, {}, never>
  readonly read: Action.Action<"read", A, never, {}, never>
}

/**
 * The name of a default action, as listed in the `defaults` option.
 *
 * **Example** (A rate limiter no caller can refill through `update`)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Changeset, Resource } from "effect-gen-server"
 *
 * const kept = ["create", "read", "destroy"] as const satisfies ReadonlyArray<Resource.DefaultAction>
 * const Bucket = Resource.make("Bucket", {
 *   fields: { id: Schema.String, tokens: Schema.Int },
 *   primaryKey: ["id"],
 *   defaults: kept,
 *   actions: (Action) => ({
 *     take: Action.update({ change: (cs) => Changeset.set(cs, "tokens", cs.data.tokens - 1) })
 *   })
 * })
 * // Store.update(Bucket, key, "update", { tokens: 1_000_000 }) does not compile
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export type DefaultAction = "create" | "update" | "destroy" | "read"

/**
 * The options of {@link make}.
 *
 * **Example** (Options shared by two resources)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Resource } from "effect-gen-server"
 *
 * const fields = { id: Schema.String, players: Schema.Array(Schema.String) }
 * const ephemeral = {
 *   fields,
 *   primaryKey: ["id"],
 *   inactivityTimeout: "10 minutes",
 *   restart: "never",
 *   mailboxCapacity: 100
 * } as const satisfies Resource.Options<typeof fields, ReadonlyArray<"id">, never, {}>
 *
 * const Lobby = Resource.make("Lobby", ephemeral)
 * const Match = Resource.make("Match", ephemeral)
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Options<
  Fields extends Schema.Struct.Fields,
  PK extends ReadonlyArray<keyof Fields & string>,
  Gen extends keyof Fields & string,
  Actions,
  Defaults extends DefaultAction = DefaultAction,
  Durable extends boolean = false
> {
  readonly fields: Fields
  /** At least one field; several make a composite key. */
  readonly primaryKey: PK
  /** Filled on create when absent from the input, by calling the function. */
  readonly generated?:
    | { readonly [K in Gen]: () => K extends keyof Schema.Struct.Type<Fields> ? Schema.Struct.Type<Fields>[K] : never }
    | undefined
  /** A record with no direct activity for this long is destroyed. Default: never. */
  readonly inactivityTimeout?: Duration.Input | undefined
  /** A record older than this is destroyed, whatever its activity. Default: never. */
  readonly maximumLifetime?: Duration.Input | undefined
  /**
   * Default: `"lastState"` for a stored record (`durable: true`, or any
   * resource on `Cluster.layer`), `"initial"` for one kept in memory only.
   * `"initial"` on a stored resource discards every update since creation
   * when the record crashes, in storage too: ask for it only if that is what
   * you want.
   */
  readonly restart?: RestartPolicy | undefined
  /** Default: more than 3 restarts within 5 seconds removes the record (OTP's default). */
  readonly restartIntensity?: { readonly maxRestarts: number; readonly within: Duration.Input } | undefined
  /** Fields whose `eq` filters are answered from an index instead of a scan. */
  readonly indexes?: ReadonlyArray<keyof Fields & string> | undefined
  /** Bound on each record's queue of pending requests; default unbounded. */
  readonly mailboxCapacity?: number | undefined
  /**
   * OTP's `hibernate_after`: a record with no direct activity for this long
   * gives up its fiber and mailbox and keeps only its state and deadlines;
   * the next request wakes it in a new fiber, invisibly to callers. Default:
   * never.
   */
  readonly hibernateAfter?: Duration.Input | undefined
  /**
   * How a scheduled action that fails (`Changeset.schedule`) is retried: the
   * delays of this `Schedule`, fed the failure; when it ends, the schedule
   * is removed and `ScheduleFailed` published. Default: exponential from 1
   * second, 6 retries (as Durable Objects retry an alarm).
   */
  readonly scheduleRetry?: Schedule.Schedule<unknown, unknown> | undefined
  /**
   * Whether a scheduled action's run counts as activity, moving the
   * record's inactivity deadline. Default: `false` (a record that only its
   * own schedules touch expires as if left alone).
   */
  readonly schedulesKeepAlive?: boolean | undefined
  /**
   * Keeps every record's committed state (and deadlines, and its create's
   * input) in a SQL table, written before the caller is answered, so that
   * records survive the end of the process: a new process with the same
   * database serves them with their last committed state. The Store's layer
   * then requires a `SqlClient` (`SqliteClient.layer` for an embedded file,
   * or any other, such as `@effect/sql-pg`). Default: `false`.
   */
  readonly durable?: Durable | undefined
  /**
   * The version of the state a stored record keeps (a durable resource, or
   * any resource on `Cluster.layer`; a positive integer, default 1). Raise
   * it when a change of `fields` makes stored records undecodable, and give
   * a migration from each older version still stored. A process of an older
   * version reads a newer version's record when its own schema can (the
   * fields it does not know are kept by its writes), and refuses it as
   * `Unavailable` when it cannot: see "Deploying a new version" in docs/cluster.md.
   */
  readonly version?: number | undefined
  /**
   * How a record stored by an older version becomes a record of this one,
   * by the version that stored it (see {@link migration}). A stored record
   * that no migration turns into a valid record is quarantined: kept aside,
   * reported, never dropped.
   */
  readonly migrations?: { readonly [version: number]: Migration<Schema.Struct.Type<Fields>> } | undefined
  /**
   * The default actions the resource has; all four when absent. A resource
   * whose declared actions guard a field leaves out `"update"` (and
   * `"create"`) so that no caller can write that field around them. An
   * action left out does not compile at the Store call and is
   * `UnknownAction` for an untyped caller. Expiry still destroys a record of
   * a resource with no destroy action at all (running no hook).
   */
  readonly defaults?: ReadonlyArray<Defaults> | undefined
  /**
   * The declared actions: either the typed form, a function receiving the
   * action constructors with the record type bound (every change and hook
   * then sees the record, read-only, and field names and value types are
   * checked), or an object of `Action.create / update / destroy` values.
   */
  readonly actions?:
    | (Actions & ((Action: Action.Constructors<Schema.Struct.Type<Fields>>) => any))
    | (Actions & {
      readonly [name: string]: Action.Action<Action.Kind, Schema.Struct.Type<Fields>, any, any, any, any, any>
    })
    | undefined
}

const fail = (resource: string, message: string): never => {
  throw new InvalidResource({ resource, message: `Resource ${resource}: ${message}` })
}

const duration = (
  resource: string,
  option: string,
  input: Duration.Input | undefined
): Duration.Duration | undefined => {
  if (input === undefined) return undefined
  const d = Duration.fromInput(input)
  if (d._tag === "None" || Duration.isNegative(d.value)) {
    return fail(resource, `${option} must be a non-negative duration, got ${JSON.stringify(input)}`)
  }
  return Duration.isFinite(d.value) ? d.value : undefined
}

/**
 * Defines a resource.
 *
 * **Details**
 *
 * - `actions` in the typed form, `(Action) => ({ ... })`, hands in the
 *   action constructors with the record type bound: changes and hooks see
 *   the record, read-only, with field names and value types checked. A
 *   change or hook may call its own resource (`Store.update(Room, ...)`
 *   inside `Room`'s definition). An object of `Action.update(...)` values
 *   also works, but sees the record as `any`.
 * - `defaults` lists the default actions the resource keeps (all four when
 *   absent): leave out `"update"` where a declared action guards a field.
 *
 * **Example** (The characters of the TimeTravel story)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Changeset, Resource, Store } from "effect-gen-server"
 *
 * class Paradox extends Schema.TaggedError<Paradox>()("Paradox", { year: Schema.Int }) {}
 *
 * export const Character = Resource.make("Character", {
 *   fields: {
 *     id: Schema.String,
 *     name: Schema.String,
 *     nickname: Schema.optionalKey(Schema.String),
 *     currentYear: Schema.Int
 *   },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() },
 *   inactivityTimeout: "1 minute",
 *   // no blanket update: the year changes only by travelling
 *   defaults: ["create", "read", "destroy"],
 *   actions: (Action) => ({
 *     travelInTime: Action.update({
 *       arguments: { targetYear: Schema.Int },
 *       error: Paradox,
 *       change: (cs) =>
 *         cs.arguments.targetYear === cs.data.currentYear
 *           ? Effect.fail(new Paradox({ year: cs.data.currentYear }))
 *           : Changeset.set(cs, "currentYear", cs.arguments.targetYear)
 *     }),
 *     forgetNickname: Action.update({ change: (cs) => Changeset.unset(cs, "nickname") }),
 *     // a hook calling its own resource (another record: a record calling itself is a ReentrantCall)
 *     bringAlong: Action.update({
 *       arguments: { companion: Schema.String },
 *       change: (cs) =>
 *         Changeset.after(cs, (character) =>
 *           Store.update(Character, { id: cs.arguments.companion }, "travelInTime", {
 *             targetYear: character.currentYear
 *           }).pipe(Effect.as(character)))
 *     })
 *   })
 * })
 * export type Character = Resource.Record<typeof Character>
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <
  const Name extends string,
  const Fields extends Schema.Struct.Fields,
  const PK extends ReadonlyArray<keyof Fields & string>,
  Gen extends keyof Fields & string = never,
  Actions = {},
  const Defaults extends DefaultAction = DefaultAction,
  const Durable extends boolean = false
>(
  name: Name,
  options: Options<Fields, PK, Gen, Actions, Defaults, Durable>
): Resource<Name, Fields, PK[number], Gen, Definition<Actions, Defaults, Durable>> => {
  if (typeof name !== "string" || name.length === 0) fail(String(name), "the name must be a non-empty string")
  if (!isObject(options)) fail(name, `the definition must be an object, got ${describe(options)}`)
  if (!isObject(options.fields)) fail(name, `fields must be an object of Schemas, got ${describe(options.fields)}`)
  for (const [k, field] of Object.entries(options.fields)) {
    if (!Schema.isSchema(field)) fail(name, `field ${JSON.stringify(k)} is not a Schema, got ${describe(field)}`)
  }
  const fieldNames = new Set(Object.keys(options.fields))
  if (!Array.isArray(options.primaryKey) || options.primaryKey.length === 0) {
    fail(name, "the primary key needs at least one field")
  }
  if (new Set(options.primaryKey).size !== options.primaryKey.length) fail(name, "the primary key repeats a field")
  for (const k of options.primaryKey) {
    if (!fieldNames.has(k)) fail(name, `primary key field ${JSON.stringify(k)} is not one of its fields`)
  }
  if (options.generated !== undefined && !isObject(options.generated)) {
    fail(name, `generated must be an object of functions, got ${describe(options.generated)}`)
  }
  for (const [k, generate] of Object.entries(options.generated ?? {})) {
    if (!fieldNames.has(k)) fail(name, `generated field ${JSON.stringify(k)} is not one of its fields`)
    if (typeof generate !== "function") fail(name, `generated field ${JSON.stringify(k)} is not a function`)
  }
  if (options.indexes !== undefined && !Array.isArray(options.indexes)) {
    fail(name, `indexes must be an array of field names, got ${describe(options.indexes)}`)
  }
  for (const k of options.indexes ?? []) {
    if (!fieldNames.has(k)) fail(name, `indexed field ${JSON.stringify(k)} is not one of its fields`)
  }
  const restart = options.restart ?? (options.durable === true ? "lastState" : "initial")
  if (restart !== "initial" && restart !== "lastState" && restart !== "never") {
    fail(name, `restart must be "initial", "lastState" or "never", got ${JSON.stringify(restart)}`)
  }
  if (options.restartIntensity !== undefined && !isObject(options.restartIntensity)) {
    fail(name, `restartIntensity must be an object, got ${describe(options.restartIntensity)}`)
  }
  const maxRestarts = options.restartIntensity?.maxRestarts ?? 3
  if (!Number.isInteger(maxRestarts) || maxRestarts < 0) {
    fail(name, "restartIntensity.maxRestarts must be an integer >= 0")
  }
  const within = duration(name, "restartIntensity.within", options.restartIntensity?.within ?? "5 seconds") ??
    Duration.infinity
  const mailboxCapacity = options.mailboxCapacity
  if (mailboxCapacity !== undefined && (!Number.isInteger(mailboxCapacity) || mailboxCapacity < 1)) {
    fail(name, "mailboxCapacity must be a positive integer")
  }
  if (options.durable !== undefined && typeof options.durable !== "boolean") {
    fail(name, `durable must be a boolean, got ${describe(options.durable)}`)
  }
  const version = options.version ?? 1
  if (!Number.isSafeInteger(version) || version < 1) {
    fail(name, `version must be a positive integer, got ${JSON.stringify(version)}`)
  }
  if (options.migrations !== undefined && !isObject(options.migrations)) {
    fail(name, `migrations must be an object of migrations by version, got ${describe(options.migrations)}`)
  }
  for (const [from, m] of Object.entries(options.migrations ?? {})) {
    const n = Number(from)
    if (!Number.isSafeInteger(n) || n < 1 || n >= version) {
      fail(name, `migrations has a migration from version ${from}: versions are integers from 1 to ${version - 1}`)
    }
    if (!isMigration(m)) fail(name, `the migration from version ${from} is not a Resource.migration`)
  }
  const defaults: ReadonlyArray<string> = options.defaults ?? allDefaults
  if (!Array.isArray(defaults)) fail(name, `defaults must be an array, got ${describe(defaults)}`)
  const actions: { [name: string]: Action.Action.Any } = {}
  for (const d of defaults) {
    if (!allDefaults.includes(d)) {
      fail(
        name,
        `defaults lists ${JSON.stringify(d)}, which is not one of ${allDefaults.map((d) => `"${d}"`).join(", ")}`
      )
    }
    actions[d] = Action.defaults[d as DefaultAction]
  }
  const declared = typeof options.actions === "function"
    ? (options.actions as (Action: Action.Constructors<any>) => unknown)(Action.constructors)
    : options.actions ?? {}
  if (!isObject(declared)) fail(name, `actions must be an object of actions, got ${describe(declared)}`)
  for (const [actionName, action] of Object.entries(declared as { readonly [name: string]: unknown })) {
    if (!Action.isAction(action)) fail(name, `action ${actionName} is not an Action, got ${describe(action)}`)
    const checked = action as Action.Action.Any
    if (checked.accept !== "*" && !Array.isArray(checked.accept)) {
      fail(name, `action ${actionName}: accept must be an array of field names`)
    }
    if (!isObject(checked.arguments)) fail(name, `action ${actionName}: arguments must be an object of Schemas`)
    for (const [k, argument] of Object.entries(checked.arguments)) {
      if (!Schema.isSchema(argument)) fail(name, `action ${actionName}: argument ${JSON.stringify(k)} is not a Schema`)
    }
    if (checked.error !== undefined && !Schema.isSchema(checked.error)) {
      fail(name, `action ${actionName}: error must be a Schema, got ${describe(checked.error)}`)
    }
    if (checked.change !== undefined && typeof checked.change !== "function") {
      fail(name, `action ${actionName}: change must be a function, got ${describe(checked.change)}`)
    }
    if (checked.accept !== "*") {
      for (const k of checked.accept) {
        if (!fieldNames.has(k)) fail(name, `action ${actionName} accepts ${JSON.stringify(k)}, which is not a field`)
      }
    }
    for (const k of Object.keys(checked.arguments)) {
      if (checked.accept !== "*" && (checked.accept as ReadonlyArray<string>).includes(k)) {
        fail(name, `action ${actionName} has an argument ${JSON.stringify(k)} that is also an accepted field`)
      }
    }
    actions[actionName] = checked
  }
  return Object.assign(Object.create(Proto), {
    name,
    schema: Schema.Struct(options.fields),
    fields: options.fields,
    primaryKey: options.primaryKey,
    // checked above, by value: their types (the record's fields, the declared and default actions) are the
    // resource's type parameters, which a value built at run time cannot be shown to match
    generated: (options.generated ?? {}) as any,
    actions: actions as any,
    inactivityTimeout: duration(name, "inactivityTimeout", options.inactivityTimeout),
    maximumLifetime: duration(name, "maximumLifetime", options.maximumLifetime),
    restart,
    restartDeclared: options.restart,
    restartIntensity: { maxRestarts, within },
    indexes: options.indexes ?? [],
    mailboxCapacity,
    hibernateAfter: duration(name, "hibernateAfter", options.hibernateAfter),
    durable: options.durable === true,
    version,
    migrations: { ...options.migrations },
    scheduleRetry: options.scheduleRetry ?? defaultScheduleRetry,
    schedulesKeepAlive: options.schedulesKeepAlive === true
  })
}

/** Durable Objects' alarms: 6 retries, exponential from 1 second. */
const defaultScheduleRetry: Schedule.Schedule<unknown, unknown> = Schedule.exponential("1 second").pipe(
  Schedule.upTo({ times: 6 })
) as Schedule.Schedule<unknown, unknown>

const MigrationTypeId = "~effect-gen-server/Migration" as const

/**
 * How a record stored by an older version of a durable resource becomes a
 * record of the current version: the schema of what that version stored
 * (its JSON encoding is what the row holds) and a function to the current
 * record. Build one with {@link migration}.
 *
 * **Example** (A migration, typed by the record it makes)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Resource } from "effect-gen-server"
 *
 * const V1 = Schema.Struct({ id: Schema.String, name: Schema.String })
 *
 * const fromV1: Resource.Migration<{ readonly id: string; readonly first: string; readonly last: string }> =
 *   Resource.migration(V1, (v1) => {
 *     const [first = "", ...rest] = v1.name.split(" ")
 *     return { id: v1.id, first, last: rest.join(" ") }
 *   })
 * ```
 *
 * @category models
 * @since 0.3.0
 */
export interface Migration<out A> {
  readonly [MigrationTypeId]: typeof MigrationTypeId
  /** The record as the older version stored it. */
  readonly schema: Schema.Top
  /** The current record made from the decoded older one. */
  readonly migrate: (stored: any) => A
}

/**
 * A migration from an older version of a durable resource: `schema` decodes
 * what that version stored, `migrate` makes the current record from it. The
 * result is checked against the resource's schema; a row that fails to
 * decode, throws in `migrate` or gives an invalid record is quarantined.
 *
 * **Example** (Version 2 of a cart adds a currency)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Resource } from "effect-gen-server"
 *
 * const CartV1 = Schema.Struct({ id: Schema.String, items: Schema.Array(Schema.String) })
 *
 * const Cart = Resource.make("Cart", {
 *   fields: { id: Schema.String, items: Schema.Array(Schema.String), currency: Schema.String },
 *   primaryKey: ["id"],
 *   durable: true,
 *   version: 2,
 *   migrations: {
 *     1: Resource.migration(CartV1, (v1) => ({ ...v1, currency: "EUR" }))
 *   }
 * })
 * ```
 *
 * @category constructors
 * @since 0.3.0
 */
export const migration = <S extends Schema.Top, A>(
  schema: S,
  migrate: (stored: S["Type"]) => A
): Migration<A> => ({ [MigrationTypeId]: MigrationTypeId, schema, migrate })

const isMigration = (u: unknown): u is Migration<unknown> =>
  Predicate.hasProperty(u, MigrationTypeId) && Predicate.hasProperty(u, "schema") && Schema.isSchema(u.schema) &&
  Predicate.hasProperty(u, "migrate") && typeof u.migrate === "function"

const allDefaults: ReadonlyArray<string> = ["create", "update", "destroy", "read"]

const isObject = (u: unknown): u is { readonly [k: string]: unknown } =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const describe = (u: unknown): string =>
  u === null ? "null" : Array.isArray(u) ? "an array" : typeof u === "object" ? "an object" : typeof u

/**
 * Returns `true` if the value is a {@link Resource}.
 *
 * **Example** (Guarding)
 *
 * ```ts
 * import { Resource } from "effect-gen-server"
 *
 * Resource.isResource("Character") // => false
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isResource = (u: unknown): u is Any => Predicate.hasProperty(u, TypeId)

/**
 * The primary key of a record (or of any object holding the key fields).
 *
 * **Example** (Marty's key)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Resource } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String },
 *   primaryKey: ["id"]
 * })
 * Resource.keyOf(Character, { id: "1", name: "Marty" }) // => { id: "1" }
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const keyOf = <R extends Any>(resource: R, record: Key<R> & Partial<Record<R>>): Key<R> => {
  const key: { [k: string]: unknown } = {}
  for (const k of resource.primaryKey) key[k] = (record as { readonly [field: string]: unknown } | undefined)?.[k]
  return key as Key<R>
}
