/**
 * A database as a Layer: from a URL (`mysql://…`, `mariadb://…`, `postgres://…`, `sqlite:path`,
 * `sqlite::memory:`) to the SqlClient, the dialect, the entity registry and the Executor.
 *
 * The driver of each dialect lives in its own module (`effect-dal/MysqlDriver`, `effect-dal/PgDriver`,
 * `effect-dal/SqliteDriver`), the only ones that import a driver package. `layer` loads the one its URL
 * names when the layer is built, so a program pulls in only the driver it uses and needs only that one
 * installed. Bundlers do not follow that load: a bundled program passes its drivers in `drivers`.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Config, type ConfigError, Data, Effect, Either, Layer, Redacted, type Schema } from "effect"
import * as Dialect from "../Query/Dialect.js"
import * as Executor from "../Query/Executor.js"
import { type DatabaseError, fromDriver } from "../Query/QueryError.js"
import * as Session from "../Query/Session.js"
import * as SessionClient from "../Query/SessionClient.js"
import type { InvalidEntityError } from "../Schema/EntityError.js"
import type * as EntityModel from "../Schema/EntityModel.js"
import * as EntityRegistry from "../Schema/EntityRegistry.js"

/** The URL names no supported database. @since 0.1.0 @category errors */
export class DatabaseUrlError extends Data.TaggedError("DatabaseUrlError")<{ readonly reason: string }> {
  override get message() {
    return `Bad DATABASE_URL: ${this.reason}`
  }
}

/** A parsed database URL; `label` is safe to log (no credentials). @since 0.1.0 @category models */
export type DatabaseUrl =
  | {
      readonly dialect: "mysql"
      readonly label: string
      readonly host: string
      readonly port: number
      readonly database: string
      readonly username: string | undefined
      readonly password: Redacted.Redacted | undefined
    }
  | { readonly dialect: "pg"; readonly label: string; readonly url: Redacted.Redacted }
  | { readonly dialect: "sqlite"; readonly label: string; readonly filename: string }

/**
 * Parses a database URL. The password stays `Redacted`; the label never contains it.
 *
 * @since 0.1.0 @category parsing
 */
export const parseUrl = (input: string | Redacted.Redacted): Either.Either<DatabaseUrl, DatabaseUrlError> => {
  const raw = typeof input === "string" ? input : Redacted.value(input)
  if (raw.startsWith("sqlite:")) {
    const filename = raw.slice("sqlite:".length).replace(/^\/\//, "")
    return filename === ""
      ? Either.left(new DatabaseUrlError({ reason: "sqlite: needs a file path or :memory:" }))
      : Either.right({ dialect: "sqlite", label: `sqlite:${filename}`, filename })
  }
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return Either.left(
      new DatabaseUrlError({ reason: "not a URL (expected mysql://, postgres:// or sqlite:)" })
    )
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ""))
  const label = `${url.protocol}//${url.host}/${database}`
  switch (url.protocol) {
    case "mysql:":
    case "mariadb:":
      return Either.right({
        dialect: "mysql",
        label,
        host: url.hostname,
        port: url.port === "" ? 3306 : Number(url.port),
        database,
        username: url.username === "" ? undefined : decodeURIComponent(url.username),
        password: url.password === "" ? undefined : Redacted.make(decodeURIComponent(url.password))
      })
    case "postgres:":
    case "postgresql:":
      return Either.right({ dialect: "pg", label, url: Redacted.make(raw) })
  }
  return Either.left(new DatabaseUrlError({ reason: `unsupported scheme ${url.protocol}` }))
}

/** @since 0.1.0 @category models */
export interface Options {
  readonly url: string | Redacted.Redacted
  /** Pool size for MySQL/MariaDB and PostgreSQL (default 10). SQLite has one connection. */
  readonly maxConnections?: number
  /** Table and column names this database uses instead of the entities' annotations. */
  readonly overrides?: ReadonlyArray<
    readonly [entity: Schema.Schema.AnyNoContext, overrides: EntityModel.Overrides]
  >
  /**
   * The drivers to use, e.g. `[SqliteDriver.driver]`; a URL of another dialect fails with
   * `DatabaseDriverError`. Default: the URL's driver module is imported when the layer is built.
   */
  readonly drivers?: ReadonlyArray<Driver>
}

/**
 * A dialect's driver: builds the SqlClient for a URL of its dialect. `MysqlDriver.driver`,
 * `PgDriver.driver` and `SqliteDriver.driver` are the three there are.
 *
 * @since 0.1.0 @category models
 */
export type Driver = {
  readonly [D in DatabaseUrl["dialect"]]: {
    readonly dialect: D
    readonly client: (
      url: Extract<DatabaseUrl, { readonly dialect: D }>,
      options: { readonly maxConnections: number }
    ) => Layer.Layer<SqlClient.SqlClient, unknown>
  }
}[DatabaseUrl["dialect"]]

