/**
 * Before the suites run: drops the PostgreSQL schemas that earlier runs made
 * and could not drop (a run killed mid-test), once they are six hours old, so
 * they do not pile up on a machine that runs the tests for months. When
 * PostgreSQL is not reachable this does nothing: the tests that need it say so.
 */
import { Effect } from "effect"
import { dropStaleSchemas } from "./cluster/pg.js"

export default async function setup(): Promise<void> {
  const dropped = await Effect.runPromise(
    dropStaleSchemas(6 * 60 * 60 * 1000).pipe(Effect.catchCause(() => Effect.succeed([] as ReadonlyArray<string>)))
  )
  if (dropped.length > 0) {
    console.log(`dropped ${dropped.length} test schema(s) left by earlier runs: ${dropped.join(", ")}`)
  }
}
