// The teller console (/teller): status and skills, the live queues, accept the next customer,
// talk by video, end the call with an outcome; follow the customers the digital assistant is
// serving (window.vbank.withDigitalHuman) and their live transcript (window.vbank.transcripts,
// session_id → [{speaker, text}]; window.vbank.transcriptSession is the one shown).
// States (window.vbank.state): login → idle → connecting → in_call (customer_reconnecting) →
// ended → connecting (next customer) …; window.vbank.tellerStatus mirrors the server's status.
// The business done in a call (signing, risk assessment, quality alerts) is teller-flow.js's panel.

import {
  $, AuthError, LANGUAGE_NAMES, MessageArea, apiGet, formatWait, h, hooks, setupSignIn,
} from './common.js';
import {PageCall} from './call.js';
import {TellerBusiness} from './teller-flow.js';

const SKILLS = ['loan_signing', 'risk_assessment', 'account_opening', 'general_enquiry'];
const SKILL_NAMES = {
  loan_signing: 'Loan signing · 贷款面签',
  risk_assessment: 'Risk assessment · 风险测评',
  account_opening: 'Account opening · 开户',
  general_enquiry: 'General enquiry · 综合咨询',
};
const IDLE_TEXT = {
  available: 'Available — accept the next customer · 空闲，可接入客户',
  busy: 'Busy — no new customers · 忙碌',
  away: 'Away — set yourself available to serve · 暂离',
};
const STATES = {
  login: {text: 'Please log in · 请登录'},
  connecting: {text: 'Connecting to the customer… · 正在接通客户'},
  in_call: {text: 'In call · 通话中', tone: 'ok'},
  customer_reconnecting: {text: 'The customer is reconnecting… · 客户正在重新连接', tone: 'warn'},
  ended: {text: 'Call ended · 通话结束', tone: 'done'},
};
const IN_CALL = new Set(['connecting', 'in_call', 'customer_reconnecting']);
const TIERS = {gold: 'Gold · 金卡', standard: 'Standard · 普通'};
const SPEAKERS = {digital_human: 'Assistant · 数字员工', customer: 'Customer · 客户'};
const MAX_TRANSCRIPT = 50; // lines kept per customer

const messages = new MessageArea($('#messages'));
const statusSelect = $('#status');

let serviceNames = new Map(); // id → {en, zh} from GET /services
let queues = {services: [], at: 0}; // the last `queues` message and when it came
let tiers = new Map(); // session_id → customer tier, learnt from the queue
// Customers with the digital assistant, from `queues` (its `with_digital_human` lists; null
// until a `queues` message has them), and what they and the assistant said (`transcript`).
let withAssistant = null; // [{session_id, customer, since_s, service}]
const transcripts = new Map(); // session_id → {lines: [{speaker, text}], at: ms of the last}
const customerNames = new Map(); // session_id → customer name, from the queues
let chosenTranscript = null; // the session the teller picked; else the most recently active

hooks.tellerStatus = null;
hooks.withDigitalHuman = [];
hooks.transcripts = {};
hooks.transcriptSession = null;

const account = setupSignIn({
  role: 'teller',
  messages,
  onMessage,
  onSignedIn: (login) => {
    showConsole(true);
    setState('idle');
    call.ensureCamera();
    apiGet('/services', login.token).then((list) => {
      serviceNames = new Map(list.map((s) => [s.id, s.name]));
      renderQueues();
      renderAssistant();
    }).catch((e) => (e instanceof AuthError ? account.logout(e.message) : console.warn(e)));
  },
  onSignedOut: () => {
    call.stop();
    withAssistant = null;
    transcripts.clear();
    customerNames.clear();
    chosenTranscript = null;
    renderAssistant();
    showConsole(false);
  },
});

// The camera stays on from login to logout, across calls.
const call = new PageCall({
  messages,
  send: account.send,
  setState,
  reconnecting: 'customer_reconnecting',
  wanted: () => IN_CALL.has(hooks.state),
  noCamera: 'Camera or microphone unavailable. · 无法使用摄像头或麦克风',
});

const business = new TellerBusiness({
  send: account.send,
  messages,
  inCall: () => IN_CALL.has(hooks.state) && !!hooks.sessionId,
  token: () => account.token,
});

