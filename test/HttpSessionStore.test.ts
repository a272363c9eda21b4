/**
 * The HTTP session store example (`examples/http-session-store`), end to end:
 * each test starts the real server on a free loopback port and talks to it
 * over HTTP with `fetch`, event stream included. Time is real (the server's
 * timers are the store's), so expiry uses a 300 ms inactivity timeout and
 * every wait is bounded.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Duration, Effect, Exit, Fiber, Layer, Option, Schedule, Scope } from "effect"
import { HttpServer } from "effect/http"
import * as Net from "node:net"
import * as Resources from "../examples/http-session-store/resources.js"
import * as Server from "../examples/http-session-store/server.js"
import { DataLayer, Store } from "../src/index.js"

// -----------------------------------------------------------------------------
// helpers
// -----------------------------------------------------------------------------

interface Reply {
  readonly status: number
  readonly contentType: string | null
  readonly body: any
}

/** A client of one running server. */
interface Client {
  readonly url: string
  readonly call: (method: string, path: string, body?: unknown) => Effect.Effect<Reply>
  /** Opens `GET /events`; it is aborted when the scope closes. */
  readonly events: Effect.Effect<Events, never, Scope.Scope>
}

interface SseMessage {
  /** `undefined` for an unnamed event (`data:` lines only). */
  readonly event: string | undefined
  readonly data: any
}

interface Events {
  readonly status: number
  readonly contentType: string | null
  /** The next event of the stream, failing after `within` without one. */
  readonly next: (within?: Duration.Input) => Effect.Effect<SseMessage, string>
  /** Reads events until one satisfies `done`, returning all read (bounded in time). */
  readonly until: (
    done: (m: SseMessage) => boolean,
    within?: Duration.Input
  ) => Effect.Effect<ReadonlyArray<SseMessage>, string>
}

const parseSse = (block: string): SseMessage => {
  let event: string | undefined
  const data: Array<string> = []
  for (const line of block.split("\n")) {
    if (line.startsWith("event: ")) event = line.slice("event: ".length)
    else if (line.startsWith("data: ")) data.push(line.slice("data: ".length))
  }
  return { event, data: JSON.parse(data.join("\n")) }
}

const makeClient = (url: string): Client => {
  const call = (method: string, path: string, body?: unknown) =>
    Effect.promise(async (): Promise<Reply> => {
      const response = await fetch(url + path, {
        method,
        ...(body === undefined ? {} : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
      })
      const text = await response.text()
      return {
        status: response.status,
        contentType: response.headers.get("content-type"),
        body: text === "" ? undefined : JSON.parse(text)
      }
    })

  const events = Effect.gen(function*() {
    const controller = yield* Effect.acquireRelease(
      Effect.sync(() => new AbortController()),
      (controller) => Effect.sync(() => controller.abort())
    )
    const response = yield* Effect.promise(() => fetch(url + "/events", { signal: controller.signal }))
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
    let buffer = ""
    const read: Effect.Effect<SseMessage> = Effect.suspend(() => {
      const end = buffer.indexOf("\n\n")
      if (end !== -1) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        return Effect.succeed(parseSse(block))
      }
      return Effect.promise(() => reader.read()).pipe(
        Effect.flatMap(({ done, value }) => {
          if (done) return Effect.die(new Error("the event stream ended"))
          buffer += value
          return read
        })
      )
    })
    const next = (within: Duration.Input = "5 seconds") =>
      read.pipe(
        Effect.timeoutOption(within),
        Effect.flatMap(Option.match({
          onNone: () => Effect.fail(`no event within ${Duration.format(Duration.fromInputUnsafe(within))}`),
          onSome: Effect.succeed
        }))
      )
    const until = (done: (m: SseMessage) => boolean, within: Duration.Input = "5 seconds") =>
      Effect.gen(function*() {
        const seen: Array<SseMessage> = []
        while (true) {
          const message = yield* read
          seen.push(message)
          if (done(message)) return seen
        }
      }).pipe(
        Effect.timeoutOption(within),
        Effect.flatMap(Option.match({
          onNone: () =>
            Effect.fail(`the awaited event did not come within ${Duration.format(Duration.fromInputUnsafe(within))}`),
          onSome: Effect.succeed
        }))
      )
    return { status: response.status, contentType: response.headers.get("content-type"), next, until }
  })

  return { url, call, events }
}

