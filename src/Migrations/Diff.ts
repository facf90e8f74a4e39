/**
 * The ordered statements that turn a live schema into the one the entities describe, each marked
 * safe or destructive. Destructive means data can be lost or rewritten: dropping a table or a
 * column, narrowing a type, making a column NOT NULL (or adding one without a default) on a table
 * that has rows. SQLite cannot alter a column, a key or a foreign key in place: such a table is
 * rebuilt (new table, rows copied, old one dropped, new one renamed, indexes recreated).
 *
 * @since 0.1.0
 */
import { Either } from "effect"
import type { Dialect, DialectName } from "../Query/Dialect.js"
import * as Ddl from "./Ddl.js"
import { UnsupportedChangeError } from "./MigrationError.js"
import type { ColumnSpec, ForeignKeySpec, IndexSpec, TableSpec } from "./TableSpec.js"

/** One statement of a diff. @since 0.1.0 @category models */
export interface Step {
  readonly sql: string
  /** What the statement does, for people: `add column users.age`. */
  readonly description: string
  /** Why it can lose data; absent for a safe step. */
  readonly destructive: string | undefined
}

/** @since 0.1.0 @category models */
export interface Options {
  /** Drop live tables that no entity describes (default false: they are left alone, never listed). */
  readonly dropUnknownTables?: boolean
  /** Tables never touched, beside the Migrator's own (`effect_sql_migrations`). */
  readonly ignoreTables?: ReadonlyArray<string>
}

/** Splits text into quoted and unquoted parts so only the unquoted ones are case-folded. */
const foldOutsideQuotes = (text: string, f: (s: string) => string): string =>
  text
    .split(/('(?:[^']|'')*')/)
    .map((part, i) => (i % 2 === 1 ? part : f(part)))
    .join("")

/**
 * A type text reduced to one spelling per type, so that what a catalog reports equals what was
 * written: `int(11)` = `INT`, `character varying(100)` = `VARCHAR(100)`, MariaDB's JSON = `longtext`.
 *
 * @since 0.1.0 @category comparison
 */
export const canonicalType = (dialect: DialectName, type: string): string => {
  const t = foldOutsideQuotes(type.trim(), (s) =>
    s
      .toLowerCase()
      .replace(/\s+/g, " ")
      .replace(/\s*([(),])\s*/g, "$1")
  )
  switch (dialect) {
    case "mysql":
      return t
        .replace(/^(tinyint|smallint|mediumint|int|bigint)\(\d+\)/, "$1")
        .replace(/^integer\b/, "int")
        .replace(/^(bool|boolean|tinyint\(1\))$/, "tinyint")
        .replace(/^json$/, "longtext")
        .replace(/^(double precision|real)$/, "double")
    case "pg":
      return t
        .replace(/^character varying/, "varchar")
        .replace(/^character\b/, "char")
        .replace(/^(int|int4)$/, "integer")
        .replace(/^int8$/, "bigint")
        .replace(/^float8$/, "double precision")
        .replace(/^bool$/, "boolean")
        .replace(/^timestamp(\(\d+\))? ?with time zone$/, "timestamptz$1")
        .replace(/^timestamp(\(\d+\))? ?without time zone$/, "timestamp$1")
    case "sqlite":
      return t
  }
}

/**
 * A default's text reduced for comparison: a literal to its value (`'a'::text` = `'a'`, `(5)` = `5`,
 * `true` = `1`), an expression to lower case without spaces (`current_timestamp()` = `CURRENT_TIMESTAMP`).
 *
 * @since 0.1.0 @category comparison
 */
