/**
 * The inspector's HTTP application: its page and its JSON API, read-only,
 * over the Store in the context, with the state its {@link Monitor} keeps.
 *
 * - `GET /`, `/inspector.js`, `/inspector.css`: the page (no data in it).
 * - `GET /api/resources`: every resource, described, with its counts.
 * - `GET /api/resources/:name/records?filter=&sort=&offset=&limit=`: a page
 *   of records, read with `Store.read`.
 * - `GET /api/resources/:name/record?key=`: one record's state and its recent
 *   events.
 * - `GET /api/events?resource=&key=&limit=`: the recent events, newest first.
 * - `GET /api/events/stream?resource=&key=`: the live events, as Server-Sent
 *   Events: a `ready` event once the stream listens, then `events` batches.
 * - `GET /api/metrics?since=`: the metric samples.
 *
 * Every answer but the page's needs the bearer token when one is set (401
 * without it). Where the inspector listens on a loopback address, it answers
 * only requests addressed to it by that address or `localhost` (403
 * otherwise), so that a web page cannot reach it through a DNS name that
 * resolves to 127.0.0.1. A parameter it cannot read, and a filter or sort
 * the Store refuses, get a 400 whose `error` says why.
 *
 * @internal
 */
import { Deferred, Duration, Effect, Schema, Stream } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import * as Filter from "../../Filter.js"
import * as Query from "../../Query.js"
import type * as Resource from "../../Resource.js"
import * as Store from "../../Store.js"
import * as Codec from "./codec.js"
import { type Entry, type Interest, matches, type Monitor } from "./monitor.js"
import * as Page from "./page.js"
import { BadParameter, parseCount, parseFilter, parseKeyJson, parseSort } from "./params.js"
import * as Script from "./script.js"

/** How the server answers, decided when the inspector starts. @internal */
export interface Config {
  /** The bearer token every API request must carry; none when `undefined`. */
  readonly token: string | undefined
  /** The `Host` headers answered; any when `undefined` (the inspector listens beyond loopback). */
  readonly hosts: ReadonlySet<string> | undefined
  /** How often an event stream sends what arrived. */
  readonly tickMillis: number
  /** How long an idle event stream waits before a keep-alive comment. */
  readonly keepAliveMillis: number
  /** The restart policy the data layer applies to a resource's records (see `DataLayer.Service.restartOf`). */
  readonly restartOf: (resource: Resource.Any) => Resource.RestartPolicy
}

const commonHeaders = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY"
}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  HttpServerResponse.jsonUnsafe(body, { status, headers: { ...commonHeaders, ...headers } })

const problem = (status: number, error: string, headers: Record<string, string> = {}) =>
  json({ error }, status, headers)

/** Constant-time comparison of two strings (of the same length). */
const sameSecret = (a: string, b: string): boolean => {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i)
  return diff === 0
}

/** A field's type in words, from the JSON Schema of its JSON form. */
const describeJsonSchema = (node: any): string => {
  if (node === undefined || node === null || typeof node !== "object") return "unknown"
  if (Array.isArray(node.enum)) return node.enum.map((v: unknown) => JSON.stringify(v)).join(" | ")
  if (Array.isArray(node.anyOf)) return [...new Set(node.anyOf.map(describeJsonSchema))].join(" | ")
  if (node.type === "array") return `array of ${describeJsonSchema(node.items)}`
  if (typeof node.type === "string") return node.type
  if (Array.isArray(node.type)) return node.type.join(" | ")
  return "unknown"
}

/** What the page shows of a resource's definition, made once. */
const describeResource = (resource: Resource.Any, restart: Resource.RestartPolicy) => {
  let properties: Record<string, unknown> = {}
  let required: ReadonlyArray<string> = []
  try {
    // a JSON Schema document is open JSON: its members are read below as they are
    const document = Schema.toJsonSchemaDocument(Schema.toCodecJson(resource.schema) as Schema.Top) as any
    properties = document.schema?.properties ?? {}
    required = document.schema?.required ?? []
  } catch {
    // a field without a JSON form: its type is shown as unknown
  }
  const duration = (d: Duration.Duration | undefined) => d === undefined ? null : Duration.format(d)
  return {
    name: resource.name,
    primaryKey: resource.primaryKey,
    fields: Object.keys(resource.fields).map((name) => ({
      name,
      type: describeJsonSchema(properties[name]),
      optional: !required.includes(name)
    })),
    actions: Object.entries(resource.actions as Record<string, { readonly kind: string }>).map(([name, action]) => ({
      name,
      kind: action.kind
    })),
    durable: resource.durable,
    indexes: resource.indexes,
    inactivityTimeout: duration(resource.inactivityTimeout),
    maximumLifetime: duration(resource.maximumLifetime),
    hibernateAfter: duration(resource.hibernateAfter),
    restart
  }
}

