/**
 * What schema changes fail with: steps that would lose data and were not allowed, changes the diff
 * cannot express, and migration files that cannot be written or read.
 *
 * @since 0.1.0
 */
import { Data } from "effect"
import type { Step } from "./Diff.js"

/**
 * The diff holds steps that can lose data and they were not allowed (`allowDestructive`). Nothing was
 * applied.
 *
 * @since 0.1.0 @category errors
 */
export class DestructiveChangeError extends Data.TaggedError("DestructiveChangeError")<{
  readonly steps: ReadonlyArray<Step>
}> {
  override get message() {
    return `Refusing ${this.steps.length} destructive step(s) (pass allowDestructive to run them):\n${this.steps
      .map((s) => `  - ${s.description}: ${s.destructive}\n      ${s.sql.replace(/\n\s*/g, " ")}`)
      .join("\n")}`
  }
}

/**
 * A change the diff cannot turn into statements (a primary key that changes outside SQLite).
 *
 * @since 0.1.0 @category errors
 */
export class UnsupportedChangeError extends Data.TaggedError("UnsupportedChangeError")<{
  readonly reason: string
}> {
  override get message() {
    return `Unsupported schema change: ${this.reason}`
  }
}

/**
 * Migration files could not be listed, read or written, or are not in a state to generate from.
 *
 * @since 0.1.0 @category errors
 */
export class MigrationFileError extends Data.TaggedError("MigrationFileError")<{
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return this.reason
  }
}
