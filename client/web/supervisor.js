// The supervisor page (/supervisor): the live queues and their waits, the tellers and what they
// are doing, and every quality alert raised in a call as it happens (newest first).
// window.vbank.queues and window.vbank.tellers are the last `queues` and `tellers` lists;
// window.vbank.alerts the `qc_alert` messages received since signing in, newest first.

import {$, AuthError, MessageArea, apiGet, formatWait, h, hooks, setupSignIn} from './common.js';
import {alertItem, alertKey} from './flow.js';

const MAX_ALERTS = 200;
const LONG_WAIT_S = 300; // a wait past this shows in the warning colour
const STATUS = {available: 'Available · 空闲', busy: 'Busy · 忙碌', away: 'Away · 暂离'};

const messages = new MessageArea($('#messages'));

let serviceNames = new Map(); // id → {en, zh} from GET /services
let queues = null; // the last `queues` message and when it came: {services, at}
let tellers = null; // the last `tellers` list
const alerts = new Map(); // alertKey + session → alert with receivedAt, oldest first

hooks.queues = [];
hooks.tellers = [];
hooks.alerts = [];

const account = setupSignIn({
  role: 'supervisor',
  messages,
  onMessage,
  onSignedIn: (login) => {
    showBoard(true);
    hooks.state = 'watching';
    apiGet('/services', login.token).then((list) => {
      serviceNames = new Map(list.map((s) => [s.id, s.name]));
      renderQueues();
      renderTellers();
    }).catch((e) => (e instanceof AuthError ? account.logout(e.message) : console.warn(e)));
  },
  onSignedOut: () => {
    alerts.clear();
    renderAlerts();
    showBoard(false);
  },
});

function showBoard(visible) {
  $('#view-login').hidden = visible;
  $('#view-board').hidden = !visible;
  $('#who').hidden = !visible;
}

function serviceName(id) {
  const name = serviceNames.get(id);
  return name ? [name.en, ' ', h('span', {class: 'zh'}, name.zh)] : [id];
}

/** The longest wait in a queue now, in seconds, or null when nobody waits. */
function longestWait(q, elapsed = 0) {
  const waits = (q.waiting ?? []).map((w) => (w.waited_s ?? 0) + elapsed);
  return waits.length ? Math.max(...waits) : null;
}

function renderQueues() {
  if (queues === null) return; // still "waiting for queue data"
  const rows = $('#queue-rows');
  hooks.queues = queues.services;
  if (!queues.services.length) {
    rows.replaceChildren(h('tr', {}, h('td', {colspan: 4, class: 'empty'}, 'No queues yet. · 暂无排队数据')));
  } else {
    rows.replaceChildren(...queues.services.map((q) => {
      const waiting = q.waiting ?? [];
      const longest = longestWait(q);
      return h('tr', {'data-service': q.id},
        h('th', {scope: 'row'}, ...serviceName(q.id), h('div', {class: 'waiting'},
          ...waiting.map((w) => h('span', {class: `chip${w.tier && w.tier !== 'standard' ? ' vip' : ''}`},
            w.customer ?? '?', w.language === 'zh' ? ' · 中文' : '')))),
        h('td', {class: 'num'}, String(q.length ?? waiting.length)),
        h('td', {class: 'num', 'data-longest': longest ?? '',
          'data-late': String(longest != null && longest > LONG_WAIT_S)},
        longest == null ? '–' : formatWait(longest)),
        h('td', {class: 'num'}, String((q.with_digital_human ?? []).length)));
    }));
  }
  renderSummary();
}

function renderTellers() {
  if (tellers === null) return; // still "waiting for teller data"
  const rows = $('#teller-rows');
  hooks.tellers = tellers;
  if (!tellers.length) {
    rows.replaceChildren(h('tr', {}, h('td', {colspan: 4, class: 'empty'}, 'No tellers signed in. · 暂无柜员在线')));
  } else {
    rows.replaceChildren(...tellers.map((t) => h('tr', {'data-teller': t.name},
      h('th', {scope: 'row'}, t.display_name ?? t.name),
      h('td', {}, h('span', {class: 'status-dot', 'data-status': t.status}), STATUS[t.status] ?? t.status),
      h('td', {}, h('div', {class: 'waiting'},
        ...(t.skills ?? []).map((s) => h('span', {class: 'chip'}, serviceName(s)[0])))),
      h('td', {class: 'reference'}, t.session_id ? `${String(t.session_id).slice(0, 8)}…` : '–'))));
  }
  renderSummary();
}

function renderSummary() {
  const services = queues?.services ?? [];
  const staff = tellers ?? [];
  const waiting = services.reduce((n, q) => n + (q.length ?? (q.waiting ?? []).length), 0);
  const longest = Math.max(-1, ...services.map((q) => longestWait(q) ?? -1));
  $('#sum-waiting').textContent = queues ? String(waiting) : '–';
  $('#sum-longest').textContent = longest < 0 ? '–' : formatWait(longest);
  $('#sum-longest').dataset.longest = longest < 0 ? '' : longest;
  $('#sum-available').textContent = tellers ? String(staff.filter((t) => t.status === 'available').length) : '–';
  $('#sum-calls').textContent = tellers ? String(staff.filter((t) => t.session_id).length) : '–';
  $('#sum-assistant').textContent = String(services.reduce((n, q) => n + (q.with_digital_human ?? []).length, 0));
  $('#sum-alerts').textContent = String(alerts.size);
}

function addAlert(msg) {
  const key = `${msg.session_id ?? ''}|${alertKey(msg)}`;
  if (alerts.has(key)) return;
  alerts.set(key, {...msg, receivedAt: Date.now()});
  while (alerts.size > MAX_ALERTS) alerts.delete(alerts.keys().next().value);
  renderAlerts();
}

function renderAlerts() {
  const list = [...alerts.values()].reverse(); // newest first
  hooks.alerts = list.map(({receivedAt, ...a}) => a);
  $('#alerts-none').hidden = list.length > 0;
  $('#alerts').replaceChildren(...list.map((a) => alertItem(a, [
    h('span', {class: 'who'}, `${a.teller ?? a.speaker ?? '?'} → ${a.customer ?? '?'}`),
    a.session_id ? h('span', {class: 'reference'}, `${String(a.session_id).slice(0, 8)}…`) : null,
  ])));
  $('#sum-alerts').textContent = String(alerts.size);
}

/** Every signaling message (shown and recorded already by setupSignIn). */
function onMessage(msg) {
  switch (msg.type) {
    case 'queues':
      queues = {services: msg.services ?? [], at: Date.now()};
      renderQueues();
      break;
    case 'tellers':
      tellers = msg.tellers ?? [];
      renderTellers();
      break;
    case 'qc_alert':
      addAlert(msg);
      break;
    default:
      break;
  }
}

// Tick the longest waits between `queues` messages.
setInterval(() => {
  const elapsed = queues ? (Date.now() - queues.at) / 1000 : 0;
  for (const cell of document.querySelectorAll('[data-longest]:not([data-longest=""])')) {
    const s = Number(cell.dataset.longest) + elapsed;
    cell.textContent = formatWait(s);
    if (cell.dataset.late) cell.dataset.late = String(s > LONG_WAIT_S);
  }
}, 1000);

if (!account.resume()) showBoard(false);
