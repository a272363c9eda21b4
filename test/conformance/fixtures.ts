/**
 * The resources of the conformance suite: the TimeTravel story told again,
 * with hooks that write to a {@link Journal} so a test can see which hooks
 * ran, and actions that refuse, fail, corrupt or crash on demand.
 *
 * - `Traveller`: a character with a generated id, an optional nickname, a year
 *   that must stay >= 0, an inactivity timeout of 10 s and a lifetime of 60 s;
 *   its declared `destroy` writes `destroy <id>` from an after hook.
 * - `Machine`: charged, it takes its occupants through time from an after
 *   hook; uncharged, it refuses.
 * - `Seat`: a composite key (`venue`, `row`).
 * - `Archive`: a record with no timeouts and an indexed field, for queries.
 * - `Phoenix` / `Keeper` / `Mortal`: counters restarted `"initial"`,
 *   `"lastState"` and `"never"`, whose create writes `create <id>`.
 * - `Peer`: two records whose hooks call each other, met at a {@link Barrier}.
 * - `Link` / `Child`: calls between records through a create, and a call
 *   forked from a hook without waiting for it.
 */
import { Context, Deferred, type Duration, Effect, Layer, Schedule, Schema } from "effect"
import { Action, Changeset, Resource, Store } from "effect-gen-server"

/** What hooks write down, in order. */
export class Journal extends Context.Service<Journal, { readonly entries: Array<string> }>()(
  "test/conformance/Journal"
) {}

/** Appends an entry to the journal. */
export const note = (entry: string): Effect.Effect<void, never, Journal> =>
  Effect.gen(function*() {
    const journal = yield* Journal
    journal.entries.push(entry)
  })

/** Lets a test wait until every party has arrived at it. */
export class Barrier extends Context.Service<Barrier, { readonly arrive: Effect.Effect<void> }>()(
  "test/conformance/Barrier"
) {}

/** A gate a hook waits at: `entered` says it is waiting, `release` lets it go on. */
export class Gate extends Context.Service<Gate, {
  readonly entered: Deferred.Deferred<void>
  readonly release: Deferred.Deferred<void>
}>()("test/conformance/Gate") {}

/** A fresh journal, barrier (for two parties) and gate, and a layer providing them. */
export const makeServices = Effect.gen(function*() {
  const gate = Gate.of({ entered: yield* Deferred.make<void>(), release: yield* Deferred.make<void>() })
  const journal = Journal.of({ entries: [] })
  let arrived = 0
  const open = yield* Deferred.make<void>()
  const barrier = Barrier.of({
    arrive: Effect.suspend(() => {
      arrived++
      return arrived >= 2 ? Deferred.succeed(open, undefined) : Deferred.await(open)
    }).pipe(Effect.asVoid)
  })
  return {
    journal,
    gate,
    layer: Layer.mergeAll(Layer.succeed(Journal, journal), Layer.succeed(Barrier, barrier), Layer.succeed(Gate, gate))
  }
})

const boom = (where: string) => new Error(`boom in ${where}`)

/** Waits at the gate: says it is waiting (`entered`), then waits for `release`. */
const atGate = Effect.gen(function*() {
  const gate = yield* Gate
  yield* Deferred.succeed(gate.entered, undefined)
  yield* Deferred.await(gate.release)
})

/** Who calls a Traveller from its own hooks (an annotated accessor keeps the type from being circular). */
const traveller = (): Resource.Any => Traveller

let generated = 0

