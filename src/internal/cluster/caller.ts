/**
 * The caller of a cluster: a Store call made in any process, sent to the
 * record's entity on the runner owning its shard.
 *
 * - Writes are admitted here (bad input never leaves the process) and sent
 *   under an operation id (the caller's, `Store.withOperationId`, or a new
 *   one), re-sent under the same id while they fail for a reason of the
 *   cluster; a call that gives up fails with `Unavailable`, saying whether
 *   any attempt may have reached the owner's commit.
 * - With no runner up (known from the `RunnerStorage` of a client-only
 *   process), a call is not sent: effect/cluster would re-send it without
 *   end.
 * - `get` and `keepAlive` read the row, except on resources with an
 *   inactivity timeout, where they are messages to the owner (activity is
 *   kept in its memory).
 *
 * @internal
 */
import { Cause, type Clock, Duration, Effect, Schedule } from "effect"
import type { RunnerStorage } from "effect/cluster"
import type { SqlError } from "effect/sql/SqlError"
import { type NotFound, type StoreClosed, type StoreError, Unavailable, ValidationError } from "../../Errors.js"
import * as Admission from "../admission.js"
import type * as DataLayer from "../contract.js"
import * as Errors from "../record/errors.js"
import type { Compiled, CompiledAction } from "../resource.js"
import { TooNew, Undecodable, wireCodecs } from "../sql/codec.js"
import { escapeKey, unescapeKey } from "../sql/escape.js"
import type { Row } from "../sql/rows.js"
import { answerOf, CurrentCallers, isKnownError, recordOf, retryableTag, schedulesOf } from "./protocol.js"
import { recordOfRun, type WaitGraph } from "./waitGraph.js"

/** What the caller needs of its data layer. @internal */
export interface CallerContext {
  readonly admission: Admission.Admission
  readonly clock: Clock.Clock
  /** The entity client of a resource. */
  readonly client: (resource: string) => (entityId: string) => any
  /** How many times a call failing for a reason of the cluster is re-sent. */
  readonly retries: number
  /** Whether this process's store is closing: calls in flight stop re-sending. */
  readonly closing: () => boolean
  /** The runners' registry, in a client-only process that has it: with no runner up, a call is not sent. */
  readonly runners: RunnerStorage.RunnerStorage["Service"] | undefined
  readonly graph: WaitGraph
  /** The row of a key, quarantining what cannot be loaded. */
  readonly loadRow: (resource: Compiled, key: string) => Effect.Effect<Row | undefined, SqlError>
}

/** Whether a row's stored deadline has passed at `t`: its record is dead, its key free for a create. */
const pastDeadline = (row: Row, t: number) =>
  (row.inactivityDeadline !== undefined && t >= row.inactivityDeadline) ||
  (row.lifetimeDeadline !== undefined && t >= row.lifetimeDeadline)

