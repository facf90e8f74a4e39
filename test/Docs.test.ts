/**
 * Every ```ts block of README.md and docs/*.md compiles against the package's public exports: a file's
 * blocks are read as one module, in order (a later block may use an earlier one's names), with their
 * imports merged at the top. Imports must name packages (`effect-dal`, `effect-dal/RedisCache`, …),
 * never repository paths; `effect-dal` and its subpaths resolve exactly as package.json `exports` lists
 * them, to the sources of the files they name (so no build is needed, and nothing else is importable). Names a fragment takes as given (an entity, a row, `program`…) come from
 * test/support/docFixtures.ts. A file whose blocks need none of those is a complete program: it is also
 * run, and must exit 0 without printing an error.
 *
 * The `@example`s of the library's doc comments (what the API reference shows) are fragments: each is
 * type-checked alone, inside an `Effect.gen` body (so it may `yield*`), with every module of the package
 * and the common `effect` modules in scope, and the same fixtures.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import ts from "typescript"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { repoRoot, run } from "./support/run.js"

interface Block {
  readonly line: number
  readonly code: string
}

const markdownFiles = [
  "README.md",
  ...readdirSync(join(repoRoot, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`)
]

const blocksOf = (file: string): ReadonlyArray<Block> => {
  const lines = readFileSync(join(repoRoot, file), "utf8").split("\n")
  const blocks: Array<Block> = []
  for (let i = 0; i < lines.length; i++) {
    if (!/^```ts\b/.test(lines[i] ?? "")) continue
    const start = i + 1
    let end = start
    while (end < lines.length && !(lines[end] ?? "").startsWith("```")) end++
    blocks.push({ line: start + 1, code: lines.slice(start, end).join("\n") })
    i = end
  }
  return blocks
}

interface Module {
  readonly file: string
  readonly path: string
  /** For each line of the module, where it comes from in the markdown file (0: generated). */
  readonly origin: ReadonlyArray<number>
  readonly badImports: ReadonlyArray<string>
}

/** One module from a file's blocks: their imports merged and hoisted, then their code in order. */
const moduleOf = (file: string, blocks: ReadonlyArray<Block>, dir: string): Module => {
  const namespaces = new Map<string, string>()
  const named = new Map<string, Map<string, boolean>>()
  const sideEffects = new Set<string>()
  const badImports: Array<string> = []
  const body: Array<readonly [string, number]> = []
  for (const block of blocks) {
    const source = ts.createSourceFile("block.ts", block.code, ts.ScriptTarget.Latest, true)
    const cut: Array<readonly [number, number]> = []
    for (const statement of source.statements) {
      if (!ts.isImportDeclaration(statement) || !ts.isStringLiteral(statement.moduleSpecifier)) continue
      const specifier = statement.moduleSpecifier.text
      const at = block.line + source.getLineAndCharacterOfPosition(statement.getStart()).line
      if (specifier.startsWith(".") || specifier.startsWith("/") || specifier.includes("src/")) {
        badImports.push(`${file}:${at}: ${specifier}`)
      }
      cut.push([statement.getFullStart(), statement.getEnd()])
      const clause = statement.importClause
      if (clause === undefined) {
        sideEffects.add(specifier)
        continue
      }
      const bindings = clause.namedBindings
      if (bindings !== undefined && ts.isNamespaceImport(bindings))
        namespaces.set(bindings.name.text, specifier)
      if (bindings !== undefined && ts.isNamedImports(bindings)) {
        const names = named.get(specifier) ?? new Map<string, boolean>()
        for (const element of bindings.elements) {
          const text =
            element.propertyName === undefined
              ? element.name.text
              : `${element.propertyName.text} as ${element.name.text}`
          const typeOnly = clause.isTypeOnly || element.isTypeOnly
          names.set(text, (names.get(text) ?? true) && typeOnly)
        }
        named.set(specifier, names)
      }
      if (clause.name !== undefined) {
        const names = named.get(specifier) ?? new Map<string, boolean>()
        names.set(`default as ${clause.name.text}`, clause.isTypeOnly)
        named.set(specifier, names)
      }
    }
    let code = ""
    let from = 0
    for (const [start, end] of cut) {
      code += block.code.slice(from, start).replace(/[^\n]/g, "") === "" ? "" : block.code.slice(from, start)
      code += block.code.slice(start, end).replace(/[^\n]/g, "")
      from = end
    }
    code += block.code.slice(from)
    code.split("\n").forEach((text, i) => {
      body.push([text, block.line + i])
    })
  }
  const header = [
    ...[...sideEffects].map((m) => `import "${m}"`),
    ...[...namespaces].map(([name, m]) => `import * as ${name} from "${m}"`),
    ...[...named].map(
      ([m, names]) =>
        `import { ${[...names].map(([name, typeOnly]) => (typeOnly ? `type ${name}` : name)).join(", ")} } from "${m}"`
    )
  ]
  const lines = [...header.map((text) => [text, 0] as const), ...body]
  const path = join(dir, `${file.replace(/[/.]/g, "_")}.ts`)
  writeFileSync(path, `${lines.map(([text]) => text).join("\n")}\nexport {}\n`)
  return { file, path, origin: lines.map(([, line]) => line), badImports }
}

