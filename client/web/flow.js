// What the customer page, the teller console and the supervisor page share about the business
// done in a call (signing 面签, risk assessment 风评, quality alerts 质检): the names of flows,
// steps, levels and alerts, times, the step strip, and a pushed document shown as text.
// window.vbank.flow is the last `flow` state received; window.vbank.flowEvents the flow's
// event messages (without signature images), oldest first.

import {h, hooks} from './common.js';

export const FLOWS = {
  loan_signing: 'Loan signing · 贷款面签',
  risk_assessment: 'Risk assessment · 风险测评',
};
export const STEPS = {
  identity: 'Identity · 身份核验',
  disclosure: 'Key terms · 条款告知',
  consent: 'Consent · 客户确认',
  signature: 'Signature · 签名',
  questionnaire: 'Questionnaire · 问卷',
  result: 'Result · 测评结果',
  suitability: 'Suitability · 适当性',
  sealed: 'Sealed · 封存',
};
export const LEVELS = {
  C1: 'Conservative · 保守型',
  C2: 'Cautious · 稳健型',
  C3: 'Balanced · 平衡型',
  C4: 'Growth · 成长型',
  C5: 'Aggressive · 进取型',
};
export const ALERT_KINDS = {
  forbidden_phrase: 'Forbidden phrase · 违规用语',
  missing_disclosure: 'Disclosure not read · 条款漏读',
};
/** The event messages of a flow, besides `flow`, `document` and `question`. */
export const FLOW_EVENTS = new Set(['identity_checked', 'identity_verified', 'face',
  'disclosure_marked', 'consent', 'consent_refused', 'consent_early', 'contract_signed', 'risk_assessed',
  'suitability', 'acknowledgement', 'qc_alert', 'session_sealed']);
const MAX_EVENTS = 100;

hooks.flow = null;
hooks.flowEvents = [];

/** Keep the flow's state and events on window.vbank (for tests); call for every message. */
export function recordFlow(msg) {
  if (msg.type === 'flow') hooks.flow = msg.flow ?? null;
  if (!FLOW_EVENTS.has(msg.type)) return;
  const {image, ...event} = msg; // a signature image is tens of kilobytes: leave it out
  hooks.flowEvents.push(image ? {...event, image: '…'} : event);
  if (hooks.flowEvents.length > MAX_EVENTS) hooks.flowEvents.shift();
}

/** A new session: forget the last one's flow. */
export function forgetFlow() {
  hooks.flow = null;
  hooks.flowEvents = [];
}

/**
 * The time of day of `at`: epoch seconds or milliseconds, or an ISO string. Anything else
 * (a clock of the server's own) gives the time it arrived here, `received` (ms) or now.
 */
export function clock(at, received = Date.now()) {
  let ms = received;
  if (typeof at === 'number' && at > 1e12) ms = at;
  else if (typeof at === 'number' && at > 1e9) ms = at * 1000;
  else if (typeof at === 'string' && !Number.isNaN(Date.parse(at))) ms = Date.parse(at);
  return new Date(ms).toLocaleTimeString([], {hour: '2-digit', minute: '2-digit', second: '2-digit'});
}

/** The script of the current step, its {level} and {product} filled in (`product`: a name). */
export function scriptOf(flow, product = flow?.product) {
  return String(flow?.say ?? '').replaceAll('{level}', flow?.level ?? '')
    .replaceAll('{product}', product ?? '');
}

export function shortHash(sha) {
  return sha ? `${String(sha).slice(0, 12)}…` : '–';
}

/**
 * The steps of a flow as a strip: done ones ticked, the current one marked, and a passed step
 * with a clause the teller skipped crossed (✗ incomplete), never shown as done.
 */
