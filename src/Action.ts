/**
 * Action definitions: the named create, update and destroy operations of a
 * resource.
 *
 * An action says which record fields its input may set (`accept`), which
 * extra `arguments` it takes (Schema fields, decoded from the input), which
 * failures of its own it declares (`error`, a Schema: they reach the caller
 * as they are, typed), and how it builds its change (`change`, returning a
 * `Changeset` or an Effect of one). Every resource also has the default
 * actions `create` and `update` (accepting every field), `destroy` and `read`
 * unless its `defaults` option lists fewer; declared actions add to them or
 * replace them by name.
 *
 * Declare actions in the typed form, `actions: (Action) => ({ ... })`: the
 * constructors handed in have the record type bound, so every change and
 * hook sees the record (read-only) and the compiler checks field names and
 * value types. The constructors of this module, used in an object of
 * actions, see the record as `any`.
 *
 * An action runs inside the record's own fiber and is atomic: if its change,
 * one of its hooks or the validation of the new state fails, the record keeps
 * its previous state and the caller gets a typed error.
 *
 * @since 0.1.0
 * @module
 */
import { type Effect, Predicate, type Schema } from "effect"
import type * as Changeset from "./Changeset.js"
import type { ActionError } from "./Errors.js"

/** The identifier every value of this module carries: private, see the `is*` guard. */
const TypeId = "~effect-gen-server/Action" as const

/**
 * The kind of an action.
 *
 * **Example** (Counting the actions that write)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { type Action, Changeset, Resource } from "effect-gen-server"
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
 * const writes = (kind: Action.Kind) => kind !== "read"
 * // create, update, destroy and charge
 * Object.values(Machine.actions).filter((action) => writes(action.kind)).length // => 4
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Kind = "create" | "update" | "destroy" | "read"

/**
 * The decoded arguments of an action with argument fields `Args`.
 *
 * **Example** (Typing a change written apart from its action)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { type Action, Changeset, Resource } from "effect-gen-server"
 *
 * const travelArguments = { targetYear: Schema.Int }
 *
 * // cs.arguments is { readonly targetYear: number }
 * const travel = (cs: Changeset.Changeset<Character, Action.Arguments<typeof travelArguments>>) =>
 *   Changeset.set(cs, "currentYear", cs.arguments.targetYear)
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() },
 *   actions: (Action) => ({ travelInTime: Action.update({ arguments: travelArguments, change: travel }) })
 * })
 * type Character = Resource.Record<typeof Character>
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Arguments<Args extends Schema.Struct.Fields> = Schema.Struct.Type<Args>

/**
 * An action's change: from the changeset the input built, the changeset to
 * apply, directly or as an Effect (whose failure refuses the action).
 *
 * **Example** (Refusing with a failed Effect)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { type Action, Changeset, Resource } from "effect-gen-server"
 *
 * const fields = { id: Schema.String, powerSource: Schema.optionalKey(Schema.String), hasPower: Schema.Boolean }
 * // the record type, from the fields (`Resource.Record<typeof Machine>` would be circular here)
 * type Machine = Schema.Struct.Type<typeof fields>
 *
 * // a failure refuses the action: the caller gets an ActionError, the record is unchanged
 * const charge: Action.Change<Machine, {}, never> = (cs) =>
 *   Changeset.get(cs, "powerSource") === undefined
 *     ? Effect.fail("no power source fitted")
 *     : Effect.succeed(Changeset.set(cs, "hasPower", true))
 *
 * const Machine = Resource.make("Machine", {
 *   fields,
 *   primaryKey: ["id"],
 *   actions: (Action) => ({ charge: Action.update({ change: charge }) })
 * })
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Change<A, Args extends Schema.Struct.Fields, R> = (
  cs: Changeset.Changeset<A, Arguments<Args>>
) =>
  | Changeset.Changeset<A, Arguments<Args>, R>
  | Effect.Effect<Changeset.Changeset<A, Arguments<Args>, R>, unknown, R>

/**
 * An action of kind `K` on records of type `A`, whose input may set the fields
 * `Accept` and carries the arguments `Args`; `R` is what its change and hooks
 * require.
 *
 * **Example** (Listing a resource's actions)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { type Action, Changeset, Resource } from "effect-gen-server"
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
 * const describe = (name: string, action: Action.Action.Any) =>
 *   `${name} (${action.kind}): accepts ${
 *     action.accept === "*" ? "every field" : action.accept.join(", ") || "nothing"
 *   }`
 *
 * Object.entries(Machine.actions).map(([name, action]) => describe(name, action))
 * // => ["create (create): accepts every field", ..., "charge (update): accepts nothing"]
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Action<
  out K extends Kind,
  in out A,
  Accept extends string,
  Args extends Schema.Struct.Fields,
  R,
  out E = never,
  out O = never
> {
  readonly [TypeId]: {
    readonly _R: (_: never) => R
    readonly _A: (_: A) => A
    readonly _E: (_: never) => E
    readonly _O: (_: never) => O
  }
  readonly kind: K
  /** `"*"`: every field of the resource. */
  readonly accept: ReadonlyArray<Accept> | "*"
  readonly arguments: Args
  /** The Schema of the action's own failures (its `error` option), if any. */
  readonly error: Schema.Top | undefined
  /** The Schema of the action's result (its `success` option), if any: the Store call then answers with the result. */
  readonly success: Schema.Top | undefined
  readonly change: Change<A, Args, R> | undefined
}

