/**
 * Durable resources on one process: what a user relies on when the process
 * ends and a new one starts on the same database. Every test runs on
 * PostgreSQL (a fresh schema) and on SQLite (a file in a temporary
 * directory); a "process" is a Store layer built and closed in the test, a
 * "restart" another one over the same database.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, type Duration, Effect, Exit, Layer, Metric, References, Schema, type Scope } from "effect"
import { Changeset, Filter, Metrics, Query, Resource, Store } from "effect-gen-server"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import { databases } from "./databases.js"

let names = 0
const fresh = (label: string) => `${label}${++names}`

/** A cart: durable, 1 minute of inactivity, a hook journal, a crashing action. */
const makeCart = (journal: Array<string>, options: { readonly restart?: Resource.RestartPolicy } = {}) =>
  Resource.make(fresh("Cart"), {
    fields: { id: Schema.String, owner: Schema.String, items: Schema.Array(Schema.String) },
    primaryKey: ["id"],
    durable: true,
    inactivityTimeout: "1 minute",
    restart: options.restart ?? "lastState",
    actions: (Action) => ({
      add: Action.update({
        arguments: { item: Schema.String },
        change: (cs) => Changeset.set(cs, "items", [...cs.data.items, cs.arguments.item])
      }),
      rename: Action.update({ accept: ["id"] }),
      explode: Action.update({ change: () => Effect.die(new Error("boom")) }),
      destroy: Action.destroy({
        change: (cs) =>
          Changeset.after(
            cs,
            (record) => Effect.sync(() => journal.push(`destroyed ${record.id}`)).pipe(Effect.as(record))
          )
      })
    })
  })

/** A durable record of a key alone, with both deadlines. */
const brief = (inactivityTimeout: Duration.Input, maximumLifetime: Duration.Input) =>
  Resource.make(fresh("Brief"), {
    fields: { id: Schema.String },
    primaryKey: ["id"],
    durable: true,
    inactivityTimeout,
    maximumLifetime
  })

const quiet = Effect.provideService(References.MinimumLogLevel, "None")

/** Runs `body` in a Store over `resources` and the database, closed at the end (a process that ends). */
const inProcess = <A, E>(
  resources: ReadonlyArray<Resource.Any>,
  sql: Layer.Layer<SqlClient.SqlClient>,
  body: Effect.Effect<A, E, Store.Store | SqlClient.SqlClient | Scope.Scope>
): Effect.Effect<A, E> =>
  Effect.scoped(Effect.provide(body, Layer.merge(Store.layer(resources).pipe(Layer.provide(sql)), sql)))

const gauge = (metric: Metric.Metric<number, any>, resource: Resource.Any) =>
  Effect.map(
    Metric.value(Metric.withAttributes(metric as any, { resource: resource.name })),
    (v: any) => v.value ?? v.count
  )

