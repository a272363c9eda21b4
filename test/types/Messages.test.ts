/**
 * The compiler's own words for the mistakes a newcomer makes (issue 22):
 * each case is a small program, compiled with the project's `tsconfig.json`
 * by the TypeScript API, and the test asserts where each error is reported
 * and what it says, so that a regression in the types (an error moving back
 * to `Effect.runPromise`, or growing to ten lines) fails here. Programs that
 * must compile are asserted to have no error at all.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

interface Expected {
  /** A fragment of the one line the error must be reported on. */
  readonly at: string
  /** The error's first line, exactly. */
  readonly says?: string
  /** A fragment of the error's first line, where the rest is the record's type printed in full. */
  readonly mentions?: string
  /** How many lines the whole message may take. */
  readonly lines: number
}

interface Case {
  readonly name: string
  readonly code: string
  /** Every error the program must have, in order; none when empty. */
  readonly errors: ReadonlyArray<Expected>
}

const header = `import { Context, Effect, Layer, Schema } from "effect"
import { Action, Changeset, Filter, Query, Resource, Store } from "effect-gen-server"

const Character = Resource.make("Character", {
  fields: {
    id: Schema.String,
    name: Schema.String,
    nickname: Schema.optionalKey(Schema.String),
    currentYear: Schema.Int,
    companions: Schema.Array(Schema.String),
    visits: Schema.Record(Schema.String, Schema.Int)
  },
  primaryKey: ["id"],
  generated: { id: () => crypto.randomUUID() }
})
const characters = Query.make(Character)
`

