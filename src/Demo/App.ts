/**
 * The demo program's two HTTP APIs over the library: the business API (users) and the admin API
 * (health, metrics, cache flush). Handlers are thin: they validate, call the `Users` service and map
 * typed errors to status codes.
 *
 * @since 0.1.0
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Context, Effect, Option, ParseResult, Schema } from "effect"
import * as Metrics from "../Middleware/Metrics.js"
import { ShutdownHooks } from "./ShutdownHooks.js"
import { NewUser, type User, UserPatch } from "./Users.js"

/** What the business API needs from the data layer. @since 0.1.0 @category services */
export interface UsersService {
  readonly create: (input: typeof NewUser.Type) => Effect.Effect<User, unknown>
  readonly get: (id: number) => Effect.Effect<Option.Option<User>, unknown>
  readonly update: (id: number, patch: UserPatch) => Effect.Effect<Option.Option<User>, unknown>
  readonly list: (options: {
    readonly minAge: number
    readonly limit: number
    readonly offset: number
  }) => Effect.Effect<ReadonlyArray<User>, unknown>
  /** Writes every dirty entry of the write-back cache; the number written. */
  readonly flush: Effect.Effect<number, unknown>
}

/** @since 0.1.0 @category services */
export class Users extends Context.Tag("effect-dal/demo/Users")<Users, UsersService>() {}

const json = (status: number, body: unknown) => HttpServerResponse.unsafeJson(body, { status })

/** A 400 naming the first offending field. */
const badInput = (error: ParseResult.ParseError) => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  return json(400, { error: issue?.message ?? error.message, field: issue?.path.join(".") ?? null })
}

/** The email belongs to someone else: a unique violation from the database, or the update path's check. */
const isEmailTaken = (u: unknown) =>
  typeof u === "object" &&
  u !== null &&
  "_tag" in u &&
  (u._tag === "EmailTakenError" || (u._tag === "DatabaseError" && "reason" in u && u.reason === "unique"))

const emailTaken = json(409, { error: "email already taken", field: "email" })

/** Logs an unexpected failure and answers 500 without leaking details. */
const internal = (error: unknown) =>
  Effect.as(Effect.logError("request failed", error), json(500, { error: "internal error" }))

const IdParams = Schema.Struct({ id: Schema.NumberFromString.pipe(Schema.int(), Schema.positive()) })

const Count = (max: number) => Schema.NumberFromString.pipe(Schema.int(), Schema.between(0, max))

const ListParams = Schema.Struct({
  minAge: Schema.optionalWith(Count(150), { default: () => 0 }),
  limit: Schema.optionalWith(Count(100), { default: () => 20 }),
  offset: Schema.optionalWith(Count(1_000_000), { default: () => 0 })
})

const SlowParams = Schema.Struct({ ms: Count(30_000) })

const notFound = json(404, { error: "not found" })

const body = <A, I>(schema: Schema.Schema<A, I>) =>
  Effect.catchTag(HttpServerRequest.schemaBodyJson(schema), "RequestError", () =>
    Effect.fail(
      new ParseResult.ParseError({
        issue: new ParseResult.Type(Schema.Unknown.ast, null, "body is not JSON")
      })
    )
  )

const businessRoutes = HttpRouter.empty.pipe(
  HttpRouter.post(
    "/users",
    Effect.gen(function* () {
      const input = yield* body(NewUser)
      const users = yield* Users
      return yield* Effect.matchEffect(users.create(input), {
        onFailure: (e) => (isEmailTaken(e) ? Effect.succeed(emailTaken) : internal(e)),
        onSuccess: (user) => Effect.succeed(json(201, user))
      })
    }).pipe(Effect.catchTag("ParseError", (e) => Effect.succeed(badInput(e))))
  ),
  HttpRouter.get(
    "/users/:id",
    Effect.gen(function* () {
      const { id } = yield* HttpRouter.schemaPathParams(IdParams)
      const found = yield* Effect.either((yield* Users).get(id))
      if (found._tag === "Left") return yield* internal(found.left)
      return Option.match(found.right, { onNone: () => notFound, onSome: (user) => json(200, user) })
    }).pipe(Effect.catchTag("ParseError", (e) => Effect.succeed(badInput(e))))
  ),
  HttpRouter.put(
    "/users/:id",
    Effect.gen(function* () {
      const { id } = yield* HttpRouter.schemaPathParams(IdParams)
      const patch = yield* body(UserPatch)
      const updated = yield* Effect.either((yield* Users).update(id, patch))
      if (updated._tag === "Left")
        return isEmailTaken(updated.left) ? emailTaken : yield* internal(updated.left)
      return Option.match(updated.right, { onNone: () => notFound, onSome: (user) => json(200, user) })
    }).pipe(Effect.catchTag("ParseError", (e) => Effect.succeed(badInput(e))))
  ),
  HttpRouter.get(
    "/users",
    Effect.gen(function* () {
      const params = yield* HttpServerRequest.schemaSearchParams(ListParams)
      const users = yield* Effect.either((yield* Users).list(params))
      return users._tag === "Left" ? yield* internal(users.left) : json(200, users.right)
    }).pipe(Effect.catchTag("ParseError", (e) => Effect.succeed(badInput(e))))
  ),
  HttpRouter.get(
    "/slow",
    Effect.gen(function* () {
      const { ms } = yield* HttpServerRequest.schemaSearchParams(SlowParams)
      yield* Effect.sleep(ms)
      return json(200, { sleptMs: ms })
    }).pipe(Effect.catchTag("ParseError", (e) => Effect.succeed(badInput(e))))
  )
)

const adminRoutes = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/health",
    Effect.map(
      Effect.flatMap(ShutdownHooks, (hooks) => hooks.isShuttingDown),
      (draining) => (draining ? json(503, { status: "draining" }) : json(200, { status: "ok" }))
    )
  ),
  HttpRouter.get(
    "/metrics",
    Effect.map(Metrics.prometheus, (text) =>
      HttpServerResponse.text(text, { contentType: Metrics.contentType })
    )
  ),
  HttpRouter.post(
    "/cache/flush",
    Effect.flatMap(Users, (users) =>
      Effect.matchEffect(users.flush, {
        onFailure: internal,
        onSuccess: (flushed) => Effect.succeed(json(200, { flushed }))
      })
    )
  )
)

/**
 * The business API: `POST /users`, `GET /users/:id`, `PUT /users/:id`, `GET /users`, `GET /slow`.
 *
 * @since 0.1.0 @category routes
 */
export const business = Effect.catchTag(businessRoutes, "RouteNotFound", () => Effect.succeed(notFound))

/**
 * The admin API: `GET /health`, `GET /metrics` (Prometheus text), `POST /cache/flush`.
 *
 * @since 0.1.0 @category routes
 */
export const admin = Effect.catchTag(adminRoutes, "RouteNotFound", () => Effect.succeed(notFound))
