/**
 * The per-database cache of entity models. A database layer owns one registry (a database is the
 * isolation unit): the same schema may map to other table or column names in another database.
 *
 * @since 0.1.0
 */
import { Context, Either, Layer, type Schema } from "effect"
import type { InvalidEntityError } from "./EntityError.js"
import * as EntityModel from "./EntityModel.js"

/** @since 0.1.0 @category models */
export interface EntityRegistryService {
  /** The model of `schema`, derived on first use and cached (by schema identity). */
  readonly get: <A, I>(
    schema: Schema.Schema<A, I, never>
  ) => Either.Either<EntityModel.EntityModel<A>, InvalidEntityError>
  /** Registers per-database table/column names for `schema`, replacing its cached model. */
  readonly override: <A, I>(
    schema: Schema.Schema<A, I, never>,
    overrides: EntityModel.Overrides
  ) => Either.Either<EntityModel.EntityModel<A>, InvalidEntityError>
  /** The tables of the models derived so far that have a sensitive field (what raw SQL naming them may bind). */
  readonly sensitiveTables: () => ReadonlySet<string>
}

/** @since 0.1.0 @category tags */
export class EntityRegistry extends Context.Tag("effect-dal/EntityRegistry")<
  EntityRegistry,
  EntityRegistryService
>() {}

/**
 * Creates an empty registry; models are derived on first use.
 *
 * @since 0.1.0 @category constructors
 */
export const make = (): EntityRegistryService => {
  const models = new WeakMap<object, unknown>()
  const sensitive = new Set<string>()
  const override = <A, I>(schema: Schema.Schema<A, I, never>, overrides: EntityModel.Overrides) =>
    Either.map(EntityModel.make(schema, overrides), (model) => {
      models.set(schema, model)
      if (model.fields.some((f) => f.sensitive)) sensitive.add(model.table)
      return model
    })
  const get = <A, I>(schema: Schema.Schema<A, I, never>) => {
    const cached = models.get(schema) as EntityModel.EntityModel<A> | undefined
    return cached === undefined ? override(schema, {}) : Either.right(cached)
  }
  return { get, override, sensitiveTables: () => sensitive }
}

/** @since 0.1.0 @category layers */
export const layer: Layer.Layer<EntityRegistry> = Layer.sync(EntityRegistry, make)
