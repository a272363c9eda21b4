/**
 * The JSON codecs of what the SQL layers store and send: records (by the
 * resource's `Schema.toCodecJson`), single field values (for filters pushed
 * down to SQL), decoded inputs and a create's data (the cluster's messages,
 * the stored create input). Every string is escaped for storage
 * (`escape.ts`), so what goes in comes back exactly.
 *
 * **Versions** ({@link decodeStored}): a row records the version of the
 * resource that stored it.
 *
 * - An older row is migrated by the resource's migration from its version;
 *   one that cannot be is {@link Undecodable} (quarantined by the caller).
 * - A row of this version that does not decode is {@link Undecodable} too.
 * - A **newer** row (a rollback, or an older process during a rolling
 *   deploy) is never quarantined: it is decoded with this version's schema,
 *   ignoring the fields this version does not know, which are kept
 *   ({@link Newer.extra}) so that a write of this process stores them again
 *   as they were, under the row's version. A newer row this version cannot
 *   decode is {@link TooNew}: reads and writes of it are refused as
 *   retryable, for an upgraded process to serve.
 *
 * @internal
 */
import { Schema } from "effect"
import type { Pending } from "../record/schedules.js"
import type { Compiled, CompiledAction, Decoded } from "../resource.js"
import { escapeJson, unescapeJson } from "./escape.js"

/** A stored row that cannot be loaded: why, for the quarantine table. @internal */
export class Undecodable extends Error {}

/** A row stored by a newer version that this one cannot decode: never quarantined. @internal */
export class TooNew extends Error {
  constructor(readonly version: number, readonly own: number, readonly reason: string) {
    super(`stored by version ${version}, newer than this process's version ${own}, which cannot read it: ${reason}`)
  }
}

/** What a newer row holds beyond this version's view of it: kept by this process's writes. @internal */
export interface Newer {
  /** The version that stored the row. */
  readonly version: number
  /** The fields this version does not know, as stored (JSON, escaped). */
  readonly extra: { readonly [field: string]: unknown }
}

/** A stored state, decoded: the record, and for a newer row what this version keeps of it unseen. @internal */
export interface Loaded {
  readonly state: unknown
  readonly newer: Newer | undefined
}

/** The JSON codecs of a resource's records and of each of its fields. @internal */
export interface Codecs {
  /** A record as stored (JSON, strings escaped). */
  readonly encode: (record: unknown) => unknown
  readonly decode: (json: unknown) => unknown
  /** A field's value as stored, for a filter pushed down to SQL; `undefined` when the field cannot encode it. */
  readonly encodeField: (field: string, value: unknown) => { readonly json: unknown } | undefined
}

const messageOf = (e: unknown) => e instanceof Error ? e.message : String(e)

const codecsCache = new WeakMap<Compiled, Codecs>()

/** @internal */
export const codecsOf = (resource: Compiled): Codecs => {
  const cached = codecsCache.get(resource)
  if (cached !== undefined) return cached
  const codec = Schema.toCodecJson(resource.resource.schema as Schema.Top) as unknown as Schema.Codec<unknown, unknown>
  const fields = resource.resource.fields as Schema.Struct.Fields
  const fieldEncoders = new Map<string, (u: unknown) => unknown>()
  for (const [name, field] of Object.entries(fields)) {
    fieldEncoders.set(
      name,
      Schema.encodeUnknownSync(Schema.toCodecJson(field as Schema.Top) as unknown as Schema.Codec<unknown>)
    )
  }
  const encode = Schema.encodeUnknownSync(codec)
  const decode = Schema.decodeUnknownSync(codec)
  const out: Codecs = {
    encode: (record) => escapeJson(encode(record)),
    decode: (json) => decode(unescapeJson(json)),
    encodeField: (field, value) => {
      try {
        return { json: escapeJson(fieldEncoders.get(field)!(value)) }
      } catch {
        return undefined
      }
    }
  }
  codecsCache.set(resource, out)
  return out
}

/**
 * Decodes a stored state (JSON as stored) with the resource's current codec:
 * migrating it first when an older version stored it, keeping what this
 * version does not know when a newer one did (see the module). Throws
 * {@link Undecodable} (to quarantine) or {@link TooNew} (to refuse, never
 * quarantine) when it cannot.
 *
 * @internal
 */
