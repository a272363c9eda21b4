/**
 * Where the CPU time of processes profiled with `--cpu-prof` went:
 * `npx tsx bench/cluster/profile.ts <dir>` reads every `.cpuprofile` in
 * `dir` and prints, per file, self time by part of the stack (PostgreSQL
 * driver, `effect/cluster`, RPC and serialization, Schema, Effect's runtime,
 * this library, Node, GC; idle and the profiler's own work left out) and the
 * heaviest functions. Functions of this library show as anonymous at line 1
 * (tsx compiles a module to one line).
 */
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

interface Node {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
}
interface Profile {
  readonly nodes: ReadonlyArray<Node>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const parts: ReadonlyArray<readonly [string, (url: string, fn: string) => boolean]> = [
  ["idle", (_, fn) => fn === "(idle)"],
  ["profiler", (url) => url === "node:inspector"],
  ["GC", (_, fn) => fn === "(garbage collector)"],
  ["PostgreSQL driver (postgres, @effect/sql-pg)", (url) => /node_modules\/(postgres|pg|@effect\/sql-pg)\//.test(url)],
  ["effect/sql", (url) => /effect\/(dist|src)\/(unstable\/)?sql\//.test(url)],
  ["effect/cluster", (url) => /effect\/(dist|src)\/(unstable\/)?cluster\//.test(url)],
  [
    "effect/rpc, sockets, serialization",
    (url) => /effect\/(dist|src)\/(unstable\/)?(rpc|socket)\//.test(url) || /msgpackr|platform-node/.test(url)
  ],
  ["effect Schema", (url) => /effect\/(dist|src)\/(Schema|SchemaAST|SchemaParser|internal\/schema)/.test(url)],
  ["effect runtime and data types", (url) => /node_modules\/effect\//.test(url)],
  ["effect-gen-server (src/)", (url) => /\/src\//.test(url) && !/node_modules/.test(url)],
  ["Node.js (node:, internal)", (url) => url.startsWith("node:") || url === ""],
  ["other", () => true]
]

const dir = process.argv[2]
if (dir === undefined) {
  console.error("usage: npx tsx bench/cluster/profile.ts <dir of .cpuprofile files>")
  process.exit(2)
}
for (const file of readdirSync(dir).filter((f) => f.endsWith(".cpuprofile")).sort()) {
  const profile: Profile = JSON.parse(readFileSync(join(dir, file), "utf8"))
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  const byPart = new Map<string, number>()
  const byFunction = new Map<string, number>()
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame
    const part = parts.find(([, test]) => test(url, functionName))![0]
    byPart.set(part, (byPart.get(part) ?? 0) + us)
    const name = `${functionName || "(anonymous)"} ${
      url.replace(/^.*node_modules\//, "").replace(/^file:\/\/.*?\/src\//, "src/")
    }:${lineNumber + 1}`
    byFunction.set(name, (byFunction.get(name) ?? 0) + us)
  }
  const busy = total - (byPart.get("idle") ?? 0) - (byPart.get("profiler") ?? 0)
  console.log(`\n${file}: ${(total / 1e6).toFixed(1)} s profiled, ${(busy / 1e6).toFixed(1)} s busy`)
  console.log("| part | share of busy time |")
  console.log("| --- | ---: |")
  for (const [part, us] of [...byPart].filter(([p]) => p !== "idle" && p !== "profiler").sort((a, b) => b[1] - a[1])) {
    console.log(`| ${part} | ${((100 * us) / busy).toFixed(1)}% |`)
  }
  console.log("heaviest functions (self time, share of busy):")
  for (
    const [name, us] of [...byFunction].sort((a, b) => b[1] - a[1]).filter(([n]) =>
      !n.startsWith("(idle)") && !n.includes("node:inspector")
    ).slice(
      0,
      15
    )
  ) {
    console.log(`  ${((100 * us) / busy).toFixed(1)}%  ${name}`)
  }
}
