/**
 * Shared by the Tx suites: an `items` table per database, a raw statement that runs through the
 * Executor (as Insert/Update/Raw do), and reads through `Select` on whatever connection is current.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Fiber, FiberRef, type FiberStatus, Layer, Option, Schema } from "effect"
import { describeRaw } from "../../src/Query/Description.js"
import type { DialectName } from "../../src/Query/Dialect.js"
import { Executor, type QueryResult } from "../../src/Query/Executor.js"
import type { QueryError } from "../../src/Query/QueryError.js"
import * as Select from "../../src/Query/Select.js"
import * as Entity from "../../src/Schema/Entity.js"
import { autoIdColumn, uniqueName } from "../support/databases.js"

export interface Items {
  readonly table: string
  readonly Item: Schema.Struct<{
    id: typeof Schema.Number
    name: typeof Schema.String
    n: typeof Schema.Number
  }>
  /** Creates the table when the layer is built and drops it when it is released. */
  readonly layer: Layer.Layer<never, unknown, SqlClient.SqlClient>
}

export const items = (prefix: string, dialect: DialectName): Items => {
  const table = uniqueName(prefix)
  const Item = Schema.Struct({
    id: Schema.Number.pipe(Entity.generated),
    name: Schema.String,
    n: Schema.Number
  }).annotations({ identifier: "Item", ...Entity.table(table) })
  const layer = Layer.scopedDiscard(
    Effect.acquireRelease(
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql.unsafe(
          `CREATE TABLE ${table} (id ${autoIdColumn(dialect)}, name VARCHAR(50) NOT NULL, n INT NOT NULL DEFAULT 0)`
        )
      ),
      () => Effect.orDie(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`DROP TABLE ${table}`)))
    )
  )
  return { table, Item, layer }
}

/** A statement through `Executor.execute`, on the current transaction's connection when there is one. */
export const exec = (
  sql: string,
  params: ReadonlyArray<unknown> = []
): Effect.Effect<QueryResult, QueryError, Executor> =>
  Effect.flatMap(Executor, (executor) =>
    executor.execute({
      type: "RAW",
      model: undefined,
      table: "",
      statement: { sql, params },
      description: describeRaw(sql, executor.session.dialect),
      expects: "exec",
      session: executor.session
    })
  )

/** A statement that yields rows, through `Executor.execute`. */
export const query = (
  sql: string,
  params: ReadonlyArray<unknown> = []
): Effect.Effect<ReadonlyArray<Record<string, unknown>>, QueryError, Executor> =>
  Effect.flatMap(Executor, (executor) =>
    executor
      .execute({
        type: "RAW",
        model: undefined,
        table: "",
        statement: { sql, params },
        description: describeRaw(sql, executor.session.dialect),
        expects: "rows",
        session: executor.session
      })
      .pipe(Effect.map((result) => result.rows))
  )

/** `sql` with `$1`, `$2`… rewritten to the placeholders of the Executor's dialect. */
export const execP = (sql: string, params: ReadonlyArray<unknown>) =>
  Effect.flatMap(Executor, ({ session }) =>
    exec(
      sql.replace(/\$(\d+)/g, (_, i: string) => session.dialect.placeholder(Number(i))),
      params
    )
  )

export const insert = (t: Items, name: string, n = 0) =>
  execP(`INSERT INTO ${t.table} (name, n) VALUES ($1, $2)`, [name, n])

/** The names in the table, sorted, read through the Select builder. */
export const names = (t: Items) =>
  Select.from(t.Item)
    .getMulti()
    .pipe(Effect.map((rows) => rows.map((r) => r.name).sort()))

/** The id of the transaction the fiber holds on the Executor's database, if any. */
export const currentTxId = Effect.flatMap(Executor, ({ session }) =>
  Effect.map(
    FiberRef.get(session.transaction),
    Option.map((s) => s.id)
  )
)

/**
 * Yields until `fiber` is blocked (waiting on a lock or a connection), at most 10,000 turns, and
 * returns its status then: no clock involved, so it works under TestClock and on a loaded machine.
 */
export const blocked = (
  fiber: Fiber.RuntimeFiber<unknown, unknown>
): Effect.Effect<FiberStatus.FiberStatus> =>
  Fiber.status(fiber).pipe(
    Effect.zipLeft(Effect.yieldNow()),
    Effect.repeat({ until: (status) => status._tag === "Suspended", times: 10_000 })
  )
