/**
 * Events across processes: PostgreSQL notifications sent in the
 * transaction of the commit they report (so a listener hears them once they
 * are committed, in commit order, and never for a write rolled back), in
 * chunks when longer than a notification holds, joined back by each
 * listener.
 *
 * @internal
 */

/**
 * The longest notice sent as one notification (PostgreSQL's payload limit is
 * 8,000 bytes). A longer one is sent as chunks of {@link noticeChunk}
 * characters (at most 4 bytes each), each `\u0001`, an id of 32 characters
 * unique within its transaction, `i/n`, `\u0001`, then its part of the text:
 * a transaction's notifications reach a listener together and in order, so
 * the listener joins the parts.
 *
 * @internal
 */
export const noticeBytes = 7900
/** @internal */
export const noticeChunk = 1900

/**
 * The SQL that sends the notice `text` (NULL: none) on the channel `$2`,
 * in chunks when it is longer than a notification holds; `id` tells its
 * chunks from another notice's of the same transaction.
 *
 * @internal
 */
export const noticeSql = (text: string, id: string) =>
  `CASE WHEN ${text} IS NULL THEN NULL
     WHEN octet_length(${text}) <= ${noticeBytes} THEN pg_notify($2, ${text})::text
     ELSE (SELECT string_agg(pg_notify($2, chr(1) || md5(${id}) || i || '/' || c.n || chr(1) ||
       substr(${text}, (i - 1) * ${noticeChunk} + 1, ${noticeChunk}))::text, '')
       FROM (SELECT ceil(char_length(${text}) / ${noticeChunk}.0)::int AS n) AS c, generate_series(1, c.n) AS i)
   END`

/**
 * The payloads that carry `text`: itself, or its chunks (see
 * {@link noticeBytes}) under `id` (32 characters).
 *
 * @internal
 */
export const noticePayloads = (text: string, id: string): ReadonlyArray<string> => {
  if (text.length * 3 <= noticeBytes || encoder.encode(text).length <= noticeBytes) return [text]
  const parts: Array<string> = []
  for (let start = 0; start < text.length;) {
    let end = Math.min(start + noticeChunk, text.length)
    // never between the two halves of a surrogate pair: each part must be valid UTF-16 on its own
    const last = text.charCodeAt(end - 1)
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--
    parts.push(text.slice(start, end))
    start = end
  }
  return parts.map((part, i) => `\u0001${id}${i + 1}/${parts.length}\u0001${part}`)
}
const encoder = new TextEncoder()

/**
 * Joins the chunks of long notices, in the order a listener receives them;
 * `add` returns the notice a payload completes, if any (a payload that is no
 * chunk is a notice by itself). At most 64 notices are pending at once.
 *
 * @internal
 */
export const noticeJoiner = () => {
  const pending = new Map<string, { next: number; readonly parts: Array<string> }>()
  return (payload: string): string | undefined => {
    if (!payload.startsWith("\u0001")) return payload
    const slash = payload.indexOf("/", 33)
    const end = payload.indexOf("\u0001", 33)
    if (slash < 0 || end < 0) return undefined
    const id = payload.slice(1, 33)
    const i = Number(payload.slice(33, slash))
    const n = Number(payload.slice(slash + 1, end))
    const part = payload.slice(end + 1)
    if (i === 1) {
      if (pending.size >= 64) pending.delete(pending.keys().next().value!)
      pending.set(id, { next: 2, parts: [part] })
    } else {
      const joining = pending.get(id)
      // a chunk without its predecessors (heard from the middle of a notice): the notice is lost
      if (joining === undefined || joining.next !== i) {
        pending.delete(id)
        return undefined
      }
      joining.parts.push(part)
      joining.next++
    }
    if (i < n) return undefined
    const parts = pending.get(id)!.parts
    pending.delete(id)
    return parts.join("")
  }
}

/** A channel name (at most 63 bytes, lower case) for a table. @internal */
export const channelOf = (table: string): string =>
  `${table.toLowerCase().replace(/[^a-z0-9_]/g, "_").slice(0, 40)}_events_${hash(table)}`

/** A short hash of a name (FNV-1a, base 36), for identifiers PostgreSQL truncates. @internal */
export const hash = (s: string): string => {
  let h = 2166136261
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619)
  return (h >>> 0).toString(36)
}