/** The query of a records page, or why it cannot be made. */
const recordsQuery = (resource: Resource.Any, params: URLSearchParams) => {
  const codec = Codec.of(resource)
  let query: Query.Query<any> = Query.make(resource)
  const filterText = params.get("filter")
  if (filterText !== null && filterText.trim() !== "") {
    const parsed = parseFilter(filterText)
    if (parsed instanceof BadParameter) return parsed
    const malformed = Filter.check(parsed)
    if (malformed !== undefined) return new BadParameter(`filter: ${malformed}`)
    query = Query.filter(query, Codec.decodeFilter(codec, parsed) as Filter.Filter<{}>)
  }
  const sort = parseSort(params.get("sort") ?? "")
  if (sort instanceof BadParameter) return sort
  for (const key of sort) query = Query.sort(query, key.field, key.direction)
  const offset = parseCount("offset", params.get("offset"), 0, 1_000_000_000)
  if (offset instanceof BadParameter) return offset
  const limit = parseCount("limit", params.get("limit"), 50, 500, 1)
  if (limit instanceof BadParameter) return limit
  return { query: query.pipe(Query.offset(offset), Query.limit(limit + 1)), offset, limit, codec }
}

/** The filter pinning a record by its decoded key: answered from the registry (or by primary key in SQL). */
const byKey = (resource: Resource.Any, key: { readonly [field: string]: unknown }): Filter.Expr => ({
  _tag: "And",
  filters: resource.primaryKey.map((field) => ({ _tag: "Eq", field, value: key[field] }))
})

/**
 * The inspector's application over `monitor`.
 *
 * @internal
 */