export const Traveller = Resource.make("Traveller", {
  fields: {
    id: Schema.String,
    name: Schema.String,
    nickname: Schema.optionalKey(Schema.String),
    currentYear: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
  },
  primaryKey: ["id"],
  generated: { id: () => `t${++generated}` },
  inactivityTimeout: "10 seconds",
  maximumLifetime: "60 seconds",
  actions: {
    travelInTime: Action.update({
      arguments: { targetYear: Schema.Int },
      change: (cs) =>
        cs.pipe(
          Changeset.set("currentYear", cs.arguments.targetYear),
          Changeset.before((cs) => Effect.as(note(`before travel ${cs.data.id}`), cs)),
          Changeset.after((record: any) => Effect.as(note(`after travel ${record.id}`), record))
        )
    }),
    /** Refuses through `addError`, after setting a field. */
    refuse: Action.update({
      change: (cs) => cs.pipe(Changeset.set("name", "Refused"), Changeset.addError("the flux capacitor is dry"))
    }),
    /** A before hook that fails (an undeclared failure: `ActionError`). */
    failBefore: Action.update({
      change: (cs) =>
        cs.pipe(
          Changeset.set("name", "Before"),
          Changeset.before((cs) =>
            Effect.flatMap(note("failBefore ran"), () => Effect.fail("no plutonium")).pipe(Effect.as(cs))
          )
        )
    }),
    /** An after hook that fails, after the new state was validated. */
    failAfter: Action.update({
      change: (cs) =>
        cs.pipe(
          Changeset.set("name", "After"),
          Changeset.after((record: any) =>
            Effect.flatMap(note("failAfter ran"), () => Effect.fail("no plutonium")).pipe(Effect.as(record))
          )
        )
    }),
    /** Sets a field, then waits at the gate in a before hook: its pending state must stay unseen. */
    ponder: Action.update({
      change: (cs) =>
        cs.pipe(
          Changeset.set("name", "Pondering"),
          Changeset.before((cs) =>
            Effect.gen(function*() {
              const gate = yield* Gate
              yield* Deferred.succeed(gate.entered, undefined)
              yield* Deferred.await(gate.release)
              return cs
            })
          )
        )
    }),
    /** A before hook that outlasts the inactivity timeout (11 s). */
    linger: Action.update({
      change: (cs) =>
        cs.pipe(Changeset.set("name", "Lingered"), Changeset.before((cs) => Effect.as(Effect.sleep("11 seconds"), cs)))
    }),
    /**
     * A create whose after hook outlasts the inactivity timeout (11 s),
     * opening the gate's `entered` as it starts sleeping.
     */
    slowCreate: Action.create({
      accept: ["id", "name", "currentYear"],
      change: (cs) =>
        Changeset.after(cs, (record: any) =>
          Effect.gen(function*() {
            yield* Deferred.succeed((yield* Gate).entered, undefined)
            yield* Effect.sleep("11 seconds")
            return record
          }))
    }),
    /** A destroy whose before hook outlasts the inactivity timeout (11 s). */
    lingeringDestroy: Action.destroy({
      change: (cs) => Changeset.before(cs, (cs) => Effect.as(Effect.sleep("11 seconds"), cs))
    }),
    /** A create whose after hook waits at the gate: its caller may be interrupted there. */
    gatedCreate: Action.create({
      accept: ["id", "name", "currentYear"],
      change: (cs) => Changeset.after(cs, (record: any) => Effect.as(atGate, record))
    }),
    /** A change of key whose after hook waits at the gate: its caller may be interrupted there. */
    gatedMove: Action.update({
      accept: ["id"],
      change: (cs) => Changeset.after(cs, (record: any) => Effect.as(atGate, record))
    }),
    /** An after hook that writes to the record it was given: an invalid year, a field the schema does not know. */
    tamper: Action.update({
      change: (cs) =>
        Changeset.after(Changeset.set(cs, "name", "Tampered"), (record: any) =>
          Effect.sync(() => {
            record.currentYear = -1
            record.extra = "x"
            return record
          }))
    }),
    /** An after hook that writes to what a get of its own record returns (the state pending, or a copy). */
    tamperSeen: Action.update({
      change: (cs) =>
        Changeset.after(
          Changeset.set(cs, "name", "Tampered"),
          (record: any) =>
            Effect.map(Store.get(traveller(), { id: record.id } as never), (seen: any) => {
              seen.currentYear = -1
              return record
            })
        )
    }),
    /** A new state the schema refuses (a negative year). */
    corrupt: Action.update({ change: (cs) => Changeset.set(cs, "currentYear", -1) }),
    /** A defect in an after hook, after setting a field. */
    crash: Action.update({
      change: (cs) =>
        cs.pipe(
          Changeset.set("name", "Crashed"),
          Changeset.after((record: any) => Effect.as(Effect.die(boom("after hook")), record))
        )
    }),
    /** An after hook calling its own record; the inner call's failure is written down. */
    selfCall: Action.update({
      change: (cs) =>
        Changeset.after(
          cs,
          (record: any) =>
            Store.update(traveller(), { id: record.id } as never, "update" as never, { name: "Inner" } as never).pipe(
              Effect.match({
                onFailure: (e) => `inner ${e._tag}`,
                onSuccess: () => "inner Success"
              }),
              Effect.flatMap(note),
              Effect.as(record)
            )
        )
    }),
    destroy: Action.destroy({
      change: (cs) => Changeset.after(cs, (record: any) => Effect.as(note(`destroy ${record.id}`), record))
    })
  }
})
export type Traveller = Resource.Record<typeof Traveller>

