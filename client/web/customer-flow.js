// The customer's side of the business done in a call (#business on /): it follows the server's
// `flow` messages step by step — identity (name, ID number, the card held to the camera), the
// key terms read out, spoken consent, the pushed document and a signature pad bound to its
// SHA-256, the risk questionnaire, the level and the product's suitability with an
// acknowledgement — and shows a receipt (#receipt) once the session is sealed.

import {$, apiGet, h, hooks} from './common.js';
import {FLOWS, LEVELS, STEPS, clock, documentTitle, forgetFlow, markdown, recordFlow, renderSteps,
  scriptOf, shortHash, unreadList} from './flow.js';
import {SignaturePad} from './signpad.js';

const MAX_SIGNATURE_CHARS = 48 * 1024; // the server refuses bigger signature images
const ID_NUMBER = /^\d{17}[\dX]$/;
const TEXT = {
  checking: 'Checking your ID… · 正在核验',
  waitingTeller: 'Waiting for your teller to confirm it is you. · 等待柜员确认',
  verified: 'Identity confirmed · 身份已核实',
  listening: 'Say “I confirm” if you agree. · 如同意，请说“我确认”',
  signing: 'Signing… · 正在签署',
};

/** One identity check: ✓ passed, ✗ failed, or … not known yet (ok === null). */
function check(ok, label, detail = '') {
  const state = ok === null ? 'pending' : String(!!ok);
  return h('div', {'data-ok': state}, h('dt', {}, label),
    h('dd', {}, {true: '✓ ', false: '✗ ', pending: '… '}[state], detail));
}

export class CustomerBusiness {
  /**
   * send(msg) sends on the signaling channel (false when down); messages is the page's
   * MessageArea; token() the bearer token, to read the names of products.
   */
  constructor({send, messages, token}) {
    this.send = send;
    this.messages = messages;
    this.token = token;
    this.products = null; // product id → {name: {en, zh}, risk}, once asked for
    this.signedImage = null; // the signature we sent, shown back once it is accepted
    this.reference = ''; // the visit's reference number, from `queued` or `welcome`
    this.flow = null; // the last `flow` state of this session
    this.documents = new Map(); // document id → {id, title, sha256, text} pushed in this session
    this.shownDocument = null; // id of the document on screen: the last one pushed
    this.question = null; // the current `question` message of the questionnaire
    this.chosen = null; // the option clicked for it, shown pressed until the next question
    this.pending = null; // what we sent and wait to hear back about: show_id, sign, answer, acknowledge
    this.receipts = []; // {sealed: the `session_sealed` message, flow: the flow it sealed}
    this.runReceipt = null; // the receipt of the flow run on screen, once it is sealed
    this.customerName = ''; // the display name from `welcome`, to suggest for the signature
    this.pad = new SignaturePad($('#signature-pad'), () => this.renderSignature());
    $('#identity-form').addEventListener('submit', (ev) => this.showId(ev));
    $('#sign-clear').addEventListener('click', () => this.pad.clear());
    $('#sign').addEventListener('click', () => this.sign());
    $('#sign-name').addEventListener('input', () => this.renderSignature());
    $('#ack-form').addEventListener('submit', (ev) => this.acknowledge(ev));
  }

  /** A new visit: nothing of the last one's business stays on screen. */
  reset() {
    forgetFlow();
    this.flow = null;
    this.reference = '';
    this.documents.clear();
    this.shownDocument = null;
    this.question = null;
    this.receipts = [];
    this.clearRun();
    this.render();
  }

  /** What one flow run leaves on screen (the same call may run another flow after it). */
  clearRun() {
    this.documents.clear();
    this.shownDocument = null;
    this.question = null;
    this.pending = null;
    this.runReceipt = null;
    $('#identity-form').reset();
    $('#ack-form').reset();
    $('#sign-name').value = '';
    this.signedImage = null;
    this.pad.clear();
  }