/** The library's sources whose doc comments the API reference shows. */
const librarySources = (dir: string): ReadonlyArray<string> =>
  readdirSync(join(repoRoot, dir), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? ["Demo", "internal"].includes(entry.name)
        ? []
        : librarySources(join(dir, entry.name))
      : entry.name.endsWith(".ts") && entry.name !== "Program.ts"
        ? [join(dir, entry.name)]
        : []
  )

/** Every `@example` of a doc comment, up to the next tag or the comment's end. */
const examplesOf = (file: string): ReadonlyArray<Block> => {
  const lines = readFileSync(join(repoRoot, file), "utf8").split("\n")
  const examples: Array<Block> = []
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*\* @example\s*$/.test(lines[i] ?? "")) continue
    const start = i + 1
    let end = start
    while (end < lines.length && !/^\s*\*\s*@|\*\//.test(lines[end] ?? "")) end++
    const code = lines.slice(start, end).map((line) => line.replace(/^\s*\* ?/, ""))
    examples.push({ line: start + 1, code: code.join("\n") })
    i = end
  }
  return examples
}

const effectModules = [
  "Array",
  "Console",
  "Effect",
  "Layer",
  "LogLevel",
  "Option",
  "Queue",
  "Redacted",
  "Schedule",
  "Schema",
  "Stream"
]
const rootModules = [
  ...readFileSync(join(repoRoot, "src/index.ts"), "utf8").matchAll(/export \* as (\w+) from/g)
].map((m) => m[1] ?? "")
const subpathModules = ["BloomFilter", "MariaDbBinlog", "PostgresLogical", "RedisCache", "RefreshAhead"]

const exampleModule = (file: string, example: Block, index: number, dir: string): Module => {
  const header = [
    `import { ${effectModules.join(", ")} } from "effect"`,
    `import { ${rootModules.join(", ")} } from "effect-dal"`,
    ...subpathModules.map((name) => `import * as ${name} from "effect-dal/${name}"`),
    "export const example = Effect.gen(function* () {"
  ]
  const body = example.code.split("\n")
  const path = join(dir, `example_${file.replace(/[/.]/g, "_")}_${index}.ts`)
  writeFileSync(path, `${[...header, ...body, "})"].join("\n")}\n`)
  return {
    file,
    path,
    origin: [...header.map(() => 0), ...body.map((_, i) => example.line + i), 0],
    badImports: []
  }
}

// Under the repository, so `effect` and the other packages resolve to its node_modules.
const dir = join(repoRoot, ".tmp", `docs-${process.pid}`)
const fixtures = join(repoRoot, "test", "support", "docFixtures.ts")
let modules: ReadonlyArray<Module> = []
let examples: ReadonlyArray<Module> = []
let program: ts.Program | undefined

