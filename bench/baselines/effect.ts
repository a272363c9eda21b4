/**
 * Raw Effect baselines: what a record server costs when built from Effect's
 * primitives with nothing else around them.
 *
 * A "server" here is exactly what DESIGN.md calls a record server stripped to
 * the bone: a fiber blocked on an unbounded `Queue`, holding the record in a
 * `Ref`, registered in a `Map` under its key. A call is a `Deferred` offered
 * with the request and awaited. These are the limits the library's record
 * servers can approach, not beat: `Ref.get` through the `Map` for a read that
 * skips the mailbox, the `Queue` + `Deferred` round trip for one that goes
 * through it, `Array.filter` + sort + slice over plain records for a query.
 *
 * @since 0.1.0
 */
import { Deferred, Effect, Exit, Queue, Ref, Scheduler, Scope } from "effect"
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
import type { SampleRecord } from "../workloads.js"
import {
  filteredQuery,
  indexFor,
  keyOf,
  lessRecordData,
  makeRecord,
  measureRecordData,
  Workload
} from "../workloads.js"

type Request =
  | { readonly _tag: "Get"; readonly reply: Deferred.Deferred<SampleRecord> }
  | { readonly _tag: "Update"; readonly currentYear: number; readonly reply: Deferred.Deferred<SampleRecord> }

interface Server {
  readonly mailbox: Queue.Queue<Request>
  readonly state: Ref.Ref<SampleRecord>
}

const handle = (state: Ref.Ref<SampleRecord>, request: Request): Effect.Effect<boolean> =>
  request._tag === "Get"
    ? Effect.flatMap(Ref.get(state), (record) => Deferred.succeed(request.reply, record))
    : Effect.flatMap(
      Ref.updateAndGet(state, (record) => ({ ...record, currentYear: request.currentYear })),
      (record) => Deferred.succeed(request.reply, record)
    )

const serve = (server: Server): Effect.Effect<never> =>
  Effect.forever(Effect.flatMap(Queue.take(server.mailbox), (request) => handle(server.state, request)))

const spawn = Effect.fnUntraced(function*(record: SampleRecord, scope: Scope.Scope) {
  const mailbox = yield* Queue.unbounded<Request>()
  const state = yield* Ref.make(record)
  const server: Server = { mailbox, state }
  yield* Effect.forkIn(serve(server), scope, { startImmediately: true })
  return server
})

const call = Effect.fnUntraced(function*(
  server: Server,
  request: (reply: Deferred.Deferred<SampleRecord>) => Request
) {
  const reply = yield* Deferred.make<SampleRecord>()
  yield* Queue.offer(server.mailbox, request(reply))
  return yield* Deferred.await(reply)
})

const get = (server: Server) => call(server, (reply) => ({ _tag: "Get", reply }))

const update = (server: Server, currentYear: number) =>
  call(server, (reply) => ({ _tag: "Update", currentYear, reply }))

const topTen = (records: Iterable<SampleRecord>): Array<SampleRecord> => {
  const matching: Array<SampleRecord> = []
  for (const record of records) if (filteredQuery.matches(record)) matching.push(record)
  return matching.sort(filteredQuery.compare).slice(0, filteredQuery.limit)
}

/**
 * Spawns `size` servers in a fresh scope; returns them by key with the spawn
 * rate and heap bytes per server (fiber + queue + ref + record + map entry;
 * the record is subtracted by the caller).
 */
const population = Effect.fnUntraced(function*(size: number, measureMemory: boolean) {
  const keys = Array.from({ length: size }, (_, i) => keyOf(i))
  const scope = yield* Scope.make()
  const spawnAll = Effect.gen(function*() {
    const registry = new Map<string, Server>()
    for (let i = 0; i < size; i++) {
      registry.set(keys[i]!, yield* spawn(makeRecord(i), scope))
    }
    return registry
  })
  const start = performance.now()
  const measured = measureMemory ? yield* measureHeap(size, spawnAll) : undefined
  const registry = measured?.value ?? (yield* spawnAll)
  const elapsedMs = measured?.elapsedMs ?? performance.now() - start
  const at = (i: number): Server => registry.get(keys[indexFor(i, size)]!)!
  return { registry, at, scope, measured, elapsedMs }
})

// A read that skips the mailbox, as a library function would be written:
// Effect.fnUntraced inside the library, Effect.fn("...") at a traced public
// entry point (which creates a span per call).
const readUntraced = (at: (i: number) => Server) =>
  Effect.fnUntraced(function*(i: number) {
    return yield* Ref.get(at(i).state)
  })

const readTraced = (at: (i: number) => Server) =>
  Effect.fn("bench.get")(function*(i: number) {
    return yield* Ref.get(at(i).state)
  })

