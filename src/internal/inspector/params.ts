/**
 * The inspector's query parameters: a filter written as a person types it
 * (`currentYear >= 1955 and name contains "Mar"`) or as the JSON of a
 * `Filter.Expr`, a sort (`currentYear desc, name`), an offset, a limit and a
 * record's key, each parsed into what the Store takes, or refused with a
 * message naming what is wrong. Only the syntax is checked here: field names
 * and values are the Store's to check (`Store.read` fails with a
 * `ValidationError` naming the field), so the inspector and every other
 * caller get the same answer.
 *
 * Compared values are JSON literals (`1955`, `"Marty"`, `true`, `null`,
 * `[1955, 1985]`) or bare words, read as strings (`name = Marty`). A value is
 * decoded with its field's JSON codec where it can be (a date field takes an
 * ISO string), and given to the Store as it is otherwise.
 *
 * @internal
 */
import type * as Filter from "../../Filter.js"
import type * as Query from "../../Query.js"

/** A parameter the inspector cannot read: the HTTP 400 it answers with. @internal */
export class BadParameter {
  readonly _tag = "BadParameter"
  constructor(readonly message: string) {}
}

type Token =
  | { readonly kind: "word"; readonly text: string; readonly at: number }
  | { readonly kind: "op"; readonly text: string; readonly at: number }
  | { readonly kind: "value"; readonly value: unknown; readonly text: string; readonly at: number }
  | { readonly kind: "paren"; readonly text: "(" | ")"; readonly at: number }

const operators = ["!=", ">=", "<=", "==", "=", ">", "<"] as const

const wordChar = /[A-Za-z0-9_$.:@+\-]/

/** A JSON value starting at `i`: its end and its value, or a message. */
const readJson = (text: string, i: number): { readonly end: number; readonly value: unknown } | string => {
  // the shortest prefix from i that parses as JSON and ends a value: strings and arrays end at their closer
  const open = text[i]
  if (open === "\"") {
    for (let j = i + 1; j < text.length; j++) {
      if (text[j] === "\\") {
        j++
        continue
      }
      if (text[j] === "\"") {
        try {
          return { end: j + 1, value: JSON.parse(text.slice(i, j + 1)) }
        } catch {
          return `invalid string at column ${i + 1}`
        }
      }
    }
    return `unterminated string at column ${i + 1}`
  }
  // an array: up to its matching bracket, outside strings
  let depth = 0
  for (let j = i; j < text.length; j++) {
    const c = text[j]
    if (c === "\"") {
      for (j++; j < text.length && text[j] !== "\""; j++) if (text[j] === "\\") j++
      continue
    }
    if (c === "[") depth++
    if (c === "]" && --depth === 0) {
      try {
        return { end: j + 1, value: JSON.parse(text.slice(i, j + 1)) }
      } catch {
        return `invalid list at column ${i + 1}: ${text.slice(i, j + 1)}`
      }
    }
  }
  return `unterminated list at column ${i + 1}`
}

const tokenize = (text: string): ReadonlyArray<Token> | BadParameter => {
  const tokens: Array<Token> = []
  let i = 0
  while (i < text.length) {
    const c = text[i]!
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      i++
      continue
    }
    if (c === "(" || c === ")") {
      tokens.push({ kind: "paren", text: c, at: i })
      i++
      continue
    }
    const op = operators.find((o) => text.startsWith(o, i))
    if (op !== undefined) {
      tokens.push({ kind: "op", text: op, at: i })
      i += op.length
      continue
    }
    if (c === "\"" || c === "[") {
      const read = readJson(text, i)
      if (typeof read === "string") return new BadParameter(`filter: ${read}`)
      tokens.push({ kind: "value", value: read.value, text: text.slice(i, read.end), at: i })
      i = read.end
      continue
    }
    if (wordChar.test(c)) {
      let j = i
      while (j < text.length && wordChar.test(text[j]!)) j++
      tokens.push({ kind: "word", text: text.slice(i, j), at: i })
      i = j
      continue
    }
    return new BadParameter(`filter: unexpected ${JSON.stringify(c)} at column ${i + 1}`)
  }
  return tokens
}

