/**
 * Where the integration tests find their services, and whether they answered the readiness wait in
 * `globalSetup.ts`. Suites call `serviceAvailable(name)` and skip loudly when it is false; under
 * `REQUIRE_SERVICES=1` the global setup has already failed the run instead.
 */
import { inject } from "vitest"
import { type ServiceName, serviceUrls } from "./urls.js"

export { type ServiceName, serviceUrls }

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
