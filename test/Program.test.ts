/**
 * End to end: the demo program as a child process on free ports (compiled, as `npm start` runs it,
 * and through `npm start` itself), on SQLite and on a MariaDB and a Redis that the tests start, kill
 * and restart themselves. No fixed sleeps: every wait polls a condition (a log line, a metric, a
 * status) under a deadline.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import Sqlite from "better-sqlite3"
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  buildProgram,
  groupAlive,
  json,
  metric,
  type OwnedMariadb,
  type Running,
  request,
  start,
  startMariadb,
  stopAll,
  waitFor,
  waitInFlight
} from "./support/program.js"
import { type RedisServer, startRedisServer } from "./support/redisServer.js"

interface User {
  readonly id: number
  readonly firstName: string
  readonly lastName: string
  readonly email: string
  readonly age: number
}

const sqliteUrl = () => `sqlite:${join(mkdtempSync(join(tmpdir(), "effect-dal-demo-")), "app.db")}`

const sqliteRows = (
  url: string,
  sql = "SELECT id, email, last_name AS lastName, age FROM users ORDER BY id"
) => {
  const db = new Sqlite(url.slice("sqlite:".length), { readonly: true })
  try {
    return db.prepare(sql).all() as Array<Pick<User, "id" | "email" | "lastName" | "age">>
  } finally {
    db.close()
  }
}

/** Runs `f` over `items` with at most `concurrency` at once. */
const pool = async <A, B>(items: ReadonlyArray<A>, concurrency: number, f: (a: A) => Promise<B>) => {
  const out: Array<B> = new Array(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const i = next++
        out[i] = await f(items[i] as A)
      }
    })
  )
  return out
}

const person = (i: number) => ({
  firstName: `F${i}`,
  lastName: `L${i}`,
  email: `user${i}@example.com`,
  age: 20
})

const createUsers = (app: Running, n: number, from = 0) =>
  pool(
    Array.from({ length: n }, (_, i) => from + i),
    10,
    async (i) => {
      const reply = await request(app.business, "POST", "/users", person(i))
      expect(reply.status).toBe(201)
      return json<User>(reply)
    }
  )

/** No email address, in any form, anywhere in what the program printed. */
const expectNoEmail = (app: Running) => expect(app.output()).not.toMatch(/[\w.+-]+@[\w-]+\.[a-z]{2,}/i)

beforeAll(async () => {
  await buildProgram()
}, 240_000)

afterAll(stopAll)

describe("demo program: signals and graceful shutdown", () => {
  it("lets requests in flight finish, refuses new connections, and exits 0", async () => {
    const app = await start({ DATABASE_URL: sqliteUrl() })
    const slow = Array.from({ length: 10 }, () => request(app.business, "GET", "/slow?ms=3000"))
    await waitInFlight(app, 10)
    app.child.kill("SIGTERM")
    await waitFor("the business port to refuse connections", () =>
      request(app.business, "GET", "/health/live").then(
        () => false,
        (e: { code?: string }) => e.code === "ECONNREFUSED"
      )
    )
    const replies = await Promise.all(slow)
    expect(replies.map((r) => r.status)).toEqual(Array.from({ length: 10 }, () => 200))
    expect(await app.exited).toBe(0)
    const log = app.output()
    expect(
      Number(/new connections refused, (\d+) request\(s\) in flight/.exec(log)?.[1])
    ).toBeGreaterThanOrEqual(10)
    expect(log.indexOf("every request in flight finished")).toBeLessThan(
      log.indexOf("hook write-back flush done")
    )
    expect(log).toContain("shutdown: database and cache closed")
  })

  it("SIGHUP drains like SIGTERM: cuts requests still running after SHUTDOWN_TIMEOUT_MS, stores what was acknowledged, exits 0", async () => {
    const url = sqliteUrl()
    const app = await start({ DATABASE_URL: url, SHUTDOWN_TIMEOUT_MS: "300" })
    const [user] = await createUsers(app, 1)
    const put = await request(app.business, "PUT", `/users/${user?.id}`, { age: 77 })
    expect(put.status).toBe(200)
    const stuck = request(app.business, "GET", "/slow?ms=20000")
    await waitInFlight(app, 1)
    app.child.kill("SIGHUP")
    await expect(stuck).rejects.toThrow()
    expect(await app.exited).toBe(0)
    expect(app.output()).toContain("1 request(s) still running after 300 ms were interrupted")
    expect(sqliteRows(url).map((r) => r.age)).toEqual([77])
  })

  it("a repeat within SIGNAL_WINDOW_MS is the same signal; one after it exits 130 naming the phase", async () => {
    const app = await start({ DATABASE_URL: sqliteUrl(), SIGNAL_WINDOW_MS: "300" })
    const slow = request(app.business, "GET", "/slow?ms=20000").catch((e: unknown) => e)
    await waitInFlight(app, 1)
    app.child.kill("SIGTERM")
    app.child.kill("SIGTERM")
    await waitFor("the drain to begin", () => app.output().includes("new connections refused"))
    let exited = false
    void app.exited.then(() => {
      exited = true
    })
    await waitFor("the forced exit", () => {
      if (!exited) app.child.kill("SIGINT")
      return exited
    })
    expect(await app.exited).toBe(130)
    expect(app.output().match(/forcing exit/g)).toHaveLength(1)
    expect(app.output()).toContain(
      'SIGINT again during "draining requests": forcing exit, abandoning 1 request(s)'
    )
    await slow
  })
})

