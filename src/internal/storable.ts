/**
 * Values whose stored form reads back as another value. A record crosses a
 * data layer as JSON (Effect's JSON codec of its fields): where a field's
 * type is a union of a number and a string, the codec writes `Infinity`,
 * `-Infinity` and `NaN` as the strings `"Infinity"`, `"-Infinity"` and
 * `"NaN"`, and the union's first member that reads such a string back
 * takes it: a string holding one of those words reads back as the number
 * (`Union([Number, String])`), or the number as the string (`Union([String,
 * Number])`). Such a value is refused when it is admitted, on every layer
 * (one semantics: the in-memory layers would keep it, storage would not),
 * with a `ValidationError` naming the field.
 *
 * Only fields whose type holds such a union anywhere (found once, from the
 * schema) pay for the check: a round trip of the value through its codec.
 *
 * @internal
 */
import { Schema, type SchemaAST } from "effect"

const canBeString = (ast: SchemaAST.AST): boolean =>
  ast._tag === "String" || ast._tag === "TemplateLiteral" ||
  (ast._tag === "Literal" && typeof ast.literal === "string") ||
  (ast._tag === "Enum" && ast.enums.some(([, value]) => typeof value === "string"))

/** Whether `ast` holds, anywhere, a union of a number and something written as a string. */
const hasAmbiguousUnion = (ast: SchemaAST.AST, seen: Set<SchemaAST.AST>): boolean => {
  if (seen.has(ast)) return false
  seen.add(ast)
  switch (ast._tag) {
    case "Union":
      return (ast.types.some((t) => t._tag === "Number") && ast.types.some(canBeString)) ||
        ast.types.some((t) => hasAmbiguousUnion(t, seen))
    case "Arrays":
      return ast.elements.some((t) => hasAmbiguousUnion(t, seen)) || ast.rest.some((t) => hasAmbiguousUnion(t, seen))
    case "Objects":
      return ast.propertySignatures.some((p) => hasAmbiguousUnion(p.type, seen)) ||
        ast.indexSignatures.some((i) => hasAmbiguousUnion(i.type, seen))
    case "Suspend":
      return hasAmbiguousUnion(ast.thunk(), seen)
    default:
      return false
  }
}

/** Equal as stored values are: the same JSON shape, numbers compared with `Object.is`. */
const same = (a: unknown, b: unknown): boolean => {
  if (typeof a === "number" || typeof b === "number") return Object.is(a, b)
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return a === b
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false
    if (!same((a as any)[k], (b as any)[k])) return false
  }
  return true
}

const show = (u: unknown): string => typeof u === "number" ? String(u) : JSON.stringify(u) ?? String(u)

/**
 * The check of a field whose stored form can read back as another value:
 * why a value of it cannot be stored (`undefined`: it can). `undefined` for
 * a field that needs none.
 *
 * @internal
 */
export const checkOf = (
  field: Schema.Struct.Fields[string]
): ((value: unknown) => string | undefined) | undefined => {
  const type = Schema.toType(field)
  if (!hasAmbiguousUnion(type.ast, new Set())) return undefined
  // a field's schema is plain (no decoding services), which `Schema.Top` cannot say
  const codec = Schema.toCodecJson(type) as Schema.Codec<unknown, unknown>
  const encode = Schema.encodeUnknownSync(codec)
  const decode = Schema.decodeUnknownSync(codec)
  return (value) => {
    let back: unknown
    try {
      back = decode(encode(value))
    } catch {
      // not this check's to report: the record's validation or its encoding for storage says why
      return undefined
    }
    return same(value, back)
      ? undefined
      : `${show(value)} would read back from storage as ${show(back)}: where numbers and strings mix, ` +
        `Infinity, -Infinity and NaN are stored as the strings "Infinity", "-Infinity" and "NaN", and the ` +
        `union's first member that reads one back takes it`
  }
}
