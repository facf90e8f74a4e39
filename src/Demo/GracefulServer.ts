/**
 * An HTTP server that can stop in two steps, which `NodeHttpServer`'s finalizer cannot: first stop
 * accepting (new connections are refused, keep-alive connections close after their current
 * response), then drain the requests in flight within a deadline, closing whatever is left after it.
 *
 * @since 0.1.0
 */
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import type * as HttpApp from "@effect/platform/HttpApp"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { NodeHttpServer } from "@effect/platform-node"
import { Data, Duration, Effect, type Scope } from "effect"

/** The server could not listen. @since 0.1.0 @category errors */
export class ListenError extends Data.TaggedError("ListenError")<{
  readonly name: string
  readonly cause: unknown
}> {
  override get message() {
    return `${this.name} server could not listen: ${String(this.cause)}`
  }
}

/** @since 0.1.0 @category models */
export interface RunningServer {
  readonly name: string
  readonly port: number
  readonly inFlight: () => number
  /** Stops listening at once; responses still being written go out with `Connection: close`. */
  readonly stopAccepting: Effect.Effect<void>
  /** Waits for the requests in flight, up to `timeout`; then closes every connection and reports how many were cut. */
  readonly drain: (timeout: Duration.DurationInput) => Effect.Effect<{ readonly abandoned: number }>
}

/**
 * Where to listen, and the limits that keep slow or greedy clients from holding the server: Node's
 * `headersTimeout` (the request line and headers), `requestTimeout` (the whole request, body
 * included), `keepAliveTimeout` (an idle connection) and `maxConnections` (beyond it new connections
 * are closed at once).
 *
 * @since 0.1.0 @category models
 */
export interface Options {
  readonly host: string
  readonly port: number
  readonly headersTimeoutMs?: number
  readonly requestTimeoutMs?: number
  readonly keepAliveTimeoutMs?: number
  readonly maxConnections?: number
}

/**
 * Serves `app` on `host:port` (port 0 picks a free one) until the scope closes or `stopAccepting` is called.
 *
 * @since 0.1.0 @category constructors
 */
export const serve = <E, R>(
  name: string,
  address: Options,
  app: HttpApp.Default<E, R>
): Effect.Effect<
  RunningServer,
  ListenError,
  Exclude<R, HttpServerRequest.HttpServerRequest | Scope.Scope> | Scope.Scope
> =>
  Effect.gen(function* () {
    const handler = yield* NodeHttpServer.makeHandler(app)
    const open = new Set<Http.ServerResponse>()
    let accepting = true
    // Node checks the header and request timeouts on this interval (30 s by default): check every second.
    const server = Http.createServer({ connectionsCheckingInterval: 1_000 }, (req, res) => {
      open.add(res)
      res.once("close", () => open.delete(res))
      if (!accepting) res.shouldKeepAlive = false
      handler(req, res)
    })
    if (address.headersTimeoutMs !== undefined) server.headersTimeout = address.headersTimeoutMs
    if (address.requestTimeoutMs !== undefined) server.requestTimeout = address.requestTimeoutMs
    if (address.keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = address.keepAliveTimeoutMs
    if (address.maxConnections !== undefined) server.maxConnections = address.maxConnections
    yield* Effect.acquireRelease(
      Effect.async<void, ListenError>((resume) => {
        server.once("error", (cause) => resume(Effect.fail(new ListenError({ name, cause }))))
        server.listen(address.port, address.host, () => resume(Effect.void))
      }),
      () => Effect.sync(() => server.closeAllConnections())
    )
    const stopAccepting = Effect.sync(() => {
      if (!accepting) return
      accepting = false
      for (const res of open) res.shouldKeepAlive = false
      // Stops listening; Node 20 also closes the idle keep-alive connections.
      server.close()
    })
    const drain = (timeout: Duration.DurationInput) =>
      Effect.gen(function* () {
        const deadline = Date.now() + Duration.toMillis(timeout)
        while (open.size > 0 && Date.now() < deadline) yield* Effect.sleep("20 millis")
        const abandoned = open.size
        server.closeAllConnections()
        return { abandoned }
      })
    return {
      name,
      port: (server.address() as AddressInfo).port,
      inFlight: () => open.size,
      stopAccepting,
      drain
    }
  })