// ---- state -------------------------------------------------------------------------------

function setState(state) {
  hooks.state = state;
  const {text, tone} = STATES[state] ?? {};
  const status = hooks.tellerStatus ?? 'away';
  $('#state').textContent = state === 'idle' ? IDLE_TEXT[status] : text;
  $('#state-panel').dataset.tone = tone ?? (state === 'idle' && status === 'available' ? 'ok' : '');
  const inCall = IN_CALL.has(state);
  $('#end').disabled = !inCall;
  $('#accept').disabled = !canAccept();
  renderQueues(); // per-service accept buttons follow the call state
  business.render();
}

/** Accepting needs an `available` teller (as the server last said) who is not in a call. */
function canAccept() {
  return hooks.tellerStatus === 'available' && !IN_CALL.has(hooks.state);
}

/** What the server says (or, on accept and release, does without saying) about our status. */
function showStatus(status) {
  hooks.tellerStatus = status;
  statusSelect.value = status;
  $('#status-dot').dataset.status = status;
  if (hooks.state === 'idle') setState('idle');
  else $('#accept').disabled = !canAccept();
  renderQueues();
}

function showConsole(visible) {
  $('#view-login').hidden = visible;
  $('#view-console').hidden = !visible;
  $('#who').hidden = !visible;
}

function chosenSkills() {
  return SKILLS.filter((id) => $(`#skill-${id}`).checked);
}

function sendStatus() {
  if (!account.send({type: 'status', status: statusSelect.value, skills: chosenSkills()})) {
    messages.show('Not connected; your status will be sent when the connection is back. · 连接恢复后将更新状态', 'error');
  }
}

/** A service's English name and, beside it, its Chinese one. */
function serviceName(id) {
  const name = serviceNames.get(id);
  if (name) return [name.en, ' ', h('span', {class: 'zh'}, name.zh)];
  return [SKILL_NAMES[id] ?? id];
}

/** What each language the customer can choose is called on the teller's screen. */

function showCustomer({name, service, tier, reference, language}) {
  $('#customer-name').textContent = name || '–';
  $('#caption-name').textContent = name ? `· ${name}` : '';
  $('#customer-service').replaceChildren(...(service ? serviceName(service) : ['–']));
  $('#customer-tier').textContent = tier ? (TIERS[tier] ?? tier) : '–';
  $('#customer-language').textContent = language ? (LANGUAGE_NAMES[language] ?? language) : '–';
  $('#reference').textContent = reference || '–';
}

// ---- queues ------------------------------------------------------------------------------

function renderQueues() {
  const rows = $('#queue-rows');
  if (!queues.services.length) {
    rows.replaceChildren(h('tr', {}, h('td', {colspan: 4, class: 'empty'}, 'No queues yet. · 暂无排队数据')));
    return;
  }
  const accepting = canAccept();
  rows.replaceChildren(...queues.services.map((q) => {
    const waiting = q.waiting ?? [];
    const longest = waiting.length ? Math.max(...waiting.map((w) => w.waited_s ?? 0)) : null;
    return h('tr', {'data-service': q.id},
      h('th', {scope: 'row'}, ...serviceName(q.id),
        h('div', {class: 'waiting'}, ...waiting.map((w) => h('span',
          {class: `chip${w.tier && w.tier !== 'standard' ? ' vip' : ''}`},
          w.customer ?? '?', w.tier && w.tier !== 'standard' ? ` · ${TIERS[w.tier] ?? w.tier}` : '',
          w.language && w.language !== 'en' ? ` · ${LANGUAGE_NAMES[w.language] ?? w.language}` : '')))),
      h('td', {class: 'num'}, String(q.length ?? waiting.length)),
      h('td', {class: 'num', 'data-longest': longest ?? ''}, longest == null ? '–' : formatWait(longest)),
      h('td', {}, h('button', {
        type: 'button', class: 'small', 'data-testid': `accept-${q.id}`, 'data-accept-service': q.id,
        disabled: !accepting || !waiting.length, onclick: () => accept(q.id),
      }, 'Accept · 接入')));
  }));
}

// ---- customers with the digital assistant -----------------------------------------------

