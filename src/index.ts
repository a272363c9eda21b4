/**
 * @since 0.1.0
 */
export * as Action from "./Action.js"
/**
 * @since 0.1.0
 */
export * as Changeset from "./Changeset.js"
/**
 * @since 0.2.0
 */
export * as Cluster from "./Cluster.js"
/**
 * @since 0.1.0
 */
export * as DataLayer from "./DataLayer.js"
/**
 * @since 0.1.0
 */
export * as Errors from "./Errors.js"
/**
 * @since 0.1.0
 */
export * as Event from "./Event.js"
/**
 * @since 0.1.0
 */
export * as Filter from "./Filter.js"
/**
 * @since 0.6.0
 */
export * as Inspector from "./Inspector.js"
/**
 * @since 0.1.0
 */
export * as Metrics from "./Metrics.js"
/**
 * @since 0.1.0
 */
export * as Query from "./Query.js"
/**
 * @since 0.1.0
 */
export * as Resource from "./Resource.js"
/**
 * @since 0.3.0
 */
export * as SqliteClient from "./SqliteClient.js"
/**
 * @since 0.1.0
 */
export * as Store from "./Store.js"
/**
 * @since 0.1.0
 */
export * as Testing from "./Testing.js"
