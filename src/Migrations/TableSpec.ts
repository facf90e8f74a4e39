/**
 * Tables as the schema diff sees them, the same shape for what the entities want and for what a live
 * database has: columns with a canonical type text per dialect, the primary key, indexes (unique
 * columns are unique indexes) and foreign keys. `fromEntities` derives them from entity models.
 *
 * @since 0.1.0
 */
import { Either, Schema, SchemaAST } from "effect"
import type { DialectName } from "../Query/Dialect.js"
import type * as Entity from "../Schema/Entity.js"
import { InvalidEntityError } from "../Schema/EntityError.js"
import type * as EntityModel from "../Schema/EntityModel.js"

/** @since 0.1.0 @category models */
export interface ColumnSpec {
  readonly name: string
  /** The type as written in DDL (`VARCHAR(100)`, `INTEGER`...); compared through `canonicalType`. */
  readonly type: string
  readonly nullable: boolean
  /** The default as SQL text (an escaped literal or an expression), absent for none. */
  readonly default: string | undefined
  readonly autoIncrement: boolean
  /** The values a CHECK constraint allows (string literal unions on PostgreSQL and SQLite). */
  readonly check: ReadonlyArray<string> | undefined
  /** The live column this one used to be (`Entity.renamedFrom`). */
  readonly renamedFrom: string | undefined
}

/** @since 0.1.0 @category models */
export interface IndexSpec {
  readonly name: string
  readonly columns: ReadonlyArray<string>
  readonly unique: boolean
}

/** @since 0.1.0 @category models */
export interface ForeignKeySpec {
  readonly name: string
  readonly columns: ReadonlyArray<string>
  readonly table: string
  readonly references: ReadonlyArray<string>
  readonly onDelete: Entity.ReferentialAction
  readonly onUpdate: Entity.ReferentialAction
}

/** @since 0.1.0 @category models */
export interface TableSpec {
  readonly name: string
  readonly columns: ReadonlyArray<ColumnSpec>
  readonly primaryKey: ReadonlyArray<string>
  readonly indexes: ReadonlyArray<IndexSpec>
  readonly foreignKeys: ReadonlyArray<ForeignKeySpec>
  /** Whether the table holds rows (live tables only; decides if NOT NULL without a default is safe). */
  readonly hasRows: boolean
}

/** What a field's schema stores, before a dialect names the type. */
type Logical =
  | { readonly _tag: "String"; readonly maxLength: number | undefined }
  | { readonly _tag: "Int" }
  | { readonly _tag: "BigInt" }
  | { readonly _tag: "Double" }
  | { readonly _tag: "Boolean" }
  | { readonly _tag: "Decimal" }
  | { readonly _tag: "Timestamp" }
  | { readonly _tag: "Json" }
  | { readonly _tag: "Enum"; readonly values: ReadonlyArray<string> }

interface Derived {
  readonly logical: Logical | undefined
  readonly nullable: boolean
}

const typeConstructor = (ast: SchemaAST.AST): string | undefined => {
  const tc = ast.annotations[SchemaAST.TypeConstructorAnnotationId] as { _tag?: unknown } | undefined
  return typeof tc?._tag === "string" ? tc._tag : undefined
}

const fromDeclaration = (ast: SchemaAST.Declaration): Derived => {
  switch (typeConstructor(ast)) {
    case "Date":
    case "effect/DateTime.Utc":
      return { logical: { _tag: "Timestamp" }, nullable: false }
    case "effect/BigDecimal":
      return { logical: { _tag: "Decimal" }, nullable: false }
    case "effect/Option": {
      const inner = ast.typeParameters[0]
      return { logical: inner === undefined ? undefined : derive(inner).logical, nullable: true }
    }
    default:
      return { logical: undefined, nullable: false }
  }
}

const isNullish = (ast: SchemaAST.AST) =>
  ast._tag === "UndefinedKeyword" || (ast._tag === "Literal" && ast.literal === null)