export const decodeStored = (resource: Compiled, json: unknown, schemaVersion: number): Loaded => {
  const current = resource.version
  const codecs = codecsOf(resource)
  if (schemaVersion === current) {
    try {
      return { state: codecs.decode(json), newer: undefined }
    } catch (e) {
      throw new Undecodable(`cannot decode version ${schemaVersion}: ${messageOf(e)}`)
    }
  }
  if (schemaVersion > current) {
    let state: unknown
    try {
      // excess fields are ignored by the decoder: they are what this version does not know
      state = codecs.decode(json)
    } catch (e) {
      throw new TooNew(schemaVersion, current, messageOf(e))
    }
    const extra: { [field: string]: unknown } = {}
    if (typeof json === "object" && json !== null) {
      const stored = json as { readonly [field: string]: unknown }
      for (const k of Object.keys(stored)) if (!resource.fieldNames.has(k)) extra[k] = stored[k]
    }
    return { state, newer: { version: schemaVersion, extra } }
  }
  const migration = resource.migrations[schemaVersion]
  if (migration === undefined) throw new Undecodable(`no migration from version ${schemaVersion} to ${current}`)
  let migrated: unknown
  try {
    const old = Schema.decodeUnknownSync(
      Schema.toCodecJson(migration.schema) as unknown as Schema.Codec<unknown, unknown>
    )(unescapeJson(json))
    migrated = migration.migrate(old)
  } catch (e) {
    throw new Undecodable(`cannot migrate from version ${schemaVersion}: ${messageOf(e)}`)
  }
  try {
    // through the current codec both ways: the result is a valid record of this version
    return { state: codecs.decode(codecs.encode(migrated)), newer: undefined }
  } catch (e) {
    throw new Undecodable(`the migration from version ${schemaVersion} made an invalid record: ${messageOf(e)}`)
  }
}

/**
 * A state as stored: this version's encoding, and for a newer row the
 * fields this version does not know, as they were (under the row's
 * version, see {@link storedVersion}).
 *
 * @internal
 */
export const encodeStored = (resource: Compiled, state: unknown, newer: Newer | undefined): unknown => {
  const encoded = codecsOf(resource).encode(state)
  return newer === undefined ? encoded : { ...newer.extra, ...(encoded as object) }
}

/** The version a write stores: this resource's, or a newer row's whose unknown fields it kept. @internal */
export const storedVersion = (resource: Compiled, newer: Newer | undefined): number =>
  newer === undefined ? resource.version : newer.version

/** JSON codecs of what is stored and sent besides records: a decoded input, a create's initial data. @internal */
export interface WireCodecs {
  readonly encodeInput: (action: CompiledAction, decoded: Decoded) => unknown
  readonly decodeInput: (action: CompiledAction, json: unknown) => Decoded
  readonly encodeData: (data: unknown) => unknown
  readonly decodeData: (json: unknown) => any
  /**
   * What an encoded input (and a create's initial data) names that this
   * version of the resource does not know: fields the action does not
   * accept, arguments it does not take, fields the resource does not have.
   * Decoding would drop them silently; a caller admitted them, so a newer
   * version of the resource sent them.
   */
  readonly unknownInput: (action: CompiledAction, input: unknown, data?: unknown) => ReadonlyArray<string>
}

const json = <A>(schema: Schema.Top) => {
  const codec = Schema.toCodecJson(schema) as unknown as Schema.Codec<A, unknown>
  const encode = Schema.encodeUnknownSync(codec)
  const decode = Schema.decodeUnknownSync(codec)
  return { encode: (u: unknown) => escapeJson(encode(u)), decode: (u: unknown) => decode(unescapeJson(u)) }
}

const resultCache = new WeakMap<CompiledAction, ReturnType<typeof json>>()

/**
 * The JSON codec of an action's results (its `success` schema), strings
 * escaped: what a cluster's reply carries and a stored operation id keeps.
 * `undefined` for an action without `success`.
 *
 * @internal
 */
export const resultCodec = (action: CompiledAction) => {
  const success = action.action.success
  if (success === undefined) return undefined
  let codec = resultCache.get(action)
  if (codec === undefined) resultCache.set(action, codec = json(Schema.toType(success)))
  return codec
}

