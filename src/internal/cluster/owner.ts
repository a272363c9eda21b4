/**
 * The owner of a record on a cluster: the handlers of its entity, built on
 * its activation from its row, on the runner that owns its shard.
 *
 * A record's writes run the one write pipeline (`record/write.ts`) through
 * the port of `owned.ts`: the state is the row's (held in memory while the
 * entity is active), a commit is a write of the SQL state store (group
 * commit, fenced by the row's version, its event's notice in the same
 * transaction), a key is claimed by reading the new key's row. One call at
 * a time changes the record (its lock); `get` reads its committed state
 * without waiting.
 *
 * - Retries: a write whose operation id the row remembers is answered
 *   without being applied again (a create with its record, an update with
 *   the record as it is, a destroy without error, a key change with the
 *   record at its new key).
 * - Faults: a commit storage refuses is `RecordCrashed` ("not applied"); one
 *   whose answer was lost is settled from its row, else refused as
 *   `Retryable` (`applied: "unknown"`) and the row read again before the
 *   next call; a commit fenced by a newer owner is `Retryable` (`"no"`). No
 *   restart policy runs for them.
 * - A row of a newer version this one cannot read refuses every call as
 *   `Retryable`, for an upgraded owner to serve; so does an input this
 *   version cannot decode (sent by another version), without running the
 *   restart policy.
 * - A defect in an action: `RecordCrashed`, then the restart policy (the
 *   declared one, else `"lastState"`) and intensity (per activation).
 * - Expiry: a record found past its deadline (by a call, or the sweeper's
 *   `Expire`) is destroyed through its destroy action, and removed also
 *   when that action fails.
 * - Activity (`get`, `keepAlive` on a resource with an inactivity timeout)
 *   is kept in memory and written back at most once per quarter of the
 *   timeout, and when the record leaves the runner.
 * - Schedules: the entity's own timer runs them when due while it is
 *   resident; the sweeper's `Expire` runs those of a record that was not.
 *
 * **Why one file of this size** (about 440 lines of code): it is one role,
 * the handlers of one record's entity, and they share its activation's
 * state (the held row, the lock, the run token, the timer) through one
 * closure; what does not need that closure already lives beside it (rows
 * and commits in `owned.ts`, the wire in `protocol.ts`, the pipeline in
 * `record/`). Splitting the handlers would pass that state around instead.
 *
 * @internal
 */
import { Cause, Deferred, Effect, Semaphore } from "effect"
import { Entity } from "effect/cluster"
import { UnknownAction } from "../../Errors.js"
import * as Errors from "../record/errors.js"
import * as Events from "../record/events.js"
import * as Lifecycle from "../record/lifecycle.js"
import * as Outcome from "../record/outcome.js"
import * as Schedules from "../record/schedules.js"
import * as Write from "../record/write.js"
import type { Compiled, CompiledAction } from "../resource.js"
import type { Newer, WireCodecs } from "../sql/codec.js"
import { unescapeKey } from "../sql/escape.js"
import * as Ops from "../sql/ops.js"
import { type Call, type Held, noCallers, type Owned, type OwnerContext, skew, timesOf, unreadable } from "./owned.js"
import * as Rows from "./owned.js"
import { type Protocol, replyOf, resultReplyOf, Retryable, schedulesReplyOf, type WireError } from "./protocol.js"

