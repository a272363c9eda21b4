/**
 * A resource compiled for the runtime: decoders built once, key encoding,
 * action lookup, lifecycle settings in milliseconds.
 *
 * @internal
 */
import { Duration, Exit, Schema, SchemaIssue } from "effect"
import type * as Action from "../Action.js"
import { UnknownAction, ValidationError } from "../Errors.js"
import type * as Resource from "../Resource.js"

/** @internal */
export interface Decoded {
  readonly attributes: { readonly [field: string]: unknown }
  readonly arguments: { readonly [name: string]: unknown }
}

/** @internal */
export interface CompiledAction {
  readonly name: string
  readonly kind: Action.Kind
  readonly action: Action.Action.Any
  readonly decode: (input: unknown) => Decoded | ValidationError
}

/** @internal */
export interface Compiled {
  readonly resource: Resource.Any
  readonly name: string
  readonly keyFields: ReadonlyArray<string>
  readonly fieldNames: ReadonlySet<string>
  readonly actions: ReadonlyMap<string, CompiledAction>
  readonly primaryDestroy: CompiledAction
  readonly idleMillis: number | undefined
  readonly lifetimeMillis: number | undefined
  readonly hasTimeouts: boolean
  readonly maxRestarts: number
  readonly withinMillis: number
  readonly indexes: ReadonlyArray<string>
  /** The encoded key of an object holding valid key fields. */
  readonly encodeKey: (record: any) => string
  /** Picks and validates the key fields of a key or record. */
  readonly checkKey: (input: unknown) => { readonly [field: string]: unknown } | ValidationError
  /** Validates a whole record (type side, no excess fields). */
  readonly validate: (record: unknown) => any | ValidationError
  readonly action: (name: unknown, kind: Action.Kind) => CompiledAction | UnknownAction
}

const formatter = SchemaIssue.makeFormatterDefault()

/** @internal */
export const validationError = (resource: string, what: string, issue: SchemaIssue.Issue): ValidationError =>
  new ValidationError({ resource, message: `${resource}: invalid ${what}: ${formatter(issue)}`, issue })

/** @internal */
export const isPlainObject = (u: unknown): u is { readonly [k: string]: unknown } => {
  if (typeof u !== "object" || u === null || Array.isArray(u)) return false
  const proto = Object.getPrototypeOf(u)
  return proto === Object.prototype || proto === null
}

const parseOptions = { onExcessProperty: "error", errors: "all" } as const

const encodeValue = (v: unknown): string =>
  typeof v === "string"
    ? JSON.stringify(v)
    : typeof v === "bigint"
    ? `${v}n`
    : typeof v === "number" || typeof v === "boolean"
    ? String(v)
    : JSON.stringify(v) ?? String(v)

const cache = new WeakMap<Resource.Any, Compiled>()

