/**
 * Dead letters of write-back caches: entries the store refused for good (a unique violation, a value
 * the database rejects), and at close every entry that could not be written in time. They are kept
 * where they survive the process, so an acknowledged write is never forgotten: the write-back cache
 * of the same name writes them to the store again when it starts (and on `replayDeadLetters`), and
 * removes those the store takes.
 *
 * `DeadLetters` is a service, so the place is the user's choice (`layerFile` here, or any
 * implementation of the three operations). Without one, a write-back cache uses the SQLite file
 * `effect-dal-dead-letters.sqlite` in the working directory, created on the first dead letter.
 *
 * @since 0.1.0
 */
import { existsSync } from "node:fs"
import * as Reactivity from "@effect/experimental/Reactivity"
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Context, Effect, Layer, Scope } from "effect"
import { CacheError } from "./CacheError.js"

/**
 * One entry the store did not take: a value to write (encoded as JSON text) or a key to delete.
 *
 * @since 0.1.0
 * @category models
 */
export interface Letter {
  /** The name of the write-back cache it came from. */
  readonly cache: string
  readonly key: string
  readonly op: "write" | "delete"
  /** The value, encoded as JSON text (`op: "write"` only). */
  readonly value?: string | undefined
  /** Why the store did not take it. */
  readonly error: string
  /** When it was dead-lettered (epoch milliseconds). */
  readonly at: number
}

/**
 * A letter as stored, with its id.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoredLetter extends Letter {
  readonly id: number
}

/**
 * Where dead letters are kept. `put` returns once the letters are durable.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeadLetters {
  readonly put: (letters: ReadonlyArray<Letter>) => Effect.Effect<void, CacheError>
  /** The letters of one cache, oldest first. */
  readonly list: (cache: string) => Effect.Effect<ReadonlyArray<StoredLetter>, CacheError>
  readonly remove: (ids: ReadonlyArray<number>) => Effect.Effect<void, CacheError>
}

/**
 * The dead-letter store write-back caches use.
 *
 * @since 0.1.0
 * @category tags
 */
export const DeadLetters: Context.Tag<DeadLetters, DeadLetters> =
  Context.GenericTag<DeadLetters>("effect-dal/DeadLetters")

/**
 * The file a write-back cache dead-letters to when no `DeadLetters` is provided.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultFile = "effect-dal-dead-letters.sqlite"

const storage = (operation: string, filename: string) => (cause: unknown) =>
  new CacheError({
    reason: "storage",
    operation,
    detail: `${filename}: ${cause instanceof Error ? cause.message : String(cause)}`,
    cause
  })

/** Rows per INSERT (7 parameters each, far below SQLite's limit). */
const insertChunk = 500

/**
 * The SQLite driver is an optional peer: imported when the first dead letter is written, by a specifier a
 * bundler does not follow, so a program that never writes one needs neither the package nor its code.
 */
const sqliteClientModule = "@effect/sql-sqlite-node/SqliteClient"

/**
 * Dead letters in a SQLite file (table `effect_dal_dead_letters`, `synchronous = FULL`, so a `put`
 * that returned is on disk). The file is opened on first use and closed with the scope; `list` and
 * `remove` on a file that does not exist yet find nothing and create nothing.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeFile = (filename: string): Effect.Effect<DeadLetters, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const lock = yield* Effect.makeSemaphore(1)
    let client: SqlClient.SqlClient | undefined

    const open = (create: boolean): Effect.Effect<SqlClient.SqlClient | undefined, CacheError> =>
      lock.withPermits(1)(
        Effect.suspend(() => {
          if (client !== undefined) return Effect.succeed(client)
          if (!create && !existsSync(filename)) return Effect.succeed(undefined)
          return Effect.tryPromise(() => import(sqliteClientModule) as Promise<typeof SqliteClient>).pipe(
            Effect.flatMap((driver) => driver.make({ filename })),
            Effect.provide(Reactivity.layer),
            Effect.tap((sql) =>
              Effect.zipRight(
                sql`PRAGMA synchronous = FULL`,
                sql`CREATE TABLE IF NOT EXISTS effect_dal_dead_letters (
                  id INTEGER PRIMARY KEY AUTOINCREMENT,
                  cache TEXT NOT NULL,
                  key TEXT NOT NULL,
                  op TEXT NOT NULL,
                  value TEXT,
                  error TEXT NOT NULL,
                  at INTEGER NOT NULL
                )`
              )
            ),
            Effect.tap((sql) =>
              Effect.sync(() => {
                client = sql
              })
            ),
            Effect.catchAllCause((cause) => Effect.fail(storage("DeadLetters.open", filename)(cause))),
            Scope.extend(scope)
          )
        })
      )

    const put = (letters: ReadonlyArray<Letter>) =>
      letters.length === 0
        ? Effect.void
        : Effect.flatMap(open(true), (sql) => {
            if (sql === undefined) return Effect.void
            const rows = letters.map((l) => ({
              cache: l.cache,
              key: l.key,
              op: l.op,
              value: l.value ?? null,
              error: l.error,
              at: l.at
            }))
            const inserts = Effect.forEach(
              Array.from({ length: Math.ceil(rows.length / insertChunk) }, (_, i) =>
                rows.slice(i * insertChunk, (i + 1) * insertChunk)
              ),
              (chunk) => sql`INSERT INTO effect_dal_dead_letters ${sql.insert(chunk)}`,
              { discard: true }
            )
            return Effect.mapError(sql.withTransaction(inserts), storage("DeadLetters.put", filename))
          })

    const list = (cache: string) =>
      Effect.flatMap(open(false), (sql) =>
        sql === undefined
          ? Effect.succeed([])
          : sql<{
              readonly id: number
              readonly cache: string
              readonly key: string
              readonly op: string
              readonly value: string | null
              readonly error: string
              readonly at: number
            }>`SELECT id, cache, key, op, value, error, at FROM effect_dal_dead_letters WHERE cache = ${cache} ORDER BY id`.pipe(
              Effect.map((rows) =>
                rows.map(
                  (r): StoredLetter => ({
                    id: r.id,
                    cache: r.cache,
                    key: r.key,
                    op: r.op === "delete" ? "delete" : "write",
                    value: r.value ?? undefined,
                    error: r.error,
                    at: r.at
                  })
                )
              ),
              Effect.mapError(storage("DeadLetters.list", filename))
            )
      )

    const remove = (ids: ReadonlyArray<number>) =>
      ids.length === 0
        ? Effect.void
        : Effect.flatMap(open(false), (sql) =>
            sql === undefined
              ? Effect.void
              : Effect.mapError(
                  sql`DELETE FROM effect_dal_dead_letters WHERE ${sql.in("id", ids)}`,
                  storage("DeadLetters.remove", filename)
                )
          )

    return { put, list, remove }
  })

/**
 * Provides dead letters kept in the SQLite file `filename`.
 *
 * @example
 * const UsersLive = WriteBack.layer(UserCache, { store: WriteThrough.entityStore(User), name: "users", schema: User }).pipe(
 *   Layer.provide(DeadLetter.layerFile("/var/lib/app/dead-letters.sqlite"))
 * )
 * @since 0.1.0
 * @category layers
 */
export const layerFile = (filename: string): Layer.Layer<DeadLetters> =>
  Layer.scoped(DeadLetters, makeFile(filename))