export const canonicalDefault = (dialect: DialectName, text: string | undefined): string | undefined => {
  if (text === undefined) return undefined
  let t = text.trim()
  for (;;) {
    // PostgreSQL writes casts (`'a'::character varying`) and parentheses (`(-1)`) around literals.
    const cast = t.match(/^(.*)::[a-z ]+(\(\d+(,\d+)?\))?(\[\])?$/is)
    if (cast?.[1] !== undefined) t = cast[1].trim()
    else if (t.startsWith("(") && t.endsWith(")") && balanced(t.slice(1, -1))) t = t.slice(1, -1).trim()
    else break
  }
  // MySQL/MariaDB and PostgreSQL's E'' strings escape with backslashes; the others only double quotes.
  const escaped = dialect === "mysql" || /^e'/i.test(t)
  const literal = escaped ? t.match(/^[eE]?'((?:[^'\\]|''|\\.)*)'$/s) : t.match(/^'((?:[^']|'')*)'$/s)
  if (literal !== null) {
    const raw = literal[1] ?? ""
    const value = escaped
      ? raw.replace(/''|\\(.)/gs, (m, c: string | undefined) =>
          m === "''" ? "'" : c === "0" ? "\0" : (c ?? "")
        )
      : raw.replace(/''/g, "'")
    return `'${value}'`
  }
  if (/^null$/i.test(t)) return undefined
  if (/^true$/i.test(t)) return "1"
  if (/^false$/i.test(t)) return "0"
  if (/^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(t)) return String(Number(t))
  const expr = t.toLowerCase().replace(/\s+/g, "")
  return expr === "now()" || /^current_timestamp(\(\d*\))?$/.test(expr) ? "current_timestamp" : expr
}

const balanced = (s: string): boolean => {
  let depth = 0
  for (const c of s.replace(/'(?:[^']|'')*'/g, "")) {
    if (c === "(") depth++
    else if (c === ")" && --depth < 0) return false
  }
  return depth === 0
}

const sameList = (a: ReadonlyArray<string> | undefined, b: ReadonlyArray<string> | undefined) =>
  (a ?? []).join("\0") === (b ?? []).join("\0")

/** Why changing a column's type from `from` to `to` may lose data, or undefined when it cannot. */
const narrowing = (dialect: DialectName, from: ColumnSpec, to: ColumnSpec): string | undefined => {
  const a = canonicalType(dialect, from.type)
  const b = canonicalType(dialect, to.type)
  if (a === b) return undefined
  const varchar = (t: string) => t.match(/^varchar\((\d+)\)$/)?.[1]
  const isText = (t: string) => t === "text" || t === "longtext" || t === "mediumtext"
  const length = varchar(a)
  if (length !== undefined) {
    const to = varchar(b)
    if (isText(b) || (to !== undefined && Number(to) >= Number(length))) return undefined
  }
  const enumValues = (t: string) => (t.startsWith("enum(") ? t : undefined)
  if (
    enumValues(a) !== undefined &&
    (isText(b) || (enumValues(b) !== undefined && (from.check ?? []).length === 0))
  ) {
    // MySQL ENUM → text keeps every value; ENUM → wider ENUM is checked by value below.
    const before = Array.from(a.matchAll(/'((?:[^']|'')*)'/g), (m) => m[1])
    const after = new Set(Array.from(b.matchAll(/'((?:[^']|'')*)'/g), (m) => m[1]))
    if (isText(b) || before.every((v) => after.has(v))) return undefined
  }
  const widening: Record<string, ReadonlyArray<string>> = {
    int: ["bigint", "double", "decimal(65,30)"],
    integer: ["bigint", "double precision", "numeric", "real"],
    smallint: ["int", "integer", "bigint"],
    real: ["double precision", "double"],
    float: ["double"]
  }
  if (widening[a]?.includes(b)) return undefined
  return `type ${from.type} → ${to.type} may not hold every value`
}

const checkNarrowing = (from: ColumnSpec, to: ColumnSpec): string | undefined => {
  if (sameList(from.check, to.check) || to.check === undefined) return undefined
  if (from.check === undefined) return "a CHECK now limits the values"
  const after = new Set(to.check)
  const dropped = from.check.filter((v) => !after.has(v))
  return dropped.length === 0
    ? undefined
    : `values ${dropped.map((v) => `'${v}'`).join(", ")} are no longer allowed`
}

interface ColumnChange {
  readonly from: ColumnSpec
  readonly to: ColumnSpec
  readonly type: boolean
  readonly nullable: boolean
  readonly default: boolean
  readonly check: boolean
}

const columnChange = (dialect: DialectName, from: ColumnSpec, to: ColumnSpec): ColumnChange | undefined => {
  const change = {
    from,
    to,
    type: canonicalType(dialect, from.type) !== canonicalType(dialect, to.type),
    nullable: from.nullable !== to.nullable,
    default:
      !to.autoIncrement && canonicalDefault(dialect, from.default) !== canonicalDefault(dialect, to.default),
    check: !sameList(from.check, to.check)
  }
  return change.type || change.nullable || change.default || change.check ? change : undefined
}

