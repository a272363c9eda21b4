/**
 * The pending change an action builds.
 *
 * A `Changeset` carries the record as it was (`data`), the attribute changes
 * made so far (`attributes`), the decoded action arguments (`arguments`), the
 * validation messages added by the action (`errors`) and the `before` and
 * `after` hooks to run. It is an immutable value: every operation returns a new
 * changeset. All operations are dual, so they can be piped.
 *
 * The record's fiber applies a changeset in this order: the action's `change`,
 * the `before` hooks (each may return a new changeset), Schema validation of
 * the new state, the `after` hooks (each receives the new record), then the
 * commit. If any step fails nothing is committed.
 *
 * In the typed form of a resource's actions, `A` is the resource's record
 * (read-only): `get`, `set` and `unset` check field names and value types.
 * An optional field is cleared with `unset`, not by setting `undefined`.
 *
 * @since 0.1.0
 * @module
 */
import { type Duration, type Effect, Option, Predicate } from "effect"
import { dual } from "effect/Function"
import { type Pipeable, pipeArguments } from "effect/Pipeable"

/** The identifier every value of this module carries: private, see the `is*` guard. */
const TypeId = "~effect-gen-server/Changeset" as const

/**
 * The kind of action a changeset belongs to.
 *
 * **Example** (Describing a change)
 *
 * ```ts
 * import { Changeset } from "effect-gen-server"
 *
 * const past: Record<Changeset.Kind, string> = { create: "created", update: "updated", destroy: "destroyed" }
 * const describe = (cs: Changeset.Changeset.Any) => `${cs.resource} ${past[cs.kind]} by ${cs.action}`
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Kind = "create" | "update" | "destroy"

/**
 * A pending change to a record of type `A`, with decoded arguments `Args`;
 * `R` collects the services its hooks require, `O` is the type of the
 * result its action answers with (`success`): `unknown` where it is not
 * known, `never` in the typed form of an action that declares none.
 *
 * **Details**
 *
 * - `data` is the record before the action (update, destroy). For a create it
 *   is the input as accepted, with generated fields filled in, before any
 *   change: not yet validated.
 * - `attributes` are the fields set by the input and by `set`.
 *
 * **Example** (A change shared by several actions)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Changeset, Resource } from "effect-gen-server"
 *
 * // fits any action of Character, whatever its arguments and the services of its hooks
 * const backTo1985 = <Args, R>(cs: Changeset.Changeset<Character, Args, R>) =>
 *   cs.data.currentYear === 1985 ? cs : cs.pipe(Changeset.set("currentYear", 1985))
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() },
 *   actions: (Action) => ({
 *     arrive: Action.create({ accept: ["name"], change: backTo1985 }),
 *     goHome: Action.update({ change: backTo1985 })
 *   })
 * })
 * type Character = Resource.Record<typeof Character>
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Changeset<A, Args = {}, R = never, O = unknown> extends Pipeable {
  readonly [TypeId]: {
    readonly _R: (_: never) => R
    readonly _O: (_: never) => O
  }
  readonly resource: string
  readonly action: string
  readonly kind: Kind
  readonly data: A
  readonly attributes: Partial<A>
  /** The optional fields removed by `unset`: absent from the new state. */
  readonly removed: ReadonlyArray<string>
  readonly arguments: Args
  readonly errors: ReadonlyArray<string>
  readonly beforeHooks: ReadonlyArray<
    (cs: Changeset<A, Args, any>) => Effect.Effect<Changeset<A, Args, any>, unknown, any>
  >
  readonly afterHooks: ReadonlyArray<(record: A) => Effect.Effect<A, unknown, any>>
  /** The result set by {@link result}, which the Store call answers with when the action declares `success`. */
  readonly result: Option.Option<O>
  /** What {@link schedule} and {@link unschedule} asked of the record's schedules, in order. */
  readonly schedules: ReadonlyArray<ScheduleRequest>
}

/**
 * When and how a scheduled action runs ({@link schedule}): exactly one of
 * `after`, `at` and `cron`.
 *
 * **Example** (A reminder in a day, under a name of its own)
 *
 * ```ts
 * import type { Changeset } from "effect-gen-server"
 *
 * const remind: Changeset.ScheduleOptions = { after: "1 day", name: "remind", arguments: { note: "checkout" } }
 * ```
 *
 * @category models
 * @since 0.6.0
 */
