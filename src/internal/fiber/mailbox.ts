/**
 * The record's fiber: the loop around the record server's steps.
 *
 * It runs the create request, then takes the mailbox in batches (all it
 * holds, at once) and serves each request in turn (`server.ts` decides what
 * a request does), replies, and hands a crash to the supervisor's restart
 * before the crashed caller is answered. Module-level functions, no
 * per-record closures: an idle record's fiber holds only its wait on the
 * mailbox.
 *
 * Pending callers of a removed record get `NotFound`; of an interrupted one
 * (the store closing), `StoreClosed`.
 *
 * @internal
 */
import { Cause, Deferred, Effect, Exit } from "effect"
import type { StoreError } from "../../Errors.js"
import * as Errors from "../record/errors.js"
import * as Lifecycle from "../record/lifecycle.js"
import * as Step from "../record/outcome.js"
import type * as Schedules from "../record/schedules.js"
import * as Registry from "./registry.js"
import * as Server from "./server.js"

type Create = Extract<Server.Request, { readonly _tag: "Create" }>
type Call = Extract<Server.Request, { readonly _tag: "Update" | "Destroy" }>

const reply = <A>(deferred: Deferred.Deferred<A, StoreError>, result: Step.Outcome<A>, server: Server.RecordServer) => {
  if (result._tag === "Ok") Deferred.doneUnsafe(deferred, Exit.succeed(result.value))
  else if (result._tag === "Refused") Deferred.doneUnsafe(deferred, Exit.fail(result.error))
  else Deferred.doneUnsafe(deferred, Exit.fail(Server.crashError(server, result.cause)))
}

const closed = () => Errors.storeClosed("in flight")

/** Fails every request not yet served: the current one, the rest of the batch, the mailbox. */
const failPending = (server: Server.RecordServer, error: (server: Server.RecordServer) => StoreError) => {
  const pending = server.current === undefined ? [] : [server.current]
  server.current = undefined
  if (server.batch !== undefined) {
    for (let i = server.next; i < server.batch.length; i++) pending.push(server.batch[i]!)
    server.batch = undefined
  }
  if (server.mailbox !== undefined) {
    pending.push(...server.mailbox)
    server.mailbox = undefined
  }
  for (const request of pending) {
    const deferred = replyOf(request)
    if (deferred !== undefined) Deferred.doneUnsafe(deferred, Exit.fail(error(server)))
  }
}

/** Where a request is answered; `undefined` for the record's own requests. */
const replyOf = (request: Server.Request): Deferred.Deferred<any, StoreError> | undefined =>
  request._tag === "Expire" || request._tag === "Hibernate" || request._tag === "Fire"
    ? undefined
    : request._tag === "Continue"
    ? request.call.reply
    : request.reply

/**
 * Serves an update in its caller's fiber when the record is idle: its fiber
 * waits on an empty mailbox, so nothing is before the call. A step that
 * finishes synchronously is answered at once (no trip through the record's
 * fiber); one that needs the record's fiber (hooks, an effectful change, a
 * restart after a crash) is handed to it, first in its mailbox. `false`
 * when the record is not idle, or for a destroy (which ends the record's
 * fiber): the call goes to the mailbox.
 *
 * @internal
 */
export const serveNow = (server: Server.RecordServer, request: Server.Request): boolean => {
  const dispatcher = server.dispatcher
  if (
    request._tag !== "Update" || dispatcher === undefined ||
    server.status !== "live" || server.doorbell === undefined || server.mailbox !== undefined
  ) return false
  const step = Server.serve(server, request)
  if (Step.isEffect(step) || step._tag === "Crashed") {
    Server.post(server, dispatcher, { _tag: "Continue", call: request, step })
  } else {
    reply(request.reply, step, server)
    server.ctx.metrics.call(server.ctx.now() - request.at)
  }
  return true
}

/**
 * The record's fiber: runs the create request, then serves the mailbox
 * until the record is destroyed, removed or interrupted. Its interruption
 * is handled by {@link ended}, which the supervisor observes the fiber with.
 * The record is awake from here: its mailbox rings the dispatcher of the
 * fiber running this (`Server.post`).
 *
 * @internal
 */
