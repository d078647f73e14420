// A signature pad: black ink on a white canvas, drawn with a mouse, a pen or a finger (pointer
// events cover all three), read back as a small PNG data URL.

const INK = '#111';
const PAPER = '#fff';
const LINE_WIDTH = 2.6; // in canvas pixels
const MIN_INK_PX = 30; // this much stroke length before the pad counts as signed

export class SignaturePad {
  /** canvas: its width and height attributes are the image's size; onChange() after each stroke. */
  constructor(canvas, onChange = () => {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.onChange = onChange;
    this.last = null; // the previous point of the stroke being drawn, in canvas pixels
    this.ink = 0; // length of all strokes so far, in canvas pixels
    canvas.style.touchAction = 'none'; // a finger draws instead of scrolling the page
    canvas.addEventListener('pointerdown', (ev) => this.down(ev));
    canvas.addEventListener('pointermove', (ev) => this.move(ev));
    for (const type of ['pointerup', 'pointercancel', 'lostpointercapture']) {
      canvas.addEventListener(type, () => this.up());
    }
    this.clear();
  }

  get empty() {
    return this.ink < MIN_INK_PX;
  }

  clear() {
    const {ctx, canvas} = this;
    ctx.fillStyle = PAPER;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.strokeStyle = INK;
    ctx.fillStyle = INK;
    ctx.lineWidth = LINE_WIDTH;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    this.ink = 0;
    this.last = null;
    this.onChange();
  }

  /** The signature as `data:image/png;base64,...`. */
  toDataURL() {
    return this.canvas.toDataURL('image/png');
  }

  /** Where the pointer is, in canvas pixels (the canvas may be shown smaller or larger). */
  point(ev) {
    const box = this.canvas.getBoundingClientRect();
    return {
      x: ((ev.clientX - box.left) * this.canvas.width) / box.width,
      y: ((ev.clientY - box.top) * this.canvas.height) / box.height,
    };
  }

  down(ev) {
    if (ev.button !== 0) return;
    ev.preventDefault();
    this.canvas.setPointerCapture?.(ev.pointerId);
    this.last = this.point(ev);
    const {ctx} = this;
    ctx.beginPath(); // a dot, for a tap that never moves
    ctx.arc(this.last.x, this.last.y, LINE_WIDTH / 2, 0, Math.PI * 2);
    ctx.fill();
  }

  move(ev) {
    if (!this.last) return;
    ev.preventDefault();
    const p = this.point(ev);
    const {ctx} = this;
    ctx.beginPath();
    ctx.moveTo(this.last.x, this.last.y);
    ctx.lineTo(p.x, p.y);
    ctx.stroke();
    this.ink += Math.hypot(p.x - this.last.x, p.y - this.last.y);
    this.last = p;
  }

  up() {
    if (!this.last) return;
    this.last = null;
    this.onChange();
  }
}