const changeReason = (dialect: DialectName, table: TableSpec, live: TableSpec, c: ColumnChange) => {
  const reasons = [
    c.type ? narrowing(dialect, c.from, c.to) : undefined,
    c.check ? checkNarrowing(c.from, c.to) : undefined,
    c.nullable && !c.to.nullable && live.hasRows
      ? "NOT NULL on a table with rows (NULLs fail or are rewritten)"
      : undefined
  ].filter((r): r is string => r !== undefined)
  return reasons.length === 0 ? undefined : `${table.name}.${c.to.name}: ${reasons.join("; ")}`
}

const indexKey = (i: IndexSpec) => `${i.unique ? "u" : "i"}:${i.columns.join(",")}`
const fkKey = (fk: ForeignKeySpec) =>
  `${fk.columns.join(",")}>${fk.table}(${fk.references.join(",")}):${fk.onDelete}:${fk.onUpdate}`

const step = (sql: string, description: string, destructive?: string): Step => ({
  sql,
  description,
  destructive
})

/** Tables in the order their foreign keys need: a referenced table before the ones referencing it. */
export const dependencyOrder = (tables: ReadonlyArray<TableSpec>): ReadonlyArray<TableSpec> => {
  const byName = new Map(tables.map((t) => [t.name, t]))
  const done = new Set<string>()
  const visiting = new Set<string>()
  const out: Array<TableSpec> = []
  const visit = (t: TableSpec) => {
    if (done.has(t.name) || visiting.has(t.name)) return
    visiting.add(t.name)
    for (const fk of t.foreignKeys) {
      const target = byName.get(fk.table)
      if (target !== undefined && target !== t) visit(target)
    }
    visiting.delete(t.name)
    done.add(t.name)
    out.push(t)
  }
  for (const t of tables) visit(t)
  return out
}

/**
 * CREATE TABLE for each table, in foreign-key order. A foreign key to a table created later (tables
 * that reference each other) is added afterwards, except on SQLite, which does not check the target
 * when a table is created.
 *
 * @since 0.1.0 @category diff
 */
export const createTables = (
  dialect: Dialect,
  tables: ReadonlyArray<TableSpec>,
  options: { readonly ifNotExists?: boolean; readonly existing?: ReadonlySet<string> } = {}
): ReadonlyArray<Step> => {
  const created = new Set(options.existing ?? [])
  const later: Array<Step> = []
  const steps: Array<Step> = []
  for (const table of dependencyOrder(tables)) {
    const now = table.foreignKeys.filter(
      (fk) => dialect.name === "sqlite" || fk.table === table.name || created.has(fk.table)
    )
    for (const fk of table.foreignKeys.filter((fk) => !now.includes(fk))) {
      later.push(step(Ddl.addForeignKey(dialect, table.name, fk), `add foreign key ${table.name}.${fk.name}`))
    }
    const [create, ...indexes] = Ddl.createTable(dialect, table, {
      foreignKeys: now,
      ...(options.ifNotExists === undefined ? {} : { ifNotExists: options.ifNotExists })
    })
    steps.push(step(create as string, `create table ${table.name}`))
    for (const [i, sql] of indexes.entries()) {
      steps.push(step(sql, `create index ${table.indexes[i]?.name ?? ""} on ${table.name}`))
    }
    created.add(table.name)
  }
  return [...steps, ...later]
}

/** The Migrator's own table: never diffed. */
const migratorTable = "effect_sql_migrations"

