/**
 * Helpers for testing your own resources: the Schema and the `Arbitrary` of
 * an action's valid input (for `it.effect.prop` in `@effect/vitest`), and a
 * Store layer that also records every lifecycle event.
 *
 * Inputs are derived from the resource's field schemas (their checks
 * included) and the action's argument schemas. Generated fields are left out
 * by default, so generated keys do not collide.
 *
 * **Example** (A property of your own action)
 *
 * ```ts
 * import { assert, it } from "@effect/vitest"
 * import { Effect, Schema } from "effect"
 * import { Action, Changeset, Resource, Store, Testing } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() },
 *   actions: {
 *     travelInTime: Action.update({
 *       arguments: { targetYear: Schema.Int },
 *       change: (cs) => Changeset.set(cs, "currentYear", cs.arguments.targetYear)
 *     })
 *   }
 * })
 *
 * it.effect.prop("travelling lands in the target year", [Testing.arbitrary(Character)], ([input]) =>
 *   Effect.gen(function*() {
 *     const c = yield* Store.create(Character, "create", input)
 *     const moved = yield* Store.update(Character, c, "travelInTime", { targetYear: 1955 })
 *     assert.strictEqual(moved.currentYear, 1955)
 *   }).pipe(Effect.provide(Testing.layer([Character]))))
 * ```
 *
 * @since 0.1.0
 * @module
 */
import { Arbitrary, Context, Effect, Layer, PubSub, Schema } from "effect"
import type * as Event from "./Event.js"
import type * as Resource from "./Resource.js"
import * as Store from "./Store.js"

/**
 * The Schema of the valid input of a resource's action (default `"create"`):
 * the accepted fields (on create, required unless optional or generated; on
 * update, all optional) and the action's arguments.
 *
 * **Example** (Validating a request body with it)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Resource, Testing } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const decode = Schema.decodeUnknownSync(Testing.inputSchema(Character))
 * decode({ name: "Marty", currentYear: 1985 })
 * ```
 *
 * @category schemas
 * @since 0.1.0
 */
export const inputSchema = <R extends Resource.Any, const N extends keyof Resource.Actions<R> & string = "create">(
  resource: R,
  action?: N,
  options?: { readonly includeGenerated?: boolean | undefined }
): Schema.Codec<Resource.Input<R, N>, unknown> => {
  const name = action ?? "create"
  const definition = (resource.actions as { readonly [name: string]: any })[name]
  if (definition === undefined) throw new Error(`${resource.name} has no action ${JSON.stringify(name)}`)
  const fields = resource.fields as Schema.Struct.Fields
  const accepted: ReadonlyArray<string> = definition.accept === "*" ? Object.keys(fields) : definition.accept
  const generated = new Set(Object.keys(resource.generated))
  const out: { [name: string]: Schema.Top } = {}
  for (const k of accepted) {
    if (generated.has(k) && options?.includeGenerated !== true) continue
    const field = Schema.toType(fields[k]!)
    out[k] = definition.kind === "create" && !generated.has(k) ? field : Schema.optionalKey(field)
  }
  Object.assign(out, definition.arguments)
  // the struct of the action's input, built field by field: its type is `Resource.Input<R, N>`'s, which the
  // compiler cannot compute from a value
  return Schema.Struct(out) as any
}

/**
 * An `Arbitrary` of valid inputs of a resource's action (default
 * `"create"`), for `it.effect.prop`.
 *
 * **Example** (Sampling inputs)
 *
 * ```ts
 * import { Arbitrary, Schema } from "effect"
 * import { Resource, Testing } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const inputs = Arbitrary.sampleEffect(Testing.arbitrary(Character), { count: 3, seed: 42 })
 * ```
 *
 * @category arbitraries
 * @since 0.1.0
 */
export const arbitrary = <R extends Resource.Any, const N extends keyof Resource.Actions<R> & string = "create">(
  resource: R,
  action?: N,
  options?: { readonly includeGenerated?: boolean | undefined }
): Arbitrary.Arbitrary<Resource.Input<R, N>> =>
  // the input schema's type is the action's input (see `inputSchema`)
  Arbitrary.schema(inputSchema(resource, action, options)) as any

/**
 * Every lifecycle event published since the test layer was built.
 *
 * **Example** (Reading the recorder directly)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Resource, Store, Testing } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const events = Effect.gen(function*() {
 *   const recorder = yield* Testing.Recorder
 *   yield* Store.create(Character, "create", { name: "Marty", currentYear: 1985 })
 *   return yield* recorder.events
 * }).pipe(Effect.provide(Testing.layer([Character])))
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export class Recorder extends Context.Service<Recorder, {
  readonly events: Effect.Effect<ReadonlyArray<Event.Event>>
}>()("effect-gen-server/Testing/Recorder") {}

/**
 * The events recorded so far, oldest first.
 *
 * **Example** (Asserting on events)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Resource, Store, Testing } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const tags = Effect.gen(function*() {
 *   yield* Store.create(Character, "create", { name: "Marty", currentYear: 1985 })
 *   return (yield* Testing.recorded).map((e) => e._tag) // ["Created"]
 * }).pipe(Effect.provide(Testing.layer([Character])))
 * ```
 *
 * @category accessors
 * @since 0.1.0
 */
export const recorded: Effect.Effect<ReadonlyArray<Event.Event>, never, Recorder> = Recorder.use((r) => r.events)

/**
 * A fresh Store for the given resources plus a {@link Recorder} of its
 * events. Provide it per test, so every test has its own registry,
 * supervisor and clock (with `it.effect`, the `TestClock`).
 *
 * **Example** (A test layer)
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Resource, Store, Testing } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const test = Store.create(Character, "create", { name: "Marty", currentYear: 1985 }).pipe(
 *   Effect.provide(Testing.layer([Character]))
 * )
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = <const Resources extends ReadonlyArray<Resource.Any>>(
  resources: Resources,
  options?: Store.LayerOptions
): Layer.Layer<Store.Store | Recorder, never, Exclude<Resource.Services<Resources[number]>, Store.Store>> => {
  const recorder = Layer.effect(
    Recorder,
    Effect.gen(function*() {
      const all: Array<Event.Event> = []
      const subscription = yield* Store.subscribe
      return Recorder.of({
        events: Effect.map(PubSub.takeUpTo(subscription, Number.MAX_SAFE_INTEGER), (fresh) => {
          all.push(...fresh)
          return all.slice()
        })
      })
    })
  )
  // the Store's requirements over `resources`, plus the recorder: the compiler cannot relate the generic ones
  return Layer.provideMerge(recorder, Store.layer(resources, options)) as any
}
