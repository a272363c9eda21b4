/**
 * Events across the cluster. They are PostgreSQL notifications sent in the
 * transaction of their commit (in commit order, only if it commits), and
 * every other process with a subscriber publishes what it hears: each
 * event once, in per-record order. The owner's process publishes its own
 * events as soon as they commit, before the call is answered (a notice
 * names the process it came from, which skips it), and counts them in its
 * metrics; an event heard is not counted again. An event longer than a
 * notification holds is sent in chunks (`sql/notices.ts`). Without a
 * PostgreSQL client (no `listen`), an event is published in the owner's
 * process only.
 *
 * A process listens only while something subscribes to its events: a
 * process nobody subscribes in (most runners, a client that only calls)
 * receives no notice.
 *
 * @internal
 */
import { Effect, type PubSub, Queue, RcRef, Schedule, type Scope, Stream } from "effect"
import type { SqlClient } from "effect/sql"
import type * as Event from "../../Event.js"
import type * as Hub from "../events.js"
import * as Events from "../record/events.js"
import type { Compiled } from "../resource.js"
import { decodeStored, encodeStored, type Newer, storedVersion } from "../sql/codec.js"
import { noticeJoiner, noticePayloads } from "../sql/notices.js"
import type { NoticeHead } from "../sql/rows.js"
import type { StateStore } from "../sql/stateStore.js"

/** @internal */
export interface Notices {
  /** This process's instance of the data layer. */
  readonly origin: string
  /** The notice of an event written with a commit (the whole text); `undefined` without notifications. */
  readonly noticeOf: (event: Event.Event, newer?: Newer) => string | undefined
  /** The notice of an event storing a record, for PostgreSQL to complete from the row's state. */
  readonly noticeHeadOf: (event: Event.Event, newer?: Newer) => NoticeHead | undefined
  /** Publishes an event that no commit carries (a restart resuming the last state), and sends its notice. */
  readonly announce: (event: Event.Event, newer?: Newer) => Effect.Effect<void>
  /** Every event of the cluster from when the stream is pulled (listening meanwhile). */
  readonly events: Stream.Stream<Event.Event>
  /** A subscription to every event of the cluster published after it returns (listening meanwhile). */
  readonly subscribe: Effect.Effect<PubSub.Subscription<Event.Event>, never, Scope.Scope>
}