  /** Every signaling message; those about the business of another session are ignored. */
  handle(msg) {
    if (msg.session_id && hooks.sessionId && msg.session_id !== hooks.sessionId) return;
    recordFlow(msg);
    switch (msg.type) {
      case 'flow':
        this.follow(msg.flow);
        break;
      case 'document':
        this.documents.set(msg.id, msg);
        this.shownDocument = msg.id;
        this.renderDocument();
        this.renderSignature();
        break;
      case 'question':
        this.question = msg;
        if (this.pending === 'answer') this.pending = null;
        this.renderQuestion();
        break;
      case 'session_sealed':
        this.runReceipt = {sealed: msg, flow: this.flow};
        this.receipts.push(this.runReceipt);
        this.renderReceipts();
        break;
      case 'error':
        this.refused(msg);
        break;
      default:
        break;
    }
  }

  follow(flow) {
    const last = this.flow;
    const stepChanged = flow?.step !== last?.step;
    if (last && (flow?.flow !== last.flow || (last.kind === 'sealed' && flow?.kind !== 'sealed'))) {
      this.clearRun(); // a new flow in the same call
    }
    if (this.runReceipt && flow?.kind === 'sealed') this.runReceipt.flow = flow; // its final state
    this.flow = flow;
    if (stepChanged) $('#flow-error').textContent = '';
    this.pending = this.stillPending(flow);
    if (flow?.kind !== 'questionnaire') this.question = null;
    this.render();
  }

  /** What we sent that this state does not answer yet. */
  stillPending(flow) {
    const p = this.pending;
    if (p === 'show_id' && flow?.kind === 'identity' && !flow.identity?.at) return p;
    if (p === 'sign' && flow?.kind === 'signature' && !flow.signature) return p;
    if (p === 'acknowledge' && flow?.kind === 'suitability') return p;
    if (p === 'answer' && flow?.kind === 'questionnaire') return p;
    return null;
  }

  /** The server refused what we just sent: say why beside it, and let the customer try again. */
  refused(msg) {
    if (!this.pending) return;
    this.pending = null;
    $('#flow-error').textContent = msg.message || msg.code || 'Refused · 未成功';
    this.render();
  }

  act(kind, msg) {
    $('#flow-error').textContent = '';
    if (!this.send(msg)) {
      $('#flow-error').textContent = 'Not connected to the branch; please try again. · 连接中断，请重试';
      return false;
    }
    this.pending = kind;
    this.render();
    return true;
  }

  // ---- what the customer does ------------------------------------------------------------

  showId(ev) {
    ev.preventDefault();
    const form = ev.target;
    const name = form.elements.name.value.trim();
    const idNumber = form.elements.id_number.value.replace(/\s+/g, '').toUpperCase();
    if (!ID_NUMBER.test(idNumber)) {
      $('#flow-error').textContent = 'An ID number has 17 digits and then a digit or X. · 身份证号为18位';
      return;
    }
    this.act('show_id', {type: 'show_id', name, id_number: idNumber});
  }

  /** The document the signature binds: the one on screen if the flow has it, else its last. */
  documentToSign() {
    const pushed = this.flow?.documents ?? {};
    const shown = this.documents.get(this.shownDocument);
    if (shown && (!Object.keys(pushed).length || pushed[shown.id] === shown.sha256)) return shown;
    const ids = Object.keys(pushed);
    if (!ids.length) return null;
    const id = ids[ids.length - 1];
    return this.documents.get(id) ?? {id, sha256: pushed[id]};
  }

  sign() {
    const doc = this.documentToSign();
    const name = $('#sign-name').value.trim();
    if (!doc || this.pad.empty || !name) return;
    const image = this.pad.toDataURL();
    if (image.length > MAX_SIGNATURE_CHARS) {
      $('#flow-error').textContent = 'The signature is too large; please clear it and sign again. · 签名过大，请重签';
      return;
    }
    if (this.act('sign', {type: 'sign', name, document_sha256: doc.sha256, image})) this.signedImage = image;
  }

  answer(question, option) {
    this.chosen = option;
    this.act('answer', {type: 'answer', question, option});
  }

  acknowledge(ev) {
    ev.preventDefault();
    const text = ev.target.elements.text.value.trim();
    if (text) this.act('acknowledge', {type: 'acknowledge', text});
  }

  // ---- what the customer sees ------------------------------------------------------------

