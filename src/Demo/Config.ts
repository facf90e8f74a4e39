/**
 * Every setting of the demo program, read from the environment (docs/Program.md lists them).
 *
 * @since 0.1.0
 */
import { isIPv4 } from "node:net"
import { Config, Redacted } from "effect"

/** Where the demo keeps its data when `DATABASE_URL` is unset. @since 0.1.0 @category config */
export const defaultDatabaseUrl = "sqlite:data/app.db"

/** A TCP port; 0 asks the system for a free one (the log line says which). */
const port = (name: string, fallback: number) =>
  Config.withDefault(
    Config.validate(Config.integer(name), {
      message: "Expected a port number from 0 to 65535",
      validation: (n) => n >= 0 && n <= 65_535
    }),
    fallback
  )

const positive = (name: string, fallback: number) =>
  Config.withDefault(
    Config.validate(Config.integer(name), {
      message: "Expected a positive integer",
      validation: (n) => n > 0
    }),
    fallback
  )

/** `localhost`, `::1` or an IPv4 address in 127.0.0.0/8; a DNS name such as `127.0.0.1.nip.io` is not. */
const loopback = (host: string) =>
  host === "localhost" || host === "::1" || (isIPv4(host) && host.startsWith("127."))

/**
 * The HTTP side: addresses, the admin token, the limits on requests and the shutdown budget.
 *
 * @since 0.1.0 @category config
 */
export const Http = Config.all({
  host: Config.withDefault(Config.string("HOST"), "127.0.0.1"),
  port: port("PORT", 8080),
  adminHost: Config.withDefault(Config.string("ADMIN_HOST"), "127.0.0.1"),
  adminPort: port("ADMIN_PORT", 8081),
  /** An empty or blank token is refused: it would admit a request with an empty bearer. */
  adminToken: Config.option(
    Config.validate(Config.redacted("ADMIN_TOKEN"), {
      message: "ADMIN_TOKEN must not be empty",
      validation: (token) => Redacted.value(token).trim() !== ""
    })
  ),
  /** Largest request body read (413 above it). */
  maxBodyBytes: positive("MAX_BODY_BYTES", 1024 * 1024),
  /** Time for a request's headers to arrive (Node `headersTimeout`). */
  headersTimeoutMs: positive("HEADERS_TIMEOUT_MS", 10_000),
  /** Time for a whole request, body included, to arrive (Node `requestTimeout`). */
  requestTimeoutMs: positive("REQUEST_TIMEOUT_MS", 30_000),
  /** How long an idle keep-alive connection stays open. */
  keepAliveTimeoutMs: positive("KEEP_ALIVE_TIMEOUT_MS", 5_000),
  /** Open connections per server; more are closed at once. */
  maxConnections: positive("MAX_CONNECTIONS", 1_000),
  /** How long requests in flight may run after a signal. */
  shutdownTimeoutMs: positive("SHUTDOWN_TIMEOUT_MS", 10_000),
  /** A second signal within this window is the same signal delivered twice (a process group). */
  signalWindowMs: positive("SIGNAL_WINDOW_MS", 1_000)
}).pipe(
  Config.validate({
    message: "ADMIN_TOKEN is required when ADMIN_HOST is not a loopback address",
    validation: (c) => loopback(c.adminHost) || c.adminToken._tag === "Some"
  })
)

/**
 * The caches: Redis (optional), the namespace of its keys, TTLs and the write-back flush budget.
 *
 * @since 0.1.0 @category config
 */
export const Caches = Config.all({
  redisUrl: Config.option(Config.redacted("REDIS_URL")),
  /** Prefix of every Redis key; default: derived from the database, so two databases never share keys. */
  namespace: Config.option(Config.string("CACHE_NAMESPACE")),
  maxEntries: positive("CACHE_MAX_ENTRIES", 50_000),
  /** TTL of every cached user: a row changed by another writer is seen after at most this long. */
  ttlMs: positive("CACHE_TTL_MS", 30_000),
  /** Where writes the database refused wait to be written again on the next start. */
  deadLetterFile: Config.option(Config.string("DEAD_LETTER_FILE")),
  /** How long the shutdown flush of the write-back cache keeps retrying a database that is down. */
  flushTimeoutMs: positive("SHUTDOWN_FLUSH_TIMEOUT_MS", 30_000),
  /** Follow the database's change log (`CDC=1`): committed changes drop the cached users they touch. */
  cdc: Config.withDefault(Config.boolean("CDC"), false)
})