const wireCache = new WeakMap<Compiled, WireCodecs>()

/** @internal */
export const wireCodecs = (resource: Compiled): WireCodecs => {
  const cached = wireCache.get(resource)
  if (cached !== undefined) return cached
  const fields = resource.resource.fields as Schema.Struct.Fields
  const data = json(
    Schema.Struct(Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, Schema.optionalKey(Schema.toType(f))])))
  )
  const inputs = new Map<CompiledAction, ReturnType<typeof json>>()
  const inputOf = (action: CompiledAction) => {
    let codec = inputs.get(action)
    if (codec === undefined) {
      const accepted = action.action.accept === "*" ? [...resource.fieldNames] : action.action.accept
      codec = json(Schema.Struct({
        attributes: Schema.Struct(
          Object.fromEntries(accepted.map((k: string) => [k, Schema.optionalKey(Schema.toType(fields[k]!))]))
        ),
        arguments: Schema.Struct(
          Object.fromEntries(
            Object.entries(action.action.arguments as Schema.Struct.Fields).map(([k, s]) => [k, Schema.toType(s)])
          )
        )
      }))
      inputs.set(action, codec)
    }
    return codec
  }
  const keysOf = (u: unknown): ReadonlyArray<string> =>
    typeof u === "object" && u !== null && !Array.isArray(u) ? Object.keys(u) : []
  const out: WireCodecs = {
    encodeInput: (action, decoded) => inputOf(action).encode(decoded),
    decodeInput: (action, u) => inputOf(action).decode(u) as Decoded,
    encodeData: data.encode,
    decodeData: data.decode,
    unknownInput: (action, input, data) => {
      const accept = action.action.accept as ReadonlyArray<string> | "*"
      const args = action.action.arguments as Schema.Struct.Fields
      const given = (input ?? {}) as { readonly attributes?: unknown; readonly arguments?: unknown }
      const unknown = new Set<string>()
      for (const k of keysOf(given.attributes)) {
        if (!(accept === "*" ? resource.fieldNames.has(k) : accept.includes(k))) {
          unknown.add(`field ${JSON.stringify(k)}`)
        }
      }
      for (const k of keysOf(given.arguments)) if (!Object.hasOwn(args, k)) unknown.add(`argument ${JSON.stringify(k)}`)
      for (const k of keysOf(data)) if (!resource.fieldNames.has(k)) unknown.add(`field ${JSON.stringify(k)}`)
      return [...unknown]
    }
  }
  wireCache.set(resource, out)
  return out
}

/**
 * A record's schedules as its row stores them (JSON): each with its
 * action's input encoded by that action's codec; `null` for none.
 *
 * @internal
 */
export const encodeSchedules = (resource: Compiled, schedules: ReadonlyArray<Pending>): unknown => {
  if (schedules.length === 0) return null
  const wire = wireCodecs(resource)
  return schedules.map((p) => ({
    name: escapeJson(p.name),
    action: p.action,
    input: wire.encodeInput(resource.actions.get(p.action)!, p.input),
    due: p.due,
    ...(p.cron === undefined ? {} : { cron: p.cron })
  }))
}

/**
 * A record's schedules as read from its row. A schedule this version cannot
 * run (its action gone, or its input no longer fitting it) is left out:
 * the record lives on without it.
 *
 * @internal
 */
export const decodeSchedules = (resource: Compiled, json: unknown): ReadonlyArray<Pending> => {
  if (!Array.isArray(json)) return []
  const wire = wireCodecs(resource)
  const schedules: Array<Pending> = []
  for (const s of json) {
    const action = typeof s?.action === "string" ? resource.actions.get(s.action) : undefined
    if (action === undefined || (action.kind !== "update" && action.kind !== "destroy")) continue
    if (typeof s.due !== "number" || typeof s.name !== "string") continue
    try {
      schedules.push({
        name: unescapeJson(s.name) as string,
        action: action.name,
        input: wire.decodeInput(action, s.input),
        due: s.due,
        cron: typeof s.cron === "string" ? s.cron : undefined
      })
    } catch {
      // its input no longer fits its action: left out
    }
  }
  return schedules
}