export interface ScheduleOptions {
  /** Due this long after the commit that makes it. */
  readonly after?: Duration.Input | undefined
  /** Due at this time (a `Date`, or epoch milliseconds of the Store's `Clock`). */
  readonly at?: Date | number | undefined
  /**
   * A cron expression (Effect's `Cron`, UTC; 5 fields, or 6 with seconds):
   * due at its next time, and again at the next after each run.
   */
  readonly cron?: string | undefined
  /** The action's input (its accepted fields and arguments), as a Store call would give it. */
  readonly arguments?: { readonly [field: string]: unknown } | undefined
  /** The schedule's name, unique per record (default: the action's name): scheduling a name again replaces it. */
  readonly name?: string | undefined
}

/**
 * A record's pending schedule, as `Store.schedules` lists it.
 *
 * **Example** (When a record's schedules are due)
 *
 * ```ts
 * import type { Changeset } from "effect-gen-server"
 *
 * const describe = (s: Changeset.PendingSchedule) =>
 *   `${s.name}: ${s.action} at ${s.at.toISOString()}${s.cron === undefined ? "" : ` (cron ${s.cron})`}`
 * ```
 *
 * @category models
 * @since 0.6.0
 */
export interface PendingSchedule {
  readonly name: string
  readonly action: string
  /** The action's input: its accepted fields and arguments, decoded. */
  readonly arguments: { readonly [field: string]: unknown }
  /** When it is due next (a retry after a failed run included). */
  readonly at: Date
  readonly cron?: string
  /** Whether it runs now. */
  readonly running: boolean
}

/**
 * What a changeset asks of its record's schedules ({@link schedule},
 * {@link unschedule}).
 *
 * **Example** (Listing what a change schedules)
 *
 * ```ts
 * import { Changeset } from "effect-gen-server"
 *
 * const names = (cs: Changeset.Changeset.Any) =>
 *   cs.schedules.map((s) => s._tag === "Schedule" ? s.options.name ?? s.action : `-${s.name}`)
 * ```
 *
 * @category models
 * @since 0.6.0
 */
export type ScheduleRequest =
  | { readonly _tag: "Schedule"; readonly action: string; readonly options: ScheduleOptions }
  | { readonly _tag: "Unschedule"; readonly name: string }

/**
 * Helper types for changesets.
 *
 * @since 0.1.0
 */
export declare namespace Changeset {
  /**
   * Any changeset.
   *
   * @category models
   * @since 0.1.0
   */
  export type Any = Changeset<any, any, any, any>
  /**
   * The services a changeset's hooks require.
   *
   * @category models
   * @since 0.1.0
   */
  export type Services<C> = C extends Changeset<any, any, infer R> ? R : never
}

const variance = { _R: (_: never) => _, _O: (_: never) => _ }

const empty: ReadonlyArray<never> = []

// a class: one changeset is made per action, on the hot path
class ChangesetImpl<A, Args> {
  declare readonly [TypeId]: { readonly _R: (_: never) => any; readonly _O: (_: never) => any }
  readonly arguments: Args
  constructor(
    readonly resource: string,
    readonly action: string,
    readonly kind: Kind,
    readonly data: A,
    readonly attributes: Partial<A>,
    readonly removed: ReadonlyArray<string>,
    args: Args,
    readonly errors: ReadonlyArray<string>,
    readonly beforeHooks: ReadonlyArray<
      (cs: Changeset<A, Args, any>) => Effect.Effect<Changeset<A, Args, any>, unknown, any>
    >,
    readonly afterHooks: ReadonlyArray<(record: A) => Effect.Effect<A, unknown, any>>,
    readonly result: Option.Option<unknown>,
    readonly schedules: ReadonlyArray<ScheduleRequest>
  ) {
    this.arguments = args
  }
  pipe() {
    return pipeArguments(this, arguments)
  }
}
Object.defineProperty(ChangesetImpl.prototype, TypeId, { value: variance })

// the class holds what every changeset holds; its services `R` are a phantom of the interface, which the
// compiler cannot relate to the class: each changeset made below is cast once to the interface
const copy = <A, Args, R, O>(
  self: Changeset<A, Args, any, O>,
  patch: Partial<Changeset<A, Args, any, O>>
): Changeset<A, Args, R, O> =>
  new ChangesetImpl(
    self.resource,
    self.action,
    self.kind,
    self.data,
    patch.attributes ?? self.attributes,
    patch.removed ?? self.removed,
    self.arguments,
    patch.errors ?? self.errors,
    patch.beforeHooks ?? self.beforeHooks,
    patch.afterHooks ?? self.afterHooks,
    patch.result ?? self.result,
    patch.schedules ?? self.schedules
  ) as any

