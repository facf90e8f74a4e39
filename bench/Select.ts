/**
 * Point select by primary key on MariaDB: effect-dal vs @effect/sql vs raw mysql2 `pool.execute`, at
 * concurrency 1 and 16; and compile throughput of a typical select vs Kysely compiling the same query.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Either, Layer, ManagedRuntime, Schema } from "effect"
import { DummyDriver, Kysely, MysqlAdapter, MysqlIntrospector, MysqlQueryCompiler } from "kysely"
import * as Mysql from "mysql2/promise"
import * as Database from "../src/Layers/Database.js"
import * as Dialect from "../src/Query/Dialect.js"
import * as Select from "../src/Query/Select.js"
import * as Entity from "../src/Schema/Entity.js"
import { compare, printTable, withConcurrency } from "./support.js"

const url = process.env.MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test"
const table = "bench_select_users"
const rows = 1000

class User extends Schema.Class<User>("User")(
  {
    id: Schema.Number,
    firstName: Schema.String,
    lastName: Schema.String,
    email: Schema.String,
    age: Schema.Number
  },
  Entity.table(table)
) {}

const pointSelect = async () => {
  const runtime = ManagedRuntime.make(Layer.orDie(Database.layer({ url, maxConnections: 16 })))
  const sql = await runtime.runPromise(SqlClient.SqlClient)
  await runtime.runPromise(
    Effect.gen(function* () {
      yield* sql.unsafe(`DROP TABLE IF EXISTS ${table}`)
      yield* sql.unsafe(
        `CREATE TABLE ${table} (id INT PRIMARY KEY, first_name VARCHAR(50), last_name VARCHAR(50), email VARCHAR(100), age INT)`
      )
      const values = Array.from(
        { length: rows },
        (_, i) => `(${i + 1}, 'First${i}', 'Last${i}', 'u${i}@example.com', ${i % 90})`
      )
      yield* sql.unsafe(`INSERT INTO ${table} VALUES ${values.join(", ")}`)
    })
  )
  const pool = Mysql.createPool({ uri: url, connectionLimit: 16 })
  const id = () => 1 + Math.floor(Math.random() * rows)
  const library = (n: number, c: number) =>
    runtime.runPromise(
      Effect.forEach(
        Array.from({ length: n }),
        () =>
          Select.from(User)
            .where((u) => u.id.eq(id()))
            .get(),
        {
          concurrency: c,
          discard: true
        }
      )
    )
  const effectSql = (n: number, c: number) =>
    runtime.runPromise(
      Effect.forEach(
        Array.from({ length: n }),
        () => sql`SELECT id, first_name, last_name, email, age FROM ${sql(table)} WHERE id = ${id()}`,
        { concurrency: c, discard: true }
      )
    )
  const raw = (n: number, c: number) =>
    withConcurrency(n, c, () =>
      pool.execute(`SELECT id, first_name, last_name, email, age FROM ${table} WHERE id = ?`, [id()])
    )
  for (const c of [1, 16]) {
    const results = await compare(
      [
        { name: "mysql2 pool.execute", run: (n) => raw(n, c) },
        { name: "@effect/sql", run: (n) => effectSql(n, c) },
        { name: "effect-dal", run: (n) => library(n, c) }
      ],
      { ops: 3000, rounds: 5 }
    )
    printTable(`Point select by primary key, MariaDB, concurrency ${c}`, results, {
      baseline: "@effect/sql",
      unit: "queries/s",
      targets: { "effect-dal": 0.9 }
    })
  }
  await runtime.runPromise(sql.unsafe(`DROP TABLE ${table}`))
  await pool.end()
  await runtime.dispose()
}

interface KyselyDb {
  bench_select_users: { id: number; first_name: string; last_name: string; email: string; age: number }
}

const compileThroughput = async () => {
  const kysely = new Kysely<KyselyDb>({
    dialect: {
      createAdapter: () => new MysqlAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) => new MysqlIntrospector(db),
      createQueryCompiler: () => new MysqlQueryCompiler()
    }
  })
  const ours = () =>
    Select.from(User)
      .where((u) => u.age.gte(18))
      .where((u) => u.lastName.like("L%"))
      .orderBy("lastName")
      .limit(20)
      .offset(40)
      .compile(Dialect.mysql)
  const theirs = () =>
    kysely
      .selectFrom(table)
      .select(["id", "first_name", "last_name", "email", "age"])
      .where("age", ">=", 18)
      .where("last_name", "like", "L%")
      .orderBy("last_name", "asc")
      .limit(20)
      .offset(40)
      .compile()
  const a = Either.getOrThrow(ours())
  const b = theirs()
  const normalise = (s: string) => s.replace(/`/g, "").replace(/ asc/gi, " ASC").toLowerCase()
  if (normalise(a.sql) !== normalise(b.sql) || JSON.stringify(a.params) !== JSON.stringify(b.parameters)) {
    throw new Error(
      `Not the same query:\n  effect-dal: ${a.sql} ${JSON.stringify(a.params)}\n  kysely:     ${b.sql} ${JSON.stringify(b.parameters)}`
    )
  }
  console.log(`\nSame SQL checked: ${a.sql}`)
  const loop = (f: () => unknown) => async (n: number) => {
    for (let i = 0; i < n; i++) f()
  }
  const results = await compare(
    [
      { name: "kysely", run: loop(theirs) },
      { name: "effect-dal", run: loop(ours) }
    ],
    { ops: 100_000, rounds: 5 }
  )
  printTable("Compile a typical select (build + compile)", results, {
    baseline: "kysely",
    unit: "compiles/s",
    targets: { "effect-dal": 3 }
  })
}

export const run = async (): Promise<void> => {
  await compileThroughput()
  await pointSelect()
}
