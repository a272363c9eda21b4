/**
 * The cluster's protocol: one `effect/cluster` entity type per resource,
 * whose messages are a record's calls (`Create`, `Update`, `Destroy`,
 * `Get`, `Expire`, and `Probe` for cycles across runners), and the errors
 * they cross the wire with: the store's own, each action's declared ones
 * (decoded as themselves, `catchTag`-able) and `Retryable`, the owner's
 * "not now" that only a caller ever sees.
 *
 * @internal
 */
import { Context, Schema } from "effect"
import { Entity } from "effect/cluster"
import { Rpc } from "effect/rpc"
import type * as Changeset from "../../Changeset.js"
import { StoreError } from "../../Errors.js"
import type { Compiled, CompiledAction } from "../resource.js"
import { decodeStored, encodeStored, type Newer, resultCodec, storedVersion, wireCodecs } from "../sql/codec.js"
import { escapeJson, unescapeJson } from "../sql/escape.js"

/**
 * The calls of records a call runs on behalf of (run tokens,
 * `"Resource/entityId#<process>:<n>"`), outermost first: carried with every
 * message, so a cycle through records' running calls on any runner is refused
 * with `ReentrantCall` instead of deadlocking.
 *
 * @internal
 */
export const CurrentCallers = Context.Reference<ReadonlyArray<string>>("effect-gen-server/cluster/CurrentCallers", {
  defaultValue: () => []
})

/**
 * The errors a record's messages can fail with, decoded on the caller's side
 * into the same classes: the store's own, and every error an action of the
 * resource declares (`error`), so that a declared error reaches a caller in
 * another process as itself, `catchTag`-able.
 *
 * @internal
 */
// typed as the store's errors: the declared ones are the action's own types, checked at the Store call
export const errorSchemaOf = (resource: Compiled): typeof StoreError => {
  const cached = errorSchemas.get(resource)
  if (cached !== undefined) return cached as typeof StoreError
  const declared = [
    ...new Set(
      [...resource.actions.values()].map((action) => action.action.error as Schema.Top | undefined).filter((
        error
      ): error is Schema.Top => error !== undefined)
    )
  ]
  const schema = declared.length === 0 ? StoreError : Schema.Union([StoreError, ...declared])
  errorSchemas.set(resource, schema)
  return schema as typeof StoreError
}

const errorSchemas = new WeakMap<Compiled, Schema.Top>()

/** Whether a failure crosses the wire as itself: a store error or one an action of the resource declares. @internal */
const knownErrors = new WeakMap<Compiled, (u: unknown) => boolean>()
export const isKnownError = (resource: Compiled, u: unknown): boolean => {
  let is = knownErrors.get(resource)
  if (is === undefined) knownErrors.set(resource, is = Schema.is(errorSchemaOf(resource)) as (u: unknown) => boolean)
  return is(u)
}

/**
 * The owner's answer when a call could not be served now, for a reason that
 * passes: its commit was fenced (another runner committed a newer state of
 * the record: its shard moved), storage could not be read or did not confirm
 * the commit, or the record was stored by a newer version of its resource
 * than the owner runs. Never seen by a Store caller: the caller re-sends the
 * call (same operation id), which may reach another owner, and counts the
 * attempt as `applied` says; when its retries run out, it fails with
 * `Unavailable`, whose `lastFailure` is this message.
 */
export const retryableTag = "effect-gen-server/cluster/Retryable"
export class Retryable extends Schema.TaggedError<Retryable>()(retryableTag, {
  applied: Schema.Literals(["no", "unknown"]),
  message: Schema.String
}) {}

/** What a record's messages can fail with on the wire: the store's errors, the declared ones, `Retryable`. */
export type WireError = StoreError | Retryable

const wireErrors = new WeakMap<Compiled, Schema.Top>()
const wireErrorsOf = (resource: Compiled): Schema.Codec<WireError, unknown> => {
  let schema = wireErrors.get(resource)
  if (schema === undefined) wireErrors.set(resource, schema = Schema.Union([errorSchemaOf(resource), Retryable]))
  return schema as unknown as Schema.Codec<WireError, unknown>
}

/** The entity protocol of one resource. @internal */
export const protocolOf = (resource: Compiled) =>
  Entity.make(resource.name, [
    Rpc.make("Create", {
      payload: {
        action: Schema.String,
        op: Schema.String,
        data: Schema.Unknown,
        input: Schema.Unknown,
        callers: Schema.Array(Schema.String),
        /** The caller's version of the resource (absent from a caller of an earlier release: the owner's). */
        version: Schema.optionalKey(Schema.Number)
      },
      success: Schema.Unknown,
      error: wireErrorsOf(resource)
    }),
    Rpc.make("Update", {
      payload: {
        action: Schema.String,
        op: Schema.String,
        input: Schema.Unknown,
        callers: Schema.Array(Schema.String),
        /** The caller's version of the resource (absent from a caller of an earlier release). */
        version: Schema.optionalKey(Schema.Number)
      },
      success: Schema.Unknown,
      error: wireErrorsOf(resource)
    }),
    Rpc.make("Destroy", {
      payload: { action: Schema.String, op: Schema.String, callers: Schema.Array(Schema.String) },
      /** The action's result (`resultReplyOf`) where it declares `success`, otherwise nothing. */
      success: Schema.Unknown,
      error: wireErrorsOf(resource)
    }),
    Rpc.make("Get", {
      payload: { callers: Schema.Array(Schema.String) },
      success: Schema.Unknown,
      error: wireErrorsOf(resource)
    }),
    Rpc.make("Expire", { payload: { now: Schema.Number }, success: Schema.Boolean, error: wireErrorsOf(resource) }),
    // the record's pending schedules, with their retries (`schedulesReplyOf`)
    Rpc.make("Schedules", { success: Schema.Unknown, error: wireErrorsOf(resource) }),
    // whether the record's running call waits, through records' calls on any runner, on one of `callers`
    Rpc.make("Probe", {
      payload: { callers: Schema.Array(Schema.String), visited: Schema.Array(Schema.String) },
      success: Schema.Boolean
    })
  ])

