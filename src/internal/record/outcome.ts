/**
 * The outcome of a record's step, and the one synchronous fast path of the
 * record core: a step that needs no Effect returns its outcome at once.
 *
 * Most actions have no `before`/`after` hook and a synchronous `change`:
 * running them as an Effect would cost an allocation per step and a trip
 * through the fiber's run loop per request. So a step returns a {@link Step}:
 * an {@link Outcome} when it finished synchronously, an Effect of one when it
 * needed to run hooks, an effectful change or a write to storage.
 *
 * **Invariants**
 *
 * - An `Outcome` is always a plain object with a `_tag` (never an Effect), so
 *   `Effect.isEffect` tells the two apart; nothing else may be returned.
 * - The Effect of a step never fails and never dies for a user's reason: a
 *   refusal is `Refused`, a defect is `Crashed` ({@link fromExit} is the one
 *   classification). It is interrupted only when the fiber running it is.
 * - Only {@link map}, {@link flatMap} and {@link toEffect} look inside a step:
 *   the steps themselves are written as functions of outcomes.
 *
 * @internal
 */
import { Cause, Effect, Exit } from "effect"
import type { StoreError } from "../../Errors.js"

/** @internal */
export type Outcome<A, E = StoreError> =
  | { readonly _tag: "Ok"; readonly value: A }
  | { readonly _tag: "Refused"; readonly error: E }
  | { readonly _tag: "Crashed"; readonly cause: Cause.Cause<unknown> }

/** An outcome now, or an Effect of one. @internal */
export type Step<A, E = StoreError> = Outcome<A, E> | Effect.Effect<Outcome<A, E>, never, any>

/** @internal */
export const ok = <A>(value: A): Outcome<A, never> => ({ _tag: "Ok", value })

/** @internal */
export const refused = <E>(error: E): Outcome<never, E> => ({ _tag: "Refused", error })

/** @internal */
export const crashed = (cause: Cause.Cause<unknown>): Outcome<never, never> => ({ _tag: "Crashed", cause })

/** @internal */
export const isEffect = <A, E>(step: Step<A, E>): step is Effect.Effect<Outcome<A, E>, never, any> =>
  Effect.isEffect(step)

/** @internal */
export const map = <A, E, B, E2>(step: Step<A, E>, f: (outcome: Outcome<A, E>) => Outcome<B, E2>): Step<B, E2> =>
  isEffect(step) ? Effect.map(step, f) : f(step)

/** @internal */
export const flatMap = <A, E, B, E2>(step: Step<A, E>, f: (outcome: Outcome<A, E>) => Step<B, E2>): Step<B, E2> =>
  isEffect(step) ? Effect.flatMap(step, (outcome) => toEffect(f(outcome))) : f(step)

/** @internal */
export const toEffect = <A, E>(step: Step<A, E>): Effect.Effect<Outcome<A, E>, never, any> =>
  isEffect(step) ? step : Effect.succeed(step)

/**
 * What an action's effectful part came to: success; a typed failure is a
 * refusal; a defect, or an interruption of the action itself (not of the
 * fiber running it, which `exit` would not report), is a crash.
 *
 * @internal
 */
export const fromExit = <A, E>(exit: Exit.Exit<A, E>): Outcome<A, E> => {
  if (Exit.isSuccess(exit)) return ok(exit.value)
  if (!Cause.hasDies(exit.cause) || Cause.hasInterrupts(exit.cause)) {
    const error = Cause.findErrorOption(exit.cause)
    if (error._tag === "Some") return refused(error.value)
  }
  return crashed(exit.cause)
}

/** A failed outcome in words (a refusal's message, a crash's defect), for logs and `Destroyed.failure`. @internal */
export const describe = <E>(outcome: Exclude<Outcome<unknown, E>, { readonly _tag: "Ok" }>): string => {
  if (outcome._tag === "Refused") {
    const error = outcome.error as { readonly _tag: string; readonly message?: unknown }
    return typeof error.message === "string" ? `${error._tag}: ${error.message}` : error._tag
  }
  const defect = Cause.squash(outcome.cause)
  return `crashed: ${defect instanceof Error ? defect.message : String(defect)}`
}