/** Runs `f` against a fresh server on a free loopback port, then shuts the server down. */
const withServer = <A, E>(
  options: Server.Options,
  f: (client: Client) => Effect.Effect<A, E, Scope.Scope>
) =>
  Effect.gen(function*() {
    const { address } = yield* HttpServer.HttpServer
    // bound to the loopback interface, on the port the system picked
    assert.strictEqual(address._tag, "InetAddressV4")
    const url = HttpServer.formatAddress(address)
    assert.match(url, /^http:\/\/127\.0\.0\.1:[1-9]\d*$/)
    // the client's scope (its event streams) closes before the server does
    return yield* Effect.scoped(f(makeClient(url)))
  }).pipe(Effect.provide(Server.layer({ port: 0, logAddress: false, ...options })))

const createSession = (client: Client, userId = "alice") =>
  Effect.map(client.call("POST", "/sessions", { userId }), (reply) => {
    assert.strictEqual(reply.status, 201)
    return reply.body as { readonly id: string; readonly userId: string }
  })

const isLifecycle = (m: SseMessage, tag: string, resource: string, id: string) =>
  m.event === undefined && m.data._tag === tag && m.data.resource === resource && m.data.key.id === id

// -----------------------------------------------------------------------------
// tests
// -----------------------------------------------------------------------------

