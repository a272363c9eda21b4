/**
 * What the inspector keeps while it runs, all of it bounded: one subscription
 * to the Store's events feeding a ring of the most recent ones and the
 * bounded mailbox of each open event stream, a ring of metric samples taken
 * at a fixed interval, and the counts of records per resource, read with
 * `Store.read` at most once per interval however many pages ask.
 *
 * Costs on the store: one more event subscriber (an O(1) step per event: a
 * ring slot, a counter, and one filter test per open stream), one scan of
 * each resource per count, a handful of metric reads per sample. The
 * inspector never calls a record: it reads (`Store.read`), which is not
 * activity, so looking at a record never keeps it alive nor wakes it.
 *
 * @internal
 */
import { Clock, Deferred, Effect, Metric, PubSub, Schedule, type Scope } from "effect"
import * as Event from "../../Event.js"
import * as Metrics from "../../Metrics.js"
import * as Query from "../../Query.js"
import type * as Resource from "../../Resource.js"
import * as Store from "../../Store.js"
import { type Entry as RingEntry, EntryRing, Ring } from "./ring.js"

/** An event as the inspector received it: its number (from 1) and when it arrived (the Clock's ms). @internal */
export type Entry = RingEntry<Event.Event>

/** Which events an event stream wants: all, one resource's, or one record's. @internal */
export interface Interest {
  readonly resource?: string | undefined
  /** The record's key fields, decoded; only with `resource`. */
  readonly key?: { readonly [field: string]: unknown } | undefined
}

/** One open event stream: the events it wants, in a bounded ring, read from `cursor` on. @internal */
export interface Listener {
  readonly interest: Interest
  readonly ring: EntryRing<Event.Event>
  cursor: number
}

/** Counts of one resource. @internal */
export interface Counts {
  readonly resource: string
  /** The records `Store.read` finds: on the durable and cluster layers, the stored ones. */
  readonly records: number | null
  /** Why `records` could not be counted. */
  readonly error?: string
  /** Records with a fiber, in this process (from `Metrics.records` less `Metrics.hibernating`). */
  readonly awake: number
  /** Records hibernating, in this process (`Metrics.hibernating`). */
  readonly hibernating: number
}

/** One resource's metrics at one sample: gauges as they were, counters since the start of the process. @internal */
export interface ResourceSample {
  readonly records: number
  readonly hibernating: number
  readonly creates: number
  readonly updates: number
  readonly destroys: number
  readonly restarts: number
  readonly failures: number
  readonly wakes: number
  /** Calls served (`Metrics.callDuration`'s count) and their total duration in milliseconds. */
  readonly calls: number
  readonly callMillis: number
  /** Events the inspector received for the resource, from every process, since it started. */
  readonly events: number
}

/** A sample of every resource's metrics. @internal */
export interface Sample {
  readonly at: number
  readonly resources: { readonly [resource: string]: ResourceSample }
}

/** The options of {@link make}, checked by the caller. @internal */
export interface Options {
  readonly recentEvents: number
  readonly listenerBuffer: number
  readonly sampleMillis: number
  readonly samples: number
}

/** @internal */
export interface Monitor {
  readonly resources: ReadonlyArray<Resource.Any>
  readonly byName: ReadonlyMap<string, Resource.Any>
  readonly recent: EntryRing<Event.Event>
  readonly samples: Ring<Sample>
  readonly sampleMillis: number
  /** The Store's time now, by the Clock the inspector was built with (epoch millis). */
  readonly time: () => number
  /** Registers an event stream for the scope. */
  readonly listen: (interest: Interest) => Effect.Effect<Listener, never, Scope.Scope>
  /** The events a stream has not read yet, and how many it missed (its ring overflowed). */
  readonly drain: (listener: Listener) => { readonly entries: ReadonlyArray<Entry>; readonly dropped: number }
  readonly counts: Effect.Effect<ReadonlyArray<Counts>>
  /** Completed when the inspector starts closing, before its server stops: event streams end. */
  readonly closing: Deferred.Deferred<void>
  /** Ends every event stream, and waits (a bounded number of turns) until they have ended. */
  readonly close: Effect.Effect<void>
}

const sameValueZero = (a: unknown, b: unknown) => a === b || (a !== a && b !== b)

/** Whether an event is one an event stream wants. @internal */
export const matches = (interest: Interest, event: Event.Event): boolean => {
  if (interest.resource === undefined) return true
  if (interest.resource !== event.resource) return false
  if (interest.key === undefined) return true
  const key = event.key as { readonly [field: string]: unknown }
  for (const field in interest.key) {
    const want = interest.key[field]
    const got = key[field]
    if (!sameValueZero(want, got) && !(want instanceof Date && got instanceof Date && +want === +got)) return false
  }
  return true
}

/** The handles of one resource's metrics, made once. */
const metricsOf = (resource: string) => {
  const attributes = { resource }
  return {
    records: Metric.withAttributes(Metrics.records, attributes),
    hibernating: Metric.withAttributes(Metrics.hibernating, attributes),
    creates: Metric.withAttributes(Metrics.creates, attributes),
    updates: Metric.withAttributes(Metrics.updates, attributes),
    destroys: Event.DestroyReason.literals.map((reason) =>
      Metric.withAttributes(Metrics.destroys, { resource, reason })
    ),
    restarts: Metric.withAttributes(Metrics.restarts, attributes),
    failures: Metric.withAttributes(Metrics.failures, attributes),
    wakes: Metric.withAttributes(Metrics.wakes, attributes),
    calls: Metric.withAttributes(Metrics.callDuration, attributes)
  }
}

