/**
 * The API reference check, for CI (`npm run docs:check`).
 *
 * 1. Every symbol exported by a public module (`src/*.ts` but `index.ts`, so
 *    not `src/internal/`) has a JSDoc description and an `**Example**`
 *    followed by a fenced ```ts block. Exports tagged `@internal` are skipped;
 *    for merged declarations (an interface and its namespace) and overloads,
 *    one documented declaration is enough.
 *    Every public module opens with a JSDoc tagged `@module`: without the tag
 *    typedoc does not take the file's first comment (its summary, costs and
 *    gotchas) as the module's page.
 * 2. No example imports a relative path (`./` or `../`): a user copies an
 *    example into a project that has none of our files, so every example
 *    imports only `effect-gen-server` and published packages and defines the
 *    resources it needs inline.
 * 3. Every ```ts block of the JSDoc of those modules compiles. Each block is
 *    written to its own module in a temporary directory whose tsconfig maps
 *    `effect-gen-server` (and `effect-gen-server/*`) to `src/`. The examples
 *    are type-checked with the project's compiler options, except that unused
 *    locals are allowed.
 *
 * 4. Every ```ts block of `README.md`, `BENCHMARKS.md` and `docs/*.md`
 *    compiles too, in the same program and with the same options, and imports
 *    no relative path of its own (`scripts/docs-markdown.ts` says how a block
 *    may use the resources an earlier block defined); their relative links
 *    name files and headings that exist.
 *
 * Errors are reported as `src/<Module>.ts:<line>:<column>` of the example's
 * line in the JSDoc, or `<file>.md:<line>:<column>` of the block's line.
 * Exits with 1 when anything is missing or does not compile.
 *
 * Usage: `npm run docs:check [-- --keep]` (`--keep` leaves the temporary
 * directory in place and prints its path).
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"
import { type MarkdownModule, markdownModules } from "./docs-markdown.js"

const root = fileURLToPath(new URL("..", import.meta.url))
const src = Path.join(root, "src")
const keep = process.argv.includes("--keep")

const publicModules = Fs.readdirSync(src)
  .filter((file) => file.endsWith(".ts") && !file.endsWith(".d.ts") && file !== "index.ts")
  .sort()
  .map((file) => Path.join(src, file))

const relative = (file: string) => Path.relative(root, file).split(Path.sep).join("/")

// ---------------------------------------------------------------------------
// Compiler options: the project's, from tsconfig.json
// ---------------------------------------------------------------------------

const readProjectOptions = (): ts.CompilerOptions => {
  const configPath = Path.join(root, "tsconfig.json")
  const parsed = ts.getParsedCommandLineOfConfigFile(configPath, {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"))
    }
  })
  if (parsed === undefined) throw new Error(`cannot read ${configPath}`)
  return parsed.options
}

// ---------------------------------------------------------------------------
// 1. Every export documented, with an example
// ---------------------------------------------------------------------------

const jsDocsOf = (node: ts.Node): ReadonlyArray<ts.JSDoc> => {
  // an export specifier (`export { in_ as in }`) carries the JSDoc of its export declaration
  const target = ts.isExportSpecifier(node) ? node.parent.parent : node
  return ts.getJSDocCommentsAndTags(target).filter(ts.isJSDoc)
}

const rawText = (doc: ts.JSDoc): string => doc.getSourceFile().text.slice(doc.pos, doc.end)

const hasDescription = (doc: ts.JSDoc): boolean => (ts.getTextOfJSDocComment(doc.comment) ?? "").trim().length > 0

const exampleRegex = /\*\*Example\*\*[^\n]*\n(?:[\s\S]*?\n)?\s*\*?\s*```(?:ts|typescript)\b/

const hasExample = (doc: ts.JSDoc): boolean => exampleRegex.test(rawText(doc))

const isInternal = (doc: ts.JSDoc): boolean => (doc.tags ?? []).some((tag) => tag.tagName.text === "internal")

interface Missing {
  readonly module: string
  readonly name: string
  readonly line: number
  readonly description: boolean
  readonly example: boolean
}

const checkExports = (program: ts.Program): { readonly checked: number; readonly missing: ReadonlyArray<Missing> } => {
  const checker = program.getTypeChecker()
  const missing: Array<Missing> = []
  let checked = 0
  for (const file of publicModules) {
    const sourceFile = program.getSourceFile(file)
    if (sourceFile === undefined) throw new Error(`${file} is not in the program`)
    const moduleSymbol = checker.getSymbolAtLocation(sourceFile)
    if (moduleSymbol === undefined) continue
    for (const symbol of checker.getExportsOfModule(moduleSymbol)) {
      const declarations = [...(symbol.declarations ?? [])]
      if (symbol.flags & ts.SymbolFlags.Alias) {
        const target = checker.getAliasedSymbol(symbol)
        declarations.push(...(target.declarations ?? []).filter((d) => d.getSourceFile().fileName.startsWith(src)))
      }
      const docs = declarations.flatMap(jsDocsOf)
      if (docs.some(isInternal)) continue
      checked++
      const description = docs.some(hasDescription)
      const example = docs.some(hasExample)
      if (!description || !example) {
        const first = declarations.find((d) => d.getSourceFile() === sourceFile) ?? declarations[0]
        const line = first === undefined
          ? 0
          : sourceFile.getLineAndCharacterOfPosition(first.getStart(first.getSourceFile())).line + 1
        missing.push({ module: relative(file), name: symbol.name, line, description, example })
      }
    }
  }
  return { checked, missing }
}

/** The public modules whose first JSDoc, before any statement, is not tagged `@module`. */
const checkModuleDocs = (program: ts.Program): ReadonlyArray<string> =>
  publicModules.map((file) => program.getSourceFile(file)).flatMap((sourceFile) => {
    if (sourceFile === undefined) return []
    const first = ts.getLeadingCommentRanges(sourceFile.text, 0)?.find((range) =>
      sourceFile.text.startsWith("/**", range.pos)
    )
    const text = first === undefined ? "" : sourceFile.text.slice(first.pos, first.end)
    return /^\s*\*\s*@module\b/m.test(text) ? [] : [relative(sourceFile.fileName)]
  })

