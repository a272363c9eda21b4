/**
 * Compile-time checks of the typed form of `actions`, declared errors, narrow
 * error channels, `defaults` and `Changeset.unset`: every `@ts-expect-error`
 * below must be an error, so `tsc` (run by `npm test`) fails if a check stops
 * working. Each mistake is one of issue 10's.
 */
import { Context, Effect, type Layer, Schema } from "effect"
import { Action, Changeset, type Errors, Filter, Query, Resource, Store } from "../../src/index.js"

class OutOfTokens extends Schema.TaggedError<OutOfTokens>()("OutOfTokens", { tokens: Schema.Int }) {}
class Frozen extends Schema.TaggedError<Frozen>()("Frozen", {}) {}

// --- inside Resource.make: the record is typed and read-only ---------------------------------------

export const Account = Resource.make("Account", {
  fields: {
    id: Schema.String,
    count: Schema.Int,
    balance: Schema.Int,
    lobby: Schema.optionalKey(Schema.String)
  },
  primaryKey: ["id"],
  actions: (Action) => ({
    // @ts-expect-error a field that does not exist
    typo: Action.update({ change: (cs) => Changeset.set(cs, "cuont", 1) }),
    // @ts-expect-error a value of the wrong type
    wrongType: Action.update({ change: (cs) => Changeset.set(cs, "count", "not a number") }),
    readTypo: Action.update({
      // @ts-expect-error get of a field that does not exist
      change: (cs) => Changeset.set(cs, "count", Changeset.get(cs, "cuont"))
    }),
    withdraw: Action.update({
      arguments: { amount: Schema.Int },
      change: (cs) => {
        // @ts-expect-error the record is read-only
        cs.data.balance -= cs.arguments.amount
        return Changeset.set(cs, "balance", cs.data.balance - cs.arguments.amount)
      }
    }),
    // @ts-expect-error an optional field cannot be set to undefined: unset it
    clearBySet: Action.update({ change: (cs) => Changeset.set(cs, "lobby", undefined) }),
    leave: Action.update({ change: (cs) => Changeset.unset(cs, "lobby") }),
    // @ts-expect-error only an optional field can be unset
    unsetRequired: Action.update({ change: (cs) => Changeset.unset(cs, "count") }),
    piped: Action.update({
      change: (cs) =>
        cs.pipe(
          Changeset.set("count", 1),
          Changeset.unset("lobby"),
          Changeset.after((account) => Effect.succeed({ ...account, count: account.count + 1 }))
        )
    }),
    // @ts-expect-error piped: a field that does not exist
    pipedTypo: Action.update({ change: (cs) => cs.pipe(Changeset.set("cuont", 1)) }),
    // @ts-expect-error piped: a value of the wrong type
    pipedWrongType: Action.update({ change: (cs) => cs.pipe(Changeset.set("count", "1")) }),
    // @ts-expect-error piped: only an optional field can be unset
    pipedUnsetRequired: Action.update({ change: (cs) => cs.pipe(Changeset.unset("count")) }),
    afterHook: Action.update({
      change: (cs) =>
        Changeset.after(cs, (account) => {
          // @ts-expect-error the record an after hook receives is read-only
          account.balance = 0
          return Effect.succeed(account)
        })
    }),
    beforeHook: Action.update({
      // @ts-expect-error a before hook sees the same record type
      change: (cs) => Changeset.before(cs, (cs) => Effect.succeed(Changeset.set(cs, "balanse", 0)))
    })
  })
})

// --- a hook calls its own resource: no circularity (TS7022), every Store call still typed -------

export const Room = Resource.make("Room", {
  fields: { id: Schema.String, players: Schema.Array(Schema.String), invited: Schema.Int },
  primaryKey: ["id"],
  defaults: ["create", "read", "destroy"],
  actions: (Action) => ({
    join: Action.update({
      arguments: { player: Schema.String },
      error: OutOfTokens,
      change: (cs) =>
        cs.data.players.length >= 4
          ? Effect.fail(new OutOfTokens({ tokens: 0 }))
          : Changeset.set(cs, "players", [...cs.data.players, cs.arguments.player])
    }),
    invite: Action.update({
      arguments: { player: Schema.String },
      change: (cs) =>
        cs.pipe(
          Changeset.set("invited", cs.data.invited + 1),
          Changeset.after((room) =>
            Store.update(Room, { id: `${room.id}-overflow` }, "join", { player: cs.arguments.player }).pipe(
              Effect.as(room)
            )
          )
        )
    }),
    // a change (not only a hook) that calls its own resource
    joinTwice: Action.update({
      arguments: { player: Schema.String },
      change: (cs) => Effect.as(Store.update(Room, cs.data, "join", { player: cs.arguments.player }), cs)
    })
  })
})

