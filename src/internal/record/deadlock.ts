/**
 * Deadlock detection: the wait-for graph between running actions, keyed by
 * record ids.
 *
 * A record runs one action at a time. While it runs one, it is an
 * *activation* (`{ id, seq }`: the record's id and a number naming this run
 * of an action). A hook of that action that calls another record (an update,
 * a destroy or a create) adds an edge from the activation to the target's id
 * for as long as the call is awaited; a call that would close a cycle (the
 * target waits, directly or through other records, on the caller) is refused
 * with `ReentrantCall` instead of waiting forever.
 *
 * **Invariants**
 *
 * - Edges belong to an activation: they are added only while it runs and all
 *   of its edges go when it ends ({@link WaitGraph.end}), even if a fiber it
 *   forked is still awaiting a call. A call from a fiber whose activation has
 *   ended waits on behalf of nobody: it adds no edge and is never refused.
 * - An edge is added *before* the request is offered to the target's
 *   mailbox and removed after its reply is awaited (or the wait is
 *   interrupted), so a target that calls back while serving it sees the edge.
 * - Nothing here holds a record server: nodes are ids (numbers, strings), so the same
 *   graph serves every data layer, and a request carries only the caller's
 *   activation.
 *
 * The chain a fiber carries (`CurrentChain`) lists the activations it runs
 * on behalf of, innermost last. Only its *attached* prefix counts (see
 * {@link WaitGraph.attached}): an activation that stopped waiting (its call
 * timed out, it moved on to another action) no longer lends its pending
 * state to the callee.
 *
 * @internal
 */
import { Context } from "effect"

/**
 * A node of the graph: a record's id, unique among the records of a data
 * layer (a number for an in-process record, the encoded address of a
 * remote one).
 *
 * @internal
 */
export type Id = string | number

/** One run of one action of one record. @internal */
export interface Activation {
  readonly id: Id
  readonly seq: number
}

/** The activations a fiber runs on behalf of, innermost last. @internal */
export type Chain = ReadonlyArray<Activation>

/** @internal */
export const CurrentChain: Context.Reference<Chain> = Context.Reference<Chain>(
  "effect-gen-server/internal/CurrentChain",
  { defaultValue: () => [] }
)

const none: Chain = []

/**
 * The wait-for graph of one data layer.
 *
 * @internal
 */
export class WaitGraph {
  private seq = 0
  /** The activation each acting record runs now. */
  private readonly acting = new Map<Id, number>()
  /** Edges from an acting record to the records it awaits, with multiplicity. */
  private readonly edges = new Map<Id, Map<Id, number>>()

  /** Starts an action of record `id`; the activation to end it with. */
  begin(id: Id): Activation {
    const activation = { id, seq: ++this.seq }
    this.acting.set(id, activation.seq)
    return activation
  }

  /** Ends an activation, and with it every edge it added. */
  end(activation: Activation): void {
    if (this.acting.get(activation.id) !== activation.seq) return
    this.acting.delete(activation.id)
    this.edges.delete(activation.id)
  }

  isActing(activation: Activation): boolean {
    return this.acting.get(activation.id) === activation.seq
  }

  /**
   * The innermost activations of `chain` that are still waiting on the
   * current fiber, outermost first: the innermost one if it still runs, then
   * each outer one as long as it still runs and still awaits the next.
   */
  attached(chain: Chain): Chain {
    let i = chain.length - 1
    if (i < 0 || !this.isActing(chain[i]!)) return none
    while (i > 0) {
      const outer = chain[i - 1]!
      if (!this.isActing(outer) || (this.edges.get(outer.id)?.get(chain[i]!.id) ?? 0) === 0) break
      i--
    }
    return i === 0 ? chain : chain.slice(i)
  }

  /**
   * Whether a fiber running for `chain` runs on behalf of `activation`: it is
   * in the attached part of the chain. What may see that action's pending
   * state.
   */
  runsFor(chain: Chain, activation: Activation | undefined): boolean {
    if (activation === undefined || chain.length === 0) return false
    for (const a of this.attached(chain)) if (a.id === activation.id && a.seq === activation.seq) return true
    return false
  }

  /** The activation a call from a fiber with `chain` is made by, if it still runs. */
  caller(chain: Chain): Activation | undefined {
    const last = chain.length === 0 ? undefined : chain[chain.length - 1]!
    return last !== undefined && this.isActing(last) ? last : undefined
  }

  /** Whether `caller` waiting on `target` would close a cycle: `target` reaches `caller`. */
  wouldDeadlock(caller: Activation, target: Id): boolean {
    if (target === caller.id) return true
    const from = this.edges.get(target)
    if (from === undefined) return false
    const seen = new Set<Id>([target])
    const stack = [...from.keys()]
    while (stack.length > 0) {
      const id = stack.pop()!
      if (id === caller.id) return true
      if (seen.has(id)) continue
      seen.add(id)
      const next = this.edges.get(id)
      if (next !== undefined) { for (const to of next.keys()) stack.push(to) }
    }
    return false
  }

  /** Adds the edge `caller -> target`; the function that removes it (once). */
  wait(caller: Activation, target: Id): () => void {
    let out = this.edges.get(caller.id)
    if (out === undefined) this.edges.set(caller.id, out = new Map())
    out.set(target, (out.get(target) ?? 0) + 1)
    let done = false
    return () => {
      if (done) return
      done = true
      // the activation may have ended (its edges are gone) or a later one of the same record may own them
      if (!this.isActing(caller)) return
      const edges = this.edges.get(caller.id)
      const n = edges?.get(target)
      if (edges === undefined || n === undefined) return
      if (n > 1) edges.set(target, n - 1)
      else {
        edges.delete(target)
        if (edges.size === 0) this.edges.delete(caller.id)
      }
    }
  }
}
