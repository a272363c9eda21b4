/**
 * `effect/cluster` baselines: the record as an entity with a `Get` and an
 * `Update` RPC, the engine DESIGN.md plans as the next data layer.
 *
 * Two runtimes: `TestRunner.layer` (the whole single-process cluster:
 * `Sharding`, in-memory message storage, entity manager and mailboxes) and
 * `Entity.makeTestClient` (the entity's RPC server and a no-serialization
 * client per entity, without `Sharding`).
 *
 * **Bounded.** `ShardingConfig.maxResidentEntities` defaults to 10,000: past
 * it, calls to new entities fail with `MailboxFull`. The entity count is
 * therefore capped at `entityCap` whatever the size, every figure says how many
 * entities it ran over, and at sizes above the cap a probe activates entities
 * up to `probeCount` and reports how many calls failed.
 *
 * @since 0.1.0
 */
import { Cause, Effect, Layer, Ref, Schema } from "effect"
import { Entity, ShardingConfig, TestRunner } from "effect/cluster"
import { Rpc } from "effect/rpc"
import type { BaselineReport, BaselineResult, Options } from "../harness.js"
import {
  baseline,
  collectGarbage,
  latencyBudget,
  measureHeap,
  measureLatency,
  measureOps,
  progress
} from "../harness.js"
import { indexFor, keyOf, lessRecordData, makeRecord, measureRecordData, Workload } from "../workloads.js"

/**
 * At most this many entities are activated for the measurements.
 *
 * @category constants
 * @since 0.1.0
 */
export const entityCap = 8_000

/**
 * Above `entityCap`, the probe activates this many entities in all.
 *
 * @category constants
 * @since 0.1.0
 */
export const probeCount = 12_000

const Record = Schema.Struct({ id: Schema.String, name: Schema.String, currentYear: Schema.Int })

const Get = Rpc.make("Get", { success: Record })

const Update = Rpc.make("Update", { payload: { currentYear: Schema.Int }, success: Record })

const RecordEntity = Entity.make("Record", [Get, Update])

const RecordEntityLayer = RecordEntity.toLayer(Effect.gen(function*() {
  const address = yield* Entity.CurrentAddress
  const state = yield* Ref.make(makeRecord(Number(address.entityId.slice(3))))
  return RecordEntity.of({
    Get: () => Ref.get(state),
    Update: ({ payload }) => Ref.updateAndGet(state, (record) => ({ ...record, currentYear: payload.currentYear }))
  })
}))

interface RecordClient {
  readonly Get: () => Effect.Effect<unknown, unknown>
  readonly Update: (payload: { readonly currentYear: number }) => Effect.Effect<unknown, unknown>
}

const measureCalls = Effect.fnUntraced(function*(
  size: number,
  count: number,
  name: string,
  clients: ReadonlyArray<RecordClient>,
  options: Options,
  withLatency: boolean
) {
  const { budget, callers } = options
  const at = (i: number) => clients[indexFor(i, count)]!
  const results: Array<BaselineResult> = [
    baseline(Workload.get1.name, size, name, yield* measureOps((i) => at(i).Get(), { budget })),
    baseline(Workload.get64.name, size, name, yield* measureOps((i) => at(i).Get(), { budget, callers })),
    baseline(
      Workload.update1.name,
      size,
      name,
      yield* measureOps((i) => at(i).Update({ currentYear: 1900 + (i % 100) }), { budget })
    ),
    baseline(
      Workload.update64.name,
      size,
      name,
      yield* measureOps((i) => at(i).Update({ currentYear: 1900 + (i % 100) }), { budget, callers })
    )
  ]
  if (withLatency) {
    const latency = yield* measureLatency((i) => at(i).Get(), { budget: latencyBudget(budget, size), callers })
    const updateLatency = yield* measureLatency((i) => at(i).Update({ currentYear: 1900 + (i % 100) }), {
      budget: latencyBudget(budget, size),
      callers
    })
    results.push(
      baseline(Workload.p50.name, size, name, latency.p50),
      baseline(Workload.p99.name, size, name, latency.p99),
      baseline(Workload.updateP50.name, size, name, updateLatency.p50),
      baseline(Workload.updateP99.name, size, name, updateLatency.p99)
    )
  }
  return results
})

const onTestRunner = Effect.fnUntraced(function*(size: number, count: number, options: Options) {
  const name = `cluster entity, TestRunner (${count} entities)`
  const clientFor = yield* RecordEntity.client
  const clients: Array<RecordClient> = Array.from({ length: count }, (_, i) => clientFor(keyOf(i)))
  const data = yield* measureRecordData(count)
  // Activation: the first call to each entity, one after another.
  const activated = yield* measureHeap(count, Effect.forEach(clients, (client) => client.Get(), { discard: true }))
  yield* progress(`cluster ${size}: activated ${count} entities in ${activated.elapsedMs.toFixed(0)} ms`)
  const results: Array<BaselineResult> = [
    baseline(Workload.create.name, size, `${name}, first call`, activated.rate),
    baseline(Workload.memory.name, size, name, lessRecordData(activated.bytesPerItem, data, "entity")),
    ...yield* measureCalls(size, count, name, clients, options, true)
  ]
  const notes: Array<string> = []
  if (size > count) {
    // What happens past the cap, measured rather than assumed.
    const extra = Math.min(size, probeCount) - count
    let failures = 0
    let reason = ""
    yield* Effect.forEach(
      Array.from({ length: extra }, (_, i) => clientFor(keyOf(count + i))),
      (client) =>
        client.Get().pipe(Effect.catchCause((cause) =>
          Effect.sync(() => {
            failures++
            if (reason === "") {
              const error = Cause.squash(cause)
              reason = (error as { readonly _tag?: string })._tag ?? String(error)
            }
          })
        )),
      { concurrency: 64, discard: true }
    )
    notes.push(
      `cluster, TestRunner: measured over ${count} of ${size} entities; activating ${
        count + extra
      } in all made ${failures} calls fail${failures > 0 ? ` (${reason})` : ""}`
    )
  }
  return { results, notes }
})

const withTestClient = Effect.fnUntraced(function*(size: number, count: number, options: Options) {
  const name = `cluster entity, Entity.makeTestClient (${count} entities)`
  const makeClient = yield* Entity.makeTestClient(RecordEntity, RecordEntityLayer)
  const clients: ReadonlyArray<RecordClient> = yield* Effect.forEach(
    Array.from({ length: count }, (_, i) => keyOf(i)),
    (id) => makeClient(id)
  )
  yield* Effect.forEach(clients, (client) => client.Get(), { discard: true })
  return yield* measureCalls(size, count, name, clients, options, false)
})

/**
 * Measures the `effect/cluster` baselines at one size, over at most
 * `entityCap` entities.
 *
 * @category baselines
 * @since 0.1.0
 */
export const run = Effect.fnUntraced(function*(size: number, options: Options) {
  const count = Math.min(size, entityCap)
  yield* progress(`cluster ${size}: TestRunner over ${count} entities`)
  const runner = yield* onTestRunner(size, count, options).pipe(
    Effect.provide(RecordEntityLayer.pipe(Layer.provideMerge(TestRunner.layer)))
  )
  collectGarbage()
  yield* progress(`cluster ${size}: Entity.makeTestClient over ${count} entities`)
  const direct = yield* withTestClient(size, count, options).pipe(
    Effect.scoped,
    Effect.provide(ShardingConfig.layerDefaults)
  )
  return { results: [...runner.results, ...direct], notes: runner.notes } satisfies BaselineReport
})
