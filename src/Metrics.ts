/**
 * The metrics a GenServer data layer keeps, as Effect `Metric`s.
 *
 * Every series carries a `resource` attribute (destroys also carry `reason`).
 * They are updated synchronously where the events happen, in the Metric
 * registry of the context the Store layer was built in, so they appear in
 * `Metric.snapshot` and in any exporter (Prometheus, OTLP) set up there.
 *
 * **Costs**: one counter update per lifecycle event and one histogram update
 * per update or destroy call; reads by key and `read` record nothing.
 *
 * @since 0.1.0
 * @module
 */
import { type Context, Metric } from "effect"
import type * as Event from "./Event.js"

/**
 * Live records per resource.
 *
 * **Example** (How many characters are alive)
 *
 * ```ts
 * import { Effect, Metric, Schema } from "effect"
 * import { Metrics, Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const live = Effect.gen(function*() {
 *   yield* Store.create(Character, "create", { name: "Marty", currentYear: 1985 })
 *   const gauge = yield* Metric.value(Metric.withAttributes(Metrics.records, { resource: "Character" }))
 *   return gauge.value // => 1
 * }).pipe(Effect.provide(Store.layer([Character])))
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const records = Metric.gauge("effect_gen_server_records", {
  description: "Live records per resource"
})

/**
 * Records created.
 *
 * **Example** (Characters created so far)
 *
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Metrics } from "effect-gen-server"
 *
 * const created = Effect.map(
 *   Metric.value(Metric.withAttributes(Metrics.creates, { resource: "Character" })),
 *   (state) => state.count
 * )
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const creates = Metric.counter("effect_gen_server_creates_total", {
  description: "Records created",
  incremental: true
})

/**
 * Update actions committed.
 *
 * **Example** (Update rate of a resource)
 *
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Metrics } from "effect-gen-server"
 *
 * const machineUpdates = Metric.withAttributes(Metrics.updates, { resource: "Machine" })
 * const sample = Effect.map(Metric.value(machineUpdates), (state) => state.count)
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const updates = Metric.counter("effect_gen_server_updates_total", {
  description: "Update actions committed",
  incremental: true
})

/**
 * Records destroyed, by `reason` (`action`, `inactivity`, `lifetime`).
 *
 * **Example** (Records that expired for inactivity)
 *
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Metrics } from "effect-gen-server"
 *
 * const idleExpiries = Effect.map(
 *   Metric.value(Metric.withAttributes(Metrics.destroys, { resource: "Character", reason: "inactivity" })),
 *   (state) => state.count
 * )
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const destroys = Metric.counter("effect_gen_server_destroys_total", {
  description: "Records destroyed, by reason",
  incremental: true
})

/**
 * Records restarted after a crash.
 *
 * **Example** (Alerting on crashes)
 *
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Metrics } from "effect-gen-server"
 *
 * const check = Effect.gen(function*() {
 *   const { count } = yield* Metric.value(Metric.withAttributes(Metrics.restarts, { resource: "Machine" }))
 *   if (count > 0) yield* Effect.logWarning(`Machine records restarted ${count} times`)
 * })
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const restarts = Metric.counter("effect_gen_server_restarts_total", {
  description: "Records restarted after a crash",
  incremental: true
})

/**
 * Scheduled actions run (`Changeset.schedule`), by `outcome`: `"ok"` (its
 * commit made), `"failed"` (refused or crashed: retried, or given up).
 *
 * **Example** (Schedules that failed)
 *
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Metrics } from "effect-gen-server"
 *
 * const failedRuns = Effect.map(
 *   Metric.value(Metric.withAttributes(Metrics.schedulesFired, { resource: "Cart", outcome: "failed" })),
 *   (state) => state.count
 * )
 * ```
 *
 * @category metrics
 * @since 0.6.0
 */
export const schedulesFired = Metric.counter("effect_gen_server_schedules_fired_total", {
  description: "Scheduled actions run, by outcome",
  incremental: true
})

/**
 * Schedules given up after their retries (each also a `ScheduleFailed`
 * event).
 *
 * **Example** (Schedules given up)
 *
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Metrics } from "effect-gen-server"
 *
 * const givenUp = Effect.map(
 *   Metric.value(Metric.withAttributes(Metrics.schedulesFailed, { resource: "Cart" })),
 *   (state) => state.count
 * )
 * ```
 *
 * @category metrics
 * @since 0.6.0
 */
export const schedulesFailed = Metric.counter("effect_gen_server_schedules_failed_total", {
  description: "Schedules given up after their retries",
  incremental: true
})