/** @internal */
export const make = (ctx: CallerContext) =>
  Effect.gen(function*() {
    const { admit, admitRead, initialData } = ctx.admission
    const graph = ctx.graph
    /** How a call failing for a reason of the cluster is re-sent (once per layer, not per call). */
    const resend = {
      // a store closing stops re-sending: its process is going away
      while: (e: unknown) => e instanceof Retry && !ctx.closing(),
      schedule: Schedule.exponential("50 millis", 1.5).pipe(
        Schedule.modifyDelay((meta) => Effect.succeed(Duration.min(meta.duration, Duration.seconds(2))))
      ),
      times: ctx.retries
    }
    /**
     * Whether some runner can own a record's shard. effect/cluster re-sends a
     * message to a shard no runner owns without end (`Sharding.sendOutgoing`),
     * so with no runner up a call would wait forever. Its client assigns
     * shards from the healthy runners of its `RunnerStorage`: with none there
     * (read at most once a second), there is nowhere to send a call. Known in
     * a client-only process whose `RunnerStorage` is in this layer's context
     * (a runner process is a runner itself); a registry that cannot be read
     * counts as a runner up.
     */
    const registry = ctx.runners
    const runnerUp = registry === undefined ? undefined : yield* registry.getRunners.pipe(
      Effect.map((runners) => runners.some(([runner, healthy]) => healthy && runner.groups.includes("default"))),
      Effect.timeoutOrElse({ duration: "2 seconds", orElse: () => Effect.succeed(true) }),
      Effect.orElseSucceed(() => true),
      Effect.cachedWithTTL("1 second")
    )
    /** Fails once no runner is up any more, checked every second. */
    const runnersLeft: Effect.Effect<never, NoRunner> = Effect.suspend(() =>
      Effect.flatMap(Effect.andThen(Effect.sleep("1 second"), runnerUp!), (up) =>
        up ? runnersLeft : Effect.fail(new NoRunner(true)))
    )
    /**
     * A call, unless no runner is up: then refused before it is sent, or
     * abandoned (its re-sending by effect/cluster interrupted) when the last
     * runner leaves while it waits. Never bounded otherwise: a long hook runs.
     */
    const routed = <A>(call: Effect.Effect<A, unknown>): Effect.Effect<A, unknown> =>
      runnerUp === undefined
        ? call
        : Effect.flatMap(runnerUp, (up) =>
          up ? Effect.raceFirst(call, runnersLeft) : Effect.fail(new NoRunner(false)))
    /**
     * Sends a message to a record, re-sending it (same operation id) while it
     * fails for a reason of the cluster; a cluster `MailboxFull` is ours.
     * When the retries run out, or this process's store closes meanwhile, the
     * call fails with `Unavailable`, whose `applied` says whether any attempt
     * may have reached the owner's commit:
     *
     * - not reached: `EntityNotAssignedToRunner` (routing refused it before
     *   any handler ran: no runner owns the shard yet, or this process is
     *   shutting down), no runner up when it was to be sent (`routed`), and
     *   `Retryable` with `applied: "no"` (the owner refused it before its
     *   commit: fenced by a newer owner, storage unreadable, a record of a
     *   newer version);
     * - may have reached: anything else, `Retryable` with `applied:
     *   "unknown"` (the owner's commit was not confirmed), interrupts (a
     *   runner stopping while serving it, the reply abandoned) and defects (a
     *   transport failure) included. A record's own defects never arrive as
     *   defects: its owner answers them as `RecordCrashed`.
     */
    const send = <A>(
      resource: Compiled,
      key: unknown,
      action: string,
      call: Effect.Effect<A, unknown>,
      operationId?: string
    ): Effect.Effect<A, StoreError> =>
      Effect.suspend(() => {
        let attempts = 0
        let reached = false
        const attempt = Effect.catchCause(
          Effect.suspend(() => {
            attempts++
            return routed(call)
          }),
          (cause): Effect.Effect<A, StoreError | Retry> => {
            const error = Cause.findErrorOption(cause)
            if (error._tag === "Some" && !Cause.hasDies(cause)) {
              const e = error.value as { readonly _tag?: string; readonly applied?: string }
              if (e._tag === retryableTag) {
                // refused by the owner for a reason that passes: nothing applied, or (its commit unconfirmed) perhaps
                if (e.applied === "unknown") reached = true
                return Effect.fail(new Retry({ cause }))
              }
              if (e._tag === "EntityNotAssignedToRunner" || (e instanceof NoRunner && !e.sent)) {
                return Effect.fail(new Retry({ cause }))
              }
              if (isKnownError(resource, e)) return Effect.fail(e as StoreError)
              if (e._tag === "MailboxFull") {
                return Effect.fail(
                  Errors.mailboxFull(
                    resource,
                    key,
                    0,
                    "its runner refused the call: it holds too many records (ShardingConfig.maxResidentEntities) " +
                      "or this record too many messages (entityMailboxCapacity)"
                  )
                )
              }
            }
            reached = true
            return Effect.fail(new Retry({ cause }))
          }
        )
        return attempt.pipe(
          Effect.retry(resend),
          Effect.catchIf(
            (e): e is Retry => e instanceof Retry,
            (e) =>
              Effect.fail(
                Errors.unanswered(resource, key, action, {
                  reached,
                  attempts,
                  closing: ctx.closing(),
                  lastFailure: describeFailure(e.cause),
                  operationId
                })
              )
          )
        ) as Effect.Effect<A, StoreError>
      })

    /**
     * The operation id of a write: the caller's (`Store.withOperationId`,
     * checked by the Store), or a new one. Every attempt carries it, and the
     * owner answers a write its record remembers without applying it again.
     */
    const op = (chosen: string | undefined) => chosen ?? crypto.randomUUID()

    /**
     * A call made by a run of this process (a record's hook) waits on its
     * target: the edge is in this process's graph while the call is out, so a
     * probe from another runner can follow it.
     */
    const waitedOn = <A, E>(
      callers: ReadonlyArray<string>,
      resource: Compiled,
      entityId: string,
      call: Effect.Effect<A, E>
    ): Effect.Effect<A, E> => {
      const run = callers.at(-1)
      if (run === undefined || !graph.isOwn(run)) return call
      const record = `${resource.name}/${entityId}`
      return Effect.suspend(() => {
        graph.addEdge(run, record)
        return Effect.ensuring(call, Effect.sync(() => graph.removeEdge(run, record)))
      })
    }

    const entityOf = (
      resource: Compiled,
      key: unknown
    ): { readonly id: string; readonly key: unknown } | StoreError => {
      const k = resource.checkKey(key)
      if (k instanceof ValidationError) return k
      return { id: escapeKey(resource.encodeKey(k)), key: k }
    }

    /**
     * The record of an owner's reply, as this version reads it. One this
     * version cannot read (its owner runs a newer version that changed what
     * this one needs, or an older one whose record this version's migration
     * fails on) fails the call with `Unavailable`: it may have been applied,
     * and its answer cannot be given here.
     */
    const decodeReply = (
      resource: Compiled,
      key: unknown,
      /** A write's action, or the name of a read (its reply is the record). */
      action: CompiledAction | string,
      operationId: string | undefined
    ) =>
    (reply: unknown): Effect.Effect<unknown, Unavailable> => {
      const name = typeof action === "string" ? action : action.name
      try {
        return Effect.succeed(
          typeof action === "string" ? recordOf(resource, reply) : answerOf(resource, action, reply)
        )
      } catch (e) {
        // a newer version's record, or an older one's whose migration fails, or a result this version's
        // `success` cannot read: the write may have been applied
        const result = typeof action !== "string" && action.checkResult !== undefined
        if (!(e instanceof TooNew || e instanceof Undecodable || result)) throw e
        const found = e instanceof Error ? e : { message: String(e) }
        return Effect.fail(Errors.unreadableReply(resource, key, name, found, operationId))
      }
    }

    /** Sends a write's `message` to its record under the payload's operation id, as a wait of the caller's run. */
    const sendWrite = <A>(
      resource: Compiled,
      target: { readonly id: string; readonly key: unknown },
      action: string,
      payload: { readonly op: string; readonly callers: ReadonlyArray<string> },
      message: Effect.Effect<A, unknown>
    ): Effect.Effect<A, StoreError> =>
      waitedOn(payload.callers, resource, target.id, send(resource, target.key, action, message, payload.op))

    const create: DataLayer.Service["create"] = (resourceName, actionName, input) =>
      Effect.withFiber((fiber) => {
        const admitted = admit(resourceName, actionName, "create", input)
        if (!Admission.isAdmitted(admitted)) return Effect.fail(admitted)
        const { action, decoded, resource } = admitted
        const data = initialData(resource, decoded)
        if (data instanceof ValidationError) return Effect.fail(data)
        // a call on behalf of the record itself is refused by its owner, which knows whether it is busy
        const target = entityOf(resource, data)
        if (!("id" in target)) {
          return Effect.fail(
            new ValidationError({
              resource: resource.name,
              message: `${resource.name}.${action.name}: the cluster data layer needs a create's primary key (${
                resource.keyFields.join(", ")
              }) in its input or generated fields: ${target.message}`
            })
          )
        }
        const codecs = wireCodecs(resource)
        const payload = {
          action: action.name,
          op: op(fiber.getRef(Admission.CurrentOperationId)),
          data: codecs.encodeData(data),
          input: codecs.encodeInput(action, decoded),
          callers: fiber.getRef(CurrentCallers),
          version: resource.version
        }
        return Effect.flatMap(
          sendWrite(resource, target, action.name, payload, ctx.client(resource.name)(target.id).Create(payload)),
          decodeReply(resource, target.key, action, payload.op)
        )
      })

    const update: DataLayer.Service["update"] = (resourceName, key, actionName, input) =>
      Effect.withFiber((fiber) => {
        const admitted = admit(resourceName, actionName, "update", input)
        if (!Admission.isAdmitted(admitted)) return Effect.fail(admitted)
        const { action, decoded, resource } = admitted
        const target = entityOf(resource, key)
        if (!("id" in target)) return Effect.fail(target)
        const payload = {
          action: action.name,
          op: op(fiber.getRef(Admission.CurrentOperationId)),
          input: wireCodecs(resource).encodeInput(action, decoded),
          callers: fiber.getRef(CurrentCallers),
          version: resource.version
        }
        return Effect.flatMap(
          sendWrite(resource, target, action.name, payload, ctx.client(resource.name)(target.id).Update(payload)),
          decodeReply(resource, target.key, action, payload.op)
        )
      })

    const destroy: DataLayer.Service["destroy"] = (resourceName, key, actionName) =>
      Effect.withFiber((fiber) => {
        const admitted = admit(resourceName, actionName, "destroy", undefined)
        if (!Admission.isAdmitted(admitted)) return Effect.fail(admitted)
        const { action, resource } = admitted
        const target = entityOf(resource, key)
        if (!("id" in target)) return Effect.fail(target)
        const payload = {
          action: action.name,
          op: op(fiber.getRef(Admission.CurrentOperationId)),
          callers: fiber.getRef(CurrentCallers)
        }
        return Effect.flatMap(
          sendWrite(resource, target, action.name, payload, ctx.client(resource.name)(target.id).Destroy(payload)),
          decodeReply(resource, target.key, action, payload.op)
        )
      })

    /** A record by key from its row: read-your-writes, no message. */
    const fromRow = (
      resource: Compiled,
      target: { readonly id: string; readonly key: unknown },
      operation: string
    ): Effect.Effect<unknown, NotFound | Unavailable> =>
      Effect.flatMap(
        Effect.mapError(
          ctx.loadRow(resource, unescapeKey(target.id)),
          (e) => Errors.unreachable(resource, target.key, operation, undefined, e.message)
        ),
        (row): Effect.Effect<unknown, NotFound | Unavailable> => {
          if (row?.tooNew !== undefined) return Effect.fail(Errors.tooNew(resource, target.key, operation, row.tooNew))
          if (
            row === undefined || !row.alive || row.state === undefined ||
            pastDeadline(row, ctx.clock.currentTimeMillisUnsafe())
          ) {
            return Effect.fail(Errors.notFound(resource, target.key))
          }
          return Effect.succeed(row.state)
        }
      )

    const byKey = (
      operation: "get" | "keepAlive",
      resourceName: string,
      key: unknown,
      callers: ReadonlyArray<string>
    ): Effect.Effect<unknown, NotFound | ValidationError | StoreClosed | Unavailable> => {
      const resource = admitRead(resourceName)
      if (!Admission.isCompiled(resource)) return Effect.fail(resource)
      const target = entityOf(resource, key)
      if (!("id" in target)) return Effect.fail(target as ValidationError)
      // a record calling itself reads its row: its entity is busy running the caller
      if (
        resource.idleMillis === undefined || callers.some((run) => recordOfRun(run) === `${resource.name}/${target.id}`)
      ) {
        return fromRow(resource, target, operation)
      }
      return Effect.flatMap(
        send(resource, target.key, operation, ctx.client(resource.name)(target.id).Get({ callers })),
        decodeReply(resource, target.key, operation, undefined)
      ) as Effect.Effect<unknown, NotFound | ValidationError | Unavailable>
    }

    const get: DataLayer.Service["get"] = (resourceName, key) =>
      Effect.withFiber((fiber) => byKey("get", resourceName, key, fiber.getRef(CurrentCallers)))

    const keepAlive: DataLayer.Service["keepAlive"] = (resourceName, key) =>
      Effect.asVoid(Effect.withFiber((fiber) => byKey("keepAlive", resourceName, key, fiber.getRef(CurrentCallers))))

    /** A record's pending schedules: asked of its owner, which knows their retries (no activity). */
    const schedules: NonNullable<DataLayer.Service["schedules"]> = (resourceName, key) =>
      Effect.suspend((): DataLayer.Listed => {
        const resource = admitRead(resourceName)
        if (!Admission.isCompiled(resource)) return Effect.fail(resource)
        const target = entityOf(resource, key)
        if (!("id" in target)) return Effect.fail(target as ValidationError)
        return Effect.map(
          send(resource, target.key, "schedules", ctx.client(resource.name)(target.id).Schedules()),
          (reply) => schedulesOf(resource, reply)
        ) as DataLayer.Listed
      })

    return { send, create, update, destroy, get, keepAlive, schedules }
  })

