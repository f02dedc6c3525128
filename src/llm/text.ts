/**
 * Plain-text analysis shared by the offline provider and the stages that need no model
 * (clustering labels, post checks): words, sentences, links and post length.
 */

const WORD = /[\p{L}\p{N}]+(?:['’][\p{L}]+)*/gu;

/** Common English function words; they carry no topic. */
export const STOPWORDS: ReadonlySet<string> = new Set(
  (
    "a about above after again against all also am an and any are as at be because been before being below " +
    "between both but by can could did do does doing down during each few for from further had has have having " +
    "he her here hers herself him himself his how i if in into is it its itself just me more most my myself no " +
    "nor not now of off on once only or other our ours ourselves out over own said same say says she should so " +
    "some such than that the their theirs them themselves then there these they this those through to too under " +
    "until up very was we were what when where which while who whom why will with would you your yours yourself " +
    "yourselves new one two us mr mrs ms per via amid"
  ).split(" "),
);

/** Words as written, in order. */
export function wordTokens(text: string): string[] {
  return text.match(WORD) ?? [];
}

/** Lower-cased words, in order, with typographic apostrophes made plain. */
export function words(text: string): string[] {
  return wordTokens(text).map(normalizeWord);
}

export function normalizeWord(word: string): string {
  return word.toLowerCase().replace(/’/g, "'");
}

export function isContentWord(word: string): boolean {
  return !STOPWORDS.has(word) && (word.length >= 3 || /\p{N}/u.test(word));
}

/** Lower-cased words that carry topic (no stopwords, no one- or two-letter words), in order. */
export function contentWords(text: string): string[] {
  return words(text).filter(isContentWord);
}

/** Words that end with a full stop without ending a sentence. */
const ABBREVIATIONS = new Set(
  "mr mrs ms dr prof st sr jr gen gov sen rep lt col capt sgt inc ltd co corp no vs etc al e.g i.e u.s u.k u.n jan feb mar apr jun jul aug sep sept oct nov dec".split(
    " ",
  ),
);

function endsWithAbbreviation(sentence: string): boolean {
  const last = /(\S+)\.$/.exec(sentence)?.[1]?.toLowerCase();
  if (!last) return false;
  // A single capital letter is an initial ("J. Smith").
  return ABBREVIATIONS.has(last) || /^\p{L}$/u.test(last);
}

/** Sentences of a text, whitespace normalised. Splits after . ! ? … (and closing quotes) before a capital or digit. */
export function splitSentences(text: string): string[] {
  const flat = text.replace(/\s+/g, " ").trim();
  if (flat === "") return [];
  const pieces = flat.split(/(?<=[.!?…]["'”’)\]]*)\s+(?=["'“‘(\[]?[\p{Lu}\p{N}])/u);
  const sentences: string[] = [];
  for (const piece of pieces) {
    const previous = sentences.at(-1);
    if (previous !== undefined && endsWithAbbreviation(previous)) sentences[sentences.length - 1] = `${previous} ${piece}`;
    else sentences.push(piece);
  }
  return sentences;
}

const LINK = /https?:\/\/[^\s<>"'()\[\]{}]+/g;

/** The http(s) links in a text, without trailing sentence punctuation. */
export function findLinks(text: string): string[] {
  return (text.match(LINK) ?? []).map((link) => link.replace(/[.,;:!?…]+$/, ""));
}

export function withoutLinks(text: string): string {
  return text.replace(LINK, " ");
}

/**
 * A post's length as the platforms' limits are checked here: Unicode code points, with every
 * URL at its real length (no link shortener is assumed).
 */
export function postLength(text: string): number {
  return [...text].length;
}