/** SQLite's table rebuild: copy the rows the old and new tables share into a new table, swap. */
const rebuild = (
  dialect: Dialect,
  want: TableSpec,
  live: TableSpec,
  reason: string | undefined
): ReadonlyArray<Step> => {
  const temp = `${want.name}__rebuild`
  const source = new Map(live.columns.map((c) => [c.name, c.name]))
  const copied = want.columns.flatMap((c) => {
    const from = source.get(c.name) ?? (c.renamedFrom !== undefined ? source.get(c.renamedFrom) : undefined)
    return from === undefined ? [] : [[c.name, from] as const]
  })
  const [create] = Ddl.createTable(dialect, want, { name: temp })
  const q = dialect.quote
  return [
    step(create as string, `rebuild ${want.name}: create the new table`, reason),
    step(
      `INSERT INTO ${q(temp)} (${copied.map(([to]) => q(to)).join(", ")}) SELECT ${copied
        .map(([, from]) => q(from))
        .join(", ")} FROM ${q(want.name)}`,
      `rebuild ${want.name}: copy the rows`,
      reason
    ),
    step(Ddl.dropTable(dialect, want.name), `rebuild ${want.name}: drop the old table`, reason),
    step(
      `ALTER TABLE ${q(temp)} RENAME TO ${q(want.name)}`,
      `rebuild ${want.name}: rename the new table`,
      reason
    ),
    ...want.indexes.map((i) =>
      step(Ddl.createIndex(dialect, want.name, i), `create index ${i.name} on ${want.name}`)
    )
  ]
}

const diffTable = (
  dialect: Dialect,
  want: TableSpec,
  live: TableSpec
): Either.Either<ReadonlyArray<Step>, UnsupportedChangeError> => {
  const d = dialect.name
  const steps: Array<Step> = []
  const liveColumns = new Map(live.columns.map((c) => [c.name, c]))
  const renames: Array<readonly [from: string, to: ColumnSpec]> = []
  for (const c of want.columns) {
    if (!liveColumns.has(c.name) && c.renamedFrom !== undefined && liveColumns.has(c.renamedFrom)) {
      renames.push([c.renamedFrom, c])
    }
  }
  const renamedFrom = new Map(renames.map(([from, to]) => [to.name, from]))
  const renamedAway = new Set(renames.map(([from]) => from))
  const liveOf = (c: ColumnSpec) => liveColumns.get(renamedFrom.get(c.name) ?? c.name)
  const added = want.columns.filter((c) => liveOf(c) === undefined)
  const dropped = live.columns.filter(
    (c) => !renamedAway.has(c.name) && !want.columns.some((w) => w.name === c.name)
  )
  const changed = want.columns.flatMap((c) => {
    const before = liveOf(c)
    const change = before === undefined ? undefined : columnChange(d, before, c)
    return change === undefined ? [] : [change]
  })
  const wantIndexes = new Set(want.indexes.map(indexKey))
  // An index on a renamed column is renamed with it: compare with live names mapped forward.
  const forward = (name: string) => renames.find(([from]) => from === name)?.[1].name ?? name
  const liveIndexKey = (i: IndexSpec) => indexKey({ ...i, columns: i.columns.map(forward) })
  const indexesToDrop = live.indexes.filter((i) => !wantIndexes.has(liveIndexKey(i)))
  const indexesToAdd = want.indexes.filter((i) => !live.indexes.some((l) => liveIndexKey(l) === indexKey(i)))
  const liveFks = live.foreignKeys.map((fk) => ({ ...fk, columns: fk.columns.map(forward) }))
  const fksToDrop = liveFks.filter((fk) => !want.foreignKeys.some((w) => fkKey(w) === fkKey(fk)))
  const fksToAdd = want.foreignKeys.filter((fk) => !liveFks.some((l) => fkKey(l) === fkKey(fk)))
  const addReason = (c: ColumnSpec) =>
    !c.nullable && c.default === undefined && !c.autoIncrement && live.hasRows
      ? `${want.name}.${c.name}: NOT NULL without a default on a table with rows`
      : undefined
  const dropReason = (c: ColumnSpec) => `${want.name}.${c.name}: its data is lost`

  const keyChanged = !sameList(live.primaryKey.map(forward), want.primaryKey)
  if (d === "sqlite") {
    // SQLite alters in place only: rename, add a plain column, drop a plain column, indexes.
    const sqliteAddable = (c: ColumnSpec) => (c.nullable || c.default !== undefined) && c.check === undefined
    const indexed = new Set(live.indexes.flatMap((i) => i.columns))
    const droppable = (c: ColumnSpec) =>
      !indexed.has(c.name) &&
      !live.primaryKey.includes(c.name) &&
      !live.foreignKeys.some((fk) => fk.columns.includes(c.name))
    const needsRebuild =
      keyChanged ||
      changed.length > 0 ||
      fksToDrop.length > 0 ||
      fksToAdd.length > 0 ||
      added.some((c) => !sqliteAddable(c)) ||
      dropped.some((c) => !droppable(c))
    if (needsRebuild) {
      const reasons = [
        ...dropped.map(dropReason),
        ...added.flatMap((c) => addReason(c) ?? []),
        ...changed.flatMap((c) => changeReason(d, want, live, c) ?? [])
      ]
      return Either.right(rebuild(dialect, want, live, reasons.length === 0 ? undefined : reasons.join("; ")))
    }
  } else if (keyChanged) {
    return Either.left(
      new UnsupportedChangeError({
        reason: `${want.name}: the primary key changes (${live.primaryKey.join(", ")} → ${want.primaryKey.join(", ")})`
      })
    )
  }
  for (const [from, to] of renames) {
    steps.push(
      step(
        Ddl.renameColumn(dialect, want.name, from, to.name),
        `rename column ${want.name}.${from} to ${to.name}`
      )
    )
  }
  for (const fk of fksToDrop) {
    steps.push(
      step(Ddl.dropForeignKey(dialect, want.name, fk.name), `drop foreign key ${want.name}.${fk.name}`)
    )
  }
  for (const i of indexesToDrop) {
    steps.push(step(Ddl.dropIndex(dialect, want.name, i), `drop index ${i.name} on ${want.name}`))
  }
  for (const c of added) {
    steps.push(step(Ddl.addColumn(dialect, want, c), `add column ${want.name}.${c.name}`, addReason(c)))
  }
  for (const c of changed) {
    const reason = changeReason(d, want, live, c)
    for (const sql of Ddl.alterColumn(dialect, want, c.from, c.to)) {
      steps.push(step(sql, `alter column ${want.name}.${c.to.name}`, reason))
    }
  }
  for (const c of dropped) {
    steps.push(
      step(Ddl.dropColumn(dialect, want.name, c.name), `drop column ${want.name}.${c.name}`, dropReason(c))
    )
  }
  for (const i of indexesToAdd) {
    steps.push(step(Ddl.createIndex(dialect, want.name, i), `create index ${i.name} on ${want.name}`))
  }
  for (const fk of fksToAdd) {
    steps.push(step(Ddl.addForeignKey(dialect, want.name, fk), `add foreign key ${want.name}.${fk.name}`))
  }
  return Either.right(steps)
}

