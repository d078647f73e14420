// The auditor page: sign in, list sealed sessions, verify a package, replay its recordings beside
// the transcript and the timeline of identity checks, consents, signatures and QC alerts.
// Clicking a line seeks the recording to that moment. No WebSocket: everything is read over
// /api/v1/evidence, and every read is logged by the server.

import {
  $, AuthError, LANGUAGE_NAMES, MessageArea, apiGet, clearLogin, h, hooks, keepLoginFresh, loadLogin, login, saveLogin,
  signOut,
} from './common.js';

const PAGE = 'auditor';
const API = '/api/v1';
const EXPIRED = 'Your login has expired; please log in again. · 登录已过期，请重新登录';
/** What each timeline kind is called on the page. */
const KINDS = {
  identity: 'Identity · 身份核验',
  snapshot: 'Face snapshot · 人脸抓拍',
  document: 'Document · 文件',
  consent: 'Consent · 客户同意',
  signature: 'Signature · 签名',
  answer: 'Answer · 答题',
  acknowledgement: 'Acknowledgement · 风险确认',
  step: 'Step · 流程',
  qc_alert: 'QC alert · 质检告警',
  qc_result: 'QC result · 质检结果',
};

const messages = new MessageArea($('#messages'));
const video = $('#replay');
let current = null; // the login: {token, role, username, expiresAt}
let stopRefresh = () => {};
let opened = null; // the package on screen: the manifest with transcript, timeline and qc
let leg = null; // the recording item playing
let videoUrl = null; // object URL of the recording's bytes (fetched with the bearer token)

// What tests read: window.vbank.evidence.
hooks.evidence = {sessions: [], sessionId: null, verify: null, recording: null};

// ---------------------------------------------------------------- signing in and out
function show(view) {
  hooks.state = view;
  $('#view-login').hidden = view !== 'login';
  $('#view-audit').hidden = view === 'login';
  $('#who').hidden = view === 'login';
}

function signedIn(saved) {
  current = saved;
  $('#who-name').textContent = current.username;
  stopRefresh = keepLoginFresh(PAGE, current, (fresh) => { current = fresh; });
  show('list');
  loadList();
}

function logout(reason) {
  if (!reason && current) signOut(current.token); // the user's own logout, not a refusal
  stopRefresh();
  clearLogin(PAGE);
  current = null;
  closeSession();
  show('login');
  messages.clear();
  if (reason) messages.show(reason, 'error');
}

$('#login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  const error = $('#login-error');
  const submit = form.querySelector('[type=submit]');
  error.textContent = '';
  submit.disabled = true;
  try {
    const result = await login(form.elements.username.value.trim(), form.elements.password.value);
    if (result.role !== 'auditor') {
      error.textContent = 'This page is for auditors. · 本页面仅供审计人员使用';
      return;
    }
    saveLogin(PAGE, result);
    form.reset();
    messages.clear();
    signedIn(result);
  } catch (e) {
    error.textContent = e.message;
  } finally {
    submit.disabled = false;
  }
});
$('#logout').addEventListener('click', () => logout());

/** Run an API read; a refused token logs out, any other failure is shown. */
async function read(path) {
  try {
    return await apiGet(path, current.token);
  } catch (e) {
    if (e instanceof AuthError) logout(EXPIRED);
    else messages.show(e.message, 'error');
    return null;
  }
}

// ---------------------------------------------------------------- the list
function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

async function loadList() {
  const sessions = await read('/evidence');
  if (!sessions) return;
  hooks.evidence.sessions = sessions;
  const rows = sessions.map((s) => h('tr', {'data-session': s.session_id,
    'aria-selected': String(s.session_id === opened?.session_id)},
  h('td', {class: 'num'}, when(s.sealed_at)),
  h('td', {class: 'reference'}, s.reference ?? '–'),
  h('td', {}, s.service),
  h('td', {}, s.customer ?? '–'),
  h('td', {}, s.outcome ?? '–'),
  h('td', {}, h('button', {type: 'button', class: 'small', 'data-testid': `open-${s.session_id}`,
    onclick: () => openSession(s.session_id)}, 'Open · 查看'))));
  $('#sealed-rows').replaceChildren(...(rows.length ? rows
    : [h('tr', {}, h('td', {colspan: 6, class: 'empty'}, 'No sealed sessions yet. · 暂无封存业务'))]));
}
$('#refresh').addEventListener('click', loadList);

