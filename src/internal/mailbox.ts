/**
 * The record's fiber: the loop around the record server's steps.
 *
 * It runs the create request, then takes the mailbox in batches and serves
 * each request in turn (`server.ts` decides what a request does), replies,
 * and hands a crash to the supervisor's restart before the crashed caller
 * is answered. Module-level functions, no per-record closures: an idle
 * record's fiber holds only its wait on the mailbox.
 *
 * Pending callers of a removed record get `NotFound`; of an interrupted one
 * (the store closing), `StoreClosed`.
 *
 * @internal
 */
import { type Cause, Deferred, Effect, Exit, Queue } from "effect"
import { StoreClosed, type StoreError } from "../Errors.js"
import * as Registry from "./registry.js"
import * as Server from "./server.js"
import * as Step from "./step.js"

type Create = Extract<Server.Request, { readonly _tag: "Create" }>
type Call = Extract<Server.Request, { readonly _tag: "Update" | "Destroy" }>

const reply = <A>(deferred: Deferred.Deferred<A, StoreError>, result: Step.Outcome<A>, server: Server.RecordServer) => {
  if (result._tag === "Ok") Deferred.doneUnsafe(deferred, Exit.succeed(result.value))
  else if (result._tag === "Refused") Deferred.doneUnsafe(deferred, Exit.fail(result.error))
  else Deferred.doneUnsafe(deferred, Exit.fail(Server.crashError(server, result.cause)))
}

const closed = () => new StoreClosed({ message: "the store was closed while the call was in flight" })

/** Fails every request not yet served: the current one, the rest of the batch, the mailbox. */
const failPending = (server: Server.RecordServer, error: (server: Server.RecordServer) => StoreError) => {
  const pending = server.current === undefined ? [] : [server.current]
  server.current = undefined
  if (server.batch !== undefined) {
    for (let i = server.next; i < server.batch.length; i++) pending.push(server.batch[i]!)
    server.batch = undefined
  }
  for (let taken = Queue.takeUnsafe(server.mailbox); taken !== undefined && Exit.isSuccess(taken);) {
    pending.push(taken.value)
    taken = Queue.takeUnsafe(server.mailbox)
  }
  for (const request of pending) {
    if (request._tag !== "Expire") Deferred.doneUnsafe(request.reply, Exit.fail(error(server)))
  }
}

/**
 * The record's fiber: runs the create request, then serves the mailbox
 * until the record is destroyed, removed or interrupted.
 *
 * @internal
 */
export const run = (server: Server.RecordServer, first: Create): Effect.Effect<void, never, any> => {
  server.current = first
  return Effect.onInterrupt(
    // the create action runs in the record's fiber, like every action
    Effect.suspend(() => {
      const created = Server.create(server, first.chain, first.span)
      return Step.isEffect(created)
        ? Effect.flatMap(created, (outcome) => started(server, first, outcome))
        : started(server, first, created)
    }),
    () => onInterrupted(server)
  )
}

const onInterrupted = (server: Server.RecordServer) =>
  Effect.sync(() => {
    server.status = "stopped"
    Server.settle(server)
    Registry.delistUnsafe(server.ctx.table, server)
    failPending(server, closed)
  })

const started = (server: Server.RecordServer, first: Create, created: Step.Outcome<any>) => {
  server.current = undefined
  if (created._tag !== "Ok") {
    server.status = "stopped"
    reply(first.reply, created, server)
    return Effect.void
  }
  Server.live(server)
  Deferred.doneUnsafe(first.reply, Exit.succeed(created.value))
  return serveMailbox(server)
}

const serveMailbox = (server: Server.RecordServer): Effect.Effect<void, never, any> => {
  if (server.status !== "live") {
    failPending(server, Server.notFound)
    return Effect.void
  }
  return Effect.flatMap(Queue.takeAll(server.mailbox), (batch) => serveBatch(server, batch))
}

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
      if (request._tag !== "Expire") Deferred.doneUnsafe(request.reply, Exit.fail(Server.notFound(server)))
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
    case "Expire": {
      const step = Server.destroy(server, server.resource.primaryDestroy, request.reason, [], undefined)
      return Step.isEffect(step) ? Effect.asVoid(step) : undefined
    }
  }
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