export const run = (server: Server.RecordServer, first: Create): Effect.Effect<void, never, any> =>
  Effect.withFiber((fiber) => {
    server.dispatcher = fiber.currentDispatcher
    server.current = first
    // the create action runs in the record's fiber, like every action
    const created = Server.create(server, first.chain, first.span, first.op)
    return Step.isEffect(created)
      ? Effect.flatMap(created, (outcome) => started(server, first, outcome))
      : started(server, first, created)
  })

/**
 * The fiber of a record waking from hibernation: awake again, it serves the
 * requests that arrived while it slept (its mailbox), in order, then what
 * comes next.
 *
 * @internal
 */
export const resume = (server: Server.RecordServer): Effect.Effect<void, never, any> =>
  Effect.withFiber((fiber) => {
    server.dispatcher = fiber.currentDispatcher
    return serveMailbox(server)
  })

/**
 * Observes the end of a record's fiber (an observer, not an `onInterrupt`
 * around the loop: a finalizer would stay on the idle fiber's stack). An
 * interrupted fiber (the store closing) stops the record and fails what
 * waits for it with `StoreClosed`; one interrupted before it ran fails the
 * create it was to run, or the requests it was woken for.
 *
 * @internal
 */
export const ended = (server: Server.RecordServer, exit: Exit.Exit<void>): void => {
  if (!Exit.isFailure(exit) || !Cause.hasInterrupts(exit.cause)) return
  if (server.dispatcher !== undefined) return onInterrupted(server)
  if (server.status === "starting") {
    const first = server.current
    server.current = undefined
    if (first?._tag === "Create") Deferred.doneUnsafe(first.reply, Exit.fail(closedWhileCreating()))
  } else if (server.mailbox !== undefined) failPending(server, closed)
}

const closedWhileCreating = () => Errors.storeClosed("creating")

const onInterrupted = (server: Server.RecordServer) => {
  server.doorbell = undefined
  server.status = "stopped"
  Server.settle(server)
  Registry.delistUnsafe(server.ctx.table, server)
  failPending(server, closed)
}

const started = (server: Server.RecordServer, first: Create, created: Step.Outcome<any>) => {
  server.current = undefined
  if (created._tag !== "Ok") {
    server.status = "stopped"
    reply(first.reply, created, server)
    return Effect.void
  }
  // live since its commit (`Created` published): answered now
  Deferred.doneUnsafe(first.reply, Exit.succeed(created.value))
  return serveMailbox(server)
}

const serveMailbox = (server: Server.RecordServer): Effect.Effect<void, never, any> => {
  if (server.status !== "live") {
    failPending(server, Server.notFound)
    return Effect.void
  }
  // hibernated while serving its last batch: the fiber ends here
  if (server.dispatcher === undefined) return Effect.void
  return server.mailbox === undefined ? awaitMail(server) : takeAll(server)
}

/**
 * Takes the whole mailbox as the next batch (what arrives meanwhile goes to
 * a new one) and serves it. Its own step of the fiber, as `Queue.takeAll`
 * was: the batch is what arrived until the fiber takes it.
 */
const takeAll = (server: Server.RecordServer) =>
  Effect.suspend(() => {
    const batch = server.mailbox
    server.mailbox = undefined
    return batch === undefined ? serveMailbox(server) : serveBatch(server, batch)
  })

/**
 * Waits, with an empty mailbox, until a request is posted: `Server.post`
 * rings the doorbell, resuming the fiber with its next turn
 * ({@link serveMailbox}). The wait is the last thing on the fiber's stack,
 * so an idle record's fiber holds only the callback's resume (3 small
 * objects); waiting in `Queue.takeAll` under a continuation held about 20
 * (the take's retry, its taker entry and cancellation, the continuation),
 * and the `Queue` itself 9 more for the record's whole awake life.
 *
 * The mailbox is checked again when the wait begins, in the same step as the
 * doorbell is set: the fiber may yield between the check in `serveMailbox`
 * and this one (its scheduler's `shouldYield`), and a request posted in
 * between found no doorbell to ring.
 */
const awaitMail = (server: Server.RecordServer) =>
  Effect.callback<void, never, any>((resume) => {
    if (server.mailbox !== undefined) resume(next(server))
    else server.doorbell = resume
  })

/** The turn of a record's fiber once its doorbell rang. @internal */
export const next = (server: Server.RecordServer): Effect.Effect<void, never, any> =>
  Effect.suspend(() => serveMailbox(server))

