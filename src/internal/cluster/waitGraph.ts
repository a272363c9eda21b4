/**
 * The wait-for graph of a cluster process: which call each of its records
 * runs, and which records each run waits on, so that a call closing a cycle
 * of records waiting on each other is refused with `ReentrantCall` instead
 * of deadlocking, also across runners.
 *
 * A run is named by a token, `"Resource/entityId#<process>:<n>"`, the last
 * entry of the `CurrentCallers` its hooks carry. A run's waits are recorded
 * where the run is, before its message leaves, and where the message
 * arrives. A message arriving at a record is refused when waiting for that
 * record would close a cycle: the record's run (or a run it waits on,
 * through records' runs here and, by a `Probe` message, on other runners)
 * is one of the message's callers. A record that runs nothing on behalf of
 * the callers is waited for, even if they passed through it before (a call
 * forked from a hook).
 *
 * @internal
 */
import { Effect } from "effect"

/** How many records deep a cycle check follows waits to other runners. */
const maxProbeHops = 16

/** The record (`"Resource/entityId"`) of a run token (`"Resource/entityId#<process>:<n>"`). @internal */
export const recordOfRun = (run: string) => run.slice(0, run.lastIndexOf("#"))

/** @internal */
export class WaitGraph {
  /** The run each record runs now (by `"Resource/entityId"`). */
  readonly runningIn = new Map<string, string>()
  /** The records each run waits on. */
  private readonly waitingOn = new Map<string, Array<string>>()
  /** The records whose entities are active in this process: a record reached that is not is on another runner. */
  readonly resident = new Set<string>()
  private runs = 0

  constructor(
    /** This process's instance (in run tokens). */
    readonly origin: string,
    /** Asks a record on another runner whether its run waits, there and beyond, on one of `callers`. */
    private readonly probe: (
      record: string,
      callers: ReadonlyArray<string>,
      visited: ReadonlyArray<string>
    ) => Effect.Effect<boolean>
  ) {}

  /** A new run of `record` in this process. */
  nextRun(record: string): string {
    return `${record}#${this.origin}:${++this.runs}`
  }

  /** Whether a run is this process's. */
  isOwn(run: string): boolean {
    return run.includes(`#${this.origin}:`)
  }

  addEdge(run: string, record: string): void {
    const targets = this.waitingOn.get(run)
    if (targets === undefined) this.waitingOn.set(run, [record])
    else targets.push(record)
  }

  removeEdge(run: string, record: string): void {
    const targets = this.waitingOn.get(run)
    if (targets === undefined) return
    const i = targets.indexOf(record)
    if (i >= 0) targets.splice(i, 1)
    if (targets.length === 0) this.waitingOn.delete(run)
  }

  /**
   * Follows the waits from `target` through this process's runs: `true` when
   * one reaches a run of `callers`; the records reached that are not
   * resident here are pushed to `remote` (their runs are on other runners).
   */
  private localCycle(target: string, callers: ReadonlyArray<string>, remote: Array<string>): boolean {
    const seen = new Set<string>()
    const visit = (record: string): boolean => {
      if (seen.has(record)) return false
      seen.add(record)
      const run = this.runningIn.get(record)
      if (run === undefined) {
        if (!this.resident.has(record)) remote.push(record)
        return false
      }
      if (callers.includes(run)) return true
      return (this.waitingOn.get(run) ?? []).some(visit)
    }
    return visit(target)
  }

  /**
   * Whether waiting for `target` would close a cycle: through this process's
   * runs, then by a `Probe` to each record reached on another runner (which
   * follows its run's waits there, and so on, at most 16 records deep).
   * Every run's own waits are recorded in its own process before its message
   * leaves, so the message that closes a cycle finds every other edge of it.
   * A probe that fails or does not answer within 2 s counts as no cycle.
   */
  wouldDeadlock(
    target: string,
    callers: ReadonlyArray<string>,
    visited: ReadonlyArray<string>
  ): boolean | Effect.Effect<boolean> {
    if (callers.length === 0) return false
    const remote: Array<string> = []
    if (this.localCycle(target, callers, remote)) return true
    const next = remote.filter((record) => !visited.includes(record))
    if (next.length === 0 || visited.length >= maxProbeHops) return false
    const seen = [...visited, ...next]
    return Effect.map(
      Effect.forEach(next, (record) => this.probe(record, callers, seen), { concurrency: "unbounded" }),
      (answers) => answers.some((cycle) => cycle)
    )
  }
}
