/**
 * The demo service (`npm start`): a business API and an admin API over effect-dal, on SQLite and a
 * memory cache by default, on MariaDB/MySQL, PostgreSQL and Redis when `DATABASE_URL` / `REDIS_URL`
 * say so; and a graceful shutdown that loses nothing.
 *
 * On SIGINT/SIGTERM: both servers stop accepting at once, requests in flight finish within
 * `SHUTDOWN_TIMEOUT_MS` (then they are cut), the exit hooks run in order (the write-back flush
 * first), then the database pool and the cache close and the process exits 0. A second signal
 * exits 130 at once, saying what was abandoned.
 *
 * @since 0.1.0
 */
import { NodeRuntime } from "@effect/platform-node"
import * as SqlClient from "@effect/sql/SqlClient"
import { Config, Context, Effect, Layer } from "effect"
import * as App from "./Demo/App.js"
import * as Caches from "./Demo/Caches.js"
import * as GracefulServer from "./Demo/GracefulServer.js"
import * as ShutdownHooks from "./Demo/ShutdownHooks.js"
import * as Users from "./Demo/Users.js"
import * as Database from "./Layers/Database.js"
import * as ChangeCapture from "./Middleware/ChangeCapture.js"
import * as Metrics from "./Middleware/Metrics.js"
import * as SafeDml from "./Middleware/SafeDml.js"
import * as SlowQuery from "./Middleware/SlowQuery.js"
import * as Timeout from "./Middleware/Timeout.js"
import * as ChangeFeed from "./Query/ChangeFeed.js"
import * as Executor from "./Query/Executor.js"

/** A TCP port; 0 asks the system for a free one (the log line says which). */
const port = (name: string, fallback: number) =>
  Config.withDefault(
    Config.validate(Config.integer(name), {
      message: "Expected a port number from 0 to 65535",
      validation: (n) => n >= 0 && n <= 65_535
    }),
    fallback
  )

const AppConfig = Config.all({
  host: Config.withDefault(Config.string("HOST"), "127.0.0.1"),
  port: port("PORT", 8080),
  adminPort: port("ADMIN_PORT", 8081),
  shutdownTimeoutMs: Config.withDefault(Config.integer("SHUTDOWN_TIMEOUT_MS"), 10_000)
})

/** Logged last, once every other resource has been released. */
const lastWord = Layer.scopedDiscard(
  Effect.addFinalizer(() => Effect.logInfo("shutdown: database and cache closed"))
)

/** The database, with the middleware the demo runs every query through, and its schema in place. */
const database = ChangeCapture.layer.pipe(
  Layer.provide(
    Executor.layerMiddleware(
      Metrics.make,
      SlowQuery.make({ threshold: "250 millis" }),
      SafeDml.make,
      Timeout.make("5 seconds")
    )
  ),
  Layer.provide(Database.layerConfig({ fallback: "sqlite:data/app.db" })),
  Layer.tap((ctx) => {
    const executor = Context.get(ctx, Executor.Executor)
    return Effect.flatMap(
      Effect.provideService(Users.migrate, SqlClient.SqlClient, executor.session.sql),
      (ran) => Effect.logInfo(`database ${executor.session.label}: ${ran.length} migration(s) applied`)
    )
  })
)

const services = Caches.users.pipe(
  Layer.provideMerge(database),
  Layer.provideMerge(ChangeFeed.layer),
  Layer.provideMerge(ShutdownHooks.layer),
  Layer.provide(lastWord)
)

/** What the shutdown is doing, for the line a forced exit prints. */
let phase = "starting"

const shutdown = (
  hooks: ShutdownHooks.ShutdownHooksService,
  servers: ReadonlyArray<GracefulServer.RunningServer>,
  timeoutMs: number
) =>
  Effect.gen(function* () {
    yield* hooks.begin
    const force = (signal: string) => {
      const inFlight = servers.reduce((n, s) => n + s.inFlight(), 0)
      console.error(
        `shutdown: ${signal} again during "${phase}": forcing exit, abandoning ${inFlight} request(s) in flight`
      )
      process.exit(130)
    }
    process.once("SIGINT", () => force("SIGINT"))
    process.once("SIGTERM", () => force("SIGTERM"))
    phase = "refusing new connections"
    yield* Effect.forEach(servers, (s) => s.stopAccepting, { discard: true })
    const inFlight = servers.reduce((n, s) => n + s.inFlight(), 0)
    yield* Effect.logInfo(
      `shutdown: signal received; new connections refused, ${inFlight} request(s) in flight`
    )
    phase = "draining requests"
    const drained = yield* Effect.forEach(servers, (s) => s.drain(timeoutMs), { concurrency: "unbounded" })
    const abandoned = drained.reduce((n, d) => n + d.abandoned, 0)
    yield* abandoned === 0
      ? Effect.logInfo("shutdown: every request in flight finished")
      : Effect.logWarning(
          `shutdown: ${abandoned} request(s) still running after ${timeoutMs} ms were interrupted`
        )
    phase = "running exit hooks"
    yield* hooks.run
    phase = "closing the database and the cache"
    yield* Effect.logInfo("shutdown: exit hooks done; closing the database and the cache")
  })

const main = Effect.gen(function* () {
  const config = yield* AppConfig
  const hooks = yield* ShutdownHooks.ShutdownHooks
  const business = yield* GracefulServer.serve(
    "business",
    { host: config.host, port: config.port },
    App.business
  )
  const admin = yield* GracefulServer.serve("admin", { host: config.host, port: config.adminPort }, App.admin)
  yield* Effect.logInfo(
    `listening: business http://${config.host}:${business.port} admin http://${config.host}:${admin.port}`
  )
  phase = "serving"
  return yield* Effect.onInterrupt(Effect.never, () =>
    shutdown(hooks, [business, admin], config.shutdownTimeoutMs)
  )
})

NodeRuntime.runMain(main.pipe(Effect.scoped, Effect.provide(services)))
