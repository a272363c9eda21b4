/**
 * The errors a record's calls fail with: one constructor each, one message
 * each, whatever the data layer. A message names the record by its resource
 * and its key object (as the caller gave it, never its internal encoding).
 *
 * @internal
 */
import { Cause } from "effect"
import {
  AlreadyExists,
  MailboxFull,
  NotFound,
  RecordCrashed,
  ReentrantCall,
  StoreClosed,
  Unavailable
} from "../../Errors.js"
import type { Compiled } from "../resource.js"

/** A key as it appears in messages. */
type Key = unknown

const named = (resource: Compiled, key: Key) => `${resource.name} ${JSON.stringify(key)}`

/** @internal */
export const notFound = (resource: Compiled, key: Key) =>
  new NotFound({ resource: resource.name, key, message: `${named(resource, key)} not found` })

/** @internal */
export const alreadyExists = (resource: Compiled, key: Key) =>
  new AlreadyExists({ resource: resource.name, key, message: `${named(resource, key)} already exists` })

/** A defect in a change or hook (a throw, a die): the record keeps its last committed state. @internal */
export const crashed = (resource: Compiled, key: Key, cause: Cause.Cause<unknown>) => {
  const defect = Cause.squash(cause)
  return new RecordCrashed({
    resource: resource.name,
    key,
    message: `${named(resource, key)} crashed: ${defect instanceof Error ? defect.message : String(defect)}`,
    defect
  })
}

/**
 * A call that would wait, directly or through other records' hooks, on its
 * own caller: refused instead of deadlocking.
 *
 * @internal
 */
export const reentrant = (resource: Compiled, key: Key, action: string) =>
  new ReentrantCall({
    resource: resource.name,
    key,
    action,
    message: `${named(resource, key)}: calling ${action} would deadlock: the record is waiting, directly or through ` +
      `other records' hooks, on the caller`
  })

/** @internal */
export const mailboxFull = (resource: Compiled, key: Key, capacity: number, why: string) =>
  new MailboxFull({ resource: resource.name, key, capacity, message: `${named(resource, key)}: mailbox full (${why})` })

/** What a write of a stored record writes, in messages. @internal */
export type Write = "new record" | "change" | "removal"

/** Why a write found its row changed by someone else. @internal */
export const fenced = "the stored row was written by another process since this one read it"

/**
 * A write storage refused (or another writer fenced): nothing was applied;
 * the record keeps its state, in memory and in storage. Not a crash: the
 * restart policy does not run.
 *
 * @internal
 */
export const notApplied = (resource: Compiled, key: Key, what: Write, reason: string) =>
  new RecordCrashed({
    resource: resource.name,
    key,
    message: `${named(resource, key)}: storing the ${what} failed, so it was not applied: ${reason}`
  })

/**
 * A write whose answer from storage was lost, and whose row could not be
 * read back: it may have been applied, at most once; sent again under
 * `operationId` it is applied once in all.
 *
 * @internal
 */
export const unknownOutcome = (resource: Compiled, key: Key, action: string, operationId: string, reason: string) =>
  new Unavailable({
    resource: resource.name,
    key,
    action,
    applied: "unknown",
    attempts: 1,
    operationId,
    lastFailure: `storage: ${reason}`,
    message: `${named(resource, key)}: ${action}: storage did not confirm the write and could not be read back; ` +
      `it may have been applied (at most once): send it again under its operation id`
  })

/** Storage could not be read before a write: nothing was written. @internal */
export const unreachable = (
  resource: Compiled,
  key: Key,
  action: string,
  operationId: string | undefined,
  reason: string
) =>
  new Unavailable({
    resource: resource.name,
    key,
    action,
    applied: "no",
    attempts: 1,
    ...(operationId === undefined ? {} : { operationId }),
    lastFailure: `storage: ${reason}`,
    message: `${named(resource, key)}: ${action}: storage could not be read, so nothing was written: call again`
  })

/**
 * A record stored by a newer version of its resource than this process
 * runs, which this version cannot read: never quarantined, never
 * overwritten; served again once an upgraded process serves it. `found`
 * says why (a stored row's `TooNew`).
 *
 * @internal
 */
export const tooNew = (
  resource: Compiled,
  key: Key,
  action: string,
  found: { readonly message: string },
  operationId?: string
) =>
  new Unavailable({
    resource: resource.name,
    key,
    action,
    applied: "no",
    attempts: 1,
    ...(operationId === undefined ? {} : { operationId }),
    lastFailure: `version: ${found.message}`,
    message: `${named(resource, key)}: ${action}: the record is ${found.message}; nothing was applied: an upgraded ` +
      `process serves it`
  })

/**
 * A call a cluster could not deliver or get answered within its retries:
 * `reached` says whether any attempt may have reached the owner's commit.
 *
 * @internal
 */
export const unanswered = (
  resource: Compiled,
  key: Key,
  action: string,
  options: {
    readonly reached: boolean
    readonly attempts: number
    readonly closing: boolean
    readonly lastFailure: string
    readonly operationId: string | undefined
  }
) =>
  new Unavailable({
    resource: resource.name,
    key,
    action,
    applied: options.reached ? "unknown" : "no",
    attempts: options.attempts,
    message: `${named(resource, key)}: ${action}: ${
      options.closing ? "the store closed" : "the cluster did not answer"
    } after ${options.attempts} attempt${options.attempts === 1 ? "" : "s"}; ${
      options.reached
        ? "it may have been applied (at most once)"
        : "it was not applied (every attempt was refused before the owner's commit)"
    }`,
    lastFailure: options.lastFailure,
    ...(options.operationId === undefined ? {} : { operationId: options.operationId })
  })

/**
 * An owner answered with a record this caller cannot read (stored by a
 * newer version, or by an older one whose migration fails on it): the call
 * may have been applied.
 *
 * @internal
 */
export const unreadableReply = (
  resource: Compiled,
  key: Key,
  action: string,
  found: { readonly message: string },
  operationId: string | undefined
) =>
  new Unavailable({
    resource: resource.name,
    key,
    action,
    applied: "unknown",
    attempts: 1,
    lastFailure: `version: ${found.message}`,
    message: `${
      named(resource, key)
    }: ${action}: its owner answered with a record this version cannot read (${found.message})`,
    ...(operationId === undefined ? {} : { operationId })
  })

/** A call made once the store closed, or in flight when it closed (`when` says which). @internal */
export const storeClosed = (when?: "in flight" | "creating") =>
  new StoreClosed({
    message: when === "in flight"
      ? "the store was closed while the call was in flight"
      : when === "creating"
      ? "the store was closed while the record was being created"
      : "the store is closed"
  })
