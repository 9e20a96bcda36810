// Accept negotiation (RFC 9110 12.5.1) for the few types the gateway itself can answer in: the quality a client
// gives a media type, from the most specific range that covers it. Read only on error answers.

/** The q value `accept` gives `type` (`text/html`): 0 when no range covers it; 1 without an Accept field. */
export function mediaQuality(accept: string | undefined, type: string): number {
  if (accept === undefined || accept === '') return 1;
  const slash = type.indexOf('/');
  const major = type.slice(0, slash);
  let best = -1;
  let quality = 0;
  for (const part of accept.split(',')) {
    const [range = '', ...params] = part.split(';');
    const r = range.trim().toLowerCase();
    const specificity = r === type ? 2 : r === `${major}/*` ? 1 : r === '*/*' ? 0 : -1;
    if (specificity <= best) continue;
    best = specificity;
    quality = 1;
    for (const p of params) {
      const [k, v] = p.split('=');
      if (k?.trim().toLowerCase() === 'q') quality = Number.parseFloat(v ?? '') || 0;
    }
  }
  return quality;
}

/** Whether the client prefers HTML to JSON (a browser): text/html strictly above every JSON type it accepts. */
export function prefersHtml(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  const html = mediaQuality(accept, 'text/html');
  return (
    html > 0 &&
    html > mediaQuality(accept, 'application/problem+json') &&
    html > mediaQuality(accept, 'application/json')
  );
}