export const roomCalls = Effect.gen(function*() {
  const room = yield* Store.create(Room, "create", { id: "r", players: [], invited: 0 })
  yield* Store.update(Room, room, "invite", { player: "marty" })
  yield* Store.update(Room, room, "join", { player: "doc" }).pipe(
    // a declared error: typed, catchTag-able
    Effect.catchTag("OutOfTokens", (e) => Effect.succeed(e.tokens))
  )
  yield* Store.destroy(Room, room)
})
export const roomLayer: Layer.Layer<Store.Store> = Store.layer([Room])

// @ts-expect-error a default action left out by `defaults` is no action of the resource
export const noUpdate = Store.update(Room, { id: "r" }, "update", { invited: 1_000_000 })
// @ts-expect-error the action name is checked against the resource's actions
export const noSuchAction = Store.update(Room, { id: "r" }, "jion", { player: "x" })

const NoDestroy = Resource.make("NoDestroy", {
  fields: { id: Schema.String },
  primaryKey: ["id"],
  defaults: ["create"],
  actions: (Action) => ({ close: Action.destroy() })
})
// @ts-expect-error without the default destroy action, destroy names its action
export const destroyDefault = Store.destroy(NoDestroy, { id: "1" })
export const destroyNamed = Store.destroy(NoDestroy, { id: "1" }, "close")

// --- declared errors and narrow channels ---------------------------------------------------------

export const undeclared = Store.update(Room, { id: "r" }, "invite", { player: "x" }).pipe(
  // @ts-expect-error invite declares no OutOfTokens
  Effect.catchTag("OutOfTokens", () => Effect.void)
)
export const notAStoreError = Store.update(Room, { id: "r" }, "join", { player: "x" }).pipe(
  // @ts-expect-error no Store call fails with Frozen
  Effect.catchTag("Frozen", () => Effect.void)
)
export const unionDeclared = Resource.make("Union", {
  fields: { id: Schema.String },
  primaryKey: ["id"],
  actions: (Action) => ({
    act: Action.update({ error: Schema.Union([OutOfTokens, Frozen]), change: (cs) => Effect.fail(new Frozen()) })
  })
})
export const unionCaught = Store.update(unionDeclared, { id: "1" }, "act").pipe(
  Effect.catchTag("Frozen", () => Effect.void),
  // catchTag narrows a union of declared errors
  Effect.catchTag("OutOfTokens", (e) => Effect.succeed(e.tokens))
)

type ErrorOf<T> = T extends Effect.Effect<any, infer E, any> ? E : never
const join = Store.update(Room, { id: "r" }, "join", { player: "x" })
export const joinErrors: Array<ErrorOf<typeof join>> = []
export const joinDeclared: ErrorOf<typeof join> = new OutOfTokens({ tokens: 1 })
// @ts-expect-error an update on a typed action name never fails with UnknownAction
export const joinUnknown: ErrorOf<typeof join> = {} as Errors.UnknownAction

const plainCreate = Store.create(Account, "create", { id: "a", count: 0, balance: 0 })
// @ts-expect-error a default action has no change: no ActionError
export const createActionError: ErrorOf<typeof plainCreate> = {} as Errors.ActionError
// @ts-expect-error a create is no call to a record's fiber: no NotFound
export const createNotFound: ErrorOf<typeof plainCreate> = {} as Errors.NotFound
export const createExists: ErrorOf<typeof plainCreate> = {} as Errors.AlreadyExists

const got = Store.get(Account, { id: "a" })
// @ts-expect-error a get runs no action
export const getActionError: ErrorOf<typeof got> = {} as Errors.ActionError
// @ts-expect-error a get is no write: no AlreadyExists
export const getExists: ErrorOf<typeof got> = {} as Errors.AlreadyExists

