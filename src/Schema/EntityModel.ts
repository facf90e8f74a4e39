/**
 * Entity metadata derived once from an Effect Schema: table, field ↔ column maps, primary key,
 * generated and ignored fields, and the decoder rows go through.
 *
 * @since 0.1.0
 */
import { Either, type ParseResult, Schema, SchemaAST } from "effect"
import * as Entity from "./Entity.js"
import { InvalidEntityError, UnknownFieldError } from "./EntityError.js"

/**
 * Any schema that can describe an entity: a `Schema.Struct` or a `Schema.Class` (both expose `fields`).
 *
 * @since 0.1.0 @category models
 */
export type EntitySchema<A = unknown, I = unknown> = Schema.Schema<A, I, never> & {
  readonly fields: Schema.Struct.Fields
}

/** @since 0.1.0 @category models */
export interface FieldModel {
  readonly field: string
  readonly column: string
  readonly primaryKey: boolean
  readonly generated: boolean
  readonly sensitive: boolean
  readonly optional: boolean
  /** The field's schema as declared (for a property signature, its type; optional fields include undefined). */
  readonly ast: SchemaAST.AST
  /**
   * A plain `typeof`/`===` test of the field's type, when its schema is a keyword, a literal or a union
   * of those (such a schema encodes and decodes a value to itself); absent otherwise.
   */
  readonly guard: ((value: unknown) => boolean) | undefined
  /** Encodes a value of the field's type into what the column stores; absent when that is the identity. */
  readonly encode: ((value: unknown) => Either.Either<unknown, ParseResult.ParseError>) | undefined
  /** What the table is created with (`Entity.columnType`, `default`, `unique`, `indexed`, `references`, `renamedFrom`). */
  readonly ddl: FieldDdl
}

/** A field's annotations for table creation, checked when the model is made. @since 0.1.0 @category models */
export interface FieldDdl {
  readonly columnType: Entity.ColumnTypeSpec | undefined
  readonly default: Entity.DefaultSpec | undefined
  readonly unique: boolean
  readonly indexed: boolean
  readonly references: Entity.ReferenceSpec | undefined
  readonly renamedFrom: string | undefined
}

/** @since 0.1.0 @category models */
export interface EntityModel<A = unknown> {
  /** The schema identifier, used in error messages. */
  readonly name: string
  readonly schema: Schema.Schema.AnyNoContext
  readonly table: string
  /** Persisted fields in declaration order. */
  readonly fields: ReadonlyArray<FieldModel>
  readonly byField: ReadonlyMap<string, FieldModel>
  readonly byColumn: ReadonlyMap<string, FieldModel>
  readonly primaryKey: ReadonlyArray<FieldModel>
  readonly generated: ReadonlyArray<FieldModel>
  readonly ignored: ReadonlyArray<string>
  /** Indexes declared on the table (`Entity.table(name, { indexes })`), field names checked. */
  readonly indexes: ReadonlyArray<Entity.IndexSpec>
  /** Decodes an object keyed by field names into the entity type. */
  readonly decode: (input: unknown) => Either.Either<A, ParseResult.ParseError>
}

/** Per-database renames that an `EntityRegistry` applies over the annotations. @since 0.1.0 @category models */
export interface Overrides {
  readonly table?: string
  readonly columns?: Readonly<Record<string, string>>
}

/**
 * `UserProfile` → `user_profile`, `firstName` → `first_name`, `HTTPServer` → `http_server`.
 *
 * @since 0.1.0 @category naming
 */
export const snakeCase = (name: string): string =>
  name
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1_$2")
    .toLowerCase()

/**
 * The entity's own node and its annotations: a Class keeps them on the `to` side of its
 * transformation, a Struct with defaults (`optionalWith`) on the transformation itself.
 */
const entityAst = (
  ast: SchemaAST.AST
): { readonly node: SchemaAST.AST; readonly annotations: SchemaAST.Annotations } =>
  SchemaAST.isTransformation(ast)
    ? { node: ast.to, annotations: { ...ast.to.annotations, ...ast.annotations } }
    : { node: ast, annotations: ast.annotations }

const fieldAnnotations = (field: Schema.Struct.Field): SchemaAST.Annotations => {
  if (!Schema.isPropertySignature(field)) return field.ast.annotations
  const ps = field.ast
  return ps._tag === "PropertySignatureDeclaration"
    ? { ...ps.type.annotations, ...ps.annotations }
    : { ...ps.to.type.annotations, ...ps.to.annotations }
}

const fieldType = (field: Schema.Struct.Field): SchemaAST.AST => {
  if (!Schema.isPropertySignature(field)) return field.ast
  const ps = field.ast
  // A transformation (optionalWith and friends) keeps the encoded-side schema, the one that encodes, in `from`.
  return ps._tag === "PropertySignatureDeclaration" ? ps.type : ps.from.type
}