/**
 * Schedules pending, over the records of a resource this process holds.
 *
 * **Example** (Pending schedules)
 *
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Metrics } from "effect-gen-server"
 *
 * const pending = Effect.map(
 *   Metric.value(Metric.withAttributes(Metrics.schedulesPending, { resource: "Cart" })),
 *   (state) => state.value
 * )
 * ```
 *
 * @category metrics
 * @since 0.6.0
 */
export const schedulesPending = Metric.gauge("effect_gen_server_schedules_pending", {
  description: "Schedules pending, over the records this process holds"
})

/**
 * Records removed after a crash (restart intensity exceeded, policy
 * `"never"`, or a failed restart).
 *
 * **Example** (Records lost after a crash)
 *
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Metrics } from "effect-gen-server"
 *
 * const lost = Effect.map(
 *   Metric.value(Metric.withAttributes(Metrics.failures, { resource: "Character" })),
 *   (state) => state.count
 * )
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const failures = Metric.counter("effect_gen_server_failures_total", {
  description: "Records removed after a crash",
  incremental: true
})

/**
 * Requests a record server found waiting in its mailbox each time it took
 * from it (the size of each batch it served).
 *
 * **Example** (The largest batch served)
 *
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Metrics } from "effect-gen-server"
 *
 * const largestBatch = Effect.map(
 *   Metric.value(Metric.withAttributes(Metrics.mailboxDepth, { resource: "Machine" })),
 *   (histogram) => histogram.max
 * )
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const mailboxDepth = Metric.histogram("effect_gen_server_mailbox_depth", {
  description: "Requests taken from a mailbox at once",
  boundaries: Metric.exponentialBoundaries({ start: 1, factor: 2, count: 12 })
})

/**
 * Records hibernating now, per resource (`hibernateAfter`): no fiber, no
 * mailbox, only their state and deadlines.
 *
 * **Example** (How many records sleep)
 *
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Metrics } from "effect-gen-server"
 *
 * const sleeping = Effect.map(
 *   Metric.value(Metric.withAttributes(Metrics.hibernating, { resource: "Character" })),
 *   (gauge) => gauge.value
 * )
 * ```
 *
 * @category metrics
 * @since 0.2.0
 */
export const hibernating = Metric.gauge("effect_gen_server_hibernating", {
  description: "Records hibernating (no fiber, no mailbox) per resource"
})

/**
 * Hibernated records woken by a request, per resource.
 *
 * **Example** (Wake-ups so far)
 *
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Metrics } from "effect-gen-server"
 *
 * const woken = Effect.map(
 *   Metric.value(Metric.withAttributes(Metrics.wakes, { resource: "Character" })),
 *   (counter) => counter.count
 * )
 * ```
 *
 * @category metrics
 * @since 0.2.0
 */
export const wakes = Metric.counter("effect_gen_server_wakes_total", {
  description: "Hibernated records woken by a request",
  incremental: true
})

/**
 * Stored records of a durable resource that could not be loaded (not
 * decodable, no migration, a migration that failed) and were moved to the
 * quarantine table, per resource.
 *
 * **Example** (Alerting on quarantined records)
 *
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Metrics } from "effect-gen-server"
 *
 * const quarantined = Effect.map(
 *   Metric.value(Metric.withAttributes(Metrics.quarantined, { resource: "Cart" })),
 *   (counter) => counter.count
 * )
 * ```
 *
 * @category metrics
 * @since 0.3.0
 */
export const quarantined = Metric.counter("effect_gen_server_quarantined_total", {
  description: "Stored records that could not be loaded and were moved to the quarantine table",
  incremental: true
})

/**
 * Time from a call's arrival in a mailbox to its reply, in milliseconds
 * (updates and destroys).
 *
 * **Example** (Mean time to a reply)
 *
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Metrics } from "effect-gen-server"
 *
 * const meanMillis = Effect.map(
 *   Metric.value(Metric.withAttributes(Metrics.callDuration, { resource: "Character" })),
 *   (histogram) => histogram.count === 0 ? 0 : histogram.sum / histogram.count
 * )
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const callDuration = Metric.histogram("effect_gen_server_call_duration_ms", {
  description: "Milliseconds from a call's arrival in a mailbox to its reply",
  boundaries: Metric.exponentialBoundaries({ start: 0.01, factor: 2, count: 20 })
})

/**
 * The metrics of one resource, bound to a context. Machinery of the data
 * layers' event hub, not part of the API: the series above are what to read.
 *
 * **Example** (Recording by hand)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Metrics } from "effect-gen-server"
 *
 * const program = Effect.gen(function*() {
 *   const metrics: Metrics.ResourceMetrics = Metrics.forResource("Character", yield* Effect.context<never>())
 *   metrics.batch(3) // a record server took 3 requests from its mailbox at once
 *   metrics.call(0.25) // a call was answered 0.25 ms after it arrived
 * })
 * ```
 *
 * @category models
 * @since 0.1.0
 * @internal
 */