/**
 * Helper types for actions.
 *
 * @since 0.1.0
 */
export declare namespace Action {
  /**
   * Any action.
   *
   * @category models
   * @since 0.1.0
   */
  export type Any = Action<Kind, any, string, any, any, any, any>
  /**
   * The services an action requires.
   *
   * @category models
   * @since 0.1.0
   */
  export type Services<T> = T extends Action<any, any, any, any, infer R, any>
    ? IsAny<R> extends true ? never : R extends ServicesOf<infer C> ? ChangeServices<C> : R
    : never
  /**
   * The errors an action's own change and hooks can make a Store call fail
   * with: its declared `error` and `ActionError` (an `addError` message or
   * any undeclared failure). Default actions have none. For an action whose
   * type is not known (`Action.Any`) it is `unknown`.
   *
   * @category models
   * @since 0.2.0
   */
  export type Error<T> = T extends Action<any, any, any, any, any, infer E, any> ? IsAny<E> extends true ? unknown : E
    : never
  /**
   * The result of an action that declares `success`: the type of its
   * schema; `never` for an action without one (its Store call answers with
   * the record).
   *
   * @category models
   * @since 0.6.0
   */
  export type Success<T> = T extends Action<any, any, any, any, any, any, infer O> ? O : never
}

/**
 * The options of `Action.create`, `Action.update` and `Action.destroy`.
 *
 * **Example** (Options written apart from the action)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { type Action, Changeset, Resource } from "effect-gen-server"
 *
 * const fields = { id: Schema.String, name: Schema.String, nickname: Schema.optionalKey(Schema.String) }
 * // the record type, from the fields (`Resource.Record<typeof Character>` would be circular here)
 * type Character = Schema.Struct.Type<typeof fields>
 *
 * const renameOptions: Action.Options<Character, "nickname", {}, never> = {
 *   accept: ["nickname"],
 *   change: (cs) =>
 *     Changeset.get(cs, "nickname") === "Chicken" ? Changeset.addError(cs, "Nobody calls me chicken") : cs
 * }
 *
 * const Character = Resource.make("Character", {
 *   fields,
 *   primaryKey: ["id"],
 *   actions: (Action) => ({ rename: Action.update(renameOptions) })
 * })
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Options<A, Accept extends string, Args extends Schema.Struct.Fields, R, E = never> {
  /** The record fields the input may set; none unless given. */
  readonly accept?: ReadonlyArray<Accept> | undefined
  /** Extra input, decoded with these Schema fields into `cs.arguments`. */
  readonly arguments?: Args | undefined
  /**
   * The action's own failures, as a Schema (a `Schema.TaggedError` class, a
   * `Schema.Union` of them): a change or hook failing with a value it accepts
   * fails the Store call with exactly that value, typed in the call's error
   * channel. Any other failure is an `ActionError`.
   */
  readonly error?: Schema.Schema<E> | undefined
  /** The action's result, as a Schema: see {@link ConstructorOptions}. */
  readonly success?: Schema.Top | undefined
  readonly change?: Change<A, Args, R> | undefined
}

/**
 * The services of an action, known by the type `C` of its `change`: read
 * from `C`'s result only when they are needed (by `Store.layer`), so that the
 * compiler need not look into a change while it types the resource the
 * change belongs to. This is what lets a hook call its own resource
 * (`Store.update(Room, ...)` inside `Room`'s definition).
 *
 * **Example** (The services of a typed action)
 *
 * ```ts
 * import { Context, Effect, Schema } from "effect"
 * import { type Action, Changeset, Resource } from "effect-gen-server"
 *
 * class Ledger extends Context.Service<Ledger, { readonly log: (n: number) => Effect.Effect<void> }>()("Ledger") {}
 *
 * const Counter = Resource.make("Counter", {
 *   fields: { id: Schema.String, n: Schema.Int },
 *   primaryKey: ["id"],
 *   actions: (Action) => ({
 *     bump: Action.update({
 *       change: (cs) => Effect.as(Ledger.use((ledger) => ledger.log(cs.data.n)), Changeset.set(cs, "n", cs.data.n + 1))
 *     })
 *   })
 * })
 *
 * type Needs = Action.Action.Services<typeof Counter.actions.bump> // Ledger
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export interface ServicesOf<out C> {
  readonly "~change": C
}

/** The services a change of type `C` requires, read from what it returns. */
type ChangeServices<C> = C extends (cs: any) => infer X ? ResultServices<X> : never

