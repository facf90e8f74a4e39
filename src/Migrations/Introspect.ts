/**
 * Reads the live schema of a database into `TableSpec`s: information_schema on MySQL/MariaDB,
 * pg_catalog on PostgreSQL (the current schema), sqlite_master and its pragmas on SQLite. Every
 * catalog query binds its values; table names only ever reach SQL quoted.
 *
 * @since 0.1.0
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import type { Dialect } from "../Query/Dialect.js"
import type * as Entity from "../Schema/Entity.js"
import {
  type ColumnSpec,
  checkName,
  type ForeignKeySpec,
  foreignKeyName,
  type IndexSpec,
  type TableSpec
} from "./TableSpec.js"

type Row = Record<string, unknown>

const str = (u: unknown): string =>
  typeof u === "string" ? u : u === null || u === undefined ? "" : String(u)
const opt = (u: unknown): string | undefined => (u === null || u === undefined ? undefined : String(u))
const truthy = (u: unknown) => u === true || u === 1 || u === "1" || u === 1n || u === "YES" || u === "t"

/** The string literals of a CHECK (`col IN ('a', 'b')` or PostgreSQL's `= ANY (ARRAY['a'::text, ...])`). */
const literalsOf = (definition: string): ReadonlyArray<string> =>
  Array.from(definition.matchAll(/'((?:[^']|'')*)'/g), (m) => (m[1] ?? "").replace(/''/g, "'"))

const referentialAction = (rule: string): Entity.ReferentialAction => {
  switch (rule.toLowerCase()) {
    case "cascade":
    case "c":
      return "cascade"
    case "restrict":
    case "r":
      return "restrict"
    case "set null":
    case "n":
      return "set null"
    default:
      return "no action"
  }
}

const groupBy = <A>(rows: ReadonlyArray<A>, key: (a: A) => string): Map<string, Array<A>> => {
  const out = new Map<string, Array<A>>()
  for (const row of rows) {
    const k = key(row)
    const list = out.get(k)
    if (list === undefined) out.set(k, [row])
    else list.push(row)
  }
  return out
}

/** Index rows (one per column, in order) into indexes. */
const indexesOf = (rows: ReadonlyArray<Row>): Array<IndexSpec & { readonly primary: boolean }> =>
  Array.from(
    groupBy(rows, (r) => str(r.index_name)),
    ([name, cols]) => ({
      name,
      columns: cols.map((c) => str(c.column_name)),
      unique: truthy(cols[0]?.is_unique),
      primary: truthy(cols[0]?.is_primary)
    })
  )

const hasRows = (sql: SqlClient.SqlClient, dialect: Dialect, table: string) =>
  Effect.map(
    sql.unsafe<Row>(`SELECT 1 AS present FROM ${dialect.quote(table)} LIMIT 1`).withoutTransform,
    (rows) => rows.length > 0
  )

const mysql = (sql: SqlClient.SqlClient, dialect: Dialect) =>
  Effect.gen(function* () {
    const columns = yield* sql.unsafe<Row>(
      `SELECT TABLE_NAME AS table_name, COLUMN_NAME AS column_name, COLUMN_TYPE AS type, IS_NULLABLE AS nullable,
         COLUMN_DEFAULT AS default_value, EXTRA AS extra
       FROM information_schema.COLUMNS c
       WHERE TABLE_SCHEMA = DATABASE()
         AND EXISTS (SELECT 1 FROM information_schema.TABLES t WHERE t.TABLE_SCHEMA = c.TABLE_SCHEMA
                     AND t.TABLE_NAME = c.TABLE_NAME AND t.TABLE_TYPE = 'BASE TABLE')
       ORDER BY TABLE_NAME, ORDINAL_POSITION`
    ).withoutTransform
    const indexes = yield* sql.unsafe<Row>(
      `SELECT TABLE_NAME AS table_name, INDEX_NAME AS index_name, NON_UNIQUE = 0 AS is_unique,
         INDEX_NAME = 'PRIMARY' AS is_primary, COLUMN_NAME AS column_name
       FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()
       ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`
    ).withoutTransform
    const fks = yield* sql.unsafe<Row>(
      `SELECT k.TABLE_NAME AS table_name, k.CONSTRAINT_NAME AS name, k.COLUMN_NAME AS column_name,
         k.REFERENCED_TABLE_NAME AS ref_table, k.REFERENCED_COLUMN_NAME AS ref_column,
         r.DELETE_RULE AS on_delete, r.UPDATE_RULE AS on_update
       FROM information_schema.KEY_COLUMN_USAGE k
       JOIN information_schema.REFERENTIAL_CONSTRAINTS r ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA
         AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME
       WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME IS NOT NULL
       ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION`
    ).withoutTransform
    const indexesBy = groupBy(indexes, (r) => str(r.table_name))
    const fksBy = groupBy(fks, (r) => str(r.table_name))
    return yield* Effect.forEach(
      groupBy(columns, (r) => str(r.table_name)),
      ([table, cols]) =>
        Effect.map(hasRows(sql, dialect, table), (rows): TableSpec => {
          const foreignKeys = foreignKeysOf(fksBy.get(table) ?? [])
          const all = indexesOf(indexesBy.get(table) ?? [])
          return {
            name: table,
            columns: cols.map(
              (c): ColumnSpec => ({
                name: str(c.column_name),
                type: str(c.type),
                nullable: str(c.nullable) === "YES",
                // MariaDB reports "no default" on a nullable column as the text NULL.
                default: opt(c.default_value) === "NULL" ? undefined : opt(c.default_value),
                autoIncrement: str(c.extra).toLowerCase().includes("auto_increment"),
                check: undefined,
                renamedFrom: undefined
              })
            ),
            primaryKey: all.find((i) => i.primary)?.columns ?? [],
            // MySQL adds an index named after each foreign key that has none: it belongs to the key.
            indexes: all
              .filter((i) => !i.primary && !foreignKeys.some((fk) => fk.name === i.name))
              .map(({ primary: _, ...i }) => i),
            foreignKeys,
            hasRows: rows
          }
        })
    )
  })

