/**
 * The demo program's HTTP apps: the handlers of the two `HttpApi`s (src/Demo/Api.ts) and what wraps
 * every request before it reaches them.
 *
 * Around each API (outermost first): a request id (the client's `x-request-id` when it is a short
 * token, else a new one; echoed in the response and annotated on every log line and on the request's
 * span), 404 for unknown paths and 405 with `Allow` for a known path with another method, a JSON 500
 * for a defect, one log line per failed (5xx) request, and the HTTP metrics (count and latency by
 * server, method, route and status). Inside the API, before any handler: bodies only as
 * `application/json` (415), at most `MAX_BODY_BYTES` (413, read no further, connection closed),
 * well-formed UTF-8 and JSON nested at most 32 deep (400); and 400 bodies cut to a few hundred bytes.
 *
 * @since 0.1.0
 */
import { createHash, timingSafeEqual } from "node:crypto"
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { HttpApiDecodeError } from "@effect/platform/HttpApiError"
import type * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSwagger from "@effect/platform/HttpApiSwagger"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpMethod from "@effect/platform/HttpMethod"
import type * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import {
  Cause,
  Context,
  Effect,
  Layer,
  Metric,
  MetricBoundaries,
  MetricLabel,
  Option,
  Redacted,
  type Scope
} from "effect"
import * as Metrics from "../Middleware/Metrics.js"
import * as Api from "./Api.js"
import * as Log from "./Log.js"
import { Users } from "./Users.js"

/** What readiness reports; the program builds it from the database, the cache and the shutdown state. @since 0.1.0 @category services */
export class Readiness extends Context.Tag("effect-dal/demo/Readiness")<
  Readiness,
  { readonly check: Effect.Effect<typeof Api.Readiness.Type> }
>() {}

/** The limits the request guard enforces. @since 0.1.0 @category models */
export interface Limits {
  readonly maxBodyBytes: number
}

/** Deepest JSON nesting accepted in a body. @since 0.1.0 @category limits */
export const maxJsonDepth = 32

const ready = Effect.flatMap(Readiness, (r) => r.check)

const readinessOrFail = Effect.flatMap(ready, (readiness) =>
  readiness.status === "ready" ? Effect.succeed(readiness) : Effect.fail(new Api.NotReady({ readiness }))
)

const healthHandlers = {
  live: () => Effect.succeed({ status: "ok" as const }),
  ready: () => readinessOrFail,
  health: () => readinessOrFail
}

/** The business API's handlers. @since 0.1.0 @category layers */
export const businessHandlers = Layer.mergeAll(
  HttpApiBuilder.group(Api.BusinessApi, "users", (handlers) =>
    handlers
      .handle("create", ({ payload }) => Effect.flatMap(Users, (users) => users.create(payload)))
      .handle("get", ({ path }) => Effect.flatMap(Users, (users) => users.get(path.id)))
      .handle("update", ({ path, payload }) =>
        Effect.flatMap(Users, (users) => users.update(path.id, payload))
      )
      .handle("list", ({ urlParams }) => Effect.flatMap(Users, (users) => users.list(urlParams)))
  ),
  HttpApiBuilder.group(Api.BusinessApi, "slow", (handlers) =>
    handlers.handle("slow", ({ urlParams }) =>
      Effect.as(Effect.sleep(urlParams.ms), { sleptMs: urlParams.ms })
    )
  ),
  HttpApiBuilder.group(Api.BusinessApi, "health", (handlers) =>
    handlers
      .handle("live", healthHandlers.live)
      .handle("ready", healthHandlers.ready)
      .handle("health", healthHandlers.health)
  )
)

/** Compared in constant time over digests of equal length, so neither the content nor the length leaks. */
const sameToken = (presented: string, expected: string) =>
  timingSafeEqual(
    createHash("sha256").update(presented).digest(),
    createHash("sha256").update(expected).digest()
  )

/**
 * The admin API's handlers; `token` guards `POST /cache/flush` (none: any caller on the admin host).
 *
 * @since 0.1.0 @category layers
 */
