/**
 * The HTTP APIs in process, over an in-memory `Users` service (the Layer swap that stands in for the
 * database here; the end-to-end tests in test/Program.test.ts run the real one).
 */
import * as Http from "node:http"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Ref } from "effect"
import * as App from "../../src/Demo/App.js"
import * as GracefulServer from "../../src/Demo/GracefulServer.js"
import * as ShutdownHooks from "../../src/Demo/ShutdownHooks.js"
import { User } from "../../src/Demo/Users.js"

const memoryUsers = Layer.effect(
  App.Users,
  Effect.map(
    Ref.make(new Map<number, User>()),
    (store): App.UsersService => ({
      create: (input) =>
        Ref.modify(store, (all) => {
          const user = new User({ id: all.size + 1, ...input })
          return [user, new Map(all).set(user.id, user)]
        }),
      get: (id) => Effect.map(Ref.get(store), (all) => Option.fromNullable(all.get(id))),
      update: (id, patch) =>
        Ref.modify(store, (all) => {
          const found = all.get(id)
          if (found === undefined) return [Option.none(), all]
          const user = new User({
            ...found,
            ...Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined))
          })
          return [Option.some(user), new Map(all).set(id, user)]
        }),
      list: (options) =>
        Effect.map(Ref.get(store), (all) =>
          [...all.values()]
            .filter((u) => u.age >= options.minAge)
            .slice(options.offset, options.offset + options.limit)
        ),
      flush: Effect.succeed(0)
    })
  )
)

const call = (port: number, method: string, path: string, body?: string) =>
  Effect.async<{ status: number; body: string }>((resume) => {
    const req = Http.request({ host: "127.0.0.1", port, method, path, agent: false }, (res) => {
      let text = ""
      res.on("data", (c: Buffer) => {
        text += c.toString()
      })
      res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, body: text })))
    })
    req.on("error", (e) => resume(Effect.die(e)))
    if (body !== undefined) req.write(body)
    req.end()
  })

describe("App", () => {
  it.scoped("admin /health turns 503 draining once shutdown has begun", () =>
    Effect.gen(function* () {
      const hooks = yield* ShutdownHooks.ShutdownHooks
      const admin = yield* GracefulServer.serve("admin", { host: "127.0.0.1", port: 0 }, App.admin)
      expect(yield* call(admin.port, "GET", "/health")).toEqual({ status: 200, body: '{"status":"ok"}' })
      yield* hooks.begin
      expect(yield* call(admin.port, "GET", "/health")).toEqual({
        status: 503,
        body: '{"status":"draining"}'
      })
    }).pipe(Effect.provide(Layer.merge(ShutdownHooks.layer, memoryUsers)))
  )

  it.scopedLive("business validation names the offending field; body that is not JSON is a 400", () =>
    Effect.gen(function* () {
      const business = yield* GracefulServer.serve("business", { host: "127.0.0.1", port: 0 }, App.business)
      const created = yield* call(
        business.port,
        "POST",
        "/users",
        JSON.stringify({ firstName: "Ann", lastName: "Lee", email: "ann@x.io", age: 30 })
      )
      expect(created.status).toBe(201)
      const bad = yield* call(
        business.port,
        "POST",
        "/users",
        JSON.stringify({ firstName: "A", lastName: "B", email: "nope", age: 1 })
      )
      expect([bad.status, JSON.parse(bad.body).field]).toEqual([400, "email"])
      expect((yield* call(business.port, "POST", "/users", "{")).status).toBe(400)
      expect((yield* call(business.port, "GET", "/slow?ms=40000")).status).toBe(400)
      expect((yield* call(business.port, "GET", "/users?offset=-1")).status).toBe(400)
      expect(yield* call(business.port, "GET", "/slow?ms=5")).toEqual({ status: 200, body: '{"sleptMs":5}' })
      expect((yield* call(business.port, "GET", "/nowhere")).status).toBe(404)
    }).pipe(Effect.provide(Layer.merge(ShutdownHooks.layer, memoryUsers)))
  )
})
