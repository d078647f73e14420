// The signaling WebSocket (/ws): authenticates with its first message, reconnects with backoff.
// The token never goes in the URL (README, "Signaling WebSocket").

const BACKOFF_S = [0.5, 1, 2, 4, 8, 15];
const POLICY_VIOLATION = 1008; // bad or expired token, or no auth in time
const SIGNED_IN_ELSEWHERE = 4001; // the same person opened another tab or device

export class Signal {
  /**
   * token: the bearer token (updated in place when refreshed); onMessage(msg) for every JSON
   * message; onLink('connecting' | 'online' | 'offline' | 'stopped') as the connection changes.
   * A 1008 close (the token is no longer good) calls onAuthFailed(); a 4001 close (the same
   * person signed in from another tab or device) calls onReplaced(): reconnecting would throw
   * that one out in turn. Either way this stops.
   */
  constructor({token, onMessage, onLink, onAuthFailed, onReplaced}) {
    this.token = token;
    this.onMessage = onMessage;
    this.onLink = onLink;
    this.onAuthFailed = onAuthFailed;
    this.onReplaced = onReplaced;
    this.ws = null;
    this.ready = false; // true between `welcome` and close: only then may messages be sent
    this.attempt = 0; // consecutive failed connections, indexes BACKOFF_S
    this.timer = null;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    this.ready = false;
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000);
  }

  /** Send a message; false (nothing sent) while the connection is down or not yet welcomed. */
  send(msg) {
    if (!this.ready || this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  connect() {
    clearTimeout(this.timer);
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    this.ws = ws;
    this.ready = false;
    this.onLink('connecting');
    ws.onopen = () => ws.send(JSON.stringify({type: 'auth', token: this.token}));
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (msg.type === 'welcome') {
        this.ready = true;
        this.attempt = 0;
        this.onLink('online');
      }
      this.onMessage(msg);
    };
    ws.onclose = (ev) => this.closed(ws, ev.code);
  }

  closed(ws, code) {
    if (ws !== this.ws || this.stopped) return;
    this.ready = false;
    if (code === POLICY_VIOLATION || code === SIGNED_IN_ELSEWHERE) {
      this.stopped = true;
      this.onLink('stopped');
      if (code === SIGNED_IN_ELSEWHERE) this.onReplaced();
      else this.onAuthFailed();
      return;
    }
    this.onLink('offline');
    const base = BACKOFF_S[Math.min(this.attempt, BACKOFF_S.length - 1)];
    this.attempt += 1;
    const jitter = 0.8 + Math.random() * 0.4; // spread reconnects after a server restart
    this.timer = setTimeout(() => this.connect(), base * jitter * 1000);
  }
}