/** The last failure of a call that gave up, in words (what `Unavailable.lastFailure` holds). */
const describeFailure = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.findErrorOption(cause)
  if (error._tag === "Some" && !Cause.hasDies(cause)) {
    const e = error.value as { readonly _tag?: unknown; readonly message?: unknown }
    if (e._tag === "EntityNotAssignedToRunner") {
      return "EntityNotAssignedToRunner: no runner accepted the record's shard (not yet assigned, or this process is stopping)"
    }
    if (e._tag === retryableTag) return String(e.message)
    if (e instanceof NoRunner) {
      return e.sent
        ? "no runner: the last runner left while the call waited to be delivered"
        : "no runner: no healthy runner is registered (RunnerStorage), nowhere to send the call"
    }
    const tag = typeof e._tag === "string" ? e._tag : "error"
    return typeof e.message === "string" && e.message !== "" ? `${tag}: ${e.message}` : tag
  }
  if (Cause.hasInterruptsOnly(cause)) return "interrupted: the reply was lost (the runner serving the call stopped)"
  const defect = Cause.squash(cause)
  return `defect: ${defect instanceof Error ? defect.message : String(defect)}`
}

/** No runner is up: the call was not sent, or (`sent`) was abandoned while effect/cluster re-sent it. */
class NoRunner {
  readonly _tag = "NoRunner"
  constructor(readonly sent: boolean) {}
}

/** A failure of the cluster, not of the record: the message is re-sent. */
class Retry {
  constructor(readonly props: { readonly cause: Cause.Cause<unknown> }) {}
  get cause() {
    return this.props.cause
  }
}
