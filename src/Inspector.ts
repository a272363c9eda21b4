/**
 * The inspector: a web page and a JSON API to look into a running Store.
 *
 * `Inspector.layer({ port })` serves, on `127.0.0.1:<port>`, one page showing
 * the resources with their counts, a page of records with a filter and a
 * sort, one record's state and its recent events, the live events, and the
 * metrics as small plots over time; and the JSON API the page reads
 * (`/api/resources`, `/api/resources/<name>/records`,
 * `/api/resources/<name>/record`, `/api/events`, `/api/events/stream`,
 * `/api/metrics`). It only reads: it never creates, updates nor destroys a
 * record, and it reads records with `Store.read`, which is not activity, so
 * looking at a record neither keeps it alive nor wakes it. It uses the
 * Store's public operations and events only, so it works on every data
 * layer, `Cluster.layer` included.
 *
 * **Costs**: one more event subscriber (a ring slot and a counter per event,
 * and one filter test per open event stream); the counts read every record
 * of each resource (`Store.read`) at most once per `sampleInterval`, when a
 * page asks; a few metric reads per `sampleInterval`. Memory is bounded:
 * the last `recentEvents` events, the last `samples` samples, and at most
 * 100 unsent events per open stream, sent 4 times a second (a stream that
 * cannot keep up skips events and says how many).
 *
 * **Gotchas**
 *
 * - The HTTP server is `@effect/platform-node`'s, an optional peer
 *   dependency: install it to use the inspector (`npm install
 *   @effect/platform-node`). It is loaded when the layer is built, not when
 *   this module is imported.
 * - The counts `awake` and `hibernating` and the metrics are this process's
 *   (`Metrics`); `records` is what `Store.read` finds: on the durable and
 *   cluster layers, the stored records. The events are every process's.
 * - With a `token`, every API request needs `Authorization: Bearer <token>`
 *   (401 without it); the page itself holds no data and asks for the token,
 *   or takes it from its address: `http://127.0.0.1:<port>/#token=<token>`.
 * - Listening on a loopback address (the default), the inspector answers only
 *   requests addressed to that address or `localhost` (403 otherwise), so a
 *   web page cannot reach it through a DNS name of its own that resolves to
 *   127.0.0.1. Listening on another address serves the network: set a token.
 * - A record's pending schedules (`Store.schedules`) are read when it is
 *   opened, not followed live.
 * - Its timers are the `Clock`'s: under `TestClock` the metric samples and
 *   the event streams' sends move only as the test clock does.
 *
 * @since 0.6.0
 * @module
 */
import { Context, Duration, Effect, Layer, Redacted } from "effect"
import { HttpServerError } from "effect/http"
import type * as Http from "node:http"
import * as Monitor from "./internal/inspector/monitor.js"
import * as Server from "./internal/inspector/server.js"
import type * as Resource from "./Resource.js"
import * as Store from "./Store.js"

/**
 * A running inspector: where it listens.
 *
 * **Example** (Printing the address of the page)
 *
 * ```ts
 * import { Console, Effect, Schema } from "effect"
 * import { Inspector, Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String },
 *   primaryKey: ["id"]
 * })
 *
 * const program = Effect.gen(function*() {
 *   const inspector = yield* Inspector.Inspector
 *   yield* Console.log(`inspector: ${inspector.url}`)
 * }).pipe(
 *   Effect.provide(Inspector.layer({ port: 0 })),
 *   Effect.provide(Store.layer([Character]))
 * )
 * ```
 *
 * @category services
 * @since 0.6.0
 */
export class Inspector extends Context.Service<Inspector, {
  /** The page's address, such as `http://127.0.0.1:4000/`. */
  readonly url: string
  readonly host: string
  /** The port listened on: the one asked for, or the one picked for port `0`. */
  readonly port: number
}>()("effect-gen-server/Inspector") {}

/**
 * The options of {@link layer}.
 *
 * **Example** (An inspector with a token, on a fixed port)
 *
 * ```ts
 * import { Redacted } from "effect"
 * import type { Inspector } from "effect-gen-server"
 *
 * const options: Inspector.Options = {
 *   port: 4000,
 *   token: Redacted.make(process.env.INSPECTOR_TOKEN ?? "change me"),
 *   recentEvents: 5_000
 * }
 * ```
 *
 * @category models
 * @since 0.6.0
 */
export interface Options {
  /** The TCP port; `0` picks a free one (read it from {@link Inspector}). */
  readonly port: number
  /**
   * The address to listen on. Default `"127.0.0.1"`: only this machine. Any
   * other address serves whoever can reach it: set a `token`.
   */
  readonly host?: string | undefined
  /** A bearer token every API request must carry. Default: none. */
  readonly token?: string | Redacted.Redacted<string> | undefined
  /**
   * The resources to show. Default: those the Store serves (`Store.layer`,
   * `Cluster.layer` and `Testing.layer` list them); required for a Store
   * over a data layer of your own.
   */
  readonly resources?: ReadonlyArray<Resource.Any> | undefined
  /** How many recent events are kept (a ring). A positive integer; default 1,000. */
  readonly recentEvents?: number | undefined
  /** How often the metrics are sampled (and the counts may be re-read). Default 1 second. */
  readonly sampleInterval?: Duration.Input | undefined
  /** How many metric samples are kept (a ring). A positive integer; default 300. */
  readonly samples?: number | undefined
}

/**
 * How many events an event stream holds for a client between two sends (every
 * 250 ms): at most 400 a second reach a page, more than a person reads, and
 * the rest are counted as skipped.
 */