// ---------------------------------------------------------------------------
// 2. No example imports a relative path; 3. every example compiles
// ---------------------------------------------------------------------------

interface Example {
  /** `src/Store.ts` */
  readonly module: string
  /** the documented symbol: `create`, `Changeset.Any`, `(module)` */
  readonly owner: string
  readonly title: string
  /** 1-based line in the module of the example's first code line */
  readonly line: number
  readonly code: string
  /** the file name in the temporary directory */
  readonly file: string
}

const isNamed = (node: ts.Node): node is ts.Declaration =>
  ts.isVariableDeclaration(node) || ts.isFunctionDeclaration(node) || ts.isClassDeclaration(node) ||
  ts.isInterfaceDeclaration(node) || ts.isTypeAliasDeclaration(node) || ts.isModuleDeclaration(node) ||
  ts.isEnumDeclaration(node) || ts.isPropertySignature(node) || ts.isMethodSignature(node) ||
  ts.isPropertyDeclaration(node) || ts.isMethodDeclaration(node) || ts.isPropertyAssignment(node)

/** `create`, `Changeset.Any`; `(module)` for the module's own JSDoc. */
const ownerName = (node: ts.Node): string => {
  const names: Array<string> = []
  for (let current: ts.Node | undefined = node; current !== undefined; current = current.parent) {
    const name = isNamed(current) ? ts.getNameOfDeclaration(current) : undefined
    if (name !== undefined && (ts.isIdentifier(name) || ts.isStringLiteral(name))) names.unshift(name.text)
  }
  return names.length === 0 ? "(module)" : names.join(".")
}

