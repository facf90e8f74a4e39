/**
 * Renders one .proto file as a TypeScript module of Effect Schema entities: enums as literal unions,
 * messages as `Schema.Class`es annotated with this library's `Entity` annotations.
 *
 * @since 0.1.0
 */
import * as path from "node:path"
import {
  type DescEnum,
  type DescField,
  type DescFile,
  type DescMessage,
  ScalarType
} from "@bufbuild/protobuf"
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt"
import { getComments, safeIdentifier } from "@bufbuild/protoplugin"
import { Either } from "effect"
import * as CodegenError from "./CodegenError.js"
import * as Layout from "./Layout.js"
import * as OrmComment from "./OrmComment.js"
import type { PluginOptions } from "./PluginOptions.js"

/** The line width generated code is laid out for (this repository's Biome setting). @since 0.1.0 @category constants */
export const lineWidth = 110

/** The suffix of generated files: `shop/user.proto` becomes `shop/user_dal.ts`. @since 0.1.0 @category constants */
export const fileSuffix = "_dal"

/** A generated module; `content` is empty when the .proto declares no message or enum. @since 0.1.0 @category models */
export interface Output {
  readonly name: string
  readonly content: string
}

type Helper =
  | "Int64"
  | "Int64String"
  | "Bool"
  | "Bytes"
  | "Timestamp"
  | "Json"
  | "Optional"
  | "Record"
  | "List"
  | "Map"

/** A helper that is a union of schemas, laid out for whatever name `Schema` is imported under. */
const unionHelper =
  (comment: string, name: string, members: ReadonlyArray<string>) =>
  (schema: string): Layout.Doc => [
    comment,
    Layout.hardline,
    Layout.assignment(
      `const ${name}`,
      " =",
      Layout.call(
        `${schema}.Union`,
        members.map((member) => `${schema}.${member}`)
      )
    )
  ]

/**
 * Helpers written out; their lines stay within the width under either import name, which the
 * naming fixture checks (it uses every helper with `Schema` imported as `Schema$`).
 */
const fixedHelper =
  (text: string) =>
  (schema: string): Layout.Doc =>
    Layout.lines(schema === "Schema" ? text : text.replace(/\bSchema\./g, () => `${schema}.`))

/** Declared once per file that uses them; `$` cannot occur in a protobuf name, so they never collide. */
const helperSource: Record<Helper, (schema: string) => Layout.Doc> = {
  Int64: unionHelper(
    "/** int64 as bigint: read from a bigint, a safe integer or a decimal string; written as a decimal string. */",
    "$Int64",
    ["BigInt", "BigIntFromNumber", "BigIntFromSelf"]
  ),
  Timestamp: unionHelper(
    "/** google.protobuf.Timestamp: read from an ISO string, a Date or epoch milliseconds; written as ISO. */",
    "$Timestamp",
    ["DateTimeUtc", "DateTimeUtcFromDate", "DateTimeUtcFromNumber"]
  ),
  Int64String:
    fixedHelper(`/** int64 as decimal digits: read from a string, a safe integer or a bigint; written as the string. */
const $Int64String = Schema.Union(
  Schema.String,
  Schema.transform(Schema.Union(Schema.BigIntFromNumber, Schema.BigIntFromSelf), Schema.String, {
    strict: true,
    decode: (n) => \`\${n}\`,
    encode: (s) => BigInt(s)
  })
).pipe(Schema.pattern(/^-?\\d+$/))`),
  Bool: fixedHelper(`/** bool: read from 0/1 (SQLite, MySQL) or a boolean (PostgreSQL); written as 0/1, which all accept. */
const $Bool = Schema.Union(
  Schema.transform(Schema.Literal(0, 1), Schema.Boolean, {
    strict: true,
    decode: (n) => n === 1,
    encode: (b) => (b ? 1 : 0)
  }),
  Schema.Boolean
)`),
  Bytes:
    fixedHelper(`/** bytes: read from binary or base64 text; written as a Buffer (drivers bind it) that JSON turns into base64. */
const $Bytes = Schema.Union(
  Schema.transform(Schema.Uint8ArrayFromSelf, Schema.Uint8ArrayFromSelf, {
    strict: true,
    decode: (bytes) => bytes,
    encode: (bytes) =>
      Object.assign(Buffer.from(bytes), { toJSON: () => Buffer.from(bytes).toString("base64") })
  }),
  Schema.Uint8ArrayFromBase64
)`),
  Json: fixedHelper(`/** A message, list or map in one column: JSON text, or a JSON value the driver already parsed. */
const $Json = <A, I>(schema: Schema.Schema<A, I>) => Schema.Union(Schema.parseJson(schema), schema)`),
  Optional: fixedHelper(`/** A field with presence: absent in memory, NULL in the database. */
const $Optional = <A, I>(schema: Schema.Schema<A, I>) => Schema.optionalWith(schema, { nullable: true })`),
  Record: fixedHelper(`/** A map's value: a JSON object has string keys, whatever the proto key type. */
const $Record = <A, I>(value: Schema.Schema<A, I>) => Schema.Record({ key: Schema.String, value })`),
  List: fixedHelper(`/** A repeated field stored as JSON; NULL or absent reads as the empty list. */
const $List = <A, I>(item: Schema.Schema<A, I>) =>
  Schema.optionalWith($Json(Schema.Array(item)), { nullable: true, default: () => [] })`),
  Map: fixedHelper(`/** A map field stored as a JSON object; NULL or absent reads as the empty map. */
const $Map = <A, I>(value: Schema.Schema<A, I>) =>
  Schema.optionalWith($Json($Record(value)), { nullable: true, default: () => ({}) })`)
}

