/**
 * A record's schedules: the actions of its own it asked to run later
 * (`Changeset.schedule`), decided in one place for every data layer. A
 * record holds its pending schedules beside its state; they change only in
 * a commit (the one that made them, the one that ran them), so a
 * schedule's effect on the record happens exactly once.
 *
 * Pure functions of the record's schedules and the clock's `now`: the
 * layers decide when to look (a deadline heap, a sweep) and run a due one
 * as a call of the record.
 *
 * @internal
 */
import { Cron, Duration, Effect, Result, Schedule } from "effect"
import type * as Changeset from "../../Changeset.js"
import { ValidationError } from "../../Errors.js"
import type { Compiled, CompiledAction, Decoded } from "../resource.js"

/** A pending schedule, as a record holds it. @internal */
export interface Pending {
  /** Unique per record: scheduling a name again replaces it. */
  readonly name: string
  /** An update or destroy action of the record's resource. */
  readonly action: string
  /** The action's input, decoded (checked when the schedule was made). */
  readonly input: Decoded
  /** When it is due (epoch milliseconds of the layer's `Clock`). */
  readonly due: number
  /** A cron expression: once run, the schedule is due again at its next time. */
  readonly cron: string | undefined
}

/** What a changeset asks of its record's schedules, in order. @internal */
export type Request = Changeset.ScheduleRequest

/** No schedule. @internal */
export const none: ReadonlyArray<Pending> = []

const invalid = (resource: Compiled, action: string, message: string) =>
  new ValidationError({ resource: resource.name, message: `${resource.name}.${action}: ${message}` })

/** The next time of a cron expression after `now` (UTC), or why it does not parse. */
const cronNext = (expression: string, now: number): number | string => {
  const parsed = Cron.parse(expression, "UTC")
  if (Result.isFailure(parsed)) return parsed.failure.message
  return Cron.next(parsed.success, new Date(now)).getTime()
}

/** The action a schedule runs, or why it cannot. */
const targetOf = (resource: Compiled, name: string): CompiledAction | string => {
  const action = Object.prototype.hasOwnProperty.call(resource.resource.actions, name)
    ? resource.actions.get(name)
    : undefined
  if (action === undefined) return `no action ${JSON.stringify(name)} to schedule`
  if (action.kind !== "update" && action.kind !== "destroy") {
    return `${JSON.stringify(name)} is a ${action.kind} action: only update and destroy actions can be scheduled`
  }
  return action
}

/** One schedule as a request makes it, or why it is invalid. */
const make = (resource: Compiled, by: string, schedule: Extract<Request, { _tag: "Schedule" }>, now: number) => {
  const request = schedule.options
  const action = targetOf(resource, schedule.action)
  if (typeof action === "string") return invalid(resource, by, `cannot schedule: ${action}`)
  const name = request.name ?? schedule.action
  if (typeof name !== "string" || name.length === 0 || name.length > 200) {
    return invalid(resource, by, `a schedule's name must be a string of 1 to 200 characters`)
  }
  const given = [request.after, request.at, request.cron].filter((w) => w !== undefined).length
  if (given !== 1) {
    return invalid(resource, by, `schedule ${JSON.stringify(name)} needs exactly one of after, at and cron`)
  }
  let due: number
  if (request.after !== undefined) {
    const after = Duration.fromInput(request.after)
    if (after._tag === "None" || !Duration.isFinite(after.value) || Duration.toMillis(after.value) < 0) {
      return invalid(resource, by, `schedule ${JSON.stringify(name)}: after: not a finite duration`)
    }
    due = now + Duration.toMillis(after.value)
  } else if (request.at !== undefined) {
    const at = request.at instanceof Date ? request.at.getTime() : request.at
    if (typeof at !== "number" || !Number.isFinite(at)) {
      return invalid(resource, by, `schedule ${JSON.stringify(name)}: at: not a valid date`)
    }
    due = at
  } else {
    const next = typeof request.cron === "string" ? cronNext(request.cron, now) : "not a string"
    if (typeof next === "string") {
      return invalid(resource, by, `schedule ${JSON.stringify(name)}: cron ${JSON.stringify(request.cron)}: ${next}`)
    }
    due = next
  }
  const input = action.decode(request.arguments ?? {})
  if (input instanceof ValidationError) {
    return invalid(resource, by, `schedule ${JSON.stringify(name)}: ${input.message}`)
  }
  return { name, action: action.name, input, due, cron: request.cron } satisfies Pending
}

/**
 * A record's schedules once `requests` apply to `current` (in order; a
 * name scheduled again replaces the earlier one), or the `ValidationError`
 * of the first invalid request: an action the resource does not have (or
 * cannot schedule), arguments that do not fit it, an invalid date or
 * duration, a cron expression that does not parse. `by`: the action making
 * them, for the message.
 *
 * @internal
 */
export const apply = (
  resource: Compiled,
  by: string,
  current: ReadonlyArray<Pending>,
  requests: ReadonlyArray<Request>,
  now: number
): ReadonlyArray<Pending> | ValidationError => {
  let next = current
  for (const request of requests) {
    if (request._tag === "Unschedule") {
      next = next.filter((p) => p.name !== request.name)
      continue
    }
    const made = make(resource, by, request, now)
    if (made instanceof ValidationError) return made
    next = [...next.filter((p) => p.name !== made.name), made]
  }
  return next
}

