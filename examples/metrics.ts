/**
 * The metrics and spans of a store, printed.
 *
 * Creates a few records, updates them from concurrent callers, crashes one,
 * lets some expire, then prints every `effect_gen_server_*` series of the
 * Metric registry and the spans the Store operations recorded.
 *
 * Run with `npm run example:metrics`.
 */
import { Console, Effect, Layer, Metric, Schema, Tracer } from "effect"
import { Action, Changeset, Resource, Store } from "effect-gen-server"

const Cart = Resource.make("Cart", {
  fields: { id: Schema.String, items: Schema.Int },
  primaryKey: ["id"],
  inactivityTimeout: "100 millis",
  restart: "lastState",
  actions: {
    add: Action.update({ change: (cs) => Changeset.set(cs, "items", Changeset.get(cs, "items") + 1) }),
    // an effectful change: it runs in the record's fiber with a span and log annotations
    audit: Action.update({
      change: (cs) => Effect.as(Effect.logDebug("audited"), cs)
    }),
    explode: Action.update({ change: () => Effect.die("boom") })
  }
})

// a tracer that keeps the names of ended spans
const spans = new Map<string, number>()
const tracer = Tracer.make({
  span: (options) => {
    const span = new Tracer.NativeSpan(options)
    const end = span.end.bind(span)
    span.end = (time, exit) => {
      spans.set(span.name, (spans.get(span.name) ?? 0) + 1)
      end(time, exit)
    }
    return span
  }
})

const program = Effect.gen(function*() {
  for (let i = 0; i < 5; i++) yield* Store.create(Cart, "create", { id: `cart-${i}`, items: 0 })
  yield* Effect.forEach(
    Array.from({ length: 200 }, (_, i) => i),
    (i) => Store.update(Cart, { id: `cart-${i % 5}` }, "add"),
    { concurrency: 64 }
  )
  yield* Store.update(Cart, { id: "cart-2" }, "audit")
  yield* Effect.ignore(Store.update(Cart, { id: "cart-0" }, "explode"))
  yield* Store.destroy(Cart, { id: "cart-1" })
  yield* Effect.sleep("300 millis") // the others expire

  const snapshot = yield* Metric.snapshot
  yield* Console.log("metrics:")
  for (const metric of snapshot.filter((m) => m.id.startsWith("effect_gen_server"))) {
    const attributes = Object.entries(metric.attributes ?? {}).map(([k, v]) => `${k}=${v}`).join(",")
    const state = metric.state as unknown as { count?: number; value?: number; sum?: number }
    const value = state.count !== undefined && state.sum !== undefined
      ? `count=${state.count} sum=${state.sum.toFixed(3)}`
      : String(state.count ?? state.value)
    yield* Console.log(`  ${metric.id}{${attributes}} ${value}`)
  }
  yield* Console.log("spans:")
  for (const [name, count] of spans) yield* Console.log(`  ${name} x${count}`)
})

program.pipe(
  Effect.provide(Store.layer([Cart])),
  Effect.provide(Layer.succeed(Tracer.Tracer, tracer)),
  Effect.runPromise
).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
