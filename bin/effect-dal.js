#!/usr/bin/env node
// The effect-dal command line (migrations). The package ships TypeScript sources, so tsx (a
// dependency) is registered first: it loads the CLI, the entities module and the migration files.
import { register } from "tsx/esm/api"

register()
const { main } = await import("../src/Migrations/Cli.ts")
main(process.argv)
