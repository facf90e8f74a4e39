/**
 * The builder an INSERT, UPDATE or DELETE becomes after `.returning(...)`: it yields the rows the
 * statement wrote, decoded through the entity. PostgreSQL and SQLite support RETURNING on all
 * three; MariaDB 10.5+ on INSERT and DELETE (the `mysql` dialect compiles it and the first use on a
 * session checks the server: MySQL fails with `QueryBuildError`). UPDATE ... RETURNING on the
 * `mysql` dialect fails to compile.
 *
 * @since 0.1.0
 */
import { Effect, type Either, Pipeable } from "effect"
import type { EntityRegistryService } from "../Schema/EntityRegistry.js"
import type * as Compiler from "./Compiler.js"
import type { Dialect } from "./Dialect.js"
import type { ExecResult } from "./ExecResult.js"
import type { Executor } from "./Executor.js"
import * as Mutation from "./internal/mutation.js"
import { type DecodeError, NoRowsError, type QueryError } from "./QueryError.js"
import type * as RowDecoder from "./RowDecoder.js"

/** What running a write can fail with. @since 0.1.0 @category errors */
export type WriteError = QueryError | Compiler.CompileError

/**
 * A write whose returned rows decode to `R`.
 *
 * @since 0.1.0 @category models
 */
export class ReturningBuilder<R> implements Pipeable.Pipeable {
  /** @internal */
  readonly planner: Mutation.Planner
  readonly decoder: RowDecoder.RowDecoder<R>
  /** @internal */
  constructor(planner: Mutation.Planner, decoder: RowDecoder.RowDecoder<R>) {
    this.planner = planner
    this.decoder = decoder
  }

  pipe() {
    // biome-ignore lint/complexity/noArguments: the Pipeable protocol forwards its arguments.
    return Pipeable.pipeArguments(this, arguments)
  }

  /** The SQL and parameters for `dialect`; fails when the write needs several statements (see `compileAll`). */
  compile(
    dialect: Dialect,
    registry: EntityRegistryService = Mutation.defaultRegistry
  ): Either.Either<Compiler.Compiled, Compiler.CompileError> {
    return Mutation.compileOne(this.planner, dialect, registry)
  }

  /** Every statement the write runs, in order. */
  compileAll(
    dialect: Dialect,
    registry: EntityRegistryService = Mutation.defaultRegistry
  ): Either.Either<ReadonlyArray<Compiler.Compiled>, Compiler.CompileError> {
    return Mutation.compileAll(this.planner, dialect, registry)
  }

  /** Every row written, in the order the database returned them. */
  getMulti(): Effect.Effect<ReadonlyArray<R>, WriteError | DecodeError, Executor> {
    return Effect.flatMap(Mutation.run(this.planner), ({ rows, model }) => this.decoder.decode(rows, model))
  }

  /** The first row written, or `NoRowsError` when none was (e.g. an insert that did nothing on conflict). */
  get(): Effect.Effect<R, WriteError | DecodeError | NoRowsError, Executor> {
    return Effect.flatMap(Mutation.run(this.planner), ({ rows, model }) =>
      Effect.flatMap(this.decoder.decode(rows.slice(0, 1), model), (decoded) =>
        decoded[0] === undefined ? new NoRowsError({ table: model.table }) : Effect.succeed(decoded[0])
      )
    )
  }

  /** Runs the write for its counts only. */
  exec(): Effect.Effect<ExecResult, WriteError, Executor> {
    return Effect.map(Mutation.run(this.planner), ({ result }) => result)
  }
}