describe("npm start", () => {
  const viaNpm = (env: Record<string, string>, ...flags: ReadonlyArray<string>) =>
    start(env, ["npm", "start", "--silent", ...flags])

  it("SIGTERM to the npm process drains and exits 0, and leaves no process behind", async () => {
    const app = await viaNpm({ DATABASE_URL: sqliteUrl() })
    const pid = app.child.pid as number
    const slow = request(app.business, "GET", "/slow?ms=1500")
    await waitInFlight(app, 1)
    app.child.kill("SIGTERM")
    expect((await slow).status).toBe(200)
    expect(await app.exited).toBe(0)
    await waitFor("the process group to be empty", () => !groupAlive(pid))
    expect(app.output()).toContain("shutdown: database and cache closed")
  })

  it("SIGINT to the whole process group (Ctrl-C) counts as one signal", async () => {
    // The build (`prestart`) ran in the test above; --ignore-scripts skips it, not `start` itself.
    const app = await viaNpm({ DATABASE_URL: sqliteUrl() }, "--ignore-scripts")
    const pid = app.child.pid as number
    const slow = request(app.business, "GET", "/slow?ms=1500")
    await waitInFlight(app, 1)
    process.kill(-pid, "SIGINT")
    expect((await slow).status).toBe(200)
    expect(await app.exited).toBe(0)
    expect(app.output()).not.toContain("forcing exit")
    await waitFor("the process group to be empty", () => !groupAlive(pid))
  })
})

describe("demo program: configuration", () => {
  it("refuses to start with the admin API off loopback and no ADMIN_TOKEN", async () => {
    const failed = await start({ DATABASE_URL: sqliteUrl(), ADMIN_HOST: "0.0.0.0" }).then(
      (app) => app.stop().then(() => "started"),
      (e: Error) => e.message
    )
    expect(failed).toMatch(/program exited \(1\) before listening/)
    expect(failed).toContain("ADMIN_TOKEN is required when ADMIN_HOST is not a loopback address")
  })
})

