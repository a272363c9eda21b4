/**
 * Lifecycle events of a data layer: one `PubSub`, its metrics, and the
 * publishing step records call synchronously when they commit.
 *
 * @internal
 */
import { type Context, Effect, PubSub, type Scope, Stream } from "effect"
import type * as Event from "../Event.js"
import * as Metrics from "../Metrics.js"

/** @internal */
export interface Events {
  /** Publishes an event (and counts it); never waits. */
  readonly publish: (event: Event.Event) => void
  /** Publishes an event without counting it (one counted by the process that committed it); never waits. */
  readonly relay: (event: Event.Event) => void
  readonly metrics: ReadonlyMap<string, Metrics.ResourceMetrics>
  readonly events: Stream.Stream<Event.Event>
  readonly subscribe: Effect.Effect<PubSub.Subscription<Event.Event>, never, Scope.Scope>
}

/**
 * The events of a data layer over `resources`, shut down with the current
 * scope. `eventBuffer`: how many events a subscriber may leave unread
 * (oldest dropped first); unbounded when absent. Dies with a `RangeError`
 * on a bad value.
 *
 * @internal
 */
export const make = (
  resources: Iterable<string>,
  eventBuffer: number | undefined,
  services: Context.Context<never>
): Effect.Effect<Events, never, Scope.Scope> =>
  Effect.gen(function*() {
    if (eventBuffer !== undefined && !(Number.isSafeInteger(eventBuffer) && eventBuffer > 0)) {
      return yield* Effect.die(
        new RangeError(
          `eventBuffer must be a positive integer, got ${JSON.stringify(eventBuffer) ?? String(eventBuffer)}`
        )
      )
    }
    const pubsub = yield* (eventBuffer === undefined
      ? PubSub.unbounded<Event.Event>()
      : PubSub.sliding<Event.Event>(eventBuffer))
    yield* Effect.addFinalizer(() => PubSub.shutdown(pubsub))
    const metrics = new Map([...resources].map((name) => [name, Metrics.forResource(name, services)]))
    const relay = (event: Event.Event) => {
      if (PubSub.publishUnsafe(pubsub, event) || eventBuffer === undefined || pubsub.shutdownFlag.current) return
      // full: `publishUnsafe` does not slide, so drop the oldest event as `PubSub.publish` would
      const sliding = pubsub.strategy as PubSub.SlidingStrategy<Event.Event>
      sliding.slidingPublishUnsafe(pubsub.pubsub, [event])
      sliding.completeSubscribersUnsafe(pubsub.pubsub, pubsub.subscribers)
    }
    const publish = (event: Event.Event) => {
      metrics.get(event.resource)!.event(event)
      relay(event)
    }
    return { publish, relay, metrics, events: Stream.fromPubSub(pubsub), subscribe: PubSub.subscribe(pubsub) }
  })
