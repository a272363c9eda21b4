import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Schema } from "effect"
import { SqlClient } from "effect/sql"
import * as fc from "fast-check"
import { Filter, Query, Resource } from "../../src/index.js"
import { compile } from "../../src/internal/resource.js"
import { noticeJoiner, noticePayloads } from "../../src/internal/sql/notices.js"
import * as SqlState from "../../src/internal/sql/stateStore.js"
import * as Pg from "./pg.js"

const Thing = Resource.make("Thing", {
  fields: {
    id: Schema.String,
    n: Schema.Number,
    s: Schema.optionalKey(Schema.String),
    o: Schema.optional(Schema.Number),
    b: Schema.NullOr(Schema.Boolean),
    m: Schema.Union([Schema.String, Schema.Int]),
    tags: Schema.Array(Schema.String)
  },
  primaryKey: ["id"],
  indexes: ["m"]
})
const thing = compile(Thing)

const Pair = Resource.make("Pair", {
  fields: { a: Schema.String, b: Schema.Int, v: Schema.Int },
  primaryKey: ["a", "b"]
})
const pair = compile(Pair)

const Timed = Resource.make("Timed", {
  fields: { id: Schema.String, n: Schema.Int },
  primaryKey: ["id"],
  inactivityTimeout: "1 second"
})
const timed = compile(Timed)

const state = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  return yield* SqlState.make(sql, [thing, pair, timed], { prefix: "t_" })
})

const insert = (s: SqlState.StateStore, record: any, resource = thing, op: string = crypto.randomUUID()) =>
  s.write({
    _tag: "Insert",
    resource,
    key: resource.encodeKey(record),
    state: record,
    createdAt: 1,
    lastActivity: 1,
    initial: record,
    op
  })

const all = { resource: "", filter: undefined, sort: [], offset: 0, limit: undefined }

