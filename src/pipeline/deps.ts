/** What every stage gets besides the state. Stages are `(state, deps) => Promise<update>`. */
import type { Config } from "../config";
import type { Database } from "../db/client";
import type { Models } from "../llm/types";

export interface Deps {
  db: Database;
  config: Config;
  models: Models;
  /** Progress lines for the person watching (stderr in the CLI). */
  log: (message: string) => void;
}
