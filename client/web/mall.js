// The points mall on / (积分商城, #view-mall): the customer's points, the catalogue as cards
// (price for their tier, stock, limit, tier, flash-sale window), redeeming with a confirmation,
// their orders (cancel gives the points back), the points history and the campaigns
// (campaigns.js). `points_earned`, `redeemed` and `order_cancelled` messages update the balance
// wherever the customer is, with a short notice when another window did it.
//
// What the customer confirms in the dialog (a redemption, a cancel, a lucky draw) is one
// request; one that spends carries an Idempotency-Key made when the customer asks for it and
// kept while the same confirmation is retried (a network error, a busy branch), so a retry
// never spends twice; a new click on Redeem or Draw is a new request and gets a new key.
// window.vbank.points is the last GET /points (its balance kept current).

import {$, AuthError, h, hooks} from './common.js';
import {Notices, TIERS, earnedText, formatPoints, historyEntry, renderPoints, tierAllows,
  when} from './points.js';
import {Campaigns} from './campaigns.js';

const API = '/api/v1';
const REFRESH_MS = 15000; // stock, prize pools and sale windows change without telling us
const BUSY_TRIES = 3; // attempts while the branch answers 503 (it says when to retry)
const MAX_QUANTITY = 100; // the API's limit per redemption
const EXPIRED = 'Your login has expired. · 登录已过期';
const UNREACHABLE = 'Could not reach the branch. Try again: you will not be charged twice. · '
  + '网络异常，请重试（不会重复扣分）';
const BUSY = 'The branch is busy. Try again: you will not be charged twice. · 系统繁忙，请重试（不会重复扣分）';

/** Why an item cannot be redeemed now, or that it can: the card's data-state. */
const CLOSED = {
  sold_out: {button: 'Sold out · 已兑完', badge: 'Sold out · 已兑完'},
  not_yet: {button: 'Not yet on sale · 即将开售', badge: 'Coming soon · 即将开售'},
  ended: {button: 'Sale ended · 已结束', badge: 'Sale ended · 已结束'},
  limit: {button: 'Limit reached · 已达上限', badge: null},
};

/** One per request the customer means (the header's characters: printable ASCII). */
function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // Pages served over plain http to another host are not a secure context: no randomUUID.
  return Array.from(crypto.getRandomValues(new Uint8Array(16)),
    (b) => b.toString(16).padStart(2, '0')).join('');
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/** The server's words for a refusal ({detail}: a sentence, or a validation list). */
export function detailOf(r) {
  const d = r.data?.detail;
  if (typeof d === 'string') return d;
  if (Array.isArray(d)) return d.map((e) => e.msg ?? JSON.stringify(e)).join('; ');
  return `HTTP ${r.status}`;
}

export class PointsMall {
  /** token() is the bearer token; signedOut(reason) logs the page out when it is refused. */
  constructor({token, signedOut}) {
    this.token = token;
    this.signedOut = signedOut;
    this.notices = new Notices($('#toasts'));
    this.items = []; // GET /mall/items, in the order shown
    this.orders = []; // GET /mall/redemptions, newest first
    this.transactions = []; // GET /points/transactions, newest first
    this.mine = new Set(); // ids of orders this page placed (their `redeemed` is no news)
    this.cancelledHere = new Set(); // ids of orders this page cancelled (their `order_cancelled` too)
    this.asking = null; // the confirmation on screen: see ask()
    this.busy = false; // the confirmed request is on its way
    this.timer = null;
    this.campaigns = new Campaigns(this);
    hooks.points = null;
    this.dialog = $('#mall-confirm');
    $('#confirm-yes').addEventListener('click', (ev) => {
      // The second click of a double-click (on Redeem, landing here as the dialog opens, or
      // on this button itself) is not a confirmation.
      if (ev.detail > 1) return;
      this.confirm();
    });
    $('#confirm-no').addEventListener('click', () => this.dialog.close());
    this.dialog.addEventListener('cancel', (ev) => { if (this.busy) ev.preventDefault(); });
    this.dialog.addEventListener('close', () => { this.asking = null; });
  }