export const Machine = Resource.make("Machine", {
  fields: { id: Schema.String, name: Schema.String, hasPower: Schema.Boolean },
  primaryKey: ["id"],
  generated: { hasPower: () => false },
  actions: {
    charge: Action.update({ change: (cs) => Changeset.set(cs, "hasPower", true) }),
    /** Takes its occupants along: its after hook updates each of them through the Store. */
    travelInTime: Action.update({
      arguments: { occupants: Schema.Array(Schema.String), targetYear: Schema.Int },
      change: (cs) =>
        cs.data.hasPower
          ? cs.pipe(
            Changeset.set("hasPower", false),
            Changeset.after((machine: any) =>
              Effect.forEach(cs.arguments.occupants, (id) =>
                Store.update(Traveller, { id }, "travelInTime", { targetYear: cs.arguments.targetYear })).pipe(
                  Effect.as(machine)
                )
            )
          )
          : Changeset.addError(cs, "Power source needs topping up")
    })
  }
})

export const Seat = Resource.make("Seat", {
  fields: { venue: Schema.String, row: Schema.Int, holder: Schema.optionalKey(Schema.String) },
  primaryKey: ["venue", "row"]
})

export const Archive = Resource.make("Archive", {
  fields: {
    id: Schema.String,
    name: Schema.String,
    nickname: Schema.optionalKey(Schema.String),
    year: Schema.Int,
    tags: Schema.Array(Schema.String)
  },
  primaryKey: ["id"],
  // an `eq` on `year` reads the index, on another field it scans: both must agree with a plain evaluation
  indexes: ["year"]
})
export type Archive = Resource.Record<typeof Archive>

const counter = (name: string, restart: Resource.RestartPolicy) =>
  Resource.make(name, {
    fields: { id: Schema.String, n: Schema.Int },
    primaryKey: ["id"],
    restart,
    actions: {
      create: Action.create({
        accept: ["id", "n"],
        change: (cs) => Changeset.after(cs, (record: any) => Effect.as(note(`create ${record.id}`), record))
      }),
      increment: Action.update({ change: (cs) => Changeset.set(cs, "n", Changeset.get(cs, "n") + 1) }),
      /** A defect in the change itself, after setting a field. */
      crash: Action.update({
        change: (cs) => Effect.as(Effect.die(boom("change")), Changeset.set(cs, "n", 1000))
      }),
      /** An action that interrupts itself: a crash of the record like any other, run once. */
      halt: Action.update({
        change: (cs) => Effect.andThen(note(`halt ${Changeset.get(cs, "id")}`), Effect.interrupt)
      })
    }
  })

/** Restarted with its create input. */
export const Phoenix = counter("Phoenix", "initial")
/** Restarted with its last committed state. */
export const Keeper = counter("Keeper", "lastState")
/** Removed on its first crash. */
export const Mortal = counter("Mortal", "never")

/** Peer's hook calls another Peer: an annotated accessor keeps its type from being circular. */
const peer = (): Resource.Any => Peer

export const Peer = Resource.make("Peer", {
  fields: { id: Schema.String, other: Schema.String, pokes: Schema.Int },
  primaryKey: ["id"],
  actions: {
    noop: Action.update({ change: (cs) => Changeset.set(cs, "pokes", Changeset.get(cs, "pokes") + 1) }),
    poke: Action.update({
      change: (cs) =>
        Changeset.before(cs, (cs) =>
          Effect.gen(function*() {
            yield* (yield* Barrier).arrive
            yield* Store.update(peer(), { id: cs.data.other } as never, "noop" as never)
            return cs
          }))
    })
  }
})

/** Link's and Child's hooks call Links: annotated accessors keep their types from being circular. */
const link = (): Resource.Any => Link
const child = (): Resource.Any => Child