/**
 * Returns `true` if the value is a {@link Changeset}.
 *
 * **Example** (Guarding a value)
 *
 * ```ts
 * import { Changeset } from "effect-gen-server"
 *
 * Changeset.isChangeset({}) // => false
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isChangeset = (u: unknown): u is Changeset.Any => Predicate.hasProperty(u, TypeId)

/**
 * Creates a changeset. The library does this for every action; users need it
 * only to test their `change` functions in isolation.
 *
 * **Example** (Testing a change function directly)
 *
 * ```ts
 * import { Changeset } from "effect-gen-server"
 *
 * const cs = Changeset.make({
 *   resource: "Machine",
 *   action: "charge",
 *   kind: "update",
 *   data: { id: "1", name: "OUTATIME", hasPower: false },
 *   arguments: {}
 * })
 * const charged = Changeset.set(cs, "hasPower", true)
 * Changeset.get(charged, "hasPower") // => true
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <A, Args = {}>(options: {
  readonly resource: string
  readonly action: string
  readonly kind: Kind
  readonly data: A
  readonly arguments: Args
  readonly attributes?: Partial<A> | undefined
}): Changeset<A, Args> =>
  new ChangesetImpl<A, Args>(
    options.resource,
    options.action,
    options.kind,
    options.data,
    options.attributes ?? {},
    empty,
    options.arguments,
    empty,
    empty,
    empty,
    Option.none(),
    empty
  ) as any

/**
 * The value a field will have if the changeset is applied: the pending
 * attribute when one is set, `undefined` when it was `unset`, otherwise the
 * record's current value.
 *
 * **Example** (Branching on the current value)
 *
 * ```ts
 * import { Changeset } from "effect-gen-server"
 *
 * const cs = Changeset.make({ resource: "M", action: "a", kind: "update", data: { hasPower: true }, arguments: {} })
 * Changeset.get(cs, "hasPower") // => true
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const get: {
  <A, K extends keyof A>(field: K): <Args, R, O>(self: Changeset<A, Args, R, O>) => A[K]
  <A, Args, R, O, K extends keyof A>(self: Changeset<A, Args, R, O>, field: K): A[K]
} = dual(
  2,
  <A, Args, R, O, K extends keyof A>(self: Changeset<A, Args, R, O>, field: K): A[K] =>
    Object.prototype.hasOwnProperty.call(self.attributes, field)
      ? (self.attributes as A)[field]
      : self.removed.length > 0 && self.removed.includes(field as string)
      ? undefined as A[K]
      : (self.data as A)[field]
)

/**
 * The value `set` takes for the field `K` of `A`: its type without the
 * `undefined` an optional key adds (clear an optional field with
 * {@link unset}).
 *
 * **Example** (The value of an optional field)
 *
 * ```ts
 * import type { Changeset } from "effect-gen-server"
 *
 * type Character = { readonly name: string; readonly nickname?: string }
 * const nickname: Changeset.Value<Character, "nickname"> = "Doc" // string, not string | undefined
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export type Value<A, K extends keyof A> = Required<A>[K]

/**
 * The optional fields of `A` (`Schema.optionalKey`), which {@link unset} removes.
 *
 * **Example** (The fields a change may clear)
 *
 * ```ts
 * import type { Changeset } from "effect-gen-server"
 *
 * type Character = { readonly name: string; readonly nickname?: string }
 * const clearable: Changeset.OptionalField<Character> = "nickname"
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export type OptionalField<A> = { [K in keyof A]-?: {} extends Pick<A, K> ? K : never }[keyof A]

/** The fields `set` may name on records `A` (any name while `A` is not known yet). */
type SetField<A> = unknown extends A ? PropertyKey : keyof A

/** The values `set` may give the field `K` of records `A` (any value while `A` is not known yet). */
type SetValue<A, K> = unknown extends A ? unknown : Value<A, K & keyof A>

