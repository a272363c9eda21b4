/**
 * The part of `autocannon`'s API that `load.ts` uses (the package ships no
 * types, and `@types/autocannon` is not a dependency).
 */
declare module "autocannon" {
  export interface Request {
    method?: string
    path?: string
    headers?: Record<string, string>
    body?: string
  }

  export interface Options {
    readonly url: string
    readonly connections?: number
    /** Seconds. */
    readonly duration?: number
    /** Seconds. */
    readonly timeout?: number
    readonly requests?: ReadonlyArray<
      Request & { readonly setupRequest?: (request: Request, context: object) => Request }
    >
  }

  export interface Histogram {
    readonly average: number
    readonly mean: number
    readonly min: number
    readonly max: number
    readonly total: number
    readonly p50: number
    readonly p90: number
    readonly p99: number
  }

  export interface Result {
    readonly requests: Histogram
    readonly latency: Histogram
    readonly duration: number
    readonly errors: number
    readonly timeouts: number
    readonly non2xx: number
    readonly statusCodeStats: Record<string, { readonly count: number }>
  }

  export interface Instance extends PromiseLike<Result> {
    stop(): void
  }

  function autocannon(options: Options): Instance
  export default autocannon
}
