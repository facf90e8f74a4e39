import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Redacted, Schema } from "effect"
import * as Database from "../../src/Layers/Database.js"
import * as SqliteDriver from "../../src/Layers/SqliteDriver.js"
import * as Select from "../../src/Query/Select.js"

describe("Database.parseUrl", () => {
  it("reads MySQL/MariaDB URLs into parts, keeping the password redacted and out of the label", () => {
    const url = Either.getOrThrow(Database.parseUrl("mysql://app:s3cr%40t@db.local:3307/shop"))
    expect(url).toMatchObject({
      dialect: "mysql",
      label: "mysql://db.local:3307/shop",
      host: "db.local",
      port: 3307,
      database: "shop",
      username: "app"
    })
    expect(url.dialect === "mysql" && url.password !== undefined && Redacted.value(url.password)).toBe(
      "s3cr@t"
    )
    expect(String(url.dialect === "mysql" ? url.password : "")).toBe("<redacted>")
    expect(Either.getOrThrow(Database.parseUrl("mariadb://h/d"))).toMatchObject({
      dialect: "mysql",
      port: 3306
    })
  })

  it("reads PostgreSQL and SQLite URLs", () => {
    expect(Either.getOrThrow(Database.parseUrl("postgresql://u:pw@h:5432/db"))).toMatchObject({
      dialect: "pg",
      label: "postgresql://h:5432/db"
    })
    expect(Either.getOrThrow(Database.parseUrl("sqlite:data/app.db"))).toMatchObject({
      dialect: "sqlite",
      filename: "data/app.db"
    })
    expect(Either.getOrThrow(Database.parseUrl("sqlite::memory:"))).toMatchObject({ filename: ":memory:" })
  })

  it("refuses what it cannot connect to with a typed error", () => {
    expect(Database.parseUrl("oracle://h/db")).toEqual(
      Either.left(new Database.DatabaseUrlError({ reason: "unsupported scheme oracle:" }))
    )
    expect(Either.isLeft(Database.parseUrl("not a url"))).toBe(true)
    expect(Either.isLeft(Database.parseUrl("sqlite:"))).toBe(true)
  })
})

const One = Schema.Struct({ id: Schema.Number }).annotations({ identifier: "One" })

describe("Database.layerConfig", () => {
  it.effect("reads DATABASE_URL, falling back when it is unset", () =>
    Effect.gen(function* () {
      const fromEnv = Effect.provide(
        Effect.flip(Select.from(One).getMulti()),
        Database.layerConfig({ fallback: "mysql://nowhere.invalid/x" })
      ).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["DATABASE_URL", "sqlite::memory:"]])))
      )
      // The table does not exist in the fresh in-memory database: the query reached SQLite.
      expect(yield* fromEnv).toMatchObject({ _tag: "DatabaseError", detail: "no such table: one" })
      const fallback = Effect.provide(
        Effect.flip(Select.from(One).getMulti()),
        Database.layerConfig({ fallback: "sqlite::memory:" })
      )
      expect(
        yield* fallback.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map())))
      ).toMatchObject({
        detail: "no such table: one"
      })
    })
  )

  it.effect("overrides rename an entity's table and columns for this database only", () =>
    Effect.gen(function* () {
      const renamed = Database.layer({ url: "sqlite::memory:", overrides: [[One, { table: "uno" }]] })
      const error = yield* Effect.flip(Effect.provide(Select.from(One).getMulti(), renamed))
      expect(error).toMatchObject({ _tag: "DatabaseError", detail: "no such table: uno" })
      const NoKey = Schema.Struct({ name: Schema.String }).annotations({ identifier: "NoKey" })
      const invalid = Database.layer({ url: "sqlite::memory:", overrides: [[NoKey, { table: "x" }]] })
      expect(yield* Effect.flip(Effect.provide(Select.from(One).getMulti(), invalid))).toMatchObject({
        _tag: "InvalidEntityError",
        entity: "NoKey"
      })
    })
  )

  it.effect("a bad URL fails the layer with DatabaseUrlError", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Effect.provide(Select.from(One).getMulti(), Database.layer({ url: "ftp://x/y" }))
      )
      expect(error).toMatchObject({ _tag: "DatabaseUrlError" })
    })
  )

  it.effect(
    "`drivers` are the only ones used: no import, and another dialect's URL is a DatabaseDriverError",
    () =>
      Effect.gen(function* () {
        const sqlite = Database.layer({ url: "sqlite::memory:", drivers: [SqliteDriver.driver] })
        expect(yield* Effect.flip(Effect.provide(Select.from(One).getMulti(), sqlite))).toMatchObject({
          _tag: "DatabaseError",
          detail: "no such table: one"
        })
        const mysql = Database.layer({ url: "mysql://nowhere.invalid/x", drivers: [SqliteDriver.driver] })
        const error = yield* Effect.flip(Effect.provide(Select.from(One).getMulti(), mysql))
        expect(error).toMatchObject({ _tag: "DatabaseDriverError", dialect: "mysql" })
        expect(error.message).toBe("No mysql driver: `drivers` has only sqlite")
      })
  )

  it.effect("a SQLite file's missing directory is created; one that cannot be is a DatabaseError", () =>
    Effect.gen(function* () {
      const dir = yield* Effect.sync(() => mkdtempSync(join(tmpdir(), "effect-dal-db-")))
      const nested = Database.layer({ url: `sqlite:${join(dir, "a", "b", "app.db")}` })
      expect(yield* Effect.flip(Effect.provide(Select.from(One).getMulti(), nested))).toMatchObject({
        detail: "no such table: one"
      })
      expect(existsSync(join(dir, "a", "b", "app.db"))).toBe(true)
      yield* Effect.sync(() => writeFileSync(join(dir, "file"), ""))
      const blocked = Database.layer({ url: `sqlite:${join(dir, "file", "app.db")}` })
      expect(yield* Effect.flip(Effect.provide(Select.from(One).getMulti(), blocked))).toMatchObject({
        _tag: "DatabaseError"
      })
      yield* Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    })
  )
})