export const adminHandlers = (token: Option.Option<Redacted.Redacted>) =>
  Layer.mergeAll(
    HttpApiBuilder.group(Api.AdminApi, "admin", (handlers) =>
      handlers
        .handle("metrics", () => Metrics.prometheus)
        .handle("flush", () => Effect.flatMap(Users, (users) => users.flush))
    ),
    HttpApiBuilder.group(Api.AdminApi, "health", (handlers) =>
      handlers
        .handle("live", healthHandlers.live)
        .handle("ready", healthHandlers.ready)
        .handle("health", healthHandlers.health)
    )
  ).pipe(
    Layer.provide(
      Layer.succeed(Api.AdminAuth, {
        bearer: (presented) =>
          Option.isNone(token) || sameToken(Redacted.value(presented), Redacted.value(token.value))
            ? Effect.void
            : Effect.fail(new Api.Unauthorized())
      })
    )
  )

/** The deepest nesting of arrays and objects in JSON text (strings skipped), stopping past `limit`. */
export const jsonDepth = (text: string, limit: number): number => {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92) i++
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 91 || c === 123) {
      depth++
      if (depth > deepest) {
        deepest = depth
        if (deepest > limit) return deepest
      }
    } else if (c === 93 || c === 125) depth--
  }
  return deepest
}

const decodeError = (message: string) => new HttpApiDecodeError({ issues: [], message })