const extractExamples = (sourceFile: ts.SourceFile): ReadonlyArray<Example> => {
  const docs = new Map<number, { doc: ts.JSDoc; owner: string }>()
  const visit = (node: ts.Node): void => {
    for (const doc of ts.getJSDocCommentsAndTags(node).filter(ts.isJSDoc)) {
      const known = docs.get(doc.pos)
      const owner = ownerName(node)
      if (known === undefined || (known.owner === "(module)" && owner !== "(module)")) docs.set(doc.pos, { doc, owner })
    }
    ts.forEachChild(node, visit)
  }
  ts.forEachChild(sourceFile, visit)

  const module = relative(sourceFile.fileName)
  const base = Path.basename(sourceFile.fileName, ".ts")
  const examples: Array<Example> = []
  const counts = new Map<string, number>()
  for (const { doc, owner } of [...docs.values()].sort((a, b) => a.doc.pos - b.doc.pos)) {
    const firstLine = sourceFile.getLineAndCharacterOfPosition(doc.pos).line
    const lines = rawText(doc).split("\n").map((line) => line.replace(/^\s*\/\*\*\s?/, "").replace(/^\s*\*\/?\s?/, ""))
    let title = ""
    let start: number | undefined
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i] ?? ""
      if (start === undefined) {
        const heading = /^\*\*Example\*\*\s*(?:\((.*)\))?/.exec(line)
        if (heading !== null) title = heading[1] ?? ""
        if (/^```(?:ts|typescript)\b/.test(line)) start = i + 1
      } else if (/^```\s*$/.test(line)) {
        // counted without case: `Migration` and `migration` must not name the same file on a case-insensitive disk
        const n = (counts.get(owner.toLowerCase()) ?? 0) + 1
        counts.set(owner.toLowerCase(), n)
        examples.push({
          module,
          owner,
          title,
          line: firstLine + start + 1,
          code: lines.slice(start, i).join("\n"),
          file: `${base}.${owner.replace(/[^A-Za-z0-9_$.]/g, "_")}.${n}.ts`
        })
        start = undefined
        title = ""
      }
    }
  }
  return examples
}

interface RelativeImport {
  readonly example: Example
  /** `src/Store.ts:120:24` */
  readonly location: string
  readonly specifier: string
}

/** The relative module specifiers (`./x.js`, `../x.js`) an example imports, exports from or `import()`s. */
const relativeImports = (examples: ReadonlyArray<Example>): ReadonlyArray<RelativeImport> =>
  examples.flatMap((example) => {
    const sourceFile = ts.createSourceFile(example.file, example.code, ts.ScriptTarget.Latest, true)
    const found: Array<RelativeImport> = []
    const visit = (node: ts.Node): void => {
      const specifier = (ts.isImportDeclaration(node) || ts.isExportDeclaration(node))
        ? node.moduleSpecifier
        : ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword
        ? node.arguments[0]
        : ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)
        ? node.argument.literal
        : undefined
      if (specifier !== undefined && ts.isStringLiteralLike(specifier) && /^\.\.?\//.test(specifier.text)) {
        const { character, line } = sourceFile.getLineAndCharacterOfPosition(specifier.getStart(sourceFile))
        found.push({
          example,
          // the JSDoc prefix ` * ` is 3 columns wide in the module
          location: `${example.module}:${example.line + line}:${character + 4}`,
          specifier: specifier.text
        })
      }
      ts.forEachChild(node, visit)
    }
    visit(sourceFile)
    return found
  })

interface MarkdownImport {
  readonly module: MarkdownModule
  /** `docs/cluster.md:41:24` */
  readonly location: string
  readonly specifier: string
}

/** The relative module specifiers a markdown block imports (its own code, not the imports of the blocks it uses). */
const markdownRelativeImports = (modules: ReadonlyArray<MarkdownModule>): ReadonlyArray<MarkdownImport> =>
  modules.flatMap((module) => {
    const { block } = module
    const sourceFile = ts.createSourceFile(block.module, block.code, ts.ScriptTarget.Latest, true)
    const found: Array<MarkdownImport> = []
    const visit = (node: ts.Node): void => {
      const specifier = (ts.isImportDeclaration(node) || ts.isExportDeclaration(node))
        ? node.moduleSpecifier
        : ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword
        ? node.arguments[0]
        : undefined
      if (specifier !== undefined && ts.isStringLiteralLike(specifier) && /^\.\.?\//.test(specifier.text)) {
        const { character, line } = sourceFile.getLineAndCharacterOfPosition(specifier.getStart(sourceFile))
        found.push({
          module,
          location: `${block.file}:${block.line + line}:${block.indent + character + 1}`,
          specifier: specifier.text
        })
      }
      ts.forEachChild(node, visit)
    }
    visit(sourceFile)
    return found
  })

