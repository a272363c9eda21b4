/**
 * A resource compiled for the runtime: decoders built once, key encoding,
 * action lookup, lifecycle settings in milliseconds.
 *
 * @internal
 */
import { Cause, Duration, Exit, Schema, SchemaIssue } from "effect"
import * as Action from "../Action.js"
import { type Issue, UnknownAction, ValidationError } from "../Errors.js"
import type * as Resource from "../Resource.js"
import { maxKeyBytes, oversizedKey } from "./sql/escape.js"
import * as Storable from "./storable.js"

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
  /**
   * Checks a result against the action's `success` schema (`set`: whether
   * the action set one, or it is `undefined` for want of one): why it does not
   * fit (or could not cross a data layer as JSON), `undefined` when it does.
   * `undefined` for an action without `success`.
   */
  readonly checkResult: ((value: unknown, set: boolean) => ValidationError | undefined) | undefined
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
  /** How long a record stays awake without activity (`undefined`: for ever). */
  readonly hibernateMillis: number | undefined
  /** Whether direct activity is recorded: the resource has timeouts or hibernates. */
  readonly tracksActivity: boolean
  /** Whether committed state is kept in SQL (`durable: true`). */
  readonly durable: boolean
  /** The version of the stored state (1 unless declared). */
  readonly version: number
  /** Migrations from older stored versions, by version. */
  readonly migrations: { readonly [version: number]: Resource.Migration<unknown> }
  /** The restart policy on one process, the durable resources' included (see `Resource.restart`). */
  readonly restart: Resource.RestartPolicy
  /** The restart policy where records are stored (durable, cluster): {@link storedRestart}. */
  readonly storedRestart: Resource.RestartPolicy
  readonly maxRestarts: number
  readonly withinMillis: number
  readonly indexes: ReadonlyArray<string>
  /** The encoded key of an object holding valid key fields. */
  readonly encodeKey: (record: any) => string
  /** The key object an encoded key encodes (the inverse of `encodeKey`, for messages and events). */
  readonly decodeKey: (encoded: string) => { readonly [field: string]: unknown }
  /**
   * Picks and validates the key fields of a key or record: a key whose
   * stored form is over `maxKeyBytes` is refused on every layer.
   */
  readonly checkKey: (input: unknown) => { readonly [field: string]: unknown } | ValidationError
  /** `ValidationError` when the encoded key is longer than any layer stores; `undefined` when it fits. */
  readonly checkKeySize: (encoded: string) => ValidationError | undefined
  /** Validates a whole record (type side, no excess fields). */
  readonly validate: (record: unknown) => any | ValidationError
  /** Validates a valid record with some fields changed; only the changed fields are checked. */
  readonly validateChanges: (record: any, changes: { readonly [field: string]: unknown }) => any | ValidationError
  readonly action: (name: unknown, kind: Action.Kind) => CompiledAction | UnknownAction
}

const formatter = SchemaIssue.makeFormatterDefault()
const listIssues = SchemaIssue.makeFormatterStandardSchemaV1()

/** A Schema issue as JSON: the path and message of each problem (a symbol in a path becomes its description). */
const issuesOf = (issue: SchemaIssue.Issue): ReadonlyArray<Issue> =>
  listIssues(issue).issues.map(({ message, path }) => ({
    path: (path ?? []).map((k) => {
      const key = typeof k === "object" ? k.key : k
      return typeof key === "symbol" ? String(key) : key
    }),
    message
  }))

/** @internal */
export const validationError = (resource: string, what: string, issue: SchemaIssue.Issue): ValidationError =>
  new ValidationError({
    resource,
    message: `${resource}: invalid ${what}: ${formatter(issue)}`,
    issues: issuesOf(issue)
  })

/**
 * The check of an action's results against its `success` schema: encoded
 * with the schema's JSON codec (what crosses a cluster's wire and what a
 * stored operation id keeps), and refused where the encoding reads back as
 * another value (`storable.ts`).
 */
const resultCheck = (resource: string, action: string, success: Schema.Top) => {
  // a result's schema is plain (no encoding services: it crosses data layers as JSON), which `Schema.Top` cannot say
  const encode = Schema.encodeUnknownExit(Schema.toCodecJson(Schema.toType(success)) as any, { errors: "all" })
  const storable = Storable.checkOf(success as Schema.Struct.Fields[string])
  return (value: unknown, set: boolean): ValidationError | undefined => {
    const exit = encode(value)
    if (Exit.isFailure(exit)) {
      const what = set
        ? `result of action ${action}`
        : `result of action ${action}: it set none (Changeset.result), and its success schema refuses undefined`
      return validationError(resource, what, issueOf(exit.cause))
    }
    const why = storable?.(value)
    return why === undefined ? undefined : new ValidationError({
      resource,
      message: `${resource}: invalid result of action ${action}: ${why}`,
      issues: [{ path: [], message: why }]
    })
  }
}