export function renderSteps(list, flow) {
  const steps = flow?.steps ?? [];
  const current = steps.indexOf(flow?.step);
  const incomplete = new Set(flow?.incomplete ?? []);
  list.replaceChildren(...steps.map((id, i) => {
    const state = i < current ? (incomplete.has(id) ? 'incomplete' : 'done')
      : i === current ? 'current' : 'todo';
    return h('li', {
      'data-step': id,
      'data-state': state,
      'aria-current': i === current ? 'step' : false,
      title: state === 'incomplete' ? 'a clause was not read · 有条款未宣读' : false,
    }, {done: '✓ ', incomplete: '✗ '}[state] ?? '', STEPS[id] ?? id);
  }));
}

/** The clauses of passed steps not read in full, as a list (empty when every one was read). */
export function unreadList(flow) {
  return (flow?.unread ?? []).map((d) => h('li', {'data-unread': d.id}, '✗ ', d.text ?? d.id));
}

/** One line saying what a quality alert is about; `clauses` (id → text) names a disclosure. */
export function alertText(alert, clauses = {}) {
  const kind = ALERT_KINDS[alert.kind] ?? alert.kind;
  if (alert.kind === 'forbidden_phrase') return `${kind}: “${alert.phrase ?? ''}”`;
  if (alert.kind === 'missing_disclosure') {
    const clause = clauses[alert.disclosure];
    return `${kind}: ${clause ? `“${clause}”` : alert.disclosure ?? ''}`;
  }
  return kind;
}

/** A quality alert as a list item: when, what, who said it and their words. */
export function alertItem(alert, extra = [], clauses = {}) {
  return h('li', {class: 'alert', 'data-kind': alert.kind},
    h('span', {class: 'when'}, clock(alert.at, alert.receivedAt)),
    h('strong', {}, alertText(alert, clauses)),
    ...extra,
    alert.text ? h('q', {}, alert.text) : null);
}

/** The same alert from the `flow` state and from a `qc_alert` message. */
export function alertKey(alert) {
  return [alert.kind, alert.at, alert.phrase ?? '', alert.disclosure ?? ''].join('|');
}

// ---- documents: the contract or product sheet, markdown shown as plain elements -----------

const INLINE = /(\*\*[^*]+\*\*|`[^`]+`|\*[^*\s][^*]*\*)/;

/** Text with **bold**, *emphasis* and `code`, as nodes (never as HTML). */
function inline(text) {
  return text.split(INLINE).filter(Boolean).map((part) => {
    if (part.startsWith('**') && part.endsWith('**')) return h('strong', {}, part.slice(2, -2));
    if (part.startsWith('`') && part.endsWith('`')) return h('code', {}, part.slice(1, -1));
    if (part.length > 2 && part.startsWith('*') && part.endsWith('*')) return h('em', {}, part.slice(1, -1));
    return document.createTextNode(part);
  });
}

/**
 * The elements of a markdown document: headings, paragraphs, bullet and numbered lists and
 * inline emphasis, which is all the bank's documents use. Built as nodes, so the text of a
 * document can never run as HTML.
 */
export function markdown(text) {
  const out = [];
  let paragraph = [];
  let list = null;
  const flush = () => {
    if (paragraph.length) out.push(h('p', {}, ...inline(paragraph.join(' '))));
    paragraph = [];
  };
  for (const raw of String(text ?? '').split('\n')) {
    const line = raw.trim();
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    const item = /^(?:[-*+]|\d+[.)])\s+(.*)$/.exec(line);
    if (!line || heading || item) flush();
    if (!item) list = null;
    if (heading) {
      out.push(h(`h${Math.min(6, heading[1].length + 2)}`, {}, ...inline(heading[2])));
    } else if (item) {
      if (!list) {
        list = h(/^\d/.test(line) ? 'ol' : 'ul');
        out.push(list);
      }
      list.append(h('li', {}, ...inline(item[1])));
    } else if (line) {
      paragraph.push(line);
    }
  }
  flush();
  return out;
}

/** The title of a document: its message's, else its first heading, else its id. */
export function documentTitle(doc) {
  if (doc.title) return doc.title;
  const heading = /^#+\s+(.*)$/m.exec(doc.text ?? '');
  return heading ? heading[1] : doc.id;
}
