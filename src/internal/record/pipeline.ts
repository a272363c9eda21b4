/**
 * The action pipeline: change, `before` hooks, validation, `after` hooks.
 * Functions of (resource, action, state, input); the record server decides
 * what to commit.
 *
 * The pipeline runs synchronously as far as it can: an action whose change
 * returns a Changeset (not an Effect) and that has no hooks costs no Effect
 * at all. A change or hook that throws is a defect: it is not caught here.
 *
 * @internal
 */
import { Effect, Option, Schema } from "effect"
import * as Changeset from "../../Changeset.js"
import { ActionError, ValidationError } from "../../Errors.js"
import type { Compiled, CompiledAction, Decoded } from "../resource.js"
import * as Schedules from "./schedules.js"

/** @internal */
export interface Prepared {
  /** The validated new state (for a destroy: the record being destroyed). */
  readonly state: any
  readonly afterHooks: ReadonlyArray<(record: any) => Effect.Effect<any, unknown, any>>
  /** The action's result (`Changeset.result`, checked against its `success`); `undefined` without `success`. */
  readonly result: unknown
  /** An update that changes no field (and so no key): nothing to store unless its schedules change, no event. */
  readonly unchanged: boolean
  /** The record's schedules as the change leaves them; `undefined`: as they were. */
  readonly schedules: ReadonlyArray<Schedules.Pending> | undefined
}

/**
 * Where the pipeline reads what it needs of the record besides its state
 * (its schedules, and the time), only when a change schedules something:
 * the write port, which has both. Nothing is read or made on the path of an
 * action that schedules nothing.
 *
 * @internal
 */
export interface Context<Rec> {
  readonly schedules: (rec: Rec) => ReadonlyArray<Schedules.Pending>
  readonly time: (rec: Rec) => number
}

/** @internal */
export type Refusal = ActionError | ValidationError

/** A result now, or an Effect of one. @internal */
export type Result<A> = A | Refusal | Effect.Effect<A, Refusal, any>

/** @internal */
export const isRefusal = (u: unknown): u is Refusal => u instanceof ActionError || u instanceof ValidationError

/** @internal */
export const toEffect = <A>(result: Result<A>): Effect.Effect<A, Refusal, any> =>
  Effect.isEffect(result)
    ? result as Effect.Effect<A, Refusal, any>
    : isRefusal(result)
    ? Effect.fail(result)
    : Effect.succeed(result as A)

const messageOf = (u: unknown): string => {
  if (typeof u === "object" && u !== null && "message" in u && typeof u.message === "string" && u.message !== "") {
    return u.message
  }
  if (typeof u === "object" && u !== null && "_tag" in u && typeof u._tag === "string") return u._tag
  return String(u)
}

const codecs = new WeakMap<object, (u: unknown) => unknown>()

/**
 * The failure of a change or hook as a JSON value, so that the `ActionError`
 * carrying it is Schema-encodable (`Schema.toCodecJson`): a Schema class
 * instance (a `Schema.TaggedError`, one of the library's errors) is encoded
 * with its own codec, another `Error` becomes `{ name, message }` (with its
 * `_tag` if it has one), anything else a JSON copy or its string.
 */
const encodeCause = (u: unknown): unknown => {
  if (u === null || typeof u === "string" || typeof u === "boolean") return u
  if (typeof u === "number") return Number.isFinite(u) ? u : String(u)
  if (typeof u === "object") {
    const constructor = (u as { readonly constructor?: unknown }).constructor
    if (typeof constructor === "function" && Schema.isSchema(constructor)) {
      let encode = codecs.get(constructor)
      if (encode === undefined) {
        // an error class is a plain schema (no encoding services), which the compiler cannot see in `Schema.Top`
        encode = Schema.encodeUnknownSync(Schema.toCodecJson(constructor as Schema.Top) as any)
        codecs.set(constructor, encode)
      }
      try {
        return encode(u)
      } catch {
        // not encodable by its own Schema: described below
      }
    }
    if (u instanceof Error) {
      const tag = (u as { readonly _tag?: unknown })._tag
      return typeof tag === "string"
        ? { _tag: tag, name: u.name, message: u.message }
        : { name: u.name, message: u.message }
    }
  }
  try {
    const json = JSON.stringify(u)
    if (json !== undefined) return JSON.parse(json)
  } catch {
    // cycles, bigints: its string below
  }
  return String(u)
}

const refused = (resource: Compiled, action: CompiledAction, errors: ReadonlyArray<string>, cause?: unknown) =>
  new ActionError({
    resource: resource.name,
    action: action.name,
    errors,
    message: `${resource.name}.${action.name} refused: ${errors.join("; ")}`,
    ...(cause === undefined ? {} : { cause: encodeCause(cause) })
  })

const declaredGuards = new WeakMap<Schema.Top, (u: unknown) => boolean>()

/** Whether `e` is one of the action's declared errors (its `error` Schema accepts it). */
const isDeclared = (action: CompiledAction, e: unknown): boolean => {
  const schema = action.action.error
  if (schema === undefined) return false
  let guard = declaredGuards.get(schema)
  if (guard === undefined) {
    guard = Schema.is(schema) as (u: unknown) => boolean
    declaredGuards.set(schema, guard)
  }
  return guard(e)
}

/** A failure of a change or hook: a declared error passes through as is, any other is an `ActionError`. */
const hookFailed = (resource: Compiled, action: CompiledAction, stage: string) => (e: unknown) =>
  isDeclared(action, e) ? e as ActionError : refused(resource, action, [`${stage} failed: ${messageOf(e)}`], e)

