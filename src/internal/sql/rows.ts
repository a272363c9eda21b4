/**
 * The rows of the state table, as the state store reads and writes them.
 *
 * One row per record of every resource of a store: the resource name, the
 * encoded key (escaped, `escape.ts`), a version (bumped by every commit: a
 * commit names the version it read, so a stale writer fails, "fencing"),
 * the state as JSON (`codec.ts`, strings escaped), the version of the
 * resource that stored it (`schema_version`), created_at, last_activity, the
 * inactivity and lifetime deadlines (epoch millis), the create's input (for
 * `restart: "initial"`), the ids of the last operations applied (so a
 * retried write is recognised: {@link rememberedOps}) and, on PostgreSQL, a
 * sequence number giving creation order. A destroyed record leaves a
 * tombstone (`alive = false`, no state) remembering its operations, and
 * when it died (`dead_since`, `NULL` while the record lives), by which it is
 * purged. A column of its own, not `last_activity`: an index on a column
 * every update writes would cost PostgreSQL its HOT updates (in place,
 * without new index entries) on every commit of a live record.
 *
 * @internal
 */
import * as Lifecycle from "../record/lifecycle.js"
import type { Compiled } from "../resource.js"
import { decodeStored, encodeStored, type Loaded, type Newer, storedVersion, TooNew, Undecodable } from "./codec.js"
import { escapeKey, unescapeKey } from "./escape.js"

/** How many operation ids a row remembers for de-duplicating retries. @internal */
export const rememberedOps = 16

/** A stored record, as loaded. @internal */
export interface Row {
  readonly resource: string
  /** The encoded key (`Compiled.encodeKey`), unescaped. */
  readonly key: string
  readonly version: number
  readonly alive: boolean
  /** The decoded state; `undefined` for a tombstone, or a live row that cannot be loaded. */
  readonly state: unknown
  /** The version of the resource that stored the state. */
  readonly schemaVersion: number
  /** A row of a newer version than this process's: what its writes must keep (see `codec.ts`). */
  readonly newer: Newer | undefined
  readonly createdAt: number
  readonly lastActivity: number
  readonly inactivityDeadline: number | undefined
  readonly lifetimeDeadline: number | undefined
  /** What the create ran with, as the writer stored it (JSON), for `restart: "initial"`. */
  readonly initial: unknown
  readonly ops: ReadonlyArray<string>
  /** The record's schedules as stored (JSON, see `codec.ts`); `undefined` when none. */
  readonly schedules: unknown
  /** A tombstone left by a key change (`move` with an `op`): the encoded key the record moved to, unescaped. */
  readonly movedTo?: string | undefined
  /**
   * A live row that cannot be loaded (its state does not decode or migrate,
   * is not JSON, or holds another key than the row's): why, and the row as
   * stored, for `quarantine`. Its `state` is then `undefined`.
   */
  readonly undecodable?: { readonly reason: string; readonly stored: StoredRow } | undefined
  /** A live row of a newer version this one cannot read: never quarantined; its calls are refused as retryable. */
  readonly tooNew?: TooNew | undefined
}

/** A live row as stored: its state still JSON, of the version that wrote it. @internal */
export interface StoredRow {
  readonly resource: string
  readonly key: string
  readonly version: number
  readonly schemaVersion: number
  /** The state as JSON (parsed); `undefined` when the cell is not JSON (`malformed` says why). */
  readonly json: unknown
  /** The state's cell as read (text on SQLite, parsed on PostgreSQL): the quarantine table keeps its text. */
  readonly cell: unknown
  /** Why the state's cell could not be parsed as JSON (SQLite keeps JSON as text). */
  readonly malformed: string | undefined
  readonly createdAt: number
  readonly lastActivity: number
  readonly initial: unknown
  /** The record's schedules as stored (JSON, see `codec.ts`). */
  readonly schedules: unknown
}

/** What a write stores (times in epoch millis). @internal */
export interface Put {
  readonly resource: Compiled
  readonly key: string
  readonly state: unknown
  readonly lastActivity: number
  /**
   * The write's operation id, appended by the statement to the ones the row
   * remembers (the last {@link rememberedOps}); `""`: none.
   */
  readonly op: string
  /** The row's state was stored by a newer version: the fields this one keeps unseen, and that version. */
  readonly newer?: Newer | undefined
  /** The record's schedules once written (`codec.ts`'s JSON); none when absent. */
  readonly schedules?: unknown
}

/**
 * A notice PostgreSQL completes from the row it writes: `head`, then the
 * state stored (as the JSON text the row was given), then `}`; in chunks
 * when longer than a notification holds (`notices.ts`). The state is
 * serialized once, for the row.
 *
 * @internal
 */
export interface NoticeHead {
  readonly head: string
}

