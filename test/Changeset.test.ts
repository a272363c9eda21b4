/**
 * Changeset: the operations on the value (data-first and pipeable), and the
 * pipeline a record's fiber runs with it — change, `before` hooks, Schema
 * validation, `after` hooks, commit — which is atomic: whatever step fails,
 * the record keeps its previous state, no event is published, and the caller
 * gets a typed error.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Option, PubSub, Ref, Schema } from "effect"
import { Action, Changeset, Query, Resource, Store } from "../src/index.js"

interface Doc {
  readonly id: string
  readonly name: string
  readonly nickname?: string
  readonly year: number
}

const doc: Doc = { id: "doc", name: "Emmett", year: 1985 }
const make = () => Changeset.make({ resource: "Character", action: "travel", kind: "update", data: doc, arguments: {} })

// what the hooks saw, in order
class Log extends Context.Service<Log, Ref.Ref<Array<unknown>>>()("test/Changeset/Log") {}
const note = (entry: unknown) => Log.use((log) => Ref.update(log, (xs) => [...xs, entry]))
const logged = Log.use(Ref.get)

// a get by name through the data layer, for a hook of the resource it reads
const getAccount = (id: string) => Store.Store.use(({ dataLayer }) => dataLayer.get("Account", { id }))

const Account = Resource.make("Account", {
  fields: {
    id: Schema.String,
    owner: Schema.String,
    balance: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
  },
  primaryKey: ["id"],
  actions: {
    deposit: Action.update({
      arguments: { amount: Schema.Int },
      change: (cs) => Changeset.set(cs, "balance", Changeset.get(cs, "balance") + cs.arguments.amount)
    }),
    failingChange: Action.update({
      change: (cs) =>
        Effect.gen(function*() {
          yield* note("change ran")
          if (Changeset.get(cs, "balance") >= 0) return yield* Effect.fail("the bank is closed")
          return cs
        })
    }),
    refused: Action.update({
      change: (cs) =>
        cs.pipe(
          Changeset.set("balance", 999),
          Changeset.addError("the account is frozen"),
          Changeset.addError("the auditors are in")
        )
    }),
    failingBefore: Action.update({
      change: (cs) =>
        Changeset.after(
          Changeset.before(Changeset.set(cs, "balance", 999), () => Effect.fail(new Error("the vault is jammed"))),
          (record) => Effect.as(note("after ran"), record)
        )
    }),
    refusedBefore: Action.update({
      change: (cs) =>
        cs.pipe(
          Changeset.set("balance", 999),
          Changeset.before((cs) => Effect.succeed(Changeset.addError(cs, "checked and refused")))
        )
    }),
    failingAfter: Action.update({
      change: (cs) =>
        Changeset.after(
          Changeset.after(Changeset.set(cs, "balance", 999), (record) => Effect.as(note(record), record)),
          () => Effect.fail(new Error("the receipt printer is out of paper"))
        )
    }),
    overdraw: Action.update({
      change: (cs) =>
        cs.pipe(
          Changeset.set("balance", -5),
          Changeset.after((record) => Effect.as(note("after ran"), record))
        )
    }),
    fractional: Action.update({ change: (cs) => Changeset.set(cs, "balance", 0.5) }),
    // an untyped change setting a field the resource does not have
    bogus: Action.update({ change: (cs) => Changeset.set(cs, "bogus" as never, 1 as never) }),
    // a key change whose after hook fails: the new key must not stay taken
    moveAndFail: Action.update({
      arguments: { to: Schema.String },
      change: (cs) =>
        Changeset.after(Changeset.set(cs, "id", cs.arguments.to), () => Effect.fail("no forwarding address"))
    }),
    ordered: Action.update({
      arguments: { suffix: Schema.String },
      change: (cs) =>
        cs.pipe(
          Changeset.set("owner", "a"),
          Changeset.before((cs) => Effect.succeed(Changeset.set(cs, "owner", Changeset.get(cs, "owner") + "b"))),
          Changeset.before((cs) =>
            Effect.succeed(
              cs.pipe(
                Changeset.set("owner", Changeset.get(cs, "owner") + "c"),
                // a before hook may add a further before hook; it runs after the ones already there
                Changeset.before((cs) =>
                  Effect.succeed(Changeset.set(cs, "owner", Changeset.get(cs, "owner") + cs.arguments.suffix))
                )
              )
            )
          ),
          Changeset.before((cs) => Effect.succeed(Changeset.set(cs, "owner", Changeset.get(cs, "owner") + "d")))
        )
    }),
    decorated: Action.update({
      change: (cs) => {
        const first = Changeset.after(
          Changeset.set(cs, "balance", Changeset.get(cs, "balance") + 1),
          (record) =>
            Effect.gen(function*() {
              yield* note(record)
              // inside its own hooks the record reads its pending state
              yield* note(yield* getAccount(record.id))
              return { ...record, owner: record.owner + "!" }
            })
        )
        return Changeset.after(first, (record) => Effect.as(note(record), { ...record, owner: record.owner + "?" }))
      }
    }),
    openFailing: Action.create({
      accept: ["id", "owner"],
      change: (cs) => Changeset.after(Changeset.set(cs, "balance", 0), () => Effect.fail("the branch burned down"))
    }),
    openRefused: Action.create({
      accept: ["id", "owner"],
      change: (cs) => Changeset.addError(Changeset.set(cs, "balance", 0), "no new accounts today")
    }),
    closeFailing: Action.destroy({
      change: (cs) => Changeset.before(cs, () => Effect.fail("the account has debts"))
    })
  }
})
type Account = Resource.Record<typeof Account>

const layer = () => Store.layer([Account]).pipe(Layer.provideMerge(Layer.effect(Log, Ref.make<Array<unknown>>([]))))

const open = Store.create(Account, "create", { id: "acc", owner: "Marty", balance: 10 })

/** Runs a failing action and checks that nothing changed and nothing was published. */
const refuses = <E>(account: Account, action: Effect.Effect<unknown, E, Store.Store>) =>
  Effect.gen(function*() {
    const events = yield* Store.subscribe
    const error = yield* Effect.flip(action)
    assert.deepStrictEqual(yield* Store.get(Account, account), account)
    assert.deepStrictEqual(yield* Store.read(Query.make(Account)), [account])
    assert.deepStrictEqual(yield* PubSub.takeUpTo(events, 100), [])
    // the record still works, and its updates are published
    const after = yield* Store.update(Account, account, "deposit", { amount: 1 })
    assert.strictEqual(after.balance, account.balance + 1)
    const published = yield* PubSub.takeUpTo(events, 100)
    assert.deepStrictEqual(published.map((e) => e._tag), ["Updated"])
    yield* Store.update(Account, account, "deposit", { amount: -1 })
    return error
  }).pipe(Effect.scoped)