// ---------------------------------------------------------------- one package
function closeSession() {
  opened = null;
  leg = null;
  hooks.evidence.sessionId = null;
  hooks.evidence.verify = null;
  video.removeAttribute('src');
  video.load();
  if (videoUrl) URL.revokeObjectURL(videoUrl);
  videoUrl = null;
  $('#session-view').hidden = true;
}

async function openSession(sessionId) {
  const pkg = await read(`/evidence/${encodeURIComponent(sessionId)}`);
  if (!pkg) return;
  closeSession();
  opened = pkg;
  hooks.state = 'session';
  hooks.evidence.sessionId = sessionId;
  for (const row of document.querySelectorAll('#sealed-rows tr')) {
    row.setAttribute('aria-selected', String(row.dataset.session === sessionId));
  }
  $('#session-title').textContent = `${pkg.reference} · ${pkg.service} · ${pkg.customer}`;
  $('#verify-result').textContent = '';
  $('#verify-result').removeAttribute('data-intact');
  $('#problems').replaceChildren();
  renderFacts(pkg);
  renderItems(pkg);
  const legs = pkg.items.filter((i) => i.kind === 'recording');
  $('#legs').replaceChildren(...legs.map((item) => h('button', {type: 'button', class: 'small',
    'aria-pressed': 'false', 'data-path': item.path, onclick: () => play(item)},
  `${item.role ?? 'recording'} · ${Math.round(item.duration_s ?? 0)} s`)));
  renderLines();
  $('#session-view').hidden = false;
  if (legs.length) await play(legs.find((i) => i.role === 'customer') ?? legs[0]);
}

function renderFacts(pkg) {
  const facts = [
    ['Reference · 编号', pkg.reference], ['Service · 业务', pkg.service],
    ['Language · 语言', LANGUAGE_NAMES[pkg.summary.language] ?? '–'],
    ['Customer · 客户', pkg.customer], ['Tellers · 柜员', pkg.tellers.join(', ') || '–'],
    ['Outcome · 结果', pkg.outcome ?? '–'], ['Sealed · 封存', when(pkg.sealed_at)],
    ['Chain entry · 链序号', String(pkg.seq)], ['Chain hash · 链哈希', pkg.chain_sha256],
  ];
  $('#facts').replaceChildren(...facts.flatMap(([k, v]) => [h('dt', {}, k),
    h('dd', {class: k.startsWith('Chain hash') ? 'hash' : null}, v)]));
}

function renderItems(pkg) {
  $('#item-rows').replaceChildren(...pkg.items.map((item) => h('tr', {'data-path': item.path},
    h('td', {}, h('button', {type: 'button', class: 'link small', title: 'Open the file · 打开文件',
      onclick: () => openFile(item)}, item.path)),
    h('td', {class: 'hash', title: item.sha256}, `${item.sha256.slice(0, 16)}…`),
    h('td', {class: 'num'}, String(item.bytes)))));
}

// ---------------------------------------------------------------- verify
$('#verify').addEventListener('click', async () => {
  if (!opened) return;
  const button = $('#verify');
  button.disabled = true;
  try {
    const result = await read(`/evidence/${encodeURIComponent(opened.session_id)}/verify`);
    if (!result) return;
    hooks.evidence.verify = result;
    const out = $('#verify-result');
    out.dataset.intact = String(result.intact);
    out.textContent = result.intact ? 'Intact · 完整无篡改'
      : `Tampered or missing: ${result.problems.length} problem(s) · 证据异常`;
    $('#problems').replaceChildren(...result.problems.map((p) => h('li', {}, p)));
  } finally {
    button.disabled = false;
  }
});