describe("demo program: the HTTP API", () => {
  it("serves users with typed errors and refuses hostile input, logging no email", async () => {
    const app = await start({ DATABASE_URL: sqliteUrl(), MAX_BODY_BYTES: "4096" })
    try {
      const created = await request(app.business, "POST", "/users", {
        ...person(1),
        email: " Ann@Example.COM "
      })
      expect(created.status).toBe(201)
      const ann = json<User>(created)
      expect(ann.email).toBe("ann@example.com")
      expect(json(await request(app.business, "GET", `/users/${ann.id}`))).toEqual(ann)
      const taken = await request(app.business, "POST", "/users", { ...person(2), email: "ANN@example.com" })
      expect([taken.status, json(taken)]).toEqual([409, { _tag: "EmailTaken", field: "email" }])
      expect(json(await request(app.business, "PUT", `/users/${ann.id}`, { age: 31 }))).toEqual({
        ...ann,
        age: 31
      })
      expect((await request(app.business, "GET", "/users/999")).status).toBe(404)
      // Text no database would store as given (PostgreSQL refuses NUL, utf8mb4 a lone surrogate) is never acknowledged.
      for (const lastName of ["a\u0000b", "a\ud800b", "x".repeat(101)]) {
        expect((await request(app.business, "PUT", `/users/${ann.id}`, { lastName })).status).toBe(400)
      }
      for (const id of ["1e3", "0x10", "+5", "1;x"]) {
        expect((await request(app.business, "GET", `/users/${id}`)).status).toBe(400)
      }
      const huge = await request(app.business, "POST", "/users", {
        ...person(3),
        lastName: "x".repeat(10_000)
      })
      expect(huge.status).toBe(413)
      const form = await request(app.business, "POST", "/users", person(4), {
        "content-type": "application/x-www-form-urlencoded"
      })
      expect(form.status).toBe(415)
      expect((await request(app.business, "DELETE", `/users/${ann.id}`)).headers.allow).toBe(
        "GET, HEAD, PUT, OPTIONS"
      )
      expect(json<ReadonlyArray<User>>(await request(app.business, "GET", "/users?minAge=31"))).toHaveLength(
        0
      )
      expect((await request(app.business, "GET", "/openapi.json")).status).toBe(200)
      expect(
        await metric(
          app.admin,
          /^effect_dal_http_requests_total\{server="business",method="GET",route="\/users\/:id",status="404"\}/
        )
      ).toBe(1)
    } finally {
      expect(await app.stop()).toBe(0)
    }
    expectNoEmail(app)
  })
})

let mariadb: OwnedMariadb | undefined

const mariadbSuite = describe.sequential

