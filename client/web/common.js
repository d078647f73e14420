// Shared by the customer and teller pages: the stored login, API calls with the bearer token,
// the test hooks on window.vbank, the message area, the login form and the signed-in session.

import {Signal} from './signal.js';

const API = '/api/v1';
const MAX_MESSAGES = 50;
/** Where each role signs in; a login for another role is pointed there. */
const PAGES = {customer: '/', teller: '/teller', supervisor: '/supervisor', auditor: '/auditor'};
const ROLE_NAMES_ZH = {customer: '客户', teller: '柜员', supervisor: '主管', auditor: '审计'};

/** Raised when the server no longer accepts our token: the page goes back to its login form. */
export class AuthError extends Error {}

/**
 * What tests (and curious developers) read from the page. Fields are updated in place by the
 * pages; pcState is a getter set by the page that owns the peer connection.
 */
export const hooks = {
  state: 'login',
  sessionId: null,
  messages: [], // the last MAX_MESSAGES messages received on the WebSocket
  pcState: null,
  remoteFrames: 0, // remote video frames rendered, counted with requestVideoFrameCallback
  remoteWidth: 0,
  remoteHeight: 0,
};
window.vbank = hooks;

function recordMessage(msg) {
  hooks.messages.push(msg);
  if (hooks.messages.length > MAX_MESSAGES) hooks.messages.shift();
}

// The login lives in sessionStorage (one tab, gone when it closes), one key per page, so a tab
// that opens / after /teller does not reuse the teller's token.
export function loadLogin(page) {
  try {
    const saved = JSON.parse(sessionStorage.getItem(`vbank.${page}`) ?? 'null');
    return saved && saved.token ? saved : null;
  } catch {
    return null;
  }
}

export function saveLogin(page, login) {
  sessionStorage.setItem(`vbank.${page}`, JSON.stringify(login));
}

export function clearLogin(page) {
  sessionStorage.removeItem(`vbank.${page}`);
}

/** POST /auth/logout: the branch refuses this login's tokens from now on. Best effort: a page
 * that cannot reach the branch forgets the token anyway, and it expires. */
export function signOut(token) {
  fetch(`${API}/auth/logout`, {method: 'POST', headers: {Authorization: `Bearer ${token}`}})
    .catch(() => {});
}

/** POST /auth/login; resolves to {token, role, username} or throws an Error to show the user. */
export async function login(username, password) {
  let r;
  try {
    r = await fetch(`${API}/auth/login`, {
      method: 'POST',
      headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({username, password}),
    });
  } catch {
    throw new Error('Cannot reach the branch. Please try again. · 无法连接，请稍后再试');
  }
  if (r.status === 401) throw new Error('Wrong user name or password. · 用户名或密码错误');
  if (!r.ok) throw new Error(`Login failed (HTTP ${r.status}). · 登录失败`);
  const body = await r.json();
  return {token: body.access_token, role: body.role, username, ...lifetime(body)};
}

function lifetime(body) {
  return {expiresAt: Date.now() + (body.expires_in ?? 1800) * 1000};
}

/**
 * Swap the token for a fresh one before it expires (a teller's shift outlasts one token), for
 * as long as the page is open. onToken(login) gets each refreshed login; returns a stop function.
 */
export function keepLoginFresh(page, current, onToken) {
  let timer = null;
  const schedule = () => {
    const left = current.expiresAt ? current.expiresAt - Date.now() : 30 * 60 * 1000;
    timer = setTimeout(refresh, Math.max(10000, left * 0.6));
  };
  const refresh = async () => {
    try {
      const r = await fetch(`${API}/auth/refresh`, {
        method: 'POST', headers: {Authorization: `Bearer ${current.token}`},
      });
      if (!r.ok) return; // expired already: the next API call or reconnect asks to log in
      const body = await r.json();
      current = {...current, token: body.access_token, ...lifetime(body)};
      saveLogin(page, current);
      onToken(current);
      schedule();
    } catch {
      timer = setTimeout(refresh, 30000); // offline for now; try again
    }
  };
  schedule();
  return () => clearTimeout(timer);
}

/** GET an API path with the bearer token; throws AuthError on 401. */
export async function apiGet(path, token) {
  const r = await fetch(`${API}${path}`, {headers: {Authorization: `Bearer ${token}`}});
  if (r.status === 401) throw new AuthError('Your login has expired. · 登录已过期');
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);

/** Build an element: h('li', {class: 'x'}, 'text', child). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v == null) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  el.append(...children.filter((c) => c != null));
  return el;
}

/** The languages a customer can be served in, as tellers and auditors read them. */
export const LANGUAGE_NAMES = {en: 'English · 英语', zh: 'Chinese · 中文'};

export function formatWait(seconds) {
  if (seconds == null || Number.isNaN(seconds)) return '–';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
}

/** The page's message area: errors and notices the user should read. */
export class MessageArea {
  constructor(root) {
    this.root = root; // a container with aria-live, shared by both kinds of message
  }

