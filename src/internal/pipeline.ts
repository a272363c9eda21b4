/**
 * The action pipeline: change, `before` hooks, validation, `after` hooks.
 * Pure functions of (resource, action, state, input) returning Effects; the
 * record server decides what to commit.
 *
 * @internal
 */
import { Effect } from "effect"
import * as Changeset from "../Changeset.js"
import { ActionError, ValidationError } from "../Errors.js"
import type { Compiled, CompiledAction, Decoded } from "./resource.js"

/** @internal */
export interface Prepared {
  /** The validated new state (for a destroy: the record being destroyed). */
  readonly state: any
  readonly afterHooks: ReadonlyArray<(record: any) => Effect.Effect<any, unknown, any>>
}

const messageOf = (u: unknown): string => {
  if (typeof u === "object" && u !== null && "message" in u && typeof u.message === "string" && u.message !== "") {
    return u.message
  }
  if (typeof u === "object" && u !== null && "_tag" in u && typeof u._tag === "string") return u._tag
  return String(u)
}

const refused = (resource: Compiled, action: CompiledAction, errors: ReadonlyArray<string>, cause?: unknown) =>
  new ActionError({
    resource: resource.name,
    action: action.name,
    errors,
    message: `${resource.name}.${action.name} refused: ${errors.join("; ")}`,
    ...(cause === undefined ? {} : { cause })
  })

const hookFailed = (resource: Compiled, action: CompiledAction, stage: string) => (e: unknown) =>
  refused(resource, action, [`${stage} failed: ${messageOf(e)}`], e)

/**
 * Runs the change and `before` hooks and validates the new state. `data` is
 * the current record (update, destroy) or the accepted input with generated
 * fields (create). Defects (a throw, an `Effect.die`) are not caught: they
 * crash the record.
 *
 * @internal
 */
export const prepare = (
  resource: Compiled,
  action: CompiledAction,
  data: any,
  input: Decoded
): Effect.Effect<Prepared, ActionError | ValidationError, any> =>
  Effect.gen(function*() {
    let cs: Changeset.Changeset<any, any, any> = Changeset.make({
      resource: resource.name,
      action: action.name,
      kind: action.kind as Changeset.Kind,
      data,
      arguments: input.arguments,
      attributes: action.kind === "create" ? {} : input.attributes
    })
    const change = action.action.change
    if (change !== undefined) {
      const out = change(cs as any)
      cs = Effect.isEffect(out)
        ? yield* Effect.mapError(out as Effect.Effect<Changeset.Changeset.Any, unknown>, hookFailed(resource, action, "change"))
        : out
      if (!Changeset.isChangeset(cs)) {
        return yield* Effect.die(new TypeError(`${resource.name}.${action.name}: change did not return a Changeset`))
      }
    }
    if (cs.errors.length > 0) return yield* refused(resource, action, cs.errors)
    // before hooks may add further before hooks; run until none is left
    let done = 0
    while (done < cs.beforeHooks.length) {
      const hook = cs.beforeHooks[done++]!
      const next = yield* Effect.mapError(hook(cs), hookFailed(resource, action, "before hook"))
      if (!Changeset.isChangeset(next)) {
        return yield* Effect.die(new TypeError(`${resource.name}.${action.name}: a before hook did not return a Changeset`))
      }
      cs = next
      if (cs.errors.length > 0) return yield* refused(resource, action, cs.errors)
    }
    if (action.kind === "destroy") return { state: data, afterHooks: cs.afterHooks }
    const state = resource.validate({ ...cs.data, ...cs.attributes })
    if (state instanceof ValidationError) return yield* state
    return { state, afterHooks: cs.afterHooks }
  })

/**
 * Runs the `after` hooks in order, each receiving the previous one's record;
 * returns the record handed back to the caller.
 *
 * @internal
 */
export const runAfter = (
  resource: Compiled,
  action: CompiledAction,
  prepared: Prepared
): Effect.Effect<any, ActionError, any> => {
  if (prepared.afterHooks.length === 0) return Effect.succeed(prepared.state)
  return Effect.gen(function*() {
    let record = prepared.state
    for (const hook of prepared.afterHooks) {
      record = yield* Effect.mapError(hook(record), hookFailed(resource, action, "after hook"))
    }
    return record
  })
}
