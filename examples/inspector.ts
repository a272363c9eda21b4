/**
 * The TimeTravel story, running, with the inspector open on it.
 *
 * Hill Valley keeps living until you stop it (Ctrl-C): the DeLorean is
 * retrofitted, charged and driven through time with passengers, its flux
 * capacitor melts now and then (a crash, and a restart from its last state),
 * townsfolk arrive, travel, fall asleep (`hibernateAfter`) and fade away
 * when nobody calls on them (`inactivityTimeout`). Open the address it
 * prints to watch it:
 *
 *   inspector: http://127.0.0.1:4000/
 *
 * Configured from the environment: `PORT` (default 4000; `0` picks a free
 * port), `TOKEN` (a bearer token for the inspector; default none).
 *
 * Run with `npm run example:inspector`.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Config, Console, Effect, Layer, Random, Redacted, Schedule, Schema } from "effect"
import { Changeset, Inspector, Query, Resource, Store } from "effect-gen-server"

const Character = Resource.make("Character", {
  fields: {
    id: Schema.String,
    name: Schema.String,
    nickname: Schema.optionalKey(Schema.String),
    currentYear: Schema.Int
  },
  primaryKey: ["id"],
  generated: { id: () => crypto.randomUUID() },
  // nobody calls on them for a while: they sleep; longer: the timeline forgets them
  hibernateAfter: "3 seconds",
  inactivityTimeout: "20 seconds",
  indexes: ["currentYear"],
  actions: (Action) => ({
    travelInTime: Action.update({
      arguments: { targetYear: Schema.Int },
      change: (cs) => Changeset.set(cs, "currentYear", cs.arguments.targetYear)
    })
  })
})

class NoPower extends Schema.TaggedError<NoPower>()("NoPower", { machine: Schema.String }) {}

const Machine = Resource.make("Machine", {
  fields: {
    id: Schema.String,
    name: Schema.String,
    powerSource: Schema.optionalKey(Schema.String),
    hasPower: Schema.Boolean
  },
  primaryKey: ["id"],
  generated: { id: () => crypto.randomUUID(), hasPower: () => false },
  restart: "lastState",
  defaults: ["create", "read", "destroy"],
  actions: (Action) => ({
    charge: Action.update({ change: (cs) => Changeset.set(cs, "hasPower", true) }),
    retrofit: Action.update({
      arguments: { powerSource: Schema.String },
      change: (cs) => Changeset.set(cs, "powerSource", cs.arguments.powerSource)
    }),
    overload: Action.update({
      arguments: { gigawatts: Schema.Number },
      change: (cs) =>
        cs.arguments.gigawatts > 1.21
          ? Effect.die(new Error(`${cs.arguments.gigawatts} gigawatts: the flux capacitor melts`))
          : Effect.succeed(cs)
    }),
    travelInTime: Action.update({
      arguments: { occupants: Schema.Array(Character.schema), targetYear: Schema.Int },
      error: NoPower,
      change: (cs) =>
        cs.data.hasPower
          ? cs.pipe(
            Changeset.set("hasPower", false),
            Changeset.after((machine) =>
              Effect.forEach(cs.arguments.occupants, (c) =>
                Store.update(Character, c, "travelInTime", { targetYear: cs.arguments.targetYear })).pipe(
                  Effect.as(machine)
                )
            )
          )
          : Effect.fail(new NoPower({ machine: cs.data.name }))
    })
  })
})

const years = [1885, 1955, 1985, 2015] as const
const firstNames = ["Lorraine", "George", "Dave", "Linda", "Goldie", "Lou", "Red", "Strickland", "Marvin", "Mayor"]
const powerSources = ["Plutonium", "Lightning", "Mr. Fusion"] as const

const pick = <A>(items: ReadonlyArray<A>) =>
  Effect.map(Random.nextIntBetween(0, items.length, { halfOpen: true }), (i) => items[i]!)

/** A townsperson arrives in one of the story's years. */
const arrive = (n: number) =>
  Effect.flatMap(
    pick(years),
    (year) =>
      Store.create(Character, "create", { name: `${firstNames[n % firstNames.length]} #${n}`, currentYear: year })
  )

const story = Effect.gen(function*() {
  const cast = yield* Effect.forEach(
    [
      { name: "Marty McFly", nickname: "Marty", currentYear: 1985 },
      { name: "Emmett Brown", nickname: "Doc", currentYear: 1985 },
      { name: "Jennifer Parker", currentYear: 1985 },
      { name: "Biff Tannen", currentYear: 1955 }
    ],
    (input) => Store.create(Character, "create", input)
  )
  const delorean = yield* Store.create(Machine, "create", { name: "OUTATIME" })
  let arrivals = 0
  yield* Effect.forEach(Array.from({ length: 200 }), () => arrive(arrivals++), { discard: true })

  // the cast keeps in touch: they never expire
  const heartbeat = Effect.forEach(cast, (c) => Store.keepAlive(Character, c), { discard: true })
  // the DeLorean's round: a power source, a charge, a trip; every eighth round someone pushes 2.21 gigawatts
  let round = 0
  const trip = Effect.gen(function*() {
    round++
    if (round % 8 === 0) {
      yield* Effect.ignore(Store.update(Machine, delorean, "overload", { gigawatts: 2.21 }))
      return
    }
    yield* Store.update(Machine, delorean, "retrofit", { powerSource: yield* pick(powerSources) })
    if (round % 5 !== 0) yield* Store.update(Machine, delorean, "charge")
    const passenger = yield* pick(cast.slice(1))
    yield* Store.update(Machine, delorean, "travelInTime", {
      occupants: [cast[0]!, passenger],
      targetYear: yield* pick(years)
    }).pipe(Effect.catchTag("NoPower", () => Effect.void))
  })
  // townsfolk: some travel (and stay awake), new ones arrive; the others sleep, then fade away
  const town = Effect.gen(function*() {
    const residents = yield* Store.read(Query.make(Character))
    for (let i = 0; i < 5 && residents.length > 0; i++) {
      const someone = yield* pick(residents)
      yield* Effect.ignore(Store.update(Character, someone, "travelInTime", { targetYear: yield* pick(years) }))
    }
    yield* arrive(arrivals++)
  })

  yield* Effect.forkChild(Effect.repeat(heartbeat, Schedule.spaced("5 seconds")))
  yield* Effect.forkChild(Effect.repeat(Effect.ignore(trip), Schedule.spaced("1200 millis")))
  yield* Effect.forkChild(Effect.repeat(Effect.ignore(town), Schedule.spaced("400 millis")))
})

// `Config.Port` refuses 0, which asks the system for a free port
const Port = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 }))

const main = Effect.gen(function*() {
  const port = yield* Config.schema(Port, "PORT").pipe(Config.withDefault(4000))
  const token = yield* Config.Redacted("TOKEN").pipe(Config.option)
  const App = Inspector.layer({ port, ...(token._tag === "Some" ? { token: token.value } : {}) }).pipe(
    Layer.provideMerge(Store.layer([Character, Machine]))
  )
  return yield* Effect.gen(function*() {
    yield* story
    const inspector = yield* Inspector.Inspector
    yield* Console.log(`inspector: ${inspector.url}`)
    if (token._tag === "Some") {
      yield* Console.error(
        `(with its token: ${inspector.url}#token=${encodeURIComponent(Redacted.value(token.value))})`
      )
    }
    return yield* Effect.never
  }).pipe(Effect.scoped, Effect.provide(App))
})

NodeRuntime.runMain(main)