const cases: ReadonlyArray<Case> = [
  {
    name: "Changeset.set takes the record's own read-only arrays and records, piped or not",
    code: `
const Room = Resource.make("Room", {
  fields: { id: Schema.String, players: Schema.Array(Schema.String), scores: Schema.Record(Schema.String, Schema.Int) },
  primaryKey: ["id"],
  actions: (Action) => ({
    join: Action.update({
      arguments: { player: Schema.String },
      change: (cs) => cs.pipe(Changeset.set("players", [...cs.data.players, cs.arguments.player]))
    }),
    replace: Action.update({
      arguments: { players: Schema.Array(Schema.String) },
      change: (cs) => cs.pipe(Changeset.set("players", cs.arguments.players), Changeset.set("scores", { marty: 1 }))
    }),
    reset: Action.update({ change: (cs) => Changeset.set(cs, "players", cs.data.players.slice(1)) })
  })
})
const players: ReadonlyArray<string> = ["marty", "doc"]
const program = Effect.gen(function*() {
  const room = yield* Store.create(Room, "create", { id: "r", players, scores: {} })
  return yield* Store.update(Room, room, "join", { player: "biff" })
})
export const runnable = Effect.runPromise(program.pipe(Effect.provide(Store.layer([Room]))))
`,
    errors: []
  },
  {
    name: "generated and defaults take read-only values",
    code: `
const none: ReadonlyArray<string> = []
const kept: ReadonlyArray<Resource.DefaultAction> = ["create", "read", "destroy"]
export const Lobby = Resource.make("Lobby", {
  fields: { id: Schema.String, players: Schema.Array(Schema.String), seats: Schema.Record(Schema.String, Schema.Int) },
  primaryKey: ["id"],
  generated: { players: () => none, seats: (): { readonly [seat: string]: number } => ({}) },
  defaults: kept
})
export const Hall = Resource.make("Hall", {
  fields: { id: Schema.String, doors: Schema.Tuple([Schema.String, Schema.String]) },
  primaryKey: ["id"],
  generated: { doors: () => ["north", "south"] as const },
  defaults: ["create", "read"] as const
})
`,
    errors: []
  },
  {
    name: "object-form resources give a layer with no requirements",
    code: `
class Full extends Schema.TaggedError<Full>()("Full", {}) {}
interface RoomRecord {
  readonly id: string
  readonly players: ReadonlyArray<string>
  readonly n: number
}
const Room = Resource.make("Room", {
  fields: { id: Schema.String, players: Schema.Array(Schema.String), n: Schema.Int },
  primaryKey: ["id"],
  actions: {
    open: Action.create({ accept: ["id"], change: (cs) => Changeset.set(cs, "players", []) }),
    join: Action.update({
      arguments: { player: Schema.String },
      error: Full,
      change: (cs) => cs.data.players.length > 3 ? Effect.fail(new Full()) : Changeset.set(cs, "n", 1)
    }),
    piped: Action.update({
      change: (cs) => cs.pipe(Changeset.set("n", 2), Changeset.after((room) => Effect.succeed(room)))
    }),
    logged: Action.update({ change: (cs) => Effect.as(Effect.log("logged"), cs) }),
    // the object form sees the record as \`any\`: a change annotated with the record type is checked
    invite: Action.update({
      arguments: { player: Schema.String },
      change: (cs: Changeset.Changeset<RoomRecord, { readonly player: string }>) =>
        cs.pipe(Changeset.set("players", [...cs.data.players, cs.arguments.player]))
    }),
    rename: Action.update({ accept: ["n"] }),
    close: Action.destroy()
  }
})
const layer: Layer.Layer<Store.Store> = Store.layer([Room])
export const runnable = Effect.runPromise(Store.get(Room, { id: "r" }).pipe(Effect.provide(Store.layer([Room]))))
`,
    errors: []
  },
  {
    name: "a mistake inside an action is reported there, not again at Effect.runPromise",
    code: `
const Room = Resource.make("Room", {
  fields: { id: Schema.String, n: Schema.Int },
  primaryKey: ["id"],
  actions: (Action) => ({ bump: Action.update({ change: (cs) => cs.pipe(Changeset.set("count", 1)) }) })
})
export const runnable = Effect.runPromise(Store.get(Room, { id: "r" }).pipe(Effect.provide(Store.layer([Room]))))
`,
    errors: [{
      at: `Changeset.set("count", 1)`,
      says: `Argument of type '"count"' is not assignable to parameter of type '"id" | "n"'.`,
      lines: 1
    }]
  },
  {
    name: "Changeset.set piped: an unknown field or a wrong value is one line at the call",
    code: `
export const Machine = Resource.make("Machine", {
  fields: { id: Schema.String, hasPower: Schema.Boolean, status: Schema.Literals(["idle", "travelling"]) },
  primaryKey: ["id"],
  actions: (Action) => ({
    typo: Action.update({ change: (cs) => cs.pipe(Changeset.set("hasPowr", true)) }),
    wrong: Action.update({ change: (cs) => cs.pipe(Changeset.set("status", "flying")) })
  })
})
`,
    errors: [
      {
        at: `Changeset.set("hasPowr", true)`,
        says: `Argument of type '"hasPowr"' is not assignable to parameter of type '"id" | "hasPower" | "status"'.`,
        lines: 1
      },
      {
        at: `Changeset.set("status", "flying")`,
        says: `Argument of type '"flying"' is not assignable to parameter of type '"idle" | "travelling"'.`,
        lines: 1
      }
    ]
  },
  {
    name: "Query.sort: an unknown field is reported at that call, in one line",
    code: `
export const sorted = characters.pipe(
  Query.sort("colour"),
  Query.limit(3)
)
export const both = characters.pipe(Query.sort("currentYear", "desc"), Query.sort("colour", "asc"))
export const dataFirst = Query.sort(characters, "colour", "desc")
`,
    errors: [
      {
        at: `Query.sort("colour"),`,
        says:
          `Argument of type '"colour"' is not assignable to parameter of type '"id" | "name" | "nickname" | "currentYear" | "companions" | "visits"'.`,
        lines: 1
      },
      {
        // with a direction, the call has the arity of the data-first form too: the compiler shows both overloads
        at: `Query.sort("colour", "asc")`,
        says: `No overload matches this call.`,
        lines: 5
      },
      {
        at: `Query.sort(characters, "colour", "desc")`,
        says:
          `Argument of type '"colour"' is not assignable to parameter of type '"id" | "name" | "nickname" | "currentYear" | "companions" | "visits"'.`,
        lines: 1
      }
    ]
  },
  {
    name: "Query.sort outside a pipe keeps its type and is checked where it is applied",
    code: `
const byYear = Query.sort("currentYear", "desc")
export const ok: Query.Query<{ readonly currentYear: number }> = byYear(characters)
const byColour = Query.sort("colour")
export const bad = byColour(characters)
`,
    errors: [{
      at: `byColour(characters)`,
      mentions: `& "unknown field 'colour'"'.`,
      lines: 2
    }]
  },
  {
    name: "a filter mistake is one or two lines naming the field",
    code: `
export const typo = characters.pipe(Query.filter(Filter.eq("nickame", "Doc")))
export const wrongValue = Store.read(characters.pipe(Query.filter(Filter.gt("currentYear", "1955"))))
export const nested = characters.pipe(
  Query.filter(Filter.and(Filter.eq("name", "Marty"), Filter.or(Filter.isNil("nickname"), Filter.lt("yaer", 1))))
)
export const dataFirst = Query.filter(characters, Filter.eq("currentYear", "1985"))
export const fine = Store.read(characters.pipe(Query.filter(Filter.in("currentYear", [1955, 1985]))))
`,
    errors: [
      {
        at: `Filter.eq("nickame", "Doc")`,
        says:
          `Argument of type 'Filter<{ readonly nickame?: "Doc"; }>' is not assignable to parameter of type '"unknown field 'nickame'"'.`,
        lines: 2
      },
      {
        at: `Filter.gt("currentYear", "1955")`,
        says: `Argument of type 'Filter<{ readonly currentYear?: "1955"; }>' is not assignable to parameter of type ` +
          `'"field 'currentYear' cannot hold the value it is compared with"'.`,
        lines: 2
      },
      {
        at: `Filter.lt("yaer", 1)`,
        says: `Argument of type 'Filter<{ readonly name?: "Marty"; } & { readonly nickname?: never; } & ` +
          `{ readonly yaer?: 1; }>' is not assignable to parameter of type '"unknown field 'yaer'"'.`,
        lines: 2
      },
      {
        at: `Filter.eq("currentYear", "1985")`,
        says: `Argument of type 'Filter<{ readonly currentYear?: "1985"; }>' is not assignable to parameter of type ` +
          `'"field 'currentYear' cannot hold the value it is compared with"'.`,
        lines: 2
      }
    ]
  },
  {
    name: "an action's result: typed from its success schema at the Store call, checked where it is set",
    code: `
const Bucket = Resource.make("Bucket", {
  fields: { id: Schema.String, tokens: Schema.Int },
  primaryKey: ["id"],
  actions: (Action) => ({
    take: Action.update({
      success: Schema.Struct({ allowed: Schema.Boolean, remaining: Schema.Int }),
      change: (cs) => Changeset.result(cs, { allowed: true, remaining: "4" })
    }),
    peek: Action.update({ success: Schema.Int, change: (cs) => cs.pipe(Changeset.result("4")) }),
    count: Action.update({ success: Schema.Int, change: (cs) => cs.pipe(Changeset.result(cs.data.tokens)) }),
    plain: Action.update({ change: (cs) => Changeset.result(cs, 1) })
  })
})
export const counted: Effect.Effect<number, unknown, unknown> = Store.update(Bucket, { id: "a" }, "count")
export const record: Effect.Effect<{ readonly id: string; readonly tokens: number }, unknown, unknown> =
  Store.update(Bucket, { id: "a" }, "update", { tokens: 1 })
export const wrong: Effect.Effect<string, unknown, unknown> = Store.update(Bucket, { id: "a" }, "count")
`,
    errors: [
      { at: `remaining: "4"`, says: `Type 'string' is not assignable to type 'number'.`, lines: 1 },
      // piped, the reason is the type's last line: "the result given does not fit the action's `success` schema"
      { at: `Changeset.result("4")`, mentions: `CheckResult<O, string>`, lines: 4 },
      // an action without success takes no result
      {
        at: `Changeset.result(cs, 1)`,
        says: `Argument of type '1' is not assignable to parameter of type 'never'.`,
        lines: 1
      },
      { at: `export const wrong`, mentions: `is not assignable to type 'Effect<string, unknown, unknown>'`, lines: 2 }
    ]
  }
]