  get visible() {
    return !$('#view-mall').hidden;
  }

  /** The mall is on screen: load everything, and keep stock and windows fresh. */
  open() {
    this.refresh();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.visible && this.refresh(['points', 'items', 'campaigns']),
      REFRESH_MS);
  }

  /** The mall is left (or a call starts): no more refreshing, no confirmation left open. */
  close() {
    clearInterval(this.timer);
    this.timer = null;
    if (this.dialog.open && !this.busy) this.dialog.close();
  }

  /** Logged out: nothing of this customer stays. */
  forget() {
    this.close();
    this.items = [];
    this.orders = [];
    this.transactions = [];
    this.mine.clear();
    this.cancelledHere.clear();
    this.campaigns.forget();
    hooks.points = null;
    $('#lobby-points').hidden = true;
  }

  // ---- the server ----------------------------------------------------------------------

  async call(method, path, {body, key} = {}) {
    const headers = {Authorization: `Bearer ${this.token()}`};
    if (body) headers['Content-Type'] = 'application/json';
    if (key) headers['Idempotency-Key'] = key;
    const r = await fetch(`${API}${path}`, {method, headers, body: body && JSON.stringify(body)});
    if (r.status === 401) throw new AuthError(EXPIRED);
    let data = null;
    try {
      data = await r.json();
    } catch {
      // a proxy's error page: the status says enough
    }
    return {ok: r.ok, status: r.status, data, retryAfter: Number(r.headers.get('Retry-After')) || 1};
  }

  async get(path) {
    const r = await this.call('GET', path);
    if (!r.ok) throw new Error(`${path}: ${detailOf(r)}`);
    return r.data;
  }

  /** Load the parts named (all by default) and show them. */
  async refresh(parts = ['points', 'items', 'orders', 'history', 'campaigns', 'draws']) {
    const token = this.token();
    if (!token) return;
    const paths = {points: '/points', items: '/mall/items', orders: '/mall/redemptions',
      history: '/points/transactions', campaigns: '/campaigns', draws: '/lotteries/draws'};
    const results = await Promise.allSettled(parts.map((part) => this.get(paths[part])));
    if (this.token() !== token) return; // logged out (or in again) meanwhile: not for this login
    results.forEach((result, i) => {
      if (result.status === 'fulfilled') this.take(parts[i], result.value);
      else if (result.reason instanceof AuthError) this.signedOut(result.reason.message);
      else console.warn('mall', result.reason);
    });
    if (this.visible) this.render(parts);
  }

  take(part, value) {
    if (part === 'points') {
      hooks.points = value;
      renderPoints(value);
    } else if (part === 'items') {
      // Flash sales first, then the cheapest: what a customer looks for first.
      this.items = [...value].sort((a, b) => (b.flash - a.flash) || (a.points - b.points));
    } else if (part === 'orders') {
      this.orders = value;
    } else if (part === 'campaigns' || part === 'draws') {
      this.campaigns.take(part, value);
    } else {
      this.transactions = value;
    }
  }

  /** The balance changed (a redemption, a refund, points earned). */
  setBalance(balance) {
    if (hooks.points == null || balance == null) return;
    hooks.points = {...hooks.points, balance};
    renderPoints(hooks.points);
    if (this.visible) this.render(['points']); // what the customer can afford changed
  }

  /** Signaling messages about points; the rest are not the mall's. */
  handle(msg) {
    if (msg.type === 'points_earned') {
      this.notices.show(earnedText(msg));
      this.setBalance(msg.balance);
      // Growth and tier too; and a step of a task chain may be done.
      this.refresh(this.visible ? ['points', 'history', 'campaigns'] : ['points']);
    } else if (msg.type === 'redeemed') {
      this.setBalance(msg.balance);
      // Ours arrives about when the answer to our request does; another window's is news.
      if (this.mine.has(msg.order_id) || this.busy) return;
      this.notices.show(`${this.itemName(msg.item_id)} ×${msg.quantity} redeemed in another window · `
        + '已在其他窗口兑换');
      if (this.visible) this.refresh();
    } else if (msg.type === 'order_cancelled') {
      this.setBalance(msg.balance);
      if (this.cancelledHere.has(msg.order_id) || this.busy) return;
      this.notices.show(`${this.itemName(msg.item_id)}: order cancelled in another window, `
        + `${formatPoints(msg.points)} points back · 已在其他窗口取消订单，积分已退还`);
      if (this.visible) this.refresh();
    }
  }

  // ---- rendering ----------------------------------------------------------------------

  itemName(id) {
    const item = this.items.find((i) => i.id === id);
    return item ? `${item.name.en} · ${item.name.zh}` : id;
  }

  /** The card's state: sold_out, not_yet, ended, limit (closed), or tier, short, on_sale. */
  stateOf(item) {
    const p = hooks.points;
    const now = Date.now();
    const opens = item.opens_at ?? item.starts_at; // a flash sale opens early for higher tiers
    if (item.stock <= 0) return 'sold_out';
    if (opens && now < Date.parse(opens)) return 'not_yet';
    if (item.ends_at && now >= Date.parse(item.ends_at)) return 'ended';
    if (item.per_customer_limit != null && (item.bought ?? 0) >= item.per_customer_limit) return 'limit';
    if (p && !tierAllows(p.tier, item.tier)) return 'tier';
    if (p && (item.price ?? item.points) > p.balance) return 'short';
    return 'on_sale';
  }

  render(parts) {
    if (parts.includes('items') || parts.includes('orders') || parts.includes('points')) this.renderCatalogue();
    if (parts.includes('orders') || parts.includes('items')) this.renderOrders();
    if (parts.includes('history') || parts.includes('orders')) this.renderHistory();
    this.campaigns.render(parts);
  }

  renderCatalogue() {
    const root = $('#catalogue');
    // Keep what the customer typed and where they were while the cards are rebuilt.
    const typed = new Map([...root.querySelectorAll('input[data-item]')].map((i) => [i.dataset.item, i.value]));
    const focused = document.activeElement?.closest('#catalogue') && document.activeElement.id;
    root.replaceChildren(...this.items.map((item) => this.itemCard(item, typed.get(item.id))));
    root.removeAttribute('aria-busy');
    $('#catalogue-none').hidden = this.items.length > 0;
    $('#catalogue-none').textContent = 'Nothing to redeem right now. · 暂无可兑换商品';
    if (focused) document.getElementById(focused)?.focus();
  }

  itemCard(item, typed) {
    const state = this.stateOf(item);
    const closed = CLOSED[state];
    const price = item.price ?? item.points;
    const bought = item.bought ?? 0;
    const left = item.per_customer_limit == null ? MAX_QUANTITY : item.per_customer_limit - bought;
    const most = Math.max(1, Math.min(MAX_QUANTITY, item.stock, left));
    const noteId = `note-${item.id}`;
    return h('li', {class: 'item-card', 'data-state': state, 'data-testid': `item-${item.id}`},
      h('div', {class: 'picture'},
        item.image_url ? h('img', {src: item.image_url, alt: '', loading: 'lazy'}) : null,
        h('div', {class: 'badges'},
          item.flash ? h('span', {class: 'badge flash'}, '⚡ Flash sale · 秒杀') : null,
          item.tier !== 'standard'
            ? h('span', {class: 'badge tier', 'data-tier': item.tier},
              `${TIERS[item.tier]?.en ?? item.tier}+ · ${TIERS[item.tier]?.zh ?? ''}及以上`) : null),
        closed?.badge ? h('span', {class: 'ribbon'}, closed.badge) : null),
      h('div', {class: 'body'},
        h('h3', {class: 'name'}, item.name.en, h('span', {class: 'zh'}, item.name.zh)),
        item.description?.en ? h('p', {class: 'desc'}, item.description.en,
          h('span', {class: 'zh'}, ` ${item.description.zh ?? ''}`)) : null,
        h('p', {class: 'price', 'data-testid': `price-${item.id}`},
          h('strong', {}, formatPoints(price)), h('span', {class: 'unit'}, ' points · 积分'),
          price < item.points ? h('del', {'aria-label': `list price ${item.points} points`},
            formatPoints(item.points)) : null),
        h('p', {class: 'meta'},
          h('span', {'data-testid': `stock-${item.id}`, 'data-stock': item.stock,
            class: item.stock > 0 && item.stock <= 5 ? 'low' : null},
          item.stock > 0 ? `${formatPoints(item.stock)} left · 剩余 ${formatPoints(item.stock)}` : 'None left · 已兑完'),
          item.per_customer_limit != null
            ? h('span', {'data-testid': `limit-${item.id}`},
              `Limit ${item.per_customer_limit} each · 每人限 ${item.per_customer_limit}`
              + (bought ? ` (you have ${bought} · 已兑 ${bought})` : ''))
            : null),
        this.windowLine(item, state),
        h('p', {class: 'item-note', id: noteId}, this.noteFor(item, state)),
        h('div', {class: 'redeem-row'},
          h('label', {for: `qty-${item.id}`, class: 'sr-only'}, `Quantity of ${item.name.en} · 数量`),
          h('span', {class: 'times', 'aria-hidden': 'true'}, '×'),
          h('input', {type: 'number', id: `qty-${item.id}`, 'data-item': item.id, 'data-testid': `qty-${item.id}`,
            min: 1, max: most, value: typed ?? 1, inputmode: 'numeric', disabled: !!closed}),
          h('button', {type: 'button', class: 'primary', id: `redeem-${item.id}`, 'data-testid': `redeem-${item.id}`,
            disabled: !!closed, 'aria-describedby': noteId,
            onclick: () => this.askRedeem(item.id)},
          closed ? closed.button : 'Redeem · 兑换'))));
  }

  /** The sale window of a flash sale (or of an item on sale for a while only). */
  windowLine(item, state) {
    if (!item.starts_at && !item.ends_at) return null;
    const opens = item.opens_at ?? item.starts_at;
    const early = opens && item.starts_at // minutes early for this customer's tier
      ? Math.round((Date.parse(item.starts_at) - Date.parse(opens)) / 60000) : 0;
    let text;
    if (state === 'not_yet') {
      text = `On sale from · 开售 ${when(opens)}${early ? ` (${early} min early for you · 提前${early}分钟)` : ''}`;
    } else if (state === 'ended') {
      text = `Ended · 已结束 ${when(item.ends_at)}`;
    } else if (item.ends_at) {
      text = `On sale until · 截止 ${when(item.ends_at)}`;
    } else {
      text = `On sale since · 开售 ${when(item.starts_at)}`;
    }
    return h('p', {class: 'window', 'data-testid': `window-${item.id}`}, text);
  }

  noteFor(item, state) {
    const p = hooks.points;
    if (state === 'short') {
      const more = formatPoints((item.price ?? item.points) - p.balance);
      return `You need ${more} more points · 还差 ${more} 积分`;
    }
    if (state === 'tier') {
      const t = TIERS[item.tier];
      return `For ${t?.en ?? item.tier} customers and above · ${t?.zh ?? item.tier}及以上客户专享`;
    }
    if (state === 'limit') return 'You have redeemed as many as allowed. · 已达每人兑换上限';
    return '';
  }

  renderOrders() {
    const byId = new Map(this.items.map((i) => [i.id, i]));
    $('#orders').replaceChildren(...this.orders.map((o) => {
      const item = byId.get(o.item_id);
      return h('li', {'data-status': o.status, 'data-testid': `order-${o.id}`, 'data-item': o.item_id},
        item?.image_url ? h('img', {src: item.image_url, alt: ''}) : h('span', {class: 'thumb'}),
        h('div', {class: 'what'},
          h('span', {class: 'name'}, `${this.itemName(o.item_id)} ×${o.quantity}`),
          h('span', {class: 'meta'}, `${formatPoints(o.points)} points · 积分 · ${when(o.created_at)}`),
          h('div', {class: 'foot'},
            h('span', {class: 'reference', title: 'Order number · 订单号'}, o.id),
            o.status === 'placed'
              ? h('button', {type: 'button', class: 'small', 'data-testid': `cancel-${o.id}`,
                'aria-label': `Cancel the order of ${this.itemName(o.item_id)} · 取消订单`,
                onclick: () => this.askCancel(o.id)}, 'Cancel · 取消')
              : h('span', {class: 'status'}, o.status === 'cancelled' ? 'Cancelled · 已取消' : o.status))));
    }));
    $('#orders-none').hidden = this.orders.length > 0;
  }

  renderHistory() {
    const orders = new Map(this.orders.map((o) => [o.id, o]));
    $('#history').replaceChildren(...this.transactions.map((tx) =>
      historyEntry(tx, orders, (id) => this.itemName(id))));
    $('#history-none').hidden = this.transactions.length > 0;
  }

  // ---- confirming and asking the server -------------------------------------------------

  askRedeem(itemId) {
    if (this.dialog.open) return;
    const item = this.items.find((i) => i.id === itemId);
    if (!item) return;
    const input = $(`#qty-${CSS.escape(itemId)}`);
    const quantity = Math.min(Math.max(1, Math.floor(Number(input?.value) || 1)), Number(input?.max) || MAX_QUANTITY);
    if (input) input.value = String(quantity);
    const cost = (item.price ?? item.points) * quantity;
    const after = (hooks.points?.balance ?? 0) - cost;
    const name = `${item.name.en} · ${item.name.zh}`;
    this.ask({
      kind: 'redeem', path: '/mall/redemptions', body: {item_id: item.id, quantity}, spends: true,
      working: 'Redeeming… · 正在兑换', refused: 'Not redeemed · 兑换未成功',
      done: (result) => this.redeemed(result),
    }, {
      title: 'Redeem? · 确认兑换',
      picture: item.image_url,
      text: `${quantity} × ${name} for ${formatPoints(cost)} points. `
        + (after >= 0 ? `You will have ${formatPoints(after)} points left. · 兑换后剩余 ${formatPoints(after)} 积分`
          : `That is more than your ${formatPoints(hooks.points?.balance)} points. · 超出您的可用积分`),
      yes: 'Redeem · 确认兑换',
      no: 'Cancel · 取消',
    });
  }

  askCancel(orderId) {
    if (this.dialog.open) return;
    const order = this.orders.find((o) => o.id === orderId);
    if (!order) return;
    const item = this.items.find((i) => i.id === order.item_id);
    this.ask({
      kind: 'cancel', path: `/mall/redemptions/${encodeURIComponent(order.id)}/cancel`,
      working: 'Cancelling… · 正在取消', refused: 'Not cancelled · 取消未成功',
      done: (result) => this.cancelled(result),
    }, {
      title: 'Cancel this order? · 取消订单',
      picture: item?.image_url,
      text: `${this.itemName(order.item_id)} ×${order.quantity}: your ${formatPoints(order.points)} points `
        + `come back. · 退还 ${formatPoints(order.points)} 积分`,
      yes: 'Cancel the order · 取消订单',
      no: 'Keep it · 保留订单',
    });
  }

  /**
   * Ask the customer to confirm a request: `asking` is {kind (the dialog's data-kind), path,
   * body, spends (true: it gets an Idempotency-Key, kept for its retries), working (the Yes
   * button while it is on its way), refused (the heading of a refusal), done(result)}; the
   * dialog shows the words.
   */
  ask(asking, {title, picture, text, yes, no}) {
    if (this.dialog.open) return;
    this.asking = {...asking, key: asking.spends ? newKey() : null};
    this.busy = false;
    $('#confirm-title').textContent = title;
    $('#confirm-picture').hidden = !picture;
    if (picture) $('#confirm-picture').src = picture;
    $('#confirm-text').textContent = text;
    $('#confirm-error').replaceChildren();
    this.dialog.dataset.kind = asking.kind;
    this.dialog.dataset.outcome = '';
    this.setButtons({yes, no});
    this.dialog.showModal();
    $('#confirm-no').focus(); // the safe choice first
  }

  setButtons({yes, no, busy = false}) {
    const yesButton = $('#confirm-yes');
    yesButton.hidden = yes === null;
    if (yes) yesButton.textContent = yes;
    yesButton.disabled = busy;
    $('#confirm-no').textContent = no;
    $('#confirm-no').disabled = busy;
    this.asking.labels = {yes: yes ?? this.asking.labels?.yes, no};
  }

  async confirm() {
    const asking = this.asking;
    if (!asking || this.busy) return;
    this.busy = true;
    $('#confirm-error').replaceChildren();
    this.setButtons({yes: asking.working, no: asking.labels.no, busy: true});
    let r = null;
    try {
      for (let attempt = 1; ; attempt += 1) {
        r = await this.call('POST', asking.path, {body: asking.body, key: asking.key});
        if (r.status !== 503 || attempt >= BUSY_TRIES) break;
        await sleep(r.retryAfter * 1000); // the same key: safe to ask again
      }
    } catch (e) {
      this.busy = false;
      if (e instanceof AuthError) {
        this.dialog.close();
        this.signedOut(e.message);
        return;
      }
      this.failed(asking, UNREACHABLE, true);
      return;
    }
    this.busy = false;
    if (r.ok) {
      if (this.dialog.open && this.asking === asking) this.dialog.close();
      asking.done(r.data);
    } else if (r.status === 503) {
      this.failed(asking, BUSY, true);
    } else {
      this.failed(asking, detailOf(r), false);
    }
  }

  /** The server said no (or could not be reached: `retry` offers the same request again). */
  failed(asking, text, retry) {
    if (this.asking !== asking) { // closed meanwhile: say it where it can be seen
      this.notices.show(text, 'error');
      return;
    }
    $('#confirm-error').replaceChildren(h('strong', {}, asking.refused), h('span', {}, text));
    this.dialog.dataset.outcome = retry ? 'retry' : 'refused';
    this.setButtons(retry ? {yes: 'Try again · 重试', no: asking.labels.no} : {yes: null, no: 'Close · 关闭'});
    (retry ? $('#confirm-yes') : $('#confirm-no')).focus();
    // Stock, limits, draws or the balance may have moved under us: show the server's view.
    this.refresh();
  }

  redeemed(result) {
    this.mine.add(result.order_id);
    const {order} = result;
    this.notices.show(`✓ ${this.itemName(order.item_id)} ×${order.quantity} redeemed for `
      + `${formatPoints(order.points)} points · 兑换成功`);
    const item = this.items.find((i) => i.id === order.item_id);
    if (item && result.points_spent > 0) { // not a replay of one counted already
      item.stock -= order.quantity;
      item.bought = (item.bought ?? 0) + order.quantity;
    }
    if (!this.orders.some((o) => o.id === result.order_id)) this.orders = [order, ...this.orders];
    this.changed(result);
  }

  cancelled(result) {
    this.cancelledHere.add(result.order_id);
    this.notices.show(`✓ Order cancelled: ${formatPoints(result.order.points)} points are back · 订单已取消，积分已退还`);
    this.orders = this.orders.map((o) => (o.id === result.order_id ? result.order : o));
    const item = this.items.find((i) => i.id === result.order.item_id);
    if (item && result.points_spent < 0) {
      item.stock += result.order.quantity;
      item.bought = Math.max(0, (item.bought ?? 0) - result.order.quantity);
    }
    this.changed(result);
  }

  /** An order changed: show it now, then the server's view (the ledger's lines, and anyone
   * else's redemptions). */
  changed(result) {
    this.setBalance(result.balance);
    this.render(['items', 'orders']);
    this.refresh();
  }
}
