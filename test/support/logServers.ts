/**
 * Throwaway database servers whose change logs the change-stream tests read: a MariaDB with a
 * row-based binlog and a PostgreSQL with `wal_level=logical`, each on a free loopback port with its
 * data under the system temp dir, started in its own process group so that `stop` (and an exit hook,
 * if a run dies before its teardown) ends the whole process tree. `kill` stops a server abruptly
 * (SIGKILL) and `restart` brings it back on the same port and data: the outage tests use them.
 *
 * PostgreSQL refuses to run as root: when the tests run as root, the server runs as the `postgres`
 * system user (its data directory is handed over to that user).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { chown, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir, userInfo } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import * as Mysql from "mysql2/promise"
import Pg from "pg"
import { ephemeralPort, host, waitUntil } from "./redisServer.js"

export interface LogServer {
  /** A URL with the server's superuser, on database `test`. */
  readonly url: string
  readonly port: number
  /** SIGKILL to the whole process tree (no clean shutdown). */
  readonly kill: () => Promise<void>
  /** Starts the server again on the same port and data, after `kill`. */
  readonly restart: () => Promise<void>
  /** Stops the server and removes its data. */
  readonly stop: () => Promise<void>
}

const run = promisify(execFile)

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null

/** The pids of `pid`'s descendants (PostgreSQL backends leave their parent's process group). */
const descendants = async (pid: number): Promise<ReadonlyArray<number>> => {
  const { stdout } = await run("ps", ["-o", "pid=", "--ppid", String(pid)]).catch(() => ({ stdout: "" }))
  const children = stdout
    .split("\n")
    .map((line) => Number(line.trim()))
    .filter((n) => n > 0)
  const below = await Promise.all(children.map(descendants))
  return [...children, ...below.flat()]
}

/**
 * Signals the child's process group and every descendant, and waits for the child to exit (SIGKILL
 * to all after 5 s); descendants still alive then are killed too.
 */
const killTree = async (child: ChildProcess, signal: NodeJS.Signals) => {
  const pid = child.pid
  if (pid === undefined || exited(child)) return
  const kill = (target: number, sig: NodeJS.Signals) => {
    try {
      process.kill(target, sig)
    } catch {
      // already gone
    }
  }
  const tree = async (sig: NodeJS.Signals) => {
    const below = await descendants(pid)
    kill(-pid, sig)
    for (const p of below) kill(p, sig)
    return below
  }
  const exitedNow = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const below = await tree(signal)
  const force = setTimeout(() => void tree("SIGKILL"), 5000)
  await exitedNow
  clearTimeout(force)
  for (const p of below) kill(p, "SIGKILL")
}

interface Spawned {
  readonly dir: string
  readonly port: number
  readonly url: string
  readonly start: () => ChildProcess
  readonly ready: () => Promise<unknown>
}

/** Runs a server from `spawned`, with stop/kill/restart and an exit hook over its process group. */
const manage = async (spawned: Spawned): Promise<LogServer> => {
  let child = spawned.start()
  const killOnExit = () => {
    if (child.pid !== undefined && !exited(child)) {
      try {
        process.kill(-child.pid, "SIGKILL")
      } catch {
        // already gone
      }
    }
  }
  process.on("exit", killOnExit)
  const awaitReady = async () => {
    let failed: Error | undefined
    child.once("exit", (code, signal) => {
      failed = new Error(`the server exited (${code ?? signal}) before it was ready`)
    })
    await waitUntil(`the server on ${spawned.port}`, 60_000, async () => {
      if (failed !== undefined) return true
      await spawned.ready()
      return true
    })
    if (failed !== undefined) throw failed
  }
  const stop = async () => {
    await killTree(child, "SIGTERM")
    process.removeListener("exit", killOnExit)
    await rm(spawned.dir, { recursive: true, force: true })
  }
  try {
    await awaitReady()
  } catch (error) {
    await stop()
    throw error
  }
  return {
    url: spawned.url,
    port: spawned.port,
    kill: () => killTree(child, "SIGKILL"),
    restart: async () => {
      child = spawned.start()
      await awaitReady()
    },
    stop
  }
}

const detachedSpawn = (command: string, args: ReadonlyArray<string>, uid?: number, gid?: number) => {
  const child = spawn(command, args, {
    stdio: "ignore",
    detached: true,
    ...(uid === undefined ? {} : { uid }),
    ...(gid === undefined ? {} : { gid })
  })
  child.on("error", () => {})
  return child
}

const mariadbd = "/usr/sbin/mariadbd"