export const make = (monitor: Monitor, config: Config) => {
  const described = monitor.resources.map((resource) => describeResource(resource, config.restartOf(resource)))
  const encode = (entry: Entry) => Codec.encodeEvent(monitor.byName, entry.seq, entry.at, entry.event)

  /** The resource named in a path, or a 404 naming those the inspector knows. */
  const resourceNamed = (name: string) => {
    const resource = monitor.byName.get(decodeURIComponent(name))
    return resource !== undefined ? resource : problem(
      404,
      `no resource named ${JSON.stringify(decodeURIComponent(name))}: the inspector knows ${
        monitor.resources.map((r) => r.name).join(", ")
      }`
    )
  }

  /** The events wanted by `resource` and `key` parameters, or why they cannot be read. */
  const interestOf = (params: URLSearchParams): Interest | HttpServerResponse.HttpServerResponse => {
    const name = params.get("resource")
    if (name === null || name === "") {
      return params.get("key") === null ? {} : problem(400, "key: a key needs its resource")
    }
    const resource = resourceNamed(name)
    if (HttpServerResponse.isHttpServerResponse(resource)) return resource
    if (params.get("key") === null) return { resource: resource.name }
    const json = parseKeyJson(params.get("key"))
    if (json instanceof BadParameter) return problem(400, json.message)
    const decoded = Codec.of(resource).decodeKey(json)
    return typeof decoded === "string" ? problem(400, decoded) : { resource: resource.name, key: decoded.key }
  }

  const matchesInterest = (interest: Interest) => (event: Entry["event"]) => matches(interest, event)

  const resources = Effect.map(monitor.counts, (counts) =>
    json({
      resources: described.map((resource, i) => ({ ...resource, ...counts[i] })),
      events: { received: monitor.recent.pushed, kept: monitor.recent.size, capacity: monitor.recent.capacity },
      sampleMillis: monitor.sampleMillis,
      // the Store's time (its Clock), which the page shows
      at: monitor.time()
    }))

  const records = (name: string, params: URLSearchParams) => {
    const resource = resourceNamed(name)
    if (HttpServerResponse.isHttpServerResponse(resource)) return Effect.succeed(resource)
    const made = recordsQuery(resource, params)
    if (made instanceof BadParameter) return Effect.succeed(problem(400, made.message))
    return Store.read(made.query).pipe(
      Effect.map((found) =>
        json({
          resource: resource.name,
          offset: made.offset,
          limit: made.limit,
          more: found.length > made.limit,
          records: found.slice(0, made.limit).map((record) => ({
            key: made.codec.keyOf(record),
            record: made.codec.record(record)
          }))
        })
      ),
      Effect.catchTag("ValidationError", (error) => Effect.succeed(problem(400, error.message))),
      Effect.catchTag("StoreClosed", (error) => Effect.succeed(problem(503, error.message)))
    )
  }

  const record = (name: string, params: URLSearchParams) => {
    const resource = resourceNamed(name)
    if (HttpServerResponse.isHttpServerResponse(resource)) return Effect.succeed(resource)
    const parsed = parseKeyJson(params.get("key"))
    if (parsed instanceof BadParameter) return Effect.succeed(problem(400, parsed.message))
    const codec = Codec.of(resource)
    const decoded = codec.decodeKey(parsed)
    if (typeof decoded === "string") return Effect.succeed(problem(400, decoded))
    const query = Query.filter(Query.make(resource), byKey(resource, decoded.key) as Filter.Filter<{}>)
    return Store.read(query).pipe(
      Effect.flatMap((found) => {
        if (found.length === 0) {
          return Effect.succeed(
            problem(404, `no record of ${resource.name} with key ${JSON.stringify(codec.key(decoded.key))}`)
          )
        }
        const interest = { resource: resource.name, key: decoded.key }
        // a read, not activity; `null` when they cannot be read now (the record gone since, its owner unreachable)
        const pending = Effect.orElseSucceed(
          Effect.map(Store.schedules(resource, decoded.key as never), Codec.schedules),
          () => null
        )
        return Effect.map(pending, (schedules) =>
          json({
            resource: resource.name,
            key: codec.key(decoded.key),
            record: codec.record(found[0]),
            events: monitor.recent.newest(50, matchesInterest(interest)).map(encode),
            schedules
          }))
      }),
      Effect.catchTag("ValidationError", (error) => Effect.succeed(problem(400, error.message))),
      Effect.catchTag("StoreClosed", (error) => Effect.succeed(problem(503, error.message)))
    )
  }

  const recentEvents = (params: URLSearchParams) => {
    const interest = interestOf(params)
    if (HttpServerResponse.isHttpServerResponse(interest)) return interest
    const limit = parseCount("limit", params.get("limit"), 100, monitor.recent.capacity)
    if (limit instanceof BadParameter) return problem(400, limit.message)
    return json({
      received: monitor.recent.pushed,
      capacity: monitor.recent.capacity,
      events: monitor.recent.newest(limit, matchesInterest(interest)).map(encode)
    })
  }

  const frame = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`

  const stream = (params: URLSearchParams) => {
    const interest = interestOf(params)
    if (HttpServerResponse.isHttpServerResponse(interest)) return interest
    const body = Stream.unwrap(Effect.gen(function*() {
      const listener = yield* monitor.listen(interest)
      let idle = 0
      const tick = Effect.map(Effect.sleep(config.tickMillis), () => {
        const { dropped, entries } = monitor.drain(listener)
        if (entries.length === 0 && dropped === 0) {
          idle += config.tickMillis
          if (idle < config.keepAliveMillis) return ""
          idle = 0
          return ": keep-alive\n\n"
        }
        idle = 0
        return frame("events", { events: entries.map(encode), dropped })
      })
      return Stream.make(frame("ready", { received: monitor.recent.pushed })).pipe(
        Stream.concat(Stream.fromEffectRepeat(tick)),
        Stream.filter((text) => text !== ""),
        Stream.interruptWhen(Deferred.await(monitor.closing)),
        Stream.encodeText
      )
    }))
    return HttpServerResponse.stream(body, {
      contentType: "text/event-stream",
      headers: { ...commonHeaders, "x-accel-buffering": "no" }
    })
  }

  const metrics = (params: URLSearchParams) => {
    const since = Number(params.get("since") ?? 0)
    if (!Number.isFinite(since)) {
      return problem(400, `since: expected a time in milliseconds, got ${params.get("since")}`)
    }
    return json({
      sampleMillis: monitor.sampleMillis,
      capacity: monitor.samples.capacity,
      samples: monitor.samples.since(0).filter((sample) => sample.at > since)
    })
  }

  const page = (body: string, contentType: string, headers: Record<string, string> = {}) =>
    HttpServerResponse.text(body, { contentType, headers: { ...commonHeaders, ...headers } })

  const route = (path: string, params: URLSearchParams) => {
    switch (path) {
      case "/api/resources":
        return resources
      case "/api/events":
        return Effect.succeed(recentEvents(params))
      case "/api/events/stream":
        return Effect.succeed(stream(params))
      case "/api/metrics":
        return Effect.succeed(metrics(params))
    }
    const match = /^\/api\/resources\/([^/]+)\/(records|record)$/.exec(path)
    if (match !== null) return match[2] === "records" ? records(match[1]!, params) : record(match[1]!, params)
    return Effect.succeed(problem(404, `no such page: ${path}`))
  }

  return Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (config.hosts !== undefined && !config.hosts.has(request.headers["host"] ?? "")) {
      return problem(
        403,
        `this inspector answers requests addressed to ${[...config.hosts][0]}, not ${
          JSON.stringify(request.headers["host"] ?? "")
        }`
      )
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return problem(405, "the inspector is read-only: GET and HEAD only", { allow: "GET, HEAD" })
    }
    const url = new URL(request.url, "http://inspector")
    switch (url.pathname) {
      case "/":
        return page(Page.html, "text/html; charset=utf-8", { "content-security-policy": Page.contentSecurityPolicy })
      case "/inspector.js":
        return page(Script.script, "text/javascript; charset=utf-8")
      case "/inspector.css":
        return page(Page.style, "text/css; charset=utf-8")
      case "/favicon.ico":
        return HttpServerResponse.empty({ status: 204 })
    }
    if (config.token !== undefined) {
      const given = request.headers["authorization"] ?? ""
      if (!sameSecret(given, `Bearer ${config.token}`)) {
        return problem(401, "this inspector needs its bearer token: Authorization: Bearer <token>", {
          "www-authenticate": "Bearer realm=\"effect-gen-server inspector\""
        })
      }
    }
    return yield* route(url.pathname, url.searchParams)
  })
}
