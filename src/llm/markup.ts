/**
 * The prompt contract between the stages and any model, the offline one included.
 *
 * - The system message's first line is `Task: <stage>` (summarize | generate_social | validate).
 *   A real model reads it as a heading; the offline model dispatches on it.
 * - The data sits in the user message as tagged sections, e.g.
 *   `<article><title>…</title><text>…</text></article>`. Text inside a tag has & < > escaped, so
 *   an article that contains "</text>" cannot break the structure; attribute values also escape ".
 * - The reply is one JSON object matching the stage's zod schema (see reply.ts).
 */
import type { ChatStage } from "./types";

const TASK_LINE = /^Task: *([\w-]+) *$/;

export function taskLine(task: ChatStage): string {
  return `Task: ${task}`;
}

/** The task named on the first line of a system prompt, or null when the line is absent. */
export function readTask(systemPrompt: string): string | null {
  const firstLine = systemPrompt.split("\n", 1)[0] ?? "";
  return TASK_LINE.exec(firstLine.trim())?.[1] ?? null;
}

function escapeText(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function escapeAttribute(value: string): string {
  return escapeText(value).replace(/"/g, "&quot;");
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"' };

function unescape(text: string): string {
  return text.replace(/&(amp|lt|gt|quot);/g, (_, name: string) => ENTITIES[name] ?? "");
}

type Attributes = Record<string, string | number>;

function openTag(name: string, attributes: Attributes): string {
  const attrs = Object.entries(attributes).map(([key, value]) => ` ${key}="${escapeAttribute(String(value))}"`);
  return `<${name}${attrs.join("")}>`;
}

/** A leaf element holding escaped text: `<name a="1">text</name>`. */
export function field(name: string, text: string, attributes: Attributes = {}): string {
  return `${openTag(name, attributes)}${escapeText(text)}</${name}>`;
}

/** An element holding other elements, one per line. */
export function section(name: string, children: string[], attributes: Attributes = {}): string {
  return [openTag(name, attributes), ...children, `</${name}>`].join("\n");
}

export interface Element {
  attributes: Record<string, string>;
  /** The raw (still escaped) content; read it further with readElements / readField. */
  inner: string;
}

/** Every `<name>` element in `source`, in order (elements of one name never nest). */
export function readElements(source: string, name: string): Element[] {
  const pattern = new RegExp(`<${name}((?:\\s+[\\w-]+="[^"]*")*)\\s*>([\\s\\S]*?)</${name}>`, "g");
  return [...source.matchAll(pattern)].map((match) => ({
    attributes: Object.fromEntries(
      [...(match[1] ?? "").matchAll(/([\w-]+)="([^"]*)"/g)].map((attr) => [attr[1], unescape(attr[2] ?? "")]),
    ),
    inner: match[2] ?? "",
  }));
}

/** The text of the first `<name>` leaf in `source`, unescaped; "" when absent. */
export function readField(source: string, name: string): string {
  const element = readElements(source, name)[0];
  return element ? unescape(element.inner) : "";
}

/** The text of a leaf element returned by readElements. */
export function elementText(element: Element): string {
  return unescape(element.inner);
}