// ---------------------------------------------------------------- files and replay
/** An item's bytes as an object URL (a <video> cannot send the bearer token itself). */
async function fileUrl(item) {
  const path = item.path.split('/').map(encodeURIComponent).join('/');
  const r = await fetch(`${API}/evidence/${encodeURIComponent(opened.session_id)}/files/${path}`,
    {headers: {Authorization: `Bearer ${current.token}`}});
  if (r.status === 401) {
    logout(EXPIRED);
    return null;
  }
  if (!r.ok) {
    const detail = await r.json().catch(() => ({}));
    messages.show(detail.detail ?? `${item.path}: HTTP ${r.status}`, 'error');
    return null;
  }
  return URL.createObjectURL(await r.blob());
}

async function openFile(item) {
  if (item.kind === 'recording') {
    await play(item);
    return;
  }
  const url = await fileUrl(item);
  if (url) window.open(url, '_blank', 'noopener');
}

async function play(item) {
  const sessionId = opened.session_id;
  const url = await fileUrl(item);
  if (!url || opened?.session_id !== sessionId) return;
  if (videoUrl) URL.revokeObjectURL(videoUrl);
  videoUrl = url;
  leg = item;
  hooks.evidence.recording = item.path;
  video.src = url;
  video.closest('figure').classList.add('has-frames');
  for (const b of $('#legs').children) b.setAttribute('aria-pressed', String(b.dataset.path === item.path));
  renderLines(); // offsets are relative to this recording's start
}

/** Seconds from the playing recording's start to `iso` (null without a recording). */
function offset(iso) {
  if (!leg?.started_at) return null;
  return (Date.parse(iso) - Date.parse(leg.started_at)) / 1000;
}

function clock(seconds) {
  if (seconds == null || Number.isNaN(seconds)) return '–';
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function seek(iso) {
  const at = offset(iso);
  if (at == null || Number.isNaN(at)) return;
  video.currentTime = Math.max(0, at);
  video.play().catch(() => {}); // autoplay rules may refuse; the position is set all the same
}

function line(entry, label, text, attrs) {
  const at = offset(entry.at);
  return h('li', {tabindex: '0', 'data-at': entry.at, 'data-offset': at == null ? null : String(at),
    title: entry.at, ...attrs,
    onclick: () => seek(entry.at),
    onkeydown: (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); seek(entry.at); } }},
  h('span', {class: 't'}, clock(at)), h('span', {}, label, text));
}

/** A short human reading of a timeline record's data. */
function describe(entry) {
  const d = entry.data ?? {};
  const said = d.text ?? d.phrase ?? d.message ?? d.title ?? d.step ?? d.name;
  const parts = [];
  if (said) parts.push(String(said));
  if (d.verified !== undefined) parts.push(d.verified ? 'verified · 已核验' : 'not verified · 未通过');
  if (d.kind && entry.kind.startsWith('qc_')) parts.unshift(String(d.kind));
  if (entry.path) parts.push(entry.path);
  if (!parts.length) parts.push(JSON.stringify(d));
  return `${parts.join(' — ')} (${entry.actor})`;
}

function renderLines() {
  if (!opened) return;
  const transcript = opened.transcript.map((c) => line(c,
    h('span', {class: 'speaker'}, c.speaker), c.text, {'data-speaker': c.speaker}));
  $('#transcript').replaceChildren(...transcript);
  $('#transcript-none').hidden = transcript.length > 0;
  const events = [...opened.timeline, ...opened.qc].sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  const timeline = events.map((e) => line(e, h('span', {class: 'kind'}, KINDS[e.kind] ?? e.kind),
    describe(e), {'data-kind': e.kind}));
  $('#timeline').replaceChildren(...timeline);
  $('#timeline-none').hidden = timeline.length > 0;
}

// The lines being played are marked as the recording goes.
video.addEventListener('timeupdate', () => {
  for (const list of [$('#transcript'), $('#timeline')]) {
    let last = null;
    for (const li of list.children) {
      li.classList.remove('now');
      if (li.dataset.offset != null && Number(li.dataset.offset) <= video.currentTime) last = li;
    }
    last?.classList.add('now');
  }
});

// ---------------------------------------------------------------- start
const saved = loadLogin(PAGE);
if (saved && saved.role === 'auditor') signedIn(saved);
else show('login');
