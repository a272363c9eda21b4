/**
 * What an idle record costs, by kind of heap object: takes a V8 heap
 * snapshot before and after creating `BREAKDOWN_N` (default 10,000) idle
 * (awake, not hibernating) records of the benchmark's `Character`, and
 * prints the bytes and the number of objects per record of the objects the
 * second snapshot holds and the first did not (matched by V8's object ids),
 * by kind (closures named by their source file and line, V8 contexts,
 * `FiberImpl`, `Set`, plain objects...) and, with `BREAKDOWN_BY=retainer`,
 * by kind and the object and field that holds them. Garbage collection marks
 * objects and follows pointers, so the object count matters as much as the
 * bytes. Where the memory target is missed, this says which objects to cut.
 *
 *   npm run bench:breakdown
 *   BREAKDOWN_N=20000 BREAKDOWN_BY=retainer npm run bench:breakdown
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { Store } from "effect-gen-server"
import { readFileSync, rmSync } from "node:fs"
import { Session } from "node:inspector"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { writeHeapSnapshot } from "node:v8"
import { collectGarbage } from "./harness.js"
import { Character, makeRecord } from "./workloads.js"

const count = Number(process.env.BREAKDOWN_N ?? 10_000)
const byRetainer = process.env.BREAKDOWN_BY === "retainer"

const snapshot = (): any => {
  collectGarbage()
  const path = writeHeapSnapshot(join(tmpdir(), `breakdown-${process.pid}-${Date.now()}.heapsnapshot`))
  const data = JSON.parse(readFileSync(path, "utf8"))
  rmSync(path)
  return data
}

/** The ids of a snapshot's objects, sorted, off the JS heap (a typed array). */
const idsOf = (data: any): Float64Array => {
  const fields: Array<string> = data.snapshot.meta.node_fields
  const idAt = fields.indexOf("id")
  const ids = new Float64Array(data.nodes.length / fields.length)
  for (let i = 0, j = 0; i < data.nodes.length; i += fields.length, j++) ids[j] = data.nodes[i + idAt]
  return ids.sort()
}

const has = (ids: Float64Array, id: number): boolean => {
  let lo = 0
  let hi = ids.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    const value = ids[mid]!
    if (value === id) return true
    if (value < id) lo = mid + 1
    else hi = mid - 1
  }
  return false
}

/** Script ids to file names, from the inspector (heap snapshots name closures' scripts by id). */
const scriptNames = (): Promise<Map<string, string>> => {
  const session = new Session()
  session.connect()
  const names = new Map<string, string>()
  session.on("Debugger.scriptParsed", (message) => {
    const url = message.params.url
    names.set(
      String(message.params.scriptId),
      url.replace(/^file:\/\/.*\/node_modules\//, "").replace(/^file:\/\/.*\/(src|bench)\//, "$1/")
    )
  })
  return new Promise((resolve) =>
    session.post("Debugger.enable", () => {
      session.disconnect()
      resolve(names)
    })
  )
}

/** Bytes and counts, per record, of the objects of `data` that `before` did not hold. */
const grown = (data: any, before: Float64Array, names: Map<string, string>) => {
  const meta = data.snapshot.meta
  const fields: Array<string> = meta.node_fields
  const types: Array<string> = meta.node_types[0]
  const edgeFields: Array<string> = meta.edge_fields
  const edgeTypes: Array<string> = meta.edge_types[0]
  const strings: Array<string> = data.strings
  const nodes: Array<number> = data.nodes
  const edges: Array<number> = data.edges
  const N = fields.length
  const E = edgeFields.length
  const [typeAt, nameAt, sizeAt, idAt, edgeCountAt] = ["type", "name", "self_size", "id", "edge_count"].map((f) =>
    fields.indexOf(f)
  ) as [number, number, number, number, number]
  const [edgeTypeAt, edgeNameAt, toAt] = ["type", "name_or_index", "to_node"].map((f) => edgeFields.indexOf(f)) as [
    number,
    number,
    number
  ]
  const locationFields: Array<string> = meta.location_fields
  const locations: Array<number> = data.locations
  const where = new Map<number, string>()
  for (let i = 0; i < locations.length; i += locationFields.length) {
    const script = String(locations[i + locationFields.indexOf("script_id")])
    const line = locations[i + locationFields.indexOf("line")]! + 1
    const column = locations[i + locationFields.indexOf("column")]! + 1
    where.set(
      locations[i + locationFields.indexOf("object_index")]!,
      `${names.get(script) ?? script}:${line}:${column}`
    )
  }
  const kind = (n: number) => {
    const type = types[nodes[n + typeAt]!]!
    if (type === "string" || type === "concatenated string" || type === "sliced string" || type === "number") {
      return type
    }
    const name = strings[nodes[n + nameAt]!]!.slice(0, 40)
    return `${type}${name === "" ? "" : `: ${name}`}${type === "closure" ? ` @ ${where.get(n) ?? "?"}` : ""}`
  }
  const holder = new Map<number, string>()
  if (byRetainer) {
    for (let n = 0, e = 0; n < nodes.length; n += N) {
      for (let k = 0; k < nodes[n + edgeCountAt]!; k++, e += E) {
        const type = edgeTypes[edges[e + edgeTypeAt]!]!
        const to = edges[e + toAt]!
        if (type === "weak" || holder.has(to)) continue
        const name = type === "element" || type === "hidden"
          ? `[${edges[e + edgeNameAt]}]`
          : strings[edges[e + edgeNameAt]!]
        holder.set(to, `${kind(n)} .${name}`)
      }
    }
  }
  const bytes = new Map<string, number>()
  const counts = new Map<string, number>()
  let totalBytes = 0
  let totalCount = 0
  for (let n = 0; n < nodes.length; n += N) {
    if (has(before, nodes[n + idAt]!)) continue
    // the sorted ids of the first snapshot (a typed array's store, off the JS heap) are this script's
    if (types[nodes[n + typeAt]!] === "native" && nodes[n + sizeAt]! >= before.byteLength) continue
    const key = byRetainer ? `${kind(n)}  <=  ${holder.get(n) ?? "?"}` : kind(n)
    bytes.set(key, (bytes.get(key) ?? 0) + nodes[n + sizeAt]!)
    counts.set(key, (counts.get(key) ?? 0) + 1)
    totalBytes += nodes[n + sizeAt]!
    totalCount++
  }
  return { bytes, counts, totalBytes, totalCount }
}

const program = Effect.gen(function*() {
  // warm up: the first records also create the resource's shared structures
  for (let i = 0; i < 100; i++) yield* Store.create(Character, "create", makeRecord(count + i))
  // before the first snapshot: the debugger loads the scripts' sources, which are not the records'
  const names = yield* Effect.promise(scriptNames)
  const before = idsOf(snapshot())
  for (let i = 0; i < count; i++) yield* Store.create(Character, "create", makeRecord(i))
  const after = grown(snapshot(), before, names)
  const rows = [...after.bytes].map(([key, bytes]) => ({
    key,
    bytes: bytes / count,
    count: after.counts.get(key)! / count
  })).filter((row) => row.bytes >= 1).sort((a, b) => b.bytes - a.bytes)
  console.log(
    `${count} idle records: ${(after.totalBytes / count).toFixed(0)} B and ${
      (after.totalCount / count).toFixed(1)
    } heap objects each, with their data, by kind of heap object${byRetainer ? " and what holds it" : ""}:`
  )
  for (const row of rows) {
    console.log(`${row.bytes.toFixed(0).padStart(6)} B  ${row.count.toFixed(2).padStart(6)} per record  ${row.key}`)
  }
})

Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(Store.layer([Character])))).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
