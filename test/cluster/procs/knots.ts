/**
 * Crossing pulls: `node --import tsx knots.ts <schema> <pairs>`. Creates the
 * knots `K<i>a` and `K<i>b`, asks each which runner owns it, then makes every
 * pair pull towards each other at once (each call bounded to 20 s). Prints
 * `PAIR <i> <runner of a> <runner of b> <outcome of a> <outcome of b>` (an
 * outcome is `ok`, `deadlock` for a call refused as re-entrant, `timeout`, or
 * the failure's tag), then `AFTER <bumps of every knot, once more>` and `DONE`.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { Store } from "../../../src/index.js"
import { Knot, storeLayer } from "./domain.js"

const [schema, pairs] = process.argv.slice(2)
const out = (line: string) => Effect.sync(() => process.stdout.write(line + "\n"))

const outcome = <R>(call: Effect.Effect<unknown, { readonly _tag: string; readonly message: string }, R>) =>
  call.pipe(
    Effect.as("ok"),
    Effect.timeoutOrElse({ duration: "20 seconds", orElse: () => Effect.succeed("timeout") }),
    Effect.catch((e) => Effect.succeed(e.message.includes("would deadlock") ? "deadlock" : e._tag))
  )

const main = Effect.gen(function*() {
  const indexes = Array.from({ length: Number(pairs) }, (_, i) => i)
  const ids = indexes.flatMap((i) => [`K${i}a`, `K${i}b`])
  yield* Effect.forEach(ids, (id) => Store.create(Knot, "create", { id, bumps: 0, runner: "" }), { concurrency: 8 })
  const owners = new Map<string, string>()
  yield* Effect.forEach(
    ids,
    (id) => Effect.map(Store.update(Knot, { id }, "where", {}), (k) => owners.set(id, k.runner)),
    {
      concurrency: 8
    }
  )
  yield* out("STARTED")
  yield* Effect.forEach(indexes, (i) =>
    Effect.gen(function*() {
      const [a, b] = yield* Effect.all([
        outcome(Store.update(Knot, { id: `K${i}a` }, "pull", { towards: `K${i}b` })),
        outcome(Store.update(Knot, { id: `K${i}b` }, "pull", { towards: `K${i}a` }))
      ], { concurrency: 2 })
      yield* out(`PAIR ${i} ${owners.get(`K${i}a`)} ${owners.get(`K${i}b`)} ${a} ${b}`)
    }), { concurrency: "unbounded", discard: true })
  // nothing is left waiting: every knot takes one more bump
  const after = yield* Effect.forEach(ids, (id) => outcome(Store.update(Knot, { id }, "bump", {})), {
    concurrency: 8
  })
  yield* out(`AFTER ${after.join(" ")}`)
  yield* out("DONE")
}).pipe(Effect.provide(storeLayer(schema!, undefined)))

NodeRuntime.runMain(main)