export type Protocol = ReturnType<typeof protocolOf>

/**
 * Where a reply's record says which version of its resource stored it: a
 * key no record's field can have (a field's key holding `\u0000` is stored
 * escaped, `sql/escape.ts`), which a caller that does not look for it
 * ignores.
 */
const versionKey = "\u0000version"

/**
 * A record in an owner's reply: as its row stores it (`newer`: a newer row's,
 * whose fields this version does not know are kept), with the version that
 * stored it, so a caller running another version of the resource decodes it
 * as it decodes that row.
 *
 * @internal
 */
export const replyOf = (resource: Compiled, record: unknown, newer: Newer | undefined): unknown => ({
  ...(encodeStored(resource, record, newer) as object),
  [versionKey]: storedVersion(resource, newer)
})

/**
 * The record of an owner's reply, as this version reads it (migrated when an
 * older version stored it); a reply without a version (an owner of an
 * earlier release) as this version's. Throws `TooNew` when this version
 * cannot read it.
 *
 * @internal
 */
export const recordOf = (resource: Compiled, reply: unknown): unknown => {
  if (typeof reply !== "object" || reply === null || !(versionKey in reply)) {
    return wireCodecs(resource).decodeData(reply)
  }
  const { [versionKey]: version, ...stored } = reply as { readonly [versionKey]: number }
  return decodeStored(resource, stored, version).state
}

/** Where a reply carries an action's result (`success`) instead of a record: a key no record's field has. */
const resultKey = "\u0000result"

/**
 * An owner's reply for an action that declares `success`: its result,
 * encoded with that schema. A call whose action declares none is answered
 * with the record (`replyOf`), or nothing (a destroy).
 *
 * @internal
 */
export const resultReplyOf = (action: CompiledAction, result: unknown): unknown => ({
  [resultKey]: resultCodec(action)!.encode(result)
})

/**
 * What a caller answers a write's reply with: the action's result, decoded
 * with its `success` schema, where the action declares one; otherwise the
 * record (`recordOf`), or, for a destroy, nothing. Throws if the reply
 * cannot be read by this version.
 *
 * @internal
 */
export const answerOf = (resource: Compiled, action: CompiledAction, reply: unknown): unknown => {
  const codec = resultCodec(action)
  if (codec === undefined) return action.kind === "destroy" ? undefined : recordOf(resource, reply)
  if (typeof reply !== "object" || reply === null || !(resultKey in reply)) {
    throw new TypeError(`${resource.name}.${action.name}: the reply holds no result (its owner does not declare one)`)
  }
  return codec.decode((reply as { readonly [resultKey]: unknown })[resultKey])
}

/**
 * An owner's answer to `Schedules`: the record's pending schedules as
 * `Store.schedules` lists them, each action's input encoded by its codec.
 *
 * @internal
 */
export const schedulesReplyOf = (resource: Compiled, pending: ReadonlyArray<Changeset.PendingSchedule>): unknown => {
  const wire = wireCodecs(resource)
  return pending.map((p) => {
    const action = resource.actions.get(p.action)!
    const accepted = action.action.accept === "*" ? resource.fieldNames : new Set<string>(action.action.accept)
    const attributes: { [field: string]: unknown } = {}
    const args: { [name: string]: unknown } = {}
    for (const [k, v] of Object.entries(p.arguments)) (accepted.has(k) ? attributes : args)[k] = v
    return {
      name: escapeJson(p.name),
      action: p.action,
      input: wire.encodeInput(action, { attributes, arguments: args }),
      at: p.at.getTime(),
      ...(p.cron === undefined ? {} : { cron: p.cron }),
      running: p.running
    }
  })
}

/** The schedules of an owner's `Schedules` reply, as this version reads them (those it cannot, left out). @internal */
export const schedulesOf = (resource: Compiled, reply: unknown): ReadonlyArray<Changeset.PendingSchedule> => {
  if (!Array.isArray(reply)) return []
  const wire = wireCodecs(resource)
  const out: Array<Changeset.PendingSchedule> = []
  for (const s of reply) {
    const action = typeof s?.action === "string" ? resource.actions.get(s.action) : undefined
    if (action === undefined) continue
    try {
      const input = wire.decodeInput(action, s.input)
      out.push({
        name: unescapeJson(s.name) as string,
        action: action.name,
        arguments: { ...input.attributes, ...input.arguments },
        at: new Date(s.at),
        ...(typeof s.cron === "string" ? { cron: s.cron } : {}),
        running: s.running === true
      })
    } catch {
      // its input no longer fits its action here: left out
    }
  }
  return out
}
