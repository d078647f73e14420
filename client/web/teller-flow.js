// The teller's side of the business done in a call (#flow-panel on /teller): start a loan
// signing or a risk assessment, push the contract or product sheet, verify the customer's
// identity once the ID and a face have been checked, move on from the key terms; the script of
// the current step with each disclosure ticked when it has been read, consent and signature as
// they arrive, and the call's quality alerts in red (window.vbank.qcAlerts).

import {$, apiGet, h, hooks} from './common.js';
import {FLOWS, LEVELS, alertItem, alertKey, clock, documentTitle, forgetFlow, markdown,
  recordFlow, renderSteps, scriptOf, shortHash, unreadList} from './flow.js';

const CONTRACT = 'personal-loan-contract'; // what a loan signing pushes and the customer signs
const TELLER_MOVES_ON = new Set(['disclosure', 'result']); // steps only the teller ends

hooks.qcAlerts = [];

/** A row of the record: a term and what is known about it. */
function fact(term, ...value) {
  return [h('dt', {}, term), h('dd', {}, ...value)];
}

function yes(ok, text = '') {
  return h('span', {class: ok ? 'ok' : 'bad'}, ok ? '✓' : '✗', text ? ` ${text}` : '');
}

export class TellerBusiness {
  /**
   * send(msg) sends on the signaling channel (false when down); inCall() says whether we are in
   * a call; token() is the bearer token, to read the product catalogue.
   */
  constructor({send, messages, inCall, token}) {
    this.send = send;
    this.messages = messages;
    this.inCall = inCall;
    this.token = token;
    this.products = null; // [{id, name: {en, zh}, risk}] once asked for; [] if we may not read it
    this.flow = null; // the last `flow` state of this call
    this.document = null; // the last `document` pushed, {id, title, sha256, text}
    this.alerts = new Map(); // alertKey → alert, from the flow's state and `qc_alert` messages
    this.received = {}; // event type → when it arrived here (ms), for times the server gives in its own clock
    this.marked = {}; // disclosure id → `at` of its disclosure_marked event
    this.clauses = {}; // disclosure id → its text, to name it in an alert after its step
    this.sealed = null; // the `session_sealed` message
    for (const button of document.querySelectorAll('#flow-panel [data-start]')) {
      button.addEventListener('click', () => this.act({type: 'start_flow', flow: button.dataset.start}));
    }
    $('#push').addEventListener('click', () => this.act({type: 'push', document: this.documentToPush()}));
    $('#verify').addEventListener('click', () => this.act({type: 'verify_identity'}));
    $('#advance').addEventListener('click', () => this.act({type: 'advance'}));
    $('#back').addEventListener('click', () => this.act({type: 'back'}));
  }

  /** A new call: the last one's business leaves the panel. */
  reset() {
    forgetFlow();
    this.flow = null;
    this.document = null;
    this.alerts.clear();
    this.received = {};
    this.marked = {};
    this.clauses = {};
    this.sealed = null;
    this.render();
  }

  handle(msg) {
    if (msg.session_id && hooks.sessionId && msg.session_id !== hooks.sessionId) return;
    recordFlow(msg);
    this.received[msg.type] = Date.now();
    switch (msg.type) {
      case 'flow':
        this.flow = msg.flow ?? null;
        for (const d of this.flow?.disclosures ?? []) this.clauses[d.id] = d.text;
        for (const alert of this.flow?.alerts ?? []) this.addAlert(alert);
        break;
      case 'document':
        this.document = msg;
        break;
      case 'disclosure_marked':
        this.marked[msg.id] = msg.at;
        break;
      case 'qc_alert':
        this.addAlert(msg);
        break;
      case 'session_sealed':
        this.sealed = msg;
        break;
      default:
        return;
    }
    this.render();
  }

  addAlert(alert) {
    const key = alertKey(alert);
    if (!this.alerts.has(key)) this.alerts.set(key, {...alert, receivedAt: Date.now()});
  }

  act(msg) {
    if (!this.send(msg)) this.messages.show('Not connected to the branch. · 未连接', 'error');
  }

  /** The contract for a loan signing; for a risk assessment the product chosen. */
  documentToPush() {
    if (this.flow?.flow === 'loan_signing') return CONTRACT;
    return $('#product').value || this.flow?.product;
  }

  /** The products a risk assessment can check, once; without the catalogue, the flow's own. */
  async loadProducts() {
    if (this.products !== null) return;
    this.products = [];
    try {
      this.products = await apiGet('/products', this.token());
    } catch (e) {
      console.info('no product catalogue for this console; offering the flow’s product', e);
    }
    this.renderProducts();
  }

