/**
 * A change stream source following a PostgreSQL logical replication slot with the built-in
 * `pgoutput` plugin, through `pg-logical-replication`. The slot is the durable position: the server
 * keeps it (`confirmed_flush_lsn`) and resends what follows it after a restart; committing a
 * transaction acknowledges its commit LSN to the server (or, while no replication connection is
 * open, advances the slot with `pg_replication_slot_advance`). The server writes the slot's position
 * to disk at its next checkpoint: after a crash of the server, the stream may replay a little. The publication and the slot are created
 * when missing (`FOR ALL TABLES`, or for `tables`), or given.
 *
 * The server needs `wal_level=logical` (a restart), room in `max_replication_slots` and
 * `max_wal_senders`; the user needs the `REPLICATION` attribute, and to create the publication
 * ownership of the tables (`FOR ALL TABLES`: a superuser). A slot retains WAL until it is
 * acknowledged: a listener that stays away fills the server's disk unless
 * `max_slot_wal_keep_size` bounds it (then the slot is lost and this source fails with
 * `position_lost`). Drop a slot no longer followed (`SELECT pg_drop_replication_slot('name')`).
 *
 * Deleted rows carry only their key unless the table has `REPLICA IDENTITY FULL`. Values come
 * decoded as `pg` decodes text results (int8 and numeric as strings).
 *
 * @since 0.1.0
 */
import { Effect, type Layer, Redacted, Schedule, Stream } from "effect"
import Pg from "pg"
import { LogicalReplicationService, type Pgoutput, PgoutputPlugin } from "pg-logical-replication"
import * as ChangeStream from "./ChangeStream.js"
import { ChangeStreamError } from "./ChangeStreamError.js"
import { describe } from "./internal/describe.js"

/** @since 0.1.0 @category models */
export interface Options {
  /** `postgres://user:password@host:port/database` */
  readonly url: string | Redacted.Redacted
  /** The replication slot (lowercase letters, digits, `_`; default `effect_dal_changes`). */
  readonly slot?: string
  /** The publication (same alphabet; default `effect_dal_changes`). */
  readonly publication?: string
  /** The tables the publication is created for, when it is missing (default: all tables). */
  readonly tables?: ReadonlyArray<string>
  /** Create the publication and the slot when missing (default true); otherwise their absence is a `setup` error. */
  readonly create?: boolean
  /** Names the source (default `postgres:<host>:<port>/<database>#<slot>`). */
  readonly name?: string
}

/** Names go into replication commands that `pg-logical-replication` builds as text: allow no quoting at all. */
const safeName = /^[a-z_][a-z0-9_]{0,62}$/

const classify = (name: string, cause: unknown): ChangeStreamError => {
  const code = typeof cause === "object" && cause !== null && "code" in cause ? cause.code : undefined
  const reason =
    code === "42501" || code === "28000" || code === "28P01" || code === "42704" || code === "55000"
      ? "setup"
      : "connection"
  return new ChangeStreamError({ reason, source: name, detail: describe(cause), cause })
}

/** A PostgreSQL LSN ("16/B374D848") as a number of bytes. */
const lsnOffset = (lsn: string): number => {
  const [hi, lo] = lsn.split("/")
  return Number.parseInt(hi ?? "0", 16) * 2 ** 32 + Number.parseInt(lo ?? "0", 16)
}

/**
 * The service forwards its pg client's errors only until it stops, and attaches its forwarder only
 * once connected: every client it opens gets a permanent sink as well, so a FATAL from a dying
 * server (`unexpected postmaster exit`) never reaches the process as an uncaught exception.
 */
/** Matched by shape: the pg the replication library loads may be another copy than ours. */
const isEmitter = (u: unknown): u is Pick<Pg.Client, "on"> =>
  typeof u === "object" && u !== null && "on" in u && typeof u.on === "function"

const guardClients = (service: LogicalReplicationService) => {
  const open: unknown = Reflect.get(service, "client")
  if (typeof open !== "function") return
  Reflect.set(service, "client", async () => {
    const opened: unknown = await open.call(service)
    const client: unknown = Array.isArray(opened) ? opened[0] : undefined
    if (isEmitter(client)) client.on("error", () => {})
    return opened
  })
}

/** The pg client of a replication service (a field the library keeps to itself). */
const clientOf = (service: LogicalReplicationService): Pick<Pg.Client, "on"> | undefined => {
  const client: unknown = Reflect.get(service, "_client")
  return isEmitter(client) ? client : undefined
}

interface Pending {
  readonly commitTime: Date
  readonly changes: Array<ChangeStream.RowChange>
}

