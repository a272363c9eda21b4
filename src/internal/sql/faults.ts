/**
 * Storage faults: what a failed SQL statement means for the writes it
 * carried. The one classification the durable and the cluster layers share.
 *
 * - **refused**: the database reported an error and rolled the transaction
 *   back (a constraint, a value it cannot hold, a trigger, a full disk):
 *   nothing of it was applied. In a group commit it is bisected until the
 *   one write storage refuses fails alone.
 * - **transient**: rolled back for a reason that passes (a deadlock, a
 *   serialization conflict, a lock wait): the same statements are run again,
 *   a few times.
 * - **unknown**: the connection failed (dropped, reset, terminated) or the
 *   driver failed without a word from the database: the transaction may
 *   have committed before its answer was lost. The writer reads the row
 *   back to learn what happened (the row remembers the operation ids it
 *   applied); if it cannot, its caller is told `Unavailable` with
 *   `applied: "unknown"`.
 *
 * On SQLite (in process, synchronous) every failure the database reports is
 * known: refused, or transient when the database is locked; a connection
 * failure is settled from the row like anywhere else.
 *
 * @internal
 */
import { Cause, Data } from "effect"
import { isSqlError } from "effect/sql/SqlError"

/** The SQL dialects the state store speaks. @internal */
export type Dialect = "pg" | "sqlite"

/** What a failure means for the writes it carried (see the module). @internal */
export type Verdict = "refused" | "transient" | "unknown"

/**
 * A write storage did not take, or may not have: `applied` says which. Its
 * message says why, in the database's words.
 *
 * @internal
 */
export class StorageFailure extends Data.TaggedError("StorageFailure")<{
  readonly applied: "no" | "unknown"
  readonly message: string
}> {}

/** PostgreSQL's SQLSTATE of an error it reported, if the error carries one. */
const sqlState = (cause: unknown): string | undefined => {
  const code = typeof cause === "object" && cause !== null ? (cause as { readonly code?: unknown }).code : undefined
  return typeof code === "string" && code.length === 5 ? code : undefined
}

/**
 * What a failed statement (or its transaction) means: see the module.
 * Anything but a `SqlError` (a defect of the driver, an interruption) is
 * unknown on PostgreSQL.
 *
 * @internal
 */
export const classify = (dialect: Dialect, cause: Cause.Cause<unknown>): { verdict: Verdict; message: string } => {
  const failure = Cause.findErrorOption(cause)
  const error = failure._tag === "Some" ? failure.value : Cause.squash(cause)
  if (!isSqlError(error)) {
    const message = error instanceof Error ? error.message : String(error)
    return { verdict: dialect === "sqlite" && failure._tag === "Some" ? "refused" : "unknown", message }
  }
  const reason = error.reason
  // the driver's message ("PgConnection: Query failed"), then the database's own words when they say more
  const said = (reason as { readonly cause?: unknown }).cause
  const detail = said instanceof Error && said.message !== "" && said.message !== reason.message ? said.message : ""
  const message = [reason.message ?? error.message, detail].filter((part) => part !== "").join(": ")
  switch (reason._tag) {
    case "DeadlockError":
    case "SerializationError":
    case "LockTimeoutError":
      return { verdict: "transient", message }
    case "ConnectionError":
      // the commit's answer may be what was lost (on SQLite, in process, the row read back says so at no cost)
      return { verdict: "unknown", message }
    case "UnknownError": {
      if (dialect === "sqlite") return { verdict: "refused", message }
      const code = sqlState(reason.cause)
      // no SQLSTATE: the driver failed, not the database; 57P0x: the server ended the connection
      return { verdict: code === undefined || code.startsWith("57P") ? "unknown" : "refused", message }
    }
    default:
      return { verdict: "refused", message }
  }
}
