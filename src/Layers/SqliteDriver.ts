/**
 * The SQLite driver (`@effect/sql-sqlite-node`) for `Database.layer`, which imports this module itself
 * for a `sqlite:` URL; a bundled program passes `drivers: [SqliteDriver.driver]`. The file's directory is
 * created if missing (a failure is a `DatabaseError`); SQLite has one connection.
 *
 * @since 0.1.0
 * @module effect-dal/SqliteDriver
 */
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Effect, Layer } from "effect"
import type { Driver } from "./Database.js"

/** @since 0.1.0 @category drivers */
export const driver: Driver = {
  dialect: "sqlite",
  client: (url) =>
    Layer.unwrapEffect(
      Effect.try(() => {
        if (url.filename !== ":memory:") mkdirSync(dirname(url.filename), { recursive: true })
        return SqliteClient.layer({ filename: url.filename })
      })
    )
}
