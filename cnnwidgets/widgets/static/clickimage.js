// An image that reports clicks (anywidget ES module).
// Model traits: value (image bytes), format ("png" or "jpeg"), width (CSS pixels), click (set here: [row_fraction, col_fraction, counter]).

function render({ model, el }) {
  const img = document.createElement("img");
  img.className = "cnnw-clickimage-img";
  img.style.cursor = "crosshair";
  img.style.display = "block";
  img.style.maxWidth = "100%"; // shrinks with its panel in a narrow row, keeping the aspect ratio
  img.style.height = "auto";
  img.draggable = false;
  el.classList.add("cnnw-clickimage");
  el.appendChild(img);
  let url = null;
  let counter = 0;

  function show() {
    img.style.width = model.get("width") + "px";
    const data = model.get("value");
    if (!data || data.byteLength === 0) return;
    const next = URL.createObjectURL(new Blob([data], { type: "image/" + (model.get("format") || "png") }));
    img.src = next;
    if (url) URL.revokeObjectURL(url);
    url = next;
  }

  const click = (ev) => {
    const r = img.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) return;
    counter += 1;
    const fy = Math.min(1, Math.max(0, (ev.clientY - r.top) / r.height));
    const fx = Math.min(1, Math.max(0, (ev.clientX - r.left) / r.width));
    model.set("click", [fy, fx, counter]);
    model.save_changes();
  };
  img.addEventListener("click", click);
  model.on("change:value", show);
  model.on("change:width", show);
  show();
  return () => {
    img.removeEventListener("click", click);
    if (url) URL.revokeObjectURL(url);
  };
}

export default { render };
