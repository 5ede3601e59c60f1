// Painting an inpainting mask over an image. Strokes are drawn fully opaque on a canvas the size of the
// image (shown half-transparent by CSS); the exported mask is an opaque PNG of the same size whose
// painted pixels are transparent, the convention the sessions API expects ("transparent = repaint").

export class MaskPainter {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.brush = 12;
    this.enabled = false;
    this.painted = false;
    this.cursor = { x: 0, y: 0 };
    this.last = null;
    canvas.tabIndex = 0;
    canvas.addEventListener('pointerdown', (e) => this.#down(e));
    canvas.addEventListener('pointermove', (e) => this.#move(e));
    canvas.addEventListener('pointerup', () => (this.last = null));
    canvas.addEventListener('pointerleave', () => (this.last = null));
    canvas.addEventListener('keydown', (e) => this.#key(e));
  }

  // Matches the canvas to the image's pixel size and clears it.
  reset(width, height) {
    this.canvas.width = width;
    this.canvas.height = height;
    this.cursor = { x: width / 2, y: height / 2 };
    this.clear();
  }

  clear() {
    this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.painted = false;
  }

  setEnabled(on) {
    this.enabled = on;
    this.canvas.hidden = !on && !this.painted;
    this.canvas.classList.toggle('painting', on);
  }

  // Scale from CSS pixels to image pixels (the canvas is displayed at the image's displayed size).
  #point(e) {
    const r = this.canvas.getBoundingClientRect();
    return {
      x: ((e.clientX - r.left) / r.width) * this.canvas.width,
      y: ((e.clientY - r.top) / r.height) * this.canvas.height,
    };
  }

  #radius() {
    const r = this.canvas.getBoundingClientRect();
    // The brush size is in screen pixels so it feels the same at any zoom.
    return (this.brush / 2) * (r.width ? this.canvas.width / r.width : 1);
  }

  #stroke(from, to) {
    const ctx = this.ctx;
    ctx.fillStyle = ctx.strokeStyle = '#ff2a55';
    ctx.lineCap = 'round';
    ctx.lineWidth = this.#radius() * 2;
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
    ctx.beginPath();
    ctx.arc(to.x, to.y, this.#radius(), 0, Math.PI * 2);
    ctx.fill();
    this.painted = true;
  }

  #down(e) {
    if (!this.enabled) return;
    e.preventDefault();
    this.canvas.setPointerCapture?.(e.pointerId);
    const p = this.#point(e);
    this.#stroke(p, p);
    this.last = p;
  }

  #move(e) {
    if (!this.enabled || !this.last || !(e.buttons & 1)) return;
    const p = this.#point(e);
    this.#stroke(this.last, p);
    this.last = p;
  }

  #key(e) {
    if (!this.enabled) return;
    const step = Math.max(1, this.canvas.width / 32);
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[e.key]) {
      const [dx, dy] = moves[e.key];
      const from = { ...this.cursor };
      this.cursor.x = Math.min(this.canvas.width, Math.max(0, this.cursor.x + dx));
      this.cursor.y = Math.min(this.canvas.height, Math.max(0, this.cursor.y + dy));
      if (e.shiftKey) this.#stroke(from, this.cursor);  // Shift+arrows paint a line
      e.preventDefault();
    } else if (e.key === ' ') {
      this.#stroke(this.cursor, this.cursor);
      e.preventDefault();
    }
  }

  // data: URI of the mask PNG: opaque everywhere, transparent where painted.
  toDataUri() {
    const out = document.createElement('canvas');
    out.width = this.canvas.width;
    out.height = this.canvas.height;
    const ctx = out.getContext('2d');
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, out.width, out.height);
    ctx.globalCompositeOperation = 'destination-out';
    ctx.drawImage(this.canvas, 0, 0);
    return out.toDataURL('image/png');
  }
}
