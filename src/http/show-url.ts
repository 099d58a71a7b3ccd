// What messages may show of a URL, apart from the HTTP client (client.ts) so that modules
// naming URLs (auth challenges) do not load undici with it.

/** `origin + pathname` of a URL: what messages may show of it. */
export function showUrl(url: URL | string): string {
  try {
    const u = typeof url === 'string' ? new URL(url) : url;
    return u.origin + u.pathname;
  } catch {
    return '<invalid url>';
  }
}
