/**
 * The HTTP apps in process, over an in-memory `Users` service and a readiness that the test sets (the
 * Layer swaps that stand in for the database here; test/Program.test.ts runs the real program).
 */
import * as Http from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted, Ref, Tracer } from "effect"
import * as Api from "../../src/Demo/Api.js"
import * as App from "../../src/Demo/App.js"
import * as GracefulServer from "../../src/Demo/GracefulServer.js"
import {
  EmailTaken,
  Unavailable,
  User,
  UserNotFound,
  Users,
  type UsersService
} from "../../src/Demo/Users.js"

/** Users in a Map; `down` makes every call fail as a database outage would. */
const memoryUsers = (down: Ref.Ref<boolean>) =>
  Layer.effect(
    Users,
    Effect.map(Ref.make(new Map<number, User>()), (store): UsersService => {
      const guard = Effect.flatMap(Ref.get(down), (isDown) =>
        isDown ? Effect.fail(new Unavailable({ reason: "database: connection" })) : Effect.void
      )
      return {
        create: (input) =>
          Effect.zipRight(
            guard,
            Effect.flatten(
              Ref.modify(store, (all): readonly [Effect.Effect<User, EmailTaken>, Map<number, User>] => {
                if ([...all.values()].some((u) => u.email === input.email))
                  return [Effect.fail(new EmailTaken({ field: "email" })), all]
                const user = new User({ id: all.size + 1, ...input })
                return [Effect.succeed(user), new Map(all).set(user.id, user)]
              })
            )
          ),
        get: (id) =>
          Effect.zipRight(
            guard,
            Effect.flatMap(Ref.get(store), (all) => {
              const user = all.get(id)
              return user === undefined ? Effect.fail(new UserNotFound({ id })) : Effect.succeed(user)
            })
          ),
        update: (id, patch) =>
          Effect.zipRight(
            guard,
            Effect.flatten(
              Ref.modify(store, (all): readonly [Effect.Effect<User, UserNotFound>, Map<number, User>] => {
                const found = all.get(id)
                if (found === undefined) return [Effect.fail(new UserNotFound({ id })), all]
                const user = new User({ ...found, ...patch })
                return [Effect.succeed(user), new Map(all).set(id, user)]
              })
            )
          ),
        list: (options) =>
          Effect.zipRight(
            guard,
            Effect.map(Ref.get(store), (all) =>
              [...all.values()]
                .filter((u) => u.age >= options.minAge)
                .slice(options.offset, options.offset + options.limit)
            )
          ),
        flush: Effect.succeed({ written: 0, failed: [], deadLettered: [] })
      }
    })
  )

const readiness = (down: Ref.Ref<boolean>) =>
  Layer.succeed(App.Readiness, {
    check: Effect.map(Ref.get(down), (isDown) => ({
      status: isDown ? ("not ready" as const) : ("ready" as const),
      database: isDown ? ("unreachable" as const) : ("ok" as const),
      redis: "not configured" as const,
      draining: false,
      reasons: isDown ? ["database unreachable"] : []
    }))
  })

interface Reply {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
}

/** One request on its own connection; `body` as given (a string is sent as is). */
const call = (
  port: number,
  method: string,
  path: string,
  options: { readonly body?: string | Buffer; readonly headers?: Record<string, string> } = {}
) =>
  Effect.async<Reply>((resume) => {
    const req = Http.request(
      { host: "127.0.0.1", port, method, path, agent: false, headers: options.headers ?? {} },
      (res) => {
        let text = ""
        res.on("data", (c: Buffer) => {
          text += c.toString()
        })
        res.on("end", () =>
          resume(Effect.succeed({ status: res.statusCode ?? 0, headers: res.headers, body: text }))
        )
      }
    )
    req.on("error", (e) => resume(Effect.die(e)))
    if (options.body !== undefined) req.write(options.body)
    req.end()
  })

const jsonHeaders = { "content-type": "application/json" }

