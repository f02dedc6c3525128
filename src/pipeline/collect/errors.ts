/** The problems a feed can have, as stored in feed_errors.code. */

/** Why a feed yielded nothing (severity error). */
export type FeedErrorCode =
  | "timeout"
  | "too_large"
  | "too_many_redirects"
  | `http_${number}`
  | "network"
  | "bad_url"
  | "bad_redirect"
  | "bad_compression"
  | "not_found"
  | "read_error"
  | "unsupported_source"
  | "no_feed_files"
  | "parse_error"
  | "not_a_feed"
  | "unexpected_error";

/** Something was off but the feed still yielded items (severity warning). */
export type FeedWarningCode =
  | "leading_garbage"
  | "encoding_guessed"
  | "unknown_encoding"
  | "xml_repaired"
  | "dates_unparseable"
  | "items_without_link";

export interface FeedWarning {
  code: FeedWarningCode;
  message: string;
}

export class FeedError extends Error {
  override name = "FeedError";
  constructor(
    readonly code: FeedErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Network failures say what the user most likely needs to hear. */
export const OFFLINE_HINT = "the machine may be offline";
