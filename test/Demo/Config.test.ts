/**
 * The demo's settings as read from an environment (a `ConfigProvider` over a map stands in for it).
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Option, Redacted } from "effect"
import * as Config from "../../src/Demo/Config.js"

const read = (env: Record<string, string>) =>
  Effect.either(Effect.withConfigProvider(Config.Http, ConfigProvider.fromMap(new Map(Object.entries(env)))))

describe("Config.Http", () => {
  it.effect(
    "an admin host that is not a loopback address needs a token; a name that starts with 127. is not one",
    () =>
      Effect.gen(function* () {
        for (const host of [
          "0.0.0.0",
          "10.0.0.1",
          "127.0.0.1.nip.io",
          "127.evil.example",
          "::",
          "localhost.example"
        ]) {
          const result = yield* read({ ADMIN_HOST: host })
          expect([host, Either.isLeft(result) && String(result.left)]).toEqual([
            host,
            expect.stringContaining("ADMIN_TOKEN is required when ADMIN_HOST is not a loopback address")
          ])
        }
        for (const host of ["127.0.0.1", "127.1.2.3", "::1", "localhost"]) {
          const result = yield* read({ ADMIN_HOST: host })
          expect([host, Either.isRight(result)]).toEqual([host, true])
        }
        const withToken = yield* read({ ADMIN_HOST: "0.0.0.0", ADMIN_TOKEN: "s3cret-token" })
        expect(Either.map(withToken, (c) => Option.map(c.adminToken, Redacted.value))).toEqual(
          Either.right(Option.some("s3cret-token"))
        )
      })
  )

  it.effect("an empty or blank ADMIN_TOKEN is refused, on any host (it would let an empty bearer in)", () =>
    Effect.gen(function* () {
      for (const env of [
        { ADMIN_HOST: "0.0.0.0", ADMIN_TOKEN: "" },
        { ADMIN_HOST: "0.0.0.0", ADMIN_TOKEN: "   " },
        { ADMIN_TOKEN: "" }
      ]) {
        const result = yield* read(env)
        expect([env, Either.isLeft(result) && String(result.left)]).toEqual([
          env,
          expect.stringContaining("ADMIN_TOKEN must not be empty")
        ])
      }
    })
  )
})
