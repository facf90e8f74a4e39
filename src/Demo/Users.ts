/**
 * The demo program's data: the `User` entity, what the API accepts, the typed errors of the users
 * service, the database operations (written with the query builders) and, in its own section at the
 * end, the schema migration.
 *
 * Inputs are checked here against everything the databases would refuse, so that a write the API
 * acknowledges (PUT goes to the write-back cache, the database gets it later) can always be stored:
 * text is well-formed Unicode without control characters (PostgreSQL refuses NUL; MariaDB's utf8mb4
 * refuses lone surrogates), names fit their columns, and emails are lowercase printable ASCII so that
 * every dialect's unique index compares them the way the service does (MariaDB's default collation
 * is case- and accent-insensitive).
 *
 * @since 0.1.0
 */
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as Migrator from "@effect/sql/Migrator"
import { Context, Effect, Option, Schema } from "effect"
import { Executor } from "../Query/Executor.js"
import * as Insert from "../Query/Insert.js"
import * as Select from "../Query/Select.js"
import * as Entity from "../Schema/Entity.js"
import createUsers from "./migrations/1_create_users.js"

/** @since 0.1.0 @category entities */
export class User extends Schema.Class<User>("User")(
  {
    id: Schema.Number.pipe(Entity.generated),
    firstName: Schema.String.pipe(Schema.maxLength(100)),
    lastName: Schema.String.pipe(Schema.maxLength(100)),
    email: Schema.String.pipe(Schema.maxLength(200), Entity.sensitive, Entity.unique),
    age: Schema.Int
  },
  Entity.table("users", { indexes: [Entity.index(["age"], { name: "users_age" })] })
) {}

// C0 controls (NUL included), DEL and C1 controls: no database keeps them all, no name needs them.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const controlCharacters = /[\u0000-\u001f\u007f-\u009f]/

const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/** Text every dialect stores as given: well-formed Unicode, no control characters, at most `max` UTF-16 units. */
const Text = (max: number) =>
  Schema.Trim.pipe(
    Schema.nonEmptyString({ message: () => "must not be empty" }),
    Schema.maxLength(max, { message: () => `at most ${max} characters` }),
    Schema.filter((s) => !loneSurrogate.test(s), {
      message: () => "not well-formed Unicode (a lone surrogate)"
    }),
    Schema.filter((s) => !controlCharacters.test(s), { message: () => "control characters are not allowed" })
  )

const Name = Text(100)

/** Lowercase printable ASCII, `local@domain.tld`: equal for the service exactly when equal for every unique index. */
const Email = Schema.compose(Schema.Trim, Schema.Lowercase).pipe(
  Schema.maxLength(200, { message: () => "at most 200 characters" }),
  Schema.pattern(/^[!-?A-~]+@[!-?A-~]+\.[!-?A-~]+$/, { message: () => "not an email address" })
)

const Age = Schema.Int.pipe(Schema.between(0, 150, { message: () => "an integer from 0 to 150" }))

/** What `POST /users` accepts. @since 0.1.0 @category inputs */
export const NewUser = Schema.Struct({ firstName: Name, lastName: Name, email: Email, age: Age }).annotations(
  {
    identifier: "NewUser"
  }
)

/** @since 0.1.0 @category inputs */
export type NewUser = typeof NewUser.Type

/** What `PUT /users/:id` accepts: any subset of the fields. @since 0.1.0 @category inputs */
export const UserPatch = Schema.Struct({
  firstName: Schema.optionalWith(Name, { exact: true }),
  lastName: Schema.optionalWith(Name, { exact: true }),
  email: Schema.optionalWith(Email, { exact: true }),
  age: Schema.optionalWith(Age, { exact: true })
}).annotations({ identifier: "UserPatch" })

/** @since 0.1.0 @category inputs */
export type UserPatch = typeof UserPatch.Type

/** No user has this id. @since 0.1.0 @category errors */
export class UserNotFound extends Schema.TaggedError<UserNotFound>()(
  "UserNotFound",
  { id: Schema.Number },
  HttpApiSchema.annotations({ status: 404, description: "No user has this id" })
) {}

/**
 * Another user has this email, in the database or in a write still waiting in the write-back cache.
 *
 * @since 0.1.0 @category errors
 */
export class EmailTaken extends Schema.TaggedError<EmailTaken>()(
  "EmailTaken",
  { field: Schema.Literal("email") },
  HttpApiSchema.annotations({ status: 409, description: "Another user has this email" })
) {}

