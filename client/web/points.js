// A customer's points on / (积分): the names of tiers and of what earns points, the points card
// of the mall (balance, tier, growth to the next tier, the tier's discount), the lines of the
// points history, and the short notices ("+50 points for risk assessment") that say a balance
// changed, whatever view is on screen.

import {$, h} from './common.js';

const NOTICE_MS = 6000; // how long a short notice stays
const MAX_NOTICES = 3;

export const TIERS = {
  standard: {en: 'Standard', zh: '普通会员'},
  silver: {en: 'Silver', zh: '银卡'},
  gold: {en: 'Gold', zh: '金卡'},
  platinum: {en: 'Platinum', zh: '白金卡'},
};
const TIER_ORDER = ['standard', 'silver', 'gold', 'platinum'];

/** What earns points (the `event` of `points_earned`, the `reason` of an earn). */
export const EARNED = {
  contract_signed: {en: 'signing a contract', zh: '签约'},
  risk_assessed: {en: 'risk assessment', zh: '风险测评'},
  call_rated: {en: 'rating your call', zh: '评价服务'},
  lobby_visit: {en: 'visiting the branch', zh: '到访网点'},
  task_chain: {en: 'completing a task chain', zh: '完成任务'},
};

/** The same events as steps of a task chain: what the customer is asked to do. */
const TASKS = {
  lobby_visit: {en: 'Visit the lobby', zh: '到访大厅'},
  risk_assessed: {en: 'Complete a risk assessment', zh: '完成风险测评'},
  contract_signed: {en: 'Sign a contract', zh: '签署合同'},
  call_rated: {en: 'Rate a call', zh: '评价通话'},
};

/** "Visit the lobby · 到访大厅" for a step `lobby_visit` (an unknown step: its name). */
export const taskName = (step) => (TASKS[step] ? `${TASKS[step].en} · ${TASKS[step].zh}` : String(step));

export const tierName = (tier) => {
  const t = TIERS[tier];
  return t ? `${t.en} · ${t.zh}` : tier ?? '';
};

/** Whether a customer of tier `mine` may have an item for tier `needed` and above. */
export function tierAllows(mine, needed) {
  return TIER_ORDER.indexOf(mine ?? 'standard') >= TIER_ORDER.indexOf(needed ?? 'standard');
}

export const formatPoints = (n) => Number(n ?? 0).toLocaleString('en-US');

/** A moment as "Dec 31, 10:00 PM" (with the year when it is not this year's). */
export function when(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const opts = {month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit'};
  if (d.getFullYear() !== new Date().getFullYear()) opts.year = 'numeric';
  return d.toLocaleString([], opts);
}

/** "+50 points for risk assessment · 风险测评 +50 积分" for a `points_earned` message. */
export function earnedText(msg) {
  const what = EARNED[msg.event] ?? {en: String(msg.event ?? 'a reward'), zh: '奖励'};
  const n = formatPoints(msg.points);
  return `+${n} points for ${what.en} · ${what.zh} +${n} 积分`;
}

/** The tier's benefit in words. */
function benefitText(p) {
  const parts = [];
  if (p.discount_pct > 0) {
    parts.push(`${p.discount_pct}% off regular items · 常规商品${(100 - p.discount_pct) / 10}折`);
  }
  if (p.early_access_min > 0) {
    parts.push(`flash sales open ${p.early_access_min} min early for you · 秒杀提前${p.early_access_min}分钟`);
  }
  return parts.length ? parts.join('; ') : 'No tier discount yet · 暂无等级折扣';
}

/** Fill the mall's points card, and the balance on the lobby's mall button, from GET /points. */
export function renderPoints(p) {
  $('#points-balance').textContent = formatPoints(p.balance);
  const badge = $('#points-tier');
  badge.textContent = tierName(p.tier);
  badge.dataset.tier = p.tier;
  $('#points-benefit').textContent = benefitText(p);
  $('#growth-value').textContent = formatPoints(p.growth);
  const bar = $('#points-growth');
  const toNext = p.growth_to_next_tier;
  // How far the customer has come from where their tier starts to where the next one does.
  const from = p.tier_from ?? 0;
  bar.max = toNext == null ? 1 : p.growth + toNext - from;
  bar.value = toNext == null ? 1 : p.growth - from;
  $('#next-tier').textContent = p.next_tier
    ? `${formatPoints(toNext)} more growth value to ${TIERS[p.next_tier]?.en ?? p.next_tier} · `
      + `再获 ${formatPoints(toNext)} 成长值升级${TIERS[p.next_tier]?.zh ?? p.next_tier}`
    : 'You are at the top tier. · 您已是最高等级';
  const chip = $('#lobby-points');
  chip.textContent = `${formatPoints(p.balance)} points · 积分`;
  chip.hidden = false;
}

/** What a points transaction was for; `orders` maps order ids to orders, `itemName(id)` names
 * an item. */
function transactionLabel(tx, orders, itemName) {
  const [prefix, ref] = String(tx.key ?? '').split(/:(.*)/s);
  const ordered = (id) => {
    const order = orders.get(id);
    return order ? `${itemName(order.item_id)} ×${order.quantity}` : id;
  };
  if (tx.kind === 'spend' && prefix === 'order') return `Redeemed · 兑换: ${ordered(ref)}`;
  if (tx.kind === 'refund') return `Refund · 退还: ${ordered(prefix === 'refund' ? ref : tx.reason)}`;
  if (tx.kind === 'expire') return 'Points expired · 积分过期';
  if (prefix === 'draw') return 'Lucky draw · 幸运抽奖';
  if (prefix === 'prize') return 'Lucky draw prize · 抽奖奖品';
  if (prefix === 'chain') return 'Task chain reward · 任务奖励';
  if (tx.key === 'opening') return 'Opening balance · 初始积分';
  const earned = EARNED[tx.reason];
  if (earned) return `For ${earned.en} · ${earned.zh}`;
  return tx.reason || tx.kind;
}

/** One line of the points history. */
export function historyEntry(tx, orders, itemName) {
  const sign = tx.points > 0 ? '+' : tx.points < 0 ? '−' : '';
  return h('li', {'data-kind': tx.kind, 'data-testid': `tx-${tx.id}`},
    h('span', {class: 'what'}, transactionLabel(tx, orders, itemName)),
    h('span', {class: 'amount', 'data-sign': sign || '0'}, `${sign}${formatPoints(Math.abs(tx.points))}`),
    h('time', {class: 'when', datetime: tx.at}, when(tx.at)),
    tx.expires_at && tx.points > 0
      ? h('span', {class: 'expires'}, `expires ${when(tx.expires_at)} · 到期`) : null);
}

/** Short notices in a corner of the page (an aria-live region), each gone after a while. */
export class Notices {
  constructor(root) {
    this.root = root; // #toasts: role=status, aria-live=polite
  }

  show(text, kind = 'ok') {
    const item = h('div', {class: `toast ${kind}`, 'data-kind': kind}, text);
    this.root.append(item);
    while (this.root.children.length > MAX_NOTICES) this.root.firstElementChild.remove();
    setTimeout(() => item.remove(), NOTICE_MS);
  }
}
