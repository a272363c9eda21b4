/**
 * A value of unknown type that crosses a process boundary as JSON: the keys
 * of errors and events, and the records of untyped events.
 *
 * @internal
 */
import { Formatter, Schema, SchemaTransformation } from "effect"

/**
 * JSON as it is, anything else through Effect's JSON formatter (a `bigint`
 * becomes `"1n"`, a `Date` its ISO string, a `Redacted` its redaction),
 * falling back to the formatted string: encoding never fails, and a JSON value
 * comes back unchanged.
 */
const toJson = (u: unknown): Schema.Json => {
  try {
    const json: string | undefined = Formatter.formatJson(u)
    return json === undefined ? Formatter.format(u) : JSON.parse(json)
  } catch {
    return Formatter.format(u)
  }
}

/**
 * `unknown` on the type side, `Schema.Json` on the encoded side. Unlike
 * `Schema.Defect` it never turns an object with a `message` into an `Error`.
 *
 * @internal
 */
export const Value: Schema.decodeTo<Schema.Unknown, typeof Schema.Json> = Schema.Json.pipe(
  Schema.decodeTo(
    Schema.Unknown,
    SchemaTransformation.transform<unknown, Schema.Json>({ decode: (json) => json, encode: toJson })
  )
)