/** A bare word as a value: a JSON literal when it is one (`1955`, `true`, `null`), else the word itself. */
const wordValue = (word: string): unknown => {
  if (word === "true") return true
  if (word === "false") return false
  if (word === "null") return null
  if (/^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/.test(word)) return Number(word)
  return word
}

const keywords = new Set(["and", "or", "not", "in", "contains", "is", "nil"])

const describeToken = (token: Token | undefined): string =>
  token === undefined ? "the end" : `${JSON.stringify(token.text)} at column ${token.at + 1}`

/**
 * Parses the filter a person types: `field op value`, `field in [..]`,
 * `field contains value`, `field is nil`, `field is not nil`, joined with
 * `and`, `or`, `not` and parentheses (`and` binds tighter than `or`).
 *
 * @internal
 */
export const parseFilterText = (text: string): Filter.Expr | BadParameter => {
  const tokens = tokenize(text)
  if (tokens instanceof BadParameter) return tokens
  if (tokens.length === 0) return new BadParameter("filter: empty")
  let i = 0
  const peek = () => tokens[i]
  const isWord = (token: Token | undefined, word: string) =>
    token !== undefined && token.kind === "word" && token.text.toLowerCase() === word
  let depth = 0

  const or = (): Filter.Expr | BadParameter => {
    const first = and()
    if (first instanceof BadParameter) return first
    const all = [first]
    while (isWord(peek(), "or")) {
      i++
      const next = and()
      if (next instanceof BadParameter) return next
      all.push(next)
    }
    return all.length === 1 ? first : { _tag: "Or", filters: all }
  }
  const and = (): Filter.Expr | BadParameter => {
    const first = unary()
    if (first instanceof BadParameter) return first
    const all = [first]
    while (isWord(peek(), "and")) {
      i++
      const next = unary()
      if (next instanceof BadParameter) return next
      all.push(next)
    }
    return all.length === 1 ? first : { _tag: "And", filters: all }
  }
  const unary = (): Filter.Expr | BadParameter => {
    const token = peek()
    if (isWord(token, "not")) {
      i++
      const inner = unary()
      return inner instanceof BadParameter ? inner : { _tag: "Not", filter: inner }
    }
    if (token?.kind === "paren" && token.text === "(") {
      i++
      if (++depth > 32) return new BadParameter("filter: parentheses nest at most 32 deep")
      const inner = or()
      if (inner instanceof BadParameter) return inner
      const close = peek()
      if (close?.kind !== "paren" || close.text !== ")") {
        return new BadParameter(
          `filter: expected ")" to close the "(" at column ${token.at + 1}, got ${describeToken(close)}`
        )
      }
      i++
      depth--
      return inner
    }
    return comparison()
  }
  const value = (field: string): { readonly value: unknown } | BadParameter => {
    const token = peek()
    if (token === undefined || token.kind === "paren" || token.kind === "op") {
      return new BadParameter(`filter: expected a value after ${JSON.stringify(field)}, got ${describeToken(token)}`)
    }
    i++
    return { value: token.kind === "value" ? token.value : wordValue(token.text) }
  }
  const comparison = (): Filter.Expr | BadParameter => {
    const fieldToken = peek()
    if (fieldToken === undefined || fieldToken.kind !== "word" && fieldToken.kind !== "value") {
      return new BadParameter(`filter: expected a field name, got ${describeToken(fieldToken)}`)
    }
    if (fieldToken.kind === "word" && keywords.has(fieldToken.text.toLowerCase())) {
      return new BadParameter(`filter: expected a field name, got ${describeToken(fieldToken)}`)
    }
    const field = fieldToken.kind === "word" ? fieldToken.text : String(fieldToken.value)
    i++
    const op = peek()
    if (op?.kind === "op") {
      i++
      const read = value(field)
      if (read instanceof BadParameter) return read
      switch (op.text) {
        case "=":
        case "==":
          return { _tag: "Eq", field, value: read.value }
        case "!=":
          return { _tag: "Neq", field, value: read.value }
        case ">":
          return { _tag: "Gt", field, value: read.value }
        case ">=":
          return { _tag: "Gte", field, value: read.value }
        case "<":
          return { _tag: "Lt", field, value: read.value }
        default:
          return { _tag: "Lte", field, value: read.value }
      }
    }
    if (isWord(op, "in")) {
      i++
      const read = value(field)
      if (read instanceof BadParameter) return read
      if (!Array.isArray(read.value)) {
        return new BadParameter(`filter: ${JSON.stringify(field)} in needs a list such as [1955, 1985]`)
      }
      return { _tag: "In", field, values: read.value }
    }
    if (isWord(op, "contains")) {
      i++
      const read = value(field)
      return read instanceof BadParameter ? read : { _tag: "Contains", field, value: read.value }
    }
    if (isWord(op, "is")) {
      i++
      const negated = isWord(peek(), "not")
      if (negated) i++
      if (!isWord(peek(), "nil") && !isWord(peek(), "null")) {
        return new BadParameter(`filter: expected "nil" after "${field} is", got ${describeToken(peek())}`)
      }
      i++
      const isNil: Filter.Expr = { _tag: "IsNil", field }
      return negated ? { _tag: "Not", filter: isNil } : isNil
    }
    return new BadParameter(
      `filter: expected an operator (=, !=, >, >=, <, <=, in, contains, is nil) after ${JSON.stringify(field)}, got ${
        describeToken(op)
      }`
    )
  }

  const parsed = or()
  if (parsed instanceof BadParameter) return parsed
  if (i < tokens.length) {
    return new BadParameter(`filter: unexpected ${describeToken(tokens[i])}: join conditions with "and" or "or"`)
  }
  return parsed
}