/**
 * A write of the group commit. `notify`: a payload sent with `pg_notify` on
 * the store's channel in the same transaction, if the write succeeds (so
 * listeners see it once it is committed, in commit order): the text, or for
 * a write storing a state, a {@link NoticeHead}.
 *
 * @internal
 */
export type Write =
  & (
    | (Put & {
      readonly _tag: "Insert"
      readonly createdAt: number
      /** What the create ran with, as JSON, kept for `restart: "initial"`. */
      readonly initial: unknown
    })
    | (Put & { readonly _tag: "Update"; readonly expected: number; readonly createdAt: number })
    | (Put & {
      readonly _tag: "Tombstone"
      readonly expected: number
      /** When the record was removed (`dead_since`: the tombstone is purged by it). */
      readonly removedAt: number
    })
    | {
      readonly _tag: "Touch"
      readonly resource: Compiled
      readonly key: string
      readonly expected: number
      readonly lastActivity: number
    }
  )
  & { readonly notify?: string | NoticeHead | undefined }

/** The kinds of write: one statement each per batch. @internal */
export type Kind = "insert" | "update" | "tombstone" | "touch"

/** @internal */
export const kindOf = { Insert: "insert", Update: "update", Tombstone: "tombstone", Touch: "touch" } as const

/**
 * What a write came to: the new version, or `"conflict"` (an insert over a
 * live row: the key is taken; an update, tombstone or touch whose expected
 * version is no longer the row's: a newer writer committed, "fenced").
 *
 * @internal
 */
export type Outcome = number | "conflict"

/** A change of a row's key: see `StateStore.move`. @internal */
export interface Move {
  readonly resource: Compiled
  readonly from: string
  readonly expected: number
  readonly to: string
  readonly state: unknown
  readonly createdAt: number
  readonly lastActivity: number
  /** When the record left its old key (the old row's `dead_since`). */
  readonly removedAt: number
  /** What the create ran with, as JSON, kept for `restart: "initial"`. */
  readonly initial: unknown
  /**
   * The operation id of the change, remembered by both rows, so a retry is
   * recognised at the old key; with it the tombstone also remembers the key
   * the record moved to (`Row.movedTo`).
   */
  readonly op?: string | undefined
  /** What the old row kept of a newer version (stored again at the new key). */
  readonly newer?: Newer | undefined
  /** The record's schedules, stored at the new key (JSON, see `codec.ts`). */
  readonly schedules?: unknown
  /** A payload sent with `pg_notify` in the move's transaction, if it commits. */
  readonly notify?: string | NoticeHead | undefined
  /**
   * Whether a live row at `to` past its stored deadline is replaced (default
   * `true`). The cluster layer passes `false`: that row's owner may hold
   * activity not yet written (the record alive), and its expiry (destroy
   * action, `Destroyed`) is the owner's to run.
   */
  readonly replaceExpired?: boolean | undefined
}

const num = (u: unknown): number | undefined => u === null || u === undefined ? undefined : Number(u)

/** A JSON cell as read: PostgreSQL parses jsonb, SQLite gives text (which may not be JSON at all). */
const parseCell = (u: unknown, pg: boolean): { readonly json: any; readonly malformed: string | undefined } => {
  if (u === null || u === undefined) return { json: undefined, malformed: undefined }
  if (pg || typeof u !== "string") return { json: u, malformed: undefined }
  try {
    return { json: JSON.parse(u), malformed: undefined }
  } catch (e) {
    return { json: undefined, malformed: `its state is not JSON: ${e instanceof Error ? e.message : e}` }
  }
}

/** The text of a stored row's state cell, for the quarantine table (made only there: jsonb arrives parsed). @internal */
export const cellText = (stored: StoredRow): string | null =>
  stored.cell === null || stored.cell === undefined
    ? null
    : typeof stored.cell === "string"
    ? stored.cell
    : JSON.stringify(stored.cell)

/** A JSON cell that is not the record's state (initial, ops), as read; `undefined` when absent or not JSON. */
const cell = (u: unknown, pg: boolean): any => parseCell(u, pg).json

/** A live row as stored (its state not decoded). @internal */
export const toStored = (r: any, pg: boolean): StoredRow => {
  const state = parseCell(r.state, pg)
  return {
    resource: r.resource,
    key: unescapeKey(r.key),
    version: Number(r.version),
    schemaVersion: Number(r.schema_version ?? 1),
    json: state.json,
    cell: r.state,
    malformed: state.malformed,
    createdAt: Number(r.created_at),
    lastActivity: Number(r.last_activity),
    initial: cell(r.initial, pg),
    schedules: cell(r.schedules, pg)
  }
}

/**
 * The record of a live stored row, or why it cannot be loaded: `Undecodable`
 * (to quarantine) or `TooNew` (to refuse), thrown.
 *
 * @internal
 */
