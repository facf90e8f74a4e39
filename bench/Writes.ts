/**
 * Batch insert of 10,000 rows and select of 10,000 rows on MariaDB: effect-dal vs @effect/sql vs raw
 * mysql2 `pool.execute` (the same prepared multi-row statement @effect/sql sends), in rows/s.
 * effect-dal encodes every row through the entity schema on insert and decodes every row into the
 * entity class on select; a contender "@effect/sql + Schema" decodes the same rows, to show where
 * the time goes. Target: effect-dal ≥ 0.8× @effect/sql.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import * as Mysql from "mysql2/promise"
import * as Database from "../src/Layers/Database.js"
import * as Insert from "../src/Query/Insert.js"
import * as Select from "../src/Query/Select.js"
import * as Entity from "../src/Schema/Entity.js"
import { compare, printTable } from "./support.js"

const url = process.env.MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test"
const insertTable = "bench_writes_insert"
const selectTable = "bench_writes_select"
const batch = 10_000

const fields = {
  id: Schema.Number.pipe(Entity.generated),
  code: Schema.String,
  a: Schema.Number,
  b: Schema.Number,
  note: Schema.String,
  createdAt: Schema.Date
}

class Inserted extends Schema.Class<Inserted>("Inserted")(fields, Entity.table(insertTable)) {}
class Item extends Schema.Class<Item>("Item")(fields, Entity.table(selectTable)) {}

const columns = "code, a, b, note, created_at"
const at = new Date(Date.UTC(2024, 0, 1))
const entities = Array.from(
  { length: batch },
  (_, i) => new Inserted({ id: 0, code: `c${i}`, a: i, b: i * 2, note: `row ${i}`, createdAt: at })
)
// Every contender starts from the same entities and binds the same encoded values (the Date as ISO
// text), so turning an entity into a row is part of the work each one does.
const record = (e: Inserted) => ({
  code: e.code,
  a: e.a,
  b: e.b,
  note: e.note,
  created_at: e.createdAt.toISOString()
})
const tuples = (n: number) => Array.from({ length: n }, () => "(?, ?, ?, ?, ?)").join(", ")

export const run = async (): Promise<void> => {
  const runtime = ManagedRuntime.make(Layer.orDie(Database.layer({ url, maxConnections: 4 })))
  const sql = await runtime.runPromise(SqlClient.SqlClient)
  const pool = Mysql.createPool({ uri: url, connectionLimit: 4 })
  const create = (table: string) =>
    `CREATE TABLE ${table} (id INT AUTO_INCREMENT PRIMARY KEY, code VARCHAR(20) NOT NULL, a INT NOT NULL, ` +
    "b INT NOT NULL, note VARCHAR(40) NOT NULL, created_at VARCHAR(30) NOT NULL)"
  await runtime.runPromise(
    Effect.gen(function* () {
      for (const table of [insertTable, selectTable]) {
        yield* sql.unsafe(`DROP TABLE IF EXISTS ${table}`)
        yield* sql.unsafe(create(table))
      }
      yield* sql`INSERT INTO ${sql(selectTable)} ${sql.insert(entities.map(record))}`
    })
  )
  try {
    const inserts = await compare(
      [
        {
          name: "mysql2 pool.execute",
          run: async (n) => {
            const params = entities
              .slice(0, n)
              .flatMap((e) => [e.code, e.a, e.b, e.note, e.createdAt.toISOString()])
            await pool.execute(`INSERT INTO ${insertTable} (${columns}) VALUES ${tuples(n)}`, params)
          }
        },
        {
          name: "@effect/sql",
          run: (n) =>
            runtime.runPromise(
              Effect.asVoid(
                sql`INSERT INTO ${sql(insertTable)} ${sql.insert(entities.slice(0, n).map(record))}`
              )
            )
        },
        {
          name: "effect-dal",
          run: (n) =>
            runtime.runPromise(Effect.asVoid(Insert.into(Inserted).values(entities.slice(0, n)).exec()))
        }
      ],
      { ops: batch, rounds: 5, warmupOps: batch }
    )
    printTable(`batch insert, ${batch.toLocaleString("en-US")} rows x 5 columns`, inserts, {
      baseline: "@effect/sql",
      unit: "rows/s",
      targets: { "effect-dal": 0.8 }
    })

    const decodeItems = Schema.decodeUnknownSync(Schema.Array(Item))
    const selectSql = `SELECT id, code, a, b, note, created_at FROM ${selectTable} LIMIT ?`
    const selects = await compare(
      [
        {
          name: "mysql2 pool.execute",
          run: async (n) => {
            await pool.execute(selectSql, [n])
          }
        },
        {
          name: "@effect/sql",
          run: (n) => runtime.runPromise(Effect.asVoid(sql.unsafe(selectSql, [n])))
        },
        {
          name: "@effect/sql + Schema",
          run: (n) =>
            runtime.runPromise(
              Effect.map(sql.unsafe<Record<string, unknown>>(selectSql, [n]), (rows) => {
                decodeItems(rows.map((r) => ({ ...r, createdAt: r.created_at })))
              })
            )
        },
        {
          name: "effect-dal",
          run: (n) => runtime.runPromise(Effect.asVoid(Select.from(Item).limit(n).getMulti()))
        }
      ],
      { ops: batch, rounds: 5, warmupOps: batch }
    )
    printTable(`select, ${batch.toLocaleString("en-US")} rows decoded into entities`, selects, {
      baseline: "@effect/sql",
      unit: "rows/s",
      targets: { "effect-dal": 0.8 }
    })
  } finally {
    await runtime.runPromise(
      Effect.all([sql.unsafe(`DROP TABLE ${insertTable}`), sql.unsafe(`DROP TABLE ${selectTable}`)])
    )
    await pool.end()
    await runtime.dispose()
  }
}
