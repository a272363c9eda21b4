/**
 * The screenshots of `docs/inspector.md`: runs `examples/inspector.ts` (the
 * TimeTravel story, live) on a free port, lets it play for a few seconds,
 * and photographs its inspector in chromium: the whole page, with Marty's
 * record open, and the page refusing a bad filter.
 *
 *   npx tsx scripts/inspector-screenshots.ts [out-dir]   (default docs/images)
 *
 * Needs Debian's chromium (`apt-get install -y chromium`).
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { chromium } from "playwright-core"

const root = fileURLToPath(new URL("..", import.meta.url))
const out = Path.resolve(process.argv[2] ?? Path.join(root, "docs", "images"))
Fs.mkdirSync(out, { recursive: true })

const story = spawn(process.execPath, ["--import", "tsx", "examples/inspector.ts"], {
  cwd: root,
  env: { ...process.env, PORT: "0" },
  stdio: ["ignore", "pipe", "inherit"]
})
const profile = Fs.mkdtempSync(Path.join(Os.tmpdir(), "inspector-screenshots-"))
try {
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the example printed no address within 30 s")), 30_000)
    let text = ""
    story.stdout!.on("data", (chunk) => {
      text += chunk
      const match = /^inspector: (\S+)$/m.exec(text)
      if (match !== null) {
        clearTimeout(timer)
        resolve(match[1]!)
      }
    })
    story.once("exit", (code) => reject(new Error(`the example exited with ${code}`)))
  })
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1440, height: 960 },
    deviceScaleFactor: 1,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync"
    ]
  })
  try {
    const page = context.pages()[0] ?? (await context.newPage())
    page.setDefaultTimeout(15_000)
    // a few seconds of the story: townsfolk fall asleep, the DeLorean crashes once
    await page.goto(url)
    await page.waitForSelector("body[data-loaded]", { state: "attached" })
    await page.waitForTimeout(10_000)
    await page.fill("[data-testid=filter]", "nickname is not nil")
    await page.click("[data-testid=apply]")
    await page.waitForSelector("[data-testid=records] tbody tr")
    await page.click("[data-testid=records] tbody tr:first-child")
    await page.waitForTimeout(4_000)
    await page.screenshot({ path: Path.join(out, "inspector.png") })
    await page.fill("[data-testid=filter]", "colour = red")
    await page.click("[data-testid=apply]")
    await page.waitForSelector("[data-testid=error]:not([hidden])")
    await page.locator("#records-panel").screenshot({ path: Path.join(out, "inspector-bad-filter.png") })
    console.log(`screenshots of ${url} in ${out}`)
  } finally {
    await context.close()
  }
} finally {
  story.kill("SIGTERM")
  Fs.rmSync(profile, { recursive: true, force: true })
}