export interface ResourceMetrics {
  readonly event: (event: Event.Event) => void
  readonly batch: (size: number) => void
  readonly call: (millis: number) => void
  /** A record hibernated (`1`) or woke (`-1`). */
  readonly sleep: (delta: 1 | -1) => void
  /** A stored record was loaded (it is live, with no `Created`). */
  readonly restored: () => void
  /** A stored record could not be loaded and was quarantined. */
  readonly quarantined: () => void
  /** The number of pending schedules changed by `delta`. */
  readonly pending: (delta: number) => void
  /** A scheduled action ran: committed (`true`) or failed. */
  readonly fired: (ok: boolean) => void
}

/**
 * Binds the metrics of a resource to the context whose Metric registry
 * receives them. Machinery of the data layers' event hub, not part of the
 * API: the series above are what to read.
 *
 * **Example** (Reading the series of a store)
 *
 * ```ts
 * import { Effect, Metric, Schema } from "effect"
 * import { Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * const program = Effect.gen(function*() {
 *   yield* Store.create(Character, "create", { name: "Marty", currentYear: 1985 })
 *   const snapshot = yield* Metric.snapshot
 *   return snapshot.filter((m) => m.id.startsWith("effect_gen_server"))
 * }).pipe(Effect.provide(Store.layer([Character])))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 * @internal
 */
export const forResource = (resource: string, context: Context.Context<never>): ResourceMetrics => {
  const attributes = { resource }
  const live = Metric.withAttributes(records, attributes)
  const created = Metric.withAttributes(creates, attributes)
  const updated = Metric.withAttributes(updates, attributes)
  const destroyed = {
    action: Metric.withAttributes(destroys, { resource, reason: "action" }),
    inactivity: Metric.withAttributes(destroys, { resource, reason: "inactivity" }),
    lifetime: Metric.withAttributes(destroys, { resource, reason: "lifetime" })
  }
  const restarted = Metric.withAttributes(restarts, attributes)
  const failed = Metric.withAttributes(failures, attributes)
  const depth = Metric.withAttributes(mailboxDepth, attributes)
  const duration = Metric.withAttributes(callDuration, attributes)
  const asleep = Metric.withAttributes(hibernating, attributes)
  const woken = Metric.withAttributes(wakes, attributes)
  const quarantine = Metric.withAttributes(quarantined, attributes)
  const firedOk = Metric.withAttributes(schedulesFired, { resource, outcome: "ok" })
  const firedFailed = Metric.withAttributes(schedulesFired, { resource, outcome: "failed" })
  const givenUp = Metric.withAttributes(schedulesFailed, attributes)
  const pendingGauge = Metric.withAttributes(schedulesPending, attributes)
  let pending = 0
  let count = 0
  let sleeping = 0
  return {
    event: (event) => {
      switch (event._tag) {
        case "Created":
          created.updateUnsafe(1, context)
          live.updateUnsafe(++count, context)
          return
        case "Updated":
          updated.updateUnsafe(1, context)
          return
        case "Destroyed":
          destroyed[event.reason].updateUnsafe(1, context)
          live.updateUnsafe(--count, context)
          return
        case "Restarted":
          restarted.updateUnsafe(1, context)
          return
        case "Failed":
          failed.updateUnsafe(1, context)
          live.updateUnsafe(--count, context)
          return
        case "ScheduleFailed":
          givenUp.updateUnsafe(1, context)
          return
      }
    },
    batch: (size) => depth.updateUnsafe(size, context),
    call: (millis) => duration.updateUnsafe(millis, context),
    sleep: (delta) => {
      asleep.updateUnsafe(sleeping += delta, context)
      if (delta < 0) woken.updateUnsafe(1, context)
    },
    restored: () => live.updateUnsafe(++count, context),
    quarantined: () => quarantine.updateUnsafe(1, context),
    pending: (delta) => pendingGauge.updateUnsafe(pending += delta, context),
    fired: (ok) => (ok ? firedOk : firedFailed).updateUnsafe(1, context)
  }
}