/** The column an AST stores: its logical type (undefined when none fits) and whether NULL is allowed. */
const derive = (ast: SchemaAST.AST): Derived => {
  switch (ast._tag) {
    case "StringKeyword":
    case "TemplateLiteral":
      return { logical: { _tag: "String", maxLength: undefined }, nullable: false }
    case "NumberKeyword":
      return { logical: { _tag: "Double" }, nullable: false }
    case "BooleanKeyword":
      return { logical: { _tag: "Boolean" }, nullable: false }
    case "BigIntKeyword":
      return { logical: { _tag: "BigInt" }, nullable: false }
    case "Literal":
      return typeof ast.literal === "string"
        ? { logical: { _tag: "Enum", values: [ast.literal] }, nullable: false }
        : typeof ast.literal === "number"
          ? { logical: { _tag: Number.isInteger(ast.literal) ? "Int" : "Double" }, nullable: false }
          : typeof ast.literal === "boolean"
            ? { logical: { _tag: "Boolean" }, nullable: false }
            : ast.literal === null
              ? { logical: undefined, nullable: true }
              : { logical: { _tag: "BigInt" }, nullable: false }
    case "Enums":
      return ast.enums.every(([, v]) => typeof v === "string")
        ? { logical: { _tag: "Enum", values: ast.enums.map(([, v]) => String(v)) }, nullable: false }
        : { logical: { _tag: "Int" }, nullable: false }
    case "TypeLiteral":
    case "TupleType":
      return { logical: { _tag: "Json" }, nullable: false }
    case "Union": {
      const nullable = ast.types.some(isNullish)
      const members = ast.types.filter((t) => !isNullish(t)).map(derive)
      const logicals = members.map((m) => m.logical)
      const first = logicals[0]
      if (first === undefined || logicals.some((l) => l === undefined)) {
        return { logical: undefined, nullable }
      }
      const all = logicals as ReadonlyArray<Logical>
      if (all.every((l) => l._tag === "Enum")) {
        const values = all.flatMap((l) => (l._tag === "Enum" ? l.values : []))
        return { logical: { _tag: "Enum", values }, nullable: nullable || members.some((m) => m.nullable) }
      }
      const same = all.every((l) => l._tag === first._tag)
      return {
        logical: same ? first : all.some((l) => l._tag === "Json") ? { _tag: "Json" } : undefined,
        nullable: nullable || members.some((m) => m.nullable)
      }
    }
    case "Refinement": {
      const inner = derive(ast.from)
      const id = ast.annotations[SchemaAST.SchemaIdAnnotationId]
      if (id === Schema.IntSchemaId && inner.logical?._tag === "Double") {
        return { ...inner, logical: { _tag: "Int" } }
      }
      const json = ast.annotations[SchemaAST.JSONSchemaAnnotationId] as { maxLength?: unknown } | undefined
      if (inner.logical?._tag === "String" && typeof json?.maxLength === "number") {
        const maxLength = inner.logical.maxLength
        return {
          ...inner,
          logical: {
            _tag: "String",
            maxLength: maxLength === undefined ? json.maxLength : Math.min(maxLength, json.maxLength)
          }
        }
      }
      return inner
    }
    case "Transformation": {
      if (SchemaAST.isDeclaration(ast.to) && typeConstructor(ast.to) !== undefined) {
        const declared = fromDeclaration(ast.to)
        // Option's encoded side says whether it is stored as NULL (OptionFromNullOr) or a tagged struct.
        return typeConstructor(ast.to) === "effect/Option"
          ? { logical: declared.logical ?? derive(ast.from).logical, nullable: derive(ast.from).nullable }
          : declared
      }
      // Anything else stores what its encoded side is, except for bigints kept as such; an encoded side
      // with no type (`BooleanFromUnknown`) stores what it decodes to.
      const to = derive(ast.to)
      const from = derive(ast.from)
      if (to.logical?._tag === "BigInt") return { logical: to.logical, nullable: from.nullable }
      return from.logical === undefined
        ? { logical: to.logical, nullable: from.nullable || to.nullable }
        : from
    }
    case "Declaration":
      return fromDeclaration(ast)
    case "Suspend":
      return derive(ast.f())
    default:
      return { logical: undefined, nullable: false }
  }
}

/** Strings that are keys or indexed must have a bounded type on MySQL/MariaDB (TEXT cannot be a key). */
const keyStringLength = 255

