/**
 * The MySQL/MariaDB driver (`@effect/sql-mysql2`) for `Database.layer`, which imports this module itself
 * for a `mysql://` or `mariadb://` URL; a bundled program passes `drivers: [MysqlDriver.driver]`.
 *
 * @since 0.1.0
 * @module effect-dal/MysqlDriver
 */
import { MysqlClient } from "@effect/sql-mysql2"
import type { Driver } from "./Database.js"

/** @since 0.1.0 @category drivers */
export const driver: Driver = {
  dialect: "mysql",
  // Given as parts, not `url`: MysqlClient ignores poolConfig when it gets a URL.
  client: (url, { maxConnections }) =>
    MysqlClient.layer({
      host: url.host,
      port: url.port,
      database: url.database,
      maxConnections,
      ...(url.username === undefined ? {} : { username: url.username }),
      ...(url.password === undefined ? {} : { password: url.password })
    })
}
