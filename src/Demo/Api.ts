/**
 * The demo's two HTTP APIs described with @effect/platform's `HttpApi`: every path, query, body and
 * response has a schema, every typed error its status. The business API is served with its OpenAPI
 * document (`/openapi.json`) and Swagger UI (`/docs`); the admin API carries the bearer-protected
 * cache flush and the metrics.
 *
 * @since 0.1.0
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { EmailTaken, FlushReport, NewUser, Unavailable, User, UserNotFound, UserPatch } from "./Users.js"

/** A strict decimal integer from `min` to `max`: no sign, exponent, hex, spaces or leading zeros. */
const Decimal = (min: number, max: number) =>
  Schema.compose(
    Schema.String.pipe(
      Schema.pattern(/^(0|[1-9][0-9]{0,9})$/, { message: () => "a decimal integer (digits only)" })
    ),
    Schema.NumberFromString
  ).pipe(Schema.between(min, max, { message: () => `an integer from ${min} to ${max}` }))

/** A user id in a path: 1 to 2^31-1 (the column is a 32-bit INT). @since 0.1.0 @category schemas */
export const UserId = Decimal(1, 2_147_483_647)

/** @since 0.1.0 @category schemas */
export const IdPath = Schema.Struct({ id: UserId })

/** @since 0.1.0 @category schemas */
export const ListQuery = Schema.Struct({
  minAge: Schema.optionalWith(Decimal(0, 150), { exact: true, default: () => 0 }),
  limit: Schema.optionalWith(Decimal(0, 100), { exact: true, default: () => 20 }),
  offset: Schema.optionalWith(Decimal(0, 1_000_000), { exact: true, default: () => 0 })
})

/** The request body exceeds `MAX_BODY_BYTES`. @since 0.1.0 @category errors */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()(
  "PayloadTooLarge",
  { maxBytes: Schema.Number },
  HttpApiSchema.annotations({ status: 413, description: "The body exceeds MAX_BODY_BYTES" })
) {}

/** The body is not `application/json`. @since 0.1.0 @category errors */
export class UnsupportedMediaType extends Schema.TaggedError<UnsupportedMediaType>()(
  "UnsupportedMediaType",
  { expected: Schema.Literal("application/json") },
  HttpApiSchema.annotations({ status: 415, description: "Bodies must be application/json" })
) {}

/** The bearer token is missing or wrong. @since 0.1.0 @category errors */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()(
  "Unauthorized",
  {},
  HttpApiSchema.annotations({ status: 401, description: "Missing or wrong bearer token (ADMIN_TOKEN)" })
) {}

/** Readiness: the checks and why the service is not ready. @since 0.1.0 @category schemas */
export const Readiness = Schema.Struct({
  status: Schema.Literal("ready", "not ready"),
  database: Schema.Literal("ok", "unreachable"),
  redis: Schema.Literal("ok", "unreachable", "not configured"),
  draining: Schema.Boolean,
  reasons: Schema.Array(Schema.String)
}).annotations({ identifier: "Readiness" })

/** Not ready: the same body with status 503. @since 0.1.0 @category errors */
export class NotReady extends Schema.TaggedError<NotReady>()(
  "NotReady",
  { readiness: Readiness },
  HttpApiSchema.annotations({ status: 503, description: "A dependency is down or the service is draining" })
) {}

/** Liveness, readiness, and `/health` (= readiness). @since 0.1.0 @category groups */
export class Health extends HttpApiGroup.make("health")
  .add(
    HttpApiEndpoint.get("live", "/health/live").addSuccess(Schema.Struct({ status: Schema.Literal("ok") }))
  )
  .add(HttpApiEndpoint.get("ready", "/health/ready").addSuccess(Readiness).addError(NotReady))
  .add(HttpApiEndpoint.get("health", "/health").addSuccess(Readiness).addError(NotReady)) {}

/** The users resource. @since 0.1.0 @category groups */
export class UsersGroup extends HttpApiGroup.make("users")
  .add(
    HttpApiEndpoint.post("create", "/users")
      .setPayload(NewUser)
      .addSuccess(User, { status: 201 })
      .addError(EmailTaken)
  )
  .add(HttpApiEndpoint.get("get", "/users/:id").setPath(IdPath).addSuccess(User).addError(UserNotFound))
  .add(
    HttpApiEndpoint.put("update", "/users/:id")
      .setPath(IdPath)
      .setPayload(UserPatch)
      .addSuccess(User)
      .addError(UserNotFound)
      .addError(EmailTaken)
  )
  .add(HttpApiEndpoint.get("list", "/users").setUrlParams(ListQuery).addSuccess(Schema.Array(User)))
  .addError(Unavailable) {}

/** `GET /slow?ms=N`: waits, then answers (to watch draining). @since 0.1.0 @category groups */
export class Slow extends HttpApiGroup.make("slow").add(
  HttpApiEndpoint.get("slow", "/slow")
    .setUrlParams(Schema.Struct({ ms: Decimal(0, 30_000) }))
    .addSuccess(Schema.Struct({ sleptMs: Schema.Number }))
) {}

/** Checks `Authorization: Bearer <ADMIN_TOKEN>`. @since 0.1.0 @category middleware */
export class AdminAuth extends HttpApiMiddleware.Tag<AdminAuth>()("effect-dal/demo/AdminAuth", {
  failure: Unauthorized,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

/** The admin actions. @since 0.1.0 @category groups */
export class Admin extends HttpApiGroup.make("admin")
  .add(
    HttpApiEndpoint.get("metrics", "/metrics").addSuccess(
      Schema.String.pipe(HttpApiSchema.withEncoding({ kind: "Text", contentType: "text/plain" }))
    )
  )
  .add(HttpApiEndpoint.post("flush", "/cache/flush").addSuccess(FlushReport).middleware(AdminAuth)) {}

/**
 * The business API.
 *
 * @since 0.1.0 @category apis
 */
export class BusinessApi extends HttpApi.make("business")
  .add(UsersGroup)
  .add(Slow)
  .add(Health)
  .addError(PayloadTooLarge)
  .addError(UnsupportedMediaType)
  .annotate(OpenApi.Title, "effect-dal demo")
  .annotate(OpenApi.Description, "The users service of the effect-dal demo program (docs/Program.md)") {}

/**
 * The admin API.
 *
 * @since 0.1.0 @category apis
 */
export class AdminApi extends HttpApi.make("admin")
  .add(Admin)
  .add(Health)
  .addError(PayloadTooLarge)
  .addError(UnsupportedMediaType) {}