/** Emission order; `$List` and `$Map` call `$Json`, `$Map` calls `$Record`. */
const helperOrder: ReadonlyArray<Helper> = [
  "Int64",
  "Int64String",
  "Bool",
  "Bytes",
  "Timestamp",
  "Json",
  "Optional",
  "Record",
  "List",
  "Map"
]

const wrapperTypes: Record<string, ScalarType> = {
  "google.protobuf.DoubleValue": ScalarType.DOUBLE,
  "google.protobuf.FloatValue": ScalarType.FLOAT,
  "google.protobuf.Int64Value": ScalarType.INT64,
  "google.protobuf.UInt64Value": ScalarType.UINT64,
  "google.protobuf.Int32Value": ScalarType.INT32,
  "google.protobuf.UInt32Value": ScalarType.UINT32,
  "google.protobuf.BoolValue": ScalarType.BOOL,
  "google.protobuf.StringValue": ScalarType.STRING,
  "google.protobuf.BytesValue": ScalarType.BYTES
}

/** Well-known types mapped to a schema instead of a generated class. */
const isMappedWellKnown = (message: DescMessage): boolean =>
  message.typeName === "google.protobuf.Timestamp" ||
  message.typeName === "google.protobuf.Duration" ||
  message.typeName in wrapperTypes

const isMapEntry = (message: DescMessage): boolean => message.proto.options?.mapEntry === true

const integerScalars: ReadonlyArray<ScalarType> = [
  ScalarType.INT32,
  ScalarType.SINT32,
  ScalarType.SFIXED32,
  ScalarType.UINT32,
  ScalarType.FIXED32,
  ScalarType.INT64,
  ScalarType.SINT64,
  ScalarType.SFIXED64,
  ScalarType.UINT64,
  ScalarType.FIXED64
]

/** `UserProfile` → `user_profile`, `Order_Item` → `order_item`, `HTTPRequest` → `http_request`. @since 0.1.0 @category naming */
export const snakeCase = (name: string): string =>
  name
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1_$2")
    .toLowerCase()

/** The exported name of a message or enum: nested names joined by `_`, as protoc-gen-es does. @since 0.1.0 @category naming */
export const exportName = (desc: DescMessage | DescEnum): string => {
  const prefix = desc.file.proto.package === "" ? "" : `${desc.file.proto.package}.`
  return safeIdentifier(desc.typeName.slice(prefix.length).replace(/\./g, "_"))
}

/** The generated file for a .proto file, relative to the output directory. @since 0.1.0 @category naming */
export const outputName = (file: DescFile): string => `${file.name}${fileSuffix}.ts`

const relativeImport = (fromFile: string, target: string): string => {
  const relative = path.posix.relative(path.posix.dirname(fromFile), target)
  return relative.startsWith(".") ? relative : `./${relative}`
}

