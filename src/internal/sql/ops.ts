/**
 * The operation ids a stored row remembers (its `ops` column, the last
 * {@link rememberedOps} writes), each with the result its write answered
 * when its action declares `success`: a write sent again under a
 * remembered id is answered as the first attempt was, without running
 * again.
 *
 * An entry is the id alone, or the id, `\u0001` and the result's JSON (its
 * codec's, `codec.ts`). An operation id never holds `\u0001` (it is checked
 * when admitted, `admission.ts`), so an entry names exactly one id.
 *
 * @internal
 */
import type { CompiledAction } from "../resource.js"
import { resultCodec } from "./codec.js"

const separator = "\u0001"

/** The entry a write under `op` stores: with the action's result, encoded, where it declares `success`. @internal */
export const entry = (op: string, action: CompiledAction, result: unknown): string => {
  const codec = resultCodec(action)
  return codec === undefined ? op : `${op}${separator}${JSON.stringify(codec.encode(result) ?? null)}`
}

/** The entry of `op` among a row's `ops`, if the row remembers it. @internal */
export const find = (ops: ReadonlyArray<string>, op: string): string | undefined => {
  for (let i = ops.length - 1; i >= 0; i--) {
    const e = ops[i]!
    if (e === op || (e.length > op.length && e.charCodeAt(op.length) === 1 && e.startsWith(op))) return e
  }
  return undefined
}

/** Whether a row's `ops` remember `op`. @internal */
export const remembers = (ops: ReadonlyArray<string>, op: string): boolean => find(ops, op) !== undefined

/** The operation id of an entry. @internal */
export const idOf = (e: string): string => {
  const at = e.indexOf(separator)
  return at < 0 ? e : e.slice(0, at)
}

/**
 * The result an entry keeps, decoded with the action's `success` schema
 * (`undefined` for an action without one, or an entry stored without a
 * result). Throws if this version's schema cannot decode it.
 *
 * @internal
 */
export const resultOf = (e: string, action: CompiledAction): unknown => {
  const codec = resultCodec(action)
  const at = e.indexOf(separator)
  if (codec === undefined) return undefined
  return codec.decode(at < 0 ? undefined : JSON.parse(e.slice(at + 1)))
}
