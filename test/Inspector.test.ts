/**
 * The inspector's JSON API, over HTTP: each test starts a Store and an
 * inspector on a free loopback port (real time: it is a real server), talks
 * to it with `fetch`, event stream included, and closes both. Every wait is
 * bounded. Metrics go to a registry of each test's own.
 *
 * The page is tested in a real browser by `Inspector.browser.test.ts`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Clock, Context, Effect, Exit, Layer, Metric, Schema, Scope } from "effect"
import { TestRunner } from "effect/cluster"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import {
  Changeset,
  Cluster,
  DataLayer,
  Filter,
  Inspector,
  Query,
  Resource,
  SqliteClient,
  Store,
  Testing
} from "../src/index.js"
import { BadParameter, parseFilter, parseSort } from "../src/internal/inspector/params.js"
import * as Pg from "./cluster/pg.js"
import * as Client from "./fixtures/InspectorClient.js"
import { Character, Machine } from "./fixtures/TimeTravel.js"

/** The Store of each test, with an inspector over it; the metrics in a registry of the test's own. */
const inspected = <E, R>(
  store: Layer.Layer<Store.Store, E, R>,
  options: Partial<Inspector.Options> = {}
) =>
  Inspector.layer({ port: 0, sampleInterval: "50 millis", ...options }).pipe(
    Layer.provideMerge(store),
    Layer.provideMerge(Layer.succeed(Metric.MetricRegistry, new Map()))
  )

/** Runs `f` with a client of the inspector. */
const withInspector = <A, E, R>(
  f: (client: Client.Client) => Effect.Effect<A, E, R>,
  token?: string
) =>
  Effect.gen(function*() {
    const inspector = yield* Inspector.Inspector
    return yield* f(Client.make(inspector.url, token))
  })

const timeTravel = () => inspected(Store.layer([Character, Machine]))

/** A GET with a `Host` header of our choosing (`fetch` sets its own). */
const getWithHost = (port: number, path: string, host: string) =>
  Effect.callback<{ readonly status: number; readonly body: string }>((resume) => {
    const request = Http.get({ host: "127.0.0.1", port, path, headers: { host } }, (response) => {
      let body = ""
      response.on("data", (chunk) => (body += chunk))
      response.on("end", () => resume(Effect.succeed({ status: response.statusCode ?? 0, body })))
    })
    request.on("error", (error) => resume(Effect.die(error)))
  }).pipe(Effect.timeout("5 seconds"), Effect.orDie)

const keyParam = (key: unknown) => encodeURIComponent(JSON.stringify(key))

/** The records of a page, as the API returns them. */
const names = (reply: Client.Reply): ReadonlyArray<string> => reply.body.records.map((r: any) => r.record.name)

const cast = Effect.forEach(
  [
    { id: "marty", name: "Marty", currentYear: 1985 },
    { id: "doc", name: "Doc", currentYear: 1985 },
    { id: "biff", name: "Biff", currentYear: 1955 },
    { id: "george", name: "George", currentYear: 1955 },
    { id: "clara", name: "Clara", currentYear: 1885 }
  ],
  (input) => Store.create(Character, "create", input)
)