  render() {
    const flow = this.flow;
    $('#business').hidden = !flow;
    $('#call-grid').classList.toggle('with-flow', !!flow);
    if (!flow) return;
    $('#business-title').textContent = FLOWS[flow.flow] ?? flow.flow;
    renderSteps($('#flow-steps'), flow);
    $('#flow-say').textContent = scriptOf(flow, this.product(flow.product)?.name.en);
    this.renderIdentity();
    this.renderDisclosures();
    this.renderConsent();
    this.renderDocument();
    this.renderSignature();
    this.renderQuestion();
    this.renderResult();
    this.renderSuitability();
    this.renderSealed();
    this.renderReceipts();
  }

  renderSealed() {
    const box = $('#sealed-box');
    box.hidden = this.flow.kind !== 'sealed';
    $('#sealed-reference').textContent = this.reference || '–';
    $('#sealed-receipt').hidden = this.receipts.length > 0;
  }

  renderIdentity() {
    const flow = this.flow;
    const id = flow.identity ?? {};
    const atStep = flow.kind === 'identity';
    $('#identity-form').hidden = !atStep;
    if (!atStep) return;
    const submit = $('#show-id');
    submit.disabled = this.pending === 'show_id' || !!id.verified_by;
    submit.textContent = this.pending === 'show_id' ? TEXT.checking : 'Submit · 提交';
    const checks = $('#identity-checks');
    checks.hidden = !id.at && !id.id_number;
    if (checks.hidden) return;
    const faces = id.faces ?? 0;
    const pictured = faces > 0 || id.snapshot_at != null || id.faces != null;
    checks.replaceChildren(
      check(id.id_valid, 'ID number · 身份证号', `${id.id_number ?? ''}${id.id_valid ? '' : ' — not valid · 无效'}`),
      check(id.name_matches, 'Name · 姓名', id.name ?? ''),
      check(pictured ? faces > 0 : null, 'Face · 人像', faces > 0 ? 'seen on camera · 已采集'
        : pictured ? 'no face seen — look into the camera and submit again · 未检测到人脸，请正对摄像头后重新提交'
          : 'taking a picture… · 正在采集'),
      check(id.verified_by ? true : null, 'Teller · 柜员', id.verified_by ? TEXT.verified : TEXT.waitingTeller));
    if (id.problem) checks.append(h('p', {class: 'problem'}, id.problem));
  }

  renderDisclosures() {
    const flow = this.flow;
    const list = flow.disclosures ?? [];
    $('#disclosure-box').hidden = flow.kind !== 'disclosure' || !list.length;
    // "I confirm" said while the terms are still being read is not taken: say so
    const early = hooks.flowEvents.findLast?.((e) => e.type === 'consent_early');
    $('#consent-early').hidden = !(early && early.step === flow.step && flow.kind === 'disclosure');
    $('#customer-disclosures').replaceChildren(...list.map((d) => h('li', {
      'data-read': String(!!d.read),
    }, h('span', {class: 'tick', 'aria-label': d.read ? 'read · 已宣读' : 'not yet · 未宣读'}, d.read ? '✓' : '·'),
    d.text ?? d.id)));
  }

  renderConsent() {
    const flow = this.flow;
    const box = $('#consent-box');
    const refused = hooks.flowEvents.some((e) => e.type === 'consent_refused')
      && !flow.consent;
    box.hidden = flow.kind !== 'consent' && !flow.consent;
    if (box.hidden) return;
    box.dataset.state = flow.consent ? 'given' : refused ? 'refused' : 'listening';
    const unread = unreadList(flow);
    box.replaceChildren(flow.consent
      ? h('p', {}, '✓ Your consent was recorded · 已记录您的确认 ',
        h('q', {}, flow.consent.text ?? ''), ` ${clock(flow.consent.at)}`)
      : h('p', {}, h('span', {class: 'mic', 'aria-hidden': 'true'}, '🎙 '),
        refused ? 'You did not agree; say “I confirm” if you change your mind. · 您未同意'
          : TEXT.listening),
    unread.length ? h('div', {class: 'unread', 'data-testid': 'unread-terms'},
      h('p', {}, flow.consent ? 'These terms were not read to you. · 以下条款未向您宣读'
        : 'These terms were not read to you: you may ask your teller to read them before you agree. · 以下条款未向您宣读，同意前您可请柜员宣读'),
      h('ul', {}, ...unread)) : null);
  }

