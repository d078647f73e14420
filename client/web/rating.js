// Rating a finished call (评价, #rating on /, under the receipt once a call with a teller or
// the digital assistant has ended): one to five stars (radio buttons, so arrow keys move
// between them), an optional comment, Send. A call is rated once: the server's answer replaces
// the form with a thank-you and the points the rating earned, or with its reason (a call rated
// already). A network error keeps the form: sending the same rating again is safe (the server
// answers a repeat with 0 points and changes nothing).

import {$, AuthError} from './common.js';
import {detailOf} from './mall.js';
import {formatPoints} from './points.js';

const STARS = {1: 'Poor · 很差', 2: 'Fair · 较差', 3: 'Good · 一般', 4: 'Very good · 满意', 5: 'Excellent · 非常满意'};
const UNREACHABLE = 'Could not reach the branch. Please send it again. · 网络异常，请重新提交';

export class CallRating {
  /**
   * request(method, path, {body}) asks the server ({ok, status, data}; throws AuthError when
   * the login is refused); signedOut(reason) logs the page out.
   */
  constructor({request, signedOut}) {
    this.request = request;
    this.signedOut = signedOut;
    this.sessionId = null; // the ended call on offer
    this.answers = new Map(); // session id → the line that replaced its form (rated or refused)
    this.sending = false;
    this.form = $('#rating-form');
    this.stars = [...this.form.querySelectorAll('input[name=stars]')];
    this.form.addEventListener('change', () => this.showStars());
    this.form.addEventListener('submit', (ev) => this.send(ev));
    const row = $('#rating-stars');
    // Hovering a star shows what choosing it would give; leaving shows the choice again.
    row.addEventListener('mouseover', (ev) => {
      this.showStars(Number(ev.target.closest('label')?.dataset.n) || null);
    });
    row.addEventListener('mouseleave', () => this.showStars());
  }

  get chosen() {
    return Number(this.stars.find((s) => s.checked)?.value) || null;
  }

  /** A call of this session just ended: ask for a rating (once per session). */
  offer(sessionId) {
    this.sessionId = sessionId;
    this.form.reset();
    $('#rating-error').textContent = '';
    const answer = this.answers.get(sessionId);
    this.form.hidden = !!answer;
    this.showAnswer(answer);
    this.showStars();
    $('#rating').hidden = !sessionId;
  }

  /** A new visit, or logged out: no rating on screen. */
  withdraw() {
    this.sessionId = null;
    $('#rating').hidden = true;
  }

  /** Light the stars up to `n` (the one hovered), or up to the one chosen. */
  showStars(n = null) {
    const upTo = n ?? this.chosen ?? 0;
    for (const label of document.querySelectorAll('#rating-stars label')) {
      label.classList.toggle('lit', Number(label.dataset.n) <= upTo);
    }
    $('#rating-word').textContent = STARS[upTo] ?? '';
    $('#rating-send').disabled = !this.chosen || this.sending;
  }

  showAnswer(answer) {
    const done = $('#rating-done');
    done.hidden = !answer;
    done.textContent = answer?.text ?? '';
    done.dataset.outcome = answer?.outcome ?? '';
  }

  async send(ev) {
    ev.preventDefault();
    const sessionId = this.sessionId;
    const stars = this.chosen;
    if (!sessionId || !stars || this.sending) return;
    this.sending = true;
    $('#rating-error').textContent = '';
    $('#rating-send').textContent = 'Sending… · 正在提交';
    this.showStars();
    let r;
    try {
      r = await this.request('POST', `/sessions/${encodeURIComponent(sessionId)}/rating`,
        {body: {stars, comment: $('#rating-comment').value.trim()}});
    } catch (e) {
      r = null;
      if (e instanceof AuthError) this.signedOut(e.message);
    } finally {
      this.sending = false;
      $('#rating-send').textContent = 'Send · 提交';
    }
    if (sessionId !== this.sessionId) return; // another visit is on screen now
    if (r && (r.ok || r.status === 409 || r.status === 404)) {
      // Rated, now or before: the form does not come back for this call.
      const answer = r.ok ? thanks(r.data) : {outcome: 'refused', text: `Not sent · 未提交: ${detailOf(r)}`};
      this.answers.set(sessionId, answer);
      this.form.hidden = true;
      this.showAnswer(answer);
      $('#rating-done').focus(); // the form (and the focused Send button) just went away
      return;
    }
    $('#rating-error').textContent = r ? `Not sent · 未提交: ${detailOf(r)}` : UNREACHABLE;
    this.showStars();
  }
}

function thanks(rating) {
  const points = rating.points_earned > 0 ? ` (+${formatPoints(rating.points_earned)} points)` : '';
  return {outcome: 'rated', text: `Thank you · 感谢评价${points}`};
}
