/**
 * Spans only where someone can see them.
 *
 * Without a tracing backend, Effect's default tracer (`Tracer.nativeTracer`)
 * keeps spans in memory and exports them nowhere, yet a span still costs
 * about 5 µs, a quarter of an update. So the Store's operations and record
 * actions get their span only when the fiber's tracer is another one (an
 * OpenTelemetry layer, a test tracer).
 *
 * @internal
 */
import { Effect, type Fiber, Tracer } from "effect"

const traced = (fiber: Fiber.Fiber<unknown, unknown>) => fiber.getRef(Tracer.Tracer) !== Tracer.nativeTracer

/**
 * `effect` in a span named `name`, when a tracing backend is installed; a
 * child of `parent` when given (a record's action continues its caller's
 * span across the mailbox), else of the current span.
 *
 * @internal
 */
export const spanned = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  name: string,
  attributes: { readonly [key: string]: unknown },
  parent?: Tracer.AnySpan | undefined
): Effect.Effect<A, E, R> => Effect.withFiber((fiber) => spannedIn(fiber, effect, name, attributes, parent))

/**
 * {@link spanned}, for a caller that holds the running fiber already.
 *
 * @internal
 */
export const spannedIn = <A, E, R>(
  fiber: Fiber.Fiber<unknown, unknown>,
  effect: Effect.Effect<A, E, R>,
  name: string,
  attributes: { readonly [key: string]: unknown },
  parent?: Tracer.AnySpan | undefined
): Effect.Effect<A, E, R> =>
  traced(fiber)
    ? Effect.withSpan(
      effect,
      name,
      parent === undefined
        ? { attributes, captureStackTrace: false }
        : { attributes, parent, captureStackTrace: false }
    )
    : effect

/** The span a call made from `fiber` continues in the record's fiber, when a tracing backend is installed. @internal */
export const callerSpan = (fiber: Fiber.Fiber<unknown, unknown>): Tracer.AnySpan | undefined =>
  traced(fiber) ? fiber.cache.span : undefined