/** Both apps on free ports over the memory service; `down` turns the "database" off. */
const setup = (token: Option.Option<Redacted.Redacted> = Option.none(), maxBodyBytes = 1024) =>
  Effect.gen(function* () {
    const down = yield* Ref.make(false)
    const layer = Layer.mergeAll(memoryUsers(down), readiness(down), NodeHttpServer.layerContext)
    const context = yield* Layer.build(layer)
    const business = yield* App.make("business", Api.BusinessApi, App.businessHandlers, {
      maxBodyBytes,
      docs: true
    }).pipe(Effect.provide(context))
    const admin = yield* App.make("admin", Api.AdminApi, App.adminHandlers(token), {
      maxBodyBytes,
      docs: false
    }).pipe(Effect.provide(context))
    const b = yield* GracefulServer.serve("business", { host: "127.0.0.1", port: 0 }, business).pipe(
      Effect.provide(context)
    )
    const a = yield* GracefulServer.serve("admin", { host: "127.0.0.1", port: 0 }, admin).pipe(
      Effect.provide(context)
    )
    return { business: b.port, admin: a.port, down }
  })

const ann = { firstName: "Ann", lastName: "Lee", email: "ann@x.io", age: 30 }

describe("App: the business API", () => {
  it.scopedLive("answers each route with its schema; typed errors get their statuses", () =>
    Effect.gen(function* () {
      const { business } = yield* setup()
      const created = yield* call(business, "POST", "/users", {
        body: JSON.stringify(ann),
        headers: jsonHeaders
      })
      expect([created.status, JSON.parse(created.body)]).toEqual([201, { id: 1, ...ann }])
      const taken = yield* call(business, "POST", "/users", {
        body: JSON.stringify(ann),
        headers: jsonHeaders
      })
      expect([taken.status, JSON.parse(taken.body)]).toEqual([409, { _tag: "EmailTaken", field: "email" }])
      expect(JSON.parse((yield* call(business, "GET", "/users/1")).body)).toEqual({ id: 1, ...ann })
      const missing = yield* call(business, "GET", "/users/7")
      expect([missing.status, JSON.parse(missing.body)]).toEqual([404, { _tag: "UserNotFound", id: 7 }])
      const updated = yield* call(business, "PUT", "/users/1", { body: '{"age":31}', headers: jsonHeaders })
      expect(JSON.parse(updated.body)).toEqual({ id: 1, ...ann, age: 31 })
      expect(JSON.parse((yield* call(business, "GET", "/users?minAge=31")).body)).toHaveLength(1)
      expect(JSON.parse((yield* call(business, "GET", "/slow?ms=5")).body)).toEqual({ sleptMs: 5 })
    })
  )

  it.scopedLive("a database outage is a 503 with a short reason, never a 404", () =>
    Effect.gen(function* () {
      const { business, down } = yield* setup()
      yield* Ref.set(down, true)
      const reply = yield* call(business, "GET", "/users/1")
      expect([reply.status, JSON.parse(reply.body)]).toEqual([
        503,
        { _tag: "Unavailable", reason: "database: connection" }
      ])
      expect((yield* call(business, "GET", "/users")).status).toBe(503)
      const ready = yield* call(business, "GET", "/health/ready")
      expect(ready.status).toBe(503)
      expect(JSON.parse(ready.body).readiness.reasons).toEqual(["database unreachable"])
      expect((yield* call(business, "GET", "/health/live")).status).toBe(200)
    })
  )

  it.scopedLive("ids and numbers are strict decimals", () =>
    Effect.gen(function* () {
      const { business } = yield* setup()
      for (const id of ["1e3", "0x10", "+5", "-1", "0", "1.0", "01", " 1", "1;drop", "99999999999", "abc"]) {
        const reply = yield* call(business, "GET", `/users/${encodeURIComponent(id).replace("%3B", ";")}`)
        expect([id, reply.status]).toEqual([id, 400])
      }
      expect((yield* call(business, "GET", "/users?limit=1e1")).status).toBe(400)
      expect((yield* call(business, "GET", "/users?limit=101")).status).toBe(400)
      expect((yield* call(business, "GET", "/slow?ms=40000")).status).toBe(400)
    })
  )

  it.scopedLive(
    "refuses hostile bodies: 415, 413 (declared or streamed), deep nesting, bad JSON, short 400s",
    () =>
      Effect.gen(function* () {
        const { business } = yield* setup(Option.none(), 8192)
        const text = yield* call(business, "POST", "/users", {
          body: "firstName=a",
          headers: { "content-type": "application/x-www-form-urlencoded" }
        })
        expect([text.status, JSON.parse(text.body)._tag]).toEqual([415, "UnsupportedMediaType"])
        const plain = yield* call(business, "PUT", "/users/1", {
          body: "{}",
          headers: { "content-type": "text/plain" }
        })
        expect(plain.status).toBe(415)
        for (const headers of [
          { "content-type": "application/json-patch+json" },
          { "content-type": "application/json; charset=latin1" },
          { ...jsonHeaders, "content-encoding": "gzip" },
          {}
        ]) {
          const refused = yield* call(business, "PUT", "/users/1", { body: '{"age":1}', headers })
          expect([headers, refused.status]).toEqual([headers, 415])
        }
        // A type that is not JSON is refused even on an empty body (an empty form is no empty patch).
        const emptyForm = yield* call(business, "PUT", "/users/1", {
          headers: { "content-type": "application/x-www-form-urlencoded", "content-length": "0" }
        })
        expect(emptyForm.status).toBe(415)
        for (const type of [
          "APPLICATION/JSON",
          "application/json; charset=UTF-8",
          'application/json;charset="utf-8"'
        ]) {
          const accepted = yield* call(business, "POST", "/users", {
            body: JSON.stringify({ ...ann, email: `t${type.length}@x.io` }),
            headers: { "content-type": type }
          })
          expect([type, accepted.status]).toEqual([type, 201])
        }
        const big = JSON.stringify({ ...ann, firstName: "x".repeat(20_000) })
        const declared = yield* call(business, "POST", "/users", { body: big, headers: jsonHeaders })
        expect([declared.status, declared.headers.connection]).toEqual([413, "close"])
        const streamed = yield* call(business, "POST", "/users", {
          body: big,
          headers: { ...jsonHeaders, "transfer-encoding": "chunked" }
        })
        expect(streamed.status).toBe(413)
        const deep = yield* call(business, "POST", "/users", {
          body: `${"[".repeat(3000)}${"]".repeat(3000)}`,
          headers: { ...jsonHeaders, "transfer-encoding": "chunked" }
        })
        expect([deep.status, JSON.parse(deep.body).message]).toEqual([
          400,
          "JSON nested deeper than 32 levels"
        ])
        const broken = yield* call(business, "POST", "/users", { body: "{", headers: jsonHeaders })
        expect([broken.status, JSON.parse(broken.body).message]).toEqual([400, "the body is not valid JSON"])
        const latin1 = yield* call(business, "POST", "/users", {
          body: Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]),
          headers: jsonHeaders
        })
        expect([latin1.status, JSON.parse(latin1.body).message]).toEqual([400, "the body is not UTF-8"])
        const long = yield* call(business, "POST", "/users", {
          body: JSON.stringify({ ...ann, email: "y".repeat(900) }),
          headers: jsonHeaders
        })
        expect(long.status).toBe(400)
        expect(long.body.length).toBeLessThan(700)
        expect(JSON.parse(long.body).issues[0].path).toEqual(["email"])
        const nul = yield* call(business, "POST", "/users", {
          body: JSON.stringify({ ...ann, lastName: "a\u0000b" }),
          headers: jsonHeaders
        })
        expect(JSON.parse(nul.body).issues).toEqual([
          { _tag: "Refinement", path: ["lastName"], message: "control characters are not allowed" }
        ])
      })
  )

  it.scopedLive(
    "405 with Allow for a known path; HEAD like GET; OPTIONS 204 with Allow; JSON 404 otherwise; request ids echoed",
    () =>
      Effect.gen(function* () {
        const { business, admin } = yield* setup()
        const wrong = yield* call(business, "DELETE", "/users/1")
        expect([wrong.status, wrong.headers.allow]).toEqual([405, "GET, HEAD, PUT, OPTIONS"])
        expect(JSON.parse(wrong.body)).toEqual({
          _tag: "MethodNotAllowed",
          allow: ["GET", "HEAD", "PUT", "OPTIONS"]
        })
        const collection = yield* call(business, "PATCH", "/users")
        expect([collection.status, collection.headers.allow]).toEqual([405, "POST, GET, HEAD, OPTIONS"])
        const flushByGet = yield* call(admin, "GET", "/cache/flush")
        expect([flushByGet.status, flushByGet.headers.allow]).toEqual([405, "POST, OPTIONS"])
        for (const path of ["/health", "/health/live", "/health/ready", "/openapi.json", "/docs"]) {
          const put = yield* call(business, "PUT", path)
          expect([path, put.status, put.headers.allow]).toEqual([path, 405, "GET, HEAD, OPTIONS"])
          const head = yield* call(business, "HEAD", path)
          expect([path, head.status, head.body]).toEqual([path, 200, ""])
        }
        const metricsHead = yield* call(admin, "HEAD", "/metrics")
        expect([metricsHead.status, metricsHead.body]).toEqual([200, ""])
        const headMissing = yield* call(business, "HEAD", "/users/999")
        expect([headMissing.status, headMissing.body]).toEqual([404, ""])
        const options = yield* call(business, "OPTIONS", "/users/1")
        expect([options.status, options.headers.allow, options.body]).toEqual([
          204,
          "GET, HEAD, PUT, OPTIONS",
          ""
        ])
        const optionsNowhere = yield* call(business, "OPTIONS", "/nowhere")
        expect(optionsNowhere.status).toBe(404)
        const nowhere = yield* call(business, "GET", "/nowhere")
        expect([nowhere.status, JSON.parse(nowhere.body)]).toEqual([404, { _tag: "RouteNotFound" }])
        const given = yield* call(business, "GET", "/health/live", { headers: { "x-request-id": "abc-123" } })
        expect(given.headers["x-request-id"]).toBe("abc-123")
        const hostile = yield* call(business, "GET", "/health/live", {
          headers: { "x-request-id": "a b\tc" }
        })
        expect(hostile.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/)
      })
  )

  it.scopedLive("serves its OpenAPI document and Swagger UI", () =>
    Effect.gen(function* () {
      const { business } = yield* setup()
      const spec = JSON.parse((yield* call(business, "GET", "/openapi.json")).body)
      expect(spec.info.title).toBe("effect-dal demo")
      expect(Object.keys(spec.paths)).toEqual(
        expect.arrayContaining(["/users", "/users/{id}", "/health/ready", "/health/live", "/health"])
      )
      expect(Object.keys(spec.paths["/users/{id}"].get.responses)).toEqual(
        expect.arrayContaining(["200", "400", "404", "413", "415", "503"])
      )
      const docs = yield* call(business, "GET", "/docs")
      expect([docs.status, docs.body]).toEqual([200, expect.stringContaining("swagger-ui")])
    })
  )

  it.scopedLive("opens one server span per request, with the route and the request id", () =>
    Effect.gen(function* () {
      const spans: Array<Tracer.Span> = []
      const base = yield* Effect.tracer
      const tracer = Tracer.make({
        span: (...args) => {
          const span = base.span(...args)
          spans.push(span)
          return span
        },
        context: base.context
      })
      const { business } = yield* Effect.withTracer(setup(), tracer)
      yield* call(business, "GET", "/users/5", { headers: { "x-request-id": "span-test" } })
      const server = spans.filter((s) => s.kind === "server")
      expect(server).toHaveLength(1)
      expect(server[0]?.attributes.get("http.route")).toBe("/users/:id")
      expect(server[0]?.attributes.get("request.id")).toBe("span-test")
    })
  )
})

