/**
 * The code blocks of the markdown documentation, for `npm run docs:check`.
 *
 * Every ```ts (or ```typescript) block of `README.md`, `BENCHMARKS.md` and
 * `docs/*.md` is compiled, as its own module, with the JSDoc examples (one
 * program: see `scripts/docs-check.ts`). Other blocks (```sh, ```text) are
 * not. A block is written as a user would copy it, importing
 * `effect-gen-server` and published packages, so most blocks need nothing
 * more.
 *
 * A block that continues an earlier one (a fragment using the resources a
 * previous block defined) says so in an HTML comment right above its fence,
 * which renders as nothing:
 *
 * - `<!-- docs-check: name=tour -->`: this block can be used by others under
 *   the name `tour` (names are unique across the files);
 * - `<!-- docs-check: uses=tour -->`: this block is compiled after
 *   `import { ... } from "<tour's module>"` of every name `tour` declares at
 *   its top level (exported or not; not what it imports) that the block does
 *   not declare or import itself (`uses=a,b` for several).
 *
 * Both can be given at once (`name=cart uses=tour`). An unknown directive, a
 * name given twice or a use of a name no block has fails the check.
 *
 * The relative links of those files are checked too: each names a file that
 * exists, and a `#heading` of a markdown file names one of its headings (as
 * GitHub makes their anchors).
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import ts from "typescript"

/** A code block to compile. */
export interface MarkdownBlock {
  /** `README.md`, `docs/durability.md` */
  readonly file: string
  /** the nearest heading above the block, for messages */
  readonly heading: string
  /** 1-based line in the file of the block's first code line */
  readonly line: number
  /** the fence's indentation (a block inside a list item), removed from every line */
  readonly indent: number
  /** the block's code, as a user copies it */
  readonly code: string
  readonly name: string | undefined
  readonly uses: ReadonlyArray<string>
  /** the module's file name in the temporary directory */
  readonly module: string
}

export interface MarkdownProblem {
  /** `docs/cluster.md:120` */
  readonly location: string
  readonly message: string
}

/** The markdown files whose blocks are checked: `README.md`, `BENCHMARKS.md`, `docs/*.md`. */
export const markdownFiles = (root: string): ReadonlyArray<string> => {
  const docs = Path.join(root, "docs")
  const inDocs = Fs.existsSync(docs)
    ? Fs.readdirSync(docs).filter((file) => file.endsWith(".md")).sort().map((file) => `docs/${file}`)
    : []
  return ["README.md", "BENCHMARKS.md", ...inDocs].filter((file) => Fs.existsSync(Path.join(root, file)))
}

const fence = /^( *)(`{3,}|~{3,})\s*([^\s`]*)(.*)$/
const directive = /^\s*<!--\s*docs-check:(.*?)-->\s*$/

/** The ```ts blocks of one file, with their directives. */
const blocksOf = (
  root: string,
  file: string,
  problems: Array<MarkdownProblem>
): ReadonlyArray<Omit<MarkdownBlock, "module"> & { readonly index: number }> => {
  const lines = Fs.readFileSync(Path.join(root, file), "utf8").split("\n")
  const blocks: Array<Omit<MarkdownBlock, "module"> & { readonly index: number }> = []
  let heading = ""
  let pending:
    | { readonly name: string | undefined; readonly uses: ReadonlyArray<string>; readonly line: number }
    | undefined
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? ""
    const comment = directive.exec(line)
    if (comment !== null) {
      let name: string | undefined
      const uses: Array<string> = []
      for (const word of (comment[1] ?? "").trim().split(/\s+/).filter((w) => w !== "")) {
        const [key, value = ""] = word.split("=", 2)
        if (key === "name" && /^[\w-]+$/.test(value)) name = value
        else if (key === "uses" && /^[\w-]+(,[\w-]+)*$/.test(value)) uses.push(...value.split(","))
        else problems.push({ location: `${file}:${i + 1}`, message: `unknown docs-check directive "${word}"` })
      }
      pending = { name, uses, line: i + 1 }
      continue
    }
    if (/^#{1,6}\s/.test(line)) heading = line.replace(/^#+\s*/, "")
    const open = fence.exec(line)
    if (open === null) {
      if (pending !== undefined && line.trim() !== "") {
        problems.push({
          location: `${file}:${pending.line}`,
          message: "a docs-check directive must come right above a ```ts block"
        })
        pending = undefined
      }
      continue
    }
    const indent = (open[1] ?? "").length
    const marker = open[2] ?? "```"
    const language = (open[3] ?? "").toLowerCase()
    // the closing fence: the same character, at least as long, nothing after it
    let end = i + 1
    while (end < lines.length) {
      const close = /^( *)(`{3,}|~{3,})\s*$/.exec(lines[end] ?? "")
      if (close !== null && (close[2] ?? "")[0] === marker[0] && (close[2] ?? "").length >= marker.length) break
      end++
    }
    if (language === "ts" || language === "typescript") {
      const code = lines.slice(i + 1, end).map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length)))
      blocks.push({
        file,
        heading,
        line: i + 2,
        indent,
        code: code.join("\n"),
        name: pending?.name,
        uses: pending?.uses ?? [],
        index: blocks.length + 1
      })
    } else if (pending !== undefined) {
      problems.push({
        location: `${file}:${pending.line}`,
        message: `a docs-check directive above a \`\`\`${language} block`
      })
    }
    pending = undefined
    i = end
  }
  return blocks
}