const encoderOf = (field: Schema.Struct.Field): FieldModel["encode"] => {
  const ast = fieldType(field)
  return SchemaAST.encodedAST(ast) === SchemaAST.typeAST(ast)
    ? undefined
    : Schema.encodeUnknownEither(Schema.make(ast))
}

/** The `guard` of a field schema (see `FieldModel.guard`). */
const guardOf = (ast: SchemaAST.AST): ((u: unknown) => boolean) | undefined => {
  switch (ast._tag) {
    case "StringKeyword":
      return (u) => typeof u === "string"
    case "NumberKeyword":
      return (u) => typeof u === "number"
    case "BooleanKeyword":
      return (u) => typeof u === "boolean"
    case "BigIntKeyword":
      return (u) => typeof u === "bigint"
    case "UndefinedKeyword":
      return (u) => u === undefined
    case "Literal":
      return (u) => u === ast.literal
    case "Union": {
      const members = ast.types.map(guardOf)
      const guards = members.filter((g): g is (u: unknown) => boolean => g !== undefined)
      return guards.length === members.length ? (u) => guards.some((g) => g(u)) : undefined
    }
    default:
      return undefined
  }
}

const isOptionalField = (field: Schema.Struct.Field): boolean => {
  if (!Schema.isPropertySignature(field)) return false
  const ps = field.ast
  return ps._tag === "PropertySignatureDeclaration" ? ps.isOptional : ps.to.isOptional
}

/** A type name with an optional size or precision: `VARCHAR(32)`, `NUMERIC(12, 4)`, `DOUBLE PRECISION`. */
const plainType = /^[A-Za-z][A-Za-z0-9_]*( [A-Za-z][A-Za-z0-9_]*)*( ?\( ?\d+ ?(, ?\d+ ?)?\))?$/

/** Text that could end a statement or hide the rest of one. */
const unsafeExpression = /;|--|\/\*|\*\/|\\/

/**
 * Whether an expression stays inside the parentheses it is written in: every quote closed, and its
 * parentheses (outside quotes) balanced, so `1), other INT` cannot add a column.
 */