  renderDocument() {
    const doc = this.documents.get(this.shownDocument);
    const article = $('#document');
    article.hidden = !doc || this.flow?.kind === 'sealed';
    if (!doc || article.dataset.shown === `${doc.id}:${doc.sha256}`) return;
    article.dataset.shown = `${doc.id}:${doc.sha256}`; // rebuilt only for a new document
    const title = documentTitle(doc);
    $('#document-title').textContent = title;
    $('#document-sha').textContent = doc.sha256 ?? '';
    // The title is in the header already: not again as the text's first heading.
    $('#document-text').replaceChildren(...markdown(doc.text)
      .filter((el, i) => !(i === 0 && /^H\d$/.test(el.tagName) && el.textContent === title)));
    $('#document-text').scrollTop = 0;
  }

  renderSignature() {
    const flow = this.flow;
    const box = $('#signature-box');
    box.hidden = !flow || (flow.kind !== 'signature' && !flow.signature);
    if (box.hidden) return;
    const signed = flow.signature;
    $('#signature-pad-area').hidden = !!signed;
    $('#signed').hidden = !signed;
    if (signed) {
      $('#signed').replaceChildren(`✓ Signed by ${signed.name} at ${clock(signed.at)} · 已签署`,
        this.signedImage ? h('img', {class: 'signature', src: this.signedImage, alt: 'Your signature · 您的签名'}) : null);
      return;
    }
    const name = $('#sign-name');
    if (!name.value) name.value = flow.identity?.name || this.customerName;
    const doc = this.documentToSign();
    $('#sign-doc').textContent = doc
      ? `You are signing ${documentTitle(doc)} · SHA-256 ${shortHash(doc.sha256)}`
      : 'Waiting for your teller to send the contract. · 等待柜员推送合同';
    const signing = this.pending === 'sign';
    $('#sign').disabled = signing || !doc || this.pad.empty || !name.value.trim();
    $('#sign').textContent = signing ? TEXT.signing : 'Sign · 签署';
  }

  renderQuestion() {
    const q = this.question;
    const box = $('#question-box');
    box.hidden = !q || this.flow?.kind !== 'questionnaire';
    if (box.hidden) return;
    const question = q.question ?? {};
    $('#question-progress').textContent = `Question ${q.index} of ${q.total} · 第 ${q.index} / ${q.total} 题`;
    $('#question-text').textContent = question.text ?? '';
    const chosen = this.pending === 'answer' ? this.chosen : this.flow?.answers?.[question.id];
    $('#question-options').replaceChildren(...(question.options ?? []).map((o) => h('button', {
      type: 'button', class: 'option', 'data-option': o.id, 'data-testid': `option-${o.id}`,
      'aria-pressed': String(chosen === o.id), disabled: this.pending === 'answer',
      onclick: () => this.answer(question.id, o.id),
    }, h('span', {class: 'letter'}, o.id), o.text)));
  }

  renderResult() {
    const level = this.flow.level;
    $('#result-box').hidden = !level;
    if (!level) return;
    $('#result-level').textContent = level;
    $('#result-name').textContent = LEVELS[level] ?? '';
  }

  renderSuitability() {
    const flow = this.flow;
    const s = flow.suitability;
    $('#suitability-box').hidden = !s;
    if (!s) return;
    $('#suitability-product').textContent = this.productLabel(s.product ?? flow.product);
    const outcome = s.suitable ? '✓ Suitable for you · 适合您'
      : !s.allowed ? '✗ Not available to you · 不可购买'
        : '! Above your risk level · 超出您的风险等级';
    $('#suitability-outcome').textContent = outcome;
    $('#suitability-box').dataset.outcome = s.suitable ? 'suitable' : s.allowed ? 'above' : 'refused';
    $('#suitability-reason').textContent = s.reason ?? '';
    const acknowledged = hooks.flowEvents.some((e) => e.type === 'acknowledgement')
      || flow.kind !== 'suitability';
    const form = $('#ack-form');
    form.hidden = !(s.needs_acknowledgement && s.allowed && !acknowledged);
    form.querySelector('button').disabled = this.pending === 'acknowledge';
    $('#acknowledged').hidden = !hooks.flowEvents.some((e) => e.type === 'acknowledgement');
  }