const pick = (row: Readonly<Record<string, unknown>>, columns: ReadonlyArray<string>) =>
  columns.length === 0 || columns.some((c) => row[c] === undefined)
    ? undefined
    : Object.fromEntries(columns.map((c) => [c, row[c]]))

const rowChange = (message: Pgoutput.Message): ReadonlyArray<ChangeStream.RowChange> => {
  switch (message.tag) {
    case "insert": {
      const { relation } = message
      return [
        {
          schema: relation.schema,
          table: relation.name,
          operation: "INSERT",
          key: pick(message.new, relation.keyColumns),
          row: message.new,
          before: undefined
        }
      ]
    }
    case "update": {
      const { relation } = message
      const old = message.old ?? message.key ?? undefined
      return [
        {
          schema: relation.schema,
          table: relation.name,
          operation: "UPDATE",
          key: pick(message.new, relation.keyColumns),
          row: message.new,
          before: old
        }
      ]
    }
    case "delete": {
      const { relation } = message
      const old = message.old ?? message.key ?? undefined
      return [
        {
          schema: relation.schema,
          table: relation.name,
          operation: "DELETE",
          key: old === undefined ? undefined : pick(old, relation.keyColumns),
          row: old,
          before: undefined
        }
      ]
    }
    case "truncate":
      return message.relations.map((relation) => ({
        schema: relation.schema,
        table: relation.name,
        operation: "DELETE",
        key: undefined,
        row: undefined,
        before: undefined
      }))
    default:
      return []
  }
}

/**
 * The logical replication source of `options` (see the module doc).
 *
 * @since 0.1.0 @category constructors
 */
