/**
 * A database as a Layer: from a URL (`mysql://…`, `mariadb://…`, `postgres://…`, `sqlite:path`,
 * `sqlite::memory:`) to the SqlClient, the dialect, the entity registry and the Executor.
 *
 * @since 0.1.0
 */
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Config, type ConfigError, Data, Effect, Either, Layer, Redacted, type Schema } from "effect"
import * as Dialect from "../Query/Dialect.js"
import * as Executor from "../Query/Executor.js"
import { type DatabaseError, fromDriver } from "../Query/QueryError.js"
import * as Session from "../Query/Session.js"
import * as SessionClient from "../Query/SessionClient.js"
import type { InvalidEntityError } from "../Schema/EntityError.js"
import type * as EntityModel from "../Schema/EntityModel.js"
import * as EntityRegistry from "../Schema/EntityRegistry.js"
import * as MysqlClientLive from "./internal/mysqlClient.js"

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
}

const clientLayer = (url: DatabaseUrl, maxConnections: number): Layer.Layer<SqlClient.SqlClient, unknown> => {
  switch (url.dialect) {
    case "mysql":
      // Our own client: multiple statements off, every value bound by the server (see its module).
      return MysqlClientLive.layer({
        host: url.host,
        port: url.port,
        database: url.database,
        maxConnections,
        username: url.username,
        password: url.password
      })
    case "pg":
      return PgClient.layer({ url: url.url, maxConnections })
    case "sqlite":
      if (url.filename !== ":memory:") mkdirSync(dirname(url.filename), { recursive: true })
      return SqliteClient.layer({ filename: url.filename })
  }
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
  DatabaseUrlError | DatabaseError | InvalidEntityError
> =>
  Layer.unwrapEffect(
    Effect.map(parseUrl(options.url), (url) => {
      const maxConnections = options.maxConnections ?? 10
      const client = Layer.mapError(clientLayer(url, maxConnections), (e) => fromDriver(e))
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
  DatabaseUrlError | DatabaseError | InvalidEntityError | ConfigError.ConfigError
> =>
  Layer.unwrapEffect(
    Effect.map(
      fallback === undefined
        ? Config.redacted("DATABASE_URL")
        : Config.withDefault(Config.redacted("DATABASE_URL"), Redacted.make(fallback)),
      (url) => layer({ ...options, url })
    )
  )
