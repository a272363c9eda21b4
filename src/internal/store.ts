/**
 * The Store service's key, apart from `Store.ts`: `DataLayer.layer` gives
 * record actions a Store over their own data layer, and `Store.ts` builds on
 * `DataLayer.ts`, so the key lives here to keep imports one way.
 *
 * @internal
 */
import { Context } from "effect"
import type * as DataLayer from "../DataLayer.js"

/** @internal */
export interface StoreShape {
  readonly dataLayer: DataLayer.Service
  /** Whether reads by key (`get`, `reload`, `keepAlive`) and `read` get a span. */
  readonly traceReads: boolean
}

/** @internal */
export class Store extends Context.Service<Store, StoreShape>()("effect-gen-server/Store") {}