const destroyed = Store.destroy(Account, { id: "a" })
// @ts-expect-error a destroy frees a key, it never takes one
export const destroyExists: ErrorOf<typeof destroyed> = {} as Errors.AlreadyExists

// a caller that does not know the resource's actions may name a missing one
declare const anyResource: Resource.Any
const untyped = Store.update(anyResource, {} as never, "whatever", {} as never)
export const untypedUnknown: ErrorOf<typeof untyped> = {} as Errors.UnknownAction

// --- services of the typed form surface in Store.layer -------------------------------------------

class Ledger extends Context.Service<Ledger, { readonly record: (n: number) => Effect.Effect<void> }>()("Ledger") {}

const Audited = Resource.make("Audited", {
  fields: { id: Schema.String, n: Schema.Int },
  primaryKey: ["id"],
  actions: (Action) => ({
    bump: Action.update({
      change: (cs) =>
        Changeset.after(cs, (record) => Effect.as(Ledger.use((ledger) => ledger.record(record.n)), record))
    })
  })
})
export const auditedNeeds: Layer.Layer<Store.Store, never, Ledger> = Store.layer([Audited])
// @ts-expect-error the layer requires the Ledger the hook uses
export const auditedMissing: Layer.Layer<Store.Store> = Store.layer([Audited])

// the object form keeps compiling, and its services still surface
const Legacy = Resource.make("Legacy", {
  fields: { id: Schema.String, n: Schema.Int },
  primaryKey: ["id"],
  actions: {
    bump: Action.update({
      change: (cs) => Effect.as(Ledger.use((ledger) => ledger.record(1)), Changeset.set(cs, "n", 1))
    })
  }
})
// @ts-expect-error the object form's services surface too
export const legacyMissing: Layer.Layer<Store.Store> = Store.layer([Legacy])

const NotAChange = Resource.make("NotAChange", {
  fields: { id: Schema.String },
  primaryKey: ["id"],
  actions: (Action) => ({ bad: Action.update({ change: () => 42 }) })
})
// @ts-expect-error a change that returns no Changeset: no layer can run it
export const notAChangeLayer: Layer.Layer<Store.Store> = Store.layer([NotAChange])

// --- a filter mistake is reported at the filter, not at Store.read --------------------------------

const accounts = Query.make(Account)
// @ts-expect-error a field that does not exist, reported at Query.filter without any Store.read
export const filterTypo = accounts.pipe(Query.filter(Filter.eq("cuont", 1)))
// @ts-expect-error a value of the wrong type, reported at the filter itself in the data-first form
export const filterWrongType = Query.filter(accounts, Filter.eq("count", "1"))
export const filterOk = accounts.pipe(Query.filter(Filter.and(Filter.eq("count", 1), Filter.isNil("lobby"))))

// --- issue 10's circularity: a hook annotated with its own resource's record type -----------------

export const Lobby = Resource.make("Lobby", {
  fields: { id: Schema.String, n: Schema.Int },
  primaryKey: ["id"],
  actions: (Action) => ({
    join: Action.update({ change: (cs) => Changeset.set(cs, "n", cs.data.n + 1) }),
    annotated: Action.update({
      change: (cs) =>
        Changeset.after(
          cs,
          (lobby: Resource.Record<typeof Lobby>) => Store.update(Lobby, { id: "other" }, "join").pipe(Effect.as(lobby))
        )
    })
  })
})
// the object form too
export const Hall = Resource.make("Hall", {
  fields: { id: Schema.String, n: Schema.Int },
  primaryKey: ["id"],
  actions: {
    join: Action.update({ change: (cs) => Changeset.set(cs, "n", 1) }),
    annotated: Action.update({
      change: (cs) =>
        Changeset.after(
          cs,
          (hall: Resource.Record<typeof Hall>) => Store.update(Hall, { id: "other" }, "join").pipe(Effect.as(hall))
        )
    })
  }
})
// every Store call on them still compiles
export const lobbyCalls = Effect.gen(function*() {
  const lobby = yield* Store.create(Lobby, "create", { id: "l", n: 0 })
  yield* Store.update(Lobby, lobby, "annotated")
  const hall = yield* Store.create(Hall, "create", { id: "h", n: 0 })
  yield* Store.update(Hall, hall, "annotated")
})
// @ts-expect-error and still refuse a wrong action name
export const lobbyTypo = Store.update(Lobby, { id: "l" }, "annotate")