describe("SqlState (PostgreSQL)", () => {
  it.effect("insert, load, commit with fencing, tombstone, re-create", () =>
    Effect.gen(function*() {
      const s = yield* state
      const rec = { id: "a\\0b\\\\", n: 1, b: null, m: "x", tags: [] }
      const key = thing.encodeKey(rec)
      assert.strictEqual(yield* insert(s, rec), 1)
      assert.strictEqual(yield* insert(s, rec), "conflict")
      const row = (yield* s.load(thing, key))!
      assert.deepStrictEqual(row.state, rec)
      assert.strictEqual(row.key, key)
      assert.strictEqual(row.version, 1)
      const update = (expected: number, n: number) =>
        s.write({
          _tag: "Update",
          resource: thing,
          key,
          expected,
          createdAt: 1,
          state: { ...rec, n },
          lastActivity: 2,
          op: `u${n}`
        })
      assert.strictEqual(yield* update(1, 2), 2)
      // a stale owner (it read version 1) is fenced
      assert.strictEqual(yield* update(1, 3), "conflict")
      assert.strictEqual(((yield* s.load(thing, key))!.state as any).n, 2)
      assert.strictEqual(
        yield* s.write({
          _tag: "Tombstone",
          resource: thing,
          key,
          expected: 2,
          state: undefined,
          lastActivity: 3,
          removedAt: 3,
          op: "d"
        }),
        3
      )
      const tomb = (yield* s.load(thing, key))!
      assert.isFalse(tomb.alive)
      // the row remembers every operation applied to it (the insert's, the update's, the removal's)
      assert.deepStrictEqual(tomb.ops.slice(1), ["u2", "d"])
      assert.deepStrictEqual(yield* s.read(thing, all, 0), [])
      assert.strictEqual(yield* insert(s, rec, thing, "again"), 4)
      assert.deepStrictEqual(yield* s.read(thing, all, 0), [rec])
      // the last 16 only
      for (let v = 4; v < 24; v++) assert.strictEqual(yield* update(v, v + 1), v + 1)
      const ops = (yield* s.load(thing, key))!.ops
      assert.deepStrictEqual(ops, Array.from({ length: 16 }, (_, i) => `u${i + 9}`))
    }).pipe(Effect.scoped, Effect.provide(Pg.layer("sqlstate"))))

  it.effect("move with an operation id; a live new key refuses it; undecodable rows are reported, not thrown", () =>
    Effect.gen(function*() {
      const s = yield* state
      const sql = yield* SqlClient.SqlClient
      const put = (id: string, n: number, at: number) =>
        s.write({
          _tag: "Insert",
          resource: timed,
          key: id,
          state: { id, n },
          createdAt: at,
          lastActivity: at,
          initial: null,
          op: `create-${id}`
        })
      const move = (from: string, to: string, at: number, replaceExpired?: boolean) =>
        s.move({
          resource: timed,
          from,
          expected: 1,
          to,
          state: { id: to, n: 1 },
          createdAt: 0,
          lastActivity: at,
          removedAt: at,
          initial: null,
          op: `move-${from}`,
          replaceExpired
        })
      yield* put("a", 1, 0)
      yield* put("b", 2, 0)
      // b is live: refused, nothing written
      assert.strictEqual(yield* move("a", "b", 500), "conflict")
      assert.isTrue((yield* s.load(timed, "a"))!.alive)
      // at 1.5 s b is past its stored deadline (1 s): replaced by default, not with replaceExpired: false
      assert.strictEqual(yield* move("a", "b", 1500, false), "conflict")
      assert.deepStrictEqual((yield* s.load(timed, "b"))!.state, { id: "b", n: 2 })
      assert.strictEqual(yield* move("a", "b", 1500), 2)
      const tomb = (yield* s.load(timed, "a"))!
      assert.isFalse(tomb.alive)
      assert.deepStrictEqual(tomb.ops, ["create-a", "move-a"])
      assert.strictEqual(tomb.movedTo, "b")
      // created again over the tombstone, with the ops it remembers
      assert.strictEqual(
        yield* s.write({
          _tag: "Insert",
          resource: timed,
          key: "a",
          state: { id: "a", n: 9 },
          createdAt: 1600,
          lastActivity: 1600,
          initial: null,
          op: "create-a-again"
        }),
        3
      )
      assert.deepStrictEqual((yield* s.load(timed, "a"))!.ops, ["create-a", "move-a", "create-a-again"])
      const moved = (yield* s.load(timed, "b"))!
      // the row it replaced (past its deadline) keeps remembering its own operations
      assert.deepStrictEqual([moved.state, moved.ops, moved.movedTo], [
        { id: "b", n: 1 },
        ["create-b", "move-a"],
        undefined
      ])
      // onto an absent key, with replaceExpired: false
      yield* put("c", 3, 0)
      assert.strictEqual(yield* move("c", "d", 100, false), 1)
      assert.strictEqual((yield* s.load(timed, "c"))!.movedTo, "d")

      // a state that does not decode, and one holding another key than its row
      yield* sql.unsafe(
        `UPDATE t_records SET state = '{"id":"b","n":"x"}'::jsonb WHERE resource = 'Timed' AND key = 'b'`
      )
      yield* sql.unsafe(`UPDATE t_records SET state = '{"id":"e","n":4}'::jsonb WHERE resource = 'Timed' AND key = 'd'`)
      const bad = (yield* s.load(timed, "b"))!
      assert.isTrue(bad.alive)
      assert.isUndefined(bad.state)
      assert.match(bad.undecodable!.reason, /cannot decode version 1/)
      assert.deepStrictEqual(bad.undecodable!.stored.json, { id: "b", n: "x" })
      assert.match((yield* s.load(timed, "d"))!.undecodable!.reason, /another key \(e\) than its row \(d\)/)
      const failure = yield* Effect.flip(s.read(timed, { ...all, resource: "Timed" }, 0))
      assert.strictEqual(failure._tag, "UndecodableRows")
      assert.deepStrictEqual([...(failure as SqlState.UndecodableRows).keys].sort(), ["b", "d"])
      assert.isTrue(yield* s.quarantine(bad.undecodable!.stored, bad.undecodable!.reason, 9))
      assert.isUndefined(yield* s.load(timed, "b"))
    }).pipe(Effect.scoped, Effect.provide(Pg.layer("sqlstate"))))

  it.live(
    "a process starts while another's transaction is open on the table (no ALTER or CREATE INDEX it needs not)",
    () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const s = yield* state
        yield* insert(s, { id: "held", n: 1, b: null, m: "x", tags: [] })
        const locked = yield* Deferred.make<void>()
        // another process's write, its transaction still open: a row lock and the table's ROW EXCLUSIVE lock
        yield* sql.withTransaction(
          sql.unsafe(`UPDATE t_records SET last_activity = last_activity + 1`).pipe(
            Effect.andThen(Deferred.succeed(locked, undefined)),
            Effect.andThen(Effect.sleep("3 seconds"))
          )
        ).pipe(Effect.forkScoped)
        yield* Deferred.await(locked)
        // a second process over the same table starts and reads, the transaction still open
        const started = yield* state.pipe(
          Effect.andThen((second) => second.load(thing, thing.encodeKey({ id: "held" }))),
          Effect.timeoutOrElse({
            duration: "2 seconds",
            orElse: () => Effect.succeed("waited for the open transaction")
          })
        )
        assert.notStrictEqual(started, "waited for the open transaction")
      }).pipe(Effect.scoped, Effect.provide(Pg.layer("sqlstate"))),
    20_000
  )

  it.effect("group commit: concurrent writes are batched, each gets its own outcome", () =>
    Effect.gen(function*() {
      const s = yield* state
      const outcomes = yield* Effect.forEach(
        Array.from({ length: 200 }, (_, i) => ({ a: "k", b: i % 100, v: i })),
        (r) => insert(s, r, pair),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(outcomes.filter((o) => o === 1).length, 100)
      assert.strictEqual(outcomes.filter((o) => o === "conflict").length, 100)
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql.unsafe(`SELECT count(*)::int AS n FROM t_records WHERE resource = 'Pair'`)
      assert.strictEqual((rows[0] as any).n, 100)
      // a composite key pinned by eq reads one row
      assert.deepStrictEqual(
        (yield* s.read(pair, { ...all, filter: Filter.and(Filter.eq("a", "k"), Filter.eq("b", 7)) }, 0)).length,
        1
      )
    }).pipe(Effect.scoped, Effect.provide(Pg.layer("sqlstate"))))

  it.effect("due deadlines and expired rows hidden from reads", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const Idle = Resource.make("Idle", {
        fields: { id: Schema.String },
        primaryKey: ["id"],
        inactivityTimeout: "1 second"
      })
      const idle = compile(Idle)
      const s = yield* SqlState.make(sql, [idle], { prefix: "due_" })
      yield* insert(s, { id: "x" }, idle)
      assert.deepStrictEqual(yield* s.due(1000, 10), [])
      assert.deepStrictEqual(yield* s.due(1001, 10), [{ resource: "Idle", key: "x", deadline: 1001 }])
      assert.strictEqual((yield* s.read(idle, all, 1000)).length, 1)
      assert.strictEqual((yield* s.read(idle, all, 1001)).length, 0)
      assert.strictEqual(
        yield* s.write({ _tag: "Touch", resource: idle, key: "x", expected: 1, lastActivity: 5000 }),
        1
      )
      assert.deepStrictEqual(yield* s.due(5999, 10), [])
    }).pipe(Effect.scoped, Effect.provide(Pg.layer("sqlstate"))))

  // records and queries over nil, missing optional fields, NaN, +-Infinity, mixed types, ties
  const value = {
    n: fc.oneof(
      fc.constantFrom(0, -0, 1, -1, 2.5, NaN, Infinity, -Infinity),
      fc.integer({ min: -3, max: 3 })
    ),
    s: fc.constantFrom("", "a", "ab", "b", "B", "é", "z"),
    o: fc.option(fc.constantFrom(0, 1, NaN, 2), { nil: undefined }),
    b: fc.constantFrom(true, false, null),
    m: fc.oneof(fc.constantFrom("1", "a", "", "NaN"), fc.integer({ min: -2, max: 2 })),
    tags: fc.array(fc.constantFrom("a", "b", "c"), { maxLength: 3 })
  } as const
  const recordArb = fc.record(
    {
      n: value.n,
      s: value.s,
      o: value.o,
      b: value.b,
      m: value.m,
      tags: value.tags
    },
    { requiredKeys: ["n", "b", "m", "tags"] }
  )
  const fieldNames = ["n", "s", "o", "b", "m", "tags"] as const
  const anyValue = (field: string): fc.Arbitrary<unknown> =>
    field === "tags" ? fc.constantFrom("a", "b") : (value as any)[field].map((v: unknown) => v)
  const atom: fc.Arbitrary<Filter.Expr> = fc.constantFrom(...fieldNames).chain((field) =>
    fc.oneof(
      anyValue(field).map((v) => ({ _tag: "Eq", field, value: v }) as Filter.Expr),
      anyValue(field).map((v) => ({ _tag: "Neq", field, value: v }) as Filter.Expr),
      fc.constantFrom("Gt", "Gte", "Lt", "Lte").chain((tag) =>
        anyValue(field).map((v) => ({ _tag: tag, field, value: v }) as Filter.Expr)
      ),
      fc.array(anyValue(field), { maxLength: 3 }).map((values) => ({ _tag: "In", field, values }) as Filter.Expr),
      fc.constant({ _tag: "IsNil", field } as Filter.Expr),
      fc.constantFrom("a", "", "b").map((v) => ({ _tag: "Contains", field, value: v }) as Filter.Expr)
    )
  )
  const filterArb: fc.Arbitrary<Filter.Expr> = fc.letrec<{ f: Filter.Expr }>((tie) => ({
    f: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      atom,
      fc.array(tie("f"), { maxLength: 3 }).map((filters) => ({ _tag: "And", filters }) as Filter.Expr),
      fc.array(tie("f"), { maxLength: 3 }).map((filters) => ({ _tag: "Or", filters }) as Filter.Expr),
      tie("f").map((filter) => ({ _tag: "Not", filter }) as Filter.Expr)
    )
  })).f
  const queryArb = fc.record({
    filter: fc.option(filterArb, { nil: undefined }),
    sort: fc.array(
      fc.record({ field: fc.constantFrom(...fieldNames, "id"), direction: fc.constantFrom("asc", "desc") }),
      { maxLength: 3 }
    ),
    offset: fc.integer({ min: 0, max: 3 }),
    limit: fc.option(fc.integer({ min: 0, max: 10 }), { nil: undefined })
  })

  it.effect("edge cases: NaN, +-Infinity, -0, nil and missing fields, mixed types, ties", () =>
    Effect.gen(function*() {
      const s = yield* state
      const records = [
        { id: "a", n: Infinity, b: null, m: "1", tags: ["a"] },
        { id: "b", n: -Infinity, s: "x", b: true, m: 1, tags: [] },
        { id: "c", n: NaN, o: undefined, b: false, m: "a", tags: ["b", "a"] },
        { id: "d", n: -0, o: NaN, b: null, m: 0, tags: [] },
        { id: "e", n: 2, o: 1, s: "", b: true, m: "NaN", tags: [] }
      ]
      for (const r of records) yield* insert(s, r)
      const queries: Array<Filter.Expr | undefined> = [
        Filter.gt("n", 1),
        Filter.lt("n", 1),
        Filter.gte("n", 0),
        Filter.not(Filter.lte("n", 0)),
        Filter.eq("n", NaN),
        Filter.neq("n", NaN),
        Filter.eq("n", 0),
        Filter.isNil("o"),
        Filter.not(Filter.isNil("s")),
        Filter.eq("b", null),
        Filter.in("m", [1, "1", "NaN"]),
        Filter.not(Filter.in("m", [])),
        Filter.contains("tags", "a"),
        Filter.contains("s", ""),
        Filter.or(Filter.eq("m", 0), Filter.not(Filter.gt("o", 0)))
      ]
      for (const filter of queries) {
        for (
          const sort of [[], [{ field: "b", direction: "asc" as const }, { field: "n", direction: "desc" as const }]]
        ) {
          const query = { resource: "Thing", filter, sort, offset: 0, limit: undefined }
          const expected = Query.collector(query)
          for (const r of records) expected.add(r)
          assert.deepStrictEqual(
            (yield* s.read(thing, query, 0)).map((r: any) => r.id),
            expected.done().map((r: any) => r.id),
            JSON.stringify(filter)
          )
        }
      }
    }).pipe(Effect.scoped, Effect.provide(Pg.layer("sqlstate"))))

  it.effect("property: read in SQL equals Query.collector on the same records", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const s = yield* state
      const samples = fc.sample(
        fc.tuple(
          fc.array(recordArb, { minLength: 0, maxLength: 25 }),
          fc.array(queryArb, { minLength: 20, maxLength: 20 })
        ),
        { numRuns: 25, seed: 20261130 }
      )
      let checked = 0
      for (const [raw, queries] of samples) {
        yield* sql.unsafe(`DELETE FROM t_records`)
        const records = raw.map((r, i) => ({ id: `r${i}`, ...r }))
        // creation order matters for ties: insert one by one
        for (const r of records) assert.strictEqual(yield* insert(s, r), 1)
        for (const q of queries) {
          const query = { ...q, resource: "Thing" } as any
          const expected = Query.collector(query)
          for (const r of records) expected.add(r)
          const got = yield* s.read(thing, query, 0)
          assert.deepStrictEqual(
            got.map((r: any) => r.id),
            expected.done().map((r: any) => r.id),
            JSON.stringify(query)
          )
          checked++
        }
      }
      assert.strictEqual(checked, 500)
    }).pipe(Effect.scoped, Effect.provide(Pg.layer("sqlstate"))), { timeout: 120_000 })
})