const serveBatch = (server: Server.RecordServer, batch: ReadonlyArray<Server.Request>) => {
  server.ctx.metrics.batch(batch.length)
  server.batch = batch
  const rest = drain(server, batch, 0)
  return rest === undefined ? serveMailbox(server) : Effect.flatMap(rest, () => serveMailbox(server))
}

/** Serves a batch from `from` on, synchronously while it can; an Effect for the rest once a step needs one. */
const drain = (
  server: Server.RecordServer,
  batch: ReadonlyArray<Server.Request>,
  from: number
): Effect.Effect<void, never, any> | undefined => {
  for (let i = from; i < batch.length; i++) {
    const request = batch[i]!
    server.next = i + 1
    if (server.status !== "live") {
      const deferred = replyOf(request)
      if (deferred !== undefined) Deferred.doneUnsafe(deferred, Exit.fail(Server.notFound(server)))
      continue
    }
    if (request._tag === "Hibernate") {
      hibernate(server, i + 1 === batch.length)
      continue
    }
    server.current = request
    const effect = serveOne(server, request)
    if (effect !== undefined) {
      return Effect.flatMap(effect, () => {
        server.current = undefined
        return drain(server, batch, i + 1) ?? Effect.void
      })
    }
    server.current = undefined
  }
  server.batch = undefined
  return undefined
}

/** Serves one request; `undefined` when it was served synchronously. */
const serveOne = (
  server: Server.RecordServer,
  request: Server.Request
): Effect.Effect<void, never, any> | undefined => {
  switch (request._tag) {
    case "Create":
      return undefined
    case "Update":
    case "Destroy":
      return answer(server, request, Server.serve(server, request))
    case "Hibernate":
      return undefined
    case "Continue":
      return answer(server, request.call, request.step)
    case "Expire": {
      const step = Server.destroy(server, server.resource.primaryDestroy, request.reason, [], undefined, undefined)
      return Step.isEffect(step) ? Effect.asVoid(step) : undefined
    }
    case "Fire":
      return fired(server, request.schedule, Server.fire(server, request.schedule))
  }
}

/**
 * Ends a scheduled run: tells the supervisor how it went (retried, given
 * up, or done); a crash restarts the record first, as for a call.
 */
const fired = (
  server: Server.RecordServer,
  schedule: Schedules.Pending,
  step: Step.Step<unknown>
): Effect.Effect<void, never, any> => {
  if (Step.isEffect(step)) return Effect.flatMap(step, (outcome) => fired(server, schedule, outcome))
  if (step._tag === "Ok") return server.ctx.fired(server, schedule, undefined)
  const failure = Step.describe(step)
  if (step._tag === "Refused") return server.ctx.fired(server, schedule, failure)
  return Effect.andThen(restart(server, step.cause), server.ctx.fired(server, schedule, failure))
}

/** Replies to a call; on a crash, restarts the record first, so the caller's next call sees the restarted record. */
const answer = <A>(
  server: Server.RecordServer,
  request: Call,
  step: Step.Step<A>
): Effect.Effect<void, never, any> | undefined => {
  if (Step.isEffect(step)) return Effect.flatMap(step, (result) => answer(server, request, result) ?? Effect.void)
  const ctx = server.ctx
  if (step._tag !== "Crashed") {
    reply(request.reply, step, server)
    ctx.metrics.call(ctx.now() - request.at)
    return undefined
  }
  // the error names the record as the caller knew it, before the restart
  const error = Server.crashError(server, step.cause)
  return Effect.map(restart(server, step.cause), () => {
    Deferred.doneUnsafe(request.reply, Exit.fail(error))
    ctx.metrics.call(ctx.now() - request.at)
  })
}

const restart = (server: Server.RecordServer, cause: Cause.Cause<unknown>) => {
  Server.settle(server)
  server.pending = undefined
  return server.ctx.restart(server, cause)
}

/**
 * Serves a hibernation request: when nothing waits behind it and the record
 * had no activity for `hibernateAfter`, the record gives up its fiber (which
 * ends once the batch is done; the next request wakes a new one); otherwise it stays awake and its
 * hibernation deadline is tracked again.
 */
const hibernate = (server: Server.RecordServer, last: boolean) => {
  const idle = last && server.mailbox === undefined &&
    server.ctx.time() >= Lifecycle.hibernatesAt(server.resource, server.lastActivity)
  if (idle) {
    server.dispatcher = undefined
    server.ctx.metrics.sleep(1)
  } else server.ctx.stayAwake(server)
}
