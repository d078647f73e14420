// The customer page (/): log in, pick a service, wait in its queue, talk to a teller by video,
// or talk to the digital assistant (a speaking avatar served by the branch) straight away.
// States (window.vbank.state): login → choose → queued → connecting → in_call → ended | left,
// with teller_reconnecting and requeued on the way when the teller's connection drops, and
// handed_over when the digital assistant passes the customer to a teller (first in line).
// window.vbank.peerRole says who is on the other side: teller, digital_human or null;
// window.vbank.captions holds the captions shown, {speaker, text}, oldest first.
// The business done in the call (signing, risk assessment) is customer-flow.js's panel; the
// points mall (#view-mall, reached from the lobby and after a call, never during one) mall.js's;
// rating the call once it has ended (#rating) rating.js's.

import {$, AuthError, MessageArea, apiGet, formatWait, h, hooks, setupSignIn} from './common.js';
import {PageCall} from './call.js';
import {CustomerBusiness} from './customer-flow.js';
import {PointsMall} from './mall.js';
import {CallRating} from './rating.js';

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
  handed_over: {text: 'Connecting you to a teller — you are first in line · 正在为您转接人工'},
  assistant_failed: {
    text: 'The digital assistant could not connect — you are first in line for a teller · 数字员工未能接通，您排在第一位',
    tone: 'warn',
  },
  ended: {text: 'Call ended · 通话结束', tone: 'done'},
  left: {text: 'You left the queue · 您已离开排队', tone: 'done'},
};
// The same states while the other side is the digital assistant.
const WITH_ASSISTANT = {
  connecting: {text: 'Connecting you to the digital assistant… · 正在接通数字员工'},
  in_call: {text: 'With the digital assistant · 数字员工服务中', tone: 'ok'},
};
const IN_SESSION = new Set(['queued', 'connecting', 'in_call', 'teller_reconnecting', 'requeued',
  'handed_over', 'assistant_failed']);
const PAIRED = new Set(['connecting', 'in_call', 'teller_reconnecting']);
const WAITING = new Set(['queued', 'requeued', 'handed_over', 'assistant_failed']);
const SPEAKERS = {
  customer: 'You · 您', teller: 'Teller · 柜员', digital_human: 'Assistant · 数字员工',
  assistant: 'Assistant · 数字员工',
};
const MAX_CAPTIONS = 30;
const ASSISTANT = {name: 'vbank digital assistant', role: 'digital_human'};
// How the other side is named on the page, by their role.
const PEERS = {
  teller: {label: 'Teller · 柜员', placeholder: 'Your teller will appear here. · 柜员画面'},
  digital_human: {
    label: 'Digital assistant · 数字员工',
    placeholder: 'The digital assistant will appear here. · 数字员工画面',
  },
  waiting: {label: 'Teller · 柜员', placeholder: 'A teller will appear here shortly. · 柜员即将接入'},
};

const messages = new MessageArea($('#messages'));

let services = new Map(); // id → service from GET /services
let visitService = null; // the service of the current visit
let servicesTimer = null;
let wasPaired = false; // this visit reached a teller (changes the text for `left`)
let assistantOffered = false; // a teller dropped: the assistant may serve while we wait

hooks.peerRole = null;
hooks.captions = [];

