// The media side of a call: the camera, one RTCPeerConnection to the server per session, the
// remote <video> and a count of its rendered frames. Both peers of a call terminate at the
// server, so this page always talks to the server, never directly to the other person.

import {hooks} from './common.js';

const GATHER_CAP_MS = 3000; // the server does not trickle ICE; never wait longer than this
const STALL_MS = 1500; // no remote frame for this long shows the placeholder again

export const CAMERA = {
  audio: true,
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