/** A MariaDB with `log_bin`, `binlog_format=ROW`, `binlog_row_image=FULL` and `server_id=1`. */
export const startMariaDb = async (): Promise<LogServer> => {
  const dir = await mkdtemp(join(tmpdir(), "effect-dal-mariadb-"))
  const port = await ephemeralPort()
  const data = join(dir, "data")
  try {
    await run(
      "mariadb-install-db",
      [
        "--no-defaults",
        `--datadir=${data}`,
        "--user=root",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
        "--skip-name-resolve"
      ],
      { timeout: 120_000 }
    )
  } catch (error) {
    await rm(dir, { recursive: true, force: true })
    throw error
  }
  const args = [
    "--no-defaults",
    `--datadir=${data}`,
    "--user=root",
    `--port=${port}`,
    `--bind-address=${host}`,
    `--socket=${join(dir, "mariadb.sock")}`,
    `--pid-file=${join(dir, "mariadb.pid")}`,
    "--skip-name-resolve",
    `--log-bin=${join(dir, "binlog")}`,
    "--binlog-format=ROW",
    "--binlog-row-image=FULL",
    "--server-id=1",
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-file-size=16M",
    "--innodb-flush-log-at-trx-commit=2",
    "--sync-binlog=0",
    "--skip-log-error"
  ]
  const url = `mysql://root@${host}:${port}/test`
  const rootUrl = `mysql://root@${host}:${port}/mysql`
  return manage({
    dir,
    port,
    url,
    start: () => detachedSpawn(mariadbd, args),
    ready: async () => {
      const conn = await Mysql.createConnection({ uri: rootUrl, connectTimeout: 1000 })
      try {
        await conn.query("CREATE DATABASE IF NOT EXISTS test")
      } finally {
        await conn.end()
      }
    }
  })
}

const pgBin = "/usr/lib/postgresql/15/bin"

/** A PostgreSQL 15 with `wal_level=logical` and room for a few replication slots. */
export const startPostgres = async (): Promise<LogServer> => {
  const dir = await mkdtemp(join(tmpdir(), "effect-dal-pg-"))
  const data = join(dir, "data")
  const port = await ephemeralPort()
  const asRoot = userInfo().uid === 0
  let uid: number | undefined
  let gid: number | undefined
  try {
    if (asRoot) {
      uid = Number((await run("id", ["-u", "postgres"])).stdout.trim())
      gid = Number((await run("id", ["-g", "postgres"])).stdout.trim())
      await chown(dir, uid, gid)
    }
    await mkdir(data, { mode: 0o700 })
    if (uid !== undefined && gid !== undefined) await chown(data, uid, gid)
    await new Promise<void>((resolve, reject) => {
      const child = spawn(
        join(pgBin, "initdb"),
        ["-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"],
        { stdio: "ignore", ...(uid === undefined ? {} : { uid }), ...(gid === undefined ? {} : { gid }) }
      )
      child.once("error", reject)
      child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`initdb exited ${code}`))))
    })
    await writeFile(join(data, "postgresql.auto.conf"), "")
  } catch (error) {
    await rm(dir, { recursive: true, force: true })
    throw error
  }
  const args = [
    "-D",
    data,
    "-p",
    String(port),
    "-h",
    host,
    "-k",
    dir,
    "-c",
    "wal_level=logical",
    "-c",
    "max_replication_slots=16",
    "-c",
    "max_wal_senders=16",
    "-c",
    "fsync=off",
    "-c",
    "full_page_writes=off",
    "-c",
    "shared_buffers=32MB"
  ]
  const adminUrl = `postgres://postgres@${host}:${port}/postgres`
  return manage({
    dir,
    port,
    url: `postgres://postgres@${host}:${port}/test`,
    start: () => detachedSpawn(join(pgBin, "postgres"), args, uid, gid),
    ready: async () => {
      const client = new Pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 1000 })
      await client.connect()
      try {
        const found = await client.query("SELECT 1 FROM pg_database WHERE datname = 'test'")
        if (found.rowCount === 0) await client.query("CREATE DATABASE test")
      } finally {
        await client.end()
      }
    }
  })
}

/** Whether the binaries a starter needs are installed. */
export const binariesPresent = {
  mariadb: () => existsSync(mariadbd),
  postgres: () => existsSync(join(pgBin, "postgres")) && existsSync(join(pgBin, "initdb"))
}

/**
 * The server, or `undefined` after a loud warning when its binaries are missing or it cannot start;
 * under `REQUIRE_SERVICES=1` that fails the run instead.
 */
export const startOrSkip = async (
  name: "mariadb" | "postgres",
  start: () => Promise<LogServer>
): Promise<LogServer | undefined> => {
  try {
    if (!binariesPresent[name]()) throw new Error(`the ${name} binaries are not installed`)
    return await start()
  } catch (error) {
    if (process.env.REQUIRE_SERVICES === "1") {
      throw new Error(
        `REQUIRE_SERVICES=1 but a ${name} with its change log could not start: ${String(error)}`
      )
    }
    console.warn(
      `\n!!! a ${name} with its change log could not start (${String(error)}): its suites are SKIPPED !!!\n`
    )
    return undefined
  }
}
