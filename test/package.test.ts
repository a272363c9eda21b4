/**
 * The package as its users get it: `npm run build`, `npm pack`, then a fresh
 * project that installs the tarball (with `effect` and `typescript` linked
 * from this repository's `node_modules`, so no network is needed),
 * type-checks a program importing `effect-gen-server` and
 * `effect-gen-server/Store`, and runs it with Node.
 *
 * Skipped, with the reason, when `npm` cannot be run.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const isWindows = process.platform === "win32"
const npm = isWindows ? "npm.cmd" : "npm"

// npm and the programs it starts run on the Node that runs the tests.
const env = {
  ...process.env,
  PATH: [Path.dirname(process.execPath), Path.join(root, "node_modules", ".bin"), process.env.PATH].join(
    Path.delimiter
  ),
  npm_config_audit: "false",
  npm_config_fund: "false",
  npm_config_update_notifier: "false"
}

const npmVersion = spawnSync(npm, ["--version"], { env, encoding: "utf8", shell: isWindows })
const npmError = npmVersion.error?.message ?? npmVersion.stderr?.trim()
const npmMissing = npmVersion.status === 0
  ? undefined
  : `npm is not available (${npmError}): the package test needs npm to pack and install the tarball`

const run = (command: string, args: ReadonlyArray<string>, cwd: string): string => {
  try {
    return execFileSync(command, args, {
      cwd,
      env,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      shell: isWindows && command === npm
    })
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string }
    throw new Error(`${command} ${args.join(" ")} failed in ${cwd}\n${e.message}\n${e.stdout ?? ""}\n${e.stderr ?? ""}`)
  }
}

const program = `import { Effect, Schema } from "effect"
import { Action, Changeset, Inspector, Resource, Store } from "effect-gen-server"
import * as StoreModule from "effect-gen-server/Store"

const Character = Resource.make("Character", {
  fields: { id: Schema.String, name: Schema.String, currentYear: Schema.Int },
  primaryKey: ["id"],
  generated: { id: () => "marty" },
  actions: {
    travelInTime: Action.update({
      arguments: { targetYear: Schema.Int },
      change: (cs) => Changeset.set(cs, "currentYear", cs.arguments.targetYear)
    })
  }
})
type Character = Resource.Record<typeof Character>

const program = Effect.gen(function*() {
  const marty: Character = yield* StoreModule.create(Character, "create", { name: "Marty", currentYear: 1985 })
  yield* Store.update(Character, marty, "travelInTime", { targetYear: 1955 })
  // @ts-expect-error the published declarations are precise: an unknown action does not compile
  const unknown = Store.update(Character, marty, "fly")
  void unknown
  const again = yield* Store.get(Character, { id: marty.id })
  return \`\${again.id} \${again.name} \${again.currentYear}\`
}).pipe(Effect.provide(StoreModule.layer([Character])))

const internal = "effect-gen-server/internal/pipeline"
const closed = await import(internal).then(() => "open", (e: { readonly code?: string }) => e.code)
// @effect/platform-node is an optional peer, not installed here: the inspector says what to install
const inspector = await Effect.runPromise(Effect.flip(
  Inspector.Inspector.pipe(Effect.provide(Inspector.layer({ port: 0 })), Effect.provide(StoreModule.layer([Character])))
))
console.log(JSON.stringify({
  result: await Effect.runPromise(program),
  sameModule: Store.layer === StoreModule.layer,
  internal: closed,
  inspector: [inspector._tag, (inspector.cause as Error).message]
}))
`

const tsconfig = {
  compilerOptions: {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    lib: ["ES2023", "DOM"],
    types: [],
    strict: true,
    exactOptionalPropertyTypes: true,
    skipLibCheck: true,
    outDir: "out"
  },
  files: ["main.ts"]
}

describe("package", () => {
  it("builds, packs, installs into a fresh project, type-checks and runs", (ctx) => {
    if (npmMissing !== undefined) ctx.skip(npmMissing)

    const manifest = JSON.parse(Fs.readFileSync(Path.join(root, "package.json"), "utf8"))
    assert.isUndefined(manifest.dependencies, "effect is the only runtime dependency, as a peer")
    assert.isDefined(manifest.peerDependencies?.effect)

    const tmp = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-gen-server-package-"))
    try {
      run(npm, ["run", "build"], root)
      const [packed] = JSON.parse(run(npm, ["pack", "--ignore-scripts", "--json", "--pack-destination", tmp], root))
      const files: Array<string> = packed.files.map((file: { readonly path: string }) => file.path)
      for (
        const expected of [
          "package.json",
          "README.md",
          "LICENSE",
          "CHANGELOG.md",
          "dist/index.js",
          "dist/index.d.ts",
          "dist/index.d.ts.map",
          "dist/index.js.map",
          "dist/Store.js",
          "dist/Store.d.ts",
          "src/Store.ts"
        ]
      ) {
        assert.include(files, expected)
      }
      assert.deepStrictEqual(files.filter((file) => !/^(dist|src)\//.test(file) && !file.includes("/")).sort(), [
        "CHANGELOG.md",
        "LICENSE",
        "README.md",
        "package.json"
      ])

      const app = Path.join(tmp, "app")
      Fs.mkdirSync(app)
      Fs.writeFileSync(
        Path.join(app, "package.json"),
        JSON.stringify({ name: "app", private: true, type: "module" }, null, 2)
      )
      run(npm, [
        "install",
        "--offline",
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
        Path.join(tmp, packed.filename),
        Path.join(root, "node_modules", "effect"),
        Path.join(root, "node_modules", "typescript")
      ], app)
      Fs.writeFileSync(Path.join(app, "main.ts"), program)
      Fs.writeFileSync(Path.join(app, "tsconfig.json"), JSON.stringify(tsconfig, null, 2))

      run(process.execPath, [Path.join(app, "node_modules", "typescript", "bin", "tsc"), "-p", "."], app)
      const output = run(process.execPath, [Path.join("out", "main.js")], app)

      assert.deepStrictEqual(JSON.parse(output), {
        result: "marty Marty 1955",
        sameModule: true,
        internal: "ERR_PACKAGE_PATH_NOT_EXPORTED",
        inspector: [
          "ServeError",
          "the inspector's HTTP server is @effect/platform-node's, an optional peer dependency: " +
          "npm install @effect/platform-node"
        ]
      })
    } finally {
      Fs.rmSync(tmp, { recursive: true, force: true })
    }
  }, 180_000)
})
