/**
 * The records of the HTTP session store: a `Session` per visitor and a `Cart`
 * per session, each living in its own supervised fiber.
 *
 * - `Session.login` (the create action of the API) stamps `createdAt` and `lastSeen` from
 *   Effect's `Clock` and, in a `before` hook, normalises and checks `userId`.
 * - `Session.touch` records that the visitor was seen (`lastSeen`).
 * - `Session.destroy` (the primary destroy action, which inactivity expiry
 *   also runs) destroys the session's cart in an `after` hook, through the
 *   Store: a cart never outlives its session.
 * - `Cart.addItem` merges the new line into the cart, checks the quantities
 *   and prices, and recomputes `total` in a `before` hook, inside the cart's
 *   fiber, so concurrent additions to one cart are serialised.
 *
 * The field schemas live at module level, so the HTTP API (`api.ts`) shares
 * them without depending on the resources' lifecycle settings; the resources
 * themselves are made by {@link make}, which takes the inactivity timeouts.
 */
import { Clock, type Duration, Effect, Schema } from "effect"
import { Changeset, Resource, Store } from "effect-gen-server"

// -----------------------------------------------------------------------------
// schemas shared with the HTTP API
// -----------------------------------------------------------------------------

/** The fields of a session record. */
export const SessionFields = {
  id: Schema.String,
  userId: Schema.String,
  /** Milliseconds since the epoch, from the `Clock`. */
  createdAt: Schema.Number,
  /** Milliseconds since the epoch of the last write through the session (login, cart changes). */
  lastSeen: Schema.Number,
  data: Schema.Record(Schema.String, Schema.Json)
}

/** A session as the API returns it. */
export const SessionSchema = Schema.Struct(SessionFields)
export type Session = typeof SessionSchema.Type

/** One line of a cart. */
export const CartLine = Schema.Struct({
  sku: Schema.String,
  quantity: Schema.Int,
  price: Schema.Number
})
export type CartLine = typeof CartLine.Type

/** The fields of a cart record; a cart's `id` is its session's `id`. */
export const CartFields = {
  id: Schema.String,
  items: Schema.Array(CartLine),
  total: Schema.Number
}

/** A cart as the API returns it. */
export const CartSchema = Schema.Struct(CartFields)
export type Cart = typeof CartSchema.Type

/** The largest quantity of one sku a cart may hold. */
export const maxQuantityPerLine = 99

/** The largest number of distinct skus a cart may hold. */
export const maxLines = 100

/** The arguments of `Cart.addItem`, also the payload of `POST /sessions/:id/cart/items`. */
export const AddItemFields = {
  sku: Schema.String.check(Schema.isNonEmpty(), Schema.isMaxLength(64)),
  quantity: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: maxQuantityPerLine })),
  /** Unit price, in currency units (two decimals are kept). */
  price: Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0))
}

/** The input of `Session.login`, also the payload of `POST /sessions`. */
export const LoginFields = {
  userId: Schema.String.check(Schema.isNonEmpty(), Schema.isMaxLength(64)),
  data: Schema.optionalKey(Schema.Record(Schema.String, Schema.Json))
}

// -----------------------------------------------------------------------------
// hooks
// -----------------------------------------------------------------------------

const userIdPattern = /^[a-z0-9][a-z0-9._@+-]{2,63}$/

/**
 * Trims and lower-cases a user id and checks what is left: 3 to 64 of
 * `a-z 0-9 . _ @ + -`, starting with a letter or digit.
 */
export const normaliseUserId = (userId: string): string | undefined => {
  const normalised = userId.trim().toLowerCase()
  return userIdPattern.test(normalised) ? normalised : undefined
}

const cents = (amount: number) => Math.round(amount * 100)

/** The outcome of {@link addLine}. */
export type Added =
  | { readonly _tag: "Ok"; readonly lines: ReadonlyArray<CartLine> }
  | { readonly _tag: "Refused"; readonly reason: string }

/**
 * Adds a line to a cart's lines: an sku already in the cart gets its
 * quantity increased (at the same unit price). Returns the new lines, or the
 * reason the line was refused.
 */
export const addLine = (lines: ReadonlyArray<CartLine>, line: CartLine): Added => {
  const index = lines.findIndex((l) => l.sku === line.sku)
  if (index === -1) {
    if (lines.length >= maxLines) {
      return { _tag: "Refused", reason: `a cart holds at most ${maxLines} different items` }
    }
    return { _tag: "Ok", lines: [...lines, { ...line, price: cents(line.price) / 100 }] }
  }
  const existing = lines[index]!
  if (cents(existing.price) !== cents(line.price)) {
    return {
      _tag: "Refused",
      reason: `${line.sku} is already in the cart at ${existing.price}, not ${line.price}`
    }
  }
  const quantity = existing.quantity + line.quantity
  if (quantity > maxQuantityPerLine) {
    return {
      _tag: "Refused",
      reason: `at most ${maxQuantityPerLine} of ${line.sku} per cart (${existing.quantity} already in it)`
    }
  }
  return { _tag: "Ok", lines: lines.map((l, i) => i === index ? { ...l, quantity } : l) }
}

