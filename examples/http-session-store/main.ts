/**
 * Runs the HTTP session store on 127.0.0.1 until interrupted (Ctrl-C).
 *
 * Configured from the environment:
 *
 * - `PORT` (default 3000; `0` picks a free port),
 * - `SESSION_TIMEOUT` and `CART_TIMEOUT` (durations such as `"30 minutes"` or
 *   `"10 seconds"`; default 30 minutes each),
 * - `LOG_REQUESTS` (`true` logs every request; default `false`).
 *
 * Run with `npm run example:http`.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Config, Duration, Effect, Layer, Schema } from "effect"
import * as Server from "./server.js"

// `Config.Port` refuses 0, which asks the system for a free port
const Port = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 }))

const main = Effect.gen(function*() {
  const port = yield* Config.schema(Port, "PORT").pipe(Config.withDefault(3000))
  const sessionTimeout = yield* Config.Duration("SESSION_TIMEOUT").pipe(Config.withDefault(Duration.minutes(30)))
  const cartTimeout = yield* Config.Duration("CART_TIMEOUT").pipe(Config.withDefault(Duration.minutes(30)))
  const logRequests = yield* Config.Boolean("LOG_REQUESTS").pipe(Config.withDefault(false))
  return yield* Layer.launch(Server.layer({ port, sessionTimeout, cartTimeout, logRequests }))
})

NodeRuntime.runMain(main)
