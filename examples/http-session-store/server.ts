/**
 * The server of the HTTP session store: the handlers of `api.ts` over the
 * Store, served by `@effect/platform-node` on a loopback port.
 *
 * `layer(options)` is the whole application as one `Layer`: building it
 * starts the Store, then listens on `127.0.0.1:<port>` (port `0` picks a
 * free one; read it from `HttpServer.HttpServer`'s `address`); closing its
 * scope (SIGTERM, Ctrl-C) drains the server, then closes the Store, which
 * interrupts every record fiber (or, on a cluster, hands them over).
 *
 * Draining, bounded by `gracefulShutdownTimeout`: the server stops accepting
 * connections and closes its idle keep-alive connections at once; requests in
 * flight finish, answered with `Connection: close`; a request arriving on an
 * open connection meanwhile is refused before it is handled, with a `503`
 * `Draining` (`Retry-After: 1`, `Connection: close`), so a client or load
 * balancer sends it to another server; event streams end. At the bound, the
 * connections still open are closed. Only then does the Store close, so every
 * request handled gets its answer.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Clock, Deferred, type Duration, Effect, Layer, Schedule, SchemaIssue, Stream } from "effect"
import { type Errors, Store } from "effect-gen-server"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { HttpApiBuilder, HttpApiMiddleware } from "effect/http-api"
import { createServer, type Server as NodeServer } from "node:http"
import * as Api from "./api.js"
import * as Resources from "./resources.js"

/** The options of {@link layer}. */
export interface Options extends Resources.Options {
  /** The TCP port on 127.0.0.1; `0` picks a free one. Default: 3000. */
  readonly port?: number | undefined
  /**
   * How long closing the server waits for the requests in flight (see
   * draining, above) before it closes their connections. Default: 2 seconds.
   */
  readonly gracefulShutdownTimeout?: Duration.Input | undefined
  /** Log every request. Default: `false`. */
  readonly logRequests?: boolean | undefined
  /** Log the address listened on. Default: `true`. */
  readonly logAddress?: boolean | undefined
  /**
   * The Store over the resources. Default: `Store.layer` (every record in a
   * fiber of this process); `cluster-runner.ts` passes `Cluster.layer`.
   */
  readonly store?: ((resources: Resources.Resources) => Layer.Layer<Store.Store>) | undefined
}

/** The Store of one process: every record in a fiber of its own. */
const localStore = (resources: Resources.Resources) =>
  // an SSE client that stops reading holds at most 10,000 events, the oldest dropped first
  Store.layer([resources.Session, resources.Cart], { eventBuffer: 10_000 })

/** The only interface the server listens on. */
export const host = "127.0.0.1"

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/**
 * The HTTP answer to a Store error. `AlreadyExists`, `UnknownAction` and
 * `ReentrantCall` would be bugs of this server, not of the request: they are
 * defects (500).
 */
const fromStoreError = (error: Errors.StoreError): Effect.Effect<never, Api.StoreError> => {
  switch (error._tag) {
    case "NotFound":
      return Effect.fail(new Api.NotFound({ message: error.message }))
    case "ValidationError":
      return Effect.fail(new Api.ValidationError({ message: error.message }))
    case "ActionError":
      return Effect.fail(new Api.ActionError({ message: error.message, errors: error.errors }))
    case "MailboxFull":
      return Effect.fail(new Api.MailboxFull({ message: error.message }))
    case "StoreClosed":
      return Effect.fail(new Api.StoreClosed({ message: error.message }))
    case "Unavailable":
      return Effect.fail(
        new Api.Unavailable({
          message: error.message,
          applied: error.applied,
          ...(error.operationId === undefined ? {} : { operationId: error.operationId })
        })
      )
    case "RecordCrashed":
      return Effect.fail(new Api.RecordCrashed({ message: error.message }))
    case "AlreadyExists":
    case "UnknownAction":
    case "ReentrantCall":
      return Effect.die(error)
  }
}

const toHttp = <A>(effect: Effect.Effect<A, Errors.StoreError>) => Effect.catch(effect, fromStoreError)

const formatIssue = SchemaIssue.makeFormatterStandardSchemaV1()

