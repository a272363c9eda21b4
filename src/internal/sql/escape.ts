/**
 * What SQL cannot hold, escaped so that it is stored and returned exactly.
 *
 * PostgreSQL refuses `\u0000` in `text` and in `jsonb` strings, and a lone
 * surrogate (half of a UTF-16 pair) in `jsonb`; a driver encoding text as
 * UTF-8 (and the cluster's msgpack transport) turns a lone surrogate into
 * U+FFFD, so two different strings would become one. Every string a SQL
 * layer stores or sends is therefore escaped, injectively, when it holds
 * one of these:
 *
 * - **Keys** ({@link escapeKey}): `\` becomes `\\`, `\u0000` becomes `\0`, a
 *   lone surrogate `\uXXXX` (four lower-case hex digits). A key without them
 *   is stored as it is (the hot path: one regular expression test).
 * - **Strings inside JSON values** ({@link escapeJson}), object keys
 *   included: a string holding `\u0000`, `\u0001` or a lone surrogate is
 *   stored as `\u0001` followed by the string with each of those code units
 *   written as `\u0001` and four hex digits. No other string starts with
 *   `\u0001`, so the two never meet; a value without such strings is
 *   returned as it is (no copy).
 *
 * The in-memory layers hold any string: this escape is what lets the SQL
 * layers keep the same promise (one semantics on every layer).
 *
 * @internal
 */

/** A code unit a key cannot hold as it is: `\`, `\u0000`, a lone surrogate. */
const keySpecial = /[\\\u0000]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
const keySpecialAll = new RegExp(keySpecial.source, "g")

const hex4 = (c: string) => c.charCodeAt(0).toString(16).padStart(4, "0")

/** The key as stored: injective, no `\u0000`, no lone surrogate. @internal */
export const escapeKey = (key: string): string =>
  keySpecial.test(key)
    ? key.replace(keySpecialAll, (c) => c === "\\" ? "\\\\" : c === "\u0000" ? "\\0" : `\\u${hex4(c)}`)
    : key

/** @internal */
export const unescapeKey = (key: string): string =>
  key.includes("\\")
    ? key.replace(
      /\\(\\|0|u[0-9a-f]{4})/g,
      (_, c: string) => c === "\\" ? "\\" : c === "0" ? "\u0000" : String.fromCharCode(parseInt(c.slice(1), 16))
    )
    : key

/** A code unit a JSON string cannot hold as it is: `\u0000`, the escape mark `\u0001`, a lone surrogate. */
const stringSpecial = /[\u0000\u0001]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
const stringSpecialAll = new RegExp(stringSpecial.source, "g")
const mark = "\u0001"

/** A string as stored inside JSON (see the module). @internal */
export const escapeString = (s: string): string =>
  stringSpecial.test(s) ? mark + s.replace(stringSpecialAll, (c) => mark + hex4(c)) : s

/** @internal */
export const unescapeString = (s: string): string =>
  s.charCodeAt(0) === 1
    ? s.slice(1).replace(/\u0001([0-9a-f]{4})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
    : s

/** Applies `f` to every string of a JSON value (object keys included), copying only what changes. */
const mapStrings = (value: unknown, f: (s: string) => string): unknown => {
  if (typeof value === "string") return f(value)
  if (typeof value !== "object" || value === null) return value
  if (Array.isArray(value)) {
    let out: Array<unknown> | undefined
    for (let i = 0; i < value.length; i++) {
      const v = value[i]
      const w = mapStrings(v, f)
      if (w !== v && out === undefined) out = value.slice(0, i)
      if (out !== undefined) out.push(w)
    }
    return out ?? value
  }
  let out: { [k: string]: unknown } | undefined
  const keys = Object.keys(value)
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!
    const v = (value as { readonly [k: string]: unknown })[k]
    const k2 = f(k)
    const w = mapStrings(v, f)
    if ((w !== v || k2 !== k) && out === undefined) {
      out = {}
      for (let j = 0; j < i; j++) out[keys[j]!] = (value as { readonly [k: string]: unknown })[keys[j]!]
    }
    if (out !== undefined) out[k2] = w
  }
  return out ?? value
}

/** A JSON value as stored: every string escaped (see the module); the value itself when none needs it. @internal */
export const escapeJson = (value: unknown): unknown => mapStrings(value, escapeString)

/** @internal */
export const unescapeJson = (value: unknown): unknown => mapStrings(value, unescapeString)

/** The most UTF-8 bytes a stored (escaped) key may take: PostgreSQL's index on the key holds it. @internal */
export const maxKeyBytes = 1024

const encoder = new TextEncoder()

/**
 * The UTF-8 length of the stored form of an encoded key when it is over
 * {@link maxKeyBytes}; `undefined` when it fits (at most 6 bytes a code
 * unit: a short key needs no count).
 *
 * @internal
 */
export const oversizedKey = (key: string): number | undefined => {
  if (key.length * 6 <= maxKeyBytes) return undefined
  const bytes = encoder.encode(escapeKey(key)).length
  return bytes > maxKeyBytes ? bytes : undefined
}