const mailboxName = "Queue+Deferred round trip"

const measureServers = Effect.fnUntraced(function*(size: number, options: Options, schedulerName: string) {
  const { budget, callers } = options
  const suffix = schedulerName === "" ? "" : ` (${schedulerName})`
  const results: Array<BaselineResult> = []
  const servers = yield* population(size, schedulerName === "")
  const { at, measured, registry } = servers
  if (measured !== undefined) {
    results.push(
      baseline(Workload.create.name, size, "Effect fiber+Queue+Ref spawn", measured.rate),
      baseline(
        Workload.memory.name,
        size,
        "Effect fiber+Queue+Ref+Map entry",
        lessRecordData(measured.bytesPerItem, yield* measureRecordData(size), "server")
      )
    )
  }
  yield* progress(`effect${suffix} ${size}: spawned in ${servers.elapsedMs.toFixed(0)} ms; round trips`)
  results.push(
    baseline(Workload.get1.name, size, mailboxName + suffix, yield* measureOps((i) => get(at(i)), { budget })),
    ...(schedulerName === ""
      ? [
        baseline(
          Workload.get1.name,
          size,
          `${mailboxName}, one server`,
          yield* measureOps(() => get(at(0)), { budget })
        )
      ]
      : []),
    baseline(Workload.get64.name, size, mailboxName + suffix, yield* measureOps((i) => get(at(i)), { budget, callers }))
  )
  if (schedulerName === "") {
    results.push(
      baseline(
        Workload.update1.name,
        size,
        mailboxName,
        yield* measureOps((i) => update(at(i), 1900 + (i % 100)), { budget })
      ),
      baseline(
        Workload.update64.name,
        size,
        mailboxName,
        yield* measureOps((i) => update(at(i), 1900 + (i % 100)), { budget, callers })
      )
    )
    const latency = yield* measureLatency((i) => get(at(i)), { budget: latencyBudget(budget, size), callers })
    results.push(
      baseline(Workload.p50.name, size, mailboxName, latency.p50),
      baseline(Workload.p99.name, size, mailboxName, latency.p99)
    )
    const updateLatency = yield* measureLatency((i) => update(at(i), 1900 + (i % 100)), {
      budget: latencyBudget(budget, size),
      callers
    })
    results.push(
      baseline(Workload.updateP50.name, size, mailboxName, updateLatency.p50),
      baseline(Workload.updateP99.name, size, mailboxName, updateLatency.p99)
    )
    yield* progress(`effect ${size}: reads without the mailbox`)
    results.push(
      baseline(
        Workload.get1.name,
        size,
        "Ref.get through a Map, Effect.fnUntraced",
        yield* measureOps(readUntraced(at), { budget })
      ),
      baseline(
        Workload.get1.name,
        size,
        "Ref.get through a Map, Effect.fn span",
        yield* measureOps(readTraced(at), { budget })
      ),
      baseline(
        Workload.read.name,
        size,
        "Map of Refs, filter+sort+slice",
        yield* measureOps(
          () => Effect.sync(() => topTen(Array.from(registry.values(), (s) => Ref.getUnsafe(s.state)))),
          {
            budget
          }
        )
      )
    )
  }
  const closing = performance.now()
  yield* Scope.close(servers.scope, Exit.void)
  yield* progress(`effect${suffix} ${size}: closed ${size} fibers in ${(performance.now() - closing).toFixed(0)} ms`)
  return results
})

/**
 * Measures the raw Effect baselines at one size.
 *
 * @category baselines
 * @since 0.1.0
 */
export const run = Effect.fnUntraced(function*(size: number, options: Options) {
  const results: Array<BaselineResult> = []
  results.push(...yield* measureServers(size, options, ""))
  collectGarbage()
  // The same round trip when fibers resume through microtasks instead of
  // setImmediate: every server and caller must run on that scheduler.
  results.push(
    ...yield* measureServers(size, options, "microtask scheduler").pipe(
      Effect.provideService(Scheduler.Scheduler, new Scheduler.MixedScheduler("sync"))
    )
  )
  collectGarbage()

  yield* progress(`effect ${size}: filter+sort+slice over plain records`)
  const records = Array.from({ length: size }, (_, i) => makeRecord(i))
  results.push(
    baseline(
      Workload.read.name,
      size,
      "Array filter+sort+slice",
      yield* measureOps(
        () =>
          Effect.sync(() =>
            records.filter(filteredQuery.matches).sort(filteredQuery.compare).slice(0, filteredQuery.limit)
          ),
        { budget: options.budget }
      )
    )
  )
  return { results, notes: [] } satisfies BaselineReport
})