  /** One receipt per sealed flow, newest first, in #receipt (it stays after the call ends). */
  /** A product from the catalogue ({name: {en, zh}, risk}), once it is here; undefined before. */
  product(id) {
    if (this.products === null && id) {
      this.products = new Map();
      apiGet('/products', this.token()).then((list) => {
        this.products = new Map(list.map((p) => [p.id, p]));
        if (this.flow) this.render();
      }).catch((e) => console.warn('products', e));
    }
    return this.products?.get(id);
  }

  /** A product's name and rating (its id until the catalogue is here). */
  productLabel(id) {
    const p = this.product(id);
    return p ? `${p.name.en} · ${p.name.zh} (${p.risk})` : id ?? '';
  }

  renderReceipts() {
    const box = $('#receipt');
    box.hidden = !this.receipts.length;
    $('#receipt-list').replaceChildren(...[...this.receipts].reverse().map(({sealed, flow}) => {
      const items = Array.isArray(sealed.items) ? sealed.items.length : sealed.items;
      return h('div', {class: 'receipt-entry', 'data-reference': sealed.reference ?? ''},
        h('dl', {class: 'facts'},
          h('div', {}, h('dt', {}, 'Reference · 业务编号'),
            h('dd', {class: 'reference', 'data-testid': 'receipt-reference'}, sealed.reference ?? '–')),
          h('div', {}, h('dt', {}, 'Sealed · 封存时间'), h('dd', {}, clock(sealed.sealed_at))),
          items == null ? null
            : h('div', {}, h('dt', {}, 'Evidence items · 留证项目'), h('dd', {}, String(items)))),
        h('ul', {class: 'done-list', 'data-testid': 'receipt-done'},
          ...this.doneLines(flow ?? {}).map((line) => h('li', {}, line))),
        h('p', {class: 'hash'}, 'Evidence manifest SHA-256 · 证据清单摘要 ',
          h('code', {'data-testid': 'receipt-manifest'}, sealed.manifest_sha256 ?? '')));
    }));
  }

  /** What was done in the session, one line each, for the receipt. */
  doneLines(flow) {
    const lines = [FLOWS[flow.flow] ?? flow.flow ?? 'Business · 业务'];
    const id = flow.identity ?? {};
    if (id.verified_by) lines.push(`${STEPS.identity}: ✓ ${id.name ?? ''} ${id.id_number ?? ''}`);
    const clauses = (flow.steps ?? []).includes('disclosure') && flow.step !== 'identity';
    if (clauses) {
      const unread = (flow.unread ?? []).length;
      lines.push(unread ? `${STEPS.disclosure}: ✗ ${unread} ${unread === 1 ? 'clause' : 'clauses'} not read to you · ${unread} 条未宣读`
        : `${STEPS.disclosure}: ✓ read in full · 已全部宣读`);
    }
    if (flow.consent) lines.push(`${STEPS.consent}: “${flow.consent.text ?? ''}” ${clock(flow.consent.at)}`);
    if (flow.signature) {
      lines.push(`${STEPS.signature}: ${flow.signature.name} ${clock(flow.signature.at)}, `
        + `SHA-256 ${shortHash(flow.signature.document_sha256)}`);
    }
    if (flow.level) lines.push(`Risk level · 风险等级: ${flow.level} ${LEVELS[flow.level] ?? ''}`);
    const s = flow.suitability;
    if (s) {
      const outcome = s.suitable ? 'suitable · 适合' : s.allowed ? 'acknowledged · 已确认风险' : 'not allowed · 不可购买';
      lines.push(`${STEPS.suitability}: ${this.productLabel(s.product)} — ${outcome}`);
    }
    return lines;
  }
}
