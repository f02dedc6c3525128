/**
 * Exact decimal arithmetic on scaled BigInts. Money never passes through a JS float: a value is a
 * BigInt count of 10^-scale units, parsed from and printed to decimal strings.
 */

export class DecimalError extends Error {
  override name = "DecimalError";
}

const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/**
 * Parses a decimal literal ("2.5", "0.075", "1e-7", "12") into units of 10^-scale.
 * `rounding: "exact"` rejects values that need more than `scale` decimals; "half-up" rounds them.
 */
export function parseDecimal(text: string, scale: number, rounding: "exact" | "half-up" = "exact"): bigint {
  const trimmed = text.trim();
  const m = DECIMAL.exec(trimmed);
  if (!m || (m[2] === "" && (m[3] === undefined || m[3] === ""))) {
    throw new DecimalError(`"${text}" is not a decimal number`);
  }
  const negative = m[1] === "-";
  let digits = (m[2] ?? "") + (m[3] ?? "");
  // Position of the decimal point counted from the right of `digits`.
  let fraction = (m[3] ?? "").length - Number(m[4] ?? "0");
  if (fraction < 0) {
    digits += "0".repeat(-fraction);
    fraction = 0;
  }
  let units: bigint;
  if (fraction <= scale) {
    units = BigInt(digits || "0") * 10n ** BigInt(scale - fraction);
  } else {
    const drop = fraction - scale;
    const all = BigInt(digits || "0");
    const divisor = 10n ** BigInt(drop);
    const kept = all / divisor;
    const rest = all % divisor;
    if (rest !== 0n && rounding === "exact") {
      throw new DecimalError(`"${text}" has more than ${scale} decimal places`);
    }
    units = rest * 2n >= divisor ? kept + 1n : kept;
  }
  return negative ? -units : units;
}

/** A JSON number as the decimal literal it was written as (shortest round-trip form), then parsed. */
export function numberToUnits(value: number, scale: number, rounding: "exact" | "half-up" = "exact"): bigint {
  if (!Number.isFinite(value)) throw new DecimalError(`${value} is not a finite number`);
  return parseDecimal(String(value), scale, rounding);
}

/** Prints units of 10^-scale with exactly `scale` decimals. */
export function formatUnits(units: bigint, scale: number): string {
  const negative = units < 0n;
  const abs = (negative ? -units : units).toString().padStart(scale + 1, "0");
  const int = abs.slice(0, abs.length - scale);
  const frac = abs.slice(abs.length - scale);
  return `${negative ? "-" : ""}${int}${scale > 0 ? `.${frac}` : ""}`;
}

/** Changes the scale of a value, rounding half away from zero when decimals are dropped. */
export function rescale(units: bigint, from: number, to: number): bigint {
  if (to >= from) return units * 10n ** BigInt(to - from);
  const divisor = 10n ** BigInt(from - to);
  const negative = units < 0n;
  const abs = negative ? -units : units;
  const kept = abs / divisor;
  const rounded = (abs % divisor) * 2n >= divisor ? kept + 1n : kept;
  return negative ? -rounded : rounded;
}