/** The `with_digital_human` lists of a `queues` message, or null when it has none. */
function readAssistantLists(services) {
  if (!services.some((q) => Array.isArray(q.with_digital_human))) return null;
  return services.flatMap((q) => (q.with_digital_human ?? []).map((w) => ({...w, service: q.id})));
}

/** Who the panel lists: from the queues, or (a server without the lists) whoever has a transcript. */
function assistantEntries() {
  if (withAssistant) return withAssistant;
  return [...transcripts.keys()].map((id) => ({session_id: id, customer: customerNames.get(id)}));
}

/** The session whose transcript shows: the one picked, else the most recently active listed one. */
function shownTranscript(entries) {
  if (chosenTranscript && (transcripts.has(chosenTranscript)
      || entries.some((e) => e.session_id === chosenTranscript))) return chosenTranscript;
  let best = null;
  for (const e of entries) {
    const at = transcripts.get(e.session_id)?.at ?? -1;
    if (best === null || at > best.at) best = {id: e.session_id, at};
  }
  return best?.id ?? null;
}

function transcript(msg) {
  if (!msg.session_id) return;
  const entry = transcripts.get(msg.session_id) ?? {lines: [], at: 0};
  entry.lines.push({speaker: String(msg.speaker ?? ''), text: String(msg.text ?? '')});
  if (entry.lines.length > MAX_TRANSCRIPT) entry.lines.shift();
  entry.at = Date.now();
  transcripts.set(msg.session_id, entry);
  renderAssistant();
}

/** Forget transcripts of sessions that are gone (kept while waiting, for the teller who accepts). */
function pruneTranscripts() {
  if (!withAssistant) return;
  const keep = new Set([hooks.sessionId, chosenTranscript, ...withAssistant.map((w) => w.session_id)]);
  for (const q of queues.services) for (const w of q.waiting ?? []) keep.add(w.session_id);
  for (const id of transcripts.keys()) if (!keep.has(id)) transcripts.delete(id);
  for (const id of customerNames.keys()) if (!keep.has(id)) customerNames.delete(id);
}

function renderAssistant() {
  const entries = assistantEntries();
  const shown = shownTranscript(entries);
  hooks.withDigitalHuman = entries;
  hooks.transcriptSession = shown;
  hooks.transcripts = Object.fromEntries([...transcripts].map(([id, t]) => [id, t.lines]));
  $('#assistant-none').hidden = entries.length > 0;
  $('#assistant-list').replaceChildren(...entries.map((e) => h('li', {},
    h('button', {
      type: 'button', class: 'assistant-customer', 'data-session': e.session_id,
      'aria-pressed': String(e.session_id === shown),
      onclick: () => {
        chosenTranscript = e.session_id;
        renderAssistant();
      },
    },
    h('span', {class: 'name'}, e.customer || customerNames.get(e.session_id) || 'Customer · 客户'),
    e.service ? h('span', {class: 'meta'}, ...serviceName(e.service)) : null,
    e.since_s != null ? h('span', {class: 'meta since', 'data-since': e.since_s},
      formatWait(e.since_s + (Date.now() - queues.at) / 1000)) : null))));
  const box = $('#transcript-box');
  box.hidden = shown === null;
  if (shown === null) return;
  const name = entries.find((e) => e.session_id === shown)?.customer || customerNames.get(shown) || '';
  $('#transcript-name').textContent = name ? `· ${name}` : '';
  const list = $('#transcript');
  const following = list.scrollHeight - list.scrollTop - list.clientHeight < 32;
  const lines = transcripts.get(shown)?.lines ?? [];
  list.replaceChildren(...lines.map((l) => h('li', {'data-speaker': l.speaker},
    h('span', {class: 'speaker'}, SPEAKERS[l.speaker] ?? l.speaker), l.text)));
  $('#transcript-none').hidden = lines.length > 0;
  if (following) list.scrollTop = list.scrollHeight;
}

function accept(service) {
  const msg = service ? {type: 'accept', service} : {type: 'accept'};
  if (!account.send(msg)) messages.show('Not connected to the branch. · 未连接', 'error');
}

// ---- the call ----------------------------------------------------------------------------