for (const db of databases) {
  describe(`durable resources on ${db.name}`, () => {
    it.effect("a new process serves every record with its last committed state, hibernated, and queries see them", () =>
      Effect.gen(function*() {
        const sql = yield* db.scoped
        const journal: Array<string> = []
        const Cart = makeCart(journal)
        yield* inProcess(
          [Cart],
          sql,
          Effect.gen(function*() {
            for (let i = 0; i < 20; i++) {
              yield* Store.create(Cart, "create", { id: `c${i}`, owner: i % 2 === 0 ? "doc" : "marty", items: [] })
            }
            yield* Store.update(Cart, { id: "c3" }, "add", { item: "hoverboard" })
            yield* Store.update(Cart, { id: "c3" }, "add", { item: "almanac" })
            yield* Store.destroy(Cart, { id: "c4" })
          })
        )
        yield* inProcess(
          [Cart],
          sql,
          Effect.gen(function*() {
            // nothing is awake: every stored record came back hibernated
            assert.strictEqual(yield* gauge(Metrics.hibernating, Cart), 19)
            const docs = yield* Store.read(
              Query.make(Cart).pipe(Query.filter(Filter.eq("owner", "doc")), Query.sort("id"))
            )
            assert.deepStrictEqual(docs.map((c) => c.id), ["c0", "c10", "c12", "c14", "c16", "c18", "c2", "c6", "c8"])
            const c3 = yield* Store.get(Cart, { id: "c3" })
            assert.deepStrictEqual(c3.items, ["hoverboard", "almanac"])
            assert.strictEqual(Exit.isFailure(yield* Effect.exit(Store.get(Cart, { id: "c4" }))), true)
            // a write wakes the record; it is stored again
            yield* Store.update(Cart, { id: "c3" }, "add", { item: "plutonium" })
            assert.strictEqual(yield* gauge(Metrics.wakes, Cart), 1)
          })
        )
        yield* inProcess(
          [Cart],
          sql,
          Effect.gen(function*() {
            const c3 = yield* Store.get(Cart, { id: "c3" })
            assert.deepStrictEqual(c3.items, ["hoverboard", "almanac", "plutonium"])
            assert.strictEqual((yield* Store.read(Query.make(Cart))).length, 19)
          })
        )
      }))

    it.effect("schedules are stored with their record: one due while the process was down runs at start, once", () =>
      Effect.gen(function*() {
        const sql = yield* db.scoped
        const Reminder = Resource.make(fresh("Reminder"), {
          fields: { id: Schema.String, rings: Schema.Int, note: Schema.String },
          primaryKey: ["id"],
          durable: true,
          actions: (Action) => ({
            set: Action.create({
              accept: ["id"],
              arguments: { seconds: Schema.Int },
              change: (cs) =>
                cs.pipe(
                  Changeset.set("rings", 0),
                  Changeset.set("note", ""),
                  Changeset.schedule("ring", { after: `${cs.arguments.seconds} seconds`, arguments: { note: "due" } })
                )
            }),
            ring: Action.update({
              arguments: { note: Schema.String },
              change: (cs) =>
                cs.pipe(Changeset.set("rings", cs.data.rings + 1), Changeset.set("note", cs.arguments.note))
            })
          })
        })
        /** Until `id` rang `n` times (its commit goes through real I/O), for 2 s at most. */
        const rang = (id: string, n: number) =>
          Effect.gen(function*() {
            for (let i = 0; i < 400; i++) {
              const all = yield* Store.read(Query.make(Reminder))
              if ((all.find((r) => r.id === id)?.rings ?? 0) >= n) return
              yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))
            }
          })
        yield* inProcess(
          [Reminder],
          sql,
          Effect.gen(function*() {
            yield* Store.create(Reminder, "set", { id: "soon", seconds: 10 })
            yield* Store.create(Reminder, "set", { id: "later", seconds: 120 })
          })
        )
        // down for 30 s
        yield* TestClock.adjust("30 seconds")
        yield* inProcess(
          [Reminder],
          sql,
          Effect.gen(function*() {
            yield* rang("soon", 1)
            assert.deepStrictEqual(yield* Store.get(Reminder, { id: "soon" }), { id: "soon", rings: 1, note: "due" })
            assert.deepStrictEqual(yield* Store.schedules(Reminder, { id: "soon" }), [])
            const [pending] = yield* Store.schedules(Reminder, { id: "later" })
            assert.deepStrictEqual([pending?.name, pending?.at, pending?.arguments], ["ring", new Date(120_000), {
              note: "due"
            }])
            yield* TestClock.adjust("90 seconds")
            yield* rang("later", 1)
          })
        )
        yield* inProcess(
          [Reminder],
          sql,
          Effect.gen(function*() {
            yield* TestClock.adjust("1 hour")
            for (const id of ["soon", "later"]) {
              assert.deepStrictEqual(yield* Store.get(Reminder, { id }), { id, rings: 1, note: "due" })
              assert.deepStrictEqual(yield* Store.schedules(Reminder, { id }), [])
            }
          })
        )
      }))

    it.effect("each write is in the database before its caller is answered", () =>
      Effect.gen(function*() {
        const sql = yield* db.scoped
        const Cart = makeCart([])
        yield* inProcess(
          [Cart],
          sql,
          Effect.gen(function*() {
            const client = yield* SqlClient.SqlClient
            const stored = (id: string) =>
              Effect.map(
                client.unsafe(
                  `SELECT state FROM effect_gen_server_records WHERE resource = ${db.param(1)} AND key = ${
                    db.param(2)
                  } AND alive`,
                  [Cart.name, id]
                ),
                (rows) => rows.length === 0 ? undefined : db.json((rows[0] as any).state)
              )
            yield* Store.create(Cart, "create", { id: "a", owner: "doc", items: [] })
            assert.deepStrictEqual(yield* stored("a"), { id: "a", owner: "doc", items: [] })
            yield* Store.update(Cart, { id: "a" }, "add", { item: "flux" })
            assert.deepStrictEqual(yield* stored("a"), { id: "a", owner: "doc", items: ["flux"] })
            yield* Store.destroy(Cart, { id: "a" })
            assert.strictEqual(yield* stored("a"), undefined)
          })
        )
      }))

    it.effect("records whose deadline passed while the process was down are destroyed through their destroy action", () =>
      Effect.gen(function*() {
        const sql = yield* db.scoped
        const journal: Array<string> = []
        const Cart = makeCart(journal)
        yield* inProcess(
          [Cart],
          sql,
          Effect.gen(function*() {
            yield* Store.create(Cart, "create", { id: "old", owner: "doc", items: [] })
            yield* TestClock.adjust("50 seconds")
            yield* Store.create(Cart, "create", { id: "young", owner: "doc", items: [] })
          })
        )
        assert.deepStrictEqual(journal, [])
        // down for 30 s: "old" passed its minute, "young" did not
        yield* TestClock.adjust("30 seconds")
        yield* inProcess([Cart], sql, settle)
        assert.deepStrictEqual(journal, ["destroyed old"])
        yield* inProcess(
          [Cart],
          sql,
          Effect.gen(function*() {
            const all = yield* Store.read(Query.make(Cart))
            assert.deepStrictEqual(all.map((c) => c.id), ["young"])
          })
        )
      }))

    it.effect("a record found past both deadlines at start is destroyed for the one that passed first", () =>
      Effect.gen(function*() {
        const sql = yield* db.scoped
        const Brief = brief("10 seconds", "1 minute")
        yield* inProcess([Brief], sql, Store.create(Brief, "create", { id: "idle" }))
        // down for 100 s: idle since 10 s, past its lifetime since 60 s
        yield* TestClock.adjust("100 seconds")
        const destroys = (reason: string) =>
          Effect.map(
            Metric.value(Metric.withAttributes(Metrics.destroys, { resource: Brief.name, reason })),
            (counter) => counter.count
          )
        const reasons = yield* inProcess(
          [Brief],
          sql,
          Effect.gen(function*() {
            // its expiry at start, waited for (a real database answers in real time), bounded
            for (let i = 0; i < 250 && (yield* destroys("inactivity")) + (yield* destroys("lifetime")) === 0; i++) {
              yield* TestClock.withLive(Effect.sleep("20 millis"))
            }
            return { inactivity: yield* destroys("inactivity"), lifetime: yield* destroys("lifetime") }
          })
        )
        assert.deepStrictEqual(reasons, { inactivity: 1, lifetime: 0 })
      }))

    it.effect("activity from reads is written, so a record read after its last write does not expire early", () =>
      Effect.gen(function*() {
        const sql = yield* db.scoped
        const Cart = makeCart([])
        yield* inProcess(
          [Cart],
          sql,
          Effect.gen(function*() {
            yield* Store.create(Cart, "create", { id: "read", owner: "doc", items: [] })
            yield* TestClock.adjust("40 seconds")
            yield* Store.get(Cart, { id: "read" })
            // the flush (every 5 s) writes the read's activity
            yield* TestClock.adjust("6 seconds")
            yield* settle
          })
        )
        // 70 s after the write, 30 s after the read
        yield* TestClock.adjust("24 seconds")
        yield* inProcess(
          [Cart],
          sql,
          Effect.gen(function*() {
            yield* settle
            assert.deepStrictEqual((yield* Store.read(Query.make(Cart))).map((c) => c.id), ["read"])
          })
        )
      }))

    it.effect("restart: \"initial\" after a restart of the process runs the stored create input again", () =>
      Effect.gen(function*() {
        const sql = yield* db.scoped
        const Cart = makeCart([], { restart: "initial" })
        yield* inProcess(
          [Cart],
          sql,
          Effect.gen(function*() {
            yield* Store.create(Cart, "create", { id: "i", owner: "doc", items: ["first"] })
            yield* Store.update(Cart, { id: "i" }, "add", { item: "second" })
          })
        )
        yield* inProcess(
          [Cart],
          sql,
          Effect.gen(function*() {
            const crashed = yield* Effect.flip(Store.update(Cart, { id: "i" }, "explode", {}))
            assert.strictEqual(crashed._tag, "RecordCrashed")
            assert.deepStrictEqual((yield* Store.get(Cart, { id: "i" })).items, ["first"])
          })
        )
        // and the restarted state is what is stored
        yield* inProcess(
          [Cart],
          sql,
          Effect.gen(function*() {
            assert.deepStrictEqual((yield* Store.get(Cart, { id: "i" })).items, ["first"])
          })
        )
      }).pipe(quiet))

    it.effect("a write storage refuses fails the call and changes nothing, in memory or stored", () =>
      Effect.gen(function*() {
        const sql = yield* db.scoped
        const Cart = makeCart([])
        yield* inProcess(
          [Cart],
          sql,
          Effect.gen(function*() {
            yield* Store.create(Cart, "create", { id: "t", owner: "doc", items: [] })
            const client = yield* SqlClient.SqlClient
            yield* db.refuseWrites(client, "forbidden")
            const error = yield* Effect.flip(Store.update(Cart, { id: "t" }, "add", { item: "forbidden" }))
            assert.strictEqual(error._tag, "RecordCrashed")
            assert.match(error.message, /storing the change failed, so it was not applied/)
            assert.deepStrictEqual((yield* Store.get(Cart, { id: "t" })).items, [])
            // the record lives on and takes the next write
            yield* Store.update(Cart, { id: "t" }, "add", { item: "allowed" })
          })
        )
        yield* inProcess(
          [Cart],
          sql,
          Effect.gen(function*() {
            assert.deepStrictEqual((yield* Store.get(Cart, { id: "t" })).items, ["allowed"])
          })
        )
      }))

    it.effect("a row written by another process since this one loaded it is not overwritten (fencing)", () =>
      Effect.gen(function*() {
        const sql = yield* db.scoped
        const Cart = makeCart([])
        yield* inProcess(
          [Cart],
          sql,
          Effect.gen(function*() {
            yield* Store.create(Cart, "create", { id: "f", owner: "doc", items: [] })
            const client = yield* SqlClient.SqlClient
            yield* client.unsafe(`UPDATE effect_gen_server_records SET version = version + 1`)
            const error = yield* Effect.flip(Store.update(Cart, { id: "f" }, "add", { item: "stale" }))
            assert.strictEqual(error._tag, "RecordCrashed")
            assert.match(error.message, /written by another process/)
            assert.deepStrictEqual((yield* Store.get(Cart, { id: "f" })).items, [])
          })
        )
      }))

    it.effect("fencing holds for a write under an operation id too", () =>
      Effect.gen(function*() {
        const sql = yield* db.scoped
        const Cart = makeCart([])
        yield* inProcess(
          [Cart],
          sql,
          Effect.gen(function*() {
            yield* Store.create(Cart, "create", { id: "f", owner: "doc", items: [] })
            const client = yield* SqlClient.SqlClient
            // another process's write: a new version and a state of its own
            yield* client.unsafe(
              `UPDATE effect_gen_server_records SET version = version + 1, state = ${db.param(1)}`,
              [db.jsonParam({ id: "f", owner: "doc", items: ["other process"] })]
            )
            const error = yield* Effect.flip(
              Store.update(Cart, { id: "f" }, "add", { item: "stale" }).pipe(Store.withOperationId("op-1"))
            )
            assert.strictEqual(error._tag, "RecordCrashed")
            assert.match(error.message, /written by another process/)
            const rows = yield* client.unsafe<{ readonly state: unknown }>(
              `SELECT state FROM effect_gen_server_records`
            )
            const state = typeof rows[0]?.state === "string" ? JSON.parse(rows[0].state) : rows[0]?.state
            assert.deepStrictEqual(state.items, ["other process"])
          })
        )
      }))

    it.effect("a key change moves the stored row: the old key is gone and free, the new one stored", () =>
      Effect.gen(function*() {
        const sql = yield* db.scoped
        const Cart = makeCart([])
        yield* inProcess(
          [Cart],
          sql,
          Effect.gen(function*() {
            yield* Store.create(Cart, "create", { id: "k", owner: "doc", items: ["flux"] })
            const moved = yield* Store.update(Cart, { id: "k" }, "rename", { id: "k2" })
            assert.strictEqual(moved.id, "k2")
            assert.strictEqual(Exit.isFailure(yield* Effect.exit(Store.get(Cart, { id: "k" }))), true)
            // a key taken in storage refuses the move, and nothing changes
            yield* Store.create(Cart, "create", { id: "taken", owner: "biff", items: [] })
            const error = yield* Effect.flip(Store.update(Cart, { id: "k2" }, "rename", { id: "taken" }))
            assert.strictEqual(error._tag, "AlreadyExists")
            yield* Store.update(Cart, { id: "k2" }, "add", { item: "almanac" })
          })
        )
        yield* inProcess(
          [Cart],
          sql,
          Effect.gen(function*() {
            const all = yield* Store.read(Query.make(Cart).pipe(Query.sort("id")))
            assert.deepStrictEqual(all.map((c) => [c.id, c.items]), [["k2", ["flux", "almanac"]], ["taken", []]])
            // the old key is free for a create
            yield* Store.create(Cart, "create", { id: "k", owner: "marty", items: [] })
          })
        )
      }))

    it.effect("a stored record that cannot be decoded is quarantined, reported and counted; the others load", () =>
      Effect.gen(function*() {
        const sql = yield* db.scoped
        const Cart = makeCart([])
        yield* inProcess(
          [Cart],
          sql,
          Effect.gen(function*() {
            yield* Store.create(Cart, "create", { id: "good", owner: "doc", items: [] })
            yield* Store.create(Cart, "create", { id: "bad", owner: "doc", items: [] })
            const client = yield* SqlClient.SqlClient
            yield* client.unsafe(
              `UPDATE effect_gen_server_records SET state = ${db.param(1)} WHERE key = ${db.param(2)}`,
              [db.jsonParam({ id: "bad", owner: 42 }), "bad"]
            )
          })
        )
        yield* inProcess(
          [Cart],
          sql,
          Effect.gen(function*() {
            assert.deepStrictEqual((yield* Store.read(Query.make(Cart))).map((c) => c.id), ["good"])
            assert.strictEqual(yield* gauge(Metrics.quarantined, Cart), 1)
            const client = yield* SqlClient.SqlClient
            const kept = yield* client.unsafe(`SELECT key, reason, state FROM effect_gen_server_quarantine`)
            assert.strictEqual(kept.length, 1)
            assert.strictEqual((kept[0] as any).key, "bad")
            assert.match((kept[0] as any).reason, /cannot decode version 1/)
            assert.deepStrictEqual(JSON.parse((kept[0] as any).state), { id: "bad", owner: 42 })
            // the key is free again
            yield* Store.create(Cart, "create", { id: "bad", owner: "biff", items: [] })
          }).pipe(quiet)
        )
      }))

    if (db.name === "SQLite") {
      it.effect("a state cell that is not JSON at all is quarantined with its text; the store starts", () =>
        Effect.gen(function*() {
          const sql = yield* db.scoped
          const Cart = makeCart([])
          yield* inProcess(
            [Cart],
            sql,
            Effect.gen(function*() {
              yield* Store.create(Cart, "create", { id: "good", owner: "doc", items: [] })
              yield* Store.create(Cart, "create", { id: "torn", owner: "doc", items: [] })
              const client = yield* SqlClient.SqlClient
              yield* client.unsafe(`UPDATE effect_gen_server_records SET state = ?1 WHERE key = ?2`, [
                "{\"id\": \"torn\", \"own",
                "torn"
              ])
            })
          )
          yield* inProcess(
            [Cart],
            sql,
            Effect.gen(function*() {
              assert.deepStrictEqual((yield* Store.read(Query.make(Cart))).map((c) => c.id), ["good"])
              assert.strictEqual(yield* gauge(Metrics.quarantined, Cart), 1)
              const client = yield* SqlClient.SqlClient
              const kept = yield* client.unsafe(`SELECT key, reason, state FROM effect_gen_server_quarantine`)
              assert.deepStrictEqual(kept.map((r: any) => [r.key, r.state]), [["torn", "{\"id\": \"torn\", \"own"]])
              assert.match((kept[0] as any).reason, /not JSON/)
            }).pipe(quiet)
          )
        }))
    }

    it.live("a table written before 0.6 (tombstones without dead_since): each tombstone is purged by its age", () =>
      Effect.gen(function*() {
        const sql = yield* db.scoped
        const Cart = makeCart([])
        const rows = Effect.flatMap(SqlClient.SqlClient, (client) =>
          Effect.map(
            client.unsafe(`SELECT key, alive, last_activity, dead_since FROM effect_gen_server_records ORDER BY key`),
            (rs) =>
              rs.map((r: any) => ({
                key: r.key,
                alive: r.alive === true || r.alive === 1,
                lastActivity: Number(r.last_activity),
                deadSince: r.dead_since === null ? null : Number(r.dead_since)
              }))
          ))
        yield* inProcess(
          [Cart],
          sql,
          Effect.gen(function*() {
            for (const id of ["gone", "kept", "recent"]) {
              yield* Store.create(Cart, "create", { id, owner: "doc", items: [] })
            }
            yield* Store.destroy(Cart, { id: "gone" })
            yield* Store.destroy(Cart, { id: "recent" })
            // the table as 0.5 left it: no dead_since; "gone" removed long ago
            const client = yield* SqlClient.SqlClient
            yield* client.unsafe(`DROP INDEX effect_gen_server_records_dead_since`)
            yield* client.unsafe(`ALTER TABLE effect_gen_server_records DROP COLUMN dead_since`)
            yield* client.unsafe(`UPDATE effect_gen_server_records SET last_activity = 1 WHERE key = 'gone'`)
          })
        )
        yield* inProcess(
          [Cart],
          sql,
          Effect.gen(function*() {
            const after = yield* rows
            assert.deepStrictEqual(after.map((r) => [r.key, r.alive]), [["kept", true], ["recent", false]])
            const recent = after.find((r) => r.key === "recent")!
            // a tombstone 0.5 wrote died at its last commit; a live record has none
            assert.strictEqual(recent.deadSince, recent.lastActivity)
            assert.strictEqual(after.find((r) => r.key === "kept")!.deadSince, null)
            // and what 0.6 removes says when it died
            const removing = Date.now()
            yield* Store.destroy(Cart, { id: "kept" })
            const kept = (yield* rows).find((r) => r.key === "kept")!
            assert.isAtLeast(kept.deadSince!, removing)
          })
        )
      }))

    it.live(
      "a tombstone is kept operationRetention from its record's removal, not from its last activity",
      () =>
        Effect.gen(function*() {
          const sql = yield* db.scoped
          // no timeouts: nothing moves its last activity after the create
          const Plain = Resource.make(fresh("Plain"), {
            fields: { id: Schema.String },
            primaryKey: ["id"],
            durable: true
          })
          const tombstones = Effect.flatMap(SqlClient.SqlClient, (client) =>
            Effect.map(
              client.unsafe(`SELECT dead_since FROM effect_gen_server_records WHERE NOT alive`),
              (rs) => rs.map((r: any) => Number(r.dead_since))
            ))
          // kept 2 s, purged about every second (real time: a database's pool times its connections by the clock)
          const store = Store.layer([Plain], { durable: { operationRetention: "2 seconds" } })
          yield* Effect.scoped(Effect.provide(
            Effect.gen(function*() {
              yield* Store.create(Plain, "create", { id: "a" })
              yield* Effect.sleep("2500 millis")
              const removing = Date.now()
              yield* Store.destroy(Plain, { id: "a" })
              const [deadSince] = yield* tombstones
              assert.isAtLeast(deadSince!, removing)
              // a purge or more ran since: the tombstone is kept until 2 s after the removal
              yield* Effect.sleep("1200 millis")
              assert.deepStrictEqual(yield* tombstones, [deadSince])
              // and purged after it
              let left = yield* tombstones
              for (let i = 0; i < 100 && left.length > 0; i++) {
                yield* Effect.sleep("50 millis")
                left = yield* tombstones
              }
              assert.deepStrictEqual(left, [])
            }),
            Layer.merge(store.pipe(Layer.provide(sql)), sql)
          ))
        }),
      20_000
    )

    it.effect("timeouts with a fraction of a millisecond are stored (rounded up) and expire the record", () =>
      Effect.gen(function*() {
        const sql = yield* db.scoped
        const Brief = brief("1500 micros", "2500 micros")
        yield* inProcess(
          [Brief],
          sql,
          Effect.gen(function*() {
            yield* Store.create(Brief, "create", { id: "b" })
            assert.deepStrictEqual(yield* Store.get(Brief, { id: "b" }), { id: "b" })
            yield* TestClock.adjust("2 millis")
            assert.strictEqual((yield* Effect.flip(Store.get(Brief, { id: "b" })))._tag, "NotFound")
          })
        )
      }))

    it.effect("a record stored by version 1 loads migrated; one no migration covers is quarantined", () =>
      Effect.gen(function*() {
        const sql = yield* db.scoped
        const name = fresh("Profile")
        const V1 = Resource.make(name, {
          fields: { id: Schema.String, name: Schema.String },
          primaryKey: ["id"],
          durable: true
        })
        const V2 = Resource.make(name, {
          fields: { id: Schema.String, first: Schema.String, last: Schema.String },
          primaryKey: ["id"],
          durable: true,
          version: 2,
          migrations: {
            1: Resource.migration(Schema.Struct({ id: Schema.String, name: Schema.String }), (v1) => {
              const [first = "", ...rest] = v1.name.split(" ")
              return { id: v1.id, first, last: rest.join(" ") }
            })
          }
        })
        const V3 = Resource.make(name, {
          fields: { id: Schema.String, first: Schema.String, last: Schema.String },
          primaryKey: ["id"],
          durable: true,
          version: 3
        })
        yield* inProcess([V1], sql, Store.create(V1, "create", { id: "e", name: "Emmett Lathrop Brown" }))
        yield* inProcess(
          [V2],
          sql,
          Effect.gen(function*() {
            assert.deepStrictEqual(yield* Store.get(V2, { id: "e" }), {
              id: "e",
              first: "Emmett",
              last: "Lathrop Brown"
            })
            yield* Store.create(V2, "create", { id: "m", first: "Marty", last: "McFly" })
          })
        )
        // version 3 declares no migration from 1 or 2: both rows are kept aside
        yield* inProcess(
          [V3],
          sql,
          Effect.gen(function*() {
            assert.deepStrictEqual(yield* Store.read(Query.make(V3)), [])
            assert.strictEqual(yield* gauge(Metrics.quarantined, V3), 2)
          }).pipe(quiet)
        )
      }))

    it.effect("property: any record of version 1 loads as the migration of it", () =>
      Effect.gen(function*() {
        const sql = yield* db.scoped
        const samples = fc.sample(
          fc.uniqueArray(
            fc.record({
              id: fc.string({ minLength: 1, maxLength: 12 }).filter((s) => !s.includes("\u0000")),
              n: fc.integer(),
              tags: fc.array(fc.string().filter((s) => !s.includes("\u0000")), { maxLength: 4 }),
              note: fc.string().filter((s) => !s.includes("\u0000"))
            }, { requiredKeys: ["id", "n", "tags"] }),
            { selector: (r) => r.id, minLength: 1, maxLength: 40 }
          ),
          { numRuns: 5, seed: 42 }
        )
        for (const records of samples) {
          const name = fresh("Item")
          const v1Fields = {
            id: Schema.String,
            n: Schema.Int,
            tags: Schema.Array(Schema.String),
            note: Schema.optionalKey(Schema.String)
          }
          const V1 = Resource.make(name, { fields: v1Fields, primaryKey: ["id"], durable: true })
          const migrate = (v1: Schema.Struct.Type<typeof v1Fields>) => ({
            id: v1.id,
            count: v1.n * 2,
            tags: [...v1.tags].reverse(),
            note: v1.note ?? "none"
          })
          const V2 = Resource.make(name, {
            fields: { id: Schema.String, count: Schema.Int, tags: Schema.Array(Schema.String), note: Schema.String },
            primaryKey: ["id"],
            durable: true,
            version: 2,
            migrations: { 1: Resource.migration(Schema.Struct(v1Fields), migrate) }
          })
          const clean = records
          yield* inProcess([V1], sql, Effect.forEach(clean, (r) => Store.create(V1, "create", r), { discard: true }))
          yield* inProcess(
            [V2],
            sql,
            Effect.gen(function*() {
              const loaded = yield* Store.read(Query.make(V2).pipe(Query.sort("id")))
              const expected = clean.map(migrate).sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
              assert.deepStrictEqual(loaded, expected)
            })
          )
        }
      }))
  })
}

