/**
 * How a failure of an SQL statement is read (`src/internal/sql/faults.ts`):
 * what it means for the write (refused, transient, unknown), and a message
 * that says why in the database's words.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause } from "effect"
import { ConnectionError, DeadlockError, SqlError, UnknownError } from "effect/sql/SqlError"
import { classify } from "../../src/internal/sql/faults.js"

const pgError = (message: string, code: string | undefined) =>
  new SqlError({
    reason: new UnknownError({
      cause: Object.assign(new Error(message), code === undefined ? {} : { code }),
      message: "PgConnection: Query failed",
      operation: "execute"
    })
  })

describe("the classification of a failed statement", () => {
  it("a refusal by PostgreSQL carries the database's message, after the driver's", () => {
    const read = classify("pg", Cause.fail(pgError("value too long for type character varying(5)", "22001")))
    assert.strictEqual(read.verdict, "refused")
    assert.strictEqual(read.message, "PgConnection: Query failed: value too long for type character varying(5)")
  })

  it("no SQLSTATE (the driver failed) or the server ending the connection: the write's fate is unknown", () => {
    assert.strictEqual(classify("pg", Cause.fail(pgError("socket hang up", undefined))).verdict, "unknown")
    assert.strictEqual(classify("pg", Cause.fail(pgError("terminating connection", "57P01"))).verdict, "unknown")
    const dropped = new SqlError({ reason: new ConnectionError({ cause: new Error("ECONNRESET"), message: "lost" }) })
    assert.deepStrictEqual(classify("pg", Cause.fail(dropped)), { verdict: "unknown", message: "lost: ECONNRESET" })
  })

  it("a deadlock is transient: the batch runs again", () => {
    const deadlock = new SqlError({ reason: new DeadlockError({ cause: new Error("deadlock"), message: "deadlock" }) })
    assert.strictEqual(classify("pg", Cause.fail(deadlock)).verdict, "transient")
  })
})