const foreignKeysOf = (rows: ReadonlyArray<Row>): Array<ForeignKeySpec> =>
  Array.from(
    groupBy(rows, (r) => str(r.name)),
    ([name, cols]) => ({
      name,
      columns: cols.map((c) => str(c.column_name)),
      table: str(cols[0]?.ref_table),
      references: cols.map((c) => str(c.ref_column)),
      onDelete: referentialAction(str(cols[0]?.on_delete)),
      onUpdate: referentialAction(str(cols[0]?.on_update))
    })
  )

const pg = (sql: SqlClient.SqlClient, dialect: Dialect) =>
  Effect.gen(function* () {
    const columns = yield* sql.unsafe<Row>(
      `SELECT c.relname AS table_name, a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS type,
         NOT a.attnotnull AS nullable, pg_get_expr(d.adbin, d.adrelid) AS default_value,
         a.attidentity <> '' AS identity
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid
       LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
       WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
       ORDER BY c.relname, a.attnum`
    ).withoutTransform
    const indexes = yield* sql.unsafe<Row>(
      `SELECT t.relname AS table_name, i.relname AS index_name, ix.indisunique AS is_unique,
         ix.indisprimary AS is_primary, a.attname AS column_name
       FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_class i ON i.oid = ix.indexrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
       CROSS JOIN LATERAL unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
       JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
       WHERE n.nspname = current_schema()
       ORDER BY t.relname, i.relname, k.ord`
    ).withoutTransform
    const constraints = yield* sql.unsafe<Row>(
      `SELECT t.relname AS table_name, con.conname AS name, con.contype AS kind,
         pg_get_constraintdef(con.oid) AS definition, f.relname AS ref_table,
         ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, o)
               JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o) AS columns,
         ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, o)
               JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o) AS ref_columns,
         con.confdeltype AS on_delete, con.confupdtype AS on_update
       FROM pg_constraint con JOIN pg_class t ON t.oid = con.conrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace LEFT JOIN pg_class f ON f.oid = con.confrelid
       WHERE n.nspname = current_schema() AND con.contype IN ('f', 'c')
       ORDER BY t.relname, con.conname`
    ).withoutTransform
    const indexesBy = groupBy(indexes, (r) => str(r.table_name))
    const constraintsBy = groupBy(constraints, (r) => str(r.table_name))
    return yield* Effect.forEach(
      groupBy(columns, (r) => str(r.table_name)),
      ([table, cols]) =>
        Effect.map(hasRows(sql, dialect, table), (rows): TableSpec => {
          const all = indexesOf(indexesBy.get(table) ?? [])
          const cons = constraintsBy.get(table) ?? []
          const arrayOf = (u: unknown): ReadonlyArray<string> => (Array.isArray(u) ? u.map(str) : [])
          return {
            name: table,
            columns: cols.map((c): ColumnSpec => {
              const name = str(c.column_name)
              const check = cons.find((k) => k.kind === "c" && k.name === checkName(table, name))
              return {
                name,
                type: str(c.type),
                nullable: truthy(c.nullable),
                default: opt(c.default_value),
                autoIncrement: truthy(c.identity) || str(c.default_value).startsWith("nextval("),
                check: check === undefined ? undefined : literalsOf(str(check.definition)),
                renamedFrom: undefined
              }
            }),
            primaryKey: all.find((i) => i.primary)?.columns ?? [],
            indexes: all.filter((i) => !i.primary).map(({ primary: _, ...i }) => i),
            foreignKeys: cons
              .filter((k) => k.kind === "f")
              .map((k) => ({
                name: str(k.name),
                columns: arrayOf(k.columns),
                table: str(k.ref_table),
                references: arrayOf(k.ref_columns),
                onDelete: referentialAction(str(k.on_delete)),
                onUpdate: referentialAction(str(k.on_update))
              })),
            hasRows: rows
          }
        })
    )
  })

