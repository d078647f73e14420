// Campaigns in the points mall (活动, #campaigns on /): the lucky draws — what a draw costs, the
// prizes with their chance and what is left of each, the draws left today, a Draw button with a
// confirmation and the result of the draw — the customer's draws, and the task chains as
// checklists of their steps with the progress made and the reward.
//
// A draw is confirmed in the mall's dialog (PointsMall.ask): it spends, so it carries one
// Idempotency-Key per draw the customer means, kept while that draw is retried, and a retry
// never draws or spends twice.

import {$, h, hooks} from './common.js';
import {formatPoints, taskName, when} from './points.js';

/** Why a lottery cannot be drawn now: the Draw button's words. */
const CLOSED = {
  not_yet: 'Not open yet · 尚未开始',
  ended: 'Ended · 已结束',
  used: 'No draws left today · 今日次数已用完',
  empty: 'All prizes gone · 奖品已抽完',
};

/** 0.5 → "0.5%", 15 → "15%". */
const percent = (n) => `${Number(Number(n).toFixed(3))}%`;

export class Campaigns {
  /** mall: the PointsMall this is part of (its server, confirmation dialog and balance). */
  constructor(mall) {
    this.mall = mall;
    this.lotteries = []; // GET /campaigns, with `draws_today` kept current
    this.chains = []; // the task chains of GET /campaigns, with the customer's progress
    this.draws = []; // GET /lotteries/draws, newest first
  }

  forget() {
    this.lotteries = [];
    this.chains = [];
    this.draws = [];
    const result = $('#draw-result');
    result.replaceChildren();
    result.dataset.outcome = '';
  }

  take(part, value) {
    if (part === 'campaigns') {
      this.lotteries = value.lotteries;
      this.chains = value.task_chains;
    } else {
      this.draws = value;
    }
  }

  render(parts) {
    if (parts.includes('campaigns') || parts.includes('points')) this.renderLotteries();
    if (parts.includes('campaigns')) this.renderChains();
    if (parts.includes('draws') || parts.includes('campaigns')) this.renderDraws();
  }

  lotteryName(id) {
    const lot = this.lotteries.find((l) => l.id === id);
    return lot ? `${lot.name.en} · ${lot.name.zh}` : id;
  }

  // ---- lucky draws ----------------------------------------------------------------------

  /** Draws the customer has left today (null: no daily limit). */
  static drawsLeft(lot) {
    if (lot.per_customer_per_day == null) return null;
    return Math.max(0, lot.per_customer_per_day - (lot.draws_today ?? 0));
  }

  /** The lottery's state: not_yet, ended, used, empty (closed), or short, open. */
  stateOf(lot) {
    const now = Date.now();
    if (lot.starts_at && now < Date.parse(lot.starts_at)) return 'not_yet';
    if (lot.ends_at && now >= Date.parse(lot.ends_at)) return 'ended';
    if (Campaigns.drawsLeft(lot) === 0) return 'used';
    if (lot.prizes.length && lot.prizes.every((p) => p.stock <= 0)) return 'empty';
    const balance = hooks.points?.balance;
    if (balance != null && lot.cost > balance) return 'short';
    return 'open';
  }

  renderLotteries() {
    const root = $('#lotteries');
    const focused = document.activeElement?.closest('#lotteries') && document.activeElement.id;
    root.replaceChildren(...this.lotteries.map((lot) => this.lotteryCard(lot)));
    $('#lotteries-none').hidden = this.lotteries.length > 0;
    if (focused) document.getElementById(focused)?.focus();
  }