const render = (logical: Logical, dialect: DialectName, keyed: boolean, quote: (s: string) => string) => {
  switch (logical._tag) {
    case "String": {
      const length = logical.maxLength ?? (keyed && dialect === "mysql" ? keyStringLength : undefined)
      return dialect === "sqlite" || length === undefined ? "TEXT" : `VARCHAR(${length})`
    }
    case "Int":
      return dialect === "mysql" ? "INT" : "INTEGER"
    case "BigInt":
      return dialect === "sqlite" ? "INTEGER" : "BIGINT"
    case "Double":
      return dialect === "mysql" ? "DOUBLE" : dialect === "pg" ? "DOUBLE PRECISION" : "REAL"
    case "Boolean":
      return dialect === "sqlite" ? "INTEGER" : "BOOLEAN"
    case "Decimal":
      // SQLite's NUMERIC affinity would round to a double: text keeps every digit.
      return dialect === "mysql" ? "DECIMAL(65,30)" : dialect === "pg" ? "NUMERIC" : "TEXT"
    case "Timestamp":
      return dialect === "mysql" ? "DATETIME(3)" : dialect === "pg" ? "TIMESTAMPTZ(3)" : "TEXT"
    case "Json":
      return dialect === "mysql" ? "JSON" : dialect === "pg" ? "JSONB" : "TEXT"
    case "Enum":
      return dialect === "mysql" ? `ENUM(${logical.values.map(quote).join(", ")})` : "TEXT"
  }
}

/**
 * An SQL string literal for `dialect`. Quotes are doubled; MySQL/MariaDB also read backslashes as
 * escapes (unless NO_BACKSLASH_ESCAPES), so they are doubled there, and PostgreSQL takes such a
 * string as an `E'...'` literal, whose escapes do not depend on `standard_conforming_strings`.
 *
 * @since 0.1.0 @category rendering
 */
