/** The platforms posts are written for, and their limits. */
export const PLATFORMS = ["x", "bluesky", "linkedin"] as const;
export type Platform = (typeof PLATFORMS)[number];

/** Characters per post, counted as in postLength (src/llm/text.ts): every URL at its real length. */
export const PLATFORM_LIMITS: Record<Platform, number> = { x: 280, bluesky: 300, linkedin: 3000 };

export const PLATFORM_NAMES: Record<Platform, string> = { x: "X", bluesky: "Bluesky", linkedin: "LinkedIn" };

export function isPlatform(value: string): value is Platform {
  return (PLATFORMS as readonly string[]).includes(value);
}