/**
 * Parses a filter parameter: the JSON of a `Filter.Expr` when it starts with
 * `{`, the text syntax otherwise.
 *
 * @internal
 */
export const parseFilter = (text: string): Filter.Expr | BadParameter => {
  const trimmed = text.trim()
  if (!trimmed.startsWith("{")) return parseFilterText(trimmed)
  try {
    return JSON.parse(trimmed) as Filter.Expr
  } catch (error) {
    return new BadParameter(`filter: invalid JSON: ${(error as Error).message}`)
  }
}

/**
 * Parses a sort parameter: keys separated by commas, each a field name
 * followed by `asc` or `desc` (or `:asc`, `:desc`, or a leading `-` for
 * descending).
 *
 * @internal
 */
export const parseSort = (text: string): ReadonlyArray<Query.SortKey> | BadParameter => {
  const keys: Array<Query.SortKey> = []
  for (const part of text.split(",")) {
    const words = part.trim().replace(/:(asc|desc)$/i, " $1").split(/\s+/).filter((w) => w !== "")
    if (words.length === 0) continue
    let [field, direction = "asc"] = words as [string, string?]
    if (words.length > 2) return new BadParameter(`sort: expected "field" or "field desc", got ${JSON.stringify(part)}`)
    if (field.startsWith("-") && words.length === 1) {
      field = field.slice(1)
      direction = "desc"
    }
    const lower = direction.toLowerCase()
    if (lower !== "asc" && lower !== "desc") {
      return new BadParameter(
        `sort: the direction of ${JSON.stringify(field)} is "asc" or "desc", got ${JSON.stringify(direction)}`
      )
    }
    keys.push({ field, direction: lower })
  }
  return keys
}

/**
 * Parses an integer parameter from `min` (default 0) to `max`; `fallback` when
 * absent.
 *
 * @internal
 */
export const parseCount = (
  name: string,
  text: string | null,
  fallback: number,
  max: number,
  min = 0
): number | BadParameter => {
  if (text === null || text === "") return fallback
  if (!/^\d+$/.test(text) || Number(text) > max || Number(text) < min) {
    return new BadParameter(`${name}: expected an integer from ${min} to ${max}, got ${JSON.stringify(text)}`)
  }
  return Number(text)
}

/**
 * Parses a record's key: the JSON object of its key fields, as the records
 * page lists it (`{"id":"marty"}`).
 *
 * @internal
 */
export const parseKeyJson = (text: string | null): { readonly [field: string]: unknown } | BadParameter => {
  if (text === null || text === "") return new BadParameter("key: missing: the JSON of the record's key fields")
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    return new BadParameter(`key: invalid JSON: ${(error as Error).message}`)
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return new BadParameter(`key: expected a JSON object of the key fields, got ${text}`)
  }
  return parsed as { readonly [field: string]: unknown }
}