/**
 * The steps from `live` to `want`: new tables (foreign-key order), then each existing table's changes
 * (renames, dropped keys and indexes, added, altered and dropped columns, new indexes and keys), then
 * dropped tables when asked. A primary-key change outside SQLite fails with `UnsupportedChangeError`.
 *
 * @since 0.1.0 @category diff
 */
export const diff = (
  dialect: Dialect,
  want: ReadonlyArray<TableSpec>,
  live: ReadonlyArray<TableSpec>,
  options: Options = {}
): Either.Either<ReadonlyArray<Step>, UnsupportedChangeError> => {
  const ignored = new Set([migratorTable, ...(options.ignoreTables ?? [])])
  const liveByName = new Map(live.filter((t) => !ignored.has(t.name)).map((t) => [t.name, t]))
  const wanted = want.filter((t) => !ignored.has(t.name))
  const created = createTables(
    dialect,
    wanted.filter((t) => !liveByName.has(t.name)),
    { existing: new Set(liveByName.keys()) }
  )
  const altered: Array<Step> = []
  for (const t of wanted) {
    const before = liveByName.get(t.name)
    if (before === undefined) continue
    const steps = diffTable(dialect, t, before)
    if (Either.isLeft(steps)) return Either.left(steps.left)
    altered.push(...steps.right)
  }
  const wantedNames = new Set(wanted.map((t) => t.name))
  const dropped =
    options.dropUnknownTables === true
      ? [...dependencyOrder(Array.from(liveByName.values()).filter((t) => !wantedNames.has(t.name)))]
          .reverse()
          .map((t) =>
            step(
              Ddl.dropTable(dialect, t.name),
              `drop table ${t.name}`,
              `${t.name}: the table and its rows are lost`
            )
          )
      : []
  return Either.right([...created, ...altered, ...dropped])
}