export const stringLiteral = (dialect: DialectName, value: string): string => {
  const quoted = value.replace(/'/g, "''")
  switch (dialect) {
    case "mysql":
      return `'${quoted.replace(/\\/g, "\\\\").replace(/\0/g, "\\0")}'`
    case "pg":
      if (value.includes("\0")) throw new RangeError("PostgreSQL text cannot hold a NUL character")
      return value.includes("\\") ? `E'${quoted.replace(/\\/g, "\\\\")}'` : `'${quoted}'`
    case "sqlite":
      return `'${quoted}'`
  }
}

const renderDefault = (
  spec: Entity.DefaultSpec,
  dialect: DialectName,
  logical: Logical | undefined
): string | undefined => {
  if (spec._tag === "Expression") {
    const expr = spec.sql.trim()
    if (/^current_timestamp$/i.test(expr) && logical?._tag === "Timestamp") {
      // Millisecond precision as the column has; on SQLite the ISO text `Schema.Date` reads and writes.
      if (dialect === "mysql") return "CURRENT_TIMESTAMP(3)"
      if (dialect === "sqlite") return "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"
    }
    if (/^current_timestamp$/i.test(expr)) return "CURRENT_TIMESTAMP"
    return `(${expr})`
  }
  const value = spec.value
  if (value === null) return undefined
  if (typeof value === "boolean") return dialect === "pg" ? (value ? "TRUE" : "FALSE") : value ? "1" : "0"
  if (typeof value === "number" || typeof value === "bigint") return String(value)
  return stringLiteral(dialect, value)
}

/** `ix_users_last_name_first_name`; names past 60 characters end in a hash of the full name. */
const constraintName = (prefix: string, table: string, columns: ReadonlyArray<string>): string => {
  const full = `${prefix}_${table}_${columns.join("_")}`.replace(/[^A-Za-z0-9_]/g, "_")
  if (full.length <= 60) return full
  let hash = 0
  for (let i = 0; i < full.length; i++) hash = (Math.imul(hash, 31) + full.charCodeAt(i)) | 0
  return `${full.slice(0, 51)}_${(hash >>> 0).toString(16).padStart(8, "0")}`
}

/** @since 0.1.0 @category naming */
export const indexName = (table: string, columns: ReadonlyArray<string>, unique: boolean): string =>
  constraintName(unique ? "uq" : "ix", table, columns)

/** @since 0.1.0 @category naming */
export const foreignKeyName = (table: string, columns: ReadonlyArray<string>): string =>
  constraintName("fk", table, columns)

/** @since 0.1.0 @category naming */
export const checkName = (table: string, column: string): string => constraintName("ck", table, [column])

const resolveReference = (
  model: EntityModel.EntityModel,
  f: EntityModel.FieldModel,
  ref: Entity.ReferenceSpec,
  modelOf: (schema: { readonly ast: unknown }) => Either.Either<EntityModel.EntityModel, InvalidEntityError>
): Either.Either<
  { readonly model: EntityModel.EntityModel; readonly field: EntityModel.FieldModel },
  InvalidEntityError
> => {
  const entity = ref.entity()
  // A self-reference resolves to the model being read (its registry entry may not exist yet).
  const targetModel = entity === undefined || entity === model.schema ? Either.right(model) : modelOf(entity)
  return Either.flatMap(targetModel, (target) => {
    const field = target.byField.get(ref.field)
    return field === undefined
      ? Either.left(
          new InvalidEntityError({
            entity: model.name,
            field: f.field,
            reason: `references unknown field ${target.name}.${ref.field}`
          })
        )
      : Either.right({ model: target, field })
  })
}

/**
 * The table `model` needs on `dialect`. `modelOf` resolves referenced entities (through the same
 * registry, so per-database names apply).
 *
 * @since 0.1.0 @category constructors
 */
export const fromModel = (
  model: EntityModel.EntityModel,
  dialect: DialectName,
  modelOf: (schema: { readonly ast: unknown }) => Either.Either<EntityModel.EntityModel, InvalidEntityError>
): Either.Either<TableSpec, InvalidEntityError> => {
  const keyedFields = new Set<string>([
    ...model.primaryKey.map((f) => f.field),
    ...model.fields.filter((f) => f.ddl.unique || f.ddl.indexed || f.ddl.references).map((f) => f.field),
    ...model.indexes.flatMap((i) => i.fields)
  ])
  const columns: Array<ColumnSpec> = []
  const foreignKeys: Array<ForeignKeySpec> = []
  const indexes: Array<IndexSpec> = []
  const literal = (s: string) => stringLiteral(dialect, s)
  for (const f of model.fields) {
    const derived = derive(f.ast)
    const ref = f.ddl.references
    let target:
      | { readonly model: EntityModel.EntityModel; readonly field: EntityModel.FieldModel }
      | undefined
    if (ref !== undefined) {
      const resolved = resolveReference(model, f, ref, modelOf)
      if (Either.isLeft(resolved)) return Either.left(resolved.left)
      target = resolved.right
    }
    // A foreign key column has the type of the column it references, unless annotated.
    const typed = target?.field ?? f
    const annotated =
      f.ddl.columnType?.[dialect] ?? (target === undefined ? undefined : typed.ddl.columnType?.[dialect])
    let logical = target === undefined ? derived.logical : derive(typed.ast).logical
    if (typed.generated && (logical?._tag === "Double" || logical === undefined)) logical = { _tag: "Int" }
    if (annotated === undefined && logical === undefined) {
      return Either.left(
        new InvalidEntityError({
          entity: model.name,
          field: f.field,
          reason: "no column type can be derived from its schema: annotate one with Entity.columnType"
        })
      )
    }
    const primary = model.primaryKey.some((p) => p.field === f.field)
    const type =
      annotated ?? render(logical as Logical, dialect, keyedFields.has(f.field) || primary, literal)
    columns.push({
      name: f.column,
      type,
      nullable: !primary && (derived.nullable || f.optional),
      default: f.ddl.default === undefined ? undefined : renderDefault(f.ddl.default, dialect, logical),
      autoIncrement: f.generated && primary,
      check:
        annotated === undefined && logical?._tag === "Enum" && dialect !== "mysql"
          ? logical.values
          : undefined,
      renamedFrom: f.ddl.renamedFrom
    })
    if (f.ddl.unique)
      indexes.push({ name: indexName(model.table, [f.column], true), columns: [f.column], unique: true })
    if (f.ddl.indexed && !f.ddl.unique) {
      indexes.push({ name: indexName(model.table, [f.column], false), columns: [f.column], unique: false })
    }
    if (ref !== undefined && target !== undefined) {
      foreignKeys.push({
        name: foreignKeyName(model.table, [f.column]),
        columns: [f.column],
        table: target.model.table,
        references: [target.field.column],
        onDelete: ref.onDelete ?? "no action",
        onUpdate: ref.onUpdate ?? "no action"
      })
    }
  }
  for (const index of model.indexes) {
    const cols = index.fields.map((name) => (model.byField.get(name) as EntityModel.FieldModel).column)
    indexes.push({
      name: index.name ?? indexName(model.table, cols, index.unique),
      columns: cols,
      unique: index.unique
    })
  }
  return Either.right({
    name: model.table,
    columns,
    primaryKey: model.primaryKey.map((f) => f.column),
    indexes,
    foreignKeys,
    hasRows: false
  })
}
