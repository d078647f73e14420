// The customer page (/): log in, pick a service, wait in its queue, talk to a teller by video.
// States (window.vbank.state): login → choose → queued → connecting → in_call → ended | left,
// with teller_reconnecting and requeued on the way when the teller's connection drops.

import {$, AuthError, MessageArea, apiGet, formatWait, h, hooks, setupSignIn} from './common.js';
import {PageCall} from './call.js';

const SERVICES_REFRESH_MS = 10000;

const STATES = {
  login: {text: 'Please log in · 请登录'},
  choose: {text: 'Choose a service · 请选择业务'},
  queued: {text: 'You are in the queue · 正在排队'},
  connecting: {text: 'Connecting you to a teller… · 正在为您接通柜员'},
  in_call: {text: 'In call · 通话中', tone: 'ok'},
  teller_reconnecting: {text: 'Your teller is reconnecting… · 柜员正在重新连接', tone: 'warn'},
  requeued: {
    text: 'Your teller was disconnected — you are first in line · 柜员连接中断，您排在第一位',
    tone: 'warn',
  },
  ended: {text: 'Call ended · 通话结束', tone: 'done'},
  left: {text: 'You left the queue · 您已离开排队', tone: 'done'},
};
const IN_SESSION = new Set(['queued', 'connecting', 'in_call', 'teller_reconnecting', 'requeued']);
const PAIRED = new Set(['connecting', 'in_call', 'teller_reconnecting']);
const SPEAKERS = {customer: 'You · 您', teller: 'Teller · 柜员', assistant: 'Assistant · 助手'};

const messages = new MessageArea($('#messages'));

let services = new Map(); // id → service from GET /services
let visitService = null; // the service of the current visit
let servicesTimer = null;
let wasPaired = false; // this visit reached a teller (changes the text for `left`)

const account = setupSignIn({
  role: 'customer',
  messages,
  onMessage,
  onSignedIn: () => toLobby(),
  onSignedOut: () => {
    if (IN_SESSION.has(hooks.state)) account.send({type: 'leave'});
    finishCall();
    clearInterval(servicesTimer);
    showView('login');
  },
});

// The media of a visit: an offer counts while the visit lasts; a broken media path is rebuilt
// once a teller has been paired (not while first waiting in the queue).
const call = new PageCall({
  messages,
  send: account.send,
  setState,
  reconnecting: 'teller_reconnecting',
  wanted: () => IN_SESSION.has(hooks.state),
  repairable: () => IN_SESSION.has(hooks.state) && hooks.state !== 'queued',
  noCamera: 'Camera or microphone unavailable: your teller will not see or hear you. · 无法使用摄像头或麦克风',
});

// ---- views and state -------------------------------------------------------------------

function showView(name) {
  for (const view of ['login', 'lobby', 'call']) $(`#view-${view}`).hidden = view !== name;
  $('#who').hidden = name === 'login';
}

function setState(state) {
  hooks.state = state;
  const {text, tone} = STATES[state];
  $('#state').textContent = state === 'left' && wasPaired ? 'You left the call · 您已结束通话' : text;
  $('#state-panel').dataset.tone = tone ?? '';
  const waiting = state === 'queued' || state === 'requeued';
  $('#fact-position').hidden = !waiting;
  $('#fact-wait').hidden = !waiting;
  $('#fact-teller').hidden = !PAIRED.has(state) || !$('#peer-name').textContent;
  $('#fact-reference').hidden = state !== 'ended' || !$('#reference').textContent;
  $('#hangup').hidden = !IN_SESSION.has(state);
  $('#hangup').textContent = PAIRED.has(state) ? 'Hang up · 挂断' : 'Leave queue · 离开排队';
  $('#back').hidden = IN_SESSION.has(state);
  $('#call-grid').hidden = state === 'ended' || state === 'left';
}

function setQueue(position, waitS) {
  if (position != null) $('#position').textContent = String(position);
  if (waitS !== undefined) $('#wait').textContent = formatWait(waitS);
}

function serviceLabel(id) {
  const s = services.get(id);
  return s ? `${s.name.en} · ${s.name.zh}` : id ?? '';
}

// ---- services ----------------------------------------------------------------------------

async function loadServices() {
  const token = account.token;
  if (!token) return;
  try {
    const list = await apiGet('/services', token);
    services = new Map(list.map((s) => [s.id, s]));
    renderServices(list);
    if (visitService) $('#service-name').textContent = serviceLabel(visitService);
  } catch (e) {
    if (e instanceof AuthError) account.logout(e.message);
    else console.warn(e);
  }
}

function renderServices(list) {
  const root = $('#services');
  const chosen = $('#join-form').elements.service?.value;
  if (!list.length) {
    root.replaceChildren(h('p', {class: 'empty'}, 'No services are open right now. · 暂无可办理业务'));
    return;
  }
  root.replaceChildren(...list.map((s) => h('label', {class: 'service-card', 'data-testid': `service-${s.id}`},
    h('input', {type: 'radio', name: 'service', value: s.id, checked: s.id === chosen}),
    h('span', {class: 'name'}, s.name.en, h('span', {class: 'zh'}, s.name.zh)),
    h('span', {class: 'meta'}, `${s.queue_length} waiting · ${s.queue_length} 人排队`),
    h('span', {class: 'meta'}, `About ${formatWait(s.estimated_wait_s)} · 约 ${formatWait(s.estimated_wait_s)}`))));
  $('[data-testid=join]').disabled = !$('#join-form').elements.service?.value;
}