/**
 * The driver for the URL's dialect could not be loaded: its package is not installed, or (in a bundle)
 * it was not passed in `drivers`.
 *
 * @since 0.1.0 @category errors
 */
export class DatabaseDriverError extends Data.TaggedError("DatabaseDriverError")<{
  readonly dialect: DatabaseUrl["dialect"]
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `No ${this.dialect} driver: ${this.reason}`
  }
}

/** Each dialect's driver module and the package it imports. */
const driverModules: Record<
  DatabaseUrl["dialect"],
  { readonly module: string; readonly packageName: string }
> = {
  mysql: { module: "./MysqlDriver.js", packageName: "@effect/sql-mysql2" },
  pg: { module: "./PgDriver.js", packageName: "@effect/sql-pg" },
  sqlite: { module: "./SqliteDriver.js", packageName: "@effect/sql-sqlite-node" }
}

/** Imports the dialect's driver module. The specifier is a variable, so bundlers leave the import alone. */
const loadDriver = (dialect: DatabaseUrl["dialect"]): Effect.Effect<Driver, DatabaseDriverError> => {
  const { module, packageName } = driverModules[dialect]
  return Effect.tryPromise({
    try: () => import(module) as Promise<{ readonly driver: Driver }>,
    catch: (cause) =>
      new DatabaseDriverError({
        dialect,
        reason: `install ${packageName} (npm install ${packageName}), or pass its driver in \`drivers\` when bundling`,
        cause
      })
  }).pipe(Effect.map((loaded) => loaded.driver))
}

const findDriver = (
  dialect: DatabaseUrl["dialect"],
  drivers: ReadonlyArray<Driver> | undefined
): Effect.Effect<Driver, DatabaseDriverError> => {
  if (drivers === undefined) return loadDriver(dialect)
  const driver = drivers.find((d) => d.dialect === dialect)
  return driver === undefined
    ? Effect.fail(
        new DatabaseDriverError({
          dialect,
          reason: `\`drivers\` has only ${drivers.map((d) => d.dialect).join(", ") || "none"}`
        })
      )
    : Effect.succeed(driver)
}

/** The database's OpenTelemetry attributes (no credentials). */
const spanAttributes = (url: DatabaseUrl): Record<string, string | number> => {
  switch (url.dialect) {
    case "mysql":
      return { "db.namespace": url.database, "server.address": url.host, "server.port": url.port }
    case "pg": {
      const parsed = new URL(Redacted.value(url.url))
      return {
        "db.namespace": decodeURIComponent(parsed.pathname.replace(/^\//, "")),
        "server.address": parsed.hostname,
        "server.port": parsed.port === "" ? 5432 : Number(parsed.port)
      }
    }
    case "sqlite":
      return { "db.namespace": url.filename }
  }
}

const executorLayer = (
  url: DatabaseUrl,
  overrides: NonNullable<Options["overrides"]>,
  maxConnections: number
) =>
  Layer.effect(
    Executor.Executor,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const registry = EntityRegistry.make()
      for (const [entity, names] of overrides) yield* registry.override(entity, names)
      return Executor.make(
        Session.make({
          label: url.label,
          dialect: Dialect.byName[url.dialect],
          sql,
          registry,
          attributes: spanAttributes(url),
          maxConnections
        })
      )
    })
  )

/**
 * The database at `url`: its Executor (with its own entity registry, `overrides` applied; an entity
 * they do not fit fails the layer with `InvalidEntityError`) and its SqlClient.
 *
 * @since 0.1.0 @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<
  Executor.Executor | SqlClient.SqlClient,
  DatabaseUrlError | DatabaseDriverError | DatabaseError | InvalidEntityError
> =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const url = yield* parseUrl(options.url)
      const driver = yield* findDriver(url.dialect, options.drivers)
      const maxConnections = options.maxConnections ?? 10
      // findDriver matched the driver to the URL's dialect, which is what `client` takes.
      const client = Layer.mapError(
        (
          driver.client as (
            url: DatabaseUrl,
            options: { readonly maxConnections: number }
          ) => ReturnType<Driver["client"]>
        )(url, { maxConnections }),
        (e) => fromDriver(e)
      )
      return SessionClient.layer(
        Layer.provideMerge(executorLayer(url, options.overrides ?? [], maxConnections), client)
      )
    })
  )

/**
 * The database named by `DATABASE_URL` (or another config), with `fallback` when it is unset.
 *
 * @since 0.1.0 @category layers
 */
export const layerConfig = ({
  fallback,
  ...options
}: Omit<Options, "url"> & { readonly fallback?: string } = {}): Layer.Layer<
  Executor.Executor | SqlClient.SqlClient,
  DatabaseUrlError | DatabaseDriverError | DatabaseError | InvalidEntityError | ConfigError.ConfigError
> =>
  Layer.unwrapEffect(
    Effect.map(
      fallback === undefined
        ? Config.redacted("DATABASE_URL")
        : Config.withDefault(Config.redacted("DATABASE_URL"), Redacted.make(fallback)),
      (url) => layer({ ...options, url })
    )
  )
