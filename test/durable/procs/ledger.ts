/**
 * The domain of the crash tests: a durable ledger whose every write carries a
 * unique operation id. `ops` lists the ids of the writes applied to the
 * record, in order (the create's first); `n` and `last` are written by the
 * same writes, so a state that holds part of a write shows (`n` is the
 * length of `ops`, `last` its last id).
 */
import { Layer, Schema } from "effect"
import type { SqlClient } from "effect/sql"
import { Action, Changeset, Resource, SqliteClient } from "../../../src/index.js"
import * as Pg from "../../cluster/pg.js"

export const Ledger = Resource.make("CrashLedger", {
  fields: { id: Schema.String, ops: Schema.Array(Schema.String), n: Schema.Int, last: Schema.String },
  primaryKey: ["id"],
  durable: true,
  actions: {
    append: Action.update({
      arguments: { op: Schema.String },
      change: (cs) => {
        const ops = [...Changeset.get(cs, "ops"), cs.arguments.op]
        return cs.pipe(
          Changeset.set("ops", ops),
          Changeset.set("n", Changeset.get(cs, "n") + 1),
          Changeset.set("last", cs.arguments.op)
        )
      }
    })
  }
})

export type Entry = Resource.Record<typeof Ledger>

/** The domain of the schedule crash test: a durable alarm that rings once, `millis` after its create. */
export const Alarmed = Resource.make("CrashAlarm", {
  fields: { id: Schema.String, rings: Schema.Int },
  primaryKey: ["id"],
  durable: true,
  actions: (Action) => ({
    set: Action.create({
      accept: ["id"],
      arguments: { millis: Schema.Int },
      change: (cs) =>
        cs.pipe(Changeset.set("rings", 0), Changeset.schedule("ring", { after: `${cs.arguments.millis} millis` }))
    }),
    ring: Action.update({ change: (cs) => Changeset.set(cs, "rings", cs.data.rings + 1) })
  })
})

/** The database of a crash test: `sqlite <file>` or `pg <schema>` (a schema that exists). */
export const database = (kind: string, where: string): Layer.Layer<SqlClient.SqlClient> =>
  kind === "sqlite"
    ? SqliteClient.layer({ filename: where }).pipe(Layer.orDie)
    : Pg.layer("crash", where, false)