mariadbSuite("demo program on a MariaDB the test owns", () => {
  let database = 0
  const letters = mkdtempSync(join(tmpdir(), "effect-dal-demo-letters-"))
  /** The program's environment for `url`, with its dead letters in a temporary file of its own. */
  const dbEnv = (url: string) => ({
    DATABASE_URL: url,
    DEAD_LETTER_FILE: join(letters, `${url.slice(url.lastIndexOf("/") + 1)}.sqlite`)
  })
  const freshUrl = async () => {
    const name = `demo_${++database}`
    await mariadb?.query(`CREATE DATABASE ${name}`)
    return mariadb?.url(name) ?? ""
  }
  const rows = async (url: string) =>
    (await mariadb?.query(
      `SELECT id, email, last_name AS lastName, age FROM ${url.slice(url.lastIndexOf("/") + 1)}.users ORDER BY id`
    )) as Array<Pick<User, "id" | "email" | "lastName" | "age">>

  beforeAll(async () => {
    mariadb = await startMariadb()
  }, 120_000)
  afterAll(async () => {
    await mariadb?.destroy()
  })

  it("a database outage is a 503 (never a 404, never remembered) and readiness says why", async () => {
    const app = await start(dbEnv(await freshUrl()))
    try {
      const [ann] = await createUsers(app, 1)
      await mariadb?.kill()
      const traced = await request(app.business, "GET", `/users/${ann?.id}`, undefined, {
        "x-request-id": "outage-1"
      })
      expect([traced.status, traced.headers["x-request-id"]]).toEqual([503, "outage-1"])
      const statuses = await pool(
        Array.from({ length: 30 }, () => 0),
        5,
        async () => (await request(app.business, "GET", `/users/${ann?.id}`)).status
      )
      expect(new Set(statuses)).toEqual(new Set([503]))
      const ready = await request(app.admin, "GET", "/health/ready")
      expect(ready.status).toBe(503)
      expect(json<{ readiness: { reasons: Array<string> } }>(ready).readiness.reasons).toEqual([
        "database unreachable"
      ])
      expect((await request(app.admin, "GET", "/health")).status).toBe(503)
      expect((await request(app.admin, "GET", "/health/live")).status).toBe(200)
      await mariadb?.restart()
      const seen: Array<number> = []
      await waitFor("GET to answer 200 again", async () => {
        const status = (await request(app.business, "GET", `/users/${ann?.id}`)).status
        seen.push(status)
        return status === 200
      })
      expect(seen.filter((s) => s === 404)).toEqual([])
      await waitFor(
        "readiness",
        async () => (await request(app.admin, "GET", "/health/ready")).status === 200
      )
      // One line per failed request, and the cause of a repeated error printed once per interval.
      const log = app.output()
      expect(log).toMatch(/message="request failed: GET \/users\/:id -> 503".*requestId=outage-1/)
      expect(log.match(/request failed: GET \/users\/:id -> 503/g)?.length).toBeGreaterThanOrEqual(31)
      expect(log.match(/data layer failed/g)?.length ?? 0).toBeLessThanOrEqual(8)
    } finally {
      expect(await app.stop()).toBe(0)
    }
    expectNoEmail(app)
  })

  it("an email is unique against the database and against writes still pending (case-insensitive)", async () => {
    const url = await freshUrl()
    const app = await start(dbEnv(url))
    const [a, b] = await createUsers(app, 2)
    try {
      const put = (u: User | undefined, body: unknown) =>
        request(app.business, "PUT", `/users/${u?.id}`, body)
      expect((await put(a, { email: "new@x.io" })).status).toBe(200)
      // a's new email is only in the write-back cache: the database would accept b's write, the flush would not.
      expect((await put(b, { email: "NEW@x.io" })).status).toBe(409)
      expect(
        (await request(app.business, "POST", "/users", { ...person(9), email: "new@x.io" })).status
      ).toBe(409)
      // a's old email is still a's in the database until the flush: refused for now, accepted after it.
      expect((await put(b, { email: a?.email })).status).toBe(409)
      expect(json(await request(app.admin, "POST", "/cache/flush"))).toEqual({
        written: 1,
        failed: [],
        deadLettered: []
      })
      expect((await put(b, { email: a?.email })).status).toBe(200)
    } finally {
      expect(await app.stop()).toBe(0)
    }
    const emails = new Map((await rows(url)).map((r) => [r.id, r.email]))
    expect([emails.get(a?.id ?? 0), emails.get(b?.id ?? 0)]).toEqual(["new@x.io", "user0@example.com"])
    expectNoEmail(app)
  })

  it("two instances on one database and one Redis: a user created on one is read and updated on the other", async () => {
    const url = await freshUrl()
    const redis = await startRedisServer()
    const env = { ...dbEnv(url), REDIS_URL: redis.url }
    const [a, b] = await Promise.all([
      start(env),
      start({ ...env, DEAD_LETTER_FILE: `${env.DEAD_LETTER_FILE}.b` })
    ])
    try {
      const [ann] = await createUsers(a, 1)
      // b's bloom filter learns the new id through Redis pub/sub, not from its next rebuild (30 s away).
      await waitFor(
        "the other instance to see the user",
        async () => (await request(b.business, "GET", `/users/${ann?.id}`)).status === 200,
        5_000
      )
      expect((await request(b.business, "PUT", `/users/${ann?.id}`, { age: 50 })).status).toBe(200)
      expect(json<User>(await request(a.business, "GET", `/users/${ann?.id}`)).age).toBe(50)
    } finally {
      expect(await a.stop()).toBe(0)
      expect(await b.stop()).toBe(0)
      await redis.stop()
    }
    expect((await rows(url)).map((r) => r.age)).toEqual([50])
  })

  it("200 PUTs are all in the database after SIGTERM, and none before", async () => {
    const url = await freshUrl()
    const app = await start(dbEnv(url))
    const users = await createUsers(app, 200)
    const puts = await pool(users, 20, (u) =>
      request(app.business, "PUT", `/users/${u.id}`, { lastName: `W${u.id}`, age: (u.id % 100) + 1 })
    )
    expect(puts.every((r) => r.status === 200)).toBe(true)
    expect((await rows(url)).filter((r) => r.lastName.startsWith("W"))).toHaveLength(0)
    expect(await app.stop()).toBe(0)
    expect((await rows(url)).map(({ id, lastName, age }) => ({ id, lastName, age }))).toEqual(
      users
        .map((u) => ({ id: u.id, lastName: `W${u.id}`, age: (u.id % 100) + 1 }))
        .sort((x, y) => x.id - y.id)
    )
    expect(app.output()).toContain("shutdown: wrote back 200 users")
  })

  it("the database down at SIGTERM and back within the flush budget: everything stored, exit 0", async () => {
    const url = await freshUrl()
    const app = await start({ ...dbEnv(url), SHUTDOWN_FLUSH_TIMEOUT_MS: "60000" })
    const users = await createUsers(app, 20)
    for (const u of users)
      expect((await request(app.business, "PUT", `/users/${u.id}`, { age: 77 })).status).toBe(200)
    await mariadb?.kill()
    app.child.kill("SIGTERM")
    try {
      await waitFor("the shutdown flush to begin", () =>
        app.output().includes("closing the write-back cache")
      )
    } finally {
      await mariadb?.restart()
    }
    expect(await app.exited).toBe(0)
    expect((await rows(url)).map((r) => r.age)).toEqual(users.map(() => 77))
  })

  it("the database down at SIGTERM past the flush budget: exit 1 naming every unstored write, replayed on the next start", async () => {
    const url = await freshUrl()
    const app = await start({ ...dbEnv(url), SHUTDOWN_FLUSH_TIMEOUT_MS: "1500" })
    const users = await createUsers(app, 20)
    for (const u of users)
      expect((await request(app.business, "PUT", `/users/${u.id}`, { age: 66 })).status).toBe(200)
    await mariadb?.kill()
    try {
      expect(await app.stop()).toBe(1)
    } finally {
      await mariadb?.restart()
    }
    const log = app.output()
    const line = /(\d+) acknowledged write\(s\) NOT stored after 1500 ms; user ids: ([\d, ]+)/.exec(log)
    expect(Number(line?.[1])).toBe(20)
    expect(
      line?.[2]
        ?.split(", ")
        .map(Number)
        .sort((x, y) => x - y)
    ).toEqual(users.map((u) => u.id).sort((x, y) => x - y))
    expect(log).toContain("exit hook(s) failed")
    expectNoEmail(app)
    // They waited in the dead-letter file: the next start writes them.
    const next = await start(dbEnv(url))
    await waitFor("the dead letters replayed", async () => (await rows(url)).every((r) => r.age === 66))
    expect(await next.stop()).toBe(0)
  })
})

