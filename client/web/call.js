// The media side of a call: the camera, one RTCPeerConnection to the server per session, the
// remote <video> and a count of its rendered frames. Both peers of a call terminate at the
// server, so this page always talks to the server, never directly to the other person.

import {$, hooks} from './common.js';

const GATHER_CAP_MS = 3000; // the server does not trickle ICE; never wait longer than this
const STALL_MS = 1500; // no remote frame for this long shows the placeholder again

export const CAMERA = {
  // Chromium's echo canceller, noise suppression and gain control. They are its defaults, but
  // said here: a customer on loudspeakers must not send the digital human its own voice back
  // (it would hear "the customer" talk and stop itself).
  audio: {echoCancellation: true, noiseSuppression: true, autoGainControl: true},
  video: {width: {ideal: 640}, height: {ideal: 480}, frameRate: {ideal: 15, max: 15}},
};

/** The camera and microphone, or null (with the reason logged) when the user has none or says no. */
export async function openCamera() {
  try {
    return await navigator.mediaDevices.getUserMedia(CAMERA);
  } catch (e) {
    console.warn('getUserMedia failed', e);
    return null;
  }
}

export function stopCamera(stream) {
  for (const track of stream?.getTracks() ?? []) track.stop();
}

/** Resolve once ICE gathering is complete, or after capMs, whichever comes first. */
function iceGatheringComplete(pc, capMs) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', onChange);
      pc.removeEventListener('icecandidate', onCandidate);
      resolve();
    };
    const onChange = () => pc.iceGatheringState === 'complete' && done();
    const onCandidate = (ev) => ev.candidate === null && done();
    const timer = setTimeout(done, capMs);
    pc.addEventListener('icegatheringstatechange', onChange);
    pc.addEventListener('icecandidate', onCandidate);
  });
}

export class CallLink {
  /**
   * remoteVideo: the <video> that shows (and plays the audio of) the other side.
   * onConnectionState(state): the peer connection's connectionState, 'closed' when dropped.
   * onFrame(): a remote frame was rendered. onAutoplayBlocked(): the remote video had to be
   * muted to play (no user gesture yet); the page offers an unmute button.
   */
  constructor({remoteVideo, onConnectionState, onFrame, onAutoplayBlocked}) {
    this.remoteVideo = remoteVideo;
    this.onConnectionState = onConnectionState;
    this.onFrame = onFrame ?? (() => {});
    this.onAutoplayBlocked = onAutoplayBlocked ?? (() => {});
    this.pc = null;
    this.sessionId = null; // the session the current pc belongs to
    this.generation = 0; // bumped by every offer(); an older, slower offer() gives up
    this.offersInFlight = 0; // offers sent but not yet answered; only the newest answer applies
    this.frameHandle = null;
    this.lastFrameAt = 0;
    Object.defineProperty(hooks, 'pcState', {
      get: () => this.pc?.connectionState ?? null,
      enumerable: true,
      configurable: true,
    });
    setInterval(() => this.markStalled(), 500);
  }

  get connectionState() {
    return this.pc?.connectionState ?? 'closed';
  }