/**
 * A change whose result is `any` (its own type error, a cast) requires no
 * service we can name: `never`, so that the mistake is reported where it is,
 * not again as a layer requiring `unknown`.
 */
type ResultServices<X> = IsAny<X> extends true ? never
  : X extends Effect.Effect<infer CS, any, infer R> ? R | Changeset.Changeset.Services<CS>
  : X extends Changeset.Changeset<any, any, infer R> ? R
  : NotAChangeset

/**
 * What a change that returns neither a `Changeset` nor an Effect of one
 * requires: no layer provides it, so `Store.layer` reports the mistake.
 */
interface NotAChangeset {
  readonly "a change must return a Changeset or an Effect of one": unique symbol
}

/**
 * The options the constructors take: those of {@link Options}, with the
 * change known by its type `C` (see {@link ServicesOf}).
 *
 * **Example** (Options of a typed action)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Changeset, Resource } from "effect-gen-server"
 *
 * class TooFar extends Schema.TaggedError<TooFar>()("TooFar", { year: Schema.Int }) {}
 *
 * const Traveller = Resource.make("Traveller", {
 *   fields: { id: Schema.String, year: Schema.Int },
 *   primaryKey: ["id"],
 *   actions: (Action) => ({
 *     travel: Action.update({
 *       arguments: { year: Schema.Int },
 *       error: TooFar,
 *       change: (cs) =>
 *         cs.arguments.year < 1885
 *           ? Effect.fail(new TooFar({ year: cs.arguments.year }))
 *           : Changeset.set(cs, "year", cs.arguments.year)
 *     })
 *   })
 * })
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export interface ConstructorOptions<
  A,
  Accept extends string,
  Args extends Schema.Struct.Fields,
  C,
  S extends Schema.Top,
  O extends Schema.Top = never
> {
  /** The record fields the input may set; none unless given. */
  readonly accept?: ReadonlyArray<Accept> | undefined
  /** Extra input, decoded with these Schema fields into `cs.arguments`. */
  readonly arguments?: Args | undefined
  /** The action's own failures, as a Schema: see {@link Options}. */
  readonly error?: S | undefined
  /**
   * The action's result, as a Schema. The change or a `before` hook sets it
   * (`Changeset.result`), and the Store call succeeds with it instead of the
   * record: on every data layer, across the wire on a cluster (encoded with
   * this schema). A result the schema refuses fails the call with
   * `ValidationError`, and the action commits nothing; an action that sets
   * no result answers `undefined`, which only a schema accepting it
   * (`Schema.Undefined`, `Schema.optional`) lets through.
   */
  readonly success?: O | undefined
  readonly change?: (C & ((cs: Changeset.Changeset<A, Arguments<Args>, never, O["Type"]>) => any)) | undefined
}

/**
 * The constructors handed to the typed form of a resource's `actions`
 * (`actions: (Action) => ({ ... })`), with the record type `A` bound: every
 * `change`, `before` and `after` hook sees `A` (read-only), and
 * `Changeset.get / set / unset` check field names and value types against it.
 *
 * **Example** (The typed form)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Changeset, Resource } from "effect-gen-server"
 *
 * const Counter = Resource.make("Counter", {
 *   fields: { id: Schema.String, count: Schema.Int },
 *   primaryKey: ["id"],
 *   actions: (Action) => ({
 *     add: Action.update({
 *       arguments: { amount: Schema.Int },
 *       // cs.data is { readonly id: string; readonly count: number }
 *       change: (cs) => Changeset.set(cs, "count", cs.data.count + cs.arguments.amount)
 *     })
 *   })
 * })
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export interface Constructors<A> {
  readonly create: Constructor<"create", A>
  readonly update: Constructor<"update", A>
  readonly destroy: Constructor<"destroy", A>
}

/**
 * One constructor of {@link Constructors}: an action of kind `K` on records
 * of type `A`.
 *
 * **Example** (A constructor passed around)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { type Action, Changeset, Resource } from "effect-gen-server"
 *
 * type Lamp = { readonly id: string; readonly on: boolean }
 * const toggle = (update: Action.Constructor<"update", Lamp>) =>
 *   update({ change: (cs) => Changeset.set(cs, "on", !cs.data.on) })
 *
 * const Lamp = Resource.make("Lamp", {
 *   fields: { id: Schema.String, on: Schema.Boolean },
 *   primaryKey: ["id"],
 *   actions: (Action) => ({ toggle: toggle(Action.update) })
 * })
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export type Constructor<K extends Kind, A> = <
  const Accept extends keyof A & string = never,
  const Args extends Schema.Struct.Fields = {},
  C = {},
  S extends Schema.Top = never,
  O extends Schema.Top = never
>(
  options?: ConstructorOptions<A, Accept, Args, C, S, O>
) => Action<K, A, NoInfer<Accept>, NoInfer<Args>, ServicesOf<NoInfer<C>>, S["Type"] | ActionError, O["Type"]>

/** An action without a `change` has its services inferred as `any` from its context: it needs none. */
type IsAny<T> = 0 extends 1 & T ? true : false