describe("App: the admin API", () => {
  it.scopedLive("POST /cache/flush needs the bearer token when one is set; health needs none", () =>
    Effect.gen(function* () {
      const { admin } = yield* setup(Option.some(Redacted.make("s3cret")))
      expect((yield* call(admin, "POST", "/cache/flush")).status).toBe(401)
      for (const authorization of [
        "Bearer nope",
        "Bearer s3creT",
        "Bearer s3cret2",
        "Bearer ",
        "Basic s3cret",
        "s3cret"
      ]) {
        const wrong = yield* call(admin, "POST", "/cache/flush", { headers: { authorization } })
        expect([authorization, wrong.status]).toEqual([authorization, 401])
      }
      const scheme = yield* call(admin, "POST", "/cache/flush", {
        headers: { authorization: "bearer s3cret" }
      })
      expect(scheme.status).toBe(200)
      const right = yield* call(admin, "POST", "/cache/flush", {
        headers: { authorization: "Bearer s3cret" }
      })
      expect([right.status, JSON.parse(right.body)]).toEqual([
        200,
        { written: 0, failed: [], deadLettered: [] }
      ])
      expect((yield* call(admin, "GET", "/health")).status).toBe(200)
      const metrics = yield* call(admin, "GET", "/metrics")
      expect(metrics.body).toMatch(
        /effect_dal_http_requests_total\{server="admin",method="POST",route="\/cache\/flush",status="401"\} \d+/
      )
      expect(metrics.body).toMatch(
        /effect_dal_http_request_duration_seconds_bucket\{server="admin",method="GET",route="\/health",status="200",le="[^"]+"\} \d+/
      )
    })
  )
})