/** @internal */
export const isPlainObject = (u: unknown): u is { readonly [k: string]: unknown } => {
  if (typeof u !== "object" || u === null || Array.isArray(u)) return false
  const proto = Object.getPrototypeOf(u)
  return proto === Object.prototype || proto === null
}

const parseOptions = { onExcessProperty: "error", errors: "all" } as const

/** The issue of a failed decode (its `SchemaError`'s); a bare one when the failure holds none. */
const issueOf = (cause: Cause.Cause<Schema.SchemaError>): SchemaIssue.Issue => {
  const error = Cause.findErrorOption(cause)
  return error._tag === "Some" ? error.value.issue : new SchemaIssue.InvalidValue()
}

/**
 * The encoding of one key value, injective over the values a key field may hold: two values encode
 * alike iff they are the same key. Primitives compare by SameValueZero (`0` and `-0` are one key, `NaN`
 * is one key), dates by their time, arrays element by element, plain objects field by field in any
 * order. Each type has its own first character, so values of different types never meet: a string
 * starts with `"` (JSON), a number with a digit, `-`, `N` or `I`, a bigint is digits ending in `n`,
 * `true`, `false`, `null`, `undefined`, `D` a date, `[` an array, `{` a plain object, `?` anything else
 * (by its JSON: injective only as far as JSON is). No encoding holds a raw `\u0000`, the separator of
 * composite keys.
 */
const encodeValue = (v: unknown): string => {
  switch (typeof v) {
    case "string":
      return JSON.stringify(v)
    case "number":
      return String(v)
    case "bigint":
      return `${v}n`
    case "boolean":
    case "undefined":
      return String(v)
    case "object": {
      if (v === null) return "null"
      if (v instanceof Date) return `D${v.getTime()}`
      if (Array.isArray(v)) return JSON.stringify(v.map(encodeValue))
      if (isPlainObject(v)) {
        return "{" + JSON.stringify(Object.keys(v).sort().flatMap((k) => [k, encodeValue(v[k])])).slice(1)
      }
      return "?" + (JSON.stringify(v) ?? String(v))
    }
    default:
      return "?" + String(v)
  }
}

/** The value {@link encodeValue} encoded. */
const decodeValue = (s: string): unknown => {
  switch (s[0]) {
    case "\"":
      return JSON.parse(s)
    case "D":
      return new Date(Number(s.slice(1)))
    case "[":
      return (JSON.parse(s) as Array<string>).map(decodeValue)
    case "{": {
      const pairs = JSON.parse("[" + s.slice(1)) as Array<string>
      const out: { [k: string]: unknown } = {}
      for (let i = 0; i < pairs.length; i += 2) out[pairs[i]!] = decodeValue(pairs[i + 1]!)
      return out
    }
    case "?":
      try {
        return JSON.parse(s.slice(1))
      } catch {
        return s.slice(1)
      }
  }
  if (s === "true" || s === "false") return s === "true"
  if (s === "null") return null
  if (s === "undefined") return undefined
  if (s.endsWith("n")) return BigInt(s.slice(0, -1))
  return Number(s)
}

/**
 * The encoding of a single-field key: a string that does not start with `\u0000` is its own encoding
 * (the hot path of every get and update); any other value is `\u0000` followed by {@link encodeValue}.
 */
const encodeSingle = (v: unknown): string =>
  typeof v === "string" && v.charCodeAt(0) !== 0 ? v : "\u0000" + encodeValue(v)

const cache = new WeakMap<Resource.Any, Compiled>()

/**
 * The restart policy of a resource's records where records are stored
 * (durable, cluster): the declared one, else `"lastState"`.
 *
 * @internal
 */