describe("demo program with Redis", () => {
  let redis: RedisServer | undefined
  beforeAll(async () => {
    redis = await startRedisServer()
  }, 60_000)
  afterAll(async () => {
    await redis?.stop()
  })

  it("Redis unreachable at start: starts, serves from the database, says so; ready once Redis is up", async () => {
    await redis?.kill()
    const app = await start({ DATABASE_URL: sqliteUrl(), REDIS_URL: redis?.url })
    try {
      expect(app.output()).toContain("Redis unreachable at start")
      const ready = await request(app.admin, "GET", "/health/ready")
      expect([ready.status, json<{ readiness: { redis: string } }>(ready).readiness.redis]).toEqual([
        503,
        "unreachable"
      ])
      const [ann] = await createUsers(app, 1)
      expect(json(await request(app.business, "GET", `/users/${ann?.id}`))).toEqual(ann)
      await redis?.restart()
      await waitFor(
        "readiness with Redis",
        async () => (await request(app.admin, "GET", "/health/ready")).status === 200
      )
      expect(json(await request(app.business, "GET", `/users/${ann?.id}`))).toEqual(ann)
    } finally {
      expect(await app.stop()).toBe(0)
    }
  })

  it("two services on two databases share one Redis without seeing each other's users; every key has a TTL", async () => {
    const redisUrl = redis?.url
    const [a, b] = await Promise.all([
      start({ DATABASE_URL: sqliteUrl(), REDIS_URL: redisUrl }),
      start({ DATABASE_URL: sqliteUrl(), REDIS_URL: redisUrl })
    ])
    const client = new Redis(redis?.url ?? "")
    await client.flushall()
    try {
      const [ann] = await createUsers(a, 1, 1)
      const [bob] = await createUsers(b, 1, 2)
      expect(ann?.id).toBe(bob?.id)
      for (let i = 0; i < 2; i++) {
        expect(json(await request(a.business, "GET", `/users/${ann?.id}`))).toEqual(ann)
        expect(json(await request(b.business, "GET", `/users/${bob?.id}`))).toEqual(bob)
      }
      const keys = await client.keys("effect-dal-demo:*")
      expect(new Set(keys.map((k) => k.split(":")[1])).size).toBe(2)
      for (const key of keys) expect(await client.pttl(key)).toBeGreaterThan(0)
    } finally {
      client.disconnect()
      expect(await a.stop()).toBe(0)
      expect(await b.stop()).toBe(0)
    }
    // A command that failed for its caller (a PUT answered 503) is never sent again after a reconnect.
    expect(a.output()).toContain("cache: Redis connected")
    expect(a.output()).not.toContain("replays commands that failed")
  })

  it("a row changed or inserted straight into the database is seen within CACHE_TTL_MS; a dead Redis fails open", async () => {
    const url = sqliteUrl()
    const app = await start({
      DATABASE_URL: url,
      REDIS_URL: redis?.url,
      CACHE_TTL_MS: "1000"
    })
    try {
      const [ann] = await createUsers(app, 1)
      expect(json(await request(app.business, "GET", `/users/${ann?.id}`))).toEqual(ann)
      const db = new Sqlite(url.slice("sqlite:".length))
      db.prepare("UPDATE users SET last_name = 'Direct' WHERE id = ?").run(ann?.id)
      const inserted = Number(
        db
          .prepare("INSERT INTO users (first_name, last_name, email, age) VALUES ('D', 'D', 'd@x.io', 5)")
          .run().lastInsertRowid
      )
      db.close()
      const changedAt = Date.now()
      await waitFor(
        "the direct update",
        async () => json<User>(await request(app.business, "GET", `/users/${ann?.id}`)).lastName === "Direct"
      )
      await waitFor(
        "the direct insert",
        async () => (await request(app.business, "GET", `/users/${inserted}`)).status === 200
      )
      // CACHE_TTL_MS for the cached value and the bloom filter's rebuild, plus the 2 s negative entry
      // (and room for a loaded machine): far below the 30 s a default TTL would take.
      expect(Date.now() - changedAt).toBeLessThan(1000 + 2000 + 7000)
      await redis?.kill()
      for (let i = 0; i < 5; i++) {
        expect((await request(app.business, "GET", `/users/${ann?.id}`)).status).toBe(200)
      }
      expect(
        await metric(app.admin, /^effect_dal_cache_errors_total\{cache="users"\}/)
      ).toBeGreaterThanOrEqual(5)
      expect(app.output().match(/failing open/g)?.length ?? 0).toBeLessThanOrEqual(6)
    } finally {
      expect(await app.stop()).toBe(0)
    }
    expectNoEmail(app)
  })
})

