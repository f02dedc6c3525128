import { defineConfig } from "drizzle-kit";

// `drizzle-kit generate` needs no database; migrations are applied by src/db/migrate.ts at start.
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/db/schema.ts",
  out: "./drizzle",
  strict: true,
  breakpoints: true,
});
