// The nodeSelector of the Kubernetes mode: a label selector in the
// equality-based form kubectl -l takes, comma-separated terms that must all
// hold: "key" (present), "!key" (absent), "key=value" or "key==value",
// "key!=value" (absent, or another value, as Kubernetes reads it). The
// set-based forms (in, notin) are refused rather than misread. Pure.

export type Labels = Readonly<Record<string, string>> | undefined;

export interface LabelSelector {
  /** As written, for messages. */
  readonly text: string;
  matches(labels: Labels): boolean;
}

type Term = { readonly op: 'exists' | 'absent'; readonly key: string } | { readonly op: 'equals' | 'differs'; readonly key: string; readonly value: string };

/** A label key: an optional DNS-subdomain prefix and "/", then a name of letters, digits and -_. (Kubernetes' rule, loosely). */
const KEY = /^(?:[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

/** Whether text is a label key (also the form of a loadBalancerClass: "xdplb.io/dr"). */
export function isLabelKey(text: string): boolean {
  return KEY.test(text);
}
/** A label value: empty, or up to 63 letters, digits and -_. starting and ending with a letter or digit. */
const VALUE = /^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/** One term → a Term, or what was expected. */
function parseTerm(raw: string): Term | string {
  const t = raw.trim();
  const m = /^(!)?\s*([^!=\s]+)\s*(?:(!=|==|=)\s*(\S*))?$/.exec(t);
  if (!m || (m[1] && m[3])) return `a term "key", "!key", "key=value" or "key!=value" (got ${JSON.stringify(t)}; "in" and "notin" are not supported)`;
  const [, not, key = '', op, value = ''] = m;
  if (!KEY.test(key)) return `a label key (got ${JSON.stringify(key)} in ${JSON.stringify(t)})`;
  if (op === undefined) return { op: not ? 'absent' : 'exists', key };
  if (!VALUE.test(value)) return `a label value (got ${JSON.stringify(value)} in ${JSON.stringify(t)})`;
  return { op: op === '!=' ? 'differs' : 'equals', key, value };
}

function holds(term: Term, labels: Labels): boolean {
  const has = labels !== undefined && Object.hasOwn(labels, term.key);
  switch (term.op) {
    case 'exists':
      return has;
    case 'absent':
      return !has;
    case 'equals':
      return has && labels[term.key] === term.value;
    case 'differs':
      return !has || labels[term.key] !== term.value;
  }
}

/** The selector of a text ("" selects every node), or a string saying what is wrong with it. */
export function parseLabelSelector(text: string): LabelSelector | string {
  const terms: Term[] = [];
  if (text.trim() !== '')
    for (const raw of text.split(',')) {
      const term = parseTerm(raw);
      if (typeof term === 'string') return `nodeSelector: ${term}`;
      terms.push(term);
    }
  return { text, matches: (labels) => terms.every((t) => holds(t, labels)) };
}