/** @internal */
export const make = (
  sql: SqlClient.SqlClient,
  state: StateStore,
  compiled: ReadonlyMap<string, Compiled>,
  hub: Hub.Events
): Effect.Effect<Notices, never, Scope.Scope> =>
  Effect.gen(function*() {
    const publish = hub.publish
    const pg = sql as unknown as {
      readonly listen?: (
        channel: string
      ) => Effect.Effect<Queue.Dequeue<{ readonly payload: string }, unknown>, unknown, Scope.Scope>
    }
    const notifying = typeof pg.listen === "function"
    /**
     * Notifications are database-wide, their channel named after the table
     * alone: a notice names its schema and table, and a notice of another
     * (another cluster in another schema of the database) is not ours.
     */
    const space = notifying
      ? `${
        (yield* Effect.orDie(sql.unsafe<{ readonly schema: string }>(`SELECT current_schema() AS schema`)))[0]?.schema
      }.${state.table}`
      : ""
    /** This process's instance of the data layer: its own notices are published when committed, not when heard. */
    const origin = crypto.randomUUID()
    /** How every notice of this process begins (`space`, then `origin`, first): heard, it is dropped unparsed. */
    const ownPrefix = JSON.stringify({ space, origin }).slice(0, -1) + ","
    /**
     * A notice's record is the state as a row stores it, with the version
     * that stored it (`newer`: a newer row's, whose fields this version does
     * not know are kept): a listener running another version of the resource
     * decodes it as it decodes that row (migrating an older one).
     */
    const noticeOf = (event: Event.Event, newer?: Newer): string | undefined => {
      if (!notifying) return undefined
      const resource = compiled.get(event.resource)!
      const text = JSON.stringify({
        space,
        origin,
        _tag: event._tag,
        resource: event.resource,
        version: storedVersion(resource, newer),
        record: encodeStored(resource, event.record, newer),
        ...(event._tag === "Destroyed" ? { reason: event.reason } : {}),
        ...(event._tag === "Destroyed" && event.failure !== undefined ? { failure: event.failure } : {}),
        ...(event._tag === "ScheduleFailed"
          ? { schedule: event.schedule, action: event.action, failure: event.failure }
          : {})
      })
      return text
    }
    const heads = new Map<string, NoticeHead>()
    /**
     * The notice of a write storing the event's record: PostgreSQL completes
     * it from the state the row stores, so the record is serialized once.
     */
    const noticeHeadOf = (event: Event.Event, newer?: Newer): NoticeHead | undefined => {
      if (!notifying) return undefined
      const version = storedVersion(compiled.get(event.resource)!, newer)
      const id = `${event._tag}\u0000${event.resource}\u0000${version}`
      let head = heads.get(id)
      if (head === undefined) {
        head = {
          head: `${ownPrefix}"_tag":${JSON.stringify(event._tag)},"resource":${
            JSON.stringify(event.resource)
          },"version":${version},"record":`
        }
        heads.set(id, head)
      }
      return head
    }
    /** An event without a commit. */
    const announce = (event: Event.Event, newer?: Newer): Effect.Effect<void> => {
      const notice = noticeOf(event, newer)
      publish(event)
      if (notice === undefined) return Effect.void
      const payloads = noticePayloads(notice, crypto.randomUUID().replaceAll("-", ""))
      return Effect.ignore(
        payloads.length === 1
          ? sql.unsafe(`SELECT pg_notify($1, $2)`, [state.channel, notice])
          // one statement, one transaction: its chunks reach each listener together, in order
          : sql.unsafe(`SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, [
            state.channel,
            payloads as Array<string>
          ])
      )
    }
    /** Joins the chunks of long notices (`SqlState.noticeBytes`). */
    const joiner = noticeJoiner()
    const heard = (payload: string) => {
      // published here when it committed
      if (payload.startsWith(ownPrefix)) return
      try {
        const notice = JSON.parse(payload)
        // published here when it committed; or another cluster's
        if (notice.origin === origin || notice.space !== space) return
        const resource = compiled.get(notice.resource)
        if (resource === undefined) return
        // as its row is decoded: migrated when an older version stored it, unknown fields ignored when a newer one
        // did (a notice without a version is of this version)
        const version = typeof notice.version === "number" ? notice.version : resource.version
        const record = decodeStored(resource, notice.record, version).state
        hub.relay(
          notice._tag === "Destroyed"
            ? Events.destroyed(resource, record, notice.reason, notice.failure)
            : notice._tag === "ScheduleFailed"
            ? Events.scheduleFailed(resource, record, notice.schedule, notice.action, notice.failure)
            : { _tag: notice._tag, resource: resource.name, key: Events.keyObject(resource, record), record }
        )
      } catch {
        // a notice of a newer version this one cannot read, or not ours at all: not ours to publish
      }
    }
    /**
     * The process listens only while something subscribes to its events: a
     * process nobody subscribes in (most runners, a client that only calls)
     * receives no notice. The first subscription starts listening and returns
     * once PostgreSQL confirmed it, so it misses nothing committed after it.
     */
    const listener = notifying
      ? yield* RcRef.make({
        acquire: Effect.gen(function*() {
          const first = yield* Effect.orDie(pg.listen!(state.channel))
          const drain = (queue: Queue.Dequeue<{ readonly payload: string }, unknown>) =>
            Effect.forever(Effect.map(Queue.take(queue), (n) => {
              const notice = joiner(n.payload)
              if (notice !== undefined) heard(notice)
            }))
          yield* drain(first).pipe(
            Effect.catchCause((cause) =>
              Effect.logWarning("effect-gen-server: the cluster event listener stopped; listening again", cause).pipe(
                Effect.andThen(
                  Effect.scoped(Effect.flatMap(pg.listen!(state.channel), drain)).pipe(
                    Effect.retry(Schedule.spaced("1 second"))
                  )
                )
              )
            ),
            Effect.forkScoped
          )
        })
      })
      : undefined
    const events = listener === undefined ? hub.events : Stream.unwrap(Effect.as(RcRef.get(listener), hub.events))
    const subscribe = listener === undefined ? hub.subscribe : Effect.andThen(RcRef.get(listener), hub.subscribe)

    return { origin, noticeOf, noticeHeadOf, announce, events, subscribe }
  })