  productName(id) {
    return (this.products ?? []).find((p) => p.id === id)?.name?.en ?? id;
  }

  renderProducts() {
    const select = $('#product');
    const flow = this.flow;
    select.hidden = flow?.flow !== 'risk_assessment';
    if (select.hidden) return;
    if (this.products === null) this.loadProducts();
    const known = this.products ?? [];
    const ids = known.map((p) => p.id);
    if (flow.product && !ids.includes(flow.product)) ids.unshift(flow.product);
    if (select.dataset.ids === ids.join()) return; // keep the teller's choice
    select.dataset.ids = ids.join();
    select.replaceChildren(...ids.map((id) => {
      const p = known.find((x) => x.id === id);
      return h('option', {value: id, selected: id === flow.product},
        p ? `${p.name?.en ?? id} · ${p.risk ?? ''}` : id);
    }));
  }

  // ---- what the teller sees --------------------------------------------------------------

  render() {
    const flow = this.flow;
    const inCall = this.inCall();
    const running = !!flow && flow.kind !== 'sealed';
    for (const button of document.querySelectorAll('#flow-panel [data-start]')) {
      button.disabled = !inCall || running;
    }
    $('#flow-name').textContent = flow ? `· ${FLOWS[flow.flow] ?? flow.flow}` : '';
    $('#console-grid').classList.toggle('flow-running', !!flow);
    $('#flow-none').hidden = !!flow;
    renderSteps($('#flow-steps'), flow);
    $('#flow-say').textContent = scriptOf(flow, this.productName(flow?.product));
    this.renderAlerts();
    this.renderDisclosures();
    this.renderProducts();
    this.renderButtons(inCall, running);
    const record = flow ? this.record() : [];
    $('#flow-record').replaceChildren(...record);
    $('#record-title').hidden = !record.length;
    this.renderDocument();
  }

  renderDisclosures() {
    const unread = unreadList(this.flow);
    $('#flow-unread').hidden = !unread.length;
    $('#flow-unread-list').replaceChildren(...unread);
    $('#flow-disclosures').replaceChildren(...(this.flow?.disclosures ?? []).map((d) => h('li', {
      'data-read': String(!!d.read), 'data-disclosure': d.id,
    }, h('span', {class: 'tick'}, d.read ? '✓' : '○'), h('span', {class: 'text'}, d.text ?? d.id),
    d.read ? h('span', {class: 'when'}, clock(this.marked[d.id], this.received.disclosure_marked)) : null)));
  }

  renderButtons(inCall, running) {
    const flow = this.flow ?? {};
    const id = flow.identity ?? {};
    const push = $('#push');
    const doc = this.documentToPush();
    push.disabled = !inCall || !running || !doc;
    const what = flow.flow === 'risk_assessment' ? 'product sheet · 推送产品说明' : 'contract · 推送合同';
    push.textContent = doc && flow.documents?.[doc] ? `✓ Push ${what}` : `Push ${what}`;
    $('#verify').hidden = !(flow.steps ?? ['identity']).includes('identity');
    $('#verify').disabled = !inCall || flow.kind !== 'identity' || !id.id_valid || !id.name_matches
      || !((id.faces ?? 0) >= 1) || !!id.verified_by;
    $('#advance').disabled = !inCall || flow.mode === 'digital_human' || !this.canMoveOn(flow);
    // before consent, a skipped clause can still be read: go back to it
    const back = $('#back');
    back.hidden = !(flow.kind === 'consent' && !flow.consent && (flow.unread ?? []).length);
    back.disabled = !inCall || back.hidden;
  }

  /** The key terms and the result wait for the teller; suitability too, once it is settled
   * (suitable, refused, or acknowledged) and the teller has not read its clauses in full. */
  canMoveOn(flow) {
    if (TELLER_MOVES_ON.has(flow.kind)) return true;
    const s = flow.suitability;
    return flow.kind === 'suitability' && !!s
      && (s.suitable || !s.allowed || !!this.received.acknowledgement);
  }

