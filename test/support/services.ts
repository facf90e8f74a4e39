/**
 * Where the integration tests find their services, and whether they answered the readiness wait in
 * `globalSetup.ts`. Suites call `serviceAvailable(name)` and skip loudly when it is false; under
 * `REQUIRE_SERVICES=1` the global setup has already failed the run instead.
 */
import { inject } from "vitest"

export type ServiceName = "mysql" | "pg" | "redis"

export const serviceUrls: Record<ServiceName, string> = {
  mysql: process.env.MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test",
  pg: process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/test",
  redis: process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
}

declare module "vitest" {
  export interface ProvidedContext {
    services: Record<ServiceName, boolean>
  }
}

/** True when the service answered the readiness wait; prints a loud notice when it did not. */
export const serviceAvailable = (name: ServiceName): boolean => {
  const up = inject("services")[name]
  if (!up) {
    console.warn(`\n!!! ${name} at ${serviceUrls[name]} is unreachable: its suites are SKIPPED !!!\n`)
  }
  return up
}
