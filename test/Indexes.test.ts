import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Action, Changeset, Filter, Query, Resource, Store } from "../src/index.js"

const fields = {
  id: Schema.Int,
  tag: Schema.Literals(["a", "b", "c"]),
  n: Schema.Int,
  nickname: Schema.optionalKey(Schema.String)
}
const actions = {
  retag: Action.update({
    arguments: { tag: Schema.Literals(["a", "b", "c"]) },
    change: (cs) => Changeset.set(cs, "tag", cs.arguments.tag)
  })
}
const Indexed = Resource.make("Indexed", { fields, primaryKey: ["id"], indexes: ["tag", "nickname"], actions })
const Plain = Resource.make("Plain", { fields, primaryKey: ["id"], actions })

const Op = Schema.Union([
  Schema.Struct({
    op: Schema.Literal("create"),
    id: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 20 })),
    tag: fields.tag,
    n: Schema.Int
  }),
  Schema.Struct({
    op: Schema.Literal("retag"),
    id: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 20 })),
    tag: fields.tag
  }),
  Schema.Struct({
    op: Schema.Literal("rekey"),
    id: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 20 })),
    to: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 20 }))
  }),
  Schema.Struct({ op: Schema.Literal("destroy"), id: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 20 })) })
])

const apply = <R extends typeof Indexed | typeof Plain>(resource: R, op: typeof Op.Type) => {
  const r = resource as typeof Indexed
  switch (op.op) {
    case "create":
      return Effect.ignore(Store.create(r, "create", { id: op.id, tag: op.tag, n: op.n }))
    case "retag":
      return Effect.ignore(Store.update(r, { id: op.id }, "retag", { tag: op.tag }))
    case "rekey":
      return Effect.ignore(Store.update(r, { id: op.id }, "update", { id: op.to }))
    case "destroy":
      return Effect.ignore(Store.destroy(r, { id: op.id }))
  }
}

describe("secondary indexes", () => {
  it.effect.prop(
    "an eq query on an indexed field returns what a scan returns, after any creates, updates, key changes and destroys",
    [Schema.Array(Op), fields.tag],
    ([ops, tag]) =>
      Effect.gen(function*() {
        for (const op of ops) {
          yield* apply(Indexed, op)
          yield* apply(Plain, op)
        }
        const byIndex = yield* Store.read(
          Query.make(Indexed).pipe(Query.filter(Filter.eq("tag", tag)), Query.sort("id"))
        )
        const byScan = yield* Store.read(Query.make(Plain).pipe(Query.filter(Filter.eq("tag", tag)), Query.sort("id")))
        assert.deepStrictEqual(byIndex, byScan)
        const all = yield* Store.read(Query.make(Indexed).pipe(Query.sort("id")))
        assert.deepStrictEqual(all.filter((r) => r.tag === tag), byIndex)
      }).pipe(Effect.provide(Store.layer([Indexed, Plain]))),
    { arbitrary: { runs: 100, seed: 7 } }
  )

  it.effect("an indexed eq combined with other filters applies them all", () =>
    Effect.gen(function*() {
      for (let i = 0; i < 10; i++) yield* Store.create(Indexed, "create", { id: i, tag: i % 2 === 0 ? "a" : "b", n: i })
      const found = yield* Store.read(
        Query.make(Indexed).pipe(Query.filter(Filter.and(Filter.eq("tag", "a"), Filter.gt("n", 4))), Query.sort("n"))
      )
      assert.deepStrictEqual(found.map((r) => r.n), [6, 8])
    }).pipe(Effect.provide(Store.layer([Indexed]))))

  it.effect("an absent optional indexed field is not indexed, and isNil still finds it", () =>
    Effect.gen(function*() {
      yield* Store.create(Indexed, "create", { id: 1, tag: "a", n: 1, nickname: "Doc" })
      yield* Store.create(Indexed, "create", { id: 2, tag: "a", n: 2 })
      const docs = yield* Store.read(Query.make(Indexed).pipe(Query.filter(Filter.eq("nickname", "Doc"))))
      assert.deepStrictEqual(docs.map((r) => r.id), [1])
      const anonymous = yield* Store.read(Query.make(Indexed).pipe(Query.filter(Filter.isNil("nickname"))))
      assert.deepStrictEqual(anonymous.map((r) => r.id), [2])
    }).pipe(Effect.provide(Store.layer([Indexed]))))
})