/** Makes the changeset argument fail where `field` or `value` does not fit the record `A`. */
type CheckSet<A, K, V> = [K] extends [keyof A] ? [V] extends [Value<A, K & keyof A>] ? unknown
  : `field '${K & string}' cannot hold the value given`
  : `unknown field '${K & string}'`

/**
 * Sets a field in the pending change. The value's type is the field's: an
 * optional field cannot be set to `undefined`; use {@link unset} to clear it.
 * Any value of the field's type is accepted, the record's own read-only
 * arrays and records included. Piped (`cs.pipe(Changeset.set(field, value))`)
 * the field and the value are checked against the record at the call, and a
 * mistake is reported there, in one line.
 *
 * **Example** (Charging a machine)
 *
 * ```ts
 * import { Changeset } from "effect-gen-server"
 *
 * const cs = Changeset.make({
 *   resource: "M",
 *   action: "charge",
 *   kind: "update",
 *   data: { hasPower: false },
 *   arguments: {}
 * })
 * const charged = cs.pipe(Changeset.set("hasPower", true))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const set: {
  <A, Args, R, O, const K extends NoInfer<SetField<A>>, const V extends NoInfer<SetValue<A, K>>>(
    field: K,
    value: V
  ): unknown extends A
    ? <B, Args2, R2, O2>(self: Changeset<B, Args2, R2, O2> & CheckSet<B, K, V>) => Changeset<B, Args2, R2, O2>
    : (self: Changeset<A, Args, R, O>) => Changeset<A, Args, R, O>
  <A, Args, R, O, K extends keyof A>(
    self: Changeset<A, Args, R, O>,
    field: K,
    value: Value<A, K>
  ): Changeset<A, Args, R, O>
} = dual(
  3,
  <A, Args, R, O, K extends keyof A>(self: Changeset<A, Args, R, O>, field: K, value: Value<A, K>) =>
    copy<A, Args, R, O>(self, {
      attributes: { ...self.attributes, [field]: value } as Partial<A>,
      ...(self.removed.length > 0 && self.removed.includes(field as string)
        ? { removed: self.removed.filter((f) => f !== field) }
        : {})
    })
)

/** Makes the changeset argument of the piped form fail where the field is not an optional one. */
type CheckOptional<A, K> = [K] extends [OptionalField<A>] ? unknown
  : { readonly "not an optional field": K; readonly optional: OptionalField<A> }

/**
 * Clears an optional field (`Schema.optionalKey`): the key is absent from
 * the new state. Only optional fields can be cleared; the compiler refuses
 * the others.
 *
 * **Example** (Forgetting a nickname)
 *
 * ```ts
 * import { Changeset } from "effect-gen-server"
 *
 * declare const cs: Changeset.Changeset<{ readonly name: string; readonly nickname?: string }>
 * const plain = Changeset.unset(cs, "nickname")
 * Changeset.get(plain, "nickname") // => undefined
 * ```
 *
 * @category combinators
 * @since 0.2.0
 */
export const unset: {
  <const K extends PropertyKey>(
    field: K
  ): <A extends { readonly [P in K]?: unknown }, Args, R, O>(
    self: Changeset<A, Args, R, O> & CheckOptional<A, K>
  ) => Changeset<A, Args, R, O>
  <A, Args, R, O, K extends OptionalField<A>>(self: Changeset<A, Args, R, O>, field: K): Changeset<A, Args, R, O>
} = dual(2, <A, Args, R, O, K extends OptionalField<A>>(self: Changeset<A, Args, R, O>, field: K) => {
  const attributes = { ...self.attributes }
  delete attributes[field]
  return copy<A, Args, R, O>(self, {
    attributes,
    removed: self.removed.includes(field as string) ? self.removed : [...self.removed, field as string]
  })
})