const root = fileURLToPath(new URL("../..", import.meta.url))

/**
 * A union of string literals in the order the compiler happened to meet its
 * members, which depends on the program: sorted, so that the text compares.
 */
const normalize = (text: string): string =>
  text.replace(/"[^"]*"(?: \| "[^"]*")+/g, (union) => union.split(" | ").sort().join(" | "))

/** Compiles every case in one program; the diagnostics of each, with their line's text. */
const compile = (): Map<string, ReadonlyArray<{ readonly line: string; readonly text: string }>> => {
  const parsed = ts.getParsedCommandLineOfConfigFile(Path.join(root, "tsconfig.json"), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"))
    }
  })
  if (parsed === undefined) throw new Error("tsconfig.json could not be read")
  const files = new Map(cases.map((c, i) => [Path.join(root, "test", "types", `__message_case_${i}.ts`), c]))
  const host = ts.createCompilerHost(parsed.options)
  const sources = new Map<string, string>([...files].map(([file, c]) => [file, header + c.code]))
  const getSourceFile = host.getSourceFile
  host.getSourceFile = (file, language, ...rest) => {
    const text = sources.get(Path.resolve(file))
    return text === undefined
      ? getSourceFile.call(host, file, language, ...rest)
      : ts.createSourceFile(file, text, language, true)
  }
  const fileExists = host.fileExists
  host.fileExists = (file) => sources.has(Path.resolve(file)) || fileExists.call(host, file)
  const program = ts.createProgram([...files.keys()], {
    ...parsed.options,
    noEmit: true,
    // every case imports what any case needs
    noUnusedLocals: false
  }, host)
  const out = new Map<string, ReadonlyArray<{ readonly line: string; readonly text: string }>>()
  for (const [file, c] of files) {
    const source = program.getSourceFile(file)!
    const lines = source.text.split("\n")
    const diagnostics = [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)]
    out.set(
      c.name,
      diagnostics.map((d) => ({
        line: lines[source.getLineAndCharacterOfPosition(d.start ?? 0).line] ?? "",
        text: ts.flattenDiagnosticMessageText(d.messageText, "\n")
      }))
    )
  }
  return out
}

let compiled: Map<string, ReadonlyArray<{ readonly line: string; readonly text: string }>> | undefined

describe("the compiler's messages", () => {
  for (const c of cases) {
    it(c.name, () => {
      compiled ??= compile()
      const found = compiled.get(c.name)!
      const shown = found.map((d) => `at: ${d.line.trim()}\n${d.text}`).join("\n\n")
      assert.strictEqual(found.length, c.errors.length, `expected ${c.errors.length} error(s), got:\n${shown}`)
      c.errors.forEach((expected, i) => {
        const { line, text } = found[i]!
        assert.include(line, expected.at, `error ${i + 1} is reported on another line:\n${shown}`)
        const first = normalize(text.split("\n")[0]!)
        if (expected.says !== undefined) {
          assert.strictEqual(first, normalize(expected.says), `error ${i + 1} says something else:\n${shown}`)
        }
        if (expected.mentions !== undefined) {
          assert.include(first, expected.mentions, `error ${i + 1} says something else:\n${shown}`)
        }
        assert.isAtMost(text.split("\n").length, expected.lines, `error ${i + 1} is longer:\n${shown}`)
      })
    }, 120_000)
  }
})