describe("demo program on SQLite: dead letters", () => {
  it("a write the database refuses for good is dead-lettered, reported, exits 1, and is written on the next start", async () => {
    const url = sqliteUrl()
    const app = await start({ DATABASE_URL: url })
    const [ann] = await createUsers(app, 1)
    expect((await request(app.business, "PUT", `/users/${ann?.id}`, { email: "taken@x.io" })).status).toBe(
      200
    )
    // Someone writes straight into the database and takes the email the pending write holds.
    const db = new Sqlite(url.slice("sqlite:".length))
    db.prepare(
      "INSERT INTO users (first_name, last_name, email, age) VALUES ('X', 'X', 'taken@x.io', 1)"
    ).run()
    expect(json(await request(app.admin, "POST", "/cache/flush"))).toEqual({
      written: 0,
      failed: [],
      deadLettered: [String(ann?.id)]
    })
    expect(await app.stop()).toBe(1)
    expect(app.output()).toMatch(new RegExp(`1 acknowledged write\\(s\\) NOT stored .*user ids: ${ann?.id}`))
    expectNoEmail(app)
    db.prepare("DELETE FROM users WHERE first_name = 'X'").run()
    db.close()
    const next = await start({ DATABASE_URL: url })
    await waitFor("the dead letter replayed", () => sqliteRows(url)[0]?.email === "taken@x.io")
    expect(await next.stop()).toBe(0)
  })
})

describe("demo program on SQLite: write-back on eviction", () => {
  it("a user evicted from a full memory cache reaches the database before any flush", async () => {
    const url = sqliteUrl()
    const app = await start({ DATABASE_URL: url, CACHE_MAX_ENTRIES: "5" })
    const users = await createUsers(app, 20)
    for (const u of users) {
      expect((await request(app.business, "PUT", `/users/${u.id}`, { lastName: `E${u.id}` })).status).toBe(
        200
      )
    }
    const written = () => sqliteRows(url).filter((r) => r.lastName.startsWith("E")).length
    // 15 of the 20 dirty users no longer fit in the cache; the write-back tick (1 s) writes them.
    await waitFor("evicted users written back", () => written() >= 15)
    expect(
      await metric(app.admin, /^effect_dal_cache_evictions_total\{cache="users",reason="capacity"\}/)
    ).toBeGreaterThan(0)
    expect(await app.stop()).toBe(0)
    expect(written()).toBe(20)
  })
})
