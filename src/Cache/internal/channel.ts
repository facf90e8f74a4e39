/**
 * The Redis pub/sub channel through which processes tell one another what changed (refresh-ahead's
 * invalidations, the bloom filter's new keys). Each message carries its sender's origin, so a process
 * ignores its own; `k: null` means "every key" (a change whose rows are unknown).
 *
 * Pub/sub delivers at most once, to the subscribers connected at the time: a process whose
 * subscription was down misses messages. So `onReconnect` runs each time the subscription comes back
 * after a drop, and each pattern repairs there (refresh-ahead invalidates every key it tracks, the
 * bloom filter rebuilds).
 *
 * @internal
 */
import { randomUUID } from "node:crypto"
import { Effect, Option, type Scope } from "effect"
import type { Cluster, Redis } from "ioredis"
import { CacheError } from "../CacheError.js"
import * as RedisCache from "../RedisCache.js"

/**
 * Where processes tell one another of changes: a channel on a Redis at `url` (connections opened and
 * closed with the Layer), or on a client the caller owns (a duplicate of it subscribes).
 *
 * @internal
 */
export type RedisChannel = { readonly channel: string } & (
  | { readonly url: string }
  | { readonly client: Redis | Cluster }
)

/** What one change asks of every process: these keys, or every key (`null`). @internal */
export interface Message {
  readonly o: string
  readonly k: ReadonlyArray<string> | null
}

const isMessage = (u: unknown): u is Message =>
  typeof u === "object" &&
  u !== null &&
  "o" in u &&
  typeof u.o === "string" &&
  "k" in u &&
  (u.k === null || (Array.isArray(u.k) && u.k.every((k) => typeof k === "string")))

/** A channel: `publish` tells the others; `parse` reads a received text, `None` for this process's own. @internal */
export interface Channel {
  readonly publish: (keys: ReadonlyArray<string> | null) => Effect.Effect<void>
  readonly parse: (text: string) => Effect.Effect<Option.Option<ReadonlyArray<string> | null>>
}

/**
 * Subscribes to `redis.channel` for the life of the scope: every message text goes to `received`,
 * and `onReconnect` runs whenever the subscription is back after a drop. `what` names the pattern
 * in errors and logs.
 *
 * @internal
 */
export const connect = (
  redis: RedisChannel,
  what: string,
  received: (text: string) => void,
  onReconnect: () => void
): Effect.Effect<Channel, CacheError, Scope.Scope> =>
  Effect.gen(function* () {
    const origin = randomUUID()
    const publisher = "client" in redis ? redis.client : (yield* RedisCache.make({ url: redis.url })).client
    const subscriber = yield* Effect.acquireRelease(
      Effect.sync(() => publisher.duplicate()),
      (client) => Effect.sync(() => client.disconnect())
    )
    subscriber.on("error", () => {})
    subscriber.on("message", (channel: string, text: string) => {
      if (channel === redis.channel) received(text)
    })
    yield* RedisCache.ready(subscriber, `${what}.subscribe`)
    yield* Effect.tryPromise({
      try: () => subscriber.subscribe(redis.channel),
      catch: (cause) =>
        new CacheError({
          reason: "connection",
          operation: `${what}.subscribe`,
          detail: cause instanceof Error ? cause.message : String(cause),
          cause
        })
    })
    // ioredis resubscribes on its own after a reconnect; what was published meanwhile is lost.
    let dropped = false
    subscriber.on("close", () => {
      dropped = true
    })
    subscriber.on("ready", () => {
      if (!dropped) return
      dropped = false
      onReconnect()
    })
    return {
      publish: (keys) =>
        Effect.tryPromise(() =>
          publisher.publish(redis.channel, JSON.stringify({ o: origin, k: keys }))
        ).pipe(
          Effect.catchAll((e) => Effect.logWarning(`${what}: publishing on ${redis.channel} failed`, e))
        ),
      parse: (text) => {
        const parsed = Option.liftThrowable(JSON.parse)(text)
        if (Option.isNone(parsed) || !isMessage(parsed.value)) {
          return Effect.as(Effect.logWarning(`${what}: ignoring a malformed message`), Option.none())
        }
        return Effect.succeed(parsed.value.o === origin ? Option.none() : Option.some(parsed.value.k))
      }
    }
  })