export const make = (options: Options): Effect.Effect<ChangeStream.Source, ChangeStreamError> =>
  Effect.gen(function* () {
    const connectionString = typeof options.url === "string" ? options.url : Redacted.value(options.url)
    const url = yield* Effect.try({
      try: () => new URL(connectionString),
      catch: () =>
        new ChangeStreamError({
          reason: "setup",
          source: "postgres",
          detail: "the URL is not a valid postgres:// URL"
        })
    })
    const slot = options.slot ?? "effect_dal_changes"
    const publication = options.publication ?? "effect_dal_changes"
    const name = options.name ?? `postgres:${url.host}${url.pathname}#${slot}`
    for (const [what, value] of [
      ["slot", slot],
      ["publication", publication]
    ] as const) {
      if (!safeName.test(value)) {
        return yield* new ChangeStreamError({
          reason: "setup",
          source: name,
          detail: `the ${what} name must match ${safeName.source}`
        })
      }
    }
    const fail = (detail: string, reason: "setup" | "position_lost" = "setup") =>
      new ChangeStreamError({ reason, source: name, detail })

    /** A plain client for the duration of `f`. */
    const withClient = <A>(f: (client: Pg.Client) => Promise<A>) =>
      Effect.acquireUseRelease(
        Effect.tryPromise({
          try: async () => {
            const client = new Pg.Client({ connectionString, connectionTimeoutMillis: 5000 })
            client.on("error", () => {})
            await client.connect()
            return client
          },
          catch: (cause) => classify(name, cause)
        }),
        (client) => Effect.tryPromise({ try: () => f(client), catch: (cause) => classify(name, cause) }),
        (client) => Effect.promise(() => client.end().catch(() => undefined))
      )

    interface SlotState {
      readonly problem?: string
      readonly position?: string
      readonly lost?: boolean
    }

    const start = Effect.flatMap(
      withClient(async (client): Promise<SlotState> => {
        const level = await client.query<{ wal_level: string }>("SHOW wal_level")
        if (level.rows[0]?.wal_level !== "logical") {
          return { problem: `wal_level is ${level.rows[0]?.wal_level}, not logical` }
        }
        const pub = await client.query("SELECT 1 FROM pg_publication WHERE pubname = $1", [publication])
        if (pub.rowCount === 0) {
          if (options.create === false) return { problem: `the publication ${publication} does not exist` }
          const target =
            options.tables === undefined
              ? "ALL TABLES"
              : `TABLE ${options.tables.map((t) => client.escapeIdentifier(t)).join(", ")}`
          await client.query(`CREATE PUBLICATION ${client.escapeIdentifier(publication)} FOR ${target}`)
        }
        const found = await client.query<{ lsn: string | null; plugin: string; wal_status: string | null }>(
          "SELECT confirmed_flush_lsn::text AS lsn, plugin, wal_status FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()",
          [slot]
        )
        const row = found.rows[0]
        if (row === undefined) {
          if (options.create === false) return { problem: `the replication slot ${slot} does not exist` }
          const created = await client.query<{ lsn: string }>(
            "SELECT lsn::text AS lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')",
            [slot]
          )
          return { position: created.rows[0]?.lsn ?? "0/0" }
        }
        if (row.plugin !== "pgoutput") return { problem: `the slot ${slot} uses ${row.plugin}, not pgoutput` }
        if (row.wal_status === "lost") return { lost: true }
        return { position: row.lsn ?? "0/0" }
      }),
      (state) =>
        state.lost === true
          ? Effect.fail(fail(`the slot ${slot} lost WAL it needed (max_slot_wal_keep_size)`, "position_lost"))
          : state.problem !== undefined
            ? Effect.fail(fail(state.problem))
            : Effect.succeed(state.position ?? "0/0")
    )

    let live: LogicalReplicationService | undefined
    let acknowledged = "0/0"

    const read = (from: string) =>
      Stream.asyncScoped<ChangeStream.Transaction, ChangeStreamError>((emit) => {
        const service = new LogicalReplicationService(
          { connectionString, connectionTimeoutMillis: 5000 },
          { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } }
        )
        guardClients(service)
        const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [publication] })
        let pending: Pending | undefined
        service.on("data", (_lsn: string, message: Pgoutput.Message) => {
          if (message.tag === "begin") {
            pending = {
              commitTime: new Date(Number(BigInt(String(message.commitTime)) / 1000n)),
              changes: []
            }
            return
          }
          if (message.tag === "commit") {
            const done = pending
            pending = undefined
            const position = message.commitEndLsn
            if (done === undefined || position === null) return
            // Resolves once the stream has room: the service reads no further until then.
            return emit
              .single({
                position,
                offset: lsnOffset(position),
                commitTime: done.commitTime,
                changes: done.changes
              })
              .then(
                () => undefined,
                () => undefined
              )
          }
          pending?.changes.push(...rowChange(message))
        })
        service.on("heartbeat", (_lsn: string, _time: number, shouldRespond: boolean) => {
          if (shouldRespond) service.acknowledge(acknowledged).catch(() => undefined)
        })
        service.on("error", (cause: unknown) => {
          emit.fail(classify(name, cause)).catch(() => undefined)
        })
        let closed = false
        const ended = (error: ChangeStreamError) => {
          // A connection that completed after the release is closed here.
          if (closed) service.destroy().catch(() => service)
          else emit.fail(error).catch(() => undefined)
        }
        return Effect.acquireRelease(
          Effect.sync(() => {
            live = service
            service.subscribe(plugin, slot, from).then(
              () =>
                ended(
                  new ChangeStreamError({
                    reason: "connection",
                    source: name,
                    detail: "the server ended replication"
                  })
                ),
              (cause: unknown) => ended(classify(name, cause))
            )
          }),
          () =>
            Effect.promise(() => {
              closed = true
              if (live === service) live = undefined
              // destroy() drops every listener, the pg client's too: errors of a connection still
              // closing (a server that went away mid-stream) must not go unhandled.
              const client = clientOf(service)
              const sink = () => {
                service.on("error", () => {})
                client?.on("error", () => {})
              }
              return service.destroy().then(sink, sink)
            })
        )
      }, 16)

    /** While no replication connection is open, the slot is advanced by SQL (retried while it is still held). */
    const advance = (position: string) =>
      withClient((client) =>
        client.query(
          "SELECT pg_replication_slot_advance(slot_name, GREATEST($2::pg_lsn, confirmed_flush_lsn)) FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()",
          [slot, position]
        )
      ).pipe(
        Effect.retry({
          times: 20,
          schedule: Schedule.spaced("50 millis"),
          while: (e) => e.reason === "connection"
        }),
        Effect.zipRight(
          Effect.sync(() => {
            acknowledged = position
          })
        )
      )

    const persist = (position: string) =>
      Effect.suspend(() => {
        const service = live
        if (service === undefined || service.isStop()) return advance(position)
        return Effect.tryPromise({
          try: () => service.acknowledge(position),
          catch: (cause) => classify(name, cause)
        }).pipe(
          Effect.flatMap((sent) =>
            sent
              ? Effect.sync(() => {
                  acknowledged = position
                })
              : advance(position)
          )
        )
      })

    return { name, start, read, persist }
  })

/**
 * The `ChangeStream` of a PostgreSQL logical replication slot.
 *
 * @since 0.1.0 @category layers
 */
export const layer = (
  options: Options,
  streamOptions: ChangeStream.Options = {}
): Layer.Layer<ChangeStream.ChangeStream, ChangeStreamError> =>
  ChangeStream.layer(make(options), streamOptions)
