import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Logger, Metric, PubSub, Ref, References, Schema, Stream } from "effect"
import { TestRunner } from "effect/cluster"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import { Action, Changeset, Cluster, Filter, Metrics, Query, Resource, Store } from "../../src/index.js"
import { protocolOf, recordOf } from "../../src/internal/cluster/protocol.js"
import { compile } from "../../src/internal/resource.js"
import { channelOf } from "../../src/internal/sql/notices.js"
import * as FaultySql from "../fixtures/FaultySql.js"
import { Character, Machine } from "../fixtures/TimeTravel.js"
import * as Pg from "./pg.js"

// a hook of Counter calls Counter: an annotated accessor keeps the type from being circular
const self = (): Resource.Any => Counter

const Counter = Resource.make("Counter", {
  fields: { id: Schema.String, n: Schema.Int, tag: Schema.optionalKey(Schema.String) },
  primaryKey: ["id"],
  indexes: ["tag"],
  actions: {
    inc: Action.update({ change: (cs) => Changeset.set(cs, "n", Changeset.get(cs, "n") + 1) }),
    crash: Action.update({ change: () => Effect.die("boom") }),
    refuse: Action.update({
      change: (cs) => Changeset.addError(Changeset.set(cs, "n", 99), "no")
    }),
    failAfter: Action.update({
      change: (cs) => Changeset.after(Changeset.set(cs, "n", 42), () => Effect.fail("after hook failed"))
    }),
    rekey: Action.update({ change: (cs) => Changeset.set(cs, "id", "other") }),
    // a key change whose after hook creates the new key first: the create wins, the change is AlreadyExists
    rekeyRaced: Action.update({
      change: (cs) =>
        Changeset.after(
          Changeset.set(cs, "id", "raced"),
          (record) => Effect.as(Store.create(self(), "create" as never, { id: "raced", n: 7 } as never), record)
        )
    }),
    selfUpdate: Action.update({
      change: (cs) =>
        cs.pipe(
          Changeset.after((record) =>
            Effect.as(Store.update(self(), record as never, "update" as never, { n: 0 } as never), record)
          )
        )
    })
  }
})

// an action's own failure, declared: it crosses the wire as itself
class Meltdown extends Schema.TaggedError<Meltdown>()("Meltdown", { core: Schema.String }) {}

const Reactor = Resource.make("Reactor", {
  fields: { id: Schema.String, heat: Schema.Int },
  primaryKey: ["id"],
  actions: (Action) => ({
    overload: Action.update({
      error: Meltdown,
      change: (cs) =>
        Changeset.before(
          cs,
          (cs) => cs.data.heat > 9 ? Effect.fail(new Meltdown({ core: cs.data.id })) : Effect.succeed(cs)
        )
    })
  })
})

/** How many times Ephemeral's destroy action ran, by reason of the call. */
const destroyed = { count: 0 }

const Ephemeral = Resource.make("Ephemeral", {
  fields: { id: Schema.String },
  primaryKey: ["id"],
  inactivityTimeout: "1 second",
  actions: {
    destroy: Action.destroy({
      change: (cs) =>
        Changeset.after(cs, (record) =>
          Effect.sync(() => {
            destroyed.count++
            return record
          }))
    })
  }
})

const Mayfly = Resource.make("Mayfly", {
  fields: { id: Schema.String },
  primaryKey: ["id"],
  maximumLifetime: "1 second"
})

/** Idle for 1 s or alive for 2 s, whichever passes first. */
const Hourglass = Resource.make("Hourglass", {
  fields: { id: Schema.String },
  primaryKey: ["id"],
  inactivityTimeout: "1 second",
  maximumLifetime: "2 seconds"
})

/** Where Slowpoke's create waits: `entered` once its after hook runs, then until `release`. */
const slowGate: { entered?: Deferred.Deferred<void>; release?: Deferred.Deferred<void> } = {}

/** A record with an inactivity timeout (its get is a message) whose create waits at {@link slowGate}. */
const Slowpoke = Resource.make("Slowpoke", {
  fields: { id: Schema.String },
  primaryKey: ["id"],
  inactivityTimeout: "1 minute",
  actions: {
    slowCreate: Action.create({
      accept: ["id"],
      change: (cs) =>
        Changeset.after(cs, (record) =>
          Effect.gen(function*() {
            yield* Deferred.succeed(slowGate.entered!, undefined)
            yield* Deferred.await(slowGate.release!)
            return record
          }))
    })
  }
})

const crashable = (name: string, restart: "initial" | "lastState" | "never") =>
  Resource.make(name, {
    fields: { id: Schema.String, n: Schema.Int },
    primaryKey: ["id"],
    restart,
    restartIntensity: { maxRestarts: 1, within: "1 minute" },
    actions: { crash: Action.update({ change: () => Effect.die("boom") }) }
  })
const Phoenix = crashable("Phoenix", "initial")
const Cat = crashable("Cat", "lastState")
const Mortal = crashable("Mortal", "never")

const resources = [Character, Machine, Counter, Ephemeral, Mayfly, Phoenix, Cat, Mortal, Reactor, Slowpoke] as const

/** A Counter in an owner's reply, as a caller reads it. */
const counter = (reply: unknown) => recordOf(compile(Counter), reply)

/** The messages logged at level Error, by {@link errorCollector}. */
const errorLogs: Array<string> = []
const errorCollector = Logger.make((options) => {
  if (options.logLevel !== "Error") return
  const message = options.message
  errorLogs.push(String(Array.isArray(message) ? message[0] : message))
})

/** A single-process cluster (TestRunner) over the given SqlClient layer; Sharding and the SqlClient exposed. */
const cluster = (sql: Layer.Layer<SqlClient.SqlClient>) =>
  Cluster.layer(resources, { tablePrefix: "c_", sweepInterval: "100 millis" }).pipe(
    Layer.provideMerge(TestRunner.layer),
    Layer.provideMerge(sql)
  )

const fresh = () => cluster(Pg.layer("cluster"))

