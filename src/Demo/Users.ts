/**
 * The demo program's data: the `User` entity, its migration, and the database operations the HTTP
 * API needs, written with the query builders.
 *
 * @since 0.1.0
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { Data, Effect, Option, Schema } from "effect"
import * as Insert from "../Query/Insert.js"
import * as Select from "../Query/Select.js"
import * as Update from "../Query/Update.js"
import * as Entity from "../Schema/Entity.js"

/** @since 0.1.0 @category entities */
export class User extends Schema.Class<User>("User")(
  {
    id: Schema.Number.pipe(Entity.generated),
    firstName: Schema.String,
    lastName: Schema.String,
    email: Schema.String.pipe(Entity.sensitive),
    age: Schema.Number
  },
  Entity.table("users")
) {}

const Name = Schema.Trim.pipe(Schema.nonEmptyString(), Schema.maxLength(100))

/** What `POST /users` accepts. @since 0.1.0 @category inputs */
export const NewUser = Schema.Struct({
  firstName: Name,
  lastName: Name,
  email: Schema.Trim.pipe(
    Schema.maxLength(200),
    Schema.pattern(/^[^@\s]+@[^@\s]+\.[^@\s]+$/, { message: () => "not an email address" })
  ),
  age: Schema.Int.pipe(Schema.between(0, 150))
})

/** What `PUT /users/:id` accepts: any subset of the fields. @since 0.1.0 @category inputs */
export const UserPatch = Schema.partial(NewUser)

/** @since 0.1.0 @category inputs */
export type UserPatch = typeof UserPatch.Type

/**
 * Creates the `users` table when absent, through @effect/sql's Migrator (recorded in
 * `effect_sql_migrations`), with the DDL of each dialect.
 *
 * @since 0.1.0 @category migrations
 */
export const migrate = Migrator.make({})({
  loader: Migrator.fromRecord({
    "1_create_users": Effect.flatMap(SqlClient.SqlClient, (sql) =>
      Effect.forEach(
        sql.onDialectOrElse({
          mysql: () => [
            `CREATE TABLE users (id INT AUTO_INCREMENT PRIMARY KEY, first_name VARCHAR(100) NOT NULL,
              last_name VARCHAR(100) NOT NULL, email VARCHAR(200) NOT NULL UNIQUE, age INT NOT NULL,
              INDEX users_age (age)) CHARACTER SET utf8mb4`
          ],
          pg: () => [
            `CREATE TABLE users (id SERIAL PRIMARY KEY, first_name VARCHAR(100) NOT NULL,
              last_name VARCHAR(100) NOT NULL, email VARCHAR(200) NOT NULL UNIQUE, age INT NOT NULL)`,
            "CREATE INDEX users_age ON users (age)"
          ],
          orElse: () => [
            `CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, first_name TEXT NOT NULL,
              last_name TEXT NOT NULL, email TEXT NOT NULL UNIQUE, age INTEGER NOT NULL)`,
            "CREATE INDEX users_age ON users (age)"
          ]
        }),
        (ddl) => sql.unsafe(ddl),
        { discard: true }
      )
    )
  })
})

/** Inserts a user and returns it with the id the database gave it. @since 0.1.0 @category operations */
export const create = (input: typeof NewUser.Type) =>
  Effect.map(
    Insert.into(User)
      .values(new User({ id: 0, ...input }))
      .exec(),
    (result) => new User({ ...input, id: Number(result.lastInsertId) })
  )

/** The user with `id`, if any. @since 0.1.0 @category operations */
export const find = (id: number) =>
  Effect.map(
    Effect.option(
      Effect.catchTag(
        Select.from(User)
          .where((u) => u.id.eq(id))
          .get(),
        "NoRowsError",
        () => Effect.fail(undefined)
      )
    ),
    Option.fromNullable
  ).pipe(Effect.map(Option.flatten))

/** The user with `email`, if any. @since 0.1.0 @category operations */
export const findByEmail = (email: string) =>
  Select.from(User)
    .where((u) => u.email.eq(email))
    .get()
    .pipe(
      Effect.map(Option.some),
      Effect.catchTag("NoRowsError", () => Effect.succeedNone)
    )

/** Another user has this email. @since 0.1.0 @category errors */
export class EmailTakenError extends Data.TaggedError("EmailTakenError")<{ readonly email: string }> {}

/** A page of users at least `minAge` old, by id. @since 0.1.0 @category operations */
export const list = (options: { readonly minAge: number; readonly limit: number; readonly offset: number }) =>
  Select.from(User)
    .where((u) => u.age.gte(options.minAge))
    .orderBy("id")
    .limit(options.limit)
    .offset(options.offset)
    .getMulti()

/** Writes users back (the write-back cache's store). @since 0.1.0 @category operations */
export const save = (user: User) =>
  Update.table(User)
    .set({ firstName: user.firstName, lastName: user.lastName, email: user.email, age: user.age })
    .where((u) => u.id.eq(user.id))
    .exec()
