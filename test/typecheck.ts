/**
 * Compile-time checks of the public API: every `@ts-expect-error` below must
 * be an error, so `tsc` (run by `npm test`) fails if a check stops working.
 */
import { Effect } from "effect"
import { Filter, Query, Store } from "../src/index.js"
import { Character, Machine } from "./fixtures/TimeTravel.js"
import type { Resource } from "../src/index.js"
const q = Query.make(Character)
export const ok = q.pipe(
  Query.filter(Filter.eq("nickname", "Marty")),
  Query.filter(Filter.and(Filter.gte("currentYear", 1955), Filter.not(Filter.isNil("name")))),
  Query.sort("name", "desc"),
  Query.offset(0),
  Query.limit(10)
)
// @ts-expect-error unknown field
export const bad1 = Store.read(q.pipe(Query.filter(Filter.eq("nick", "Marty"))))
// @ts-expect-error wrong value type
export const bad2 = Store.read(q.pipe(Query.filter(Filter.eq("currentYear", "1955"))))
// @ts-expect-error unknown sort field
export const bad3 = Store.read(q.pipe(Query.sort("age")))
// @ts-expect-error unknown field inside and
export const bad4 = Store.read(q.pipe(Query.filter(Filter.and(Filter.eq("name", "x"), Filter.eq("zzz", 1)))))
// @ts-expect-error unknown action
export const bad5 = Store.update(Machine, { id: "1" }, "fly")
// @ts-expect-error missing argument
export const bad6 = Store.update(Machine, { id: "1" }, "retrofit")
// @ts-expect-error wrong argument type
export const bad7 = Store.update(Character, { id: "1" }, "travelInTime", { targetYear: "1955" })
// @ts-expect-error missing required field on create
export const bad8 = Store.create(Character, "create", { name: "Marty" })
// @ts-expect-error update action passed to create
export const bad9 = Store.create(Machine, "charge", {})
export const good = Effect.gen(function*() {
  const m = yield* Store.create(Machine, "create", { name: "OUTATIME" })
  const c = yield* Store.update(Machine, m, "charge")
  yield* Store.update(Machine, c, "retrofit", { powerSource: "Lightning" })
  yield* Store.destroy(Machine, c)
  const r: ReadonlyArray<Resource.Record<typeof Character>> = yield* Store.read(ok)
  return r
})