/**
 * A record's schedules once `ran` ran at `now`: gone, or, for a cron
 * schedule, due at its next time. A schedule the run itself replaced or
 * removed is left as the run made it.
 *
 * @internal
 */
export const consume = (
  before: ReadonlyArray<Pending>,
  after: ReadonlyArray<Pending>,
  ran: Pending,
  now: number
): ReadonlyArray<Pending> => {
  const current = after.find((p) => p.name === ran.name)
  // replaced by the run (a new schedule under its name): kept
  if (current !== undefined && !before.includes(current)) return after
  if (current === undefined) return after
  const rest = after.filter((p) => p !== current)
  if (ran.cron === undefined) return rest
  const next = cronNext(ran.cron, Math.max(now, ran.due))
  return typeof next === "string" ? rest : [...rest, { ...ran, due: next }]
}

/** The earliest due time of `schedules` (`Infinity`: none). @internal */
export const earliest = (schedules: ReadonlyArray<Pending>): number => {
  let at = Infinity
  for (const p of schedules) if (p.due < at) at = p.due
  return at
}

/** The schedules due at `now`, earliest first. @internal */
export const due = (schedules: ReadonlyArray<Pending>, now: number): ReadonlyArray<Pending> =>
  schedules.filter((p) => p.due <= now).sort((a, b) => a.due - b.due)

/** A failed schedule's retries: when it runs again, and the retry policy's next step. @internal */
export interface Retry {
  readonly at: number
  readonly step: (now: number, input: unknown) => Effect.Effect<readonly [unknown, Duration.Duration], unknown>
}

/** What a layer holds of a record to run its schedules: its schedules, those running now, their retries. @internal */
export interface Holder {
  readonly schedules: ReadonlyArray<Pending>
  firing: Set<Pending> | undefined
  retries: Map<Pending, Retry> | undefined
}

/** When a schedule runs next: its due time, or its retry's. */
const dueOf = (holder: Holder, p: Pending): number => holder.retries?.get(p)?.at ?? p.due

/** When the record's next schedule not running now is due (`Infinity`: none). @internal */
export const nextDue = (holder: Holder): number => {
  let at = Infinity
  for (const p of holder.schedules) {
    if (holder.firing?.has(p) === true) continue
    const due = dueOf(holder, p)
    if (due < at) at = due
  }
  return at
}

/** The schedules due at `now` and not running yet, earliest first, marked running. @internal */
export const takeDue = (holder: Holder, now: number): ReadonlyArray<Pending> => {
  const due = holder.schedules.filter((p) => holder.firing?.has(p) !== true && dueOf(holder, p) <= now)
  due.sort((a, b) => dueOf(holder, a) - dueOf(holder, b))
  for (const p of due) (holder.firing ??= new Set()).add(p)
  return due
}

/**
 * A run of `pending` ended at `now` (`failure`: how it failed): `"done"`
 * (it succeeded, or the record no longer holds it), `"retry"` (its retry is
 * tracked, at the resource's `scheduleRetry` delay), or `"giveUp"` (the
 * retry policy ended: the layer removes it, `ScheduleFailed`).
 *
 * @internal
 */
export const ended = (
  resource: Compiled,
  holder: Holder,
  pending: Pending,
  failure: string | undefined,
  now: number,
  live: boolean
): Effect.Effect<"done" | "retry" | "giveUp"> =>
  Effect.suspend(() => {
    holder.firing?.delete(pending)
    if (failure === undefined || !live || !holder.schedules.includes(pending)) {
      holder.retries?.delete(pending)
      return Effect.succeed("done" as const)
    }
    return Effect.gen(function*() {
      const step = holder.retries?.get(pending)?.step ?? (yield* Schedule.toStep(resource.resource.scheduleRetry))
      const next = yield* Effect.exit(step(now, failure))
      if (next._tag === "Success") {
        ;(holder.retries ??= new Map()).set(pending, { at: now + Duration.toMillis(next.value[1]), step })
        return "retry" as const
      }
      holder.retries?.delete(pending)
      return "giveUp" as const
    })
  })

/** Forgets the retries of schedules the record no longer holds. @internal */
export const prune = (holder: Holder): void => {
  const retries = holder.retries
  if (retries === undefined) return
  for (const p of retries.keys()) if (!holder.schedules.includes(p)) retries.delete(p)
}

/** The warning of a schedule given up. @internal */
export const gaveUp = (resource: Compiled, key: string, pending: Pending, failure: string): Effect.Effect<void> =>
  Effect.logWarning(`${resource.name} gave up its schedule ${JSON.stringify(pending.name)}: ${failure}`).pipe(
    Effect.annotateLogs({ resource: resource.name, key, action: pending.action })
  )

/** A record's schedules as `Store.schedules` lists them, earliest first. @internal */
export const list = (holder: Holder): ReadonlyArray<Changeset.PendingSchedule> =>
  holder.schedules.map((p): Changeset.PendingSchedule => ({
    name: p.name,
    action: p.action,
    arguments: { ...p.input.attributes, ...p.input.arguments },
    at: new Date(dueOf(holder, p)),
    ...(p.cron === undefined ? {} : { cron: p.cron }),
    running: holder.firing?.has(p) === true
  })).sort((a, b) => a.at.getTime() - b.at.getTime())