/**
 * Adds a validation message. A changeset with errors is not applied: the
 * caller gets an `ActionError` carrying every message.
 *
 * **Example** (Refusing an action)
 *
 * ```ts
 * import { Changeset } from "effect-gen-server"
 *
 * const cs = Changeset.make({ resource: "M", action: "go", kind: "update", data: { hasPower: false }, arguments: {} })
 * const refused = Changeset.addError(cs, "Power source needs topping up")
 * refused.errors // => ["Power source needs topping up"]
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const addError: {
  (message: string): <A, Args, R, O>(self: Changeset<A, Args, R, O>) => Changeset<A, Args, R, O>
  <A, Args, R, O>(self: Changeset<A, Args, R, O>, message: string): Changeset<A, Args, R, O>
} = dual(
  2,
  <A, Args, R, O>(self: Changeset<A, Args, R, O>, message: string) =>
    copy<A, Args, R, O>(self, { errors: [...self.errors, message] })
)

/**
 * Adds a hook that runs, inside the record's fiber, after the action's
 * `change` and before validation; it returns the changeset to continue with.
 * A failure of the hook refuses the action: with the failure itself where the
 * action declares it (its `error` Schema), otherwise with an `ActionError`.
 *
 * **Example** (Normalising a name before it is validated)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Changeset } from "effect-gen-server"
 *
 * const trim = <Args, R>(cs: Changeset.Changeset<{ name: string }, Args, R>) =>
 *   Changeset.before(cs, (cs) => Effect.succeed(Changeset.set(cs, "name", Changeset.get(cs, "name").trim())))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const before: {
  <A, Args, O, E, R2>(
    f: (cs: Changeset<A, Args, any, O>) => Effect.Effect<Changeset<A, Args, any, O>, E, R2>
  ): <R>(self: Changeset<A, Args, R, O>) => Changeset<A, Args, R | R2, O>
  <A, Args, R, O, E, R2>(
    self: Changeset<A, Args, R, O>,
    f: (cs: Changeset<A, Args, any, O>) => Effect.Effect<Changeset<A, Args, any, O>, E, R2>
  ): Changeset<A, Args, R | R2, O>
} = dual(2, <A, Args, R, O, E, R2>(
  self: Changeset<A, Args, R, O>,
  f: (cs: Changeset<A, Args, any, O>) => Effect.Effect<Changeset<A, Args, any, O>, E, R2>
) => copy<A, Args, R | R2, O>(self, { beforeHooks: [...self.beforeHooks, f as any] }))

/**
 * Adds a hook that runs, inside the record's fiber, once the new state has
 * been validated; it receives the new record and returns the record handed
 * back to the caller. The new state is committed (visible to other callers)
 * only after every `after` hook succeeded; a failure refuses the action (with
 * the failure itself where the action declares it, otherwise an
 * `ActionError`) and the record keeps its previous state.
 *
 * **Example** (Telling someone)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Changeset } from "effect-gen-server"
 *
 * const announce = <A, Args, R>(cs: Changeset.Changeset<A, Args, R>) =>
 *   cs.pipe(Changeset.after((record: A) => Effect.log("changed", record).pipe(Effect.as(record))))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const after: {
  <A, E, R2>(
    f: (record: A) => Effect.Effect<A, E, R2>
  ): <Args, R, O>(self: Changeset<A, Args, R, O>) => Changeset<A, Args, R | R2, O>
  <A, Args, R, O, E, R2>(
    self: Changeset<A, Args, R, O>,
    f: (record: A) => Effect.Effect<A, E, R2>
  ): Changeset<A, Args, R | R2, O>
} = dual(
  2,
  <A, Args, R, O, E, R2>(self: Changeset<A, Args, R, O>, f: (record: A) => Effect.Effect<A, E, R2>) =>
    copy<A, Args, R | R2, O>(self, { afterHooks: [...self.afterHooks, f] })
)

/** Makes the changeset argument of the piped form fail where the value does not fit the action's result. */
type CheckResult<O, V> = [V] extends [O] ? unknown
  : [O] extends [never] ? "the action declares no result (its `success` option)"
  : "the result given does not fit the action's `success` schema"

/**
 * Sets the result the action answers with. An action that declares
 * `success` (a Schema) makes its Store call succeed with the result instead
 * of the record; set it from the change or a `before` hook (an `after` hook
 * receives the record, not the changeset). Set again, the last value wins.
 * In the typed form of the action the value's type is checked against
 * `success`; whatever the form, the value is checked against the schema
 * before anything commits: a value it refuses fails the call with
 * `ValidationError` and the record is unchanged.
 *
 * **Example** (A rate limiter that answers how many calls are left)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Changeset, Resource, Store } from "effect-gen-server"
 *
 * const Bucket = Resource.make("Bucket", {
 *   fields: { id: Schema.String, tokens: Schema.Int },
 *   primaryKey: ["id"],
 *   actions: (Action) => ({
 *     take: Action.update({
 *       success: Schema.Struct({ allowed: Schema.Boolean, remaining: Schema.Int }),
 *       change: (cs) =>
 *         cs.data.tokens === 0
 *           ? Changeset.result(cs, { allowed: false, remaining: 0 })
 *           : cs.pipe(
 *             Changeset.set("tokens", cs.data.tokens - 1),
 *             Changeset.result({ allowed: true, remaining: cs.data.tokens - 1 })
 *           )
 *     })
 *   })
 * })
 *
 * // Effect<{ readonly allowed: boolean; readonly remaining: number }, ...>
 * const take = (id: string) => Store.update(Bucket, { id }, "take")
 * ```
 *
 * @category combinators
 * @since 0.6.0
 */