const account = setupSignIn({
  role: 'customer',
  messages,
  onMessage,
  onSignedIn: () => toLobby(),
  onSignedOut: () => {
    if (IN_SESSION.has(hooks.state)) account.send({type: 'leave'});
    mall.forget();
    rating.withdraw();
    finishCall();
    showPeer(null);
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

const business = new CustomerBusiness({send: account.send, messages, token: () => account.token});
const mall = new PointsMall({token: () => account.token, signedOut: (reason) => account.logout(reason)});
const rating = new CallRating({request: (...args) => mall.call(...args),
  signedOut: (reason) => account.logout(reason)});

// ---- views and state -------------------------------------------------------------------

function showView(name) {
  for (const view of ['login', 'lobby', 'call', 'mall']) $(`#view-${view}`).hidden = view !== name;
  if (name !== 'mall') mall.close();
  $('#who').hidden = name === 'login';
}

function setState(state) {
  hooks.state = state;
  const {text, tone} = (hooks.peerRole === 'digital_human' && WITH_ASSISTANT[state]) || STATES[state];
  $('#state').textContent = state === 'left' && wasPaired ? 'You left the call · 您已结束通话' : text;
  $('#state-panel').dataset.tone = tone ?? '';
  const waiting = WAITING.has(state);
  $('#fact-position').hidden = !waiting;
  $('#fact-wait').hidden = !waiting;
  $('#fact-teller').hidden = !PAIRED.has(state) || !$('#peer-name').textContent;
  $('#fact-reference').hidden = state !== 'ended' || !$('#reference').textContent;
  $('#hangup').hidden = !IN_SESSION.has(state);
  $('#hangup').textContent = PAIRED.has(state) ? 'Hang up · 挂断' : 'Leave queue · 离开排队';
  $('#back').hidden = IN_SESSION.has(state);
  $('#call-to-mall').hidden = IN_SESSION.has(state);
  $('#call-grid').hidden = state === 'ended' || state === 'left';
  // offered (never imposed) after a teller dropped: the assistant while waiting for a person
  $('#ask-assistant').hidden = !(state === 'requeued' && assistantOffered);
}

function setQueue(position, waitS) {
  if (position != null) $('#position').textContent = String(position);
  if (waitS !== undefined) $('#wait').textContent = formatWait(waitS);
}

/** Who is (or will be) on the other side: {name, role} from `paired`, or null while waiting. */
function showPeer(peer) {
  hooks.peerRole = peer ? (peer.role ?? 'teller') : null;
  // With the digital assistant, a person is one click away (it hands over, first in line).
  $('#ask-person').hidden = hooks.peerRole !== 'digital_human';
  const names = PEERS[hooks.peerRole] ?? PEERS.waiting;
  $('#peer-name').textContent = peer?.name ?? '';
  $('#peer-label').textContent = names.label;
  $('#remote-label').textContent = names.label;
  $('#remote-placeholder').textContent = names.placeholder;
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
  enableJoin();
}

/** The two join buttons work once a service is chosen (and not while a join is on its way). */
function enableJoin(enabled = !!$('#join-form').elements.service?.value) {
  for (const button of document.querySelectorAll('#join-form [type=submit]')) button.disabled = !enabled;
}

function toLobby() {
  hooks.sessionId = null;
  setState('choose');
  showView('lobby');
  loadServices();
  mall.refresh(['points']); // the balance on the mall's button
  clearInterval(servicesTimer);
  servicesTimer = setInterval(() => !$('#view-lobby').hidden && loadServices(), SERVICES_REFRESH_MS);
}

/** The points mall, between visits (the lobby's button, or after a call). */
function toMall() {
  if (IN_SESSION.has(hooks.state)) return;
  messages.clear();
  clearInterval(servicesTimer);
  showView('mall');
  mall.open();
  $('#mall-title').focus();
}

// ---- joining and the call -----------------------------------------------------------------

/** Join the chosen service's queue, or (the assistant's button) be served by the digital human. */
async function join(ev) {
  ev.preventDefault();
  const service = $('#join-form').elements.service?.value;
  if (!service) return;
  const withWhom = ev.submitter?.dataset.with; // 'digital_human' from the assistant's button
  enableJoin(false);
  await call.ensureCamera();
  // the assistant's voice, the flow's texts and the checks follow the call's language
  const language = $('#join-form').elements.language?.value || 'en';
  const msg = withWhom ? {type: 'join', service, language, with: withWhom}
    : {type: 'join', service, language};
  if (!account.send(msg)) {
    messages.show('Not connected to the branch yet; please try again. · 尚未连接，请重试', 'error');
    enableJoin();
  }
  // The view changes when `queued` arrives.
}

function enterSession(sessionId, service) {
  hooks.sessionId = sessionId;
  wasPaired = false;
  visitService = service ?? visitService;
  $('#service-name').textContent = serviceLabel(visitService);
  $('#reference').textContent = '';
  showPeer(null);
  $('#remote-placeholder').textContent = PEERS.teller.placeholder;
  hooks.captions = [];
  $('#captions').replaceChildren();
  $('#captions-none').hidden = false;
  business.reset();
  rating.withdraw();
  showView('call');
  clearInterval(servicesTimer);
}

function paired(msg) {
  const sameSession = msg.session_id === call.link.sessionId;
  if (msg.session_id !== hooks.sessionId) enterSession(msg.session_id, msg.service);
  wasPaired = true;
  call.expectPeer();
  showPeer(msg.peer ?? {role: 'teller'});
  setState('connecting');
  // A new teller for the same session (after a teller dropped, or from the digital assistant):
  // the server kept our media up, keep it if it still is.
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
  if (s.peer) showPeer(s.peer);
  // In a call without a teller: the digital assistant is serving us.
  else if (state === 'in_call' && 'teller' in s && !s.teller) showPeer(ASSISTANT);
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

/** A caption: newest at the bottom, the last MAX_CAPTIONS kept, scrolled into view unless the
 * customer scrolled up to read an earlier one. */
function addCaption(msg) {
  const list = $('#captions');
  const speaker = String(msg.speaker ?? '');
  const text = String(msg.text ?? '');
  const following = list.scrollHeight - list.scrollTop - list.clientHeight < 32;
  hooks.captions.push({speaker, text});
  if (hooks.captions.length > MAX_CAPTIONS) hooks.captions.shift();
  list.append(h('li', {'data-speaker': speaker},
    h('span', {class: 'speaker'}, SPEAKERS[speaker] ?? speaker), text));
  while (list.children.length > MAX_CAPTIONS) list.firstElementChild.remove();
  if (following) list.scrollTop = list.scrollHeight;
  $('#captions-none').hidden = true;
}

/** The digital assistant passed us to a teller: first in line, captions and media kept. */
function handedOver(msg) {
  if (msg.session_id && msg.session_id !== hooks.sessionId) return;
  call.expectPeer(); // the teller's
  showPeer(null);
  // The assistant's face is gone: say a teller is coming instead of showing its last frame.
  $('#remote-video').parentElement.classList.remove('has-frames');
  setState('handed_over');
}

/** Every signaling message (shown and recorded already by setupSignIn). */
function onMessage(msg) {
  call.handle(msg);
  mall.handle(msg);
  if (msg.type === 'welcome') business.customerName = msg.user?.display_name ?? '';
  business.handle(msg);
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
      assistantOffered = !!msg.assistant;
      // After `handed_over` this is the place it promised: keep saying we are being put through.
      if (hooks.state !== 'handed_over') {
        showPeer(null);
        // whoever served us is gone: say who comes next instead of showing a frozen frame
        $('#remote-video').parentElement.classList.remove('has-frames');
        // a service the assistant passes on (account opening) is a hand-over, not a drop
        setState({assistant_unavailable: 'assistant_failed', service_changed: 'handed_over'}[msg.reason]
          ?? 'requeued');
      } else {
        setState('handed_over');
      }
      break;
    case 'handed_over':
      handedOver(msg);
      break;
    case 'service': // asked the assistant for another service: the visit goes on with it
      visitService = msg.service;
      $('#service-name').textContent = serviceLabel(visitService);
      break;
    case 'ended':
      finishCall();
      $('#reference').textContent = msg.reference ?? '';
      // Leaving the queue before a teller came ends the session too; say so plainly.
      setState(msg.outcome === 'customer_left' && !wasPaired ? 'left' : 'ended');
      // A call that took place (someone served the customer) can be rated.
      if (wasPaired) rating.offer(msg.session_id ?? hooks.sessionId);
      break;
    case 'left':
      finishCall();
      setState('left');
      break;
    case 'caption':
      addCaption(msg);
      break;
    case 'error':
      if (!IN_SESSION.has(hooks.state)) enableJoin();
      break;
    default:
      break;
  }
  // The visit's reference, said when queued (or resumed): the business panel shows it at the end.
  const reference = {queued: msg.reference, welcome: msg.session?.reference}[msg.type];
  if (reference) business.reference = reference;
}

// ---- wiring -------------------------------------------------------------------------------

$('#join-form').addEventListener('submit', join);
$('#join-form').addEventListener('change', () => enableJoin());
$('#hangup').addEventListener('click', () => {
  if (!account.send({type: 'leave'})) {
    messages.show('Not connected to the branch; trying again… · 连接中断，正在重试', 'error');
  }
});
$('#ask-assistant').addEventListener('click', () => {
  $('#ask-assistant').hidden = true;
  if (!account.send({type: 'ask_for', who: 'digital_human'})) {
    messages.show('Not connected to the branch; trying again… · 连接中断，正在重试', 'error');
  }
});
$('#ask-person').addEventListener('click', () => {
  if (!account.send({type: 'ask_for', who: 'teller'})) {
    messages.show('Not connected to the branch; trying again… · 连接中断，正在重试', 'error');
  }
});
$('#back').addEventListener('click', () => {
  messages.clear();
  toLobby();
});
$('#open-mall').addEventListener('click', toMall);
$('#call-to-mall').addEventListener('click', toMall);
$('#mall-back').addEventListener('click', () => toLobby());

if (!account.resume()) showView('login');