/** Lets the expiry fibers and the record fibers run what the clock made due. */
const settle = Effect.repeat(Effect.yieldNow, { times: 50 })

describe("durable resources: set-up errors", () => {
  it("migrations outside 1..version-1, or a version that is no positive integer, are InvalidResource", () => {
    // a resource that is not durable may have a version: it is stored on Cluster.layer
    assert.strictEqual(
      Resource.make("Fine", { fields: { id: Schema.String }, primaryKey: ["id"], version: 2 }).version,
      2
    )
    assert.throws(() =>
      Resource.make("Bad", {
        fields: { id: Schema.String },
        primaryKey: ["id"],
        durable: true,
        version: 2,
        migrations: { 2: Resource.migration(Schema.Struct({ id: Schema.String }), (x) => x) }
      }), /versions are integers from 1 to 1/)
    assert.throws(() =>
      Resource.make("Bad", {
        fields: { id: Schema.String },
        primaryKey: ["id"],
        durable: true,
        version: 0
      }), /version must be a positive integer/)
  })

  it.effect("a durable resource on the memory data layer, or with no SqlClient, is InvalidResource", () =>
    Effect.gen(function*() {
      const Cart = makeCart([])
      const memory = yield* Effect.exit(
        Effect.scoped(Layer.build(Store.layer([Cart], { dataLayer: "memory" }) as Layer.Layer<Store.Store>))
      )
      assert.strictEqual(Exit.isFailure(memory), true)
      const noSql = yield* Effect.exit(Effect.scoped(Layer.build(Store.layer([Cart]) as Layer.Layer<Store.Store>)))
      assert.strictEqual(Exit.isFailure(noSql), true)
      assert.include(JSON.stringify(noSql), "needs a SqlClient")
      assert.include(JSON.stringify(memory), "memory data layer keeps nothing")
    }))

  for (const db of databases) {
    it.effect(`${db.name}: a tablePrefix longer than PostgreSQL's names can hold is refused, the longest allowed works`, () =>
      Effect.gen(function*() {
        const sql = yield* db.scoped
        const Cart = makeCart([])
        const tooLong = "p".repeat(46)
        const refused = yield* Effect.exit(
          Effect.scoped(
            Layer.build(Store.layer([Cart], { durable: { tablePrefix: tooLong } }).pipe(Layer.provide(sql)))
          )
        )
        assert.isTrue(Exit.isFailure(refused))
        assert.include(
          String(Cause.squash((refused as Exit.Failure<unknown, unknown>).cause)),
          "tablePrefix must be at most 45 bytes"
        )
        // 45 bytes: every table and index name distinct
        const longest = "q".repeat(45)
        const store = Store.layer([Cart], { durable: { tablePrefix: longest } }).pipe(Layer.provide(sql))
        yield* Effect.scoped(Effect.provide(
          Effect.gen(function*() {
            yield* Store.create(Cart, "create", { id: "a", owner: "doc", items: [] })
            yield* Store.destroy(Cart, { id: "a" })
          }),
          store
        ))
        if (db.name.includes("PostgreSQL")) {
          const indexes = yield* Effect.provide(
            Effect.flatMap(SqlClient.SqlClient, (client) =>
              client.unsafe<{ readonly indexname: string }>(
                `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1`,
                [`${longest}records`]
              )),
            sql
          )
          assert.includeMembers(indexes.map((i) => i.indexname), [
            `${longest}records_due`,
            `${longest}records_dead_since`
          ])
        }
      }))
  }
})