export const storedRestart = (resource: Resource.Any): Resource.RestartPolicy => resource.restartDeclared ?? "lastState"

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
  // per-field guards: the fast path of every check; a full decode only builds the error
  const guards = new Map<string, (u: unknown) => boolean>()
  // fields whose stored form can read back as another value (`storable.ts`): checked by a round trip, also on
  // the fast path
  const storable = new Map<string, (value: unknown) => string | undefined>()
  for (const k of fieldNames) {
    const guard = Schema.is(Schema.toType(fields[k]!)) as (u: unknown) => boolean
    const check = Storable.checkOf(fields[k]!)
    if (check !== undefined) storable.set(k, check)
    guards.set(k, check === undefined ? guard : (u) => guard(u) && check(u) === undefined)
  }
  const keyGuards = keyFields.map((k) => guards.get(k)!)
  const isKey = (key: { readonly [field: string]: unknown }) => {
    for (let i = 0; i < keyFields.length; i++) if (!keyGuards[i]!(key[keyFields[i]!])) return false
    return true
  }
  const keyDecoder = Schema.decodeUnknownExit(keyStruct, parseOptions)

  const single = keyFields.length === 1 ? keyFields[0]! : undefined
  const encodeKey = single !== undefined
    ? (record: any) => encodeSingle(record[single])
    : (record: any) => {
      let out = encodeValue(record[keyFields[0]!])
      for (let i = 1; i < keyFields.length; i++) out += "\u0000" + encodeValue(record[keyFields[i]!])
      return out
    }

  const decodeKey = (encoded: string) => {
    const key: { [field: string]: unknown } = {}
    if (single !== undefined) {
      key[single] = encoded.charCodeAt(0) === 0 ? decodeValue(encoded.slice(1)) : encoded
      return key
    }
    const parts = encoded.split("\u0000")
    for (let i = 0; i < keyFields.length; i++) key[keyFields[i]!] = decodeValue(parts[i] ?? "undefined")
    return key
  }

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
    for (const k of keyFields) key[k] = (input as { readonly [field: string]: unknown })[k]
    if (isKey(key)) return checkKeySize(encodeKey(key)) ?? key
    const exit = keyDecoder(key)
    return Exit.isSuccess(exit) ? checkKeySize(encodeKey(exit.value)) ?? exit.value : validationError(
      name,
      "key",
      exit.cause.reasons[0] !== undefined
        ? issueOf(exit.cause)
        : new SchemaIssue.InvalidValue()
    )
  }

  const checkKeySize = (encoded: string): ValidationError | undefined => {
    const bytes = oversizedKey(encoded)
    if (bytes === undefined) return undefined
    const message = `the key (${
      keyFields.join(", ")
    }) takes ${bytes} bytes when stored; at most ${maxKeyBytes} are allowed`
    return new ValidationError({
      resource: name,
      message: `${name}: invalid key: ${message}`,
      issues: [{ path: keyFields.length === 1 ? [keyFields[0]!] : [], message }]
    })
  }

  const validate = (record: unknown) => {
    const exit = recordDecoder(record)
    if (Exit.isFailure(exit)) return validationError(name, "record", issueOf(exit.cause))
    for (const [field, check] of storable) {
      const why = check((exit.value as { readonly [field: string]: unknown })[field])
      if (why !== undefined) return unstorable(`${name}: invalid record`, field, why)
    }
    return exit.value
  }

  /** A value of `field` storage would read back as another (see `storable.ts`). */
  const unstorable = (what: string, field: string, why: string) =>
    new ValidationError({
      resource: name,
      message: `${what}: ${field}: ${why}`,
      issues: [{ path: [field], message: why }]
    })

  const validateChanges = (record: any, changes: { readonly [field: string]: unknown }) => {
    for (const k in changes) {
      const guard = guards.get(k)
      if (guard === undefined || !guard(changes[k])) return validate({ ...record, ...changes })
    }
    return { ...record, ...changes }
  }

  const actions = new Map<string, CompiledAction>()
  for (const [actionName, action] of Object.entries(resource.actions as { [name: string]: Action.Action.Any })) {
    const accepted = action.accept === "*" ? [...fieldNames] : action.accept
    const inputFields: { [name: string]: Schema.Top } = {}
    for (const k of accepted) inputFields[k] = Schema.optionalKey(Schema.toType(fields[k]!))
    const argNames = Object.keys(action.arguments)
    for (const k of argNames) inputFields[k] = action.arguments[k]
    // a field or argument is a plain schema (no decoding services: it crosses data layers as JSON), which the
    // compiler cannot see in `Schema.Top`
    const inputDecoder = Schema.decodeUnknownExit(Schema.Struct(inputFields) as any, parseOptions)
    const acceptedSet = new Set(accepted)
    const argsDecoder = argNames.length === 0
      ? undefined
      : Schema.decodeUnknownExit(Schema.Struct(action.arguments) as any, parseOptions)
    // arguments cross a data layer as JSON too (`storable.ts`): those that could read back as another value are
    // checked, and their action's input then takes the full decode
    const argChecks = new Map<string, (value: unknown) => string | undefined>()
    for (const k of argNames) {
      const check = Storable.checkOf(action.arguments[k]!)
      if (check !== undefined) argChecks.set(k, check)
    }
    /** The fast path: guards for the accepted fields, one decode for the arguments. */
    const decodeFast = (raw: { readonly [k: string]: unknown }): Decoded | undefined => {
      const attributes: { [k: string]: unknown } = {}
      let args: { [k: string]: unknown } | undefined
      let hasArgs = false
      for (const k in raw) {
        if (!Object.prototype.hasOwnProperty.call(raw, k)) return undefined
        if (acceptedSet.has(k)) {
          if (!guards.get(k)!(raw[k])) return undefined
          attributes[k] = raw[k]
        } else if (argsDecoder !== undefined && Object.prototype.hasOwnProperty.call(action.arguments, k)) {
          if (argChecks.has(k)) return undefined
          hasArgs = true
        } else {
          return undefined
        }
      }
      if (argsDecoder !== undefined) {
        const argsInput: { [k: string]: unknown } = {}
        if (hasArgs) {
          for (const k of argNames) if (Object.prototype.hasOwnProperty.call(raw, k)) argsInput[k] = raw[k]
        }
        const exit = argsDecoder(argsInput)
        if (Exit.isFailure(exit)) return undefined
        args = exit.value as { [k: string]: unknown }
      }
      return { attributes, arguments: args ?? {} }
    }
    const decode = (input: unknown): Decoded | ValidationError => {
      const raw = input === undefined ? {} : input
      if (!isPlainObject(raw)) {
        return new ValidationError({
          resource: name,
          message: `${name}.${actionName}: the input must be a plain object, got ${
            Array.isArray(raw)
              ? "an array"
              : raw === null
              ? "null"
              : typeof raw === "object"
              ? raw.constructor?.name ?? "an object"
              : typeof raw
          }`
        })
      }
      const fast = decodeFast(raw)
      if (fast !== undefined) return fast
      // `Schema.Struct({})` accepts any object, even with `onExcessProperty: "error"`
      const extra = Object.keys(raw)[0]
      if (accepted.length === 0 && argNames.length === 0 && extra !== undefined) {
        return new ValidationError({
          resource: name,
          message: `${name}: invalid input of action ${actionName}: it takes no input, got a field ${
            JSON.stringify(extra)
          }`
        })
      }
      const exit = inputDecoder(raw)
      if (Exit.isFailure(exit)) {
        return validationError(`${name}`, `input of action ${actionName}`, issueOf(exit.cause))
      }
      const value = exit.value as { [k: string]: unknown }
      const attributes: { [k: string]: unknown } = {}
      const args: { [k: string]: unknown } = {}
      for (const k in value) {
        const why = (acceptedSet.has(k) ? storable : argChecks).get(k)?.(value[k])
        if (why !== undefined) return unstorable(`${name}: invalid input of action ${actionName}`, k, why)
        if (acceptedSet.has(k)) attributes[k] = value[k]
        else args[k] = value[k]
      }
      return { attributes, arguments: args }
    }
    actions.set(actionName, {
      name: actionName,
      kind: action.kind,
      action,
      decode,
      checkResult: action.success === undefined ? undefined : resultCheck(name, actionName, action.success)
    })
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
      action: Action.defaults.destroy,
      decode: () => ({ attributes: {}, arguments: {} }),
      checkResult: undefined
    },
    idleMillis,
    lifetimeMillis,
    hasTimeouts: idleMillis !== undefined || lifetimeMillis !== undefined,
    hibernateMillis: millis(resource.hibernateAfter),
    tracksActivity: idleMillis !== undefined || lifetimeMillis !== undefined || resource.hibernateAfter !== undefined,
    durable: resource.durable === true,
    version: resource.version ?? 1,
    migrations: resource.migrations ?? {},
    // without a declared policy, a durable resource restarts from its stored state
    restart: resource.restartDeclared ?? (resource.durable === true ? "lastState" : resource.restart),
    storedRestart: storedRestart(resource),
    maxRestarts: resource.restartIntensity.maxRestarts,
    withinMillis: Duration.toMillis(resource.restartIntensity.within),
    indexes: resource.indexes,
    encodeKey,
    decodeKey,
    checkKey,
    checkKeySize,
    validate,
    validateChanges,
    action
  }
  cache.set(resource, compiled)
  return compiled
}