describe("Changeset", () => {
  describe("the value", () => {
    it("result: none until set, the last value set wins, kept by every other operation", () => {
      const cs = make()
      assert.isTrue(Option.isNone(cs.result))
      const answered = cs.pipe(
        Changeset.result<unknown>("first"),
        Changeset.set("year", 1955),
        Changeset.result("last")
      )
      assert.deepStrictEqual(answered.result, Option.some("last"))
      const more = answered.pipe(
        Changeset.unset("nickname"),
        Changeset.addError("no"),
        Changeset.before((cs) => Effect.succeed(cs)),
        Changeset.after((r) => Effect.succeed(r))
      )
      assert.deepStrictEqual(more.result, Option.some("last"))
      // the value is immutable: the first changeset still has none
      assert.isTrue(Option.isNone(cs.result))
    })

    it("make builds an empty pending change", () => {
      const cs = make()
      assert.isTrue(Changeset.isChangeset(cs))
      assert.isFalse(Changeset.isChangeset({ data: doc }))
      assert.strictEqual(cs.resource, "Character")
      assert.strictEqual(cs.action, "travel")
      assert.strictEqual(cs.kind, "update")
      assert.strictEqual(cs.data, doc)
      assert.deepStrictEqual(cs.attributes, {})
      assert.deepStrictEqual(cs.arguments, {})
      assert.deepStrictEqual(cs.errors, [])
      assert.deepStrictEqual(cs.beforeHooks, [])
      assert.deepStrictEqual(cs.afterHooks, [])
    })

    it("get reads a pending attribute, else the record's value", () => {
      const cs = make()
      assert.strictEqual(Changeset.get(cs, "year"), 1985)
      assert.isUndefined(Changeset.get(cs, "nickname"))
      const changed = Changeset.set(cs, "year", 1955)
      assert.strictEqual(Changeset.get(changed, "year"), 1955)
      assert.strictEqual(Changeset.get(changed, "name"), "Emmett")
      const named = Changeset.set(cs, "nickname", "Doc")
      assert.strictEqual(Changeset.get(named, "nickname"), "Doc")
    })

    it("unset clears an optional field; a later set brings it back", () => {
      const named = Changeset.set(make(), "nickname", "Doc")
      const plain = Changeset.unset(named, "nickname")
      assert.isUndefined(Changeset.get(plain, "nickname"))
      assert.isFalse("nickname" in plain.attributes)
      assert.deepStrictEqual(plain.removed, ["nickname"])
      assert.strictEqual(Changeset.get(named, "nickname"), "Doc")
      const piped = named.pipe(Changeset.unset("nickname"), Changeset.unset("nickname"))
      assert.deepStrictEqual(piped.removed, ["nickname"])
      const again = Changeset.set(plain, "nickname", "Emmett")
      assert.strictEqual(Changeset.get(again, "nickname"), "Emmett")
      assert.deepStrictEqual(again.removed, [])
      // the record's own value is hidden too
      const withNickname = Changeset.make({
        resource: "Character",
        action: "travel",
        kind: "update",
        data: { ...doc, nickname: "Doc" } as Doc,
        arguments: {}
      })
      const cleared = Changeset.unset(withNickname, "nickname")
      assert.isUndefined(Changeset.get(cleared, "nickname"))
    })

    it("get, data-last", () => {
      const cs = Changeset.set(make(), "year", 1955)
      assert.strictEqual(Changeset.get<Doc, "year">("year")(cs), 1955)
      assert.strictEqual(cs.pipe(Changeset.get("name")), "Emmett")
    })

    it("set, data-first and data-last, returns a new changeset and leaves the old one alone", () => {
      const cs = make()
      const a = Changeset.set(cs, "year", 1955)
      const b = cs.pipe(Changeset.set("year", 1955))
      assert.deepStrictEqual(a.attributes, { year: 1955 })
      assert.deepStrictEqual(b.attributes, { year: 1955 })
      assert.isTrue(Changeset.isChangeset(b))
      assert.deepStrictEqual(cs.attributes, {})
      assert.strictEqual(cs.data, doc)
      assert.strictEqual(a.data, doc)
      assert.deepStrictEqual(doc, { id: "doc", name: "Emmett", year: 1985 })

      const c = b.pipe(Changeset.set("year", 2015), Changeset.set("nickname", "Doc"))
      assert.deepStrictEqual(c.attributes, { year: 2015, nickname: "Doc" })
      assert.deepStrictEqual(b.attributes, { year: 1955 })
    })

    it("addError, data-first and data-last, accumulates messages in order", () => {
      const cs = make()
      const one = Changeset.addError(cs, "first")
      const two = one.pipe(Changeset.addError("second"))
      assert.deepStrictEqual(one.errors, ["first"])
      assert.deepStrictEqual(two.errors, ["first", "second"])
      assert.deepStrictEqual(cs.errors, [])
    })

    it("before and after, data-first and data-last, append hooks in order", () => {
      const cs = make()
      const b1 = (cs: Changeset.Changeset<Doc, {}, any>) => Effect.succeed(cs)
      const b2 = (cs: Changeset.Changeset<Doc, {}, any>) => Effect.succeed(Changeset.set(cs, "year", 1))
      const a1 = (record: Doc) => Effect.succeed(record)
      const a2 = (record: Doc) => Effect.succeed({ ...record, year: 2 })

      const first = Changeset.before(cs, b1)
      const both = first.pipe(Changeset.before(b2))
      assert.strictEqual(both.beforeHooks.length, 2)
      assert.strictEqual(both.beforeHooks[0], b1)
      assert.strictEqual(both.beforeHooks[1], b2)
      assert.strictEqual(first.beforeHooks.length, 1)
      assert.strictEqual(cs.beforeHooks.length, 0)

      const after = Changeset.after(both, a1).pipe(Changeset.after(a2))
      assert.strictEqual(after.afterHooks.length, 2)
      assert.strictEqual(after.afterHooks[0], a1)
      assert.strictEqual(after.afterHooks[1], a2)
      assert.strictEqual(both.afterHooks.length, 0)
      // the other parts are carried along
      const full = make().pipe(Changeset.set("year", 1955), Changeset.addError("no"), Changeset.after(a1))
      assert.deepStrictEqual(full.attributes, { year: 1955 })
      assert.deepStrictEqual(full.errors, ["no"])
      assert.strictEqual(full.afterHooks.length, 1)
    })
  })

  describe("an action is atomic", () => {
    it.effect("a failing change Effect is an ActionError and changes nothing", () =>
      Effect.gen(function*() {
        const account = yield* open
        const error = yield* refuses(account, Store.update(Account, account, "failingChange"))
        assert.strictEqual(error._tag, "ActionError")
        if (error._tag === "ActionError") {
          assert.strictEqual(error.resource, "Account")
          assert.strictEqual(error.action, "failingChange")
          assert.strictEqual(error.errors.length, 1)
          assert.include(error.errors[0], "the bank is closed")
        }
        assert.deepStrictEqual(yield* logged, ["change ran"])
      }).pipe(Effect.provide(layer())))

    it.effect("addError is an ActionError with every message and changes nothing", () =>
      Effect.gen(function*() {
        const account = yield* open
        const error = yield* refuses(account, Store.update(Account, account, "refused"))
        assert.strictEqual(error._tag, "ActionError")
        if (error._tag === "ActionError") {
          assert.deepStrictEqual(error.errors, ["the account is frozen", "the auditors are in"])
          assert.include(error.message, "the account is frozen")
        }
      }).pipe(Effect.provide(layer())))

    it.effect("a failing before hook is an ActionError, changes nothing and runs no after hook", () =>
      Effect.gen(function*() {
        const account = yield* open
        const error = yield* refuses(account, Store.update(Account, account, "failingBefore"))
        assert.strictEqual(error._tag, "ActionError")
        if (error._tag === "ActionError") {
          assert.strictEqual(error.errors.length, 1)
          assert.include(error.errors[0], "the vault is jammed")
        }
        assert.deepStrictEqual(yield* logged, [])
      }).pipe(Effect.provide(layer())))

    it.effect("a before hook adding an error is an ActionError and changes nothing", () =>
      Effect.gen(function*() {
        const account = yield* open
        const error = yield* refuses(account, Store.update(Account, account, "refusedBefore"))
        assert.strictEqual(error._tag, "ActionError")
        if (error._tag === "ActionError") assert.deepStrictEqual(error.errors, ["checked and refused"])
      }).pipe(Effect.provide(layer())))

    it.effect("a failing after hook is an ActionError and changes nothing", () =>
      Effect.gen(function*() {
        const account = yield* open
        const error = yield* refuses(account, Store.update(Account, account, "failingAfter"))
        assert.strictEqual(error._tag, "ActionError")
        if (error._tag === "ActionError") {
          assert.strictEqual(error.errors.length, 1)
          assert.include(error.errors[0], "the receipt printer is out of paper")
        }
        // the first after hook ran, with the new state that was then not committed
        assert.deepStrictEqual(yield* logged, [{ id: "acc", owner: "Marty", balance: 999 }])
      }).pipe(Effect.provide(layer())))

    it.effect("a Schema-invalid new state is a ValidationError with its issue, and runs no after hook", () =>
      Effect.gen(function*() {
        const account = yield* open
        for (const action of ["overdraw", "fractional", "bogus"] as const) {
          const error = yield* refuses(account, Store.update(Account, account, action))
          assert.strictEqual(error._tag, "ValidationError", action)
          if (error._tag === "ValidationError") {
            assert.strictEqual(error.resource, "Account")
            assert.isDefined(error.issues, action)
          }
        }
        assert.deepStrictEqual(yield* logged, [])
      }).pipe(Effect.provide(layer())))

    it.effect("a key change whose after hook fails keeps the old key and frees the new one", () =>
      Effect.gen(function*() {
        const account = yield* open
        const error = yield* refuses(account, Store.update(Account, account, "moveAndFail", { to: "elsewhere" }))
        assert.strictEqual(error._tag, "ActionError")
        assert.strictEqual((yield* Store.get(Account, { id: "elsewhere" }).pipe(Effect.flip))._tag, "NotFound")
        const other = yield* Store.create(Account, "create", { id: "elsewhere", owner: "Doc", balance: 0 })
        assert.deepStrictEqual(yield* Store.get(Account, { id: "elsewhere" }), other)
        assert.deepStrictEqual(yield* Store.get(Account, account), account)
      }).pipe(Effect.provide(layer())))

    it.effect("a create that fails creates nothing, publishes nothing and leaves its key free", () =>
      Effect.gen(function*() {
        const events = yield* Store.subscribe
        const failed = yield* Store.create(Account, "openFailing", { id: "acc", owner: "Marty" }).pipe(Effect.flip)
        assert.strictEqual(failed._tag, "ActionError")
        if (failed._tag === "ActionError") assert.include(failed.errors[0], "the branch burned down")
        const refused = yield* Store.create(Account, "openRefused", { id: "acc", owner: "Marty" }).pipe(Effect.flip)
        assert.strictEqual(refused._tag, "ActionError")
        if (refused._tag === "ActionError") assert.deepStrictEqual(refused.errors, ["no new accounts today"])
        const invalid = yield* Store.create(Account, "create", { id: "acc", owner: "Marty", balance: -1 }).pipe(
          Effect.flip
        )
        assert.strictEqual(invalid._tag, "ValidationError")

        assert.strictEqual((yield* Store.get(Account, { id: "acc" }).pipe(Effect.flip))._tag, "NotFound")
        assert.deepStrictEqual(yield* Store.read(Query.make(Account)), [])
        assert.deepStrictEqual(yield* PubSub.takeUpTo(events, 100), [])

        const account = yield* open
        assert.deepStrictEqual(yield* Store.get(Account, { id: "acc" }), account)
      }).pipe(Effect.provide(layer())))

    it.effect("a destroy that fails keeps the record and publishes nothing", () =>
      Effect.gen(function*() {
        const account = yield* open
        const error = yield* refuses(account, Store.destroy(Account, account, "closeFailing"))
        assert.strictEqual(error._tag, "ActionError")
        if (error._tag === "ActionError") assert.include(error.errors[0], "the account has debts")
      }).pipe(Effect.provide(layer())))
  })

  describe("hooks", () => {
    it.effect("before hooks run in order, after the change, and see each other's changes", () =>
      Effect.gen(function*() {
        const account = yield* open
        const updated = yield* Store.update(Account, account, "ordered", { suffix: "+" })
        assert.strictEqual(updated.owner, "abcd+")
        assert.deepStrictEqual(yield* Store.get(Account, account), updated)
      }).pipe(Effect.provide(layer())))

    it.effect("after hooks receive the validated new record; the last one's record is what the caller gets", () =>
      Effect.gen(function*() {
        const account = yield* open
        const events = yield* Store.subscribe
        const reply = yield* Store.update(Account, account, "decorated")
        const committed = { id: "acc", owner: "Marty", balance: 11 }

        assert.deepStrictEqual(reply, { id: "acc", owner: "Marty!?", balance: 11 })
        assert.deepStrictEqual(yield* logged, [committed, committed, { id: "acc", owner: "Marty!", balance: 11 }])
        // what is committed (and published) is the validated state, not the hooks' replies
        assert.deepStrictEqual(yield* Store.get(Account, account), committed)
        const published = yield* PubSub.takeUpTo(events, 100)
        assert.deepStrictEqual(published.map((e) => [e._tag, e.record]), [["Updated", committed]])
      }).pipe(Effect.provide(layer())))
  })

  describe("unset", () => {
    const Player = Resource.make("Player", {
      fields: { id: Schema.String, lobby: Schema.optionalKey(Schema.String), score: Schema.Int },
      primaryKey: ["id"],
      actions: (Action) => ({
        leave: Action.update({ change: (cs) => Changeset.unset(cs, "lobby") }),
        move: Action.update({
          arguments: { to: Schema.String },
          change: (cs) => cs.pipe(Changeset.unset("lobby"), Changeset.set("lobby", cs.arguments.to))
        }),
        join: Action.create({
          accept: ["id", "lobby"],
          change: (cs) => cs.pipe(Changeset.set("score", 0), Changeset.unset("lobby"))
        })
      })
    })

    for (const dataLayer of ["genServer", "memory"] as const) {
      it.effect(`the key is absent from the committed state (${dataLayer})`, () =>
        Effect.gen(function*() {
          const p = yield* Store.create(Player, "create", { id: "p", lobby: "main", score: 1 })
          const left = yield* Store.update(Player, p, "leave")
          assert.deepStrictEqual(left, { id: "p", score: 1 })
          assert.isFalse("lobby" in left)
          const got = yield* Store.get(Player, p)
          assert.isFalse("lobby" in got)
          const moved = yield* Store.update(Player, p, "move", { to: "side" })
          assert.deepStrictEqual(moved, { id: "p", lobby: "side", score: 1 })
          // on create, an unset accepted field is not in the new record
          const joined = yield* Store.create(Player, "join", { id: "q", lobby: "main" })
          assert.deepStrictEqual(joined, { id: "q", score: 0 })
        }).pipe(Effect.provide(Store.layer([Player], { dataLayer }))))
    }
  })
})
