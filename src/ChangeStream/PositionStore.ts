/**
 * Where a change stream keeps the position its consumer committed, so that a restarted listener
 * resumes there. A PostgreSQL slot keeps its own position on the server and needs no store; a
 * MariaDB binlog reader has no server-side cursor and reads and writes its GTID position here.
 *
 * `layerFile` survives a restart of the process (the file is replaced atomically: written beside,
 * flushed, renamed); `layerMemory` is the in-memory sibling for tests and for a listener whose
 * restart may start from the server's current position.
 *
 * @since 0.1.0
 */
import { open, readFile, rename } from "node:fs/promises"
import { Context, Effect, Layer, Option, Ref } from "effect"
import { ChangeStreamError } from "./ChangeStreamError.js"
import { describe } from "./internal/describe.js"

/** @since 0.1.0 @category models */
export interface PositionStoreService {
  /** The position last saved under `name`, if any. */
  readonly load: (name: string) => Effect.Effect<Option.Option<string>, ChangeStreamError>
  /** Saves `position` under `name` durably before succeeding. */
  readonly save: (name: string, position: string) => Effect.Effect<void, ChangeStreamError>
}

/** @since 0.1.0 @category tags */
export class PositionStore extends Context.Tag("effect-dal/ChangeStream/PositionStore")<
  PositionStore,
  PositionStoreService
>() {}

/**
 * A store in memory: positions last as long as the Layer.
 *
 * @since 0.1.0 @category constructors
 */
export const makeMemory: Effect.Effect<PositionStoreService> = Effect.map(
  Ref.make(new Map<string, string>()),
  (ref) => ({
    load: (name) => Effect.map(Ref.get(ref), (m) => Option.fromNullable(m.get(name))),
    save: (name, position) => Ref.update(ref, (m) => new Map(m).set(name, position))
  })
)

/** @since 0.1.0 @category layers */
export const layerMemory: Layer.Layer<PositionStore> = Layer.effect(PositionStore, makeMemory)

const storeError = (detail: string, cause: unknown) =>
  new ChangeStreamError({
    reason: "store",
    source: "PositionStore",
    detail: `${detail}: ${describe(cause)}`,
    cause
  })

const isMissing = (cause: unknown) =>
  typeof cause === "object" && cause !== null && "code" in cause && cause.code === "ENOENT"

/**
 * A store in one JSON file (`{ "<name>": "<position>" }`), replaced atomically on every save.
 * Saves are serialised; one process should own the file.
 *
 * @since 0.1.0 @category constructors
 */
export const makeFile = (path: string): Effect.Effect<PositionStoreService> =>
  Effect.map(Effect.makeSemaphore(1), (lock) => {
    const read = Effect.tryPromise({
      try: async (): Promise<Record<string, string>> => {
        const text = await readFile(path, "utf8").catch((cause: unknown) => {
          if (isMissing(cause)) return "{}"
          throw cause
        })
        const parsed: unknown = JSON.parse(text)
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
          throw new Error("the file does not hold a JSON object")
        }
        const entries = Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === "string")
        return Object.fromEntries(entries)
      },
      catch: (cause) => storeError(`reading ${path}`, cause)
    })
    const write = (content: Record<string, string>) =>
      Effect.tryPromise({
        try: async () => {
          const temp = `${path}.${process.pid}.tmp`
          const handle = await open(temp, "w")
          try {
            await handle.writeFile(JSON.stringify(content))
            await handle.sync()
          } finally {
            await handle.close()
          }
          await rename(temp, path)
        },
        catch: (cause) => storeError(`writing ${path}`, cause)
      })
    return {
      load: (name) => Effect.map(read, (content) => Option.fromNullable(content[name])),
      save: (name, position) =>
        lock.withPermits(1)(Effect.flatMap(read, (content) => write({ ...content, [name]: position })))
    }
  })

/** @since 0.1.0 @category layers */
export const layerFile = (path: string): Layer.Layer<PositionStore> =>
  Layer.effect(PositionStore, makeFile(path))