describe("Cluster (TestRunner, PostgreSQL)", () => {
  it.effect(
    "plays the TimeTravel plot: create, get, update through hooks, read, destroy",
    () =>
      Effect.gen(function*() {
        const marty = yield* Store.create(Character, "create", { name: "Marty", currentYear: 1985 })
        const delorean = yield* Store.create(Machine, "create", { name: "OUTATIME" })
        const refused = yield* Effect.flip(
          Store.update(Machine, delorean, "travelInTime", { occupants: [marty], targetYear: 1955 })
        )
        assert.strictEqual(refused._tag, "ActionError")
        yield* Store.update(Machine, delorean, "charge")
        yield* Store.update(Machine, delorean, "travelInTime", { occupants: [marty], targetYear: 1955 })
        assert.strictEqual((yield* Store.get(Character, marty)).currentYear, 1955)
        assert.strictEqual((yield* Store.get(Machine, delorean)).hasPower, false)
        const found = yield* Store.read(Query.make(Character).pipe(Query.filter(Filter.eq("currentYear", 1955))))
        assert.deepStrictEqual(found.map((c) => c.id), [marty.id])
        yield* Store.destroy(Character, marty)
        assert.strictEqual((yield* Effect.flip(Store.get(Character, marty)))._tag, "NotFound")
        assert.deepStrictEqual(yield* Store.read(Query.make(Character)), [])
        // the key is free again
        const again = yield* Store.create(Character, "create", { id: marty.id, name: "Marty", currentYear: 1985 })
        assert.strictEqual(again.currentYear, 1985)
      }).pipe(Effect.provide(fresh())),
    { timeout: 30_000 }
  )

  it.effect("typed errors through the wire; a refused action leaves the row unchanged", () =>
    Effect.gen(function*() {
      yield* Store.create(Counter, "create", { id: "c", n: 1 })
      const exists = yield* Effect.flip(Store.create(Counter, "create", { id: "c", n: 2 }))
      assert.strictEqual(exists._tag, "AlreadyExists")
      assert.deepStrictEqual((exists as any).key, { id: "c" })
      const refused = yield* Effect.flip(Store.update(Counter, { id: "c" }, "refuse"))
      assert.strictEqual(refused._tag, "ActionError")
      assert.deepStrictEqual((refused as any).errors, ["no"])
      const afterFailed = yield* Effect.flip(Store.update(Counter, { id: "c" }, "failAfter"))
      assert.strictEqual(afterFailed._tag, "ActionError")
      const crashed = yield* Effect.flip(Store.update(Counter, { id: "c" }, "crash"))
      assert.strictEqual(crashed._tag, "RecordCrashed")
      const invalid = yield* Effect.flip(Store.update(Counter, { id: "c" }, "update", { n: "x" } as never))
      assert.strictEqual(invalid._tag, "ValidationError")
      const reentrant = yield* Effect.flip(Store.update(Counter, { id: "c" }, "selfUpdate"))
      assert.strictEqual(reentrant._tag, "ActionError") // the after hook's ReentrantCall refuses the action
      assert.include(reentrant.message, "would deadlock")
      const missing = yield* Effect.flip(Store.update(Counter, { id: "nope" }, "update", { n: 1 }))
      assert.strictEqual(missing._tag, "NotFound")
      // nothing of the above was committed, and the record still works
      assert.strictEqual((yield* Store.get(Counter, { id: "c" })).n, 1)
      assert.deepStrictEqual((yield* Store.read(Query.make(Counter))).map((c) => c.n), [1])
      assert.strictEqual((yield* Store.update(Counter, { id: "c" }, "update", { n: 5 })).n, 5)
      assert.strictEqual((yield* Store.get(Counter, { id: "c" })).n, 5)
    }).pipe(Effect.provide(fresh())), { timeout: 30_000 })

  it.effect("serialises a record's writes: concurrent updates all apply", () =>
    Effect.gen(function*() {
      yield* Store.create(Counter, "create", { id: "c", n: 0 })
      const Inc = Counter
      yield* Effect.forEach(
        Array.from({ length: 30 }, (_, i) => i),
        (i) => Store.update(Inc, { id: "c" }, "update", { tag: `t${i}` }),
        { concurrency: "unbounded" }
      )
      yield* Effect.forEach(
        Array.from({ length: 50 }, (_, i) => i),
        (i) => Store.create(Counter, "create", { id: `k${i}`, n: i, tag: i % 2 === 0 ? "even" : "odd" }),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(
        (yield* Store.read(Query.make(Counter).pipe(Query.filter(Filter.eq("tag", "even"))))).length,
        25
      )
    }).pipe(Effect.provide(fresh())), { timeout: 30_000 })

  it.effect("queries equal the GenServer layer's on the same data", () =>
    Effect.gen(function*() {
      const data = Array.from({ length: 40 }, (_, i) => ({
        id: `r${(i * 7) % 40}`,
        n: (i * 13) % 9 - 4,
        ...(i % 3 === 0 ? {} : { tag: ["a", "b", "ab", ""][i % 4]! })
      }))
      const queries = [
        Query.make(Counter),
        Query.make(Counter).pipe(Query.sort("n", "desc")),
        Query.make(Counter).pipe(Query.sort("tag"), Query.sort("n", "desc"), Query.offset(3), Query.limit(10)),
        Query.make(Counter).pipe(Query.filter(Filter.gt("n", 0)), Query.sort("id")),
        Query.make(Counter).pipe(Query.filter(Filter.isNil("tag")), Query.sort("n")),
        Query.make(Counter).pipe(Query.filter(Filter.not(Filter.in("tag", ["a", "b"]))), Query.sort("tag", "desc")),
        Query.make(Counter).pipe(Query.filter(Filter.or(Filter.contains("tag", "a"), Filter.lte("n", -3)))),
        Query.make(Counter).pipe(Query.filter(Filter.eq("id", "r3")))
      ]
      const run = Effect.gen(function*() {
        for (const record of data) yield* Store.create(Counter, "create", record)
        return yield* Effect.forEach(queries, (q) => Store.read(q))
      })
      const onCluster = yield* run.pipe(Effect.provide(fresh()))
      const onGenServer = yield* run.pipe(Effect.provide(Store.layer(resources)))
      assert.deepStrictEqual(onCluster, onGenServer)
    }), { timeout: 30_000 })

  it.effect(
    "a record resumes from SQL on a new runner: close the runner, open another over the same schema",
    () =>
      Effect.gen(function*() {
        const schema = Pg.freshSchema("restart")
        yield* Pg.schemaScoped(schema)
        const sql = Pg.layer("restart", schema, false)
        const first = yield* Effect.scoped(
          Effect.gen(function*() {
            const a = yield* Store.create(Counter, "create", { id: "a", n: 1 })
            yield* Store.update(Counter, a, "update", { n: 2 })
            const marty = yield* Store.create(Character, "create", { name: "Marty", currentYear: 1985 })
            yield* Store.update(Character, marty, "travelInTime", { targetYear: 2015 })
            return marty
          }).pipe(Effect.provide(cluster(sql)))
        )
        yield* Effect.scoped(
          Effect.gen(function*() {
            assert.strictEqual((yield* Store.get(Counter, { id: "a" })).n, 2)
            // Character has an inactivity timeout: get is a message to the (new) owner, which loads the row
            assert.strictEqual((yield* Store.get(Character, first)).currentYear, 2015)
            assert.strictEqual((yield* Store.update(Counter, { id: "a" }, "update", { n: 3 })).n, 3)
            assert.strictEqual(
              (yield* Effect.flip(Store.create(Counter, "create", { id: "a", n: 0 })))._tag,
              "AlreadyExists"
            )
            assert.deepStrictEqual((yield* Store.read(Query.make(Counter))).map((c) => c.n), [3])
          }).pipe(Effect.provide(cluster(sql)))
        )
      }).pipe(Effect.scoped),
    { timeout: 30_000 }
  )

  it.effect(
    "an action's declared error reaches the caller as itself, catchTag-able, and changes nothing",
    () =>
      Effect.gen(function*() {
        yield* Store.create(Reactor, "create", { id: "mr-fusion", heat: 10 })
        const melted = yield* Store.update(Reactor, { id: "mr-fusion" }, "overload").pipe(
          Effect.catchTag("Meltdown", (e) => Effect.succeed(e.core))
        )
        assert.strictEqual(melted, "mr-fusion")
        assert.strictEqual((yield* Store.get(Reactor, { id: "mr-fusion" })).heat, 10)
      }).pipe(Effect.provide(fresh())),
    { timeout: 30_000 }
  )

  it.effect("a retried write (same operation id) is applied once", () =>
    Effect.gen(function*() {
      yield* Store.create(Counter, "create", { id: "c", n: 0 })
      const client = yield* protocolOf(compile(Counter)).client
      const payload = { action: "inc", op: "op-1", input: { attributes: {}, arguments: {} }, callers: [] }
      yield* client("c").Update(payload)
      yield* client("c").Update({ ...payload, op: "op-2" })
      yield* client("c").Update(payload)
      assert.strictEqual((yield* Store.get(Counter, { id: "c" })).n, 2)
    }).pipe(Effect.provide(fresh())), { timeout: 30_000 })

  it.effect(
    "writes sent again under the caller's operation ids (Store.withOperationId) are applied once",
    () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const create = Store.create(Counter, "create", { id: "g", n: 1 }).pipe(Store.withOperationId("create-g"))
        const inc = Store.update(Counter, { id: "g" }, "inc").pipe(Store.withOperationId("inc-g"))
        assert.deepStrictEqual(yield* create, { id: "g", n: 1 })
        assert.deepStrictEqual(yield* create, { id: "g", n: 1 })
        assert.deepStrictEqual(yield* inc, { id: "g", n: 2 })
        assert.deepStrictEqual(yield* inc, { id: "g", n: 2 })
        // a key change, sent again at the old key: answered with the record at its new key
        const rekey = Store.update(Counter, { id: "g" }, "update", { id: "h" }).pipe(Store.withOperationId("move-g"))
        assert.deepStrictEqual(yield* rekey, { id: "h", n: 2 })
        assert.strictEqual((yield* Store.update(Counter, { id: "h" }, "inc")).n, 3)
        assert.deepStrictEqual(yield* rekey, { id: "h", n: 3 })
        // and so is the create: nothing is created again at the key it left
        assert.deepStrictEqual(yield* create, { id: "h", n: 3 })
        assert.strictEqual((yield* Effect.flip(Store.get(Counter, { id: "g" })))._tag, "NotFound")
        assert.deepStrictEqual((yield* Store.read(Query.make(Counter))).map((r) => `${r.id}:${r.n}`), ["h:3"])
        // a hook's own write carries an id of its own, not its caller's
        yield* Store.create(Counter, "create", { id: "f", n: 3 })
        const raced = yield* Effect.flip(
          Store.update(Counter, { id: "f" }, "rekeyRaced").pipe(Store.withOperationId("raced-f"))
        )
        assert.strictEqual(raced._tag, "AlreadyExists")
        const rows = yield* sql.unsafe<{ readonly key: string; readonly ops: ReadonlyArray<string> }>(
          `SELECT key, ops FROM c_records WHERE key IN ('f', 'raced') ORDER BY key`
        )
        assert.deepStrictEqual(rows.map((r) => [r.key, r.ops.length, r.ops.includes("raced-f")]), [["f", 1, false], [
          "raced",
          1,
          false
        ]])
      }).pipe(Effect.provide(fresh())),
    { timeout: 30_000 }
  )

  it.live(
    "fencing: a commit over a row another owner changed is refused, the record reloads, the call is re-sent",
    () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* Store.create(Counter, "create", { id: "c", n: 0 })
        yield* Store.update(Counter, { id: "c" }, "inc")
        // another owner commits (the shard moved and came back): version and state change under this one
        yield* sql.unsafe(
          `UPDATE c_records SET version = version + 1, state = jsonb_set(state, '{n}', '10') WHERE key = 'c'`
        )
        // the stale commit is refused (nothing applied), the owner reloads the row, and the re-sent call
        // (same operation id) applies once, over the newer state
        assert.strictEqual((yield* Store.update(Counter, { id: "c" }, "inc")).n, 11)
        assert.strictEqual((yield* Store.get(Counter, { id: "c" })).n, 11)
        const [row] = yield* sql.unsafe<{ readonly ops: ReadonlyArray<string> }>(
          `SELECT ops FROM c_records WHERE key = 'c'`
        )
        assert.strictEqual(row!.ops.length, 3) // create, inc, inc: the refused commit left no trace
      }).pipe(Effect.provide(fresh())),
    { timeout: 30_000 }
  )

  it.live("events: each write's event, after its commit", () =>
    Effect.gen(function*() {
      const store = yield* Store.Store
      const seen = yield* Ref.make<Array<string>>([])
      yield* store.dataLayer.events.pipe(
        Stream.runForEach((e) => Ref.update(seen, (xs) => [...xs, `${e._tag}:${(e.record as any).n}`])),
        Effect.forkScoped
      )
      yield* Effect.sleep("50 millis")
      yield* Store.create(Counter, "create", { id: "c", n: 0 })
      yield* Store.update(Counter, { id: "c" }, "inc")
      yield* Effect.flip(Store.update(Counter, { id: "c" }, "refuse"))
      yield* Store.destroy(Counter, { id: "c" })
      yield* Effect.sleep("50 millis")
      assert.deepStrictEqual(yield* Ref.get(seen), ["Created:0", "Updated:1", "Destroyed:1"])
    }).pipe(Effect.scoped, Effect.provide(fresh())), { timeout: 30_000 })

  it.live(
    "events: another data layer of the cluster in this process hears each event once, as the writer's does",
    () =>
      Effect.gen(function*() {
        // a second data layer (a client of the same cluster and schema): it hears the writer's notices
        const other = yield* Layer.build(Cluster.layer(resources, { tablePrefix: "c_", runner: false }))
        const mine = yield* Store.subscribe
        const theirs = yield* Effect.provideContext(Store.subscribe, other)
        yield* Store.create(Counter, "create", { id: "heard", n: 1 })
        yield* Store.create(Counter, "create", { id: "also", n: 2 }).pipe(Effect.provideContext(other))
        yield* Effect.sleep("300 millis")
        const names = (events: ReadonlyArray<{ readonly _tag: string; readonly record: unknown }>) =>
          events.map((e) => `${e._tag}:${(e.record as any).id}`).sort()
        // each once (records apart, the order in which two processes' commits are heard is not decided)
        assert.deepStrictEqual(names(yield* PubSub.takeAll(mine)), ["Created:also", "Created:heard"])
        assert.deepStrictEqual(names(yield* PubSub.takeAll(theirs)), ["Created:also", "Created:heard"])
      }).pipe(Effect.scoped, Effect.provide(fresh())),
    { timeout: 30_000 }
  )

  it.live(
    "events: a record longer than a notification holds (8,000 bytes) reaches another process whole",
    () =>
      Effect.gen(function*() {
        const other = yield* Layer.build(Cluster.layer(resources, { tablePrefix: "c_", runner: false }))
        const theirs = yield* Effect.provideContext(Store.subscribe, other)
        // about 45 kB of JSON, with characters of 2 and 4 bytes in UTF-8 (a surrogate pair) on chunk boundaries
        const name = "é😀x".repeat(5_000)
        const marty = yield* Store.create(Character, "create", { name, currentYear: 1985 })
        yield* Store.update(Character, marty, "travelInTime", { targetYear: 1955 })
        yield* Store.destroy(Character, marty)
        const heard = yield* Effect.forEach([1, 2, 3], () => PubSub.take(theirs)).pipe(
          Effect.timeoutOrElse({ duration: "10 seconds", orElse: () => Effect.die("the events did not arrive") })
        )
        assert.deepStrictEqual(
          heard.map((e) => `${e._tag}:${(e.record as any).currentYear}:${(e.record as any).name === name}`),
          ["Created:1985:true", "Updated:1955:true", "Destroyed:1955:true"]
        )
      }).pipe(Effect.scoped, Effect.provide(fresh())),
    { timeout: 30_000 }
  )

  it.live(
    "events: a cluster hears only its own, not another's in another schema with the same table names",
    () =>
      Effect.gen(function*() {
        // another cluster (its own runtime) over another schema, with the same table prefix
        const other = yield* Layer.buildWithMemoMap(fresh(), yield* Layer.makeMemoMap, yield* Effect.scope)
        const heard = yield* Store.subscribe
        yield* Store.create(Counter, "create", { id: "theirs", n: 1 }).pipe(Effect.provideContext(other))
        yield* Store.create(Counter, "create", { id: "mine", n: 2 })
        yield* Effect.sleep("300 millis")
        const events = yield* PubSub.takeAll(heard)
        assert.deepStrictEqual(events.map((e) => `${e._tag}:${(e.record as any).id}`), ["Created:mine"])
      }).pipe(Effect.scoped, Effect.provide(fresh())),
    { timeout: 30_000 }
  )

  it.live(
    "events: a process listens for notices only while something subscribes to its events",
    () => {
      // a table prefix of this run's own, so that its channel is heard by no other test
      const prefix = `lz${Math.random().toString(36).slice(2, 8)}_`
      const channel = channelOf(`${prefix}records`)
      const listening = Pg.withAdmin((sql) =>
        sql.unsafe<{ readonly n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = $1`,
          [`LISTEN "${channel}"`]
        )
      ).pipe(Effect.map((rows) => rows[0]!.n))
      return Effect.gen(function*() {
        // a client of the same cluster: it hears the runner's commits once it subscribes
        const registry = new Map()
        const client = yield* Layer.build(Cluster.layer(resources, { tablePrefix: prefix, runner: false })).pipe(
          Effect.provideService(Metric.MetricRegistry, registry)
        )
        const created = Metric.value(Metric.withAttributes(Metrics.creates, { resource: "Counter" })).pipe(
          Effect.provideService(Metric.MetricRegistry, registry),
          Effect.map((state) => state.count)
        )
        yield* Store.create(Counter, "create", { id: "unheard", n: 0 })
        assert.strictEqual(yield* listening, 0, "nobody subscribed: no connection listens")
        const heard = yield* Effect.gen(function*() {
          const first = yield* Effect.provideContext(Store.subscribe, client)
          const second = yield* Effect.provideContext(Store.subscribe, client)
          assert.strictEqual(yield* listening, 1, "two subscribers share one listening connection")
          yield* Store.create(Counter, "create", { id: "heard", n: 1 })
          const event = yield* PubSub.take(first)
          assert.strictEqual(`${event._tag}:${(event.record as any).id}`, "Created:heard")
          return (yield* PubSub.take(second)).key
        }).pipe(Effect.scoped)
        assert.deepStrictEqual(heard, { id: "heard" })
        // counted by the process that committed it, not again by every process that heard it
        assert.strictEqual(yield* created, 0)
        assert.strictEqual(yield* listening, 0, "the last subscription closed: the connection stopped listening")
      }).pipe(
        Effect.scoped,
        Effect.provide(
          Cluster.layer(resources, { tablePrefix: prefix }).pipe(
            Layer.provideMerge(TestRunner.layer),
            Layer.provideMerge(Pg.layer("listen"))
          )
        )
      )
    },
    { timeout: 30_000 }
  )

  it.live(
    "expiry: inactivity destroys once through the destroy action; activity keeps a record",
    () =>
      Effect.gen(function*() {
        destroyed.count = 0
        const reasons = yield* Ref.make<Array<string>>([])
        // a subscription is live once it returns (a stream would subscribe when first pulled)
        const events = yield* Store.subscribe
        yield* PubSub.take(events).pipe(
          Effect.flatMap((e) =>
            e._tag === "Destroyed"
              ? Ref.update(reasons, (xs) => [...xs, `${(e.key as any).id}:${e.reason}`])
              : Effect.void
          ),
          Effect.forever,
          Effect.forkScoped
        )
        yield* Store.create(Ephemeral, "create", { id: "idle" })
        yield* Store.create(Ephemeral, "create", { id: "busy" })
        yield* Store.create(Mayfly, "create", { id: "m" })
        for (let i = 0; i < 8; i++) {
          yield* Effect.sleep("250 millis")
          yield* Store.keepAlive(Ephemeral, { id: "busy" })
        }
        assert.deepStrictEqual((yield* Store.read(Query.make(Ephemeral))).map((r) => r.id), ["busy"])
        assert.deepStrictEqual(yield* Store.read(Query.make(Mayfly)), [])
        assert.strictEqual((yield* Effect.flip(Store.get(Ephemeral, { id: "idle" })))._tag, "NotFound")
        yield* Effect.sleep("500 millis")
        assert.strictEqual(destroyed.count, 1)
        assert.deepStrictEqual((yield* Ref.get(reasons)).sort(), ["idle:inactivity", "m:lifetime"])
      }).pipe(Effect.scoped, Effect.provide(fresh())),
    { timeout: 30_000 }
  )

  it.live("expiry of a record whose deadline passed while the cluster was down", () =>
    Effect.gen(function*() {
      destroyed.count = 0
      const schema = Pg.freshSchema("down")
      yield* Pg.schemaScoped(schema)
      const sql = Pg.layer("down", schema, false)
      // sweeping every 10 s: nothing expires while this runner is up
      const slow = Cluster.layer(resources, { tablePrefix: "c_", sweepInterval: "10 seconds" }).pipe(
        Layer.provide(TestRunner.layer),
        Layer.provide(sql)
      )
      yield* Effect.scoped(Effect.provide(Store.create(Ephemeral, "create", { id: "e" }), slow))
      yield* Effect.sleep("1500 millis")
      yield* Effect.scoped(
        Effect.gen(function*() {
          yield* Effect.sleep("500 millis")
          assert.deepStrictEqual(yield* Store.read(Query.make(Ephemeral)), [])
          assert.strictEqual(destroyed.count, 1)
        }).pipe(Effect.provide(cluster(sql)))
      )
    }).pipe(Effect.scoped), { timeout: 30_000 })

  it.live(
    "the sweeper passes over records whose expiry keeps failing: none delays another's expiry",
    () =>
      Effect.gen(function*() {
        const schema = Pg.freshSchema("stuck")
        yield* Pg.schemaScoped(schema)
        const store = Cluster.layer(resources, { tablePrefix: "s_", sweepInterval: "100 millis" }).pipe(
          Layer.provideMerge(TestRunner.layer),
          Layer.provideMerge(FaultySql.layer(Pg.layer("stuck", schema, false)))
        )
        yield* Effect.gen(function*() {
          const faults = yield* FaultySql.Faults
          // storage refuses to remove the stuck records: their expiry fails at every sweep
          yield* faults.inject({
            when: (text, params) => /alive = FALSE/.test(text) && params.includes(`\\"key\\":\\"jam`),
            fault: "refuse"
          })
          yield* Effect.forEach(
            Array.from({ length: 300 }, (_, i) => `jam${i}`),
            (id) => Store.create(Ephemeral, "create", { id }),
            { concurrency: 16, discard: true }
          )
          yield* Store.create(Ephemeral, "create", { id: "free" })
          const sql = yield* SqlClient.SqlClient
          const alive = (like: string) =>
            Effect.map(
              sql.unsafe<{ readonly n: string }>(`SELECT count(*) AS n FROM s_records WHERE alive AND key LIKE $1`, [
                like
              ]),
              (rows) => Number(rows[0]!.n)
            )
          // every stuck record's deadline comes first; the free one expires anyway
          let waited = 0
          while ((yield* alive("free")) > 0 && waited < 10_000) {
            yield* Effect.sleep("200 millis")
            waited += 200
          }
          assert.strictEqual(yield* alive("free"), 0, "the free record expired")
          assert.strictEqual(yield* alive("jam%"), 300, "the stuck ones are still stored")
          assert.deepStrictEqual(
            yield* Store.read(Query.make(Ephemeral)),
            [],
            "and invisible, being past their deadline"
          )
        }).pipe(Effect.provide(store), Effect.scoped, Effect.provideService(References.MinimumLogLevel, "None"))
      }).pipe(Effect.scoped),
    { timeout: 30_000 }
  )

  it.live("tombstones are purged once no retry can need them (operationRetention)", () =>
    Effect.gen(function*() {
      const store = Cluster.layer(resources, {
        tablePrefix: "p_",
        sweepInterval: "100 millis",
        operationRetention: "1 second"
      }).pipe(Layer.provideMerge(TestRunner.layer), Layer.provideMerge(Pg.layer("purge")))
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const rows = Effect.map(
          sql.unsafe<{ readonly key: string; readonly alive: boolean }>(
            `SELECT key, alive FROM p_records ORDER BY key`
          ),
          (rs) => rs.map((r) => `${r.key}:${r.alive}`)
        )
        yield* Store.create(Counter, "create", { id: "gone", n: 0 })
        yield* Store.create(Counter, "create", { id: "kept", n: 0 })
        yield* Store.destroy(Counter, { id: "gone" }).pipe(Store.withOperationId("destroy-gone"))
        // within the retention a retry is recognised: nothing happens again
        yield* Store.destroy(Counter, { id: "gone" }).pipe(Store.withOperationId("destroy-gone"))
        assert.deepStrictEqual(yield* rows, ["gone:false", "kept:true"])
        let waited = 0
        while ((yield* rows).length > 1 && waited < 10_000) {
          yield* Effect.sleep("200 millis")
          waited += 200
        }
        assert.deepStrictEqual(yield* rows, ["kept:true"])
      }).pipe(Effect.provide(store), Effect.scoped)
    }), { timeout: 30_000 })

  it.live("restart policies and intensity: initial, lastState, never", () =>
    Effect.gen(function*() {
      const store = yield* Store.Store
      const seen = yield* Ref.make<Array<string>>([])
      yield* store.dataLayer.events.pipe(
        Stream.runForEach((e) =>
          e._tag === "Restarted" || e._tag === "Failed"
            ? Ref.update(seen, (xs) => [...xs, `${e.resource}:${e._tag}:${(e.record as any).n}`])
            : Effect.void
        ),
        Effect.forkScoped
      )
      yield* Effect.sleep("50 millis")
      for (const resource of [Phoenix, Cat, Mortal]) {
        yield* Store.create(resource, "create", { id: "x", n: 1 })
        yield* Store.update(resource, { id: "x" }, "update", { n: 5 })
        assert.strictEqual((yield* Effect.flip(Store.update(resource, { id: "x" }, "crash")))._tag, "RecordCrashed")
      }
      // initial: the create ran again; lastState: the last committed state; never: gone
      assert.strictEqual((yield* Store.get(Phoenix, { id: "x" })).n, 1)
      assert.strictEqual((yield* Store.get(Cat, { id: "x" })).n, 5)
      assert.strictEqual((yield* Effect.flip(Store.get(Mortal, { id: "x" })))._tag, "NotFound")
      // a second crash within the window is beyond the intensity (1 restart): the record fails
      yield* Effect.flip(Store.update(Cat, { id: "x" }, "crash"))
      assert.strictEqual((yield* Effect.flip(Store.get(Cat, { id: "x" })))._tag, "NotFound")
      yield* Effect.sleep("50 millis")
      assert.deepStrictEqual(yield* Ref.get(seen), [
        "Phoenix:Restarted:1",
        "Cat:Restarted:5",
        "Mortal:Failed:5",
        "Cat:Failed:5"
      ])
    }).pipe(Effect.scoped, Effect.provide(fresh())), { timeout: 30_000 })

  it.effect("the expiry reason is the deadline that passed first, however late the record is found", () =>
    Effect.gen(function*() {
      const events = yield* Store.subscribe
      yield* Store.create(Hourglass, "create", { id: "h" })
      // idle since 0: past its inactivity deadline at 1 s, its lifetime at 2 s; found at 3 s (no sweep ran)
      yield* TestClock.adjust("3 seconds")
      assert.strictEqual((yield* Effect.flip(Store.get(Hourglass, { id: "h" })))._tag, "NotFound")
      const seen = yield* PubSub.takeUpTo(events, 100)
      assert.deepStrictEqual(seen.flatMap((e) => (e._tag === "Destroyed" ? [e.reason] : [])), ["inactivity"])
    }).pipe(
      Effect.provide(
        Cluster.layer([Hourglass], { tablePrefix: "h_", sweepInterval: "1 hour" }).pipe(
          Layer.provide(TestRunner.layer),
          Layer.provide(Pg.layer("hourglass"))
        )
      )
    ))
  it.effect(
    "key changes: a resident absent new key serves the moved record; a retry is applied once; a live key refuses",
    () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const client = yield* protocolOf(compile(Counter)).client
        const events = yield* Store.subscribe
        yield* Store.create(Counter, "create", { id: "c", n: 1 })
        // the new key's entity is resident, holding "no record" (a message found it missing)
        assert.strictEqual((yield* Effect.flip(client("other").Get({ callers: [] })))._tag, "NotFound")
        assert.deepStrictEqual(yield* Store.update(Counter, { id: "c" }, "rekey"), { id: "other", n: 1 })
        // it reads the row again rather than answering from memory: get, update, create
        // a reply is the record as its row stores it, with the version that stored it (a key no field can have)
        assert.deepStrictEqual(yield* client("other").Get({ callers: [] }), { id: "other", n: 1, "\u0000version": 1 })
        assert.strictEqual((yield* Store.update(Counter, { id: "other" }, "inc")).n, 2)
        assert.strictEqual(
          (yield* Effect.flip(Store.create(Counter, "create", { id: "other", n: 0 })))._tag,
          "AlreadyExists"
        )
        assert.strictEqual((yield* Effect.flip(Store.get(Counter, { id: "c" })))._tag, "NotFound")
        assert.deepStrictEqual(
          (yield* PubSub.takeAll(events)).map((e) => `${e._tag}:${(e.key as any).id}:${(e.record as any).n}`),
          ["Created:c:1", "Updated:other:1", "Updated:other:2"]
        )

        // a retry of a key change (same operation id) answers with the moved record and applies nothing
        yield* Store.create(Counter, "create", { id: "d", n: 5 })
        const move = { action: "update", op: "move-d", input: { attributes: { id: "e" }, arguments: {} }, callers: [] }
        assert.deepStrictEqual(counter(yield* client("d").Update(move)), { id: "e", n: 5 })
        assert.strictEqual((yield* Store.update(Counter, { id: "e" }, "inc")).n, 6)
        assert.deepStrictEqual(counter(yield* client("d").Update(move)), { id: "e", n: 6 })
        const rows = yield* sql.unsafe<{ readonly key: string; readonly version: string; readonly alive: boolean }>(
          `SELECT key, version, alive FROM c_records WHERE key IN ('d', 'e') ORDER BY key`
        )
        assert.deepStrictEqual(rows.map((r) => [r.key, Number(r.version), r.alive]), [["d", 2, false], ["e", 2, true]])
        assert.strictEqual((yield* Store.get(Counter, { id: "e" })).n, 6)
        assert.strictEqual((yield* Effect.flip(Store.get(Counter, { id: "d" })))._tag, "NotFound")

        // a key change onto a live key is AlreadyExists and changes nothing: found before the commit...
        yield* PubSub.takeAll(events)
        const taken = yield* Effect.flip(Store.update(Counter, { id: "e" }, "update", { id: "other" }))
        assert.strictEqual(taken._tag, "AlreadyExists")
        assert.deepStrictEqual((taken as any).key, { id: "other" })
        // ... or at the commit: a create of the new key committed while the change ran its hooks
        yield* Store.create(Counter, "create", { id: "f", n: 3 })
        const raced = yield* Effect.flip(Store.update(Counter, { id: "f" }, "rekeyRaced"))
        assert.strictEqual(raced._tag, "AlreadyExists")
        assert.deepStrictEqual(yield* Store.get(Counter, { id: "raced" }), { id: "raced", n: 7 })
        assert.deepStrictEqual(yield* Store.get(Counter, { id: "f" }), { id: "f", n: 3 })
        assert.deepStrictEqual(yield* Store.get(Counter, { id: "e" }), { id: "e", n: 6 })
        assert.deepStrictEqual(yield* Store.get(Counter, { id: "other" }), { id: "other", n: 2 })
        assert.deepStrictEqual(
          (yield* PubSub.takeAll(events)).map((e) => `${e._tag}:${(e.key as any).id}`),
          ["Created:f", "Created:raced"]
        )
        // the moved record keeps working under its key, the old ones are free
        yield* Store.create(Counter, "create", { id: "c", n: 0 })
        yield* Store.create(Counter, "create", { id: "d", n: 0 })
        // the record created again under the old key remembers the tombstone's operations: the retry is not applied
        assert.deepStrictEqual(counter(yield* client("d").Update(move)), { id: "d", n: 0 })
        assert.deepStrictEqual(
          (yield* Store.read(Query.make(Counter))).map((r) => `${r.id}:${r.n}`).sort(),
          ["c:0", "d:0", "e:6", "f:3", "other:2", "raced:7"]
        )
        // restart: "initial" of a record whose key changed re-runs its create, which gives the key it was created
        // under: it moves back
        yield* Store.create(Phoenix, "create", { id: "fawkes", n: 1 })
        yield* Store.update(Phoenix, { id: "fawkes" }, "update", { id: "ash", n: 5 })
        assert.strictEqual((yield* Effect.flip(Store.update(Phoenix, { id: "ash" }, "crash")))._tag, "RecordCrashed")
        assert.deepStrictEqual(yield* Store.get(Phoenix, { id: "fawkes" }), { id: "fawkes", n: 1 })
        assert.strictEqual((yield* Effect.flip(Store.get(Phoenix, { id: "ash" })))._tag, "NotFound")
        assert.deepStrictEqual(
          (yield* PubSub.takeAll(events)).filter((e) => e.resource === "Phoenix").map((e) =>
            `${e._tag}:${(e.key as any).id}`
          ),
          ["Created:fawkes", "Updated:ash", "Restarted:fawkes"]
        )
      }).pipe(Effect.provide(fresh())),
    { timeout: 30_000 }
  )

  it.live(
    "a key change's retry reaching a new runner (the old key's entity loaded from its tombstone) applies nothing",
    () =>
      Effect.gen(function*() {
        const schema = Pg.freshSchema("moved")
        yield* Pg.schemaScoped(schema)
        const sql = Pg.layer("moved", schema, false)
        const move = { action: "update", op: "move-a", input: { attributes: { id: "b" }, arguments: {} }, callers: [] }
        yield* Effect.scoped(
          Effect.gen(function*() {
            yield* Store.create(Counter, "create", { id: "a", n: 1 })
            assert.deepStrictEqual(counter(yield* (yield* protocolOf(compile(Counter)).client)("a").Update(move)), {
              id: "b",
              n: 1
            })
          }).pipe(Effect.provide(cluster(sql)))
        )
        yield* Effect.scoped(
          Effect.gen(function*() {
            const client = yield* protocolOf(compile(Counter)).client
            assert.deepStrictEqual(counter(yield* client("a").Update(move)), { id: "b", n: 1 })
            const rows = yield* (yield* SqlClient.SqlClient).unsafe<{ readonly key: string; readonly version: string }>(
              `SELECT key, version FROM c_records ORDER BY key`
            )
            assert.deepStrictEqual(rows.map((r) => [r.key, Number(r.version)]), [["a", 2], ["b", 1]])
            // a create racing a key change onto the same key: exactly one of the two wins (the create sent from
            // 0 to 7 ms after the change, so either may commit first)
            for (let i = 0; i < 8; i++) {
              yield* Store.create(Counter, "create", { id: `from${i}`, n: i })
              const [created, moved] = yield* Effect.all([
                Effect.result(Effect.delay(Store.create(Counter, "create", { id: `to${i}`, n: 100 }), i)),
                Effect.result(Store.update(Counter, { id: `from${i}` }, "update", { id: `to${i}` }))
              ], { concurrency: "unbounded" })
              const outcomes = [created, moved].map((r) => r._tag === "Success" ? "won" : (r.failure as any)._tag)
              assert.deepStrictEqual([...outcomes].sort(), ["AlreadyExists", "won"], `round ${i}`)
              const there = yield* Store.get(Counter, { id: `to${i}` })
              assert.strictEqual(there.n, created._tag === "Success" ? 100 : i)
              const left = yield* Effect.result(Store.get(Counter, { id: `from${i}` }))
              assert.strictEqual(left._tag === "Success", created._tag === "Success")
            }
          }).pipe(Effect.provide(cluster(sql)))
        )
      }).pipe(Effect.scoped),
    { timeout: 30_000 }
  )

  it.effect(
    "a stored row that cannot be loaded is quarantined, logged and counted; its key is free again",
    () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const quarantined = Effect.map(
          Metric.value(Metric.withAttributes(Metrics.quarantined, { resource: "Counter" })),
          (counter) => counter.count
        )
        const before = yield* quarantined
        errorLogs.length = 0
        const insert = (key: string, state: unknown) =>
          sql.unsafe(
            `INSERT INTO c_records (resource, key, version, alive, state, created_at, last_activity, ops)
           VALUES ('Counter', $1, 1, TRUE, $2::jsonb, 0, 0, '[]'::jsonb)`,
            [key, JSON.stringify(state)]
          )
        // written straight to SQL: a state that does not decode, and one holding another key than its row
        yield* insert("bad", { id: "bad", n: "many" })
        yield* insert("astray", { id: "elsewhere", n: 1 })
        yield* Store.create(Counter, "create", { id: "good", n: 1 })
        // found by a message to its (new) entity, and by a read of its row in the caller's process
        assert.strictEqual((yield* Effect.flip(Store.update(Counter, { id: "bad" }, "inc")))._tag, "NotFound")
        assert.strictEqual((yield* Effect.flip(Store.get(Counter, { id: "astray" })))._tag, "NotFound")
        // and by reads: one SQL sorts and pages, one finished in memory (a sort on a string)
        yield* insert("paged", { id: "paged", n: null })
        assert.deepStrictEqual((yield* Store.read(Query.make(Counter).pipe(Query.limit(5)))).map((r) => r.id), ["good"])
        yield* insert("scanned", { id: "scanned" })
        assert.deepStrictEqual((yield* Store.read(Query.make(Counter).pipe(Query.sort("id")))).map((r) => r.id), [
          "good"
        ])
        assert.strictEqual((yield* quarantined) - before, 4)
        const kept = yield* sql.unsafe<{ readonly key: string; readonly reason: string; readonly state: string }>(
          `SELECT key, reason, state FROM c_quarantine ORDER BY key`
        )
        assert.deepStrictEqual(kept.map((r) => r.key), ["astray", "bad", "paged", "scanned"])
        assert.match(kept[0]!.reason, /another key/)
        assert.match(kept[1]!.reason, /cannot decode version 1/)
        assert.deepStrictEqual(JSON.parse(kept[1]!.state), { id: "bad", n: "many" })
        assert.deepStrictEqual(
          errorLogs,
          Array(4).fill("Counter: a stored record could not be loaded and was quarantined")
        )
        // the keys are free again, the entity of "bad" included
        assert.strictEqual((yield* Effect.flip(Store.get(Counter, { id: "bad" })))._tag, "NotFound")
        assert.deepStrictEqual(yield* Store.create(Counter, "create", { id: "bad", n: 2 }), { id: "bad", n: 2 })
        assert.strictEqual((yield* Store.update(Counter, { id: "bad" }, "inc")).n, 3)
        yield* Store.create(Counter, "create", { id: "astray", n: 0 })
        assert.deepStrictEqual(
          (yield* Store.read(Query.make(Counter))).map((r) => `${r.id}:${r.n}`).sort(),
          ["astray:0", "bad:3", "good:1"]
        )
      }).pipe(
        Effect.provide(fresh()),
        // the layer's runners log with the loggers of the context it is built in
        Effect.provideService(Logger.CurrentLoggers, new Set([errorCollector]))
      ),
    { timeout: 30_000 }
  )
  it.effect("a key change onto a record alive only in its owner's memory (activity not yet written) is AlreadyExists", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* Store.create(Ephemeral, "create", { id: "a" })
      yield* Store.create(Ephemeral, "create", { id: "b" })
      // activity at 0.2 s stays in the owners' memory (written back once a quarter of the timeout has passed)
      yield* TestClock.adjust("200 millis")
      yield* Store.keepAlive(Ephemeral, { id: "a" })
      yield* Store.keepAlive(Ephemeral, { id: "b" })
      // at 1.1 s both rows are past their stored deadline (1 s), both records alive (until 1.2 s)
      yield* TestClock.adjust("900 millis")
      const [row] = yield* sql.unsafe<{ readonly deadline: string }>(
        `SELECT inactivity_deadline AS deadline FROM e_records WHERE key = 'b'`
      )
      assert.strictEqual(Number(row!.deadline), 1000)
      const taken = yield* Effect.flip(Store.update(Ephemeral, { id: "a" }, "update", { id: "b" }))
      assert.strictEqual(taken._tag, "AlreadyExists")
      assert.deepStrictEqual(yield* Store.get(Ephemeral, { id: "a" }), { id: "a" })
      assert.deepStrictEqual(yield* Store.get(Ephemeral, { id: "b" }), { id: "b" })
    }).pipe(
      Effect.provide(
        Cluster.layer([Ephemeral], { tablePrefix: "e_", sweepInterval: "1 hour" }).pipe(
          Layer.provideMerge(TestRunner.layer),
          Layer.provideMerge(Pg.layer("ephemeral"))
        )
      )
    ))

  it.live(
    "a get of a record whose create is running answers NotFound at once, then the record once it commits",
    () =>
      Effect.gen(function*() {
        slowGate.entered = yield* Deferred.make<void>()
        slowGate.release = yield* Deferred.make<void>()
        const creating = yield* Effect.forkChild(Store.create(Slowpoke, "slowCreate", { id: "s" }))
        yield* Deferred.await(slowGate.entered).pipe(
          Effect.timeoutOrElse({ duration: "10 seconds", orElse: () => Effect.die("the create's hook never ran") })
        )
        const during = yield* Effect.flip(Store.get(Slowpoke, { id: "s" })).pipe(
          Effect.timeoutOrElse({ duration: "2 seconds", orElse: () => Effect.die("the get waited for the create") })
        )
        assert.strictEqual(during._tag, "NotFound")
        yield* Deferred.succeed(slowGate.release, undefined)
        yield* Fiber.join(creating)
        assert.deepStrictEqual(yield* Store.get(Slowpoke, { id: "s" }), { id: "s" })
      }).pipe(Effect.provide(fresh())),
    { timeout: 30_000 }
  )
})
