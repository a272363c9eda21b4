/**
 * The durable cart example (`npm run example:durable`) keeps its promise:
 * run twice on the same file, the second run finds the first run's cart.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const example = fileURLToPath(new URL("../../examples/durable-cart.ts", import.meta.url))

const run = (db: string) =>
  execFileSync(process.execPath, ["--disable-warning=ExperimentalWarning", "--import", "tsx", example], {
    env: { ...process.env, CART_DB: db },
    encoding: "utf8",
    timeout: 20_000
  })

describe("examples/durable-cart.ts", () => {
  it("a second run of the program finds the cart the first one wrote", () => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cart-example-"))
    try {
      const db = Path.join(dir, "cart.db")
      const first = run(db)
      assert.include(first, "0 cart(s)")
      assert.include(first, `marty's cart came back: ["hoverboard"] in USD`)
      const second = run(db)
      assert.include(second, "1 cart(s)")
      assert.include(second, `marty's cart came back: ["hoverboard","almanac"] in USD`)
    } finally {
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
