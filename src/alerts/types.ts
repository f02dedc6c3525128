/** An alert: what happened to spend, in words and figures. Knows nothing of news. */
export type AlertRule = "soft_limit" | "hard_limit" | "spike" | "forecast";
export type AlertScope = "run" | "node" | "day" | "month";
export type AlertSeverity = "info" | "warning" | "critical";

export interface Alert {
  workflow: string;
  runId: string | null;
  node: string | null;
  rule: AlertRule;
  scope: AlertScope;
  severity: AlertSeverity;
  /** One line a person can act on: the run, the node, the figures and the rule. */
  message: string;
  figures: Record<string, unknown>;
  /** The same key inside the cooldown is not sent twice. */
  dedupeKey: string;
}

/** A place alerts go. `send` throws when the alert did not get through. */
export interface AlertChannel {
  /** console | slack | discord | webhook | email */
  readonly name: string;
  /** Where, without secrets, for the alert_deliveries row. */
  readonly target: string;
  send(alert: Alert & { id: number; createdAt: Date }): Promise<void>;
}