  /**
   * Build a new peer connection for sessionId with the local tracks (sendrecv) and return the
   * offer SDP with all ICE candidates in it; null if a newer offer() superseded this one.
   */
  async offer(sessionId, localStream) {
    const generation = ++this.generation;
    this.close();
    const pc = new RTCPeerConnection({iceServers: []});
    this.pc = pc;
    this.sessionId = sessionId;
    const remote = new MediaStream();
    pc.ontrack = (ev) => {
      if (this.pc !== pc) return;
      remote.addTrack(ev.track);
      this.attach(remote);
    };
    pc.onconnectionstatechange = () => this.pc === pc && this.onConnectionState(pc.connectionState);
    const kinds = new Set();
    for (const track of localStream?.getTracks() ?? []) {
      pc.addTrack(track, localStream);
      kinds.add(track.kind);
    }
    // Without a camera or microphone we still receive the other side.
    for (const kind of ['audio', 'video']) {
      if (!kinds.has(kind)) pc.addTransceiver(kind, {direction: 'recvonly'});
    }
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await iceGatheringComplete(pc, GATHER_CAP_MS);
    } catch (e) {
      if (generation !== this.generation) return null; // closed under us by a newer offer
      throw e;
    }
    if (generation !== this.generation || this.pc !== pc) return null;
    // The addresses this browser offered (raw IPs, or mDNS names when it hides them).
    hooks.offeredCandidates = pc.localDescription.sdp.split('\r\n')
      .filter((line) => line.startsWith('a=candidate:'))
      .map((line) => line.split(' ')[4]);
    return pc.localDescription.sdp;
  }

  /** Count an offer that went out, so that only the answer to the newest one is applied. */
  offerSent() {
    this.offersInFlight += 1;
  }

  /** A new WebSocket: answers to offers sent on the old one will never come. */
  resetSignaling() {
    this.offersInFlight = 0;
  }

  /** The server refused an offer (bad_sdp, media_error): it will not be answered. */
  offerRefused() {
    this.offersInFlight = Math.max(0, this.offersInFlight - 1);
  }

  /** Apply the server's answer; false when it does not belong to the current offer. */
  async answer(sessionId, sdp) {
    this.offersInFlight = Math.max(0, this.offersInFlight - 1);
    const pc = this.pc;
    if (!pc || sessionId !== this.sessionId || this.offersInFlight > 0) return false;
    if (pc.signalingState !== 'have-local-offer') return false;
    await pc.setRemoteDescription({type: 'answer', sdp});
    return true;
  }

  close() {
    const pc = this.pc;
    if (!pc) return;
    this.pc = null;
    pc.ontrack = null;
    pc.onconnectionstatechange = null;
    pc.close(); // fires no connectionstatechange, so report it ourselves
    this.remoteVideo.srcObject = null;
    this.remoteVideo.parentElement?.classList.remove('has-frames');
    this.onConnectionState('closed');
  }

  attach(stream) {
    const video = this.remoteVideo;
    video.srcObject = stream;
    this.watchFrames();
    video.play().catch((e) => {
      if (e.name !== 'NotAllowedError') return; // AbortError: a newer srcObject took over
      // Autoplay with sound needs a user gesture (e.g. after a page reload): play muted, offer unmute.
      video.muted = true;
      video.play().catch(() => {});
      this.onAutoplayBlocked();
    });
  }

  watchFrames() {
    const video = this.remoteVideo;
    if (!('requestVideoFrameCallback' in video)) return;
    if (this.frameHandle !== null) video.cancelVideoFrameCallback(this.frameHandle);
    const tick = (_now, meta) => {
      hooks.remoteFrames += 1;
      hooks.remoteWidth = meta.width;
      hooks.remoteHeight = meta.height;
      this.lastFrameAt = performance.now();
      video.parentElement?.classList.add('has-frames');
      this.onFrame();
      this.frameHandle = video.requestVideoFrameCallback(tick);
    };
    this.frameHandle = video.requestVideoFrameCallback(tick);
  }

  markStalled() {
    if (performance.now() - this.lastFrameAt > STALL_MS) {
      this.remoteVideo.parentElement?.classList.remove('has-frames');
    }
  }
}

/**
 * A page's side of a call, on top of CallLink: the camera (opened once, kept until stop()), the
 * offer for a session sent over `send`, a failed media path rebuilt with backoff, and
 * `connecting` → `in_call` once our media is up and the other side's is too (as the server says
 * or as its frames show). It uses the page's #remote-video, #local-video and #unmute.
 *
 * The page keeps its states: setState(state) is its own; `reconnecting` its state for "the other
 * person is reconnecting"; wanted() whether an offer gathered for the current session still goes
 * out; repairable() (wanted() unless given) whether a failed media path is rebuilt; noCamera what
 * to tell the user when there is no camera or microphone.
 */
export class PageCall {
  constructor({messages, send, setState, reconnecting, wanted, repairable = wanted, noCamera}) {
    Object.assign(this, {messages, send, setState, reconnecting, wanted, repairable, noCamera});
    this.paired = new Set(['connecting', 'in_call', reconnecting]);
    this.remoteVideo = $('#remote-video');
    this.localVideo = $('#local-video');
    this.camera = null; // the local MediaStream
    this.cameraOpening = null;
    this.framesAtPair = 0; // remote frames counted when the current peer was paired
    this.peerUp = false; // the server said the other side's media is connected
    this.renegotiateTimer = null;
    this.renegotiateAttempts = 0;
    this.link = new CallLink({
      remoteVideo: this.remoteVideo,
      onConnectionState: (state) => this.onConnectionState(state),
      onFrame: () => this.maybeInCall(),
      onAutoplayBlocked: () => { $('#unmute').hidden = false; },
    });
    $('#unmute').addEventListener('click', () => {
      this.remoteVideo.muted = false;
      $('#unmute').hidden = true;
    });
  }

