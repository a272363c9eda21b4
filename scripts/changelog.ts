/**
 * Writes CHANGELOG.md from the Conventional Commits of `git log`.
 *
 * Commits are grouped by release, newest first: a tag `vX.Y.Z` (or `X.Y.Z`)
 * closes a release; the commits after the newest tag are listed under the
 * version of package.json when that version has no tag yet ("unreleased"),
 * and under "Unreleased" otherwise. Inside a release, entries are grouped by
 * type (feat, fix, perf, ...), breaking changes first. A subject holding
 * several entries (`test: port the suite; feat: bounded mailboxes`) gives one
 * entry per part. Merge commits and `chore(release)` commits are left out;
 * subjects that are not Conventional Commits land under "Other changes".
 *
 * A release's hand-written migration guide, `migrations/<version>.md`, is
 * printed first under its heading when it exists.
 *
 * The output depends only on the history, so running it twice gives the same
 * file. Run it when cutting a release, before tagging.
 *
 * Usage: `npm run changelog` (writes CHANGELOG.md), `npm run changelog -- --stdout`.
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))

const git = (...args: ReadonlyArray<string>): string =>
  execFileSync("git", args, { cwd: root, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 })

/** The sections of a release, in the order they are printed. */
const sections: ReadonlyArray<readonly [type: string, title: string]> = [
  ["feat", "Features"],
  ["fix", "Bug fixes"],
  ["perf", "Performance"],
  ["refactor", "Refactoring"],
  ["docs", "Documentation"],
  ["test", "Tests"],
  ["build", "Build"],
  ["ci", "Continuous integration"],
  ["style", "Style"],
  ["chore", "Chores"],
  ["revert", "Reverts"],
  ["other", "Other changes"]
]
const known = new Set(sections.map(([type]) => type))

interface Commit {
  readonly hash: string
  readonly date: string
  readonly subject: string
  readonly body: string
}

interface Entry {
  readonly type: string
  readonly scope: string | undefined
  readonly description: string
  readonly breaking: string | undefined
  readonly hash: string
}

interface Release {
  readonly title: string
  /** The version, unless the release is "Unreleased" past the package's tagged version. */
  readonly version: string | undefined
  readonly entries: ReadonlyArray<Entry>
}

const FIELD = "\x1f"
const RECORD = "\x1e"

const readCommits = (): ReadonlyArray<Commit> =>
  git("log", "--no-merges", "--topo-order", "--date=short", `--format=%H${FIELD}%ad${FIELD}%s${FIELD}%b${RECORD}`)
    .split(RECORD)
    .map((record) => record.replace(/^\n+/, ""))
    .filter((record) => record.length > 0)
    .map((record) => {
      const [hash = "", date = "", subject = "", body = ""] = record.split(FIELD)
      return { hash, date, subject: subject.trim(), body: body.trim() }
    })

/** Tags that name a version, by the commit they point at. */
const readVersionTags = (): ReadonlyMap<string, { readonly version: string; readonly date: string }> => {
  const tags = new Map<string, { version: string; date: string }>()
  const format = "%(objectname)%09%(*objectname)%09%(refname:short)%09%(creatordate:short)"
  const lines = git("tag", "--list", `--format=${format}`)
  for (const line of lines.split("\n")) {
    const [object = "", peeled = "", name = "", date = ""] = line.split("\t")
    const version = /^v?(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?)$/.exec(name)?.[1]
    if (version !== undefined) tags.set(peeled || object, { version, date })
  }
  return tags
}

const header = /^(?<type>[a-z]+)(?:\((?<scope>[^()]+)\))?(?<bang>!)?:\s*(?<description>.+)$/