/** `exports` as compiler paths: each subpath to the source of the declaration file it names. */
const exportPaths: Record<string, Array<string>> = Object.fromEntries(
  Object.entries(
    (JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { exports: Record<string, unknown> })
      .exports
  ).flatMap(([key, target]) =>
    typeof target === "object" && target !== null && "types" in target && typeof target.types === "string"
      ? [
          [
            key.replace(/^\./, "effect-dal"),
            [join(repoRoot, target.types.replace(/^\.\/dist\//, "src/").replace(/\.d\.ts$/, ".ts"))]
          ]
        ]
      : []
  )
)

beforeAll(() => {
  mkdirSync(dir, { recursive: true })
  modules = markdownFiles.flatMap((file) => {
    const blocks = blocksOf(file)
    return blocks.length === 0 ? [] : [moduleOf(file, blocks, dir)]
  })
  examples = librarySources("src").flatMap((file) =>
    examplesOf(file).map((example, i) => exampleModule(file, example, i, dir))
  )
  program = ts.createProgram([fixtures, ...modules.map((m) => m.path), ...examples.map((m) => m.path)], {
    target: ts.ScriptTarget.ES2022,
    lib: ["lib.es2023.d.ts"],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: ["node"],
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    verbatimModuleSyntax: true,
    skipLibCheck: true,
    noEmit: true,
    paths: exportPaths
  })
  // The same resolution for running the complete programs with tsx.
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { paths: exportPaths } }))
})

afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** The compiler's complaints about `of`, each at its line in the markdown or source file. */
const diagnostics = (of: ReadonlyArray<Module>): ReadonlyArray<string> =>
  of.flatMap((m) => {
    const source = program?.getSourceFile(m.path)
    if (source === undefined || program === undefined) return [`${m.file}: not compiled`]
    return [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)].map(
      (d) => {
        const line = d.start === undefined ? 0 : source.getLineAndCharacterOfPosition(d.start).line
        return `${m.file}:${m.origin[line] ?? "?"}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`
      }
    )
  })

/** Does the module use a name from the fixtures? */
const usesFixtures = (checker: ts.TypeChecker, source: ts.SourceFile): boolean => {
  let found = false
  const visit = (node: ts.Node) => {
    if (found) return
    if (ts.isIdentifier(node)) {
      const symbol = checker.getSymbolAtLocation(node)
      if (symbol?.declarations?.some((d) => d.getSourceFile().fileName === fixtures)) found = true
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

describe("the documentation's TypeScript blocks", () => {
  it("import only packages, never repository paths", () => {
    expect(modules.length).toBeGreaterThan(0)
    expect(modules.flatMap((m) => m.badImports)).toEqual([])
  })

  it("type-check against the package's public exports", () => {
    expect(diagnostics(modules)).toEqual([])
  })

  it("and the @examples of the doc comments type-check too", () => {
    expect(examples.length).toBeGreaterThan(30)
    expect(diagnostics(examples)).toEqual([])
  })

  it("run where they are complete programs", async () => {
    if (program === undefined) throw new Error("no program")
    const checker = program.getTypeChecker()
    const runnable = modules.filter((m) => {
      const source = program?.getSourceFile(m.path)
      return source !== undefined && !usesFixtures(checker, source)
    })
    expect(runnable.map((m) => m.file)).toContain("README.md")
    for (const m of runnable) {
      const ran = await run(process.execPath, ["--import", "tsx", m.path], {
        cwd: dir,
        env: { ...process.env, TSX_TSCONFIG_PATH: join(dir, "tsconfig.json") }
      })
      expect({ file: m.file, code: ran.code, stderr: ran.stderr }).toEqual({
        file: m.file,
        code: 0,
        stderr: ""
      })
    }
  }, 120_000)
})