const notAChangeset = (resource: Compiled, action: CompiledAction, what: string) =>
  new TypeError(`${resource.name}.${action.name}: ${what} did not return a Changeset`)

const finish = (
  resource: Compiled,
  action: CompiledAction,
  cs: Changeset.Changeset.Any,
  context: Context<any>,
  rec: unknown
): Prepared | Refusal => {
  let result: unknown
  if (action.checkResult !== undefined) {
    result = Option.getOrUndefined(cs.result)
    const invalid = action.checkResult(result, Option.isSome(cs.result))
    if (invalid !== undefined) return invalid
  }
  let schedules: ReadonlyArray<Schedules.Pending> | undefined
  if (cs.schedules.length > 0) {
    const next = Schedules.apply(resource, action.name, context.schedules(rec), cs.schedules, context.time(rec))
    if (next instanceof ValidationError) return next
    schedules = next
  }
  if (action.kind === "destroy") {
    return { state: cs.data, afterHooks: cs.afterHooks, result, unchanged: false, schedules: undefined }
  }
  if (action.kind === "update" && isUnchanged(cs)) {
    return { state: cs.data, afterHooks: cs.afterHooks, result, unchanged: true, schedules }
  }
  let state
  if (cs.removed.length > 0) {
    // `unset` fields: absent from the new state, which is validated whole
    const next = { ...cs.data, ...cs.attributes }
    for (const field of cs.removed) delete next[field]
    state = resource.validate(next)
  } else {
    state = action.kind === "create"
      ? resource.validate({ ...cs.data, ...cs.attributes })
      : resource.validateChanges(cs.data, cs.attributes)
  }
  if (state instanceof ValidationError) return state
  if (action.kind === "create" || touchesKey(resource, cs)) {
    const tooLong = resource.checkKeySize(resource.encodeKey(state))
    if (tooLong !== undefined) return tooLong
  }
  return { state, afterHooks: cs.afterHooks, result, unchanged: false, schedules }
}

/**
 * Whether an update's changeset changes no field: every value it sets is the
 * record's own (by `Object.is`: an equal copy of an array or object is a
 * change) and every field it unsets is absent already.
 */
const isUnchanged = (cs: Changeset.Changeset.Any): boolean => {
  const data = cs.data
  for (const k in cs.attributes) {
    if (!Object.is(cs.attributes[k], data[k]) || !Object.prototype.hasOwnProperty.call(data, k)) return false
  }
  for (const k of cs.removed) if (Object.prototype.hasOwnProperty.call(data, k)) return false
  return true
}

/** Whether a change sets or unsets a key field (only then can the key grow). */
const touchesKey = (resource: Compiled, cs: Changeset.Changeset.Any): boolean => {
  for (const k of resource.keyFields) {
    if (k in cs.attributes || cs.removed.includes(k)) return true
  }
  return false
}

const afterChange = (
  resource: Compiled,
  action: CompiledAction,
  cs: Changeset.Changeset.Any,
  context: Context<any>,
  rec: unknown
): Result<Prepared> => {
  if (!Changeset.isChangeset(cs)) throw notAChangeset(resource, action, "change")
  if (cs.errors.length > 0) return refused(resource, action, cs.errors)
  if (cs.beforeHooks.length === 0) return finish(resource, action, cs, context, rec)
  return Effect.gen(function*() {
    // before hooks may add further before hooks; run until none is left
    let done = 0
    while (done < cs.beforeHooks.length) {
      const hook = cs.beforeHooks[done++]!
      const next = yield* Effect.mapError(hook(cs), hookFailed(resource, action, "before hook"))
      if (!Changeset.isChangeset(next)) return yield* Effect.die(notAChangeset(resource, action, "a before hook"))
      cs = next
      if (cs.errors.length > 0) return yield* refused(resource, action, cs.errors)
    }
    const prepared = finish(resource, action, cs, context, rec)
    return isRefusal(prepared) ? yield* prepared : prepared
  })
}

/**
 * Runs the change and `before` hooks and validates the new state. `data` is
 * the current record (update, destroy) or the accepted input with generated
 * fields (create). Throws if the change throws.
 *
 * @internal
 */
export const prepare = <Rec>(
  resource: Compiled,
  action: CompiledAction,
  data: any,
  input: Decoded,
  context: Context<Rec>,
  rec: Rec
): Result<Prepared> => {
  const cs: Changeset.Changeset<any, any, any> = Changeset.make({
    resource: resource.name,
    action: action.name,
    kind: action.kind as Changeset.Kind,
    data,
    arguments: input.arguments,
    attributes: action.kind === "create" ? {} : input.attributes
  })
  const change = action.action.change
  if (change === undefined) return afterChange(resource, action, cs, context, rec)
  // the change is typed by its resource's record and its action's input, which the runtime holds untyped
  const out = change(cs as any)
  if (!Effect.isEffect(out)) return afterChange(resource, action, out, context, rec)
  return Effect.flatMap(
    Effect.mapError(
      out as Effect.Effect<Changeset.Changeset.Any, unknown, any>,
      hookFailed(resource, action, "change")
    ),
    (next) => toEffect(afterChange(resource, action, next, context, rec))
  )
}

/**
 * Runs the `after` hooks in order, each receiving the previous one's record;
 * returns the record handed back to the caller.
 *
 * @internal
 */
export const runAfter: (
  resource: Compiled,
  action: CompiledAction,
  prepared: Prepared
) => Effect.Effect<any, ActionError, any> = Effect.fnUntraced(function*(resource, action, prepared) {
  let record = prepared.state
  for (const hook of prepared.afterHooks) {
    record = yield* Effect.mapError(hook(record), hookFailed(resource, action, "after hook"))
  }
  return record
})