describe("Inspector", () => {
  describe("filter and sort parameters", () => {
    it("reads the filter a person types", () => {
      assert.deepStrictEqual(parseFilter("currentYear >= 1955"), { _tag: "Gte", field: "currentYear", value: 1955 })
      assert.deepStrictEqual(parseFilter("name = Marty"), { _tag: "Eq", field: "name", value: "Marty" })
      assert.deepStrictEqual(
        parseFilter("currentYear >= 1955 and name contains \"Mar\" or not nickname is nil"),
        {
          _tag: "Or",
          filters: [
            {
              _tag: "And",
              filters: [
                { _tag: "Gte", field: "currentYear", value: 1955 },
                { _tag: "Contains", field: "name", value: "Mar" }
              ]
            },
            { _tag: "Not", filter: { _tag: "IsNil", field: "nickname" } }
          ]
        }
      )
      assert.deepStrictEqual(parseFilter("(a = 1 or a = 2) and b != \"x y\""), {
        _tag: "And",
        filters: [
          { _tag: "Or", filters: [{ _tag: "Eq", field: "a", value: 1 }, { _tag: "Eq", field: "a", value: 2 }] },
          { _tag: "Neq", field: "b", value: "x y" }
        ]
      })
      assert.deepStrictEqual(parseFilter("year in [1955, 1985]"), { _tag: "In", field: "year", values: [1955, 1985] })
      assert.deepStrictEqual(parseFilter("nickname is not nil"), {
        _tag: "Not",
        filter: { _tag: "IsNil", field: "nickname" }
      })
      assert.deepStrictEqual(parseFilter("flag = true"), { _tag: "Eq", field: "flag", value: true })
      // the JSON form of a Filter.Expr, as it is
      assert.deepStrictEqual(
        parseFilter("{\"_tag\":\"Eq\",\"field\":\"name\",\"value\":\"Doc\"}"),
        Filter.eq("name", "Doc")
      )
    })

    it("refuses what it cannot read, saying where", () => {
      const message = (text: string) => {
        const parsed = parseFilter(text)
        assert.instanceOf(parsed, BadParameter, text)
        return (parsed as BadParameter).message
      }
      assert.strictEqual(message("currentYear >"), "filter: expected a value after \"currentYear\", got the end")
      assert.strictEqual(
        message("currentYear 1955"),
        "filter: expected an operator (=, !=, >, >=, <, <=, in, contains, is nil) after \"currentYear\", got \"1955\" at column 13"
      )
      assert.strictEqual(message("name = \"Marty"), "filter: unterminated string at column 8")
      assert.strictEqual(message("(a = 1"), "filter: expected \")\" to close the \"(\" at column 1, got the end")
      assert.strictEqual(
        message("a = 1 b = 2"),
        "filter: unexpected \"b\" at column 7: join conditions with \"and\" or \"or\""
      )
      assert.strictEqual(message("a in 3"), "filter: \"a\" in needs a list such as [1955, 1985]")
      assert.strictEqual(message("a = 1 & b = 2"), "filter: unexpected \"&\" at column 7")
      assert.strictEqual(
        message("{nope"),
        "filter: invalid JSON: Expected property name or '}' in JSON at position 1 (line 1 column 2)"
      )
      assert.strictEqual(message("   "), "filter: empty")
    })

    it("reads a sort: fields, directions, commas", () => {
      assert.deepStrictEqual(parseSort("currentYear desc, name"), [
        { field: "currentYear", direction: "desc" },
        { field: "name", direction: "asc" }
      ])
      assert.deepStrictEqual(parseSort("-currentYear,name:asc"), [
        { field: "currentYear", direction: "desc" },
        { field: "name", direction: "asc" }
      ])
      assert.deepStrictEqual(parseSort(""), [])
      assert.strictEqual(
        (parseSort("name upward") as BadParameter).message,
        "sort: the direction of \"name\" is \"asc\" or \"desc\", got \"upward\""
      )
    })
  })

  it.live("listens on 127.0.0.1 only, on the port it was given or picked", () =>
    Effect.gen(function*() {
      const inspector = yield* Inspector.Inspector
      assert.strictEqual(inspector.host, "127.0.0.1")
      assert.match(inspector.url, /^http:\/\/127\.0\.0\.1:[1-9]\d*\/$/)
      // every other address of this machine refuses the port
      const others = Object.values(Os.networkInterfaces()).flat()
        .filter((i) => i !== undefined && !i.internal && i.family === "IPv4")
        .map((i) => i!.address)
      for (const address of others) {
        const connected = yield* Effect.callback<boolean>((resume) => {
          const socket = Net.connect({ host: address, port: inspector.port })
          socket.once("connect", () => {
            socket.destroy()
            resume(Effect.succeed(true))
          })
          socket.once("error", () => resume(Effect.succeed(false)))
        }).pipe(Effect.timeout("5 seconds"))
        assert.isFalse(connected, `${address}:${inspector.port} accepted a connection`)
      }
    }).pipe(Effect.provide(timeTravel())))

  it.live("the time it shows is the Store's: /api/resources answers its Clock's now", () =>
    Effect.gen(function*() {
      const before = yield* Clock.currentTimeMillis
      const reply = yield* withInspector((client) => client.get("/api/resources"))
      const after = yield* Clock.currentTimeMillis
      assert.isAtLeast(reply.body.at, before)
      assert.isAtMost(reply.body.at, after)
    }).pipe(Effect.provide(timeTravel())))

  it.live("lists the resources with their counts and definitions", () =>
    Effect.gen(function*() {
      yield* cast
      yield* Store.create(Machine, "create", { id: "delorean", name: "OUTATIME" })
      const reply = yield* withInspector((client) => client.get("/api/resources"))
      assert.strictEqual(reply.status, 200)
      assert.strictEqual(reply.headers.get("content-type"), "application/json")
      const [character, machine] = reply.body.resources
      assert.strictEqual(character.name, "Character")
      assert.strictEqual(character.records, 5)
      assert.strictEqual(character.awake, 5)
      assert.strictEqual(character.hibernating, 0)
      assert.deepStrictEqual(character.primaryKey, ["id"])
      assert.deepStrictEqual(character.fields, [
        { name: "id", type: "string", optional: false },
        { name: "name", type: "string", optional: false },
        { name: "nickname", type: "string", optional: true },
        { name: "currentYear", type: "integer", optional: false }
      ])
      assert.deepInclude(character.actions, { name: "travelInTime", kind: "update" })
      assert.strictEqual(character.inactivityTimeout, "1m")
      assert.strictEqual(character.restart, "initial")
      assert.strictEqual(machine.name, "Machine")
      assert.strictEqual(machine.records, 1)
      assert.strictEqual(reply.body.events.received, 6)
    }).pipe(Effect.provide(timeTravel())))

  it.live("counts hibernating records apart from awake ones", () => {
    const Sleeper = Resource.make("Sleeper", {
      fields: { id: Schema.String, n: Schema.Int },
      primaryKey: ["id"],
      hibernateAfter: "50 millis"
    })
    return Effect.gen(function*() {
      yield* Effect.forEach(["a", "b", "c"], (id) => Store.create(Sleeper, "create", { id, n: 0 }))
      const counts = yield* withInspector((client) =>
        Effect.gen(function*() {
          // every record sleeps once idle for 50 ms; the counts are re-read every sample (50 ms)
          for (let i = 0; i < 100; i++) {
            const reply = yield* client.get("/api/resources")
            const sleeper = reply.body.resources[0]
            if (sleeper.hibernating === 3) return sleeper
            yield* Effect.sleep("30 millis")
          }
          return assert.fail("the records did not hibernate within 3 s")
        })
      )
      assert.strictEqual(counts.records, 3)
      assert.strictEqual(counts.awake, 0)
      // a write wakes one
      yield* Store.update(Sleeper, { id: "a" }, "update", { n: 1 })
      yield* Effect.sleep("60 millis")
      const awake = yield* withInspector((client) => client.get("/api/resources"))
      assert.strictEqual(awake.body.resources[0].records, 3)
      assert.isAtLeast(awake.body.resources[0].awake + awake.body.resources[0].hibernating, 3)
    }).pipe(Effect.provide(inspected(Store.layer([Sleeper]))))
  })

  it.live("a page of records, with a filter, a sort, an offset and a limit", () =>
    withInspector((client) =>
      Effect.gen(function*() {
        yield* cast
        const all = yield* client.get("/api/resources/Character/records?sort=name")
        assert.strictEqual(all.status, 200)
        assert.deepStrictEqual(names(all), ["Biff", "Clara", "Doc", "George", "Marty"])
        assert.isFalse(all.body.more)
        assert.deepStrictEqual(all.body.records[0], {
          key: { id: "biff" },
          record: { id: "biff", name: "Biff", currentYear: 1955 }
        })

        const filter = encodeURIComponent("currentYear >= 1955 and name != Doc")
        const page1 = yield* client.get(
          `/api/resources/Character/records?filter=${filter}&sort=${
            encodeURIComponent("currentYear desc, name")
          }&limit=2`
        )
        assert.deepStrictEqual(names(page1), ["Marty", "Biff"])
        assert.isTrue(page1.body.more)
        const page2 = yield* client.get(
          `/api/resources/Character/records?filter=${filter}&sort=${
            encodeURIComponent("currentYear desc, name")
          }&limit=2&offset=2`
        )
        assert.deepStrictEqual(names(page2), ["George"])
        assert.isFalse(page2.body.more)

        const list = yield* client.get(
          `/api/resources/Character/records?filter=${encodeURIComponent("currentYear in [1885, 1985]")}&sort=-name`
        )
        assert.deepStrictEqual(names(list), ["Marty", "Doc", "Clara"])
        // the JSON form of a filter
        const json = yield* client.get(
          `/api/resources/Character/records?filter=${encodeURIComponent(JSON.stringify(Filter.eq("name", "Clara")))}`
        )
        assert.deepStrictEqual(names(json), ["Clara"])
      })
    ).pipe(Effect.provide(timeTravel())))

  it.live("a bad parameter is a 400 naming the problem, and changes nothing", () =>
    withInspector((client) =>
      Effect.gen(function*() {
        yield* cast
        const before = yield* Store.read(Query.make(Character))
        const received = (yield* client.get("/api/events")).body.received
        const bad = (query: string) => client.get(`/api/resources/Character/records?${query}`)
        const cases: ReadonlyArray<readonly [string, string]> = [
          [
            `filter=${encodeURIComponent("colour = red")}`,
            "Character: invalid query: unknown field \"colour\" in filter"
          ],
          [
            `filter=${encodeURIComponent("currentYear > \"soon\"")}`,
            "Character: invalid query: filter Gt on field \"currentYear\": Expected number, got \"soon\""
          ],
          [
            `filter=${encodeURIComponent("currentYear = 1955.5")}`,
            "Character: invalid query: filter Eq on field \"currentYear\": Expected an integer, got 1955.5"
          ],
          [
            `filter=${encodeURIComponent("currentYear >")}`,
            "filter: expected a value after \"currentYear\", got the end"
          ],
          [
            `filter=${encodeURIComponent("{\"_tag\":\"Like\",\"field\":\"name\"}")}`,
            "filter: unknown filter \"Like\""
          ],
          ["sort=colour", "Character: invalid query: unknown field \"colour\" in sort"],
          ["sort=name%20upward", "sort: the direction of \"name\" is \"asc\" or \"desc\", got \"upward\""],
          ["limit=0", "limit: expected an integer from 1 to 500, got \"0\""],
          ["limit=10000", "limit: expected an integer from 1 to 500, got \"10000\""],
          ["offset=-1", "offset: expected an integer from 0 to 1000000000, got \"-1\""]
        ]
        for (const [query, error] of cases) {
          const reply = yield* bad(query)
          assert.strictEqual(reply.status, 400, query)
          assert.deepStrictEqual(reply.body, { error }, query)
        }
        const badKey = yield* client.get(`/api/resources/Character/record?key=${keyParam({ id: 1 })}`)
        assert.strictEqual(badKey.status, 400)
        assert.include(badKey.body.error, "key: not a key of Character (id)")
        const notJson = yield* client.get(`/api/resources/Character/record?key=marty`)
        assert.strictEqual(notJson.status, 400)
        assert.include(notJson.body.error, "key: invalid JSON")
        const missingKey = yield* client.get(`/api/resources/Character/record`)
        assert.deepStrictEqual(missingKey.body, { error: "key: missing: the JSON of the record's key fields" })
        const unknown = yield* client.get("/api/resources/Dinosaur/records")
        assert.strictEqual(unknown.status, 404)
        assert.deepStrictEqual(unknown.body, {
          error: "no resource named \"Dinosaur\": the inspector knows Character, Machine"
        })
        const nothing = yield* client.get(`/api/resources/Character/record?key=${keyParam({ id: "jennifer" })}`)
        assert.strictEqual(nothing.status, 404)
        assert.deepStrictEqual(nothing.body, { error: "no record of Character with key {\"id\":\"jennifer\"}" })
        // nothing changed: the same records, no event
        assert.deepStrictEqual(yield* Store.read(Query.make(Character)), before)
        assert.strictEqual((yield* client.get("/api/events")).body.received, received)
      })
    ).pipe(Effect.provide(timeTravel())))

  it.live("one record: its state and its recent events, newest first", () =>
    withInspector((client) =>
      Effect.gen(function*() {
        yield* cast
        yield* Store.update(Character, { id: "marty" }, "travelInTime", { targetYear: 1955 })
        yield* Store.update(Character, { id: "doc" }, "travelInTime", { targetYear: 1885 })
        const reply = yield* client.get(`/api/resources/Character/record?key=${keyParam({ id: "marty" })}`)
        assert.strictEqual(reply.status, 200)
        assert.deepStrictEqual(reply.body.key, { id: "marty" })
        assert.deepStrictEqual(reply.body.record, { id: "marty", name: "Marty", currentYear: 1955 })
        assert.deepStrictEqual(reply.body.events.map((e: any) => [e._tag, e.record.currentYear]), [
          ["Updated", 1955],
          ["Created", 1985]
        ])
        assert.deepStrictEqual(reply.body.schedules, [])
      })
    ).pipe(Effect.provide(timeTravel())))

  it.live("a record's pending schedules: when, which action with which input; reading them is not activity", () => {
    const Reminder = Resource.make("Reminder", {
      fields: { id: Schema.String, note: Schema.String },
      primaryKey: ["id"],
      inactivityTimeout: "600 millis",
      actions: (Action) => ({
        set: Action.create({
          accept: ["id", "note"],
          change: (cs) => Changeset.schedule(cs, "remind", { after: "300 millis", arguments: { note: "tea" } })
        }),
        remind: Action.update({ accept: ["note"] })
      })
    })
    return withInspector((client) =>
      Effect.gen(function*() {
        const before = yield* Clock.currentTimeMillis
        yield* Store.create(Reminder, "set", { id: "r", note: "" })
        const reply = yield* client.get(`/api/resources/Reminder/record?key=${keyParam({ id: "r" })}`)
        const [pending, ...none] = reply.body.schedules
        assert.deepStrictEqual(none, [])
        assert.deepInclude(pending, { name: "remind", action: "remind", arguments: { note: "tea" }, running: false })
        assert.isAtLeast(Date.parse(pending.at), before + 300)
        // it runs at 300 ms, which is not activity, and neither was the read: the record expires at 600 ms
        yield* Effect.sleep("1 second")
        assert.strictEqual(
          (yield* client.get(`/api/resources/Reminder/record?key=${keyParam({ id: "r" })}`)).status,
          404
        )
      })
    ).pipe(Effect.provide(inspected(Store.layer([Reminder]))))
  })

  it.live("looking at a record is not activity: it expires all the same", () => {
    const Mayfly = Resource.make("Mayfly", {
      fields: { id: Schema.String },
      primaryKey: ["id"],
      inactivityTimeout: "300 millis"
    })
    return withInspector((client) =>
      Effect.gen(function*() {
        yield* Store.create(Mayfly, "create", { id: "m" })
        const path = `/api/resources/Mayfly/record?key=${keyParam({ id: "m" })}`
        let last = 200
        // looked at every 20 ms for up to 2 s: gone after its 300 ms all the same
        for (let i = 0; i < 100 && last === 200; i++) {
          last = (yield* client.get(path)).status
          yield* client.get("/api/resources/Mayfly/records")
          yield* Effect.sleep("20 millis")
        }
        assert.strictEqual(last, 404)
        const events = (yield* client.get("/api/events?resource=Mayfly")).body.events
        assert.deepStrictEqual(events.map((e: any) => [e._tag, e.reason]), [["Destroyed", "inactivity"], [
          "Created",
          undefined
        ]])
      })
    ).pipe(Effect.provide(inspected(Store.layer([Mayfly]))))
  })

  it.live("recent events are a bounded ring", () =>
    withInspector((client) =>
      Effect.gen(function*() {
        yield* cast
        for (let year = 1900; year < 1920; year++) {
          yield* Store.update(Character, { id: "marty" }, "travelInTime", { targetYear: year })
        }
        const reply = yield* client.get("/api/events?limit=7")
        assert.strictEqual(reply.body.received, 25)
        assert.strictEqual(reply.body.capacity, 7)
        assert.deepStrictEqual(reply.body.events.map((e: any) => e.seq), [25, 24, 23, 22, 21, 20, 19])
        assert.deepStrictEqual(
          reply.body.events.map((e: any) => e.record.currentYear),
          [1919, 1918, 1917, 1916, 1915, 1914, 1913]
        )
        const tooMany = yield* client.get("/api/events?limit=8")
        assert.deepStrictEqual(tooMany.body, { error: "limit: expected an integer from 0 to 7, got \"8\"" })
        const marty = yield* client.get(`/api/events?resource=Character&key=${keyParam({ id: "marty" })}&limit=3`)
        assert.deepStrictEqual(marty.body.events.map((e: any) => e.key.id), ["marty", "marty", "marty"])
      })
    ).pipe(Effect.provide(inspected(Store.layer([Character, Machine]), { recentEvents: 7 }))))

  it.live("streams live events: every event, or one record's", () =>
    withInspector((client) =>
      Effect.gen(function*() {
        yield* cast
        const all = yield* client.stream()
        assert.strictEqual(all.status, 200)
        assert.strictEqual(all.contentType, "text/event-stream")
        assert.strictEqual((yield* all.next()).event, "ready")
        const marty = yield* client.stream({ resource: "Character", key: JSON.stringify({ id: "marty" }) })
        assert.strictEqual((yield* marty.next()).event, "ready")

        yield* Store.update(Character, { id: "doc" }, "travelInTime", { targetYear: 1885 })
        yield* Store.update(Character, { id: "marty" }, "travelInTime", { targetYear: 1955 })
        yield* Store.create(Machine, "create", { id: "delorean", name: "OUTATIME" })

        const seen = (yield* all.until((f) => f.data.events.some((e: any) => e.resource === "Machine")))
          .flatMap((f) => f.data.events)
        assert.deepStrictEqual(seen.map((e: any) => [e._tag, e.resource, e.key.id]), [
          ["Updated", "Character", "doc"],
          ["Updated", "Character", "marty"],
          ["Created", "Machine", "delorean"]
        ])
        assert.deepStrictEqual(seen[1].record, { id: "marty", name: "Marty", currentYear: 1955 })
        const mine = yield* marty.next()
        assert.strictEqual(mine.event, "events")
        assert.deepStrictEqual(mine.data.events.map((e: any) => [e.key.id, e.record.currentYear]), [["marty", 1955]])
        assert.strictEqual(mine.data.dropped, 0)
        // a stream of an unknown resource, or of a key without its resource, is refused
        const refused = yield* client.get(`/api/events/stream?resource=Dinosaur`)
        assert.strictEqual(refused.status, 404)
      })
    ).pipe(Effect.provide(timeTravel())))

  it.live("a stream that cannot keep up skips events, says how many, and holds bounded memory", () =>
    withInspector((client) =>
      Effect.gen(function*() {
        yield* cast
        const all = yield* client.stream()
        yield* all.next()
        // far more than a stream holds between two sends (100)
        yield* Effect.forEach(Array.from({ length: 1000 }, (_, i) => i), (i) =>
          Store.update(Character, { id: "marty" }, "travelInTime", { targetYear: 2000 + i }), { discard: true })
        const frames = yield* all.until((f) =>
          f.data.events.some((e: any) =>
            e.record.currentYear === 2999
          )
        )
        const shown = frames.flatMap((f) => f.data.events)
        const dropped = frames.reduce((n, f) => n + f.data.dropped, 0)
        assert.strictEqual(shown.length + dropped, 1000)
        assert.isAbove(dropped, 0)
        for (const frame of frames) assert.isAtMost(frame.data.events.length, 100)
      })
    ).pipe(Effect.provide(timeTravel())))

  it.live("samples the metrics into a bounded ring", () =>
    withInspector((client) =>
      Effect.gen(function*() {
        yield* cast
        yield* Store.update(Character, { id: "marty" }, "travelInTime", { targetYear: 1955 })
        yield* Store.update(Character, { id: "marty" }, "travelInTime", { targetYear: 1985 })
        yield* Effect.sleep("400 millis")
        const reply = yield* client.get("/api/metrics")
        assert.strictEqual(reply.body.sampleMillis, 50)
        assert.strictEqual(reply.body.capacity, 4)
        assert.strictEqual(reply.body.samples.length, 4)
        const last = reply.body.samples[3]
        assert.deepStrictEqual(
          {
            records: last.resources.Character.records,
            creates: last.resources.Character.creates,
            updates: last.resources.Character.updates,
            events: last.resources.Character.events
          },
          { records: 5, creates: 5, updates: 2, events: 7 }
        )
        assert.isAbove(last.resources.Character.calls, 0)
        const since = yield* client.get(`/api/metrics?since=${last.at}`)
        assert.isAtMost(since.body.samples.length, 1)
        const bad = yield* client.get("/api/metrics?since=soon")
        assert.strictEqual(bad.status, 400)
      })
    ).pipe(Effect.provide(inspected(Store.layer([Character, Machine]), { samples: 4 }))))

  it.live("with a token: the API needs it (401), the page does not", () =>
    Effect.gen(function*() {
      const inspector = yield* Inspector.Inspector
      const anonymous = Client.make(inspector.url)
      const wrong = Client.make(inspector.url, "not-it")
      const right = Client.make(inspector.url, "s3cret")
      for (const path of ["/api/resources", "/api/events", "/api/metrics", "/api/events/stream"]) {
        const refused = yield* anonymous.get(path)
        assert.strictEqual(refused.status, 401, path)
        assert.strictEqual(refused.headers.get("www-authenticate"), "Bearer realm=\"effect-gen-server inspector\"")
        assert.deepStrictEqual(refused.body, {
          error: "this inspector needs its bearer token: Authorization: Bearer <token>"
        })
        assert.strictEqual((yield* wrong.get(path)).status, 401, path)
      }
      assert.strictEqual((yield* right.get("/api/resources")).status, 200)
      const stream = yield* right.stream()
      assert.strictEqual((yield* stream.next()).event, "ready")
      const page = yield* anonymous.get("/")
      assert.strictEqual(page.status, 200)
      assert.strictEqual(page.headers.get("content-type"), "text/html; charset=utf-8")
      assert.include(page.body, "<title>effect-gen-server inspector</title>")
      assert.include(page.headers.get("content-security-policy")!, "default-src 'none'")
      assert.strictEqual((yield* anonymous.get("/inspector.js")).status, 200)
      assert.strictEqual((yield* anonymous.get("/inspector.css")).status, 200)
    }).pipe(Effect.scoped, Effect.provide(inspected(Store.layer([Character]), { token: "s3cret" }))))

  it.live("read-only, and only for requests addressed to it", () =>
    withInspector((client) =>
      Effect.gen(function*() {
        for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
          const reply = yield* client.request(method, "/api/resources")
          assert.strictEqual(reply.status, 405, method)
          assert.strictEqual(reply.headers.get("allow"), "GET, HEAD")
        }
        const port = Number(new URL(client.url).port)
        // a page of another site reaching 127.0.0.1 through a name of its own (DNS rebinding)
        const rebound = yield* getWithHost(port, "/api/resources", `attacker.example:${port}`)
        assert.strictEqual(rebound.status, 403)
        assert.deepStrictEqual(JSON.parse(rebound.body), {
          error: `this inspector answers requests addressed to 127.0.0.1:${port}, not "attacker.example:${port}"`
        })
        assert.strictEqual((yield* getWithHost(port, "/api/resources", `localhost:${port}`)).status, 200)
        assert.strictEqual((yield* getWithHost(port, "/api/resources", `127.0.0.1:${port}`)).status, 200)
        assert.strictEqual((yield* client.get("/nowhere")).status, 404)
      })
    ).pipe(Effect.provide(timeTravel())))

  it.live("closing its scope ends every stream and closes the server; the Store keeps running", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(Inspector.layer({ port: 0 }), scope)
      const inspector = Context.get(context, Inspector.Inspector)
      const client = Client.make(inspector.url)
      const streams = yield* Effect.forEach([{}, { resource: "Character" }], (params) => client.stream(params))
      for (const stream of streams) assert.strictEqual((yield* stream.next()).event, "ready")
      const started = Date.now()
      yield* Scope.close(scope, Exit.void)
      for (const stream of streams) yield* stream.ended("2 seconds")
      // promptly: the streams end before the server waits for its connections (up to 1 s)
      assert.isBelow(Date.now() - started, 500)
      const refused = yield* Effect.callback<string>((resume) => {
        const socket = Net.connect({ host: "127.0.0.1", port: inspector.port })
        socket.once("connect", () => {
          socket.destroy()
          resume(Effect.succeed("connected"))
        })
        socket.once("error", (error: NodeJS.ErrnoException) => resume(Effect.succeed(error.code ?? "error")))
      }).pipe(Effect.timeout("5 seconds"))
      assert.strictEqual(refused, "ECONNREFUSED")
      // the Store is untouched
      yield* Store.create(Character, "create", { id: "marty", name: "Marty", currentYear: 1985 })
      assert.lengthOf(yield* Store.read(Query.make(Character)), 1)
    }).pipe(Effect.scoped, Effect.provide(Store.layer([Character, Machine]))))

  it.live("refuses bad options with a message naming them", () =>
    Effect.gen(function*() {
      const defect = (options: Inspector.Options) =>
        Effect.gen(function*() {
          const exit = yield* Effect.exit(Effect.scoped(Layer.build(Inspector.layer(options))))
          assert.isTrue(Exit.isFailure(exit))
          return String((Cause.squash((exit as Exit.Failure<unknown, unknown>).cause) as Error).message)
        })
      assert.strictEqual(
        yield* defect({ port: -1 }),
        "Inspector.layer: port must be an integer from 0 to 65535, got -1"
      )
      assert.strictEqual(
        yield* defect({ port: 0, recentEvents: 0 }),
        "Inspector.layer: recentEvents must be a positive integer, got 0"
      )
      assert.strictEqual(yield* defect({ port: 0, token: "" }), "Inspector.layer: token must be a non-empty string")
      assert.strictEqual(
        yield* defect({ port: 0, sampleInterval: "1 milli" }),
        "Inspector.layer: sampleInterval must be a duration of at least 10 millis, got \"1 milli\""
      )
    }).pipe(Effect.provide(Store.layer([Character]))))

  it.live("fails with ServeError when the port is taken", () =>
    Effect.gen(function*() {
      const first = yield* Inspector.Inspector
      const second = yield* Effect.exit(Effect.scoped(Layer.build(Inspector.layer({ port: first.port }))))
      assert.isTrue(Exit.isFailure(second))
      const error = Cause.findErrorOption((second as Exit.Failure<unknown, unknown>).cause)
      assert.strictEqual(error._tag === "Some" ? (error.value as any)._tag : "none", "ServeError")
    }).pipe(Effect.provide(timeTravel())))

  it.live("over a data layer of its own, the resources are given; without them it says so", () =>
    Effect.gen(function*() {
      const own = Store.fromDataLayer().pipe(Layer.provide(DataLayer.layer([Character], { make: DataLayer.memory })))
      const exit = yield* Effect.exit(Effect.scoped(Layer.build(Inspector.layer({ port: 0 }).pipe(Layer.provide(own)))))
      assert.isTrue(Exit.isFailure(exit))
      assert.include(
        String(Cause.squash((exit as Exit.Failure<unknown, unknown>).cause)),
        "this Store does not list its resources (it is over a data layer of your own): pass them as `resources`"
      )
      const reply = yield* Effect.gen(function*() {
        yield* Store.create(Character, "create", { id: "marty", name: "Marty", currentYear: 1985 })
        return yield* withInspector((client) => client.get("/api/resources/Character/records"))
      }).pipe(Effect.provide(inspected(own, { resources: [Character] })))
      assert.deepStrictEqual(names(reply), ["Marty"])
    }))

  it.live("works on the memory data layer and under Testing.layer", () =>
    Effect.gen(function*() {
      for (const store of [Store.layer([Character], { dataLayer: "memory" }), Testing.layer([Character])]) {
        const reply = yield* Effect.gen(function*() {
          yield* cast
          return yield* withInspector((client) => client.get("/api/resources"))
        }).pipe(Effect.provide(inspected(store)))
        assert.strictEqual(reply.body.resources[0].records, 5)
      }
    }))

  it.live("on a durable resource, counts the stored records", () => {
    const Ledger = Resource.make("Ledger", {
      fields: { id: Schema.String, balance: Schema.Int },
      primaryKey: ["id"],
      durable: true
    })
    const file = Path.join(Os.tmpdir(), `inspector-${process.pid}-${Date.now()}.db`)
    return Effect.gen(function*() {
      yield* Store.create(Ledger, "create", { id: "a", balance: 1 })
      yield* Store.create(Ledger, "create", { id: "b", balance: 2 })
      const reply = yield* withInspector((client) => client.get("/api/resources"))
      assert.strictEqual(reply.body.resources[0].durable, true)
      assert.strictEqual(reply.body.resources[0].records, 2)
    }).pipe(
      Effect.provide(inspected(Store.layer([Ledger]).pipe(Layer.provide(SqliteClient.layer({ filename: file }))))),
      Effect.ensuring(Effect.sync(() => {
        for (const suffix of ["", "-wal", "-shm"]) Fs.rmSync(file + suffix, { force: true })
      }))
    )
  })

  it.live("works on a cluster: resources, records, one record and its events", () =>
    Effect.gen(function*() {
      yield* cast
      yield* Store.update(Character, { id: "marty" }, "travelInTime", { targetYear: 1955 })
      yield* withInspector((client) =>
        Effect.gen(function*() {
          const resources = yield* client.get("/api/resources")
          assert.strictEqual(resources.body.resources[0].records, 5)
          // the policy the cluster applies: the declared one, else its records restart from their stored state
          assert.deepStrictEqual(resources.body.resources.map((r: any) => [r.name, r.restart]), [
            ["Character", "initial"],
            ["Machine", "lastState"]
          ])
          const page = yield* client.get(`/api/resources/Character/records?filter=currentYear%20%3D%201955&sort=name`)
          assert.deepStrictEqual(names(page), ["Biff", "George", "Marty"])
          const marty = yield* client.get(`/api/resources/Character/record?key=${keyParam({ id: "marty" })}`)
          assert.deepStrictEqual(marty.body.record, { id: "marty", name: "Marty", currentYear: 1955 })
          const stream = yield* client.stream({ resource: "Character" })
          yield* stream.next()
          yield* Store.update(Character, { id: "doc" }, "travelInTime", { targetYear: 2015 })
          const frames = yield* stream.until((f) => f.event === "events", "10 seconds")
          assert.deepStrictEqual(frames[frames.length - 1]!.data.events[0].record, {
            id: "doc",
            name: "Doc",
            currentYear: 2015
          })
        })
      )
    }).pipe(
      Effect.scoped,
      Effect.provide(inspected(
        Cluster.layer([Character, Machine], { tablePrefix: "i_" }).pipe(
          Layer.provideMerge(TestRunner.layer),
          Layer.provideMerge(Pg.layer("inspector"))
        )
      ))
    ), { timeout: 60_000 })

  it.live("npm run example:inspector prints its address and serves the TimeTravel story", () =>
    Effect.gen(function*() {
      const root = fileURLToPath(new URL("..", import.meta.url))
      const child = yield* Effect.acquireRelease(
        Effect.sync(() =>
          spawn(process.execPath, ["--import", "tsx", "examples/inspector.ts"], {
            cwd: root,
            env: { ...process.env, PORT: "0" },
            stdio: ["ignore", "pipe", "pipe"]
          })
        ),
        (child) =>
          Effect.callback<void>((resume) => {
            if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
            child.once("exit", () => resume(Effect.void))
            child.kill("SIGTERM")
          }).pipe(
            Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.sync(() => child.kill("SIGKILL")) })
          )
      )
      let stderr = ""
      child.stderr!.on("data", (chunk) => (stderr += chunk))
      const line = yield* Effect.callback<string>((resume) => {
        let out = ""
        child.stdout!.on("data", (chunk) => {
          out += chunk
          const end = out.indexOf("\n")
          if (end !== -1) resume(Effect.succeed(out.slice(0, end)))
        })
        child.once("exit", (code) => resume(Effect.succeed(`exited with ${code}: ${stderr}`)))
      }).pipe(Effect.timeoutOrElse({ duration: "30 seconds", orElse: () => Effect.succeed(`no line: ${stderr}`) }))
      assert.match(line, /^inspector: http:\/\/127\.0\.0\.1:[1-9]\d*\/$/)
      const client = Client.make(line.slice("inspector: ".length))
      const reply = yield* client.get("/api/resources")
      assert.deepStrictEqual(reply.body.resources.map((r: any) => r.name), ["Character", "Machine"])
      assert.isAtLeast(reply.body.resources[0].records, 200)
      assert.strictEqual(reply.body.resources[1].records, 1)
      // live activity: events keep arriving
      const stream = yield* client.stream()
      yield* stream.next()
      const frame = yield* stream.until((f) => f.event === "events", "10 seconds")
      assert.isAbove(frame[frame.length - 1]!.data.events.length, 0)
      // SIGTERM interrupts it (exit code 130, Effect's for an interruption), with nothing reported
      const exit = yield* Effect.callback<number | null>((resume) => {
        child.once("exit", (code) => resume(Effect.succeed(code)))
        child.kill("SIGTERM")
      }).pipe(Effect.timeout("10 seconds"))
      assert.strictEqual(exit, 130, stderr)
      assert.strictEqual(stderr, "")
    }).pipe(Effect.scoped), { timeout: 60_000 })
})
