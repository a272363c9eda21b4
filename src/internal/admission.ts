/**
 * Admission: the checks every call passes before it touches a record, the
 * same for every data layer. An open store, a known resource, a known action
 * of the right kind, an input that decodes; for a create, the state it
 * starts from (generated fields, then the decoded attributes). A call that
 * fails admission changes nothing and reaches no record.
 *
 * @internal
 */
import { Clock, Context, Effect } from "effect"
import { InvalidResource, StoreClosed, type StoreError, UnknownAction, ValidationError } from "../Errors.js"
import type * as Resource from "../Resource.js"
import type { QueryData } from "./contract.js"
import { checkQuery, invalidQuery } from "./query.js"
import * as Errors from "./record/errors.js"
import { compile, type Compiled, type CompiledAction, type Decoded } from "./resource.js"

/** @internal */
export interface Admitted {
  readonly resource: Compiled
  readonly action: CompiledAction
  readonly decoded: Decoded
}

/** @internal */
export const noInput: Decoded = { attributes: {}, arguments: {} }

/** @internal */
export const isAdmitted = (admitted: Admitted | StoreError): admitted is Admitted => "decoded" in admitted

/** @internal */
export const isAdmission = (u: Admission | InvalidResource): u is Admission => !(u instanceof InvalidResource)

/** @internal */
export const isCompiled = (u: Compiled | ValidationError | StoreClosed): u is Compiled =>
  !(u instanceof ValidationError) && !(u instanceof StoreClosed)

/** @internal */
export const storeClosed = () => Errors.storeClosed()

/**
 * The operation id a caller chose for its writes (`Store.withOperationId`):
 * the cluster data layer sends it instead of one it makes, so that a write
 * re-sent under it is recognised by its record and not applied twice.
 * Checked by the Store's writes before they reach a data layer.
 *
 * @internal
 */
export const CurrentOperationId = Context.Reference<string | undefined>("effect-gen-server/CurrentOperationId", {
  defaultValue: () => undefined
})

/** The longest operation id a caller may choose. @internal */
export const maxOperationIdLength = 200

/**
 * Refuses an operation id that is not a non-empty string of at most
 * `maxOperationIdLength` characters, or that holds what text storage cannot
 * (`\u0000`, the escape mark `\u0001`, a lone surrogate), before the write
 * touches anything.
 *
 * @internal
 */
export const checkOperationId = (resource: string, action: string, id: unknown): ValidationError | undefined => {
  if (typeof id === "string" && id.length > 0 && id.length <= maxOperationIdLength) {
    if (!unstorable.test(id)) return undefined
    return new ValidationError({
      resource,
      message: `${resource}.${action}: an operation id must be well-formed text without \\u0000, \\u0001 or a ` +
        `lone surrogate, got one holding ${describeUnstorable(id)}`
    })
  }
  return new ValidationError({
    resource,
    message: `${resource}.${action}: an operation id must be a string of 1 to ${maxOperationIdLength} characters, got ${
      typeof id === "string" ? `${id.length} characters` : typeof id
    }`
  })
}

/** What an id stored as text cannot hold: `\u0000`, `\u0001`, a lone surrogate. */
const unstorable = /[\u0000\u0001]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

const describeUnstorable = (id: string): string => {
  const c = id.match(unstorable)![0].charCodeAt(0)
  return c < 2 ? `\\u000${c}` : `a lone surrogate \\u${c.toString(16)}`
}

const unknownResource = (name: unknown) =>
  new ValidationError({ resource: String(name), message: `unknown resource ${JSON.stringify(String(name))}` })

/** @internal */
export interface Admission {
  readonly compiled: ReadonlyMap<string, Compiled>
  /** Closed by the data layer's finalizer: every later call fails with `StoreClosed`. */
  readonly gate: { closed: boolean }
  readonly resourceOf: (name: string) => Compiled | ValidationError
  /** The checks every write passes before it touches a record: open store, known resource and action, valid input. */
  readonly admit: (
    resource: string,
    action: string,
    kind: "create" | "update" | "destroy",
    input: unknown
  ) => Admitted | StoreError
  /** The checks of a read by key: open store, known resource. */
  readonly admitRead: (resource: string) => Compiled | ValidationError | StoreClosed
  /** The checks of a query: open store, known resource, a query that resource can answer. */
  readonly admitQuery: (query: QueryData) => Compiled | ValidationError | StoreClosed
  /**
   * The state a create starts from: generated fields, then the decoded
   * attributes; `ValidationError` when its key is already longer than any
   * layer stores (decided here, before anything runs).
   */
  readonly initialData: (resource: Compiled, decoded: Decoded) => { [field: string]: unknown } | ValidationError
}

/**
 * Compiles the resources of a data layer; dies with `InvalidResource` when
 * two share a name.
 *
 * @internal
 */
export const make = (resources: Iterable<Resource.Any>): Admission | InvalidResource => {
  const compiled = new Map<string, Compiled>()
  for (const resource of resources) {
    if (compiled.has(resource.name)) {
      return new InvalidResource({ resource: resource.name, message: `two resources are named ${resource.name}` })
    }
    compiled.set(resource.name, compile(resource))
  }
  const gate = { closed: false }
  const resourceOf = (name: string): Compiled | ValidationError => compiled.get(name) ?? unknownResource(name)
  const admit: Admission["admit"] = (resourceName, actionName, kind, input) => {
    if (gate.closed) return storeClosed()
    const resource = resourceOf(resourceName)
    if (resource instanceof ValidationError) return resource
    const action = resource.action(actionName, kind)
    if (action instanceof UnknownAction) return action
    const decoded = kind === "destroy" ? noInput : action.decode(input)
    if (decoded instanceof ValidationError) return decoded
    return { resource, action, decoded }
  }
  const admitRead: Admission["admitRead"] = (resourceName) => gate.closed ? storeClosed() : resourceOf(resourceName)
  const admitQuery: Admission["admitQuery"] = (query) => {
    const resource = admitRead((query as QueryData | null)?.resource ?? "")
    if (!isCompiled(resource)) return resource
    const problem = checkQuery(resource, query)
    return problem === undefined ? resource : invalidQuery(resource.name, problem)
  }
  const initialData: Admission["initialData"] = (resource, decoded) => {
    const data: { [field: string]: unknown } = {}
    const generated = resource.resource.generated as { readonly [field: string]: () => unknown }
    for (const field in generated) {
      if (!(field in decoded.attributes)) data[field] = generated[field]!()
    }
    Object.assign(data, decoded.attributes)
    for (const k of resource.keyFields) if (!(k in data)) return data
    return resource.checkKeySize(resource.encodeKey(data)) ?? data
  }
  return { compiled, gate, resourceOf, admit, admitRead, admitQuery, initialData }
}

/**
 * What every data layer starts from: its resources admitted (dying with
 * `InvalidResource` when two share a name), the context it is built in, and
 * that context's clock, the one clock of callers, records and expiry.
 *
 * @internal
 */
export const start = (resources: Iterable<Resource.Any>) =>
  Effect.gen(function*() {
    const admission = make(resources)
    if (!isAdmission(admission)) return yield* Effect.die(admission)
    const own = yield* Effect.context<never>()
    return { ...admission, own, clock: Context.get(own, Clock.Clock) }
  })