interface Failure {
  readonly location: string
  readonly example: Example | undefined
  readonly markdown?: MarkdownModule | undefined
  readonly code: string
  readonly message: string
}

const checkExamples = (
  options: ts.CompilerOptions,
  examples: ReadonlyArray<Example>,
  markdown: ReadonlyArray<MarkdownModule>
): { readonly dir: string; readonly failures: ReadonlyArray<Failure> } => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-gen-server-docs-"))
  // `effect`, `@types/node`: resolved from the project's node_modules
  Fs.symlinkSync(Path.join(root, "node_modules"), Path.join(dir, "node_modules"), "junction")
  Fs.writeFileSync(Path.join(dir, "package.json"), JSON.stringify({ type: "module", private: true }, null, 2))
  for (const example of examples) {
    Fs.writeFileSync(Path.join(dir, example.file), `${example.code}\nexport {}\n`)
  }
  for (const module of markdown) {
    Fs.writeFileSync(
      Path.join(dir, module.block.module),
      `${module.prelude}${module.block.code}${module.postlude}\nexport {}\n`
    )
  }
  const compilerOptions = {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    lib: ["ES2023"],
    types: ["node"],
    strict: true,
    exactOptionalPropertyTypes: options.exactOptionalPropertyTypes ?? false,
    noUncheckedIndexedAccess: options.noUncheckedIndexedAccess ?? false,
    noImplicitOverride: true,
    verbatimModuleSyntax: true,
    isolatedModules: true,
    skipLibCheck: true,
    noUnusedLocals: false,
    noEmit: true,
    paths: {
      "effect-gen-server": [Path.join(src, "index.ts")],
      "effect-gen-server/*": [Path.join(src, "*.ts")]
    }
  }
  Fs.writeFileSync(
    Path.join(dir, "tsconfig.json"),
    JSON.stringify({ compilerOptions, include: ["*.ts"] }, null, 2)
  )
  const parsed = ts.parseJsonConfigFileContent({ compilerOptions, include: ["*.ts"] }, ts.sys, dir)
  const program = ts.createProgram(parsed.fileNames, parsed.options)
  const byFile = new Map(examples.map((example) => [Path.join(dir, example.file), example]))
  const markdownByFile = new Map(markdown.map((module) => [Path.join(dir, module.block.module), module]))
  const failures: Array<Failure> = []
  for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n")
    const code = `TS${diagnostic.code}`
    if (diagnostic.file === undefined || diagnostic.start === undefined) {
      failures.push({ location: "(global)", example: undefined, code, message })
      continue
    }
    const { character, line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start)
    const example = byFile.get(Path.resolve(diagnostic.file.fileName))
    const fileName = Path.resolve(diagnostic.file.fileName)
    const module = markdownByFile.get(fileName)
    if (module !== undefined) {
      const { block, prelude } = module
      const preludeLines = prelude === "" ? 0 : prelude.split("\n").length - 1
      const location = line < preludeLines
        // an import of a block it uses: shown at the directive above the fence
        ? `${block.file}:${block.line - 2}`
        : `${block.file}:${block.line + line - preludeLines}:${block.indent + character + 1}`
      failures.push({ location, example: undefined, markdown: module, code, message })
      continue
    }
    const shown = fileName.startsWith(dir) ? `<docs-check>/${Path.relative(dir, fileName)}` : relative(fileName)
    const location = example === undefined
      ? `${shown}:${line + 1}:${character + 1}`
      // the JSDoc prefix ` * ` is 3 columns wide in the module
      : `${example.module}:${example.line + line}:${character + 4}`
    failures.push({ location, example, code, message })
  }
  return { dir, failures }
}

// ---------------------------------------------------------------------------

