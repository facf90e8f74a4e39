/**
 * Readiness wait before the integration suites : each service is pinged on a
 * schedule until it answers or the schedule gives up. Unreachable services are announced loudly and
 * their suites skip, unless `REQUIRE_SERVICES=1`, where an unreachable service fails the run.
 */
import { Duration, Effect, Schedule } from "effect"
import { Redis } from "ioredis"
import * as Mysql from "mysql2/promise"
import Pg from "pg"
import type { TestProject } from "vitest/node"
import { type ServiceName, serviceUrls } from "./urls.js"

const ping: Record<ServiceName, (url: string) => Promise<void>> = {
  mysql: async (url) => {
    const conn = await Mysql.createConnection({ uri: url, connectTimeout: 1000 })
    try {
      await conn.query("SELECT 1")
    } finally {
      await conn.end()
    }
  },
  pg: async (url) => {
    const client = new Pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 })
    await client.connect()
    try {
      await client.query("SELECT 1")
    } finally {
      await client.end()
    }
  },
  redis: async (url) => {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000 })
    client.on("error", () => {})
    try {
      await client.connect()
      await client.ping()
    } finally {
      client.disconnect()
    }
  }
}

const waitFor = (name: ServiceName) =>
  Effect.tryPromise(() => ping[name](serviceUrls[name])).pipe(
    Effect.retry(
      Schedule.exponential(Duration.millis(100)).pipe(
        Schedule.union(Schedule.spaced("1 second")),
        Schedule.upTo("10 seconds")
      )
    ),
    Effect.as(true),
    Effect.catchAll((e) =>
      Effect.sync(() => {
        console.warn(`\n!!! ${name} at ${serviceUrls[name]} did not answer: ${String(e.error)} !!!\n`)
        return false
      })
    )
  )

export default async function setup(project: TestProject) {
  const names: ReadonlyArray<ServiceName> = ["mysql", "pg", "redis"]
  const results = await Effect.runPromise(Effect.forEach(names, waitFor, { concurrency: "unbounded" }))
  const services = Object.fromEntries(names.map((n, i) => [n, results[i] === true])) as Record<
    ServiceName,
    boolean
  >
  const down = names.filter((n) => !services[n])
  if (down.length > 0 && process.env.REQUIRE_SERVICES === "1") {
    throw new Error(`REQUIRE_SERVICES=1 but unreachable: ${down.join(", ")}`)
  }
  project.provide("services", services)
}
