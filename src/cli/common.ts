/** What every CLI shares: argument parsing that fails on unknown flags, and one exit path. */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { ConfigError } from "../config";

/** Parses the flags; returns null after printing the usage when --help or -h is given. */
export function parseFlags<T extends NonNullable<ParseArgsConfig["options"]>>(argv: string[], options: T, usage: string) {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${usage}\n`);
    return null;
  }
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}\n\n${usage}`);
  }
}

export function parseNumberFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  // Decimal only: Number() would also read "0x10" as 16.
  if (!/^\s*\d*\.?\d+(e[+-]?\d+)?\s*$/i.test(value) || !Number.isFinite(n)) throw new ConfigError(`bad argument: --${name} needs a positive decimal number, got "${value}"`);
  return n;
}

/**
 * LangChain prints "Error in handler LedgerHandler, ...: BudgetExceededError: ..." for every call
 * the budget refuses (the gate refuses by throwing from the handler). The run reports the halt
 * itself, once, so the CLIs drop those repeats and let every other error line through.
 */
export function quietBudgetRefusals(): void {
  const original = console.error.bind(console);
  console.error = (...args: unknown[]) => {
    const first = typeof args[0] === "string" ? args[0] : "";
    if (first.startsWith("Error in handler LedgerHandler") && first.includes("BudgetExceededError")) return;
    original(...args);
  };
}

/**
 * Runs a CLI body: its return value is the exit code. Bad settings or arguments exit 2, any
 * other error exits 1 with its message (the stack only with NEWSLEDGER_DEBUG=1).
 */
export function runCli(body: () => Promise<number>): void {
  quietBudgetRefusals();
  body().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      // A bad price file is a bad setting too (NEWSLEDGER_PRICES).
      if (err instanceof ConfigError || (err as Error | undefined)?.name === "PriceFileError") {
        process.stderr.write(`newsledger: ${(err as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
      const e = err as Error;
      process.stderr.write(`newsledger: ${e?.name ?? "Error"}: ${e?.message ?? String(err)}\n`);
      if (process.env.NEWSLEDGER_DEBUG === "1" && e?.stack) process.stderr.write(`${e.stack}\n`);
      process.exitCode = 1;
    },
  );
}

/** `--feeds a b c` as the usage shows it: each value after --feeds, up to the next flag, is a feed. */
export function spreadFeeds(argv: string[]): string[] {
  const out: string[] = [];
  let inFeeds = false;
  for (const arg of argv) {
    if (arg === "--feeds") {
      inFeeds = true;
      continue;
    }
    if (arg.startsWith("-")) inFeeds = false;
    out.push(...(inFeeds ? ["--feeds", arg] : [arg]));
  }
  return out;
}