function toLobby() {
  hooks.sessionId = null;
  setState('choose');
  showView('lobby');
  loadServices();
  clearInterval(servicesTimer);
  servicesTimer = setInterval(() => !$('#view-lobby').hidden && loadServices(), SERVICES_REFRESH_MS);
}

// ---- joining and the call -----------------------------------------------------------------

async function join(ev) {
  ev.preventDefault();
  const service = $('#join-form').elements.service?.value;
  if (!service) return;
  const button = $('[data-testid=join]');
  button.disabled = true;
  await call.ensureCamera();
  if (!account.send({type: 'join', service})) {
    messages.show('Not connected to the branch yet; please try again. · 尚未连接，请重试', 'error');
    button.disabled = false;
  }
  // The view changes when `queued` arrives.
}

function enterSession(sessionId, service) {
  hooks.sessionId = sessionId;
  wasPaired = false;
  visitService = service ?? visitService;
  $('#service-name').textContent = serviceLabel(visitService);
  $('#reference').textContent = '';
  $('#captions').replaceChildren();
  $('#captions-none').hidden = false;
  showView('call');
  clearInterval(servicesTimer);
}

function paired(msg) {
  const sameSession = msg.session_id === call.link.sessionId;
  if (msg.session_id !== hooks.sessionId) enterSession(msg.session_id, msg.service);
  wasPaired = true;
  call.expectPeer();
  $('#peer-name').textContent = msg.peer?.name ?? '';
  setState('connecting');
  // A new teller for the same session: the server kept our media up, keep it if it still is.
  if (!(sameSession && call.link.connectionState === 'connected')) call.negotiate(msg.session_id);
  else call.maybeInCall();
}

function finishCall() {
  call.stop();
  $('#unmute').hidden = true;
}

/** `welcome` carries `session` when we have one to resume (page reload, dropped socket). */
function welcome(msg) {
  const s = msg.session;
  if (!s) {
    if (IN_SESSION.has(hooks.state)) {
      finishCall();
      toLobby();
      messages.show('Your previous visit has ended. · 您之前的排队已结束', 'notice');
    }
    return;
  }
  const id = s.session_id ?? s.id;
  const state = String(s.state ?? s.status ?? '').toLowerCase();
  if (id !== hooks.sessionId) enterSession(id, s.service);
  if (s.peer?.name) $('#peer-name').textContent = s.peer.name;
  if (state === 'queued' || state === 'waiting' || state === 'requeued') {
    setQueue(s.position, s.estimated_wait_s);
    setState(state === 'requeued' ? 'requeued' : 'queued');
    call.ensureCamera();
  } else {
    wasPaired = true;
    call.expectPeer();
    setState('connecting');
    call.negotiate(id);
  }
}

function addCaption(msg) {
  const list = $('#captions');
  const speaker = SPEAKERS[msg.speaker] ?? msg.speaker ?? '';
  list.append(h('li', {}, h('span', {class: 'speaker'}, speaker), msg.text ?? ''));
  while (list.children.length > 200) list.firstElementChild.remove();
  list.scrollTop = list.scrollHeight;
  $('#captions-none').hidden = true;
}

/** Every signaling message (shown and recorded already by setupSignIn). */
function onMessage(msg) {
  call.handle(msg);
  switch (msg.type) {
    case 'welcome':
      welcome(msg);
      break;
    case 'queued':
      enterSession(msg.session_id, msg.service);
      setQueue(msg.position, msg.estimated_wait_s);
      setState('queued');
      break;
    case 'queue':
      setQueue(msg.position, msg.estimated_wait_s);
      break;
    case 'paired':
      paired(msg);
      break;
    case 'requeued':
      if (msg.session_id && msg.session_id !== hooks.sessionId) enterSession(msg.session_id);
      call.expectPeer(); // the next teller's
      setQueue(msg.position, null);
      setState('requeued');
      break;
    case 'ended':
      finishCall();
      $('#reference').textContent = msg.reference ?? '';
      // Leaving the queue before a teller came ends the session too; say so plainly.
      setState(msg.outcome === 'customer_left' && !wasPaired ? 'left' : 'ended');
      break;
    case 'left':
      finishCall();
      setState('left');
      break;
    case 'caption':
      addCaption(msg);
      break;
    case 'error':
      if (!IN_SESSION.has(hooks.state)) $('[data-testid=join]').disabled = false;
      break;
    default:
      break;
  }
}

// ---- wiring -------------------------------------------------------------------------------

$('#join-form').addEventListener('submit', join);
$('#join-form').addEventListener('change', () => {
  $('[data-testid=join]').disabled = !$('#join-form').elements.service?.value;
});
$('#hangup').addEventListener('click', () => {
  if (!account.send({type: 'leave'})) {
    messages.show('Not connected to the branch; trying again… · 连接中断，正在重试', 'error');
  }
});
$('#back').addEventListener('click', () => {
  messages.clear();
  toLobby();
});

if (!account.resume()) showView('login');
