/**
 * The names the documentation's code fragments take as given (an entity, a row, a program to run…),
 * made global for `test/Docs.test.ts`, which type-checks README.md's and docs/*.md's ```ts blocks. A
 * block that declares one of these names itself shadows it. Imports go through the package's public
 * exports, like the blocks'.
 */
import type { Effect, Layer, Option, Stream } from "effect"
import { Schema } from "effect"
import { Cache, Entity, type Executor, ReadThrough, type Select, WriteThrough } from "effect-dal"
import type { RateLimitedError } from "effect-dal/RateLimited"

class UserFixture extends Schema.Class<UserFixture>("User")(
  {
    id: Schema.Number.pipe(Entity.generated),
    firstName: Schema.String,
    lastName: Schema.String,
    email: Schema.String.pipe(Entity.sensitive),
    name: Schema.String,
    age: Schema.Number,
    visits: Schema.Number,
    joinedAt: Schema.Date
  },
  Entity.table("users")
) {}

class PostFixture extends Schema.Class<PostFixture>("Post")(
  {
    id: Schema.Number.pipe(Entity.generated),
    userId: Schema.Number,
    title: Schema.String,
    likes: Schema.Number
  },
  Entity.table("posts")
) {}

class CommentFixture extends Schema.Class<CommentFixture>("Comment")(
  { id: Schema.Number.pipe(Entity.generated), userId: Schema.Number, body: Schema.String },
  Entity.table("comments")
) {}

class TagFixture extends Schema.Class<TagFixture>("Tag")(
  { id: Schema.Number.pipe(Entity.generated), label: Schema.String },
  Entity.table("tags")
) {}

class AccountFixture extends Schema.Class<AccountFixture>("Account")(
  { id: Schema.Number.pipe(Entity.generated), balance: Schema.Number },
  Entity.table("accounts")
) {}

class OrderFixture extends Schema.Class<OrderFixture>("Order")(
  { id: Schema.Number.pipe(Entity.generated), total: Schema.Number },
  Entity.table("orders")
) {}

class UserCacheFixture extends Cache.Tag("app/UserCache")<UserCacheFixture, UserFixture>() {}
class UserReadsFixture extends ReadThrough.Tag("app/UserReads")<
  UserReadsFixture,
  UserFixture,
  Select.SelectError | RateLimitedError,
  Executor.Executor
>() {}
class UserWritesFixture extends WriteThrough.Tag("app/UserWrites")<
  UserWritesFixture,
  UserFixture,
  WriteThrough.EntityStoreError,
  Executor.Executor
>() {}

interface OrderEventFixture {
  readonly orderId: number
}

declare global {
  const User: typeof UserFixture
  type User = UserFixture
  const Post: typeof PostFixture
  type Post = PostFixture
  const Comment: typeof CommentFixture
  type Comment = CommentFixture
  const Tag: typeof TagFixture
  type Tag = TagFixture
  const Account: typeof AccountFixture
  type Account = AccountFixture
  const Order: typeof OrderFixture
  type Order = OrderFixture
  type OrderEvent = OrderEventFixture
  /** Caches of users, as Tags. */
  const UserCache: typeof UserCacheFixture
  type UserCache = UserCacheFixture
  const UserReads: typeof UserReadsFixture
  type UserReads = UserReadsFixture
  const UserWrites: typeof UserWritesFixture
  type UserWrites = UserWritesFixture
  const cache: Cache.Cache<unknown>
  const countedGet: (inner: Cache.Cache<unknown>) => Cache.Cache<unknown>["get"]
  const base: Layer.Layer<UserCacheFixture>
  const loadUser: (
    id: string
  ) => Effect.Effect<Option.Option<UserFixture>, Select.SelectError, Executor.Executor>
  const id: string
  /** The fields of an entity. */
  const fields: {
    readonly firstName: typeof Schema.String
    readonly lastName: typeof Schema.String
    readonly email: typeof Schema.String
  }
  const input: string
  const o: OrderFixture
  /** Parts of a transaction. */
  const debit: Effect.Effect<void, never, Executor.Executor>
  const credit: Effect.Effect<void, never, Executor.Executor>
  const audit: Effect.Effect<void, never, Executor.Executor>
  /** Some rows, a partial row, events and values the fragments use. */
  const ann: User
  const bob: User
  const cid: User
  const user: User
  const patch: Partial<User> & { readonly id: number }
  const order: Order
  const event: OrderEvent
  const email: string
  const table: string
  const now: Date
  const url: string
  const host: string
  const port: number
  /** A program that needs a database (or nothing). */
  const program: Effect.Effect<void, never, import("effect-dal").Executor.Executor>
  const send: (event: OrderEvent) => Effect.Effect<void>
  const sendEmail: (user: User) => Effect.Effect<void>
  const orders: Stream.Stream<OrderEvent>
}