export const Link = Resource.make("Link", {
  fields: { id: Schema.String, pokes: Schema.Int },
  primaryKey: ["id"],
  actions: {
    noop: Action.update({ change: (cs) => Changeset.set(cs, "pokes", Changeset.get(cs, "pokes") + 1) }),
    /** At the barrier, then calls `target` directly. */
    direct: Action.update({
      arguments: { target: Schema.String },
      change: (cs) =>
        Changeset.before(cs, (cs) =>
          Effect.gen(function*() {
            yield* (yield* Barrier).arrive
            yield* Store.update(link(), { id: cs.arguments.target } as never, "noop" as never)
            return cs
          }))
    }),
    /** At the barrier, then creates a Child whose create hook calls `target`. */
    viaChild: Action.update({
      arguments: { target: Schema.String },
      change: (cs) =>
        Changeset.before(cs, (cs) =>
          Effect.gen(function*() {
            yield* (yield* Barrier).arrive
            yield* Store.create(
              child(),
              "create" as never,
              { id: `child of ${cs.data.id}`, target: cs.arguments.target } as never
            )
            return cs
          }))
    }),
    /** Forks a call to `target`'s `callBack` from its after hook, without waiting for it. */
    fireAndForget: Action.update({
      arguments: { target: Schema.String },
      change: (cs) =>
        Changeset.after(cs, (record: any) =>
          Effect.as(
            Effect.forkDetach(
              Store.update(
                link(),
                { id: cs.arguments.target } as never,
                "callBack" as never,
                { target: record.id } as never
              )
            ),
            record
          ))
    }),
    /** Waits at the gate, then calls `target`; writes down how that call ended. */
    callBack: Action.update({
      arguments: { target: Schema.String },
      change: (cs) =>
        Changeset.before(cs, (cs) =>
          Effect.gen(function*() {
            yield* Deferred.await((yield* Gate).release)
            const outcome = yield* Store.update(link(), { id: cs.arguments.target } as never, "noop" as never).pipe(
              Effect.match({ onFailure: (e) => e._tag, onSuccess: () => "Success" })
            )
            yield* note(`callBack ${outcome}`)
            return cs
          }))
    })
  }
})

export const Child = Resource.make("Child", {
  fields: { id: Schema.String, target: Schema.String },
  primaryKey: ["id"],
  actions: {
    create: Action.create({
      accept: ["id", "target"],
      change: (cs) =>
        Changeset.after(
          cs,
          (record: any) => Effect.as(Store.update(link(), { id: record.target } as never, "noop" as never), record)
        )
    })
  }
})

/** Every resource of the suite. */
/** A record whose destroy action refuses (`mode: "refuse"`) or dies (`"die"`): expiry must remove it anyway. */
export const Stubborn = Resource.make("Stubborn", {
  fields: { id: Schema.String, mode: Schema.Literals(["refuse", "die"]) },
  primaryKey: ["id"],
  inactivityTimeout: "10 seconds",
  defaults: ["create", "read"],
  actions: (Action) => ({
    destroy: Action.destroy({
      change: (cs) =>
        cs.data.mode === "refuse" ? Effect.fail(new Error("not today")) : Effect.die(new Error("boom in destroy"))
    })
  })
})

/** Numbers and strings in one field: storage writes Infinity, -Infinity and NaN as strings. */
export const Reading = Resource.make("Reading", {
  fields: {
    id: Schema.String,
    v: Schema.Union([Schema.Number, Schema.String]),
    history: Schema.Array(Schema.Union([Schema.Number, Schema.String]))
  },
  primaryKey: ["id"],
  actions: {
    /** Sets `v` from an argument of the same type: arguments cross a data layer as JSON too. */
    note: Action.update({
      arguments: { value: Schema.Union([Schema.Number, Schema.String]) },
      change: (cs) => Changeset.set(cs, "v", cs.arguments.value)
    })
  }
})

/**
 * A rate limiter's bucket, whose actions answer with results (`success`):
 * `take` answers `{ allowed, remaining }`, `peek` changes nothing and
 * answers the tokens left (a read-only action), `open` (a create) and
 * `drain` (a destroy) answer a number; `late` sets its result from a
 * `before` hook; `lie` and `mute` break their own `success` (a result of
 * the wrong type, none at all) while changing the record. Idle for 10 s, it
 * expires.
 */
export const Bucket = Resource.make("Bucket", {
  fields: { id: Schema.String, tokens: Schema.Int },
  primaryKey: ["id"],
  inactivityTimeout: "10 seconds",
  actions: (Action) => ({
    open: Action.create({
      accept: ["id", "tokens"],
      success: Schema.Struct({ capacity: Schema.Int }),
      change: (cs) => Changeset.result(cs, { capacity: Changeset.get(cs, "tokens") })
    }),
    take: Action.update({
      success: Schema.Struct({ allowed: Schema.Boolean, remaining: Schema.Int }),
      change: (cs) =>
        cs.data.tokens === 0
          ? Changeset.result(cs, { allowed: false, remaining: 0 })
          : cs.pipe(
            Changeset.set("tokens", cs.data.tokens - 1),
            Changeset.result({ allowed: true, remaining: cs.data.tokens - 1 })
          )
    }),
    peek: Action.update({ success: Schema.Int, change: (cs) => Changeset.result(cs, cs.data.tokens) }),
    late: Action.update({
      success: Schema.String,
      change: (cs) =>
        Changeset.before(
          Changeset.set(cs, "tokens", 100),
          (cs) => Effect.succeed(Changeset.result(cs, `before saw ${Changeset.get(cs, "tokens")}`))
        )
    }),
    lie: Action.update({
      success: Schema.Int,
      change: (cs) => Changeset.result(Changeset.set(cs, "tokens", 99), "many" as unknown as number)
    }),
    mute: Action.update({ success: Schema.Int, change: (cs) => Changeset.set(cs, "tokens", 99) }),
    drain: Action.destroy({ success: Schema.Int, change: (cs) => Changeset.result(cs, cs.data.tokens) })
  })
})