/** @internal */
export const compile = (resource: Resource.Any): Compiled => {
  const cached = cache.get(resource)
  if (cached !== undefined) return cached
  const name = resource.name
  const fields = resource.fields as Schema.Struct.Fields
  const fieldNames = new Set(Object.keys(fields))
  const keyFields = resource.primaryKey
  const recordDecoder = Schema.decodeUnknownExit(Schema.toType(resource.schema), parseOptions)
  const keyStruct = Schema.Struct(Object.fromEntries(keyFields.map((k) => [k, Schema.toType(fields[k]!)])))
  const isKey = Schema.is(keyStruct)
  const keyDecoder = Schema.decodeUnknownExit(keyStruct, parseOptions)

  const single = keyFields.length === 1 ? keyFields[0]! : undefined
  const encodeKey = single !== undefined
    ? (record: any) => {
      const v = record[single]
      return typeof v === "string" ? v : "\u0000" + encodeValue(v)
    }
    : (record: any) => keyFields.map((k) => encodeValue(record[k])).join("\u0000")

  const checkKey = (input: unknown) => {
    if (typeof input !== "object" || input === null) {
      return new ValidationError({
        resource: name,
        message: `${name}: a key must be an object with the fields ${keyFields.join(", ")}, got ${
          input === null ? "null" : typeof input
        }`
      })
    }
    const key: { [field: string]: unknown } = {}
    for (const k of keyFields) key[k] = (input as any)[k]
    if (isKey(key)) return key
    const exit = keyDecoder(key)
    return Exit.isSuccess(exit) ? exit.value : validationError(name, "key", exit.cause.reasons[0] !== undefined
      ? (exit.cause.reasons[0] as any).error.issue
      : new SchemaIssue.InvalidValue(undefined as any))
  }

  const validate = (record: unknown) => {
    const exit = recordDecoder(record)
    return Exit.isSuccess(exit) ? exit.value : validationError(name, "record", (exit.cause.reasons[0] as any).error.issue)
  }

  const actions = new Map<string, CompiledAction>()
  for (const [actionName, action] of Object.entries(resource.actions as { [name: string]: Action.Action.Any })) {
    const accepted = action.accept === "*" ? [...fieldNames] : action.accept
    const inputFields: { [name: string]: Schema.Top } = {}
    for (const k of accepted) inputFields[k] = Schema.optionalKey(Schema.toType(fields[k]!))
    const argNames = Object.keys(action.arguments)
    for (const k of argNames) inputFields[k] = action.arguments[k]
    const inputDecoder = Schema.decodeUnknownExit(Schema.Struct(inputFields) as any, parseOptions)
    const acceptedSet = new Set(accepted)
    const decode = (input: unknown): Decoded | ValidationError => {
      const raw = input === undefined ? {} : input
      if (!isPlainObject(raw)) {
        return new ValidationError({
          resource: name,
          message: `${name}.${actionName}: the input must be a plain object, got ${
            Array.isArray(raw) ? "an array" : raw === null ? "null" : typeof raw === "object" ? raw.constructor?.name ?? "an object" : typeof raw
          }`
        })
      }
      const exit = inputDecoder(raw)
      if (Exit.isFailure(exit)) {
        return validationError(`${name}`, `input of action ${actionName}`, (exit.cause.reasons[0] as any).error.issue)
      }
      const value = exit.value as { [k: string]: unknown }
      const attributes: { [k: string]: unknown } = {}
      const args: { [k: string]: unknown } = {}
      for (const k in value) {
        if (acceptedSet.has(k)) attributes[k] = value[k]
        else args[k] = value[k]
      }
      return { attributes, arguments: args }
    }
    actions.set(actionName, { name: actionName, kind: action.kind, action, decode })
  }

  const action = (actionName: unknown, kind: Action.Kind) => {
    const found = typeof actionName === "string" && Object.prototype.hasOwnProperty.call(resource.actions, actionName)
      ? actions.get(actionName)
      : undefined
    if (found === undefined) {
      return new UnknownAction({
        resource: name,
        action: String(actionName),
        message: `${name} has no action ${JSON.stringify(String(actionName))}`
      })
    }
    if (found.kind !== kind) {
      return new UnknownAction({
        resource: name,
        action: found.name,
        message: `${name}.${found.name} is a ${found.kind} action, not a ${kind} action`
      })
    }
    return found
  }

  const primaryDestroy = actions.get("destroy")?.kind === "destroy"
    ? actions.get("destroy")!
    : [...actions.values()].find((a) => a.kind === "destroy")
  const millis = (d: Duration.Duration | undefined) => d === undefined ? undefined : Duration.toMillis(d)
  const idleMillis = millis(resource.inactivityTimeout)
  const lifetimeMillis = millis(resource.maximumLifetime)
  const compiled: Compiled = {
    resource,
    name,
    keyFields,
    fieldNames,
    actions,
    primaryDestroy: primaryDestroy ?? {
      name: "destroy",
      kind: "destroy",
      action: { kind: "destroy", accept: [], arguments: {}, change: undefined } as any,
      decode: () => ({ attributes: {}, arguments: {} })
    },
    idleMillis,
    lifetimeMillis,
    hasTimeouts: idleMillis !== undefined || lifetimeMillis !== undefined,
    maxRestarts: resource.restartIntensity.maxRestarts,
    withinMillis: Duration.toMillis(resource.restartIntensity.within),
    indexes: resource.indexes,
    encodeKey,
    checkKey,
    validate,
    action
  }
  cache.set(resource, compiled)
  return compiled
}
