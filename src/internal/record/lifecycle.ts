/**
 * A record's lifecycle policy, decided in one place for every data layer:
 * its deadlines (inactivity, lifetime), whether it is past them and which
 * passed first, activity, when an idle record hibernates, and what a crash
 * leads to (the restart policy and OTP's restart intensity).
 *
 * Pure functions of the record's times and the clock's `now`: the layers
 * decide when to ask (an expiry fiber, a touch, a sweep).
 *
 * @internal
 */
import type { RestartPolicy } from "../../Resource.js"
import type { Compiled } from "../resource.js"

/** What a record's lifecycle needs to know of it. @internal */
export interface Times {
  readonly resource: Compiled
  readonly createdAt: number
  readonly lastActivity: number
}

/** The inactivity deadline of a record last active at `lastActivity` (`Infinity`: none). @internal */
export const idleDeadline = (resource: Compiled, lastActivity: number): number =>
  resource.idleMillis === undefined ? Infinity : lastActivity + resource.idleMillis

/** The lifetime deadline of a record created at `createdAt` (`Infinity`: none). @internal */
export const lifetimeDeadline = (resource: Compiled, createdAt: number): number =>
  resource.lifetimeMillis === undefined ? Infinity : createdAt + resource.lifetimeMillis

/** The earliest of a record's deadlines (`Infinity`: none). @internal */
export const deadline = (times: Times): number =>
  Math.min(idleDeadline(times.resource, times.lastActivity), lifetimeDeadline(times.resource, times.createdAt))

/** Whether a record is past its inactivity or lifetime deadline at `now`. @internal */
export const isExpired = (times: Times, now: number): boolean => now >= deadline(times)

/**
 * When an awake record last active at `lastActivity` may give up its fiber
 * (`hibernateAfter`; `Infinity`: never). Only the GenServer layer has record
 * fibers to give up. @internal
 */
export const hibernatesAt = (resource: Compiled, lastActivity: number): number =>
  resource.hibernateMillis === undefined ? Infinity : lastActivity + resource.hibernateMillis

/** The deadline that passed first (lifetime on a tie), whenever the record is found past it. @internal */
export const expiryReason = (times: Times): "inactivity" | "lifetime" => {
  const { idleMillis, lifetimeMillis } = times.resource
  if (lifetimeMillis === undefined) return "inactivity"
  if (idleMillis === undefined) return "lifetime"
  return times.createdAt + lifetimeMillis <= times.lastActivity + idleMillis ? "lifetime" : "inactivity"
}

/** Records activity at `now` (never moves it back). @internal */
export const touchUnsafe = (times: { lastActivity: number }, now: number): void => {
  if (now > times.lastActivity) times.lastActivity = now
}

/** What a crash leads to: resume the last state, run the create again, or remove the record (`Failed`). @internal */
export type Restart = "lastState" | "initial" | "fail"

/**
 * The restart decision after a crash at `now`: `restarts` are the times of
 * earlier crashes (the record's own, updated in place to those within the
 * intensity's window, this one included). More than `maxRestarts` within
 * `within` fails the record, as OTP's restart intensity does; otherwise the
 * policy decides (`"initial"` only when the create can run again).
 *
 * @internal
 */
export const restart = (
  resource: Compiled,
  policy: RestartPolicy,
  restarts: Array<number>,
  now: number,
  canRecreate: boolean
): Restart => {
  let kept = 0
  for (const t of restarts) if (now - t < resource.withinMillis) restarts[kept++] = t
  restarts.length = kept
  restarts.push(now)
  if (policy === "never" || restarts.length > resource.maxRestarts) return "fail"
  return policy === "initial" && canRecreate ? "initial" : "lastState"
}
