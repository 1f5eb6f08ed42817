// Histogram with draggable threshold lines (anywidget ES module).
// Model traits: counts (list of numbers), lo / hi (value range of the bins' outer edges),
// lines (threshold values drawn in red), log_scale, width / height (CSS pixels),
// picked (set here: the value under the pointer on click or drag).

function render({ model, el }) {
  const PAD = 6;
  const canvas = document.createElement("canvas");
  canvas.className = "cnnw-histogram-canvas";
  canvas.style.cursor = "ew-resize";
  canvas.style.touchAction = "none";
  canvas.tabIndex = 0; // the arrow keys move the threshold line
  canvas.setAttribute("role", "slider");
  canvas.setAttribute("aria-label", "histogram: threshold (drag, or arrow keys)");
  el.classList.add("cnnw-histogram");
  el.appendChild(canvas);
  let dragging = false;
  let pending = null;

  // JupyterLab's theme colours (light or dark), with fallbacks outside JupyterLab
  function colour(name, fallback) {
    return getComputedStyle(el).getPropertyValue(name).trim() || fallback;
  }

  function fmt(v) {
    const span = Math.abs(model.get("hi") - model.get("lo"));
    return span > 20 ? v.toFixed(0) : v.toPrecision(3);
  }

  function draw() {
    const w = model.get("width");
    const h = model.get("height");
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
    canvas.style.width = w + "px";
    canvas.style.height = h + "px";
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.fillStyle = colour("--jp-layout-color1", "#fafafa");
    ctx.fillRect(0, 0, w, h);
    const counts = model.get("counts") || [];
    const useLog = model.get("log_scale");
    const vals = counts.map((c) => (useLog ? Math.log1p(c) : c));
    const top = vals.reduce((a, b) => Math.max(a, b), 0) || 1;
    const bw = (w - 2 * PAD) / Math.max(vals.length, 1);
    ctx.fillStyle = colour("--jp-ui-font-color2", "#607d8b");
    for (let i = 0; i < vals.length; i++) {
      const bh = ((h - 2 * PAD - 14) * vals[i]) / top;
      ctx.fillRect(PAD + i * bw, h - PAD - bh, Math.max(bw, 1), bh);
    }
    const lo = model.get("lo");
    const hi = model.get("hi");
    const mark = colour("--jp-error-color1", "#d32f2f");
    ctx.strokeStyle = mark;
    ctx.fillStyle = mark;
    ctx.lineWidth = 2;
    ctx.font = "11px sans-serif";
    const shown = model.get("lines") || [];
    if (shown.length) canvas.setAttribute("aria-valuenow", fmt(shown[0]));
    for (const t of shown) {
      const x = PAD + ((w - 2 * PAD) * (t - lo)) / (hi - lo || 1);
      ctx.beginPath();
      ctx.moveTo(x, PAD);
      ctx.lineTo(x, h - PAD);
      ctx.stroke();
      const label = fmt(t);
      const tw = ctx.measureText(label).width;
      ctx.fillText(label, x + 4 + tw > w ? x - 4 - tw : x + 4, 12);
    }
  }

  function valueAt(ev) {
    const r = canvas.getBoundingClientRect();
    const sx = r.width / model.get("width");
    const f = (ev.clientX - r.left - PAD * sx) / (r.width - 2 * PAD * sx);
    const lo = model.get("lo");
    const hi = model.get("hi");
    return lo + Math.min(1, Math.max(0, f)) * (hi - lo);
  }

  function send() {
    if (pending === null) return;
    model.set("picked", pending);
    model.set("lines", [pending]);
    model.save_changes();
    pending = null;
    draw();
  }

  function pick(ev) {
    const first = pending === null;
    pending = valueAt(ev);
    if (first) requestAnimationFrame(send); // at most one message per frame while dragging
  }

  const down = (ev) => {
    dragging = true;
    canvas.setPointerCapture(ev.pointerId);
    pick(ev);
  };
  const move = (ev) => {
    if (dragging) pick(ev);
  };
  const up = () => {
    dragging = false;
  };
  const key = (ev) => {
    if (!["ArrowLeft", "ArrowRight", "ArrowDown", "ArrowUp"].includes(ev.key)) return;
    ev.preventDefault();
    const lo = model.get("lo");
    const hi = model.get("hi");
    const step = (hi - lo) / Math.max((model.get("counts") || []).length, 1);
    const now = (model.get("lines") || [])[0] ?? (lo + hi) / 2;
    const sign = ev.key === "ArrowLeft" || ev.key === "ArrowDown" ? -1 : 1;
    pending = Math.min(hi, Math.max(lo, now + sign * step));
    send();
  };
  canvas.addEventListener("keydown", key);
  canvas.addEventListener("pointerdown", down);
  canvas.addEventListener("pointermove", move);
  canvas.addEventListener("pointerup", up);
  canvas.addEventListener("pointercancel", up);
  for (const name of ["counts", "lo", "hi", "lines", "log_scale", "width", "height"]) {
    model.on(`change:${name}`, draw);
  }
  // redraw when JupyterLab switches between light and dark themes
  const theme = new MutationObserver(draw);
  theme.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-name", "data-jp-theme-light"] });
  // and once the canvas is on the page, where the theme's variables can be read
  const visible = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && draw());
  visible.observe(canvas);
  draw();
  return () => {
    theme.disconnect();
    visible.disconnect();
    canvas.removeEventListener("keydown", key);
    canvas.removeEventListener("pointerdown", down);
    canvas.removeEventListener("pointermove", move);
    canvas.removeEventListener("pointerup", up);
    canvas.removeEventListener("pointercancel", up);
  };
}

export default { render };