const streamBuffer = 100

const positive = (name: string, value: number | undefined, fallback: number): number => {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`Inspector.layer: ${name} must be a positive integer, got ${JSON.stringify(value)}`)
  }
  return value
}

/** The options, checked, with their defaults; throws a `RangeError` naming the first bad one. */
const check = (options: Options) => {
  if (typeof options !== "object" || options === null) {
    throw new RangeError("Inspector.layer: options must be an object such as { port: 4000 }")
  }
  const { port } = options
  if (!Number.isSafeInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`Inspector.layer: port must be an integer from 0 to 65535, got ${JSON.stringify(port)}`)
  }
  const host = options.host ?? "127.0.0.1"
  if (typeof host !== "string" || host === "") {
    throw new RangeError(`Inspector.layer: host must be a non-empty string, got ${JSON.stringify(host)}`)
  }
  const token = Redacted.isRedacted(options.token) ? Redacted.value(options.token) : options.token
  if (token !== undefined && (typeof token !== "string" || token === "")) {
    throw new RangeError("Inspector.layer: token must be a non-empty string")
  }
  const interval = Duration.fromInput(options.sampleInterval ?? "1 second")
  if (interval._tag === "None" || Duration.toMillis(interval.value) < 10 || !Duration.isFinite(interval.value)) {
    throw new RangeError(
      `Inspector.layer: sampleInterval must be a duration of at least 10 millis, got ${
        JSON.stringify(options.sampleInterval)
      }`
    )
  }
  return {
    port,
    host,
    token,
    recentEvents: positive("recentEvents", options.recentEvents, 1_000),
    samples: positive("samples", options.samples, 300),
    sampleMillis: Duration.toMillis(interval.value)
  }
}

const loopback = new Set(["127.0.0.1", "::1", "localhost"])

/** The Node HTTP server, loaded when an inspector starts: `@effect/platform-node` is an optional peer. */
const loadServer = Effect.tryPromise({
  try: () => Promise.all([import("@effect/platform-node/NodeHttpServer"), import("node:http")]),
  catch: (cause) =>
    new HttpServerError.ServeError({
      cause: new Error(
        "the inspector's HTTP server is @effect/platform-node's, an optional peer dependency: " +
          "npm install @effect/platform-node",
        { cause }
      )
    })
})

/**
 * The inspector over the Store in the context, serving its page and API on
 * `host:port` (`127.0.0.1` by default) until the layer's scope closes; closing
 * it ends every event stream and closes the server and its connections.
 * Fails with `ServeError` when it cannot listen (the port is taken) or
 * `@effect/platform-node` is not installed; dies with a `RangeError` naming
 * a bad option.
 *
 * **Example** (The TimeTravel story, inspected)
 *
 * ```ts
 * import { Effect, Layer, Schema } from "effect"
 * import { Inspector, Resource, Store } from "effect-gen-server"
 *
 * const Character = Resource.make("Character", {
 *   fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
 *   primaryKey: ["id"],
 *   generated: { id: () => crypto.randomUUID() }
 * })
 *
 * // the Store, and the inspector over it on http://127.0.0.1:4000/
 * const App = Inspector.layer({ port: 4000 }).pipe(Layer.provideMerge(Store.layer([Character])))
 *
 * const program = Store.create(Character, "create", { name: "Marty", currentYear: 1985 }).pipe(
 *   Effect.andThen(Effect.never),
 *   Effect.provide(App)
 * )
 * ```
 *
 * @category layers
 * @since 0.6.0
 */
export const layer = (
  options: Options
): Layer.Layer<Inspector, HttpServerError.ServeError, Store.Store> =>
  Layer.effect(
    Inspector,
    Effect.gen(function*() {
      const checked = yield* Effect.try({ try: () => check(options), catch: (error) => error }).pipe(Effect.orDie)
      const store = yield* Store.Store
      const resources = options.resources ?? store.resources
      if (resources === undefined) {
        return yield* Effect.die(
          new RangeError(
            "Inspector.layer: this Store does not list its resources (it is over a data layer of your own): " +
              "pass them as `resources`"
          )
        )
      }
      const [NodeHttpServer, NodeHttp] = yield* loadServer
      const monitor = yield* Monitor.make(resources, {
        recentEvents: checked.recentEvents,
        listenerBuffer: streamBuffer,
        sampleMillis: checked.sampleMillis,
        samples: checked.samples
      })
      let node: Http.Server | undefined
      const server = yield* NodeHttpServer.make(() => (node = NodeHttp.createServer()), {
        port: checked.port,
        host: checked.host,
        // the event streams have ended by then (below): this bounds only requests in flight
        gracefulShutdownTimeout: "1 second"
      })
      // runs once the server stopped waiting for its connections: whatever is still open is closed
      yield* Effect.addFinalizer(() => Effect.sync(() => node?.closeAllConnections()))
      const address = node!.address() as { readonly address: string; readonly port: number }
      const port = address.port
      const hostname = address.address
      const authority = hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`
      yield* server.serve(Server.make(monitor, {
        token: checked.token,
        hosts: loopback.has(checked.host)
          ? new Set([authority, `localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`])
          : undefined,
        tickMillis: 250,
        keepAliveMillis: 15_000,
        restartOf: store.dataLayer.restartOf ?? ((resource) => resource.restart)
      }))
      // added last, so run first when the scope closes: the event streams end before the server stops
      yield* Effect.addFinalizer(() => monitor.close)
      return Inspector.of({ url: `http://${authority}/`, host: hostname, port })
    })
  )
