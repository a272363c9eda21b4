/**
 * Child processes of `npm run bench:cluster`: runner processes started on
 * loopback ports picked by the OS, every wait bounded, every child killed
 * when the bench ends (normally, on failure, on SIGINT/SIGTERM: see
 * `cluster.ts`) and, should
 * the bench process die without cleaning up, ended by its standard input
 * closing (see `runner.ts`).
 */
import { Effect } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:net"
import { fileURLToPath } from "node:url"
import type { SqlCounters } from "./domain.js"

const root = fileURLToPath(new URL("../../", import.meta.url))
const started = new Set<ChildProcess>()

const killChild = (child: ChildProcess) => {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
}

/** Kills every child still running. */
export const killAll = () => {
  for (const child of started) killChild(child)
  started.clear()
}
process.once("exit", killAll)

/** `n` free loopback ports (listened on once by this process, then released). */
export const freePorts = (n: number) =>
  Effect.promise(() =>
    Promise.all(
      Array.from({ length: n }, () =>
        new Promise<{ port: number; close: () => Promise<void> }>((resolve, reject) => {
          const server = createServer()
          server.once("error", reject)
          server.listen(0, "127.0.0.1", () => {
            const address = server.address()
            const port = typeof address === "object" && address !== null ? address.port : 0
            resolve({ port, close: () => new Promise((done) => server.close(() => done())) })
          })
        }))
    ).then(async (held) => {
      // all held at once so that no two are the same, then released for the runners
      await Promise.all(held.map((h) => h.close()))
      return held.map((h) => h.port)
    })
  )

export interface Runner {
  readonly port: number
  readonly child: ChildProcess
  readonly exited: Promise<number | null>
  /** Kills the runner (SIGKILL) and waits (at most 10 s) for it to be gone. */
  readonly kill: Effect.Effect<void>
  /** Its SQL counters (zeros once it is gone; waits at most 5 s). */
  readonly stats: Effect.Effect<SqlCounters>
  /** Sends `command` (`profile start`, `profile stop <path>`) and waits, at most 30 s, for a line starting with `answer`. */
  readonly command: (command: string, answer: string) => Effect.Effect<void>
}

const zero: SqlCounters = { statements: 0, transactions: 0, batches: 0, batchRows: 0, batchMillis: 0, cpuMicros: 0 }

/**
 * Starts a runner on `port` over `schema` and waits, at most `timeoutMs`, for
 * its READY; fails with its last standard error if it exits or times out first.
 * The runner is killed when the scope closes.
 */
export const startRunner = (schema: string, port: number, timeoutMs = 90_000) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () =>
        new Promise<Runner>((resolve, reject) => {
          const child = spawn(
            process.execPath,
            [
              "--import",
              "tsx",
              fileURLToPath(new URL("./runner.ts", import.meta.url)),
              schema,
              String(port)
            ],
            { stdio: ["pipe", "pipe", "pipe"], cwd: root }
          )
          started.add(child)
          let stderr = ""
          child.stderr!.on("data", (chunk) => {
            stderr = (stderr + chunk.toString()).slice(-4000)
          })
          const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)))
          const kill = Effect.promise(() => {
            killChild(child)
            return Promise.race([exited, new Promise((done) => setTimeout(done, 10_000))])
          }).pipe(Effect.asVoid)
          const timer = setTimeout(() => {
            killChild(child)
            reject(new Error(`runner on port ${port}: no READY within ${timeoutMs} ms; stderr: ${stderr}`))
          }, timeoutMs)
          const statsWaiters: Array<(s: SqlCounters) => void> = []
          const stats = Effect.promise(() =>
            new Promise<SqlCounters>((done) => {
              if (child.exitCode !== null || child.signalCode !== null || !child.stdin!.writable) return done(zero)
              const timer = setTimeout(() => done(zero), 5000)
              statsWaiters.push((s) => {
                clearTimeout(timer)
                done(s)
              })
              child.stdin!.write("stats\n")
            })
          )
          const waiters: Array<{ readonly answer: string; readonly done: () => void }> = []
          const command = (line: string, answer: string) =>
            Effect.promise(() =>
              new Promise<void>((done) => {
                if (child.exitCode !== null || child.signalCode !== null || !child.stdin!.writable) return done()
                const timer = setTimeout(done, 30_000)
                waiters.push({
                  answer,
                  done: () => {
                    clearTimeout(timer)
                    done()
                  }
                })
                child.stdin!.write(line + "\n")
              })
            )
          let stdout = ""
          child.stdout!.on("data", (chunk) => {
            stdout += chunk.toString()
            let i: number
            while ((i = stdout.indexOf("\n")) >= 0) {
              const line = stdout.slice(0, i)
              stdout = stdout.slice(i + 1)
              if (line === "READY") {
                clearTimeout(timer)
                resolve({ port, child, exited, kill, stats, command })
              } else if (line.startsWith("STATS ")) statsWaiters.shift()?.(JSON.parse(line.slice(6)))
              else {
                const w = waiters.findIndex((w) => line.startsWith(w.answer))
                if (w >= 0) waiters.splice(w, 1)[0]!.done()
              }
            }
          })
          child.stdin!.on("error", () => {})
          void exited.then((code) => {
            clearTimeout(timer)
            reject(new Error(`runner on port ${port} exited (${code}) before READY; stderr: ${stderr}`))
          })
        }),
      catch: (e) => e as Error
    }),
    (runner) => Effect.andThen(runner.kill, Effect.sync(() => started.delete(runner.child)))
  )