/** @internal */
export const make = (ctx: OwnerContext) => {
  const { graph, notices, state } = ctx
  const { hold, keyOf, now, port, reload, remove, touch } = Rows.make(ctx)

  /**
   * A step of the pipeline as an Effect. The services a step needs are its
   * actions' (changes and hooks), which `port.run` provides (`owned.ts`'s `asRecord`):
   * none is left to the handler.
   */
  const effectOf = <A, E>(step: Outcome.Step<A, E>) => Outcome.toEffect(step) as Effect.Effect<Outcome.Outcome<A, E>>

  /**
   * The answer of the pipeline's outcome: a crash is `RecordCrashed`, after
   * the restart policy, also when the action interrupted itself (the
   * handler is uninterruptible, so an interrupt in an outcome is the
   * action's own, not the runner's).
   */
  const answer = <A>(owned: Owned, outcome: Outcome.Outcome<A, WireError>): Effect.Effect<A, WireError> => {
    if (outcome._tag === "Ok") return Effect.succeed(outcome.value)
    if (outcome._tag === "Refused") return Effect.fail(outcome.error)
    return crash(owned, outcome.cause)
  }

  /** A defect: `RecordCrashed` (naming the record as its caller knew it), after the restart policy. */
  const crash = (owned: Owned, cause: Cause.Cause<unknown>): Effect.Effect<never, WireError> => {
    const error = Errors.crashed(owned.resource, keyOf(owned), cause)
    return Effect.andThen(afterCrash(owned), Effect.fail(error))
  }

  /**
   * Answers a defect outside the pipeline (a bug) as a crash, after the
   * restart policy; an interruption of the handler itself goes on as one.
   */
  const guard = (owned: Owned) => <A>(effect: Effect.Effect<A, WireError>): Effect.Effect<A, WireError> =>
    Effect.catchCause(effect, (cause): Effect.Effect<A, WireError> => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
      const error = Cause.findErrorOption(cause)
      if (error._tag === "Some" && !Cause.hasDies(cause)) return Effect.fail(error.value)
      return crash(owned, cause)
    })

  /** What `restart: "initial"` runs again: the stored create, decoded; `undefined` when it no longer fits. */
  const storedCreate = (owned: Owned, codecs: WireCodecs) => {
    const stored = owned.initial as { readonly action: string; readonly data: unknown; readonly input: unknown }
    if (stored === undefined || stored === null) return undefined
    const action = owned.resource.action(stored.action, "create")
    if (action instanceof UnknownAction) return undefined
    try {
      return { action, input: codecs.decodeInput(action, stored.input), data: codecs.decodeData(stored.data) }
    } catch {
      return undefined
    }
  }

  /** The codecs of each owner's resource, for `afterCrash`. */
  const codecsOf = new Map<Compiled, WireCodecs>()

  /**
   * After a defect in an action: the restart policy (the declared one, else
   * `"lastState"`: the record is stored) and intensity. The record's last
   * committed state is untouched by the failed action. A record restarted
   * `"initial"` whose stored create no longer fits (stored by an older
   * version) resumes its last state, with a warning.
   */
  const afterCrash = (owned: Owned): Effect.Effect<void> =>
    Effect.suspend(() => {
      const held = owned.held
      if (held === undefined) return Effect.void
      const t = now()
      const create = owned.resource.storedRestart === "initial"
        ? storedCreate(owned, codecsOf.get(owned.resource)!)
        : undefined
      const decision = Lifecycle.restart(owned.resource, owned.resource.storedRestart, owned.restarts, t, true)
      const failRecord = Effect.ignoreCause(
        remove(owned, held, `failed:${t}`, Events.failed(owned.resource, held.state))
      )
      if (decision === "fail") return failRecord
      if (decision === "lastState" || create === undefined) {
        const resume = notices.announce(Events.restarted(owned.resource, held.state), held.newer)
        if (decision === "lastState") return resume
        return Effect.andThen(
          Effect.logWarning(
            `${owned.resource.name} restarts "initial" but its stored create input cannot be used: it resumes its last state`
          ).pipe(Effect.annotateLogs({ resource: owned.resource.name, key: owned.key })),
          resume
        )
      }
      owned.creating = owned.initial
      return Effect.flatMap(
        // a step's services are its actions', which `port.run` provides (see `effectOf`)
        Write.recreate(
          port,
          owned,
          create.action,
          noCallers,
          create.data,
          create.input,
          `restart:${t}`
        ) as Effect.Effect<
          Write.Recreated<Retryable>
        >,
        (restarted) => {
          if (restarted._tag === "Ok") return Effect.void
          if (restarted._tag !== "Unstored") return failRecord
          // a storage failure is a refusal: the record keeps its last state, its row is left alone (DESIGN "Faults")
          return Effect.andThen(
            Write.unstoredRestart(owned.resource, owned.key, restarted.outcome),
            notices.announce(Events.restarted(owned.resource, held.state), held.newer)
          )
        }
      )
    })

  /** Expires the record if it is past its deadline at `t` (see `Write.destroy`): whether it did. */
  const expireIfDue = (owned: Owned, t: number): Effect.Effect<boolean, WireError> => {
    const held = owned.held
    if (held === undefined || !owned.resource.hasTimeouts || t < Lifecycle.deadline(timesOf(owned, held))) {
      return Effect.succeed(false)
    }
    const reason = Lifecycle.expiryReason(timesOf(owned, held))
    return Effect.flatMap(
      effectOf(Write.destroy(port, owned, owned.resource.primaryDestroy, noCallers, reason, `expire:${t}`)),
      (done) => Effect.as(answer(owned, done), true)
    )
  }

  /**
   * The reply to a write: the action's result where it declares `success`,
   * otherwise the record (nothing for a destroy).
   */
  const answerFor = (resource: Compiled, action: CompiledAction, reply: unknown, newer: Newer | undefined): unknown =>
    action.checkResult !== undefined
      ? resultReplyOf(action, reply)
      : action.kind === "destroy"
      ? undefined
      : replyOf(resource, reply, newer)

  /**
   * The reply to a write sent again under an operation id its record
   * remembers (`entry`): what the first attempt answered, its result kept
   * with the id, or the record as it is now.
   */
  const remembered = (
    resource: Compiled,
    action: CompiledAction,
    entry: string,
    state: unknown,
    newer: Newer | undefined
  ) => answerFor(resource, action, action.checkResult === undefined ? state : Ops.resultOf(entry, action), newer)

  /**
   * Runs the record's schedules due now, one after the other, each as a
   * call of the record's own (consumed in its commit); a failed run is
   * retried by the resource's `scheduleRetry` (by this runner, which counts
   * the retries: a move to another runner starts them again), then given up
   * (removed, `ScheduleFailed`).
   */
  const fireDue = (owned: Owned): Effect.Effect<void> =>
    Effect.gen(function*() {
      for (const pending of Schedules.takeDue(Rows.holderOf(owned), now())) {
        const action = owned.resource.actions.get(pending.action)!
        const step = action.kind === "destroy"
          ? Write.destroy(port, owned, action, noCallers, "action", undefined)
          : Write.update(port, owned, action, noCallers, pending.input, undefined, pending)
        const done = yield* effectOf(step)
        ctx.metrics(owned.resource).fired(done._tag === "Ok")
        // a crash runs the restart policy, as a call's does
        if (done._tag === "Crashed") yield* Effect.ignore(answer(owned, done))
        const failure = done._tag === "Ok" ? undefined : Outcome.describe(done)
        const live = owned.held !== undefined
        const next = yield* Schedules.ended(owned.resource, Rows.holderOf(owned), pending, failure, now(), live)
        if (next === "giveUp") {
          yield* Schedules.gaveUp(owned.resource, owned.key, pending, failure!)
          yield* effectOf(Write.giveUp(port, owned, pending, failure!))
        }
      }
    })

  /** The record, unless it is absent or past its deadline (then it is expired first). */
  const live = (owned: Owned, t: number) =>
    Effect.flatMap(
      expireIfDue(owned, t),
      () =>
        owned.held === undefined
          ? Effect.fail(Errors.notFound(owned.resource, owned.keyObj))
          : Effect.succeed(owned.held)
    )

  /**
   * The action a message names. The caller admitted it (an action its
   * version of the resource has), so an action this runner's version lacks
   * was sent by a newer version: refused before anything runs, retryable,
   * for an upgraded owner to apply.
   */
  const actionOf = (resource: Compiled, name: string, kind: "create" | "update" | "destroy") => {
    const found = resource.action(name, kind)
    return found instanceof UnknownAction
      ? Effect.fail(
        new Retryable({
          applied: "no",
          message: `${resource.name} version ${resource.version} on this runner has no ${kind} action ` +
            `${JSON.stringify(name)} (sent by a newer version): not applied`
        })
      )
      : Effect.succeed(found)
  }

  /**
   * An input naming what this runner's version of the resource does not
   * know (a field, an argument: sent by a newer version), which decoding
   * would drop: refused before anything runs, retryable, for an upgraded
   * owner to apply in full.
   */
  const understood = (
    resource: Compiled,
    codecs: WireCodecs,
    action: CompiledAction,
    input: unknown,
    data?: unknown
  ): Effect.Effect<void, Retryable> => {
    const unknown = codecs.unknownInput(action, input, data).join(", ")
    if (unknown === "") return Effect.void
    const message = `${resource.name}.${action.name}: ${unknown} unknown to version ${resource.version} on this ` +
      `runner (sent by a newer version): not applied`
    return Effect.fail(new Retryable({ applied: "no", message }))
  }

  /**
   * A message's input (or a create's data) decoded with this runner's
   * version of the resource. The caller's version admitted it, so one this
   * version cannot decode was sent by another version (a check added, a
   * literal narrowed, a field's type changed in a rolling deploy): refused
   * before anything runs, retryable, for an owner of the caller's version to
   * apply. Not a crash: no restart policy runs, the record is kept as it is.
   */
  const decoded = <A>(
    resource: Compiled,
    action: CompiledAction,
    version: number | undefined,
    decode: () => A
  ): Effect.Effect<A, Retryable> =>
    Effect.try({
      try: decode,
      catch: (e) => {
        const reason = e instanceof Error ? e.message : String(e)
        const sender = version === undefined ? "another version" : `version ${version}`
        return new Retryable({
          applied: "no",
          message: `${resource.name}.${action.name}: an input of ${sender} that version ${resource.version} on ` +
            `this runner cannot decode (${reason}): not applied`
        })
      }
    })

  /**
   * A create's data from a caller of an older version of the resource,
   * completed as that version's record would be by this version's migration
   * from it (the fields this version added, with their migration's values);
   * refused, retryable, when the migration cannot take it.
   */
  const olderData = (
    resource: Compiled,
    data: { readonly [field: string]: unknown },
    version: number | undefined
  ): Effect.Effect<{ readonly [field: string]: unknown }, Retryable> => {
    if (version === undefined || version >= resource.version) return Effect.succeed(data)
    const migration = resource.migrations[version]
    if (migration === undefined) return Effect.succeed(data)
    return Effect.try({
      try: () => ({ ...(migration.migrate(data) as object), ...data }),
      catch: (e) =>
        new Retryable({
          applied: "no",
          message: `${resource.name}: a create of version ${version}, which version ${resource.version}'s migration ` +
            `cannot complete (${e instanceof Error ? e.message : String(e)}): not applied`
        })
    })
  }

  /** The handlers of one record, built on its activation from its row. @internal */
  const handlersOf = (resource: Compiled, protocol: Protocol, codecs: WireCodecs) =>
    Effect.gen(function*() {
      codecsOf.set(resource, codecs)
      const address = yield* Entity.CurrentAddress
      const entityId = address.entityId as string
      const key = unescapeKey(entityId)
      const self = `${resource.name}/${entityId}`
      const owned: Owned = {
        resource,
        key,
        keyObj: resource.decodeKey(key),
        held: undefined,
        initial: undefined,
        tombstoneOps: [],
        movedTo: undefined,
        blocked: undefined,
        known: false,
        unsure: undefined,
        run: `${self}#${graph.origin}:0`,
        restarts: [],
        creating: undefined,
        firing: new Set(),
        retries: new Map()
      }
      graph.resident.add(self)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          graph.resident.delete(self)
          // leaving this runner: its schedules are no longer this process's
          hold(owned, undefined)
        })
      )
      // a row that cannot be read now is read by the first call
      yield* Effect.ignore(reload(owned))
      /** Whether no call has run since the activation loaded the row (the first needs no second read). */
      let activated = true
      /**
       * An absent record reads its row again before a call uses its absence:
       * another record may have moved to this key since (a key change,
       * committed by that record's owner). Not on the first call after the
       * activation, which has just read it; always when the row is not known.
       */
      const refresh: Effect.Effect<void, Retryable> = Effect.suspend(() => {
        const first = activated
        activated = false
        if (owned.known && (owned.held !== undefined || first)) return Effect.void
        return reload(owned)
      })
      /** Reads the row before a call, refusing it (retryable) while the row is a newer version's it cannot read. */
      const ready: Effect.Effect<void, Retryable> = Effect.flatMap(
        refresh,
        () => owned.blocked === undefined ? Effect.void : Effect.fail(skew(owned.blocked))
      )
      /** One call at a time changes the record; `get` reads its committed state without waiting. */
      const lock = Semaphore.makeUnsafe(1)
      const guarded = guard(owned)
      /** A message's input, decoded (see `decoded`). */
      const inputOf = (action: CompiledAction, input: unknown, version: number | undefined) =>
        decoded(resource, action, version, () => codecs.decodeInput(action, input))

      /**
       * Runs `body` as the record's one running call, after the calls before
       * it; refused with `ReentrantCall` if waiting would deadlock.
       */
      const exclusive = <A>(
        callers: ReadonlyArray<string>,
        action: string,
        body: Effect.Effect<A, WireError>
      ): Effect.Effect<A, WireError> =>
        Effect.suspend(() => {
          const cycle = graph.wouldDeadlock(self, callers, [self])
          if (cycle === false) return locked(callers, body)
          if (cycle === true) return Effect.fail(Errors.reentrant(resource, keyOf(owned), action))
          return Effect.flatMap(
            cycle,
            (found): Effect.Effect<A, WireError> =>
              found ? Effect.fail(Errors.reentrant(resource, keyOf(owned), action)) : locked(callers, body)
          )
        })

      /** Runs `body` as this record's next run, its caller's wait on it in the graph meanwhile. */
      const locked = <A>(callers: ReadonlyArray<string>, body: Effect.Effect<A, WireError>) => {
        const caller = callers.at(-1)
        if (caller !== undefined) graph.addEdge(caller, self)
        return lock.withPermits(1)(Effect.suspend(() => {
          const run = graph.nextRun(self)
          owned.run = run
          graph.runningIn.set(self, run)
          return Effect.ensuring(
            body,
            Effect.sync(() => {
              if (graph.runningIn.get(self) === run) graph.runningIn.delete(self)
              // the run may have changed the record's schedules
              rearm()
            })
          )
        })).pipe(Effect.ensuring(Effect.sync(() => caller !== undefined && graph.removeEdge(caller, self))))
      }

      /**
       * The record's timer while it is resident here: sleeps until its next
       * schedule is due (on the layer's `Clock`), then runs the due ones as
       * the sweeper's `Expire` would. A record that is not resident when one
       * comes due is found by the sweeper (`wake_at`).
       */
      let wake: Deferred.Deferred<void> | undefined
      const rearm = () => {
        const waking = wake
        if (waking === undefined) return
        wake = undefined
        Deferred.doneUnsafe(waking, Effect.void)
      }

      // leaving this runner (passivation, a shard moving, shutdown): write back activity not yet written
      yield* Effect.addFinalizer(() => {
        const held = owned.held
        if (held === undefined || resource.idleMillis === undefined || held.flushed >= held.lastActivity) {
          return Effect.void
        }
        return Effect.ignore(
          state.write({ _tag: "Touch", resource, key, expected: held.version, lastActivity: held.lastActivity })
        )
      })

      /** Runs a step of the pipeline for a call: its answer, encoded. */
      const run = <A>(step: Outcome.Step<A, WireError>) =>
        Effect.flatMap(effectOf(step), (outcome) => answer(owned, outcome))

      /** Runs the record's due expiry and schedules: `Expire` from the sweeper, or the record's own timer. */
      const timers = Effect.gen(function*() {
        yield* refresh
        // a newer version's record: its expiry is an upgraded owner's to run
        if (owned.blocked !== undefined) return false
        // the owner's clock decides, not the sweeper's
        const t = now()
        const expired = yield* expireIfDue(owned, t)
        if (!expired) yield* fireDue(owned)
        const held = owned.held
        // not due in memory (activity not yet written back): write it back, so the sweeper stops finding it
        if (
          !expired && held !== undefined && resource.idleMillis !== undefined && held.flushed < held.lastActivity
        ) {
          held.flushed = 0
          yield* touch(owned, held.lastActivity)
        }
        return expired
      }).pipe(guarded, Effect.uninterruptible, (body) => exclusive([], "expire", body))

      yield* Effect.forkScoped(Effect.gen(function*() {
        while (true) {
          const waking = Deferred.makeUnsafe<void>()
          wake = waking
          const at = Schedules.nextDue(Rows.holderOf(owned))
          if (at === Infinity) yield* Deferred.await(waking)
          else if (at > now()) yield* Effect.raceFirst(Effect.sleep(at - now()), Deferred.await(waking))
          else {
            wake = undefined
            yield* Effect.ignore(timers)
            // still due (storage refused, a newer version's row): not again at once
            if (Schedules.nextDue(Rows.holderOf(owned)) <= now()) yield* Effect.sleep("1 second")
          }
        }
      }))

      return protocol.of({
        Create: ({ payload }) =>
          Effect.gen(function*() {
            yield* ready
            // a record this create did not make: its row again before refusing (another owner may have written it)
            if (owned.held !== undefined && !Ops.remembers(owned.held.ops, payload.op)) yield* reload(owned)
            yield* expireIfDue(owned, now())
            const action = yield* actionOf(resource, payload.action, "create")
            if (owned.held !== undefined) {
              // a retry of this very create answers as it did: with the record, or its result
              const applied = Ops.find(owned.held.ops, payload.op)
              if (applied !== undefined) {
                return remembered(resource, action, applied, owned.held.state, owned.held.newer)
              }
              return yield* Errors.alreadyExists(resource, keyOf(owned))
            }
            const appliedHere = owned.movedTo === undefined ? undefined : Ops.find(owned.tombstoneOps, payload.op)
            if (appliedHere !== undefined) {
              // a retry of this create, whose record has moved to another key since: answered with it there
              const moved = yield* Effect.mapError(ctx.loadRow(resource, owned.movedTo!), unreadable)
              if (moved !== undefined && moved.alive && moved.state !== undefined) {
                return remembered(resource, action, appliedHere, moved.state, moved.newer)
              }
            }
            yield* understood(resource, codecs, action, payload.input, payload.data)
            const input = yield* inputOf(action, payload.input, payload.version)
            const given = yield* decoded(resource, action, payload.version, () => codecs.decodeData(payload.data))
            const data = yield* olderData(resource, given, payload.version)
            owned.creating = { action: payload.action, data: payload.data, input: payload.input }
            const call: Call = { callers: payload.callers }
            const reply = yield* run(Write.create(port, owned, action, call, data, input, payload.op))
            // held since the create committed (TypeScript still sees the absence checked above)
            return answerFor(resource, action, reply, (owned.held as Held | undefined)?.newer)
          }).pipe(guarded, Effect.uninterruptible, (body) => exclusive(payload.callers, payload.action, body)),

        Update: ({ payload }) =>
          Effect.gen(function*() {
            yield* ready
            if (owned.held === undefined && owned.movedTo !== undefined && owned.tombstoneOps.includes(payload.op)) {
              // a retry of the key change that moved the record away: answered with the record at its new key
              const moved = yield* Effect.mapError(ctx.loadRow(resource, owned.movedTo), unreadable)
              if (moved === undefined || !moved.alive || moved.state === undefined) {
                return yield* Errors.notFound(resource, owned.keyObj)
              }
              return replyOf(resource, moved.state, moved.newer)
            }
            const current = yield* live(owned, now())
            const action = yield* actionOf(resource, payload.action, "update")
            const applied = Ops.find(current.ops, payload.op)
            if (applied !== undefined) return remembered(resource, action, applied, current.state, current.newer)
            yield* understood(resource, codecs, action, payload.input)
            const input = yield* inputOf(action, payload.input, payload.version)
            const done = yield* effectOf(
              Write.update(port, owned, action, { callers: payload.callers }, input, payload.op)
            )
            // committing after its deadline: NotFound, and the record expires now
            if (done._tag === "Refused" && done.error._tag === "NotFound") yield* expireIfDue(owned, now())
            const reply = yield* answer(owned, done)
            return answerFor(resource, action, reply, owned.held?.newer ?? current.newer)
          }).pipe(guarded, Effect.uninterruptible, (body) => exclusive(payload.callers, payload.action, body)),

        Destroy: ({ payload }) =>
          Effect.gen(function*() {
            yield* ready
            const action = yield* actionOf(resource, payload.action, "destroy")
            // a retry of this destroy, applied already (the key may have been created again since)
            const held = owned.held
            const applied = Ops.find(held === undefined ? owned.tombstoneOps : held.ops, payload.op)
            if (applied !== undefined) return remembered(resource, action, applied, undefined, undefined)
            yield* live(owned, now())
            const reply = yield* run(
              Write.destroy(port, owned, action, { callers: payload.callers }, "action", payload.op)
            )
            return answerFor(resource, action, reply, undefined)
          }).pipe(guarded, Effect.uninterruptible, (body) => exclusive(payload.callers, payload.action, body)),

        Get: ({ payload }) =>
          Effect.suspend(() => {
            const t = now()
            const held = owned.held
            // the committed state, without waiting for a running call
            if (
              owned.known && held !== undefined &&
              (!resource.hasTimeouts || t < Lifecycle.deadline(timesOf(owned, held)))
            ) {
              return Effect.as(touch(owned, t), replyOf(resource, held.state, held.newer))
            }
            // absent while a call runs (a create, say): the committed state is absence, as that call read its row
            // when it started
            if (owned.known && held === undefined && owned.blocked === undefined && graph.runningIn.has(self)) {
              return Effect.fail(Errors.notFound(resource, owned.keyObj))
            }
            // absent (a record may have moved here since: its row is read again), not known, or past its deadline
            // (expired first): in turn
            return Effect.gen(function*() {
              yield* ready
              const current = yield* live(owned, t)
              yield* touch(owned, t)
              return replyOf(resource, current.state, current.newer)
            }).pipe(guarded, Effect.uninterruptible, (body) => exclusive(payload.callers, "get", body))
          }),

        Expire: () => timers,

        Schedules: () =>
          Effect.gen(function*() {
            yield* ready
            // a read: neither activity, nor an expiry, nor a wait for a running call
            const held = owned.held
            if (held === undefined || (resource.hasTimeouts && now() >= Lifecycle.deadline(timesOf(owned, held)))) {
              return yield* Errors.notFound(resource, owned.keyObj)
            }
            return schedulesReplyOf(resource, Schedules.list(Rows.holderOf(owned)))
          }).pipe(guarded),

        Probe: ({ payload }) => {
          // it reads no row: the next call must (an activation by a probe may be long before it)
          activated = false
          const cycle = graph.wouldDeadlock(self, payload.callers, payload.visited)
          return typeof cycle === "boolean" ? Effect.succeed(cycle) : cycle
        }
      })
    })

  return { handlersOf }
}
