/**
 * How the patterns that follow the change feed and a Redis channel (refresh-ahead, the bloom filter)
 * apply what arrives: drained, never awaited. A consumer fiber that had taken an event but not yet
 * applied it would let the read right after a committed write see the old state; instead every read
 * first runs `drain` (a non-blocking take of whatever is pending), and a background fiber runs it
 * every `interval` for when no read comes.
 *
 * @internal
 */
import { type Duration, Effect, Option, type Queue, type Scope } from "effect"
import { type ChangeEvent, ChangeFeed } from "../../Query/ChangeFeed.js"

/**
 * Subscribes to the change feed for the life of the scope. The returned effect applies everything
 * pending there (with `onEvent`), then on `remote` (with `onRemote`); a fiber of the scope runs it
 * every `interval`.
 *
 * @internal
 */
export const make = <B>(options: {
  readonly onEvent: (event: ChangeEvent) => Effect.Effect<void>
  readonly remote: Queue.Dequeue<B>
  readonly onRemote: (message: B) => Effect.Effect<void>
  readonly interval: Duration.DurationInput
}): Effect.Effect<Effect.Effect<void>, never, ChangeFeed | Scope.Scope> =>
  Effect.gen(function* () {
    const { onEvent, remote, onRemote } = options
    const events = yield* Effect.flatMap(ChangeFeed, (feed) => feed.subscribe)
    const waiting = () =>
      Option.getOrElse(events.unsafeSize(), () => 0) + Option.getOrElse(remote.unsafeSize(), () => 0) > 0
    const drain = Effect.suspend(() =>
      waiting()
        ? Effect.zipRight(
            Effect.flatMap(events.takeAll, (taken) => Effect.forEach(taken, onEvent, { discard: true })),
            Effect.flatMap(remote.takeAll, (taken) => Effect.forEach(taken, onRemote, { discard: true }))
          )
        : Effect.void
    )
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(options.interval), drain)))
    return drain
  })