describe("HttpSessionStore", () => {
  it.live("creates a session with a normalised user id and reads it back", () =>
    withServer({}, (client) =>
      Effect.gen(function*() {
        const created = yield* client.call("POST", "/sessions", {
          userId: "  Alice@Example.COM ",
          data: { theme: "dark" }
        })
        assert.strictEqual(created.status, 201)
        assert.strictEqual(created.contentType, "application/json")
        const session = created.body
        assert.isString(session.id)
        assert.strictEqual(session.userId, "alice@example.com")
        assert.deepStrictEqual(session.data, { theme: "dark" })
        assert.isNumber(session.createdAt)
        assert.strictEqual(session.lastSeen, session.createdAt)
        assert.isTrue(Math.abs(session.createdAt - Date.now()) < 10_000)

        const read = yield* client.call("GET", `/sessions/${session.id}`)
        assert.strictEqual(read.status, 200)
        assert.deepStrictEqual(read.body, session)
      })))

  it.live("adds items to the cart; the before hook merges lines and computes the total", () =>
    withServer({}, (client) =>
      Effect.gen(function*() {
        const session = yield* createSession(client)
        const empty = yield* client.call("GET", `/sessions/${session.id}/cart`)
        assert.strictEqual(empty.status, 200)
        assert.deepStrictEqual(empty.body, { id: session.id, items: [], total: 0 })

        const path = `/sessions/${session.id}/cart/items`
        assert.strictEqual((yield* client.call("POST", path, { sku: "apple", quantity: 2, price: 0.1 })).status, 200)
        assert.strictEqual((yield* client.call("POST", path, { sku: "pear", quantity: 3, price: 0.2 })).status, 200)
        const cart = yield* client.call("POST", path, { sku: "apple", quantity: 1, price: 0.1 })
        assert.strictEqual(cart.status, 200)
        assert.deepStrictEqual(cart.body, {
          id: session.id,
          items: [{ sku: "apple", quantity: 3, price: 0.1 }, { sku: "pear", quantity: 3, price: 0.2 }],
          // in cents: 0.1 * 3 + 0.2 * 3 is 0.9000000000000001 in floating point
          total: 0.9
        })
        assert.deepStrictEqual((yield* client.call("GET", `/sessions/${session.id}/cart`)).body, cart.body)

        // adding to the cart is a write through the session: lastSeen moved
        const touched = yield* client.call("GET", `/sessions/${session.id}`)
        assert.isAtLeast(touched.body.lastSeen, touched.body.createdAt)
      })))

  it.live("bad input is a 400 ValidationError with a message; a refused action is a 422", () =>
    withServer({}, (client) =>
      Effect.gen(function*() {
        const missing = yield* client.call("POST", "/sessions", {})
        assert.strictEqual(missing.status, 400)
        assert.strictEqual(missing.body._tag, "ValidationError")
        assert.match(missing.body.message, /userId/)

        const session = yield* createSession(client)
        const path = `/sessions/${session.id}/cart/items`
        for (
          const [item, field] of [
            [{ sku: "apple", quantity: "two", price: 1 }, "quantity"],
            [{ sku: "apple", quantity: 0, price: 1 }, "quantity"],
            [{ sku: "apple", quantity: 1.5, price: 1 }, "quantity"],
            [{ sku: "apple", quantity: 1, price: -1 }, "price"],
            [{ sku: "", quantity: 1, price: 1 }, "sku"]
          ] as const
        ) {
          const reply = yield* client.call("POST", path, item)
          assert.strictEqual(reply.status, 400, JSON.stringify(item))
          assert.strictEqual(reply.body._tag, "ValidationError")
          assert.include(reply.body.message, field)
        }
        const notJson = yield* Effect.promise(() =>
          fetch(client.url + path, { method: "POST", headers: { "content-type": "application/json" }, body: "{" })
        )
        assert.strictEqual(notJson.status, 400)

        // well-formed, refused by the rules of the before hooks
        const badUser = yield* client.call("POST", "/sessions", { userId: "no spaces" })
        assert.strictEqual(badUser.status, 422)
        assert.strictEqual(badUser.body._tag, "ActionError")
        assert.match(badUser.body.message, /userId must be/)
        assert.strictEqual((yield* client.call("POST", path, { sku: "apple", quantity: 90, price: 1 })).status, 200)
        const tooMany = yield* client.call("POST", path, { sku: "apple", quantity: 10, price: 1 })
        assert.strictEqual(tooMany.status, 422)
        assert.deepStrictEqual(tooMany.body.errors, ["at most 99 of apple per cart (90 already in it)"])
        const otherPrice = yield* client.call("POST", path, { sku: "apple", quantity: 1, price: 2 })
        assert.strictEqual(otherPrice.status, 422)

        // nothing changed
        const cart = yield* client.call("GET", `/sessions/${session.id}/cart`)
        assert.deepStrictEqual(cart.body.items, [{ sku: "apple", quantity: 90, price: 1 }])
        assert.strictEqual(cart.body.total, 90)
      })))

  it.live("an unknown session is a 404 NotFound on every route", () =>
    withServer({}, (client) =>
      Effect.gen(function*() {
        for (
          const [method, path, body] of [
            ["GET", "/sessions/nobody", undefined],
            ["DELETE", "/sessions/nobody", undefined],
            ["GET", "/sessions/nobody/cart", undefined],
            ["POST", "/sessions/nobody/cart/items", { sku: "apple", quantity: 1, price: 1 }]
          ] as const
        ) {
          const reply = yield* client.call(method, path, body)
          assert.strictEqual(reply.status, 404, `${method} ${path}`)
          assert.strictEqual(reply.body._tag, "NotFound")
          assert.match(reply.body.message, /Session .*nobody.* not found/)
        }
      })))

  it.live("deleting a session destroys its cart in the session's after hook", () =>
    withServer({}, (client) =>
      Effect.gen(function*() {
        const session = yield* createSession(client)
        yield* client.call("POST", `/sessions/${session.id}/cart/items`, { sku: "apple", quantity: 1, price: 1 })
        const other = yield* createSession(client, "bob")
        yield* client.call("POST", `/sessions/${other.id}/cart/items`, { sku: "pear", quantity: 1, price: 1 })

        const deleted = yield* client.call("DELETE", `/sessions/${session.id}`)
        assert.strictEqual(deleted.status, 204)
        assert.strictEqual(deleted.body, undefined)

        assert.strictEqual((yield* client.call("GET", `/sessions/${session.id}`)).status, 404)
        assert.strictEqual((yield* client.call("GET", `/sessions/${session.id}/cart`)).status, 404)
        assert.strictEqual((yield* client.call("DELETE", `/sessions/${session.id}`)).status, 404)
        // the other session keeps its cart
        const kept = yield* client.call("GET", `/sessions/${other.id}/cart`)
        assert.deepStrictEqual(kept.body.items, [{ sku: "pear", quantity: 1, price: 1 }])
      })))

  it.live("GET /events streams Created, Updated and Destroyed as server-sent events", () =>
    withServer({}, (client) =>
      Effect.gen(function*() {
        const events = yield* client.events
        assert.strictEqual(events.status, 200)
        assert.strictEqual(events.contentType, "text/event-stream")
        const ready = yield* events.next()
        assert.strictEqual(ready.event, "ready")
        assert.isNumber(ready.data.at)

        const session = yield* createSession(client)
        yield* client.call("POST", `/sessions/${session.id}/cart/items`, { sku: "apple", quantity: 2, price: 1.5 })
        yield* client.call("DELETE", `/sessions/${session.id}`)

        const seen = yield* events.until((m) => isLifecycle(m, "Destroyed", "Session", session.id))
        // lifecycle events are unnamed: `data: <json>` only
        assert.isTrue(seen.every((m) => m.event === undefined))
        assert.deepStrictEqual(
          seen.map((m) => `${m.data._tag} ${m.data.resource}`),
          [
            "Created Session",
            "Updated Session", // touch: lastSeen
            "Created Cart", // opened by the first item
            "Updated Cart",
            "Destroyed Cart", // by the session's after hook, before the session commits
            "Destroyed Session"
          ]
        )
        const created = seen[0]!.data
        assert.deepStrictEqual(created.key, { id: session.id })
        assert.deepStrictEqual(created.record, session)
        const cartUpdated = seen[3]!.data
        assert.deepStrictEqual(cartUpdated.record, {
          id: session.id,
          items: [{ sku: "apple", quantity: 2, price: 1.5 }],
          total: 3
        })
        assert.strictEqual(seen[4]!.data.reason, "action")
        assert.strictEqual(seen[5]!.data.reason, "action")
      })))

  it.live("an idle session expires: Destroyed with reason \"inactivity\" over SSE, its cart with it", () =>
    withServer({ sessionTimeout: "300 millis", cartTimeout: "10 seconds" }, (client) =>
      Effect.gen(function*() {
        const events = yield* client.events
        assert.strictEqual((yield* events.next()).event, "ready")
        const session = yield* createSession(client)
        // the session's last activity: the touch made by this request
        const lastActive = Date.now()
        const cart = yield* client.call("POST", `/sessions/${session.id}/cart/items`, {
          sku: "apple",
          quantity: 1,
          price: 1
        })
        assert.strictEqual(cart.status, 200)

        const seen = yield* events.until((m) => isLifecycle(m, "Destroyed", "Session", session.id))
        const idle = Date.now() - lastActive
        const expired = seen[seen.length - 1]!.data
        assert.strictEqual(expired.reason, "inactivity")
        assert.deepStrictEqual(expired.key, { id: session.id })
        assert.isAtLeast(idle, 290)
        // the destroy action ran, hooks included: the cart went first
        const cartDestroyed = seen.find((m) => isLifecycle(m, "Destroyed", "Cart", session.id))
        assert.isDefined(cartDestroyed)
        assert.strictEqual(cartDestroyed!.data.reason, "action")

        assert.strictEqual((yield* client.call("GET", `/sessions/${session.id}`)).status, 404)
        assert.strictEqual((yield* client.call("GET", `/sessions/${session.id}/cart`)).status, 404)
      })))

  it.live("keeps an active session alive past its inactivity timeout", () =>
    withServer({ sessionTimeout: "1 second" }, (client) =>
      Effect.gen(function*() {
        const session = yield* createSession(client)
        // 2.5 seconds in all, never 1 second without a read
        for (let i = 0; i < 25; i++) {
          yield* Effect.sleep("100 millis")
          assert.strictEqual((yield* client.call("GET", `/sessions/${session.id}`)).status, 200)
        }
      })))

  it.effect("the resources keep no blanket create or update: the checked fields change only through their actions", () => {
    const { Cart, Session } = Resources.make()
    return Effect.gen(function*() {
      const session = yield* Store.create(Session, "login", { userId: "  Marty " })
      assert.strictEqual(session.userId, "marty")
      const forged = yield* Store.update(Session, session, "update" as never, { userId: "Biff!" } as never).pipe(
        Effect.flip
      )
      assert.strictEqual(forged._tag, "UnknownAction")
      const created = yield* Store.create(Session, "create" as never, { userId: "Biff!" } as never).pipe(Effect.flip)
      assert.strictEqual(created._tag, "UnknownAction")
      const cart = yield* Store.create(Cart, "open", { id: session.id })
      const total = yield* Store.update(Cart, cart, "update" as never, { total: -1 } as never).pipe(Effect.flip)
      assert.strictEqual(total._tag, "UnknownAction")
      assert.strictEqual((yield* Store.get(Cart, cart)).total, 0)
    }).pipe(Effect.provide(Store.layer([Session, Cart])))
  })

  describe("draining (closing the server: SIGTERM, Ctrl-C)", () => {
    /**
     * A server whose `GET /sessions/:id` waits at a gate once `hold` is set:
     * a request held in flight while the server closes.
     */
    const heldServer = (gracefulShutdownTimeout: Duration.Input) =>
      Effect.gen(function*() {
        const entered = yield* Deferred.make<void>()
        const gate = yield* Deferred.make<void>()
        const hold = { on: false }
        const slow: DataLayer.Make = (resources, options) =>
          Effect.map(DataLayer.genServer(resources, options), (inner) => ({
            ...inner,
            get: (resource, key) =>
              hold.on
                ? Effect.andThen(Deferred.succeed(entered, undefined), Deferred.await(gate)).pipe(
                  Effect.andThen(inner.get(resource, key))
                )
                : inner.get(resource, key)
          }))
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(
          Server.layer({
            port: 0,
            logAddress: false,
            gracefulShutdownTimeout,
            store: (resources) => Store.layer([resources.Session, resources.Cart], { dataLayer: slow })
          }),
          scope
        )
        const { address } = Context.get(context, HttpServer.HttpServer)
        const url = HttpServer.formatAddress(address)
        const { port } = address as { readonly port: number }
        return { entered, gate, hold, scope, url, port }
      })

    /** A raw connection: what it received, and whether the server closed it. */
    const connect = (port: number) =>
      Effect.callback<{ readonly socket: Net.Socket; readonly received: () => string; readonly ended: Promise<void> }>(
        (resume) => {
          const socket = Net.connect(port, "127.0.0.1")
          let data = ""
          socket.setEncoding("utf8")
          socket.on("data", (chunk: string) => (data += chunk))
          socket.on("error", () => {})
          const ended = new Promise<void>((done) => socket.once("close", () => done()))
          socket.once("connect", () => resume(Effect.succeed({ socket, received: () => data, ended })))
        }
      )

    const waitFor = (what: string, done: () => boolean) =>
      Effect.suspend(() => done() ? Effect.void : Effect.fail(what)).pipe(
        Effect.retry({ times: 100, schedule: Schedule.spaced("20 millis") }),
        Effect.orDie
      )

    it.live(
      "a request in flight is answered (Connection: close); one arriving meanwhile gets 503 Draining",
      () =>
        Effect.gen(function*() {
          const { entered, gate, hold, port, scope, url } = yield* heldServer("10 seconds")
          const session = yield* Effect.promise(() =>
            fetch(`${url}/sessions`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ userId: "marty" })
            }).then((r) => r.json() as Promise<{ readonly id: string }>)
          )
          hold.on = true
          const request = `GET /sessions/${session.id} HTTP/1.1\r\nHost: 127.0.0.1\r\n`
          // in flight: held at the gate
          const inFlight = yield* connect(port)
          inFlight.socket.write(request + "\r\n")
          yield* Deferred.await(entered)
          // arriving: its headers started before the drain (not an idle connection), finished after it
          const arriving = yield* connect(port)
          arriving.socket.write(request)
          const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
          yield* Effect.sleep("200 millis")
          // no new connection is accepted
          const refused = yield* Effect.promise(() =>
            fetch(`${url}/openapi.json`).then(() => "answered", () => "refused")
          )
          assert.strictEqual(refused, "refused")
          arriving.socket.write("\r\n")
          yield* Effect.promise(() => arriving.ended)
          const [head, body] = arriving.received().split("\r\n\r\n")
          assert.match(head!, /^HTTP\/1\.1 503 /)
          assert.match(head!, /\r\nretry-after: 1\r\n/i)
          assert.match(head!, /\r\nconnection: close\r\n/i)
          assert.strictEqual(JSON.parse(body!)._tag, "Draining")
          // the request in flight is still waiting, and the drain waits for it
          assert.strictEqual(inFlight.received(), "")
          assert.isUndefined(closing.pollUnsafe())
          yield* Deferred.succeed(gate, undefined)
          yield* Effect.promise(() => inFlight.ended)
          assert.match(inFlight.received(), /^HTTP\/1\.1 200 /)
          assert.match(inFlight.received(), /\r\nconnection: close\r\n/i)
          assert.strictEqual(JSON.parse(inFlight.received().split("\r\n\r\n")[1]!).id, session.id)
          yield* Fiber.join(closing).pipe(Effect.timeout("5 seconds"))
        }),
      { timeout: 30_000 }
    )

    it.live(
      "the server listens only once its Store is ready: no connection is accepted before its routes exist",
      () =>
        Effect.gen(function*() {
          const port = yield* Effect.callback<number>((resume) => {
            const probe = Net.createServer().listen(0, "127.0.0.1", () => {
              const { port } = probe.address() as Net.AddressInfo
              probe.close(() => resume(Effect.succeed(port)))
            })
          })
          const ready = yield* Deferred.make<void>()
          // a Store that takes its time to start, as a cluster runner joining does
          const slowStore = (resources: Resources.Resources) =>
            Layer.unwrap(Effect.as(Deferred.await(ready), Store.layer([resources.Session, resources.Cart])))
          const scope = yield* Scope.make()
          const building = yield* Effect.forkChild(
            Layer.buildWithScope(Server.layer({ port, logAddress: false, store: slowStore }), scope)
          )
          yield* Effect.sleep("300 millis")
          const early = yield* Effect.promise(() =>
            fetch(`http://127.0.0.1:${port}/openapi.json`, { signal: AbortSignal.timeout(2000) }).then(
              () => "answered",
              (e: Error) => e.name === "TimeoutError" ? "hung" : "refused"
            )
          )
          assert.strictEqual(early, "refused")
          yield* Deferred.succeed(ready, undefined)
          yield* Fiber.join(building)
          const later = yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}/openapi.json`))
          assert.strictEqual(later.status, 200)
          yield* Scope.close(scope, Exit.void)
        }),
      { timeout: 30_000 }
    )

    it.live(
      "the drain is bounded: a request that never ends has its connection closed at the bound",
      () =>
        Effect.gen(function*() {
          const { entered, hold, port, scope, url } = yield* heldServer("300 millis")
          const session = yield* Effect.promise(() =>
            fetch(`${url}/sessions`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ userId: "marty" })
            }).then((r) => r.json() as Promise<{ readonly id: string }>)
          )
          hold.on = true
          const stuck = yield* connect(port)
          stuck.socket.write(`GET /sessions/${session.id} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)
          yield* Deferred.await(entered)
          const started = Date.now()
          yield* Scope.close(scope, Exit.void).pipe(Effect.timeout("5 seconds"))
          yield* Effect.promise(() => stuck.ended)
          assert.isBelow(Date.now() - started, 3000)
          yield* waitFor("closed", () => stuck.socket.destroyed)
        }),
      { timeout: 30_000 }
    )
  })
})