/** Requests that fail their schema: a 400 `ValidationError` naming each bad field. */
const RequestValidationLive = HttpApiMiddleware.layerSchemaErrorTransform(Api.RequestValidation, (error) => {
  // a response that fails its own schema is a bug of the server: keep the 500
  if (error.kind === "Body" || error.kind === "ResponseHeaders") return Effect.fail(error)
  const issues = formatIssue(error.cause.issue).issues.map((issue) => {
    const path = (issue.path ?? []).map((p) => String(typeof p === "object" ? p.key : p)).join(".")
    return path === "" ? issue.message : `${path}: ${issue.message}`
  })
  return Effect.fail(new Api.ValidationError({ message: `invalid ${error.kind.toLowerCase()}: ${issues.join("; ")}` }))
})

// -----------------------------------------------------------------------------
// handlers
// -----------------------------------------------------------------------------

const SessionsLive = ({ Cart, Session }: Resources.Resources) => {
  /**
   * Touches the session (404 when it is gone), then adds the line to its
   * cart, opening the cart on the first addition.
   */
  const addItem = Effect.fn("addItem")(function*(id: string, item: Resources.CartLine) {
    yield* Store.update(Session, { id }, "touch")
    return yield* Store.update(Cart, { id }, "addItem", item).pipe(
      Effect.catchTag("NotFound", () =>
        Store.create(Cart, "open", { id }).pipe(
          // a concurrent request opened it first
          Effect.catchTag("AlreadyExists", () => Effect.void),
          Effect.andThen(Store.update(Cart, { id }, "addItem", item))
        ))
    )
  })

  /** The session's cart; an empty one if nothing was added yet (or the cart expired). */
  const getCart = Effect.fn("getCart")(function*(id: string) {
    yield* Store.keepAlive(Session, { id })
    return yield* Store.get(Cart, { id }).pipe(
      Effect.catchTag("NotFound", () => Effect.succeed<Resources.Cart>({ id, items: [], total: 0 }))
    )
  })

  return HttpApiBuilder.group(Api.Api, "sessions", (handlers) =>
    Effect.gen(function*() {
      // the handlers run with the Store this group was built with
      const store = yield* Store.Store
      const run = <A>(effect: Effect.Effect<A, Errors.StoreError, Store.Store>) =>
        toHttp(Effect.provideService(effect, Store.Store, store))
      return handlers.handleAll({
        create: ({ payload }) => run(Store.create(Session, "login", payload)),
        get: ({ params }) => run(Store.get(Session, { id: params.id })),
        destroy: ({ params }) => run(Store.destroy(Session, { id: params.id })),
        addItem: ({ params, payload }) => run(addItem(params.id, payload)),
        getCart: ({ params }) => run(getCart(params.id))
      })
    }))
}

/** How many events an event stream holds for a client that reads slowly. */
export const eventBuffer = 4096

/**
 * The lifecycle events as SSE: a `ready` event once the subscription is
 * live, then every event, until the client goes away, the server drains or
 * the Store closes.
 */
const events = (drain: Drain): Stream.Stream<Api.SseEvent, never, Store.Store> =>
  Stream.unwrap(
    Effect.gen(function*() {
      const subscription = yield* Store.subscribe
      const at = yield* Clock.currentTimeMillis
      return Stream.make<Array<Api.SseEvent>>({ event: "ready", data: { at } }).pipe(
        Stream.concat(
          Stream.fromSubscription(subscription).pipe(
            // the store's PubSub is unbounded: a client that stops reading loses
            // its oldest events instead of growing the server's memory
            Stream.buffer({ capacity: eventBuffer, strategy: "sliding" }),
            Stream.map((event): Api.SseEvent => ({ event: "message", data: event }))
          )
        ),
        Stream.interruptWhen(Deferred.await(drain.started))
      )
    })
  )

const EventsLive = (drain: Drain) =>
  HttpApiBuilder.group(Api.Api, "events", (handlers) =>
    Effect.gen(function*() {
      const store = yield* Store.Store
      return handlers.handle("stream", () => Effect.succeed(Stream.provideService(events(drain), Store.Store, store)))
    }))

// -----------------------------------------------------------------------------
// draining
// -----------------------------------------------------------------------------

/** The drain of one server: its Node server, and whether it is draining. */
interface Drain {
  server: NodeServer | undefined
  draining: boolean
  /** Completed when draining starts: event streams end. */
  readonly started: Deferred.Deferred<void>
}

