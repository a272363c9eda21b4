/**
 * Writes of a field or an action v1 does not know, sent by a v2 caller:
 * `node --import tsx upgrade-probe.ts <schema> <round>`, a client-only process
 * running v2 of Tally (`upgrade-domain.ts`), its calls re-sent 3 times. Makes
 * three calls, each printing `RESULT <case> <outcome> <label>` (`<outcome>`:
 * `ok`, or the failure's tag and, for `Unavailable`, its `applied`; `<label>`:
 * the label of the record acknowledged, or `-`), then `DONE`:
 *
 * - `create`: creates `p<round>` with `label: "x"` (the default create action);
 * - `update`: sets `label: "y"` on `r0` (the default update action);
 * - `relabel`: `relabel` of `r1` to `"z"` (an action only v2 has).
 *
 * With a third argument `older`, it runs v1 instead and makes one call:
 * `older`, a create of `q<round>` (no label: v1 knows none), printing its
 * outcome the same way.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { Store } from "../../../src/index.js"
import { storeLayer, TallyV1, TallyV2 } from "./upgrade-domain.js"

const [schema, round, mode] = process.argv.slice(2)
const out = (line: string) => Effect.sync(() => process.stdout.write(line + "\n"))

const probe = <E extends { readonly _tag: string }, R>(
  name: string,
  call: Effect.Effect<{ readonly label: string }, E, R>
) =>
  call.pipe(
    Effect.map((record) => `RESULT ${name} ok ${String(record.label)}`),
    Effect.catch((e) =>
      Effect.succeed(
        `RESULT ${name} ${e._tag}${
          e._tag === "Unavailable" ? `:${(e as unknown as { applied: string }).applied}` : ""
        } -`
      )
    ),
    Effect.flatMap(out)
  )

const newer = Effect.gen(function*() {
  yield* probe("create", Store.create(TallyV2, "create", { id: `p${round}`, tokens: [], label: "x" }))
  yield* probe("update", Store.update(TallyV2, { id: "r0" }, "update", { label: "y" }))
  yield* probe("relabel", Store.update(TallyV2, { id: "r1" }, "relabel", { label: "z" }))
  yield* out("DONE")
}).pipe(Effect.provide(storeLayer(schema!, undefined, 2, 3)))

const older = Effect.gen(function*() {
  yield* probe(
    "older",
    Effect.map(Store.create(TallyV1, "create", { id: `q${round}`, tokens: [] }), () => ({ label: "-" }))
  )
  yield* out("DONE")
}).pipe(Effect.provide(storeLayer(schema!, undefined, 1, 3)))

NodeRuntime.runMain(mode === "older" ? older : newer)
