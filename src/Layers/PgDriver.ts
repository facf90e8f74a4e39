/**
 * The PostgreSQL driver (`@effect/sql-pg`) for `Database.layer`, which imports this module itself for a
 * `postgres://` or `postgresql://` URL; a bundled program passes `drivers: [PgDriver.driver]`.
 *
 * @since 0.1.0
 * @module effect-dal/PgDriver
 */
import { PgClient } from "@effect/sql-pg"
import type { Driver } from "./Database.js"

/** @since 0.1.0 @category drivers */
export const driver: Driver = {
  dialect: "pg",
  client: (url, { maxConnections }) => PgClient.layer({ url: url.url, maxConnections })
}