/**
 * The inspector's state over the Store in the context, for the scope: its
 * subscription is live once this returns, and its fibers end with the scope.
 *
 * @internal
 */
export const make = Effect.fnUntraced(function*(
  resources: ReadonlyArray<Resource.Any>,
  options: Options
) {
  const store = yield* Store.Store
  const clock = yield* Clock.Clock
  const byName = new Map(resources.map((resource) => [resource.name, resource]))
  const recent = new EntryRing<Event.Event>(options.recentEvents)
  const samples = new Ring<Sample>(options.samples)
  const listeners = new Set<Listener>()
  // each resource's count, as a mutable cell: one map lookup per event
  const received = new Map<string, { n: number }>(resources.map((resource) => [resource.name, { n: 0 }]))
  const closing = yield* Deferred.make<void>()
  let seq = 0

  // one subscription, read in batches: a busy store costs a ring slot and a counter per event
  const subscription = yield* Store.subscribe
  // and, after each batch, the consumer yields: on a busy store the events of everything that ran meanwhile
  // make the next batch (one wake-up for many events), and no event waits long enough to age in the heap
  yield* Effect.forkScoped(Effect.forever(
    Effect.map(PubSub.takeAll(subscription), (events) => {
      const at = clock.currentTimeMillisUnsafe()
      for (const event of events) {
        recent.push(++seq, at, event)
        const count = received.get(event.resource)
        if (count !== undefined) count.n++
        for (const listener of listeners) if (matches(listener.interest, event)) listener.ring.push(seq, at, event)
      }
    }).pipe(Effect.andThen(Effect.yieldNow))
  ))

  const handles = resources.map((resource) => ({ name: resource.name, metrics: metricsOf(resource.name) }))
  const sample = Effect.gen(function*() {
    const at = yield* Clock.currentTimeMillis
    const out: { [resource: string]: ResourceSample } = {}
    for (const { metrics, name } of handles) {
      const calls = yield* Metric.value(metrics.calls)
      let destroys = 0
      for (const destroyed of metrics.destroys) destroys += (yield* Metric.value(destroyed)).count
      out[name] = {
        records: (yield* Metric.value(metrics.records)).value,
        hibernating: (yield* Metric.value(metrics.hibernating)).value,
        creates: (yield* Metric.value(metrics.creates)).count,
        updates: (yield* Metric.value(metrics.updates)).count,
        destroys,
        restarts: (yield* Metric.value(metrics.restarts)).count,
        failures: (yield* Metric.value(metrics.failures)).count,
        wakes: (yield* Metric.value(metrics.wakes)).count,
        calls: calls.count,
        callMillis: calls.sum,
        events: received.get(name)?.n ?? 0
      }
    }
    samples.push({ at, resources: out })
  })
  yield* Effect.forkScoped(Effect.repeat(sample, Schedule.spaced(options.sampleMillis)))

  const countOne = (resource: Resource.Any) =>
    Effect.gen(function*() {
      const metrics = handles.find((h) => h.name === resource.name)!.metrics
      const live = (yield* Metric.value(metrics.records)).value
      const hibernating = (yield* Metric.value(metrics.hibernating)).value
      const read = yield* Effect.result(Store.read(Query.make(resource)))
      const base = { resource: resource.name, awake: Math.max(0, live - hibernating), hibernating }
      return read._tag === "Success"
        ? { ...base, records: read.success.length }
        : { ...base, records: null, error: read.failure.message }
    })
  let cached: { readonly at: number; readonly counts: ReadonlyArray<Counts> } | undefined
  const counts = Effect.suspend(() => {
    const now = clock.currentTimeMillisUnsafe()
    if (cached !== undefined && now - cached.at < options.sampleMillis) return Effect.succeed(cached.counts)
    return Effect.forEach(resources, countOne).pipe(
      Effect.tap((counts) => Effect.sync(() => (cached = { at: now, counts }))),
      Effect.provideService(Store.Store, store)
    )
  })

  const listen = (interest: Interest) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        const listener: Listener = { interest, ring: new EntryRing<Event.Event>(options.listenerBuffer), cursor: 0 }
        listeners.add(listener)
        return listener
      }),
      (listener) => Effect.sync(() => listeners.delete(listener))
    )

  // the streams end when `closing` completes: give their fibers the turns they need to end their responses
  const close = Deferred.succeed(closing, undefined).pipe(
    Effect.andThen(Effect.whileLoop({
      while: () => listeners.size > 0 && turns++ < 1_000,
      body: () => Effect.yieldNow,
      step: () => {}
    }))
  )
  let turns = 0

  const drain = (listener: Listener) => {
    const entries = listener.ring.since(listener.cursor)
    const dropped = listener.ring.pushed - listener.cursor - entries.length
    listener.cursor = listener.ring.pushed
    return { entries, dropped }
  }

  return {
    resources,
    byName,
    recent,
    samples,
    sampleMillis: options.sampleMillis,
    time: () => clock.currentTimeMillisUnsafe(),
    listen,
    drain,
    counts,
    closing,
    close
  } satisfies Monitor as Monitor
})