  /** The record of the call's business: identity, documents, consent, signature, risk, seal. */
  record() {
    const flow = this.flow;
    const rows = [...this.identityFacts(flow.identity ?? {})];
    for (const [doc, sha] of Object.entries(flow.documents ?? {})) {
      rows.push(...fact('Pushed · 已推送', `${doc} `, h('code', {}, shortHash(sha))));
    }
    rows.push(...this.consentFacts(flow), ...this.signatureFacts(flow.signature), ...this.riskFacts(flow));
    if (this.sealed) {
      const {reference, manifest_sha256: manifest} = this.sealed;
      rows.push(...fact('Sealed · 已封存', h('span', {class: 'reference'}, reference ?? ''), ' ',
        h('code', {title: manifest ?? ''}, shortHash(manifest))));
    }
    return rows;
  }

  /** What the ID and the snapshot showed: the facts the teller verifies identity on. */
  identityFacts(id) {
    if (!id.id_number && !id.name) return [];
    const faces = id.faces ?? null;
    const rows = [
      ...fact('Name · 姓名', `${id.name ?? ''} `,
        yes(id.name_matches, id.name_matches ? 'as on record · 一致' : 'not as on record · 不符')),
      ...fact('ID · 证件', `${id.id_number ?? ''} `,
        yes(id.id_valid, id.id_valid ? 'valid · 有效' : 'not valid · 无效')),
      ...fact('Face · 人像', faces == null ? 'no snapshot yet · 尚未采集'
        : yes(faces >= 1, `${faces} in the snapshot, ${clock(id.snapshot_at, this.received.face)}`)),
    ];
    if (id.problem) rows.push(...fact('Problem · 问题', h('span', {class: 'bad'}, id.problem)));
    if (id.verified_by) {
      const when = clock(id.verified_at, this.received.identity_verified);
      rows.push(...fact('Verified · 已核实', yes(true, `${id.verified_by}, ${when}`)));
    }
    return rows;
  }

  consentFacts(flow) {
    const consent = flow.consent;
    if (consent) {
      const heard = consent.heard && consent.heard !== consent.text;
      return fact('Consent · 确认', yes(true, `“${consent.text ?? ''}” at ${clock(consent.at, this.received.consent)}`),
        heard ? h('span', {class: 'heard'}, ` heard “${consent.heard}”`) : null);
    }
    if (this.received.consent_refused) {
      return fact('Consent · 确认', yes(false, `refused at ${clock(null, this.received.consent_refused)} · 客户未同意`));
    }
    return flow.kind === 'consent' ? fact('Consent · 确认', 'listening for the customer… · 等待客户确认') : [];
  }

  signatureFacts(sig) {
    if (!sig) return [];
    return fact('Signed · 已签署', yes(true, `${sig.name} at ${clock(sig.at, this.received.contract_signed)} `),
      h('code', {title: sig.document_sha256 ?? ''}, shortHash(sig.document_sha256)));
  }

  riskFacts(flow) {
    const rows = [];
    const answered = Object.keys(flow.answers ?? {}).length;
    if (answered) rows.push(...fact('Answers · 已答', String(answered)));
    if (flow.level) rows.push(...fact('Risk level · 风险等级', `${flow.level} ${LEVELS[flow.level] ?? ''}`));
    const s = flow.suitability;
    if (s) {
      const outcome = s.suitable ? 'suitable · 适合'
        : s.allowed ? 'needs acknowledgement · 需客户确认风险' : 'not allowed · 不可购买';
      rows.push(...fact('Suitability · 适当性', h('span', {title: s.reason ?? ''}, `${this.productName(s.product)} `),
        yes(s.suitable || s.allowed, outcome)));
    }
    if (this.received.acknowledgement) {
      rows.push(...fact('Acknowledged · 已确认风险', yes(true, clock(null, this.received.acknowledgement))));
    }
    return rows;
  }

  renderDocument() {
    const doc = this.document;
    const box = $('#teller-document');
    box.hidden = !doc;
    if (!doc || box.dataset.shown === `${doc.id}:${doc.sha256}`) return;
    box.dataset.shown = `${doc.id}:${doc.sha256}`;
    $('#teller-document-title').textContent = documentTitle(doc);
    $('#teller-document-sha').textContent = shortHash(doc.sha256);
    $('#teller-document-text').replaceChildren(...markdown(doc.text));
  }

  renderAlerts() {
    const alerts = [...this.alerts.values()].reverse(); // newest first
    hooks.qcAlerts = alerts.map(({receivedAt, ...a}) => a);
    $('#qc-none').hidden = alerts.length > 0;
    $('#qc-alerts').replaceChildren(...alerts.map((a) => alertItem(a,
      a.speaker ? [h('span', {class: 'who'}, a.speaker)] : [], this.clauses)));
  }
}
