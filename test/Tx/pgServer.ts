/**
 * A throwaway PostgreSQL server for the outage tests: Debian's initdb/pg_ctl, run as the `postgres`
 * user (they refuse root), loopback only, a free port, data in a temporary directory. `crash` stops
 * it the way a power cut would (`pg_ctl stop -m immediate`: no checkpoint, every backend killed);
 * `start` brings it back on the same data directory. An exit hook stops it if a run dies early.
 */
import { execFileSync } from "node:child_process"
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir, userInfo } from "node:os"
import { join } from "node:path"
import { ephemeralPort, host } from "../support/redisServer.js"

const binDir = (): string | undefined => {
  const root = "/usr/lib/postgresql"
  if (!existsSync(root)) return undefined
  const version = readdirSync(root).sort().pop()
  return version === undefined ? undefined : join(root, version, "bin")
}

const asPostgres = (command: string, args: ReadonlyArray<string>) => {
  const bin = binDir()
  if (bin === undefined) throw new Error("PostgreSQL binaries not found under /usr/lib/postgresql")
  const full = join(bin, command)
  // initdb and postgres refuse to run as root.
  return userInfo().uid === 0
    ? execFileSync("runuser", ["-u", "postgres", "--", full, ...args], { stdio: "pipe" })
    : execFileSync(full, args, { stdio: "pipe" })
}

/** True when the binaries are there (and, as root, the `postgres` user exists to run them). */
export const pgServerAvailable = (): boolean => {
  if (binDir() === undefined) return false
  if (userInfo().uid !== 0) return true
  try {
    execFileSync("id", ["postgres"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}

export interface PgServer {
  readonly url: string
  /** Starts (again) on the same data directory and waits until it accepts connections. */
  readonly start: () => void
  /** Immediate shutdown: every connection dies, nothing is checkpointed. */
  readonly crash: () => void
  /** Stops the server and removes its data. */
  readonly stop: () => void
}

export const startPgServer = async (): Promise<PgServer> => {
  const dir = mkdtempSync(join(tmpdir(), "effect-dal-pg-"))
  const data = join(dir, "data")
  if (userInfo().uid === 0) chownSync(dir, Number(execFileSync("id", ["-u", "postgres"])), 0)
  const port = await ephemeralPort()
  asPostgres("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "--no-sync"])
  const options = `-p ${port} -k ${dir} -c listen_addresses=${host} -c fsync=off`
  const start = () =>
    asPostgres("pg_ctl", ["start", "-w", "-t", "30", "-D", data, "-o", options, "-l", join(dir, "log")])
  const crash = () => asPostgres("pg_ctl", ["stop", "-w", "-m", "immediate", "-D", data])
  const stopQuietly = () => {
    try {
      crash()
    } catch {
      // Already stopped.
    }
  }
  process.once("exit", stopQuietly)
  start()
  return {
    url: `postgres://postgres@${host}:${port}/postgres`,
    start,
    crash,
    stop: () => {
      process.removeListener("exit", stopQuietly)
      stopQuietly()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