const variance: any = { _R: (_: never) => _, _A: (_: unknown) => _, _E: (_: never) => _, _O: (_: never) => _ }

const make = <K extends Kind>(kind: K) =>
<
  A = any,
  const Accept extends keyof A & string = never,
  const Args extends Schema.Struct.Fields = {},
  C = {},
  S extends Schema.Top = never,
  O extends Schema.Top = never
>(
  options: ConstructorOptions<A, Accept, Args, C, S, O> = {}
): Action<K, A, NoInfer<Accept>, NoInfer<Args>, ServicesOf<NoInfer<C>>, S["Type"] | ActionError, O["Type"]> => ({
  [TypeId]: variance,
  kind,
  accept: options.accept ?? [],
  arguments: options.arguments ?? ({} as Args),
  error: options.error,
  success: options.success,
  // the change is typed by the record and the action's own input in the typed form, which the untyped
  // `Action.Any` a runtime holds cannot say
  change: options.change as any
})

/**
 * Defines a create action.
 *
 * **Example** (Creating a character from a name alone)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Changeset, Resource } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() },
 *   actions: (Action) => ({
 *     arrive: Action.create({
 *       accept: ["name"],
 *       change: (cs) => Changeset.set(cs, "currentYear", 1985)
 *     })
 *   })
 * })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const create = make("create")

/**
 * Defines an update action.
 *
 * **Gotchas**
 *
 * - Outside the typed form the record is `any`: prefer
 *   `actions: (Action) => ({ ... })`. Giving the record type explicitly,
 *   `Action.update<Character>({ arguments, change })`, turns off the
 *   inference of the other type parameters (TypeScript infers all of a
 *   call's type arguments or none), so `cs.arguments` is then `{}`; the typed
 *   form needs no type argument and keeps the arguments' types.
 *
 * **Example** (Travelling in time)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Changeset, Resource } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   actions: (Action) => ({
 *     travelInTime: Action.update({
 *       arguments: { targetYear: Schema.Int },
 *       change: (cs) => Changeset.set(cs, "currentYear", cs.arguments.targetYear)
 *     })
 *   })
 * })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const update = make("update")

/**
 * Defines a destroy action. The first destroy action named `destroy` (the
 * default one unless replaced) is the primary destroy action, which expiry
 * runs.
 *
 * **Example** (Refusing to destroy a powered machine)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Changeset, Resource } from "effect-gen-server"
 *
 * class StillPowered extends Schema.TaggedError<StillPowered>()("StillPowered", { machine: Schema.String }) {}
 *
 * const Machine = Resource.make("Machine", {
 *   fields: { id: Schema.String, hasPower: Schema.Boolean },
 *   primaryKey: ["id"],
 *   actions: (Action) => ({
 *     // the caller can `Effect.catchTag("StillPowered", ...)`
 *     scrap: Action.destroy({
 *       error: StillPowered,
 *       change: (cs) => cs.data.hasPower ? Effect.fail(new StillPowered({ machine: cs.data.id })) : cs
 *     })
 *   })
 * })
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const destroy = make("destroy")

/**
 * Returns `true` if the value is an {@link Action}.
 *
 * **Example** (Guarding)
 *
 * ```ts
 * import { Action } from "effect-gen-server"
 *
 * Action.isAction(Action.update()) // => true
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isAction = (u: unknown): u is Action.Any => Predicate.hasProperty(u, TypeId)

/** @internal */
export const defaults = {
  create: {
    [TypeId]: variance,
    kind: "create",
    accept: "*",
    arguments: {},
    error: undefined,
    success: undefined,
    change: undefined
  },
  update: {
    [TypeId]: variance,
    kind: "update",
    accept: "*",
    arguments: {},
    error: undefined,
    success: undefined,
    change: undefined
  },
  destroy: {
    [TypeId]: variance,
    kind: "destroy",
    accept: [],
    arguments: {},
    error: undefined,
    success: undefined,
    change: undefined
  },
  read: {
    [TypeId]: variance,
    kind: "read",
    accept: [],
    arguments: {},
    error: undefined,
    success: undefined,
    change: undefined
  }
} as const satisfies Record<string, Action.Any>

/**
 * The constructors handed to the typed form of `actions`.
 *
 * @internal
 */
export const constructors: Constructors<any> = { create, update, destroy }
