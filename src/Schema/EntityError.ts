/**
 * Errors raised while reading entity metadata or resolving field names against it.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * The schema cannot be an entity: not a struct, no primary key, two fields on one column...
 *
 * @since 0.1.0 @category errors
 */
export class InvalidEntityError extends Data.TaggedError("InvalidEntityError")<{
  readonly entity: string
  readonly field?: string
  readonly reason: string
}> {
  override get message() {
    return `Invalid entity ${this.entity}${this.field === undefined ? "" : `.${this.field}`}: ${this.reason}`
  }
}

/**
 * A field name that arrived as a string at run time is not a persisted field of the entity.
 *
 * @since 0.1.0 @category errors
 */
export class UnknownFieldError extends Data.TaggedError("UnknownFieldError")<{
  readonly entity: string
  readonly field: string
}> {
  override get message() {
    return `Unknown field "${this.field}" on entity ${this.entity}`
  }
}
