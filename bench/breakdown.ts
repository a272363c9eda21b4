/**
 * What an idle record costs, by kind of heap object: takes a V8 heap
 * snapshot before and after creating `BREAKDOWN_N` (default 10,000) idle
 * records of the benchmark's `Character`, and prints the bytes and counts
 * per record of each kind of object that grew (closures, V8 contexts,
 * `FiberImpl`, `Set`, plain objects...). Where the memory target is missed,
 * this says which objects to cut.
 *
 *   npm run bench:breakdown
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { Store } from "effect-gen-server"
import { readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { writeHeapSnapshot } from "node:v8"
import { collectGarbage } from "./harness.js"
import { Character, makeRecord } from "./workloads.js"

const count = Number(process.env.BREAKDOWN_N ?? 10_000)

interface Totals {
  readonly bytes: Map<string, number>
  readonly counts: Map<string, number>
}

/** Self sizes and counts of a heap snapshot's nodes by `type:name`. */
const snapshot = (): Totals => {
  collectGarbage()
  const path = writeHeapSnapshot(join(tmpdir(), `breakdown-${process.pid}-${Date.now()}.heapsnapshot`))
  const data = JSON.parse(readFileSync(path, "utf8"))
  rmSync(path)
  const fields: Array<string> = data.snapshot.meta.node_fields
  const types: Array<string> = data.snapshot.meta.node_types[0]
  const strings: Array<string> = data.strings
  const nodes: Array<number> = data.nodes
  const [typeAt, nameAt, sizeAt] = ["type", "name", "self_size"].map((f) => fields.indexOf(f))
  const bytes = new Map<string, number>()
  const counts = new Map<string, number>()
  for (let i = 0; i < nodes.length; i += fields.length) {
    const type = types[nodes[i + typeAt!]!]!
    // strings are named by their contents: group them by type only
    const name = type === "string" || type === "concatenated string" || type === "sliced string"
      ? ""
      : strings[nodes[i + nameAt!]!]!.slice(0, 40)
    const key = `${type}${name === "" ? "" : `: ${name}`}`
    bytes.set(key, (bytes.get(key) ?? 0) + nodes[i + sizeAt!]!)
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return { bytes, counts }
}

const program = Effect.gen(function*() {
  // warm up: the first records also create the resource's shared structures
  for (let i = 0; i < 100; i++) yield* Store.create(Character, "create", makeRecord(count + i))
  const before = snapshot()
  for (let i = 0; i < count; i++) yield* Store.create(Character, "create", makeRecord(i))
  const after = snapshot()
  const rows = [...after.bytes].map(([key, bytes]) => ({
    key,
    bytes: (bytes - (before.bytes.get(key) ?? 0)) / count,
    count: ((after.counts.get(key) ?? 0) - (before.counts.get(key) ?? 0)) / count
  })).filter((row) => row.bytes >= 1).sort((a, b) => b.bytes - a.bytes)
  const total = rows.reduce((sum, row) => sum + row.bytes, 0)
  console.log(`${count} idle records: ${total.toFixed(0)} B each, with their data, by kind of heap object:`)
  for (const row of rows) {
    console.log(`${row.bytes.toFixed(0).padStart(6)} B  ${row.count.toFixed(2).padStart(6)} per record  ${row.key}`)
  }
})

Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(Store.layer([Character])))).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