/**
 * The names a block declares at its top level (exported or not; not what it imports), `typeOnly` for those that
 * are only types, and whether it exports them itself.
 */
const declarationsOf = (
  code: string
): ReadonlyArray<{ readonly name: string; readonly typeOnly: boolean; readonly exported: boolean }> => {
  const source = ts.createSourceFile("block.ts", code, ts.ScriptTarget.Latest, true)
  const values = new Set<string>()
  const types = new Set<string>()
  const exported = new Set<string>()
  const isExported = (node: ts.Node) =>
    ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword)
  for (const statement of source.statements) {
    if (ts.isExportDeclaration(statement) && statement.exportClause && ts.isNamedExports(statement.exportClause)) {
      for (const element of statement.exportClause.elements) exported.add(element.name.text)
      continue
    }
    const names: Array<string> = []
    if (ts.isVariableStatement(statement)) {
      for (const declaration of statement.declarationList.declarations) {
        if (ts.isIdentifier(declaration.name)) names.push(declaration.name.text)
      }
      names.forEach((name) => values.add(name))
    } else if (
      (ts.isFunctionDeclaration(statement) || ts.isClassDeclaration(statement) || ts.isEnumDeclaration(statement)) &&
      statement.name !== undefined
    ) {
      names.push(statement.name.text)
      values.add(statement.name.text)
    } else if (ts.isInterfaceDeclaration(statement) || ts.isTypeAliasDeclaration(statement)) {
      names.push(statement.name.text)
      types.add(statement.name.text)
    }
    if (isExported(statement)) names.forEach((name) => exported.add(name))
  }
  return [...new Set([...values, ...types])].map((name) => ({
    name,
    typeOnly: !values.has(name),
    exported: exported.has(name)
  }))
}

/** The names a module declares or imports at its top level. */
export const topLevelNames = (code: string): ReadonlySet<string> => {
  const source = ts.createSourceFile("block.ts", code, ts.ScriptTarget.Latest, true)
  const names = new Set<string>()
  for (const statement of source.statements) {
    if (ts.isImportDeclaration(statement) && statement.importClause !== undefined) {
      const clause = statement.importClause
      if (clause.name !== undefined) names.add(clause.name.text)
      const bindings = clause.namedBindings
      if (bindings !== undefined && ts.isNamespaceImport(bindings)) names.add(bindings.name.text)
      if (bindings !== undefined && ts.isNamedImports(bindings)) {
        for (const element of bindings.elements) names.add(element.name.text)
      }
    } else if (ts.isVariableStatement(statement)) {
      for (const declaration of statement.declarationList.declarations) {
        if (ts.isIdentifier(declaration.name)) names.add(declaration.name.text)
      }
    } else if (
      (ts.isFunctionDeclaration(statement) || ts.isClassDeclaration(statement) || ts.isEnumDeclaration(statement) ||
        ts.isInterfaceDeclaration(statement) || ts.isTypeAliasDeclaration(statement)) && statement.name !== undefined
    ) {
      names.add(statement.name.text)
    }
  }
  return names
}

/**
 * A compilable module of a block: the block's code after the imports of the blocks it uses, and, for a named
 * block, followed by the export of what it declares.
 */
export interface MarkdownModule {
  readonly block: MarkdownBlock
  /** the lines written before the block's code (one line, or none) */
  readonly prelude: string
  /** the lines written after the block's code */
  readonly postlude: string
}