/** The `import_path` option as seen from `fromFile`: packages as given, paths re-rooted. */
const entityImport = (fromFile: string, importPath: string): string => {
  if (!importPath.startsWith("./") && !importPath.startsWith("../")) return importPath
  const depth = path.posix.dirname(fromFile) === "." ? 0 : path.posix.dirname(fromFile).split("/").length
  const rerooted = path.posix.normalize(`${"../".repeat(depth)}${importPath}`)
  return rerooted.startsWith(".") ? rerooted : `./${rerooted}`
}

interface Context {
  readonly file: DescFile
  readonly output: string
  readonly options: PluginOptions
  readonly helpers: Set<Helper>
  /** Import specifier → exported name → local name. */
  readonly imports: Map<string, Map<string, string>>
  readonly taken: Set<string>
  readonly schema: string
  readonly entity: string
}

const use = (ctx: Context, helper: Helper): string => {
  ctx.helpers.add(helper)
  if (helper === "List" || helper === "Map") ctx.helpers.add("Json")
  if (helper === "Map") ctx.helpers.add("Record")
  return `$${helper}`
}

/** A local name for a message or enum, importing it from its own generated file when it lives elsewhere. */
const reference = (ctx: Context, desc: DescMessage | DescEnum): string => {
  const name = exportName(desc)
  if (desc.file === ctx.file) return name
  const specifier = relativeImport(ctx.output, `${desc.file.name}${fileSuffix}.js`)
  const names = ctx.imports.get(specifier) ?? new Map<string, string>()
  ctx.imports.set(specifier, names)
  const existing = names.get(name)
  if (existing !== undefined) return existing
  let local = name
  for (let n = 1; ctx.taken.has(local); n++) local = `${name}$${n}`
  ctx.taken.add(local)
  names.set(name, local)
  return local
}

const quote = (text: string): string => JSON.stringify(text)

const scalarSchema = (ctx: Context, scalar: ScalarType, longAsString: boolean): string => {
  const S = ctx.schema
  switch (scalar) {
    case ScalarType.STRING:
      return `${S}.String`
    case ScalarType.BYTES:
      return use(ctx, "Bytes")
    case ScalarType.BOOL:
      return use(ctx, "Bool")
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return `${S}.Number`
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return `${S}.Int`
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return `${S}.NonNegativeInt`
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return use(ctx, longAsString || ctx.options.int64 === "string" ? "Int64String" : "Int64")
  }
}

/** A message used as a value: a well-known type's schema, or the message's own class. */
const messageSchema = (
  ctx: Context,
  message: DescMessage
): Either.Either<{ readonly doc: Layout.Doc; readonly wellKnown: boolean }, string> => {
  const wrapped = wrapperTypes[message.typeName]
  if (wrapped !== undefined) return Either.right({ doc: scalarSchema(ctx, wrapped, false), wellKnown: true })
  if (message.typeName === "google.protobuf.Timestamp") {
    return Either.right({ doc: use(ctx, "Timestamp"), wellKnown: true })
  }
  if (message.typeName === "google.protobuf.Duration") {
    return Either.right({ doc: `${ctx.schema}.DurationFromMillis`, wellKnown: true })
  }
  if (message.typeName.startsWith("google.protobuf.")) {
    return Either.left(
      `${message.typeName} has no mapping; supported well-known types are Timestamp, Duration and the wrappers`
    )
  }
  return Either.right({ doc: reference(ctx, message), wellKnown: false })
}

/** The schema of a list item or map value. */
const elementSchema = (
  ctx: Context,
  element: {
    readonly scalar: ScalarType | undefined
    readonly enum: DescEnum | undefined
    readonly message: DescMessage | undefined
  },
  longAsString: boolean
): Either.Either<Layout.Doc, string> => {
  if (element.message !== undefined) return Either.map(messageSchema(ctx, element.message), (m) => m.doc)
  if (element.enum !== undefined) return Either.right(reference(ctx, element.enum))
  if (element.scalar !== undefined) return Either.right(scalarSchema(ctx, element.scalar, longAsString))
  return Either.left("field has no element type")
}

/**
 * The property schema of a field, before annotations. A field the database does not store (`ignore`)
 * is optional and kept as it is in memory: rows never carry it.
 */