  async ensureCamera() {
    if (this.camera && this.camera.getTracks().some((t) => t.readyState === 'live')) return this.camera;
    this.cameraOpening ??= openCamera().then((stream) => {
      this.cameraOpening = null;
      this.camera = stream;
      this.localVideo.srcObject = stream;
      this.localVideo.parentElement.classList.toggle('has-frames', !!stream);
      if (!stream) this.messages.show(this.noCamera, 'error');
      return stream;
    });
    return this.cameraOpening;
  }

  /** Offer a new peer connection for the session (first call, new peer after a drop, resume). */
  async negotiate(sessionId) {
    clearTimeout(this.renegotiateTimer);
    const stream = await this.ensureCamera();
    let sdp;
    try {
      sdp = await this.link.offer(sessionId, stream);
    } catch (e) {
      this.messages.show(`Could not start the video call: ${e.message} · 无法建立视频`, 'error');
      return;
    }
    if (sdp === null) return; // a newer negotiation took over
    if (hooks.sessionId !== sessionId || !this.wanted()) {
      this.link.close(); // the call ended while we gathered candidates
      return;
    }
    // If the socket is down, the `welcome` after reconnecting negotiates again.
    if (this.send({type: 'offer', session_id: sessionId, sdp})) this.link.offerSent();
  }

  onConnectionState(state) {
    if (state === 'connected') this.maybeInCall();
    if (state === 'failed' && this.repairable()) {
      // Our own media path broke: rebuild it with a new offer, backing off.
      const delay = Math.min(8000, 1000 * 2 ** this.renegotiateAttempts++);
      clearTimeout(this.renegotiateTimer);
      this.renegotiateTimer = setTimeout(() => this.negotiate(hooks.sessionId), delay);
    }
  }

  /** A (new) other side for the session: `in_call` waits until its media is up. */
  expectPeer() {
    this.peerUp = false;
    this.framesAtPair = hooks.remoteFrames;
  }

  /** connecting → in_call once our media is up and the other side's is too (said or seen). */
  maybeInCall() {
    if (hooks.state !== 'connecting' || this.link.connectionState !== 'connected') return;
    if (this.peerUp || hooks.remoteFrames > this.framesAtPair) {
      this.setState('in_call');
      this.renegotiateAttempts = 0;
    }
  }

  /** The signaling messages about media: call for every message, before the page's own handling. */
  handle(msg) {
    switch (msg.type) {
      case 'welcome':
        this.link.resetSignaling(); // a new socket: answers to earlier offers will not come
        break;
      case 'answer':
        this.link.answer(msg.session_id, msg.sdp).catch((e) => {
          this.messages.show(`The video answer was refused: ${e.message}`, 'error');
        });
        break;
      case 'peer':
        if (msg.state === 'connected') {
          this.peerUp = true;
          if (hooks.state === this.reconnecting) this.setState('connecting');
          this.maybeInCall();
        } else if (msg.state === 'reconnecting') {
          this.peerUp = false;
          if (this.paired.has(hooks.state)) this.setState(this.reconnecting);
        } else if (msg.state === 'left') {
          this.peerUp = false;
        }
        break;
      case 'error':
        if (msg.code === 'bad_sdp' || msg.code === 'media_error') this.link.offerRefused();
        if (msg.code === 'rate_limited' && msg.refused === 'offer') {
          // too many offers at once: this one will not be answered; offer again when allowed
          this.link.offerRefused();
          clearTimeout(this.renegotiateTimer);
          const sessionId = hooks.sessionId;
          this.renegotiateTimer = setTimeout(() => {
            if (hooks.sessionId === sessionId && this.wanted()) this.negotiate(sessionId);
          }, 1000 * Math.max(0.5, Number(msg.retry_after_s) || 1));
        }
        break;
      default:
        break;
    }
  }

  /** Drop the peer connection (and any pending rebuild); the camera stays on. */
  hangUp() {
    clearTimeout(this.renegotiateTimer);
    this.link.close();
  }

  /** Drop the peer connection and turn the camera off. */
  stop() {
    this.hangUp();
    stopCamera(this.camera);
    this.camera = null;
    this.localVideo.srcObject = null;
    this.localVideo.parentElement.classList.remove('has-frames');
  }
}