  lotteryCard(lot) {
    const state = this.stateOf(lot);
    const left = Campaigns.drawsLeft(lot);
    // A draw landing on a prize that has run out wins nothing: its chance is nothing's.
    const nothing = 100 - lot.prizes.filter((p) => p.stock > 0).reduce((sum, p) => sum + p.chance_pct, 0);
    const noteId = `draw-note-${lot.id}`;
    return h('article', {class: 'lottery', 'data-state': state, 'data-testid': `lottery-${lot.id}`,
      'aria-labelledby': `lottery-title-${lot.id}`},
    h('header', {},
      h('h3', {id: `lottery-title-${lot.id}`}, lot.name.en, h('span', {class: 'zh'}, ` ${lot.name.zh}`)),
      h('p', {class: 'cost', 'data-testid': `draw-cost-${lot.id}`},
        h('strong', {}, formatPoints(lot.cost)), ` points a draw · 每次 ${formatPoints(lot.cost)} 积分`)),
    h('ul', {class: 'prizes', 'aria-label': 'Prizes · 奖品'}, ...lot.prizes.map((p) => this.prizeTile(lot, p))),
    h('p', {class: 'nothing'}, `No prize · 未中奖: ${percent(Math.max(0, nothing))}`),
    this.windowLine(lot),
    h('div', {class: 'draw-row'},
      h('p', {class: 'draws-left', 'data-testid': `draws-left-${lot.id}`, 'data-left': left ?? ''},
        left == null ? 'No daily limit · 不限次数' : 'Draws left today · 今日剩余 ',
        left == null ? null : h('strong', {}, `${left} / ${lot.per_customer_per_day}`)),
      h('button', {type: 'button', class: 'primary draw', id: `draw-${lot.id}`, 'data-testid': `draw-${lot.id}`,
        disabled: !!CLOSED[state], 'aria-describedby': noteId, onclick: () => this.askDraw(lot.id)},
      CLOSED[state] ?? 'Draw · 抽奖')),
    h('p', {class: 'item-note', id: noteId}, this.noteFor(lot, state)));
  }

  prizeTile(lot, p) {
    return h('li', {class: 'prize', 'data-testid': `prize-${lot.id}-${p.id}`, 'data-stock': p.stock,
      'data-gone': p.stock <= 0},
    p.image_url ? h('img', {src: p.image_url, alt: '', loading: 'lazy'})
      : h('span', {class: 'coin', 'aria-hidden': 'true'}, `+${formatPoints(p.points)}`),
    h('span', {class: 'name'}, p.name.en, h('span', {class: 'zh'}, p.name.zh)),
    h('span', {class: 'chance'}, h('strong', {}, percent(p.chance_pct)), ' chance · 中奖率'),
    h('span', {class: 'left'}, p.stock > 0 ? `${formatPoints(p.stock)} left · 剩余` : 'None left · 已抽完'));
  }

  windowLine(lot) {
    if (!lot.starts_at && !lot.ends_at) return null;
    let text = `Until · 截止 ${when(lot.ends_at)}`;
    if (lot.starts_at && Date.now() < Date.parse(lot.starts_at)) text = `Opens · 开始 ${when(lot.starts_at)}`;
    else if (!lot.ends_at) text = `Since · 开始 ${when(lot.starts_at)}`;
    return h('p', {class: 'window'}, text);
  }

  noteFor(lot, state) {
    if (state === 'short') {
      const more = formatPoints(lot.cost - hooks.points.balance);
      return `You need ${more} more points · 还差 ${more} 积分`;
    }
    if (state === 'used') return 'Come back tomorrow for more draws. · 明日可再抽';
    return '';
  }

  askDraw(lotteryId) {
    const lot = this.lotteries.find((l) => l.id === lotteryId);
    if (!lot) return;
    const balance = hooks.points?.balance ?? 0;
    const after = balance - lot.cost;
    const left = Campaigns.drawsLeft(lot);
    this.mall.ask({
      kind: 'draw', path: `/lotteries/${encodeURIComponent(lot.id)}/draws`, spends: true,
      working: 'Drawing… · 正在抽奖', refused: 'Not drawn · 抽奖未成功',
      done: (result) => this.drawn(result),
    }, {
      title: `${lot.name.en}? · 确认抽奖`,
      text: `One draw for ${formatPoints(lot.cost)} points. ${after < 0
        ? `That is more than your ${formatPoints(balance)} points. · 超出您的可用积分`
        : `You will have ${formatPoints(after)} points left${left == null ? ''
          : `, and ${left - 1} ${left - 1 === 1 ? 'draw' : 'draws'} left today`}. `
          + `· 抽奖一次消耗 ${formatPoints(lot.cost)} 积分，抽后剩余 ${formatPoints(after)} 积分`}`,
      yes: 'Draw · 抽奖',
      no: 'Cancel · 取消',
    });
  }

  /** A draw was made (or, retried, given back): show what it won. */
  drawn(result) {
    const lot = this.lotteries.find((l) => l.id === result.lottery_id);
    if (!this.draws.some((d) => d.draw_id === result.draw_id)) { // not counted yet
      if (lot) lot.draws_today = (lot.draws_today ?? 0) + 1;
      this.draws = [{...result, points_spent: lot?.cost ?? result.points_spent}, ...this.draws];
    }
    const prize = lot?.prizes.find((p) => p.id === result.prize?.id);
    if (prize) prize.stock = result.prize.stock;
    this.showResult(result);
    this.mall.setBalance(result.balance);
    this.render(['campaigns', 'draws']);
    this.mall.refresh(['points', 'history', 'campaigns', 'draws']);
  }