describe("notices longer than a notification holds", () => {
  it("are cut into chunks that a listener joins back, whole, however other notices fall between them", () =>
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.string({ unit: "grapheme", maxLength: 40 }),
            fc.string({ unit: "grapheme", minLength: 2_000, maxLength: 9_000 })
          ),
          { minLength: 1, maxLength: 4 }
        ),
        (texts) => {
          // each notice's chunks arrive in order, another process's short notice after each payload
          const join = noticeJoiner()
          const heard: Array<string> = []
          texts.forEach((text, t) => {
            const payloads = noticePayloads(text, String(t).padStart(32, "0"))
            for (const payload of payloads) {
              const bytes = new TextEncoder().encode(payload)
              assert.isAtMost(bytes.length, 7999, "a payload PostgreSQL accepts")
              assert.strictEqual(new TextDecoder().decode(bytes), payload, "valid UTF-16 on its own")
              const whole = join(payload)
              if (whole !== undefined) heard.push(whole)
              assert.strictEqual(join("{}"), "{}")
            }
          })
          assert.deepStrictEqual(heard, texts)
        }
      ),
      { numRuns: 60, endOnFailure: true }
    ))

  it("a chunk heard without its predecessors is dropped, not joined to another notice", () => {
    const join = noticeJoiner()
    const long = "x".repeat(9000)
    const [first, second, third] = noticePayloads(long, "a".repeat(32))
    assert.isUndefined(join(second!))
    assert.isUndefined(join(third!))
    assert.isUndefined(join(first!))
    assert.isUndefined(join(third!))
  })
})
