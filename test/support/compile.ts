/**
 * Asserts the exact SQL and parameters a builder compiles to on every dialect.
 */
import { Either } from "effect"
import { expect } from "vitest"
import type { Compiled, CompileError } from "../../src/Query/Compiler.js"
import * as Dialect from "../../src/Query/Dialect.js"

export interface Compilable {
  readonly compile: (dialect: Dialect.Dialect) => Either.Either<Compiled, CompileError>
}

export type Expected = readonly [sql: string, params: ReadonlyArray<unknown>]

/** `expected` per dialect; a dialect given as a string reuses that dialect's expectation. */
export const expectSql = (builder: Compilable, expected: Record<Dialect.DialectName, Expected>) => {
  for (const name of ["mysql", "pg", "sqlite"] as const) {
    const compiled = builder.compile(Dialect.byName[name])
    if (Either.isLeft(compiled)) throw new Error(`${name}: ${compiled.left.message}`)
    expect({ dialect: name, sql: compiled.right.sql, params: compiled.right.params }).toEqual({
      dialect: name,
      sql: expected[name][0],
      params: expected[name][1]
    })
  }
}

/** The same SQL with `?` placeholders on MySQL and SQLite and `$n` on PostgreSQL; identifiers quoted per dialect. */
export const portable = (
  sql: string,
  params: ReadonlyArray<unknown>
): Record<Dialect.DialectName, Expected> => {
  let n = 0
  const pg = sql.replace(/\?/g, () => `$${++n}`)
  return { mysql: [sql.replace(/"/g, "`"), params], pg: [pg, params], sqlite: [sql, params] }
}

/** The compile error a builder fails with on `dialect`. */
export const compileError = (
  builder: Compilable,
  dialect: Dialect.Dialect = Dialect.sqlite
): CompileError => {
  const compiled = builder.compile(dialect)
  if (Either.isRight(compiled)) throw new Error(`expected a compile error, got ${compiled.right.sql}`)
  return compiled.left
}