const alarmFields = {
  id: Schema.String,
  rings: Schema.Int,
  /** A broken alarm's `ring` fails (its schedule is retried, then given up). */
  broken: Schema.Boolean,
  note: Schema.optionalKey(Schema.String)
}

/** The actions of an alarm: it schedules its own `ring`, and schedules, replaces and cancels more. */
const alarmActions = (Action: Action.Constructors<Schema.Struct.Type<typeof alarmFields>>) => ({
  /** Rings in `after` (a duration), or on a cron expression, as the arguments say. */
  set: Action.create({
    accept: ["id"],
    arguments: { after: Schema.optionalKey(Schema.String), cron: Schema.optionalKey(Schema.String) },
    change: (cs) =>
      cs.pipe(
        Changeset.set("rings", 0),
        Changeset.set("broken", false),
        Changeset.schedule("ring", {
          ...(cs.arguments.cron === undefined
            ? { after: (cs.arguments.after ?? "1 hour") as Duration.Input }
            : { cron: cs.arguments.cron })
        })
      )
  }),
  ring: Action.update({
    arguments: { note: Schema.optionalKey(Schema.String) },
    change: (cs) =>
      cs.data.broken
        ? Effect.fail(new Error("the bell is broken"))
        : cs.pipe(
          Changeset.set("rings", cs.data.rings + 1),
          (cs) => cs.arguments.note === undefined ? cs : Changeset.set(cs, "note", cs.arguments.note)
        )
  }),
  /** Schedules `ring` again (replacing it), with a note, in 10 minutes. */
  snooze: Action.update({
    change: (cs) => Changeset.schedule(cs, "ring", { after: "10 minutes", arguments: { note: "snoozed" } })
  }),
  cancel: Action.update({ change: (cs) => Changeset.unschedule(cs, "ring") }),
  /** Schedules a second alarm, under its own name, then refuses: nothing is scheduled. */
  refuse: Action.update({
    change: (cs) => Changeset.addError(Changeset.schedule(cs, "ring", { after: "1 second", name: "extra" }), "no")
  }),
  /** Schedules what the arguments say: for the tests of bad input. */
  plan: Action.update({
    arguments: {
      action: Schema.String,
      after: Schema.optionalKey(Schema.String),
      at: Schema.optionalKey(Schema.Number),
      cron: Schema.optionalKey(Schema.String),
      input: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown))
    },
    change: (cs) =>
      Changeset.schedule(cs, cs.arguments.action, {
        // not checked here: the store must refuse what is malformed
        after: cs.arguments.after as Duration.Input | undefined,
        at: cs.arguments.at,
        cron: cs.arguments.cron,
        arguments: cs.arguments.input,
        name: "planned"
      })
  }),
  /** Leaves in a minute: a scheduled destroy. */
  leave: Action.update({ change: (cs) => Changeset.schedule(cs, "destroy", { after: "1 minute" }) })
})

/**
 * An alarm clock that schedules its own actions (`Changeset.schedule`):
 * idle for a minute it expires (its runs are not activity); a failing run
 * is retried twice, a second apart; awake for 1 s, it hibernates (on the
 * GenServer layer).
 */
export const Alarm = Resource.make("Alarm", {
  fields: alarmFields,
  primaryKey: ["id"],
  inactivityTimeout: "1 minute",
  hibernateAfter: "1 second",
  scheduleRetry: Schedule.spaced("1 second").pipe(Schedule.upTo({ times: 2 })),
  actions: alarmActions
})

/** The alarm whose scheduled runs count as activity (`schedulesKeepAlive`). */
export const KeptAlarm = Resource.make("KeptAlarm", {
  fields: alarmFields,
  primaryKey: ["id"],
  inactivityTimeout: "1 minute",
  schedulesKeepAlive: true,
  actions: alarmActions
})

export const allResources = [
  Traveller,
  Machine,
  Seat,
  Archive,
  Phoenix,
  Keeper,
  Mortal,
  Peer,
  Link,
  Child,
  Stubborn,
  Reading,
  Bucket,
  Alarm,
  KeptAlarm
] as const