/** The answer to a request that arrives while the server drains: it was not handled. */
const drainingResponse = () =>
  HttpServerResponse.jsonUnsafe(
    { _tag: "Draining", message: "this server is shutting down and did not handle the request: send it to another" },
    { status: 503, headers: { "retry-after": "1", connection: "close" } }
  )

/**
 * While the server drains: a new request is refused unhandled (`503`
 * `Draining`), and a request in flight is answered with `Connection: close`,
 * so its connection closes once it is answered.
 */
const DrainMiddleware = (drain: Drain) =>
  HttpRouter.middleware((httpEffect) =>
    Effect.suspend(() => {
      if (drain.draining) return Effect.succeed(drainingResponse())
      return Effect.map(
        httpEffect,
        (response) => drain.draining ? HttpServerResponse.setHeader(response, "connection", "close") : response
      )
    }), { global: true })

/**
 * The drain itself, the first thing that happens when the server's scope
 * closes: stop listening, close idle connections (again as requests in flight
 * finish and leave theirs idle), wait for every connection to close, at most
 * `timeout`, then close what is left.
 */
const drainOnClose = (drain: Drain, timeout: Duration.Input) =>
  Layer.effectDiscard(Effect.addFinalizer(() =>
    Effect.gen(function*() {
      const server = drain.server
      if (server === undefined || !server.listening) return
      drain.draining = true
      yield* Deferred.succeed(drain.started, undefined)
      const closed = Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
      })
      const closeIdle = Effect.sync(() => server.closeIdleConnections()).pipe(
        Effect.repeat(Schedule.spaced("20 millis")),
        Effect.asVoid
      )
      yield* Effect.raceFirst(closed, closeIdle).pipe(Effect.timeoutOption(timeout))
      server.closeAllConnections()
    })
  ))

// -----------------------------------------------------------------------------
// the application
// -----------------------------------------------------------------------------

/**
 * The HTTP routes of the API over a Store of the given resources (no
 * server): useful with `HttpRouter.toWebHandler` too.
 */
export const routes = (resources: Resources.Resources, store = localStore, drain?: Drain) =>
  Effect.gen(function*() {
    const draining: Drain = drain ?? { server: undefined, draining: false, started: yield* Deferred.make<void>() }
    return HttpApiBuilder.layer(Api.Api, { openapiPath: "/openapi.json" }).pipe(
      Layer.provide([
        SessionsLive(resources).pipe(Layer.provide(RequestValidationLive)),
        EventsLive(draining).pipe(Layer.provide(RequestValidationLive))
      ]),
      Layer.provide(store(resources))
    )
  }).pipe(Layer.unwrap)

/**
 * The whole server: Store, routes, and a Node HTTP server on
 * `127.0.0.1:<port>`.
 *
 * **Example** (A server on a free port, for a test)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { HttpServer } from "effect/http"
 * import * as Server from "./server.js"
 *
 * const url = Effect.gen(function*() {
 *   const server = yield* HttpServer.HttpServer
 *   return HttpServer.formatAddress(server.address)
 * }).pipe(Effect.provide(Server.layer({ port: 0, sessionTimeout: "200 millis" })))
 * ```
 */
export const layer = (options: Options = {}) =>
  Effect.gen(function*() {
    const resources = Resources.make(options)
    const drain: Drain = { server: undefined, draining: false, started: yield* Deferred.make<void>() }
    const timeout = options.gracefulShutdownTimeout ?? "2 seconds"
    // one Store (a layer is built once however often it is named), used by the routes
    const store = (options.store ?? localStore)(resources)
    const serve = HttpRouter.serve(Layer.merge(routes(resources, () => store, drain), DrainMiddleware(drain)), {
      disableLogger: options.logRequests !== true,
      disableListenLog: options.logAddress === false
    })
    const nodeServer = () => (drain.server = createServer())
    // the Store is ready before the server listens: a request accepted before its routes existed would never be
    // answered (a cluster runner takes seconds to join)
    const listen = NodeHttpServer.layer(nodeServer, {
      port: options.port ?? 3000,
      host,
      gracefulShutdownTimeout: timeout
    })
      .pipe(Layer.provide(store))
    // built last, closed first: the drain runs before serving stops and the Store closes
    return drainOnClose(drain, timeout).pipe(Layer.provideMerge(serve), Layer.provideMerge(listen))
  }).pipe(Layer.unwrap)