/**
 * The database (or what the request needs of it) failed: the request did nothing and may be retried.
 * Never reported as "not found", never cached.
 *
 * @since 0.1.0 @category errors
 */
export class Unavailable extends Schema.TaggedError<Unavailable>()(
  "Unavailable",
  { reason: Schema.String },
  HttpApiSchema.annotations({ status: 503, description: "The database is unavailable; retry later" })
) {}

/**
 * Turns any failure of the data layer into `Unavailable` with a short reason; the full cause goes to
 * the log (where repeats are bounded, see `Log.ts`), never to the client.
 */
export const unavailable = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.tapErrorCause((cause) => Effect.logError("data layer failed", cause)),
    Effect.mapError((error) => new Unavailable({ reason: reasonOf(error) }))
  )

const reasonOf = (error: unknown): string => {
  const tag = typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : "error"
  const reason = typeof error === "object" && error !== null && "reason" in error ? error.reason : undefined
  return typeof reason === "string" && tag === "DatabaseError" ? `database: ${reason}` : `database: ${tag}`
}

/** What one flush of the write-back cache did. @since 0.1.0 @category models */
export const FlushReport = Schema.Struct({
  /** Writes stored. */
  written: Schema.Number,
  /** Ids the database could not take before the deadline; they stay pending. */
  failed: Schema.Array(Schema.String),
  /** Ids the database refused for good: kept in the dead-letter file, written again on the next start. */
  deadLettered: Schema.Array(Schema.String)
}).annotations({ identifier: "FlushReport" })

/** What the HTTP API needs from the data layer. @since 0.1.0 @category services */
export interface UsersService {
  readonly create: (input: NewUser) => Effect.Effect<User, EmailTaken | Unavailable>
  readonly get: (id: number) => Effect.Effect<User, UserNotFound | Unavailable>
  readonly update: (
    id: number,
    patch: UserPatch
  ) => Effect.Effect<User, UserNotFound | EmailTaken | Unavailable>
  readonly list: (options: {
    readonly minAge: number
    readonly limit: number
    readonly offset: number
  }) => Effect.Effect<ReadonlyArray<User>, Unavailable>
  /** Writes every pending write of the write-back cache now. */
  readonly flush: Effect.Effect<typeof FlushReport.Type>
}

/** @since 0.1.0 @category services */
export class Users extends Context.Tag("effect-dal/demo/Users")<Users, UsersService>() {}

/** Inserts a user and returns it with the id the database gave it. @since 0.1.0 @category operations */
export const create = (input: NewUser) =>
  Effect.map(
    Insert.into(User)
      .values(new User({ id: 0, ...input }))
      .exec(),
    (result) => new User({ ...input, id: Number(result.lastInsertId) })
  )

/** The user with `id`, if any; a database error stays an error. @since 0.1.0 @category operations */
export const find = (id: number) =>
  Select.from(User)
    .where((u) => u.id.eq(id))
    .get()
    .pipe(
      Effect.map(Option.some),
      Effect.catchTag("NoRowsError", () => Effect.succeedNone)
    )

/** The user with `email`, if any. @since 0.1.0 @category operations */
export const findByEmail = (email: string) =>
  Select.from(User)
    .where((u) => u.email.eq(email))
    .get()
    .pipe(
      Effect.map(Option.some),
      Effect.catchTag("NoRowsError", () => Effect.succeedNone)
    )

/** A page of users at least `minAge` old, by id. @since 0.1.0 @category operations */
export const list = (options: { readonly minAge: number; readonly limit: number; readonly offset: number }) =>
  Select.from(User)
    .where((u) => u.age.gte(options.minAge))
    .orderBy("id")
    .limit(options.limit)
    .offset(options.offset)
    .getMulti()

/** Answers when the database does (the readiness check). @since 0.1.0 @category operations */
export const ping = Effect.flatMap(Executor, (executor) => executor.session.sql`SELECT 1`)

// ---------------------------------------------------------------------------------------------------
// Schema migration (generated from the entity by `effect-dal migrate generate`, in ./migrations).
// ---------------------------------------------------------------------------------------------------

/**
 * Creates the `users` table when absent, through @effect/sql's Migrator (recorded in
 * `effect_sql_migrations`), with the migrations generated from `User` for every dialect.
 *
 * @since 0.1.0 @category migrations
 */
export const migrate = Migrator.make({})({
  loader: Migrator.fromRecord({ "1_create_users": createUsers })
})