const main = () => {
  const started = Date.now()
  const options = readProjectOptions()
  const program = ts.createProgram(publicModules, { ...options, noEmit: true, paths: {} })
  const { checked, missing } = checkExports(program)
  const untagged = checkModuleDocs(program)
  const examples = publicModules.flatMap((file) => {
    const sourceFile = program.getSourceFile(file)
    return sourceFile === undefined ? [] : extractExamples(sourceFile)
  })
  const imports = relativeImports(examples)
  const markdown = markdownModules(root)
  const markdownImports = markdownRelativeImports(markdown.modules)
  const { dir, failures } = checkExamples(options, examples, markdown.modules)

  const out: Array<string> = []
  if (missing.length > 0) {
    out.push(`Exports without a JSDoc description or an **Example** block (${missing.length} of ${checked}):`)
    for (const m of missing) {
      const lacks = [m.description ? undefined : "description", m.example ? undefined : "example"].filter(Boolean)
      out.push(`  ${m.module}:${m.line}  ${m.name}: no ${lacks.join(", no ")}`)
    }
    out.push("")
  }
  if (untagged.length > 0) {
    out.push(
      `Modules whose opening JSDoc lacks \`@module\`, so typedoc leaves their page without it (${untagged.length}):`
    )
    for (const module of untagged) out.push(`  ${module}`)
    out.push("")
  }
  const describeImport = (i: RelativeImport) =>
    `  ${i.location}  ${i.example.owner}${
      i.example.title === "" ? "" : ` (Example: ${i.example.title})`
    }: imports "${i.specifier}"`
  if (imports.length > 0) {
    out.push(
      `Examples that import a relative path, which a user's project does not have (${imports.length}): ` +
        "define what the example needs inline"
    )
    for (const i of imports) out.push(describeImport(i))
    out.push("")
  }
  if (markdownImports.length > 0) {
    out.push(
      `Markdown blocks that import a relative path, which a user's project does not have (${markdownImports.length}): ` +
        "import effect-gen-server, or use an earlier block (docs-check: uses=<name>)"
    )
    for (const i of markdownImports) out.push(`  ${i.location}  (${i.module.block.heading}): imports "${i.specifier}"`)
    out.push("")
  }
  if (markdown.problems.length > 0) {
    out.push(`Markdown docs-check directives and links that are wrong (${markdown.problems.length}):`)
    for (const p of markdown.problems) out.push(`  ${p.location}  ${p.message}`)
    out.push("")
  }
  const failingId = (f: Failure) => f.example?.file ?? f.markdown?.block.module ?? f.location
  if (failures.length > 0) {
    const failing = new Set(failures.map(failingId))
    out.push(
      `Examples and markdown blocks that do not compile (${failing.size} of ${
        examples.length + markdown.modules.length
      }, ${failures.length} errors):`
    )
    for (const f of failures) {
      const what = f.markdown !== undefined
        ? `(${f.markdown.block.heading}): `
        : f.example === undefined
        ? ""
        : `${f.example.owner}${f.example.title === "" ? "" : ` (Example: ${f.example.title})`}: `
      out.push(`  ${f.location}  ${what}${f.code}: ${f.message.split("\n").join("\n      ")}`)
    }
    out.push("")
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1)
  out.push(
    `docs:check: ${checked} exports in ${publicModules.length} modules, ${missing.length} undocumented, ` +
      `${untagged.length} without @module; ` +
      `${examples.length} examples and ${markdown.modules.length} blocks of ${markdown.files.length} markdown files, ` +
      `${new Set(failures.map(failingId)).size} failing, ` +
      `${
        imports.length + markdownImports.length
      } relative imports, ${markdown.problems.length} bad directives or links (${seconds}s)`
  )
  if (keep) out.push(`examples kept in ${dir}`)
  else Fs.rmSync(dir, { recursive: true, force: true })
  console.log(out.join("\n"))
  process.exitCode = missing.length > 0 || untagged.length > 0 || failures.length > 0 || imports.length > 0 ||
      markdownImports.length > 0 || markdown.problems.length > 0
    ? 1
    : 0
}

main()
