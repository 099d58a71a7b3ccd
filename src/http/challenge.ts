// Parsing of HTTP authentication challenges (`WWW-Authenticate`, RFC 7235) as registries
// send them: `Bearer realm="https://auth/token",service="reg",scope="repository:a/b:pull,push"`
// or `Basic realm="basic-realm"`. Quoted values may hold commas and escaped quotes, and
// one header may carry several challenges. Pure: no I/O.

/** One challenge: the scheme in lower case and its parameters (names in lower case). */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
/** Headers longer than this are not parsed (a hostile server could send megabytes). */
const MAX_HEADER = 16 * 1024;

/** Every challenge in a `WWW-Authenticate` value, in order; malformed tails are dropped. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const text = Array.isArray(header) ? header.join(', ') : header;
  if (text.length > MAX_HEADER) return [];
  const out: Challenge[] = [];
  let i = 0;
  const skip = (chars: string): void => {
    while (i < text.length && chars.includes(text[i])) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < text.length && TOKEN_CHAR.test(text[i])) i++;
    return text.slice(start, i);
  };
  while (i < text.length) {
    skip(' \t,');
    const scheme = token();
    if (scheme === '') break;
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    for (;;) {
      skip(' \t');
      const mark = i;
      skip(',');
      skip(' \t');
      const name = token();
      skip(' \t');
      if (name === '' || text[i] !== '=') {
        if (name !== '') i = mark; // the next challenge's scheme
        else i = text.length; // end of input, or a token68 / garbage we do not use
        break;
      }
      i++;
      skip(' \t');
      let value: string;
      if (text[i] === '"') {
        i++;
        value = '';
        while (i < text.length && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < text.length) i++;
          value += text[i++];
        }
        if (i >= text.length) return out;
        i++;
      } else {
        value = token();
      }
      challenge.params[name.toLowerCase()] = value;
    }
  }
  return out;
}

/** The first Bearer or Basic challenge of a header, preferring Bearer. */
export function pickChallenge(header: string | string[] | undefined): Challenge | undefined {
  const all = parseChallenges(header);
  return all.find((c) => c.scheme === 'bearer') ?? all.find((c) => c.scheme === 'basic');
}