  /** The result of the last draw, in #draw-result (a status region: it is read out). */
  showResult(result) {
    const box = $('#draw-result');
    const {prize} = result;
    box.dataset.outcome = prize ? 'won' : 'none';
    box.dataset.prize = prize?.id ?? '';
    box.dataset.draw = result.draw_id;
    const spent = this.lotteries.find((l) => l.id === result.lottery_id)?.cost ?? result.points_spent;
    const won = prize?.points ? `, +${formatPoints(prize.points)} won` : '';
    box.replaceChildren(
      prize?.image_url ? h('img', {src: prize.image_url, alt: ''})
        : h('span', {class: 'result-icon', 'aria-hidden': 'true'}, prize ? '★' : '☆'),
      h('div', {},
        h('p', {class: 'headline', 'data-testid': 'draw-headline'}, prize
          ? `You won: ${prize.name.en} · 恭喜您抽中：${prize.name.zh}`
          : 'No prize this time · 很遗憾，未中奖'),
        h('p', {class: 'detail'}, `${this.lotteryName(result.lottery_id)}: −${formatPoints(spent)} points${won}; `
          + `${formatPoints(result.balance)} points after this draw · 抽奖后积分 ${formatPoints(result.balance)}`)));
    box.scrollIntoView({block: 'nearest'});
  }

  renderDraws() {
    $('#my-draws').replaceChildren(...this.draws.map((d) => h('li', {'data-testid': `my-draw-${d.draw_id}`,
      'data-prize': d.prize?.id ?? 'none'},
    h('span', {class: 'what'}, d.prize ? `Won · 抽中: ${d.prize.name.en} · ${d.prize.name.zh}` : 'No prize · 未中奖'),
    h('span', {class: 'amount', 'data-sign': '−'}, `−${formatPoints(d.points_spent)}`),
    h('time', {class: 'when', datetime: d.at}, `${when(d.at)}`),
    this.lotteries.length > 1 ? h('span', {class: 'expires'}, this.lotteryName(d.lottery_id)) : null)));
    $('#draws-none').hidden = this.draws.length > 0;
  }

  // ---- task chains ----------------------------------------------------------------------

  renderChains() {
    $('#task-chains').replaceChildren(...this.chains.map((chain) => this.chainCard(chain)));
    $('#chains-none').hidden = this.chains.length > 0;
  }

  chainCard(chain) {
    const done = chain.done ?? 0;
    const total = chain.steps.length;
    const progressId = `chain-progress-${chain.id}`;
    return h('li', {class: 'chain', 'data-testid': `chain-${chain.id}`, 'data-done': done,
      'data-completed': String(!!chain.completed)},
    h('h4', {}, chain.name.en, h('span', {class: 'zh'}, chain.name.zh)),
    h('p', {class: 'reward', 'data-testid': `chain-reward-${chain.id}`}, chain.completed
      ? `✓ Completed: ${formatPoints(chain.points)} points earned · 已完成，获得 ${formatPoints(chain.points)} 积分`
      : `Reward: +${formatPoints(chain.points)} points · 奖励 ${formatPoints(chain.points)} 积分`),
    h('div', {class: 'chain-progress'},
      h('progress', {max: total, value: done, 'aria-labelledby': progressId}),
      h('span', {id: progressId, 'data-testid': progressId}, `${done} of ${total} done · 已完成 ${done}/${total}`)),
    h('ol', {class: 'checklist'}, ...chain.steps.map((step, i) => {
      const state = i < done ? 'done' : i === done ? 'next' : 'todo';
      return h('li', {'data-state': state, 'data-step': step},
        h('span', {class: 'tick', 'aria-hidden': 'true'}, state === 'done' ? '✓' : String(i + 1)),
        h('span', {}, taskName(step)),
        h('span', {class: state === 'next' ? 'next' : 'sr-only'},
          {done: ' (done · 已完成)', next: 'Next · 下一步', todo: ' (to do · 待完成)'}[state]));
    })),
    chain.ends_at ? h('p', {class: 'window'}, `Until · 截止 ${when(chain.ends_at)}`) : null);
  }
}