const fieldSchema = (
  ctx: Context,
  field: DescField,
  comment: OrmComment.OrmComment
): Either.Either<Layout.Doc, string> => {
  const optional = (doc: Layout.Doc) => Layout.call(use(ctx, "Optional"), [doc])
  switch (field.fieldKind) {
    case "list":
      return Either.map(
        elementSchema(ctx, field, field.listKind === "scalar" && field.longAsString),
        (item) =>
          comment.ignore
            ? optional(Layout.call(`${ctx.schema}.Array`, [item]))
            : Layout.call(use(ctx, "List"), [item])
      )
    case "map":
      return Either.map(elementSchema(ctx, field, false), (value) =>
        comment.ignore
          ? optional(Layout.call(use(ctx, "Record"), [value]))
          : Layout.call(use(ctx, "Map"), [value])
      )
    case "message":
      return Either.map(messageSchema(ctx, field.message), ({ doc, wellKnown }) => {
        const stored = wellKnown || comment.ignore ? doc : Layout.call(use(ctx, "Json"), [doc])
        return field.presence === FeatureSet_FieldPresence.LEGACY_REQUIRED && !comment.ignore
          ? stored
          : optional(stored)
      })
    case "enum":
    case "scalar": {
      const doc =
        field.fieldKind === "enum"
          ? reference(ctx, field.enum)
          : scalarSchema(ctx, field.scalar, field.longAsString)
      return Either.right(
        field.presence === FeatureSet_FieldPresence.EXPLICIT || comment.ignore ? optional(doc) : doc
      )
    }
  }
}

/** Annotation checks that need the field's type. */
const checkFieldType = (field: DescField, comment: OrmComment.OrmComment): string | undefined => {
  if (comment.autoIncrement && !(field.fieldKind === "scalar" && integerScalars.includes(field.scalar))) {
    return "@orm auto_increment needs an integer field"
  }
  if (comment.primaryKey && field.fieldKind !== "scalar" && field.fieldKind !== "enum") {
    return `@orm primary_key needs a scalar or enum field, not a ${field.fieldKind}`
  }
  return undefined
}

const commentText = (desc: DescMessage | DescField | DescEnum): string => {
  const comments = getComments(desc)
  return [comments.leading ?? "", comments.trailing ?? ""].join("\n")
}

