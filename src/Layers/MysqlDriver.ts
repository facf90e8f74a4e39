/**
 * The MySQL/MariaDB driver (effect-dal's own client on `mysql2`: multiple statements off, every value
 * bound by the server) for `Database.layer`, which imports this module itself
 * for a `mysql://` or `mariadb://` URL; a bundled program passes `drivers: [MysqlDriver.driver]`.
 *
 * @since 0.1.0
 * @module effect-dal/MysqlDriver
 */
import type { Driver } from "./Database.js"
import * as MysqlClient from "./internal/mysqlClient.js"

/** @since 0.1.0 @category drivers */
export const driver: Driver = {
  dialect: "mysql",
  client: (url, { maxConnections }) =>
    MysqlClient.layer({
      host: url.host,
      port: url.port,
      database: url.database,
      maxConnections,
      username: url.username,
      password: url.password
    })
}
