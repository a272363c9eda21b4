/**
 * The plot of Back to the Future, told with effect-gen-server.
 *
 * Every character and the DeLorean live in their own supervised fiber. The
 * story prints each lifecycle event as it happens: creations, updates, a
 * crash of the flux capacitor and its restart, and Biff fading away after a
 * spell of inactivity.
 *
 * Run with `npm start`.
 */
import { Console, Effect, Fiber, Schema, Stream } from "effect"
import { Changeset, Filter, Query, Resource, Store } from "effect-gen-server"

const Character = Resource.make("Character", {
  fields: {
    id: Schema.String,
    name: Schema.String,
    nickname: Schema.optionalKey(Schema.String),
    currentYear: Schema.Int
  },
  primaryKey: ["id"],
  generated: { id: () => crypto.randomUUID() },
  // short enough to watch a character fade away during the story
  inactivityTimeout: "300 millis",
  // the typed form: every change and hook sees Character's record, read-only
  actions: (Action) => ({
    travelInTime: Action.update({
      arguments: { targetYear: Schema.Int },
      change: (cs) => Changeset.set(cs, "currentYear", cs.arguments.targetYear)
    })
  })
})

// the DeLorean's own failure, declared by the action that fails with it
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
  // a crash keeps the machine as it was last committed
  restart: "lastState",
  // no blanket `update`: power comes only from `charge` and goes only by travelling
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
            // runs inside the machine's fiber, after its new state is validated
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

const describe = (event: Store.Event): string => {
  const record = event.record as { readonly name?: string; readonly currentYear?: number; readonly hasPower?: boolean }
  const who = `${event.resource} ${record.name ?? "?"}`
  switch (event._tag) {
    case "Created":
      return `+ created   ${who}`
    case "Updated":
      return `~ updated   ${who}${record.currentYear === undefined ? "" : `, now in ${record.currentYear}`}${
        record.hasPower === undefined ? "" : `, power ${record.hasPower ? "on" : "off"}`
      }`
    case "Destroyed":
      return `- destroyed ${who} (${event.reason})`
    case "Restarted":
      return `! restarted ${who} from its last state`
    case "Failed":
      return `x failed    ${who}`
    case "ScheduleFailed":
      return `x schedule  ${who}: ${event.schedule} gave up (${event.failure})`
  }
}

const story = Effect.gen(function*() {
  // print every lifecycle event as it happens
  const printer = yield* Store.events.pipe(
    Stream.runForEach((event) => Console.log(`    [event] ${describe(event)}`)),
    Effect.forkChild
  )
  yield* Effect.yieldNow

  yield* Console.log("1985. Hill Valley.")
  const marty = yield* Store.create(Character, "create", { name: "Marty McFly", nickname: "Marty", currentYear: 1985 })
  const doc = yield* Store.create(Character, "create", { name: "Emmett Brown", nickname: "Doc", currentYear: 1985 })
  const biff = yield* Store.create(Character, "create", { name: "Biff Tannen", currentYear: 1985 })
  const jennifer = yield* Store.create(Character, "create", { name: "Jennifer Parker", currentYear: 1985 })
  const delorean = yield* Store.create(Machine, "create", { name: "OUTATIME" })

  yield* Console.log("The DeLorean will not go anywhere without power:")
  yield* Store.update(Machine, delorean, "travelInTime", { occupants: [marty], targetYear: 1955 }).pipe(
    // typed: the action declares NoPower
    Effect.catchTag("NoPower", (e) => Console.log(`  NoPower: ${e.machine} needs power`))
  )

  yield* Console.log("Plutonium, then: charged, Marty goes back to 1955.")
  yield* Store.update(Machine, delorean, "retrofit", { powerSource: "Plutonium" })
  yield* Store.update(Machine, delorean, "charge")
  yield* Store.update(Machine, delorean, "travelInTime", { occupants: [marty], targetYear: 1955 })
  yield* Console.log(`  Marty is in ${(yield* Store.get(Character, marty)).currentYear}.`)

  yield* Console.log("No plutonium in 1955. Someone tries to push 2.21 gigawatts through the flux capacitor:")
  const crash = yield* Effect.flip(Store.update(Machine, delorean, "overload", { gigawatts: 2.21 }))
  yield* Console.log(`  ${crash._tag}: ${crash.message}`)
  const afterCrash = yield* Store.get(Machine, delorean)
  yield* Console.log(`  The supervisor restarted it as last committed: powered by ${afterCrash.powerSource}.`)

  yield* Console.log("Lightning strikes the clock tower: 1.21 gigawatts, back to 1985.")
  yield* Store.update(Machine, delorean, "retrofit", { powerSource: "Lightning" })
  yield* Store.update(Machine, delorean, "charge")
  yield* Store.update(Machine, delorean, "travelInTime", { occupants: [marty], targetYear: 1985 })

  yield* Console.log("Doc fits Mr. Fusion; Marty, Doc and Jennifer leave for 2015.")
  yield* Store.update(Machine, delorean, "retrofit", { powerSource: "Mr. Fusion" })
  yield* Store.update(Machine, delorean, "charge")
  yield* Store.update(Machine, delorean, "travelInTime", { occupants: [marty, doc, jennifer], targetYear: 2015 })

  const in2015 = yield* Store.read(
    Query.make(Character).pipe(Query.filter(Filter.eq("currentYear", 2015)), Query.sort("name"))
  )
  yield* Console.log(`  In 2015: ${in2015.map((c) => c.nickname ?? c.name).join(", ")}.`)

  yield* Console.log("Nobody calls on Biff; the travellers keep in touch. 300 ms pass...")
  for (let i = 0; i < 4; i++) {
    yield* Effect.sleep("100 millis")
    yield* Effect.forEach([marty, doc, jennifer], (c) => Store.keepAlive(Character, c))
  }
  const gone = yield* Effect.flip(Store.get(Character, biff))
  yield* Console.log(`  Biff: ${gone._tag}. The timeline forgot him.`)

  yield* Store.destroy(Machine, delorean)
  yield* Console.log("The DeLorean is destroyed by the train. THE END.")
  yield* Effect.yieldNow
  yield* Fiber.interrupt(printer)
})

story.pipe(Effect.provide(Store.layer([Character, Machine])), Effect.runPromise).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
