/**
 * The demo's logger: emails redacted from every line, repeats of a warning bounded per interval (the
 * interval measured on the TestClock), a request's own failure line never suppressed.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, TestClock } from "effect"
import { afterEach, beforeEach, vi } from "vitest"
import * as Log from "../../src/Demo/Log.js"

let lines: Array<string> = []

beforeEach(() => {
  lines = []
  const capture = (line: unknown) => {
    lines.push(String(line))
  }
  vi.spyOn(console, "log").mockImplementation(capture)
  vi.spyOn(console, "error").mockImplementation(capture)
})

afterEach(() => {
  vi.restoreAllMocks()
})

const logged = <A, E>(effect: Effect.Effect<A, E>) =>
  effect.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, Log.make(10_000))))

describe("Log", () => {
  it("redacts email addresses in messages, annotations and causes", () => {
    expect(Log.redact(`message="Duplicate entry 'ann.lee+x@example.co.uk' for key 'email'"`)).toBe(
      `message="Duplicate entry '<redacted>' for key 'email'"`
    )
    expect(Log.redact("user=bob@x.io,id=3")).toBe("user=<redacted>,id=3")
    expect(Log.redact("listening: business http://127.0.0.1:8080")).toBe(
      "listening: business http://127.0.0.1:8080"
    )
  })

  it.effect("prints a repeated warning once per interval, then says how many it suppressed", () =>
    logged(
      Effect.gen(function* () {
        for (let i = 0; i < 5; i++) yield* Effect.logWarning("cache users unavailable, failing open")
        expect(lines).toHaveLength(1)
        yield* TestClock.adjust("10 seconds")
        yield* Effect.logWarning("cache users unavailable, failing open")
        expect(lines).toHaveLength(2)
        expect(lines[1]).toContain("(4 like it suppressed)")
        yield* Effect.logWarning("another message")
        expect(lines).toHaveLength(3)
      })
    )
  )

  it.effect("never suppresses a request's failure line, and never prints an email", () =>
    logged(
      Effect.gen(function* () {
        for (let i = 0; i < 3; i++) {
          yield* Effect.logError("request failed: GET /users/:id -> 503").pipe(
            Effect.annotateLogs({ requestId: `r${i}`, [Log.requestAnnotation]: true })
          )
        }
        yield* Effect.logError("data layer failed", new Error("Duplicate entry 'a@b.io' for key 'email'"))
        expect(lines).toHaveLength(4)
        expect(lines.join("\n")).not.toContain("a@b.io")
        expect(lines.filter((l) => l.includes("requestId=r"))).toHaveLength(3)
      })
    )
  )
})