const clip = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max)}…`)

/** A 400 that names the fields and rules, never echoing more than a few hundred bytes of input. */
const shorten = (error: HttpApiDecodeError) => {
  const issues = error.issues.slice(0, 5).map((issue) => ({ ...issue, message: clip(issue.message, 160) }))
  const summary = issues.map((i) => `${i.path.length > 0 ? i.path.join(".") : "body"}: ${i.message}`)
  return new HttpApiDecodeError({
    issues,
    message: clip(summary.length > 0 ? summary.join("; ") : error.message, 400)
  })
}

/** Reads at most `max` bytes of the request body; past that it stops reading and says so. */
const readBody = (request: HttpServerRequest.HttpServerRequest, max: number) =>
  Effect.async<Buffer | "too large", HttpApiDecodeError>((resume) => {
    const source = NodeHttpServerRequest.toIncomingMessage(request)
    const chunks: Array<Buffer> = []
    let size = 0
    const cleanup = () => {
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("error", onError)
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > max) {
        cleanup()
        source.pause()
        resume(Effect.succeed("too large"))
      } else chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      resume(Effect.succeed(Buffer.concat(chunks)))
    }
    const onError = () => {
      cleanup()
      resume(Effect.fail(decodeError("the body could not be read")))
    }
    source.on("data", onData)
    source.once("end", onEnd)
    source.once("error", onError)
    return Effect.sync(cleanup)
  })

const utf8 = new TextDecoder("utf-8", { fatal: true })

/** The request with its body already read: what the API's payload decoding sees. */
const withBody = (request: HttpServerRequest.HttpServerRequest, text: string, json: unknown) =>
  new Proxy(request, {
    get: (target, key) =>
      key === "text"
        ? Effect.succeed(text)
        : key === "json"
          ? Effect.succeed(json)
          : Reflect.get(target, key, target)
  })

/**
 * `application/json` (any case), with no charset or `utf-8`, and no content coding but `identity`:
 * the body is decoded as UTF-8 and never decompressed, so anything else is refused rather than misread.
 */
const isJson = (contentType: string, contentEncoding: string | undefined) => {
  const [type, ...parameters] = contentType.split(";").map((part) => part.trim().toLowerCase())
  const charsets = parameters
    .filter((p) => p.startsWith("charset="))
    .map((p) => p.slice("charset=".length).replace(/^"(.*)"$/, "$1"))
  return (
    type === "application/json" &&
    charsets.every((c) => c === "utf-8" || c === "utf8") &&
    (contentEncoding === undefined || contentEncoding.trim().toLowerCase() === "identity")
  )
}

type ApiErrors = HttpApiDecodeError | Api.PayloadTooLarge | Api.UnsupportedMediaType

/** The API-level guard: content type, size, encoding and depth of bodies; short 400s. */
const guard =
  (limits: Limits) =>
  (app: HttpApp.Default): HttpApp.Default<ApiErrors> =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const length = request.headers["content-length"]
      const contentType = request.headers["content-type"]
      const hasBody =
        request.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0")
      // A declared type is checked even on an empty body: an empty form is not an empty JSON patch.
      if (!HttpMethod.hasBody(request.method) || (!hasBody && contentType === undefined)) return yield* app
      if (!isJson(contentType ?? "", request.headers["content-encoding"])) {
        return yield* new Api.UnsupportedMediaType({ expected: "application/json" })
      }
      if (length !== undefined && !(Number(length) <= limits.maxBodyBytes)) {
        return yield* new Api.PayloadTooLarge({ maxBytes: limits.maxBodyBytes })
      }
      const body = yield* readBody(request, limits.maxBodyBytes)
      if (body === "too large") return yield* new Api.PayloadTooLarge({ maxBytes: limits.maxBodyBytes })
      let text: string
      try {
        text = utf8.decode(body)
      } catch {
        return yield* decodeError("the body is not UTF-8")
      }
      if (jsonDepth(text, maxJsonDepth) > maxJsonDepth) {
        return yield* decodeError(`JSON nested deeper than ${maxJsonDepth} levels`)
      }
      let json: unknown
      try {
        json = text === "" ? null : JSON.parse(text)
      } catch {
        return yield* decodeError("the body is not valid JSON")
      }
      return yield* Effect.provideService(
        app,
        HttpServerRequest.HttpServerRequest,
        withBody(request, text, json)
      )
    }).pipe(
      Effect.catchAllCause((cause) => {
        const failure = Cause.failureOption(cause)
        return Option.isSome(failure) && failure.value instanceof HttpApiDecodeError
          ? Effect.fail(shorten(failure.value))
          : Effect.failCause(cause)
      })
    )

/** A route of an API, as a pattern over path segments (`:name` matches one segment). */
interface Route {
  readonly method: string
  readonly path: string
  readonly segments: ReadonlyArray<string>
}

const routesOf = <Id extends string, Groups extends HttpApiGroup.HttpApiGroup.Any, E, R>(
  api: HttpApi.HttpApi<Id, Groups, E, R>,
  extra: ReadonlyArray<string>
): ReadonlyArray<Route> => {
  const routes: Array<Route> = []
  const add = (method: string, path: string) => routes.push({ method, path, segments: path.split("/") })
  HttpApi.reflect(api, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) => add(endpoint.method, endpoint.path)
  })
  for (const path of extra) add("GET", path)
  return routes
}

const matches = (route: Route, segments: ReadonlyArray<string>) =>
  route.segments.length === segments.length &&
  route.segments.every((s, i) => (s.startsWith(":") ? segments[i] !== "" : s === segments[i]))

/** HTTP requests, by server, method, route and status. @since 0.1.0 @category metrics */
export const requests = Metric.counter("effect_dal_http_requests_total", {
  description: "HTTP requests answered, by server, method, route and status"
})

/** HTTP request latency, by server, method, route and status. @since 0.1.0 @category metrics */
export const latency = Metric.histogram(
  "effect_dal_http_request_duration_seconds",
  MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 15 }),
  "HTTP request latency in seconds, by server, method, route and status"
)

/** Requests being answered now, by server. @since 0.1.0 @category metrics */
export const inFlight = Metric.gauge("effect_dal_http_requests_in_flight", {
  description: "HTTP requests being answered now, by server"
})

const tagsOf = (tags: Record<string, string>) =>
  Object.entries(tags).map(([key, value]) => MetricLabel.make(key, value))

/** The methods a path answers: its routes', HEAD wherever GET is, and OPTIONS. */
const allowed = (candidates: ReadonlyArray<Route>) => {
  const methods = [...new Set(candidates.map((r) => r.method))]
  return [...methods.flatMap((m) => (m === "GET" ? ["GET", "HEAD"] : [m])), "OPTIONS"]
}

/** The request as GET, for HEAD: the router and the API see a GET. */
const asGet = (request: HttpServerRequest.HttpServerRequest) =>
  new Proxy(request, {
    get: (target, key) => (key === "method" ? "GET" : Reflect.get(target, key, target))
  })

const requestIdPattern = /^[A-Za-z0-9._-]{1,64}$/

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson(body, { status, headers })

/**
 * Wraps an API's app with the request id, 404/405, the 500 of defects, the failure log line and the metrics.
 */
const observe =
  (server: string, routes: ReadonlyArray<Route>) =>
  <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<never, R> => {
    const handle = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const started = performance.now()
      const given = request.headers["x-request-id"]
      const requestId = given !== undefined && requestIdPattern.test(given) ? given : crypto.randomUUID()
      const segments = (request.url.split("?", 1)[0] ?? "").split("/")
      const candidates = routes.filter((r) => matches(r, segments))
      // HEAD is GET without the body (Node drops the body of a response to HEAD).
      const method = request.method === "HEAD" ? "GET" : request.method
      const route = candidates.find((r) => r.method === method)
      const label = route?.path ?? (candidates[0]?.path || "unmatched")
      const allow = allowed(candidates)
      yield* Effect.annotateCurrentSpan({ "http.route": label, "request.id": requestId })
      // The router would read `/users/1;x` as `/users/1`: no route has a `;`, so none is accepted.
      const response = yield* (
        segments.some((s) => s.includes(";"))
          ? Effect.succeed(
              json(400, { _tag: "HttpApiDecodeError", issues: [], message: "';' is not allowed in a path" })
            )
          : route !== undefined
            ? method === request.method
              ? app
              : Effect.provideService(app, HttpServerRequest.HttpServerRequest, asGet(request))
            : candidates.length === 0
              ? Effect.succeed(json(404, { _tag: "RouteNotFound" }))
              : request.method === "OPTIONS"
                ? Effect.succeed(
                    HttpServerResponse.empty({ status: 204, headers: { allow: allow.join(", ") } })
                  )
                : Effect.succeed(json(405, { _tag: "MethodNotAllowed", allow }, { allow: allow.join(", ") }))
      ).pipe(
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause)
            ? Effect.failCause(cause)
            : Effect.as(
                Effect.logError("request died", cause),
                json(500, { _tag: "InternalError", requestId })
              )
        ),
        Effect.annotateLogs("requestId", requestId)
      )
      const status = String(response.status)
      if (response.status >= 500) {
        yield* Effect.logError(`request failed: ${request.method} ${label} -> ${status}`).pipe(
          Effect.annotateLogs({ requestId, [Log.requestAnnotation]: true })
        )
      }
      const tags = { server, method: request.method, route: label, status }
      yield* Metric.increment(Metric.taggedWithLabels(requests, tagsOf(tags)))
      yield* Metric.update(
        Metric.taggedWithLabels(latency, tagsOf(tags)),
        (performance.now() - started) / 1000
      )
      const withId = HttpServerResponse.setHeader(response, "x-request-id", requestId)
      // The unread rest of a refused body is not worth reading: close the connection after the 413.
      return response.status === 413 ? HttpServerResponse.setHeader(withId, "connection", "close") : withId
    })
    const gauge = Metric.tagged(inFlight, "server", server)
    return Effect.zipRight(
      Metric.incrementBy(gauge, 1),
      Effect.ensuring(handle, Metric.incrementBy(gauge, -1))
    ) as HttpApp.Default<never, R>
  }

/**
 * Builds the app of `api` with its `handlers` (plus, when asked, `/openapi.json` and Swagger UI at
 * `/docs`), wrapped as described above.
 *
 * @since 0.1.0 @category constructors
 */
export const make = <Id extends string, Groups extends HttpApiGroup.HttpApiGroup.Any, E, R, HE, HR>(
  server: string,
  api: HttpApi.HttpApi<Id, Groups, E, R>,
  handlers: Layer.Layer<HttpApiGroup.HttpApiGroup.ToService<Id, Groups>, HE, HR>,
  options: Limits & { readonly docs: boolean }
): Effect.Effect<
  HttpApp.Default<never, HttpRouter.HttpRouter.DefaultServices>,
  HE,
  Exclude<HR, HttpApiBuilder.Router | HttpApiBuilder.Middleware> | Scope.Scope
> =>
  Effect.gen(function* () {
    const apiLayer = HttpApiBuilder.api(api).pipe(Layer.provide(handlers)) as Layer.Layer<
      HttpApi.Api,
      HE,
      HR | HttpApiBuilder.Router
    >
    const docs = options.docs
      ? Layer.merge(
          HttpApiSwagger.layer({ path: "/docs" }),
          HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })
        )
      : Layer.empty
    const all = Layer.mergeAll(
      docs,
      HttpApiBuilder.middleware(guard(options) as HttpApiBuilder.MiddlewareFn<never>)
    ).pipe(
      Layer.provideMerge(apiLayer),
      Layer.provideMerge(Layer.merge(HttpApiBuilder.Router.Live, HttpApiBuilder.Middleware.layer))
    )
    const context = yield* Layer.build(all)
    const app = yield* Effect.provide(HttpApiBuilder.httpApp, context)
    return observe(server, routesOf(api, options.docs ? ["/docs", "/openapi.json"] : []))(app)
  })
