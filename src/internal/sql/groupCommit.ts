/**
 * Group commit: concurrent writes share one transaction. A write waits in a
 * queue; a drainer takes what is queued (up to `maxBatch`), runs it as one
 * batch and answers each write with its own outcome. No write is answered
 * before the transaction holding it committed. Two writes of one row never
 * share a batch: the second waits for the next.
 *
 * **Faults** (`faults.ts`): a batch storage refused is bisected and each
 * half run in a transaction of its own, down to the one write refused,
 * which alone fails (`applied: "no"`): one bad write never fails the rest
 * of its batch. A transient failure runs the batch again (up to
 * {@link retries} times). A batch whose fate is unknown (its connection
 * failed) fails every write in it with `applied: "unknown"`: its writers
 * read their rows back to learn what happened.
 *
 * Closing the scope takes no new write, and writes every write already
 * queued before it ends.
 *
 * @internal
 */
import { type Cause, Deferred, Effect, Exit, Fiber, Queue, type Scope } from "effect"
import { StorageFailure, type Verdict } from "./faults.js"

/** How often a batch that failed for a transient reason is run again. @internal */
export const retries = 3

interface Pending<W, O> {
  readonly write: W
  readonly done: Deferred.Deferred<O, StorageFailure>
}

/** @internal */
export interface Options<W, O> {
  /** The most writes one batch holds. */
  readonly maxBatch: number
  /** Writes of the same key never share a batch. */
  readonly keyOf: (write: W) => string
  /** Runs a batch in one transaction: the outcome of each write, in order. */
  readonly run: (batch: ReadonlyArray<W>) => Effect.Effect<ReadonlyArray<O>, unknown>
  /** What a batch's failure means (`faults.classify`). */
  readonly classify: (cause: Cause.Cause<unknown>) => { readonly verdict: Verdict; readonly message: string }
}

/** Starts the drainer; the function writes one write through it. @internal */
export const make = <W, O>(
  options: Options<W, O>
): Effect.Effect<(write: W) => Effect.Effect<O, StorageFailure>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const queue = yield* Queue.unbounded<Pending<W, O>, Cause.Done>()

    /** Runs a batch, answering every write of it: bisected when refused, again when transient. */
    const settle = (batch: ReadonlyArray<Pending<W, O>>, attempt: number): Effect.Effect<void> =>
      Effect.flatMap(Effect.exit(options.run(batch.map((p) => p.write))), (exit) => {
        if (Exit.isSuccess(exit)) {
          batch.forEach((p, i) => Deferred.doneUnsafe(p.done, Exit.succeed(exit.value[i]!)))
          return Effect.void
        }
        const { message, verdict } = options.classify(exit.cause)
        if (verdict === "transient" && attempt < retries) return settle(batch, attempt + 1)
        if (verdict === "refused" && batch.length > 1) {
          const half = Math.ceil(batch.length / 2)
          return Effect.andThen(settle(batch.slice(0, half), 0), settle(batch.slice(half), 0))
        }
        const failure = new StorageFailure({ applied: verdict === "unknown" ? "unknown" : "no", message })
        batch.forEach((p) => Deferred.doneUnsafe(p.done, Exit.fail(failure)))
        return Effect.void
      })

    /** Writes held back because their row already has a write in the current batch. */
    let held: Array<Pending<W, O>> = []
    const drain = Effect.gen(function*() {
      const taken = held
      held = []
      const more = taken.length > 0
        // the queue ended (the store closing): what was held back still goes
        ? yield* Effect.catch(Queue.takeBetween(queue, 0, options.maxBatch), () => Effect.succeed([]))
        : yield* Queue.takeBetween(queue, 1, options.maxBatch)
      const batch: Array<Pending<W, O>> = []
      const seen = new Set<string>()
      for (const p of [...taken, ...more]) {
        const id = options.keyOf(p.write)
        if (seen.has(id)) held.push(p)
        else {
          seen.add(id)
          batch.push(p)
        }
      }
      yield* settle(batch, 0)
    })
    const drainer = yield* Effect.forkScoped(Effect.forever(drain))
    // closing: no new write is taken, and every write already taken or queued is written before the scope ends
    yield* Effect.addFinalizer(() => Effect.andThen(Queue.end(queue), Fiber.await(drainer)))

    const closed = new StorageFailure({ applied: "no", message: "the state store is closed" })
    return (write: W) =>
      Effect.flatMap(Deferred.make<O, StorageFailure>(), (done) =>
        Effect.flatMap(
          Queue.offer(queue, { write, done }),
          (offered) => offered ? Deferred.await(done) : Effect.fail(closed)
        ))
  })