export const result: {
  <V>(value: V): <A, Args, R, O>(self: Changeset<A, Args, R, O> & CheckResult<O, V>) => Changeset<A, Args, R, O>
  <A, Args, R, O>(self: Changeset<A, Args, R, O>, value: NoInfer<O>): Changeset<A, Args, R, O>
} = dual(
  2,
  <A, Args, R, O>(self: Changeset<A, Args, R, O>, value: O) => copy<A, Args, R, O>(self, { result: Option.some(value) })
)

/**
 * Schedules an action of the same record to run later: `after` a duration,
 * `at` a time, or on a `cron` expression (recurring), with `arguments`, under
 * a `name` (default: the action's name; scheduling a name again replaces
 * it). The schedule is part of the commit that makes it: an action that
 * fails schedules nothing. When due, the action runs in the record's fiber
 * like any call (hooks, events, typed errors), and the schedule is consumed
 * in the same commit as that action's write. It wakes a hibernated record.
 * Destroying the record cancels its schedules.
 *
 * **Details**
 *
 * - Only update and destroy actions can be scheduled. What is wrong with a
 *   schedule (an unknown action, arguments that do not fit it, an invalid
 *   date or duration, a cron expression that does not parse) fails the
 *   action that made it with a `ValidationError`, and it commits nothing.
 * - A run that fails is retried (the resource's `scheduleRetry`, default:
 *   exponential from 1 second, 6 retries); when the retries run out the
 *   schedule is removed and `ScheduleFailed` is published.
 * - A run does not count as activity for `inactivityTimeout` unless the
 *   resource says so (`schedulesKeepAlive: true`).
 *
 * **Example** (A session that ends itself in an hour)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Changeset, Resource } from "effect-gen-server"
 *
 * const Session = Resource.make("Session", {
 *   fields: { id: Schema.String, user: Schema.String },
 *   primaryKey: ["id"],
 *   actions: (Action) => ({
 *     open: Action.create({
 *       accept: ["id", "user"],
 *       change: (cs) => Changeset.schedule(cs, "destroy", { after: "1 hour" })
 *     })
 *   })
 * })
 * ```
 *
 * @category combinators
 * @since 0.6.0
 */
export const schedule: {
  (
    action: string,
    options: ScheduleOptions
  ): <A, Args, R, O>(self: Changeset<A, Args, R, O>) => Changeset<A, Args, R, O>
  <A, Args, R, O>(self: Changeset<A, Args, R, O>, action: string, options: ScheduleOptions): Changeset<A, Args, R, O>
} = dual(
  3,
  <A, Args, R, O>(self: Changeset<A, Args, R, O>, action: string, options: ScheduleOptions) =>
    copy<A, Args, R, O>(self, { schedules: [...self.schedules, { _tag: "Schedule", action, options }] })
)

/**
 * Removes the record's schedule `name`, in the commit of the action (nothing
 * if there is none).
 *
 * **Example** (Cancelling a reminder once the cart is paid)
 *
 * ```ts
 * import { Changeset } from "effect-gen-server"
 *
 * const paid = <A, Args, R, O>(cs: Changeset.Changeset<A, Args, R, O>) => Changeset.unschedule(cs, "remind")
 * ```
 *
 * @category combinators
 * @since 0.6.0
 */
export const unschedule: {
  (name: string): <A, Args, R, O>(self: Changeset<A, Args, R, O>) => Changeset<A, Args, R, O>
  <A, Args, R, O>(self: Changeset<A, Args, R, O>, name: string): Changeset<A, Args, R, O>
} = dual(
  2,
  <A, Args, R, O>(self: Changeset<A, Args, R, O>, name: string) =>
    copy<A, Args, R, O>(self, { schedules: [...self.schedules, { _tag: "Unschedule", name }] })
)
