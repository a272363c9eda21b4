/**
 * Operation ids the data layers make for writes whose caller chose none:
 * unique across processes (a random prefix per process) and short (the
 * rows of stored records remember their last few).
 *
 * @internal
 */

/** This process's prefix: 12 random base-36 characters (about 62 bits). */
const prefix = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => (b % 36).toString(36)).join("")
let counter = 0

/** A new operation id. @internal */
export const make = (): string => `${prefix}${(++counter).toString(36)}`
