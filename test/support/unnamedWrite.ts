/**
 * A raw write through the library whose tables the lexer cannot name, so `ChangeCapture` publishes
 * it for table `"*"`. On MariaDB and PostgreSQL it is a `CALL` of a procedure running `statement`;
 * SQLite has no procedures, so there `statement` runs behind the library's back and a raw DDL
 * statement through the library (also unnamed) publishes the `"*"` event.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, type Scope } from "effect"
import type { DialectName } from "../../src/Query/Dialect.js"
import type { Executor } from "../../src/Query/Executor.js"
import type { RawError } from "../../src/Query/Raw.js"
import * as Raw from "../../src/Query/Raw.js"
import { uniqueName } from "./databases.js"

export const unnamedWrite = (
  dialect: DialectName,
  statement: string
): Effect.Effect<void, RawError | SqlError, Executor | SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const name = uniqueName("unnamed")
    if (dialect === "sqlite") {
      yield* sql.unsafe(statement)
      yield* Raw.query(`DROP TABLE IF EXISTS ${name}_never_created`).exec()
      return
    }
    yield* Effect.acquireRelease(
      sql.unsafe(
        dialect === "mysql"
          ? `CREATE PROCEDURE ${name}() ${statement}`
          : `CREATE PROCEDURE ${name}() LANGUAGE SQL AS $$ ${statement} $$`
      ),
      () => Effect.orDie(sql.unsafe(`DROP PROCEDURE ${name}`))
    )
    yield* Raw.query(`CALL ${name}()`).exec()
  })