export const decodeRow = (resource: Compiled, stored: StoredRow): Loaded => {
  if (stored.malformed !== undefined) throw new Undecodable(stored.malformed)
  const loaded = decodeStored(resource, stored.json, stored.schemaVersion)
  const held = resource.encodeKey(loaded.state)
  if (held !== stored.key) throw new Undecodable(`its state holds another key (${held}) than its row (${stored.key})`)
  return loaded
}

/** A row as loaded: decoded, or marked as one to quarantine or to refuse. @internal */
export const toRow = (resource: Compiled, r: any, pg: boolean): Row => {
  const alive = r.alive === true || r.alive === 1
  const initial = cell(r.initial, pg) ?? undefined
  const stored = toStored(r, pg)
  let state: unknown = undefined
  let newer: Newer | undefined = undefined
  let undecodable: Row["undecodable"] = undefined
  let tooNew: TooNew | undefined = undefined
  if (alive) {
    try {
      const loaded = decodeRow(resource, stored)
      state = loaded.state
      newer = loaded.newer
    } catch (e) {
      if (e instanceof TooNew) tooNew = e
      else if (e instanceof Undecodable) undecodable = { reason: e.message, stored }
      else throw e
    }
  }
  return {
    resource: r.resource,
    key: stored.key,
    version: stored.version,
    alive,
    state,
    schemaVersion: stored.schemaVersion,
    newer,
    createdAt: stored.createdAt,
    lastActivity: stored.lastActivity,
    inactivityDeadline: num(r.inactivity_deadline),
    lifetimeDeadline: num(r.lifetime_deadline),
    initial: alive ? initial : undefined,
    ops: cell(r.ops, pg) ?? [],
    schedules: alive ? cell(r.schedules, pg) : undefined,
    movedTo: !alive && typeof initial?.movedTo === "string" ? unescapeKey(initial.movedTo) : undefined,
    undecodable,
    tooNew
  }
}

/** The deadlines a row stores. @internal */
export const deadlines = (resource: Compiled, createdAt: number, lastActivity: number) => ({
  inactivity_deadline: stored(Lifecycle.idleDeadline(resource, lastActivity)),
  lifetime_deadline: stored(Lifecycle.lifetimeDeadline(resource, createdAt))
})

/** A deadline as its integer column holds it: rounded up (a timeout may hold a fraction of a millisecond). */
const stored = (deadline: number) => (deadline === Infinity ? null : Math.ceil(deadline))

/** When the earliest of a row's schedules (as stored, `codec.ts`) is due: `null` for none. */
const wakeAt = (schedules: unknown): number | null => {
  if (!Array.isArray(schedules)) return null
  let at = Infinity
  for (const s of schedules) if (typeof s?.due === "number" && s.due < at) at = s.due
  return stored(at)
}

/** The ops a row holds once `op` is applied (what the statements compute in SQL). @internal */
export const opsAfter = (ops: ReadonlyArray<string>, op: string): ReadonlyArray<string> =>
  op === "" ? ops.slice(-rememberedOps) : [...ops, op].slice(-rememberedOps)

/** A write as the JSON row its kind's statement reads (throws if the state cannot be encoded). @internal */
export const rowOf = (w: Write): unknown => {
  const resource = w.resource.name
  const key = escapeKey(w.key)
  const notice = typeof w.notify === "string" ? w.notify : null
  const head = typeof w.notify === "object" ? w.notify.head : null
  switch (w._tag) {
    case "Insert":
      return {
        notice,
        head,
        resource,
        key,
        state: encodeStored(w.resource, w.state, w.newer),
        created_at: w.createdAt,
        last_activity: w.lastActivity,
        ...deadlines(w.resource, w.createdAt, w.lastActivity),
        initial: w.initial ?? null,
        // a create over a tombstone keeps the ops it remembers: a retry of the removal is still recognised
        op: w.op === "" ? null : w.op,
        schema_version: storedVersion(w.resource, w.newer),
        schedules: w.schedules ?? null,
        wake_at: wakeAt(w.schedules)
      }
    case "Update":
      return {
        notice,
        head,
        resource,
        key,
        expected: w.expected,
        state: encodeStored(w.resource, w.state, w.newer),
        last_activity: w.lastActivity,
        inactivity_deadline: deadlines(w.resource, w.createdAt, w.lastActivity).inactivity_deadline,
        op: w.op === "" ? null : w.op,
        schema_version: storedVersion(w.resource, w.newer),
        schedules: w.schedules ?? null,
        wake_at: wakeAt(w.schedules)
      }
    case "Tombstone":
      return {
        notice,
        resource,
        key,
        expected: w.expected,
        last_activity: w.lastActivity,
        dead_since: w.removedAt,
        op: w.op === "" ? null : w.op
      }
    case "Touch":
      return {
        notice,
        resource,
        key,
        expected: w.expected,
        last_activity: w.lastActivity,
        inactivity_deadline: stored(Lifecycle.idleDeadline(w.resource, w.lastActivity))
      }
  }
}
