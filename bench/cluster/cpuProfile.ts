/**
 * CPU profiles of one stretch of a process, through `node:inspector`: what
 * `bench:cluster -- --profile=dir` records in each runner and in the bench
 * process during each figure it runs (read them with `profile.ts`).
 */
import { writeFileSync } from "node:fs"
import { Session } from "node:inspector/promises"

let session: Session | undefined

/** Starts profiling this process (sampling every 200 µs). */
export const start = async () => {
  session ??= new Session()
  session.connect()
  await session.post("Profiler.enable")
  await session.post("Profiler.setSamplingInterval", { interval: 200 })
  await session.post("Profiler.start")
}

/** Stops profiling and writes the profile to `path`. */
export const stop = async (path: string) => {
  if (session === undefined) return
  const { profile } = await session.post("Profiler.stop")
  writeFileSync(path, JSON.stringify(profile))
  await session.post("Profiler.disable")
  session.disconnect()
}