/** Every ```ts block of the markdown documentation, and what is wrong with their directives and links. */
export const markdownModules = (root: string): {
  readonly files: ReadonlyArray<string>
  readonly modules: ReadonlyArray<MarkdownModule>
  readonly problems: ReadonlyArray<MarkdownProblem>
} => {
  const problems: Array<MarkdownProblem> = []
  const files = markdownFiles(root)
  const blocks: Array<MarkdownBlock> = files.flatMap((file) =>
    blocksOf(root, file, problems).map(({ index, ...block }) => ({
      ...block,
      module: `md.${file.replace(/\.md$/, "").replace(/[^A-Za-z0-9]+/g, "_")}.${index}.ts`
    }))
  )
  const named = new Map<string, MarkdownBlock>()
  for (const block of blocks) {
    if (block.name === undefined) continue
    const known = named.get(block.name)
    if (known !== undefined) {
      problems.push({
        location: `${block.file}:${block.line - 1}`,
        message: `the name "${block.name}" is already given to the block at ${known.file}:${known.line - 1}`
      })
    } else named.set(block.name, block)
  }
  const modules = blocks.map((block): MarkdownModule => {
    const own = topLevelNames(block.code)
    const imports = block.uses.flatMap((use) => {
      const used = named.get(use)
      if (used === undefined || used === block) {
        problems.push({ location: `${block.file}:${block.line - 1}`, message: `no block is named "${use}"` })
        return []
      }
      const names = declarationsOf(used.code).filter(({ name }) => !own.has(name))
      if (names.length === 0) return []
      const list = names.map(({ name, typeOnly }) => (typeOnly ? `type ${name}` : name)).join(", ")
      return [`import { ${list} } from "./${used.module.replace(/\.ts$/, ".js")}";`]
    })
    const unexported = block.name === undefined ? [] : declarationsOf(block.code).filter((d) => !d.exported)
    return {
      block,
      prelude: imports.length === 0 ? "" : `${imports.join(" ")}\n`,
      postlude: unexported.length === 0
        ? ""
        : `\nexport { ${unexported.map(({ name, typeOnly }) => (typeOnly ? `type ${name}` : name)).join(", ")} }`
    }
  })
  problems.push(...checkLinks(root, files))
  return { files, modules, problems }
}

// ---------------------------------------------------------------------------
// Links between the markdown files
// ---------------------------------------------------------------------------

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as `-`. */
export const slug = (heading: string): string =>
  heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/`/g, "")
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-")

/**
 * Reads a markdown file's lines in order: whether each is prose, outside
 * fenced code blocks (a fence's own lines are not).
 */
const proseReader = () => {
  let inFence: string | undefined
  return (line: string): boolean => {
    const open = /^ *(`{3,}|~{3,})/.exec(line)
    if (open !== null) {
      const marker = open[1] ?? ""
      if (inFence === undefined) inFence = marker
      else if (marker[0] === inFence[0] && marker.length >= inFence.length && /^ *[`~]+\s*$/.test(line)) {
        inFence = undefined
      }
      return false
    }
    return inFence === undefined
  }
}

/** The anchors of a markdown file's headings, numbered as GitHub numbers repeated ones. */
const anchorsOf = (text: string): ReadonlySet<string> => {
  const anchors = new Set<string>()
  const seen = new Map<string, number>()
  const isProse = proseReader()
  for (const line of text.split("\n")) {
    if (!isProse(line)) continue
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)
    if (heading === null) continue
    const base = slug(heading[1] ?? "")
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    anchors.add(n === 0 ? base : `${base}-${n}`)
  }
  return anchors
}

/**
 * Every relative link of the checked markdown files (`[text](path)`, `[text](path#anchor)`, `[text](#anchor)`)
 * names a file that exists and, when it names a heading of a markdown file, a heading that exists. Links in code
 * (fenced blocks, inline code) are not links.
 */
export const checkLinks = (root: string, files: ReadonlyArray<string>): ReadonlyArray<MarkdownProblem> => {
  const problems: Array<MarkdownProblem> = []
  const anchors = new Map<string, ReadonlySet<string>>()
  const anchorsAt = (file: string): ReadonlySet<string> => {
    let known = anchors.get(file)
    if (known === undefined) {
      known = anchorsOf(Fs.readFileSync(Path.join(root, file), "utf8"))
      anchors.set(file, known)
    }
    return known
  }
  for (const file of files) {
    const lines = Fs.readFileSync(Path.join(root, file), "utf8").split("\n")
    const isProse = proseReader()
    lines.forEach((line, i) => {
      if (!isProse(line)) return
      const text = line.replace(/`[^`]*`/g, (code) => " ".repeat(code.length))
      for (const match of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = match[1] ?? ""
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue // https:, mailto:
        const [path = "", anchor] = target.split("#", 2)
        const location = `${file}:${i + 1}:${(match.index ?? 0) + 3}`
        const resolved = path === ""
          ? file
          : Path.posix.normalize(Path.posix.join(Path.posix.dirname(file), decodeURI(path)))
        if (!Fs.existsSync(Path.join(root, resolved))) {
          problems.push({ location, message: `links to ${target}: no such file (${resolved})` })
          continue
        }
        if (anchor !== undefined && resolved.endsWith(".md") && !anchorsAt(resolved).has(anchor)) {
          problems.push({ location, message: `links to ${target}: ${resolved} has no heading #${anchor}` })
        }
      }
    })
  }
  return problems
}