/** A JSDoc block from proto comments (without `@orm` lines), or nothing. */
const jsDoc = (text: string): Layout.Doc | undefined => {
  const docLines = OrmComment.documentation(text)
    .split("\n")
    .map((line) => line.replace(/^ /, "").trimEnd().replace(/\*\//g, "*\\/"))
  while (docLines.length > 0 && docLines[0] === "") docLines.shift()
  while (docLines.length > 0 && docLines[docLines.length - 1] === "") docLines.pop()
  if (docLines.length === 0) return undefined
  if (docLines.length === 1) return `/** ${docLines[0]} */`
  return Layout.lines(
    ["/**", ...docLines.map((line) => (line === "" ? " *" : ` * ${line}`)), " */"].join("\n")
  )
}

const withDoc = (doc: Layout.Doc | undefined, body: Layout.Doc): Layout.Doc =>
  doc === undefined ? body : [doc, Layout.hardline, body]

/** Prettier keeps keys shorter than tabWidth + 3 on the line of their value. */
const property = (key: string, value: Layout.Doc): Layout.Doc =>
  key.length < 5 ? [key, ": ", value] : Layout.assignment(key, ":", value)

const parseComment = (
  desc: DescMessage | DescField,
  check: (comment: OrmComment.OrmComment) => Either.Either<OrmComment.OrmComment, OrmComment.OrmCommentError>
): Either.Either<OrmComment.OrmComment, CodegenError.CodegenError> =>
  OrmComment.parse(commentText(desc)).pipe(
    Either.flatMap(check),
    Either.mapLeft((error) => CodegenError.at(desc, error.reason, error))
  )

const renderMessage = (
  ctx: Context,
  message: DescMessage
): Either.Either<Layout.Doc, ReadonlyArray<CodegenError.CodegenError>> => {
  const errors: Array<CodegenError.CodegenError> = []
  const messageComment = parseComment(message, OrmComment.forMessage)
  if (Either.isLeft(messageComment)) errors.push(messageComment.left)
  const columns = new Map<string, DescField>()
  const properties: Array<Layout.Doc> = []
  for (const field of message.fields) {
    const parsed = parseComment(field, OrmComment.forField)
    if (Either.isLeft(parsed)) {
      errors.push(parsed.left)
      continue
    }
    const comment = parsed.right
    const typeProblem = checkFieldType(field, comment)
    if (typeProblem !== undefined) {
      errors.push(CodegenError.at(field, typeProblem))
      continue
    }
    const schema = fieldSchema(ctx, field, comment)
    if (Either.isLeft(schema)) {
      errors.push(CodegenError.at(field, schema.left))
      continue
    }
    const E = ctx.entity
    const annotations: Array<Layout.Doc> = []
    if (comment.ignore) {
      annotations.push(`${E}.ignore`)
    } else {
      const column = comment.column ?? field.name
      const previous = columns.get(column)
      if (previous !== undefined) {
        errors.push(CodegenError.at(field, `column "${column}" is already used by field "${previous.name}"`))
        continue
      }
      columns.set(column, field)
      annotations.push(Layout.call(`${E}.column`, [quote(column)]))
      if (comment.primaryKey) annotations.push(`${E}.primaryKey`)
      if (comment.autoIncrement) annotations.push(`${E}.generated`)
      if (comment.sensitive) annotations.push(`${E}.sensitive`)
      if (comment.type !== undefined) annotations.push(Layout.call(`${E}.columnType`, [quote(comment.type)]))
      if (comment.unique) annotations.push(`${E}.unique`)
      if (comment.index) annotations.push(`${E}.indexed`)
    }
    const value = Layout.call([schema.right, ".pipe"], annotations)
    properties.push(withDoc(jsDoc(commentText(field)), property(field.localName, value)))
  }
  if (errors.length > 0 || Either.isLeft(messageComment)) return Either.left(errors)
  const name = exportName(message)
  const table = messageComment.right.table ?? snakeCase(name)
  const base = Layout.call(`${ctx.schema}.Class<${name}>`, [quote(name)])
  const declaration = [
    `export class ${name} extends `,
    Layout.call(base, [Layout.objectLines(properties), Layout.call(`${ctx.entity}.table`, [quote(table)])]),
    " {}"
  ]
  return Either.right(withDoc(jsDoc(commentText(message)), declaration))
}

const renderEnum = (ctx: Context, desc: DescEnum): Layout.Doc => {
  const name = exportName(desc)
  const literal = Layout.call(
    `${ctx.schema}.Literal`,
    desc.values.map((value) => quote(value.name))
  )
  return withDoc(jsDoc(commentText(desc)), [
    Layout.assignment(`export const ${name}`, " =", literal),
    Layout.hardline,
    `export type ${name} = typeof ${name}.Type`
  ])
}

const messagesOf = (messages: ReadonlyArray<DescMessage>): Array<DescMessage> =>
  messages.filter((m) => !isMapEntry(m)).flatMap((m) => [m, ...messagesOf(m.nestedMessages)])

const enumsOf = (file: DescFile): Array<DescEnum> => {
  const nested = (messages: ReadonlyArray<DescMessage>): Array<DescEnum> =>
    messages.flatMap((m) => [...m.nestedEnums, ...nested(m.nestedMessages)])
  return [...file.enums, ...nested(file.messages)]
}

/** Messages a message's class refers to (well-known types are mapped, not referenced). */
const dependencies = (
  message: DescMessage
): Array<{ readonly field: DescField; readonly message: DescMessage }> =>
  message.fields.flatMap((field) =>
    field.message === undefined ||
    isMappedWellKnown(field.message) ||
    field.message.typeName.startsWith("google.")
      ? []
      : [{ field, message: field.message }]
  )

/** A path of references from `from` back to `target`, if one exists. */
const cycle = (
  from: DescMessage,
  target: DescMessage,
  seen: Set<DescMessage> = new Set()
): ReadonlyArray<DescMessage> | undefined => {
  if (from === target) return [from]
  if (seen.has(from)) return undefined
  seen.add(from)
  for (const dependency of dependencies(from)) {
    const rest = cycle(dependency.message, target, seen)
    if (rest !== undefined) return [from, ...rest]
  }
  return undefined
}

/** Classes must be declared before use: dependencies first, otherwise declaration order. */
const declarationOrder = (messages: ReadonlyArray<DescMessage>): Array<DescMessage> => {
  const local = new Set(messages)
  const ordered: Array<DescMessage> = []
  const visit = (message: DescMessage) => {
    if (ordered.includes(message)) return
    for (const dependency of dependencies(message)) {
      if (local.has(dependency.message) && dependency.message !== message) visit(dependency.message)
    }
    ordered.push(message)
  }
  for (const message of messages) visit(message)
  return ordered
}

/** Recursive messages would need `Schema.suspend` and hand-written encoded types; they are refused. */
const recursionErrors = (messages: ReadonlyArray<DescMessage>): Array<CodegenError.CodegenError> =>
  messages.flatMap((message) =>
    dependencies(message).flatMap(({ field, message: target }) => {
      const path = cycle(target, message)
      return path === undefined
        ? []
        : [
            CodegenError.at(
              field,
              `recursive reference ${[message, ...path].map((m) => m.typeName).join(" -> ")} is not supported`
            )
          ]
    })
  )

/** Biome's import order: the key compared is the name, case-insensitively, digits by value. */
const compareNames = (a: string, b: string): number =>
  a.localeCompare(b, "en", { numeric: true, sensitivity: "base" }) || (a < b ? -1 : a > b ? 1 : 0)

/** Biome's import order: packages, then paths, the farthest (`../../`) first and `./` last. */
const importRank = (specifier: string): number => {
  if (specifier.startsWith("./")) return 2
  if (!specifier.startsWith("../")) return 0
  return 2 - specifier.split("/").filter((part) => part === "..").length / 1000
}

const importDoc = (names: ReadonlyArray<string>, specifier: string): Layout.Doc =>
  Layout.group([
    "import {",
    Layout.indent([Layout.line, Layout.join([",", Layout.line], names)]),
    Layout.line,
    `} from ${quote(specifier)}`
  ])

/**
 * Renders `file` as TypeScript, or every problem found in it (bad annotations, unsupported types,
 * recursive messages), each naming the file, line and element.
 *
 * @since 0.1.0 @category rendering
 */
export const render = (
  file: DescFile,
  options: PluginOptions
): Either.Either<Output, ReadonlyArray<CodegenError.CodegenError>> => {
  const messages = messagesOf(file.messages)
  const enums = enumsOf(file)
  const output = outputName(file)
  // Nothing to declare (a file of services or options): no module, rather than a lone unused import.
  if (messages.length === 0 && enums.length === 0) return Either.right({ name: output, content: "" })
  const localNames = [...messages, ...enums].map(exportName)
  const ctx: Context = {
    file,
    output,
    options,
    helpers: new Set(),
    imports: new Map(),
    taken: new Set([...localNames, "Schema", "Entity", "Schema$", "Entity$"]),
    // Capitalised aliases: Biome lays out `Schema$.X(...)` chains like `Schema.X(...)` ones.
    schema: localNames.includes("Schema") ? "Schema$" : "Schema",
    entity: localNames.includes("Entity") ? "Entity$" : "Entity"
  }
  const errors: Array<CodegenError.CodegenError> = recursionErrors(messages)
  const declarations: Array<Layout.Doc> = enums.map((desc) => renderEnum(ctx, desc))
  for (const message of declarationOrder(messages)) {
    const rendered = renderMessage(ctx, message)
    if (Either.isLeft(rendered)) errors.push(...rendered.left)
    else declarations.push(rendered.right)
  }
  if (errors.length > 0) return Either.left(errors)

  const imports = [
    { specifier: "effect", names: [ctx.schema === "Schema" ? "Schema" : "Schema as Schema$"] },
    // A file with only enums has no use for Entity, and an unused import fails lint.
    ...(messages.length === 0
      ? []
      : [
          {
            specifier: entityImport(output, options.importPath),
            names: [ctx.entity === "Entity" ? "Entity" : "Entity as Entity$"]
          }
        ]),
    ...[...ctx.imports.entries()].map(([specifier, names]) => ({
      specifier,
      names: [...names.entries()]
        .sort(([a], [b]) => compareNames(a, b))
        .map(([exported, local]) => (exported === local ? exported : `${exported} as ${local}`))
    }))
  ].sort(
    (a, b) => importRank(a.specifier) - importRank(b.specifier) || compareNames(a.specifier, b.specifier)
  )
  const helpers = helperOrder
    .filter((helper) => ctx.helpers.has(helper))
    .map((helper) => helperSource[helper](ctx.schema))
  const importDocs = imports.map(({ names, specifier }) => importDoc(names, specifier))
  const blocks: Array<Layout.Doc> = [Layout.join(Layout.hardline, importDocs), ...helpers, ...declarations]
  const content = Layout.render(
    [Layout.join([Layout.hardline, Layout.hardline], blocks), Layout.hardline],
    lineWidth
  )
  return Either.right({ name: output, content })
}