/** One entry per Conventional Commits part of the subject (`a: x; b: y`). */
const parse = (commit: Commit): ReadonlyArray<Entry> => {
  const footer = /^BREAKING[ -]CHANGE:\s*([\s\S]+?)(?:\n\n|$)/m.exec(commit.body)?.[1]?.replace(/\s+/g, " ").trim()
  const parts = commit.subject.split(/;\s+(?=[a-z]+(?:\([^()]+\))?!?:\s)/)
  return parts.flatMap((part, i): ReadonlyArray<Entry> => {
    const match = header.exec(part.trim())
    if (match?.groups === undefined) {
      return [{ type: "other", scope: undefined, description: part.trim(), breaking: undefined, hash: commit.hash }]
    }
    const { bang, description = "", scope, type = "other" } = match.groups
    if (type === "chore" && scope === "release") return []
    const breaking = bang === undefined ? (i === 0 ? footer : undefined) : (footer ?? description)
    const kind = known.has(type) ? type : "other"
    return [{ type: kind, scope, description: description.trim(), breaking, hash: commit.hash }]
  })
}

const releases = (): ReadonlyArray<Release> => {
  const manifest = JSON.parse(Fs.readFileSync(Path.join(root, "package.json"), "utf8")) as { version: string }
  const tags = readVersionTags()
  const tagged = new Set([...tags.values()].map((tag) => tag.version))
  const result: Array<Release> = []
  let title = tagged.has(manifest.version) ? "Unreleased" : `${manifest.version} (unreleased)`
  let version: string | undefined = tagged.has(manifest.version) ? undefined : manifest.version
  let entries: Array<Entry> = []
  for (const commit of readCommits()) {
    const tag = tags.get(commit.hash)
    if (tag !== undefined) {
      if (entries.length > 0) result.push({ title, version, entries })
      title = `${tag.version} (${tag.date})`
      version = tag.version
      entries = []
    }
    entries.push(...parse(commit))
  }
  if (entries.length > 0) result.push({ title, version, entries })
  return result
}

const repositoryUrl = (): string | undefined => {
  const manifest = JSON.parse(Fs.readFileSync(Path.join(root, "package.json"), "utf8")) as {
    repository?: string | { url?: string }
  }
  const url = typeof manifest.repository === "string" ? manifest.repository : manifest.repository?.url
  return url?.replace(/^git\+/, "").replace(/\.git$/, "")
}

const render = (): string => {
  const url = repositoryUrl()
  const link = (hash: string) => {
    const short = hash.slice(0, 7)
    return url === undefined ? short : `[${short}](${url}/commit/${hash})`
  }
  const line = (entry: Entry, text: string) =>
    `- ${entry.scope === undefined ? "" : `**${entry.scope}:** `}${text} (${link(entry.hash)})`
  const out: Array<string> = [
    "# Changelog",
    "",
    "All notable changes to `effect-gen-server`, newest first. The project follows",
    "[Semantic Versioning](https://semver.org) (0.x while the API settles: a minor version may break it).",
    "",
    "Generated from the [Conventional Commits](https://www.conventionalcommits.org) of `git log` by",
    "`npm run changelog`: edit the commit messages, not this file.",
    ""
  ]
  for (const release of releases()) {
    out.push(`## ${release.title}`, "")
    // a release's migration guide, written by hand: migrations/<version>.md
    const guide = release.version === undefined ? undefined : Path.join(root, "migrations", `${release.version}.md`)
    if (guide !== undefined && Fs.existsSync(guide)) out.push(Fs.readFileSync(guide, "utf8").trim(), "")
    const breaking = release.entries.filter((entry) => entry.breaking !== undefined)
    if (breaking.length > 0) {
      out.push("### Breaking changes", "")
      for (const entry of breaking) out.push(line(entry, entry.breaking ?? entry.description))
      out.push("")
    }
    for (const [type, heading] of sections) {
      const entries = release.entries.filter((entry) => entry.type === type)
      if (entries.length === 0) continue
      out.push(`### ${heading}`, "")
      for (const entry of entries) out.push(line(entry, entry.description))
      out.push("")
    }
  }
  return out.join("\n").replace(/\n+$/, "\n")
}

const text = render()
if (process.argv.includes("--stdout")) {
  process.stdout.write(text)
} else {
  Fs.writeFileSync(Path.join(root, "CHANGELOG.md"), text)
  console.log(`CHANGELOG.md written (${text.split("\n").length} lines)`)
}
