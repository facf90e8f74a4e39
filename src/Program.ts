/**
 * The demo service (`npm start`): a business API and an admin API over effect-dal, on SQLite and a
 * memory cache by default, on MariaDB/MySQL, PostgreSQL and Redis when `DATABASE_URL` / `REDIS_URL`
 * say so; and a graceful shutdown that never loses an acknowledged write silently.
 *
 * On SIGINT/SIGTERM/SIGHUP: both servers stop accepting at once, requests in flight finish within
 * `SHUTDOWN_TIMEOUT_MS` (then they are cut), the exit hooks run in order (the write-back flush
 * first, retrying a database that is down until `SHUTDOWN_FLUSH_TIMEOUT_MS`), then the database pool
 * and the cache close. Exit 0 when everything acknowledged is stored; 1 when a hook failed (the log
 * names the writes that were not stored). The same signal arriving again within `SIGNAL_WINDOW_MS`
 * is one signal delivered twice (to a process group, and forwarded by npm); a signal after that
 * exits 130 at once, saying what was abandoned.
 *
 * @since 0.1.0
 */
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import * as SqlClient from "@effect/sql/SqlClient"
import { Context, Deferred, Effect, Exit, Fiber, Layer } from "effect"
import * as Api from "./Demo/Api.js"
import * as App from "./Demo/App.js"
import * as Caches from "./Demo/Caches.js"
import * as Config from "./Demo/Config.js"
import * as GracefulServer from "./Demo/GracefulServer.js"
import * as Log from "./Demo/Log.js"
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
  Layer.provide(Database.layerConfig({ fallback: Config.defaultDatabaseUrl })),
  Layer.tap((ctx) => {
    const executor = Context.get(ctx, Executor.Executor)
    return Effect.flatMap(
      Effect.provideService(Users.migrate, SqlClient.SqlClient, executor.session.sql),
      (ran) => Effect.logInfo(`database ${executor.session.label}: ${ran.length} migration(s) applied`)
    )
  })
)

/** Readiness: the database answers, Redis answers when configured, the program is not draining. */
const readiness = Layer.effect(
  App.Readiness,
  Effect.gen(function* () {
    const executor = yield* Executor.Executor
    const cache = yield* Caches.CacheStatus
    const hooks = yield* ShutdownHooks.ShutdownHooks
    const database = Users.ping.pipe(
      Effect.provideService(Executor.Executor, executor),
      Effect.timeout("1 second"),
      Effect.as("ok" as const),
      Effect.orElseSucceed(() => "unreachable" as const)
    )
    return {
      check: Effect.map(
        Effect.all([database, cache.check, hooks.isShuttingDown], { concurrency: "unbounded" }),
        ([database, redis, draining]) => {
          const reasons = [
            ...(database === "ok" ? [] : ["database unreachable"]),
            ...(redis === "unreachable" ? ["redis unreachable (serving from the database, fail-open)"] : []),
            ...(draining ? ["draining: shutting down"] : [])
          ]
          return {
            status: reasons.length === 0 ? ("ready" as const) : ("not ready" as const),
            database,
            redis: redis === "none" ? ("not configured" as const) : redis,
            draining,
            reasons
          }
        }
      )
    }
  })
)

const services = readiness.pipe(
  Layer.provideMerge(Caches.users),
  Layer.provideMerge(database),
  Layer.provideMerge(ChangeFeed.layer),
  Layer.provideMerge(ShutdownHooks.layer),
  Layer.provideMerge(NodeHttpServer.layerContext),
  Layer.provide(lastWord)
)

/** What the shutdown is doing, for the line a forced exit prints. */
let phase = "starting"
/** Set when an exit hook failed: acknowledged writes may not be stored, and the exit code says so. */
let failedHooks = 0
let servers: ReadonlyArray<GracefulServer.RunningServer> = []
let firstSignalAt: number | undefined

/**
 * Installed before anything else and never removed, so no signal ever meets Node's default action:
 * the first SIGINT/SIGTERM is runMain's (it interrupts the main fiber), the first SIGHUP (a closed
 * terminal, which would otherwise kill the process and lose the write-back cache) calls `hangup`,
 * which starts the same shutdown; a repeat within the window is the same signal delivered twice; a
 * later one forces the exit.
 */
