/**
 * The HTTP API of the session store, schema first: the endpoints, their
 * payloads and responses, and the errors with their status codes. It holds
 * no server code, so a client (`HttpApiClient.make(Api)`) can share it.
 *
 * | route | success | errors |
 * | --- | --- | --- |
 * | `POST /sessions` | 201, the session | 400, 422, 503 |
 * | `GET /sessions/:id` | 200, the session | 404, 503 |
 * | `DELETE /sessions/:id` | 204 | 404, 422, 503 |
 * | `POST /sessions/:id/cart/items` | 200, the cart | 400, 404, 422, 503 |
 * | `GET /sessions/:id/cart` | 200, the cart | 404, 503 |
 * | `GET /events` | 200, `text/event-stream` of lifecycle events | |
 *
 * Errors are JSON bodies `{ "_tag", "message", ... }` named after the
 * library's errors: `NotFound` 404, `ValidationError` 400 (a request that does
 * not match its schema), `ActionError` 422 (refused by an action's rules),
 * `MailboxFull`, `StoreClosed` and `Unavailable` (a cluster's record owner did
 * not answer; `applied` says whether the request may have taken effect) 503,
 * `RecordCrashed` 500.
 */
import { Schema } from "effect"
import { Event } from "effect-gen-server"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, OpenApi } from "effect/http-api"
import { AddItemFields, CartSchema, LoginFields, SessionSchema } from "./resources.js"

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/** 404: no live session (or cart) with this id: never created, destroyed or expired. */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {
  message: Schema.String
}, { httpApiStatus: 404 }) {}

/** 400: the request does not match its schema (path, payload), or the store refused the input's shape. */
export class ValidationError extends Schema.TaggedError<ValidationError>()("ValidationError", {
  message: Schema.String
}, { httpApiStatus: 400 }) {}

/** 422: a well-formed request refused by an action's rules (a `before` hook, a failed `after` hook). */
export class ActionError extends Schema.TaggedError<ActionError>()("ActionError", {
  message: Schema.String,
  errors: Schema.Array(Schema.String)
}, { httpApiStatus: 422 }) {}

/** 503: the record has too many requests pending; retry later. */
export class MailboxFull extends Schema.TaggedError<MailboxFull>()("MailboxFull", {
  message: Schema.String
}, { httpApiStatus: 503 }) {}

/** 503: the store is shutting down. */
export class StoreClosed extends Schema.TaggedError<StoreClosed>()("StoreClosed", {
  message: Schema.String
}, { httpApiStatus: 503 }) {}

/**
 * 503: on a cluster, the runner owning the record did not answer in time (a
 * shard moving, a runner stopping). `applied: "no"`: nothing happened, the
 * request can be sent again; `"unknown"`: it may have been applied, once.
 * `operationId`: the id the write that gave up was sent under (none for a
 * read), for the server's logs: this API takes no id from its clients.
 */
export class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", {
  message: Schema.String,
  applied: Schema.Literals(["no", "unknown"]),
  operationId: Schema.optionalKey(Schema.String)
}, { httpApiStatus: 503 }) {}

/** 500: the record's fiber crashed while serving the request; the supervisor restarted it. */
export class RecordCrashed extends Schema.TaggedError<RecordCrashed>()("RecordCrashed", {
  message: Schema.String
}, { httpApiStatus: 500 }) {}

/** Every error a store call can answer with. */
export const StoreErrors = [
  NotFound,
  ValidationError,
  ActionError,
  MailboxFull,
  StoreClosed,
  Unavailable,
  RecordCrashed
] as const
export type StoreError = InstanceType<typeof StoreErrors[number]>

/**
 * Turns the requests that fail their schema (HttpApi answers those with an
 * empty 400 by default) into a `ValidationError` with a readable message.
 */
export class RequestValidation extends HttpApiMiddleware.Service<RequestValidation>()(
  "http-session-store/RequestValidation",
  { error: ValidationError }
) {}

// -----------------------------------------------------------------------------
// server-sent events
// -----------------------------------------------------------------------------

/**
 * A lifecycle event, sent as an unnamed SSE event (`data: <json>\n\n`):
 * `Created`, `Updated`, `Destroyed` (with `reason`), `Restarted`, `Failed`,
 * each with `resource`, `key` and `record`.
 */
export const LifecycleMessage = Schema.Struct({
  event: Schema.Literal("message"),
  data: Schema.fromJsonString(Event.Event)
})

/**
 * The first event of every stream (`event: ready`): from here on, no
 * lifecycle event is missed. `data` holds the server time, in milliseconds.
 */
export const ReadyMessage = Schema.Struct({
  event: Schema.Literal("ready"),
  data: Schema.fromJsonString(Schema.Struct({ at: Schema.Number }))
})

/** The events of `GET /events`. */
export const SseEvent = Schema.Union([LifecycleMessage, ReadyMessage])
export type SseEvent = typeof SseEvent.Type

// -----------------------------------------------------------------------------
// endpoints
// -----------------------------------------------------------------------------

const params = { id: Schema.String }

/** Sessions and their carts. */
export class SessionsGroup extends HttpApiGroup.make("sessions").add(
  HttpApiEndpoint.post("create", "/sessions", {
    payload: Schema.Struct(LoginFields),
    success: SessionSchema.pipe(HttpApiSchema.status(201)),
    error: StoreErrors
  }),
  HttpApiEndpoint.get("get", "/sessions/:id", {
    params,
    success: SessionSchema,
    error: StoreErrors
  }),
  HttpApiEndpoint.delete("destroy", "/sessions/:id", {
    params,
    success: HttpApiSchema.NoContent,
    error: StoreErrors
  }),
  HttpApiEndpoint.post("addItem", "/sessions/:id/cart/items", {
    params,
    payload: Schema.Struct(AddItemFields),
    success: CartSchema,
    error: StoreErrors
  }),
  HttpApiEndpoint.get("getCart", "/sessions/:id/cart", {
    params,
    success: CartSchema,
    error: StoreErrors
  })
) {}

/** The lifecycle events of every record, as they happen. */
export class EventsGroup extends HttpApiGroup.make("events").add(
  HttpApiEndpoint.get("stream", "/events", {
    success: HttpApiSchema.StreamSse({ events: SseEvent })
  })
) {}

/** The whole API. */
export class Api extends HttpApi.make("http-session-store")
  .add(SessionsGroup)
  .add(EventsGroup)
  .middleware(RequestValidation)
  .annotateMerge(OpenApi.annotations({
    title: "effect-gen-server HTTP session store",
    description: "Sessions and carts, each record in its own supervised fiber"
  }))
{}