function startCall(sessionId, {name, service, tier, reference, language}) {
  if (sessionId !== hooks.sessionId) business.reset(); // the same call after a reload keeps it
  hooks.sessionId = sessionId;
  if (hooks.tellerStatus === 'available') showStatus('busy'); // the server's accept did this
  call.expectPeer();
  showCustomer({name, service, tier: tier ?? tiers.get(sessionId), reference, language});
  setState('connecting');
  renderQueues();
  call.negotiate(sessionId);
}

function endCall(msg) {
  call.hangUp();
  $('#reference').textContent = msg.reference || '–';
  setState('ended');
  if (hooks.tellerStatus === 'busy') showStatus('available'); // released by the server
}

function welcome(msg) {
  // Only the services this teller is qualified for can be ticked (the server checks too).
  const qualified = msg.user?.skills ?? SKILLS;
  for (const id of SKILLS) {
    const box = $(`#skill-${id}`);
    box.disabled = !qualified.includes(id);
    if (box.disabled) box.checked = false;
  }
  const s = msg.session;
  if (s) {
    // Back after a reload or a dropped socket, mid-call: rebuild the media for the same session.
    showStatus('busy');
    startCall(s.session_id ?? s.id, {
      name: s.peer?.name ?? s.customer?.name, service: s.service, language: s.language,
    });
    return;
  }
  if (IN_CALL.has(hooks.state)) {
    call.link.close();
    setState('idle');
    messages.show('The call ended while you were disconnected. · 断线期间通话已结束', 'notice');
  }
  sendStatus(); // tell the server what this console shows
}

/** Every signaling message (shown and recorded already by setupSignIn). */
function onMessage(msg) {
  call.handle(msg);
  business.handle(msg);
  switch (msg.type) {
    case 'welcome':
      welcome(msg);
      break;
    case 'teller':
      for (const id of SKILLS) $(`#skill-${id}`).checked = (msg.skills ?? SKILLS).includes(id);
      showStatus(msg.status);
      break;
    case 'queues':
      queues = {services: msg.services ?? [], at: Date.now()};
      for (const q of queues.services) {
        for (const w of q.waiting ?? []) {
          tiers.set(w.session_id, w.tier);
          customerNames.set(w.session_id, w.customer);
        }
        for (const w of q.with_digital_human ?? []) customerNames.set(w.session_id, w.customer);
      }
      withAssistant = readAssistantLists(queues.services) ?? withAssistant;
      pruneTranscripts();
      renderQueues();
      renderAssistant();
      break;
    case 'transcript':
      transcript(msg);
      break;
    case 'paired':
      startCall(msg.session_id, {
        name: msg.peer?.name, service: msg.service, tier: msg.peer?.tier, reference: msg.reference,
        language: msg.language,
      });
      // A customer the digital assistant handed over: show what they told it.
      if (transcripts.has(msg.session_id)) {
        chosenTranscript = msg.session_id;
        renderAssistant();
      }
      break;
    case 'peer':
      if (msg.state === 'left') messages.show('The customer has left the call. · 客户已离开', 'notice');
      break;
    case 'ended':
      endCall(msg);
      break;
    default:
      break;
  }
}

// ---- wiring -------------------------------------------------------------------------------

$('#skills').replaceChildren(...SKILLS.map((id) => h('label', {for: `skill-${id}`},
  h('input', {type: 'checkbox', id: `skill-${id}`, 'data-testid': `skill-${id}`, value: id, checked: true,
    onchange: sendStatus}),
  SKILL_NAMES[id])));

statusSelect.addEventListener('change', sendStatus);
$('#accept').addEventListener('click', () => accept());
$('#end').addEventListener('click', () => {
  if (!account.send({type: 'end', outcome: $('#end-outcome').value})) {
    messages.show('Not connected to the branch. · 未连接', 'error');
  }
});
// Tick the longest waits between `queues` messages without rebuilding the table (and its buttons).
setInterval(() => {
  const elapsed = (Date.now() - queues.at) / 1000;
  for (const cell of document.querySelectorAll('[data-longest]:not([data-longest=""])')) {
    cell.textContent = formatWait(Number(cell.dataset.longest) + elapsed);
  }
  for (const cell of document.querySelectorAll('[data-since]')) {
    cell.textContent = formatWait(Number(cell.dataset.since) + elapsed);
  }
}, 1000);

if (!account.resume()) showConsole(false);