  /** Show a message; `action` ({label, run}) adds a button that runs it and dismisses it. */
  show(text, kind = 'notice', action = null) {
    const item = h('div', {class: `message ${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-kind': kind},
      h('span', {}, text),
      action && h('button', {type: 'button', class: 'small', onclick: () => {
        item.remove();
        action.run();
      }}, action.label),
      h('button', {class: 'close', type: 'button', 'aria-label': 'Dismiss · 关闭',
        onclick: () => item.remove()}, '×'));
    this.root.append(item);
    while (this.root.children.length > 5) this.root.firstElementChild.remove();
  }

  clear() {
    this.root.replaceChildren();
  }
}

const REPLACED = 'You signed in from another window, so this one is paused. · 您已在其他窗口登录';
const CONTINUE_HERE = 'Continue here · 在此继续';
const EXPIRED = 'Your login has expired; please log in again. · 登录已过期，请重新登录';

/** Human text for a server error message; known codes get a friendlier sentence. */
function errorText(msg) {
  const known = {
    queue_empty: 'Nobody is waiting in your queues. · 当前无人排队',
    busy: 'You are already in a call. · 您正在通话中',
    unknown_service: 'That service is not offered. · 不提供该业务',
    not_in_session: 'There is no call to act on. · 当前没有通话',
    media_error: 'The video connection failed. · 视频连接失败',
  };
  return known[msg.code] ?? `${msg.message || msg.code || 'Error'}${msg.code ? ` (${msg.code})` : ''}`;
}

/**
 * Wire the login form: on success saves the login and calls onLoggedIn(login). `role` is the
 * role this page is for; another role is refused with a pointer to the right page.
 */
function setupLoginForm({page, role, onLoggedIn}) {
  const form = $('#login-form');
  const error = $('#login-error');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    const submit = form.querySelector('[type=submit]');
    submit.disabled = true;
    try {
      const result = await login(form.elements.username.value.trim(), form.elements.password.value);
      if (result.role !== role) {
        const where = PAGES[result.role];
        error.textContent = where
          ? `This page is for ${role}s; please use ${where}. · 请使用 ${where}`
          : `This page is for ${role}s. · 本页面仅供${ROLE_NAMES_ZH[role] ?? role}使用`;
        return;
      }
      saveLogin(page, result);
      form.reset();
      onLoggedIn(result);
    } catch (e) {
      error.textContent = e.message;
    } finally {
      submit.disabled = false;
    }
  });
}

/**
 * The page's signaling channel for `login`, started: the banner shows while it is down, a
 * sign-in elsewhere pauses it with a button to continue here, an expired token calls
 * onAuthFailed().
 */
function openSignal({login, messages, onMessage, onAuthFailed}) {
  const signal = new Signal({
    token: login.token,
    onMessage,
    onLink: (state) => { $('#link-banner').hidden = state !== 'offline'; },
    onAuthFailed,
    onReplaced: () => messages.show(REPLACED, 'notice', {label: CONTINUE_HERE, run: () => signal.start()}),
  });
  signal.start();
  return signal;
}

/**
 * The sign-in of the page for `role`, from the login form (or the login saved in this tab, kept
 * under the role's name) to logging out. For each login: the name in the header, the signaling
 * channel, the token kept fresh, and back to the login form when the server refuses the token or
 * the user logs out.
 *
 * Every signaling message is recorded on window.vbank, a `welcome` updates the name shown, server
 * notices and errors go to the message area; then onMessage(msg) has it. onSignedIn(login) shows
 * the page's signed-in view. onSignedOut() takes the page back to its login view; the channel is
 * still open then, for a last message.
 *
 * Returns {send(msg), token, logout(reason), resume()}: send is false when nothing was sent (not
 * signed in, or the connection is down); resume() signs in with the login saved in this tab and
 * says whether there was one.
 */
export function setupSignIn({role, messages, onMessage, onSignedIn, onSignedOut}) {
  const page = role;
  let current = null; // {token, role, username, expiresAt}
  let signal = null;
  let stopRefresh = () => {}; // stops the token refresh timer

  const received = (msg) => {
    recordMessage(msg);
    if (msg.type === 'welcome') {
      const name = msg.user?.display_name ?? msg.user?.name;
      if (name) $('#who-name').textContent = name;
    }
    if (msg.type === 'notice') messages.show(msg.message, 'notice');
    if (msg.type === 'error') messages.show(errorText(msg), 'error');
    onMessage(msg);
  };

  function start(saved) {
    current = saved;
    $('#who-name').textContent = current.username;
    signal = openSignal({login: current, messages, onMessage: received, onAuthFailed: () => logout(EXPIRED)});
    stopRefresh = keepLoginFresh(page, current, (fresh) => {
      current = fresh;
      signal.token = fresh.token;
    });
    onSignedIn(current);
  }

  function logout(reason) {
    if (!reason && current) signOut(current.token); // the user's own logout, not a refusal
    onSignedOut();
    signal?.stop();
    signal = null;
    stopRefresh();
    clearLogin(page);
    current = null;
    hooks.state = 'login';
    hooks.sessionId = null;
    messages.clear();
    if (reason) messages.show(reason, 'error');
  }

  setupLoginForm({
    page,
    role,
    onLoggedIn: (result) => {
      messages.clear();
      start(result);
    },
  });
  $('#logout').addEventListener('click', () => logout());

  return {
    send: (msg) => signal?.send(msg) ?? false,
    get token() { return current?.token ?? null; },
    logout,
    resume() {
      const saved = loadLogin(page);
      if (saved) start(saved);
      return !!saved;
    },
  };
}