/** `CONSTRAINT "ck_..." CHECK ("col" IN ('a', 'b'))` in SQLite's stored CREATE TABLE text. */
const sqliteChecks = (createSql: string): Map<string, ReadonlyArray<string>> => {
  const out = new Map<string, ReadonlyArray<string>>()
  const pattern =
    /CONSTRAINT\s+"(?:[^"]|"")+"\s+CHECK\s*\(\s*"((?:[^"]|"")+)"\s+IN\s*\(((?:'(?:[^']|'')*'|[\s,])*)\)\s*\)/gi
  for (const m of createSql.matchAll(pattern))
    out.set((m[1] ?? "").replace(/""/g, '"'), literalsOf(m[2] ?? ""))
  return out
}

const sqlite = (sql: SqlClient.SqlClient, dialect: Dialect) =>
  Effect.gen(function* () {
    const tables = yield* sql.unsafe<Row>(
      "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
    ).withoutTransform
    return yield* Effect.forEach(tables, (t) =>
      Effect.gen(function* () {
        const table = str(t.name)
        const createSql = str(t.sql)
        const cols = yield* sql.unsafe<Row>("SELECT * FROM pragma_table_info(?) ORDER BY cid", [table])
          .withoutTransform
        const list = yield* sql.unsafe<Row>("SELECT * FROM pragma_index_list(?)", [table]).withoutTransform
        const indexes = yield* Effect.forEach(
          list.filter((i) => str(i.origin) !== "pk"),
          (i) =>
            Effect.map(
              sql.unsafe<Row>("SELECT name FROM pragma_index_info(?) ORDER BY seqno", [str(i.name)])
                .withoutTransform,
              (info): IndexSpec => ({
                name: str(i.name),
                columns: info.map((r) => str(r.name)),
                unique: truthy(i.unique)
              })
            )
        )
        const fkRows = yield* sql.unsafe<Row>("SELECT * FROM pragma_foreign_key_list(?) ORDER BY id, seq", [
          table
        ]).withoutTransform
        const foreignKeys = Array.from(
          groupBy(fkRows, (r) => str(r.id)),
          ([, rows]): ForeignKeySpec => {
            const columns = rows.map((r) => str(r.from))
            return {
              name: foreignKeyName(table, columns),
              columns,
              table: str(rows[0]?.table),
              references: rows.map((r) => str(r.to)),
              onDelete: referentialAction(str(rows[0]?.on_delete)),
              onUpdate: referentialAction(str(rows[0]?.on_update))
            }
          }
        )
        const checks = sqliteChecks(createSql)
        const pk = cols.filter((c) => Number(c.pk) > 0).sort((a, b) => Number(a.pk) - Number(b.pk))
        const autoIncrement = /\bAUTOINCREMENT\b/i.test(createSql)
        return {
          name: table,
          columns: cols.map(
            (c): ColumnSpec => ({
              name: str(c.name),
              type: str(c.type),
              nullable: !truthy(c.notnull) && Number(c.pk) === 0,
              default: opt(c.dflt_value),
              autoIncrement: autoIncrement && pk.length === 1 && Number(c.pk) === 1,
              check: checks.get(str(c.name)),
              renamedFrom: undefined
            })
          ),
          primaryKey: pk.map((c) => str(c.name)),
          indexes,
          foreignKeys,
          hasRows: yield* hasRows(sql, dialect, table)
        }
      })
    )
  })

/**
 * The tables of the database `sql` is connected to (its current schema on PostgreSQL).
 *
 * @since 0.1.0 @category introspection
 */
export const tables = (
  sql: SqlClient.SqlClient,
  dialect: Dialect
): Effect.Effect<ReadonlyArray<TableSpec>, SqlError> => {
  switch (dialect.name) {
    case "mysql":
      return mysql(sql, dialect)
    case "pg":
      return pg(sql, dialect)
    case "sqlite":
      return sqlite(sql, dialect)
  }
}
