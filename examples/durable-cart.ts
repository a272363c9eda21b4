/**
 * A shopping cart that survives the end of the program.
 *
 * The cart is a durable resource: every change is written to a SQLite file
 * before the call returns. Each run of this program opens the file, finds
 * the carts the previous runs left, adds an item, and ends. Run it twice and
 * the cart keeps growing; the second half of each run also restarts the
 * Store in the same program, to show the state coming back without a new
 * process.
 *
 * It also shows what durability keeps and what it does not:
 * - the committed state and the deadlines are kept; a cart idle for longer
 *   than its inactivity timeout is destroyed, through its destroy action, by
 *   the first run after its deadline, even if no program ran at that moment;
 * - a stored record written by an older version of the resource is migrated
 *   when loaded (`version` and `migrations`).
 *
 * Run with `npm run example:durable` (the file lives in the system's
 * temporary directory; set `CART_DB` to choose another path; delete the file
 * to start over).
 */
import { Console, Effect, Layer, Schema } from "effect"
import { Changeset, Query, Resource, SqliteClient, Store } from "effect-gen-server"
import * as Os from "node:os"
import * as Path from "node:path"

const Cart = Resource.make("Cart", {
  fields: {
    id: Schema.String,
    items: Schema.Array(Schema.String),
    currency: Schema.String
  },
  primaryKey: ["id"],
  durable: true,
  // an abandoned cart goes away after a week without activity, across restarts too
  inactivityTimeout: "7 days",
  // the records of idle carts keep no fiber
  hibernateAfter: "1 minute",
  // version 1 of Cart had no currency: a cart it stored loads with one
  version: 2,
  migrations: {
    1: Resource.migration(
      Schema.Struct({ id: Schema.String, items: Schema.Array(Schema.String) }),
      (v1) => ({ ...v1, currency: "EUR" })
    )
  },
  actions: (Action) => ({
    add: Action.update({
      arguments: { item: Schema.String },
      change: (cs) => Changeset.set(cs, "items", [...cs.data.items, cs.arguments.item])
    }),
    destroy: Action.destroy({
      change: (cs) =>
        Changeset.after(cs, (cart) => Effect.as(Console.log(`  (cart ${cart.id} abandoned: destroyed)`), cart))
    })
  })
})

const filename = process.env.CART_DB ?? Path.join(Os.tmpdir(), "effect-gen-server-durable-cart.db")

/** One "process": a Store over the file, its records back from it. */
const StoreLive = Store.layer([Cart]).pipe(Layer.provide(SqliteClient.layer({ filename })))

const shop = Effect.gen(function*() {
  const carts = yield* Store.read(Query.make(Cart))
  yield* Console.log(`${carts.length} cart(s) in ${filename}`)
  const cart = carts.find((c) => c.id === "marty") ??
    (yield* Store.create(Cart, "create", { id: "marty", items: [], currency: "USD" }))
  const item = ["hoverboard", "almanac", "flux capacitor", "Pepsi Free", "self-lacing shoes"][cart.items.length % 5]!
  const updated = yield* Store.update(Cart, { id: "marty" }, "add", { item })
  yield* Console.log(`  added ${item}: ${JSON.stringify(updated.items)} (written before this line printed)`)
})

const program = Effect.gen(function*() {
  yield* Console.log("Run 1 of this program's Store:")
  yield* shop.pipe(Effect.provide(StoreLive))
  yield* Console.log("The Store closed; a new one opens the same file:")
  yield* Effect.gen(function*() {
    const cart = yield* Store.get(Cart, { id: "marty" })
    yield* Console.log(`  marty's cart came back: ${JSON.stringify(cart.items)} in ${cart.currency}`)
  }).pipe(Effect.provide(StoreLive))
  yield* Console.log("Run this program again: the cart keeps growing.")
})

program.pipe(Effect.runPromise).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