/** The total of a cart's lines, computed in cents. */
export const totalOf = (lines: ReadonlyArray<CartLine>): number =>
  lines.reduce((sum, line) => sum + cents(line.price) * line.quantity, 0) / 100

// -----------------------------------------------------------------------------
// resources
// -----------------------------------------------------------------------------

/** The lifecycle settings of the two resources. */
export interface Options {
  /** A session nobody used for this long is destroyed (its cart with it). Default: 30 minutes. */
  readonly sessionTimeout?: Duration.Input | undefined
  /** A cart nobody changed or read for this long is destroyed. Default: 30 minutes. */
  readonly cartTimeout?: Duration.Input | undefined
  /** Bound on each record's queue of pending requests (`MailboxFull` beyond it). Default: 1024. */
  readonly mailboxCapacity?: number | undefined
}

/**
 * Makes the `Session` and `Cart` resources with the given lifecycle settings.
 *
 * **Example** (Short-lived sessions for a test)
 *
 * ```ts
 * import { Store } from "effect-gen-server"
 * import * as Resources from "./resources.js"
 *
 * const { Cart, Session } = Resources.make({ sessionTimeout: "200 millis" })
 * const StoreLive = Store.layer([Session, Cart])
 * ```
 */
export const make = (options: Options = {}) => {
  const mailboxCapacity = options.mailboxCapacity ?? 1024

  const Cart = Resource.make("Cart", {
    fields: CartFields,
    primaryKey: ["id"],
    generated: { items: () => [], total: () => 0 },
    inactivityTimeout: options.cartTimeout ?? "30 minutes",
    mailboxCapacity,
    // no default `create` or `update`: the lines and the total change only
    // through `addItem`, which checks them
    defaults: ["read", "destroy"],
    actions: (Action) => ({
      // opens an empty cart for a session (the cart's `id` is the session's)
      open: Action.create({ accept: ["id"] }),
      addItem: Action.update({
        arguments: AddItemFields,
        change: (cs) =>
          // the work is done in the cart's fiber, against its current lines
          Changeset.before(cs, (cs) => {
            const added = addLine(Changeset.get(cs, "items"), cs.arguments)
            return Effect.succeed(
              added._tag === "Refused"
                ? Changeset.addError(cs, added.reason)
                : cs.pipe(
                  Changeset.set("items", added.lines),
                  Changeset.set("total", totalOf(added.lines))
                )
            )
          })
      })
    })
  })

  const Session = Resource.make("Session", {
    fields: SessionFields,
    primaryKey: ["id"],
    generated: { id: () => crypto.randomUUID(), data: () => ({}) },
    inactivityTimeout: options.sessionTimeout ?? "30 minutes",
    mailboxCapacity,
    // no default `create` or `update`, which accept every field and run no
    // hook: `userId` is always normalised by `login`, `lastSeen` moves only
    // by `touch`
    defaults: ["read"],
    actions: (Action) => ({
      // the create action of the API: only `userId` and `data` come from the caller
      login: Action.create({
        accept: ["userId", "data"],
        change: (cs) =>
          Effect.map(Clock.currentTimeMillis, (now) =>
            cs.pipe(
              Changeset.set("createdAt", now),
              Changeset.set("lastSeen", now),
              Changeset.before((cs) => {
                const userId = normaliseUserId(Changeset.get(cs, "userId"))
                return Effect.succeed(
                  userId === undefined
                    ? Changeset.addError(
                      cs,
                      "userId must be 3 to 64 of a-z 0-9 . _ @ + -, starting with a letter or a digit"
                    )
                    : Changeset.set(cs, "userId", userId)
                )
              })
            ))
      }),
      touch: Action.update({
        change: (cs) => Effect.map(Clock.currentTimeMillis, (now) => Changeset.set(cs, "lastSeen", now))
      }),
      // replaces the default `destroy`; expiry runs it too, so an expired
      // session takes its cart with it
      destroy: Action.destroy({
        change: (cs) =>
          Changeset.after(cs, (session) =>
            Store.destroy(Cart, { id: session.id }).pipe(
              // no cart yet, or it expired on its own
              Effect.catchTag("NotFound", () => Effect.void),
              Effect.as(session)
            ))
      })
    })
  })

  return { Session, Cart } as const
}

/** The resources made by {@link make}. */
export type Resources = ReturnType<typeof make>
