/**
 * The outcome of a record server's step, and the one fast path of the
 * record server: a step that needs no Effect returns its outcome at once.
 *
 * Most actions have no `before`/`after` hook and a synchronous `change`:
 * running them as an Effect would cost an allocation per step and a trip
 * through the fiber's run loop per request. So a step returns a {@link Step}:
 * an {@link Outcome} when it finished synchronously, an Effect of one when it
 * needed to run hooks or an effectful change.
 *
 * **Invariants**
 *
 * - An `Outcome` is always a plain object with a `_tag` (never an Effect), so
 *   `Effect.isEffect` tells the two apart; nothing else may be returned.
 * - The Effect of a step never fails and never dies for a user's reason: a
 *   refusal is `Refused`, a defect is `Crashed`. It is interrupted only when
 *   the record's fiber is.
 * - Only {@link map}, {@link flatMap} and {@link toEffect} look inside a step:
 *   the steps themselves are written as functions of outcomes.
 *
 * @internal
 */
import type { Cause } from "effect"
import { Effect } from "effect"
import type { StoreError } from "../Errors.js"

/** @internal */
export type Outcome<A> =
  | { readonly _tag: "Ok"; readonly value: A }
  | { readonly _tag: "Refused"; readonly error: StoreError }
  | { readonly _tag: "Crashed"; readonly cause: Cause.Cause<unknown> }

/** An outcome now, or an Effect of one. @internal */
export type Step<A> = Outcome<A> | Effect.Effect<Outcome<A>, never, any>

/** @internal */
export const ok = <A>(value: A): Outcome<A> => ({ _tag: "Ok", value })

/** @internal */
export const refused = (error: StoreError): Outcome<never> => ({ _tag: "Refused", error })

/** @internal */
export const crashed = (cause: Cause.Cause<unknown>): Outcome<never> => ({ _tag: "Crashed", cause })

/** @internal */
export const isEffect = <A>(step: Step<A>): step is Effect.Effect<Outcome<A>, never, any> => Effect.isEffect(step)

/** @internal */
export const map = <A, B>(step: Step<A>, f: (outcome: Outcome<A>) => Outcome<B>): Step<B> =>
  isEffect(step) ? Effect.map(step, f) : f(step)

/** @internal */
export const flatMap = <A, B>(step: Step<A>, f: (outcome: Outcome<A>) => Step<B>): Step<B> =>
  isEffect(step) ? Effect.flatMap(step, (outcome) => toEffect(f(outcome))) : f(step)

/** @internal */
export const toEffect = <A>(step: Step<A>): Effect.Effect<Outcome<A>, never, any> =>
  isEffect(step) ? step : Effect.succeed(step)