const contained = (sql: string): boolean => {
  const unquoted = sql.replace(/'(?:[^']|'')*'|"(?:[^"]|"")*"|`(?:[^`]|``)*`/g, "")
  if (/['"`]/.test(unquoted)) return false
  let depth = 0
  for (const c of unquoted) {
    if (c === "(") depth++
    else if (c === ")" && --depth < 0) return false
  }
  return depth === 0
}

const isReference = (u: unknown): u is Entity.ReferenceSpec =>
  typeof u === "object" && u !== null && "entity" in u && typeof u.entity === "function"

const isDefault = (u: unknown): u is Entity.DefaultSpec =>
  typeof u === "object" && u !== null && "_tag" in u && (u._tag === "Literal" || u._tag === "Expression")

/** Reads and checks a field's DDL annotations; a string is the reason they are refused. */
const fieldDdl = (annotations: SchemaAST.Annotations): FieldDdl | string => {
  const type = annotations[Entity.ColumnTypeId] as Entity.ColumnTypeSpec | undefined
  for (const t of [type?.mysql, type?.pg, type?.sqlite]) {
    if (t !== undefined && !plainType.test(t)) {
      return `column type "${t}" is not a plain SQL type name with an optional size`
    }
  }
  const def = annotations[Entity.DefaultId]
  if (def !== undefined && !isDefault(def)) return "malformed default annotation"
  if (def?._tag === "Literal" && typeof def.value === "number" && !Number.isFinite(def.value)) {
    return `default ${def.value} has no SQL literal`
  }
  if (
    def?._tag === "Expression" &&
    (unsafeExpression.test(def.sql) || !contained(def.sql) || def.sql.trim() === "")
  ) {
    return `default expression "${def.sql}" is empty, unbalanced, or holds a statement separator, a comment or a backslash`
  }
  const references = annotations[Entity.ReferencesId]
  if (references !== undefined && !isReference(references)) return "malformed references annotation"
  const renamedFrom = annotations[Entity.RenamedFromId]
  return {
    columnType: type,
    default: def,
    unique: annotations[Entity.UniqueId] === true,
    indexed: annotations[Entity.IndexId] === true,
    references,
    renamedFrom: typeof renamedFrom === "string" ? renamedFrom : undefined
  }
}

const hasFields = <A, I>(schema: Schema.Schema<A, I, never>): schema is EntitySchema<A, I> =>
  "fields" in schema && typeof schema.fields === "object" && schema.fields !== null

/**
 * Derives the model of an entity schema, failing with `InvalidEntityError` when it cannot be one.
 *
 * @since 0.1.0 @category constructors
 */
export const make = <A, I>(
  schema: Schema.Schema<A, I, never>,
  overrides: Overrides = {}
): Either.Either<EntityModel<A>, InvalidEntityError> => {
  const { node: ast, annotations } = entityAst(schema.ast)
  const identifier = annotations[SchemaAST.IdentifierAnnotationId]
  const name = typeof identifier === "string" ? identifier : "<anonymous>"
  if (!hasFields(schema) || !(SchemaAST.isTypeLiteral(ast) || SchemaAST.isDeclaration(ast))) {
    return Either.left(
      new InvalidEntityError({ entity: name, reason: "an entity must be a Schema.Struct or a Schema.Class" })
    )
  }
  const annotatedTable = annotations[Entity.TableId]
  const table =
    overrides.table ??
    (typeof annotatedTable === "string"
      ? annotatedTable
      : name === "<anonymous>"
        ? undefined
        : snakeCase(name))
  if (table === undefined) {
    return Either.left(
      new InvalidEntityError({
        entity: name,
        reason: "no table name: annotate it or give the schema an identifier"
      })
    )
  }
  const fields: Array<FieldModel> = []
  const ignored: Array<string> = []
  const byColumn = new Map<string, FieldModel>()
  for (const [field, def] of Object.entries(schema.fields)) {
    const annotations = fieldAnnotations(def)
    const optional = isOptionalField(def)
    if (annotations[Entity.IgnoreId] === true) {
      if (!optional) {
        return Either.left(
          new InvalidEntityError({
            entity: name,
            field,
            reason: "an ignored field must be optional: rows never carry it"
          })
        )
      }
      ignored.push(field)
      continue
    }
    const ast = Schema.isPropertySignature(def)
      ? def.ast._tag === "PropertySignatureDeclaration"
        ? def.ast.type
        : def.ast.to.type
      : def.ast
    const ddl = fieldDdl(annotations)
    if (typeof ddl === "string")
      return Either.left(new InvalidEntityError({ entity: name, field, reason: ddl }))
    const literal = ddl.default?._tag === "Literal" ? ddl.default.value : null
    // A literal default is stored as is: it must be a value the column holds (the field's encoded form).
    if (literal !== null && !Schema.is(Schema.make(SchemaAST.encodedAST(fieldType(def))))(literal)) {
      return Either.left(
        new InvalidEntityError({
          entity: name,
          field,
          reason: `default ${String(literal)} is not a value of the field`
        })
      )
    }
    const annotatedColumn = annotations[Entity.ColumnId]
    const column =
      overrides.columns?.[field] ?? (typeof annotatedColumn === "string" ? annotatedColumn : snakeCase(field))
    const model: FieldModel = {
      field,
      column,
      primaryKey: annotations[Entity.PrimaryKeyId] === true,
      generated: annotations[Entity.GeneratedId] === true,
      sensitive: annotations[Entity.SensitiveId] === true,
      optional,
      ast,
      guard: guardOf(ast),
      encode: encoderOf(def),
      ddl
    }
    const clash = byColumn.get(column)
    if (clash !== undefined) {
      return Either.left(
        new InvalidEntityError({
          entity: name,
          field,
          reason: `column "${column}" is already used by field "${clash.field}"`
        })
      )
    }
    byColumn.set(column, model)
    fields.push(model)
  }
  const marked = fields.filter((f) => f.primaryKey)
  const primaryKey =
    marked.length > 0
      ? marked
      : fields.filter((f) => f.field === "id").map((f) => ({ ...f, primaryKey: true }))
  if (primaryKey.length === 0) {
    return Either.left(
      new InvalidEntityError({
        entity: name,
        reason: "no primary key: annotate one with Entity.primaryKey or name a field id"
      })
    )
  }
  const finalFields = fields.map((f) => primaryKey.find((p) => p.field === f.field) ?? f)
  const indexes = (annotations[Entity.IndexesId] ?? []) as ReadonlyArray<Entity.IndexSpec>
  for (const index of indexes) {
    const unknown = index.fields.find((f) => !finalFields.some((p) => p.field === f))
    if (index.fields.length === 0 || unknown !== undefined) {
      return Either.left(
        new InvalidEntityError({
          entity: name,
          reason:
            unknown === undefined
              ? "an index needs at least one field"
              : `index on unknown or unpersisted field "${unknown}"`
        })
      )
    }
  }
  return Either.right({
    name,
    schema,
    table,
    fields: finalFields,
    byField: new Map(finalFields.map((f) => [f.field, f])),
    byColumn: new Map(finalFields.map((f) => [f.column, f])),
    primaryKey,
    generated: finalFields.filter((f) => f.generated),
    ignored,
    indexes,
    decode: Schema.decodeUnknownEither(schema)
  })
}

/**
 * Looks a field up by a name that arrived at run time.
 *
 * @since 0.1.0 @category lookups
 */
export const field = (
  model: EntityModel<unknown>,
  name: string
): Either.Either<FieldModel, UnknownFieldError> => {
  const found = model.byField.get(name)
  return found === undefined
    ? Either.left(new UnknownFieldError({ entity: model.name, field: name }))
    : Either.right(found)
}