const onSignal = (windowMs: number, hangup: () => void) => (signal: NodeJS.Signals) => {
  const now = Date.now()
  if (firstSignalAt === undefined) {
    firstSignalAt = now
    if (signal === "SIGHUP") hangup()
    return
  }
  if (now - firstSignalAt < windowMs) return
  const inFlight = servers.reduce((n, s) => n + s.inFlight(), 0)
  console.error(
    `shutdown: ${signal} again during "${phase}": forcing exit, abandoning ${inFlight} request(s) in flight`
  )
  process.exit(130)
}

const shutdown = (hooks: ShutdownHooks.ShutdownHooksService, timeoutMs: number) =>
  Effect.gen(function* () {
    yield* hooks.begin
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
    const outcomes = yield* hooks.run
    failedHooks = outcomes.filter((o) => o.outcome !== "done").length
    phase = "closing the database and the cache"
    yield* failedHooks === 0
      ? Effect.logInfo("shutdown: exit hooks done; closing the database and the cache")
      : Effect.logError(
          `shutdown: ${failedHooks} exit hook(s) failed; closing the database and the cache, then exiting 1`
        )
  })

const main = (hangup: Deferred.Deferred<void>) =>
  Effect.gen(function* () {
    const config = yield* Config.Http
    const hooks = yield* ShutdownHooks.ShutdownHooks
    const limits = { maxBodyBytes: config.maxBodyBytes }
    const timeouts = {
      headersTimeoutMs: config.headersTimeoutMs,
      requestTimeoutMs: config.requestTimeoutMs,
      keepAliveTimeoutMs: config.keepAliveTimeoutMs,
      maxConnections: config.maxConnections
    }
    const businessApp = yield* App.make("business", Api.BusinessApi, App.businessHandlers, {
      ...limits,
      docs: true
    })
    const adminApp = yield* App.make("admin", Api.AdminApi, App.adminHandlers(config.adminToken), {
      ...limits,
      docs: false
    })
    const business = yield* GracefulServer.serve(
      "business",
      { host: config.host, port: config.port, ...timeouts },
      businessApp
    )
    const admin = yield* GracefulServer.serve(
      "admin",
      { host: config.adminHost, port: config.adminPort, ...timeouts },
      adminApp
    )
    servers = [business, admin]
    yield* Effect.logInfo(
      `listening: business http://${config.host}:${business.port} admin http://${config.adminHost}:${admin.port}`
    )
    phase = "serving"
    // An interruption handler runs uninterruptibly, where no timeout can cut anything: the shutdown
    // runs in a fiber of its own (which nothing interrupts), interruptible, and the handler waits for it.
    const stop = Effect.flatMap(
      Effect.forkDaemon(Effect.interruptible(shutdown(hooks, config.shutdownTimeoutMs))),
      Fiber.join
    )
    // A SIGHUP completes `hangup`: the same shutdown, which a later SIGINT/SIGTERM cannot cut short.
    return yield* Effect.onInterrupt(Deferred.await(hangup), () => stop).pipe(
      Effect.zipRight(Effect.uninterruptible(stop))
    )
  })

const program = Effect.gen(function* () {
  const { signalWindowMs } = yield* Config.Http
  const hangup = yield* Deferred.make<void>()
  const handler = onSignal(signalWindowMs, () => Deferred.unsafeDone(hangup, Exit.void))
  process.on("SIGINT", handler)
  process.on("SIGTERM", handler)
  process.on("SIGHUP", handler)
  return yield* main(hangup).pipe(Effect.scoped, Effect.provide(services))
}).pipe(Effect.provide(Log.layer(10_000)))

NodeRuntime.runMain(program, {
  disablePrettyLogger: true,
  teardown: (exit, onExit) =>
    onExit(failedHooks > 0 ? 1 : Exit.isFailure(exit) && !Exit.isInterrupted(exit) ? 1 : 0)
})
