// Results gallery of the SearchBox: thumbnails, a score bar per descriptor, predicted labels.
// Clicking a thumbnail sends {path, n} back to Python in the "clicked" trait ("more like this").

function bar(name, value) {
  const row = document.createElement("div");
  row.className = "cnnw-gallery-bar";
  row.title = `${name}: ${value.toFixed(3)}`;
  const label = document.createElement("span");
  label.className = "cnnw-gallery-bar-name";
  label.textContent = name;
  const track = document.createElement("span");
  track.className = "cnnw-gallery-bar-track";
  const fill = document.createElement("span");
  fill.className = "cnnw-gallery-bar-fill";
  fill.style.width = `${Math.max(0, Math.min(1, value)) * 100}%`;
  track.appendChild(fill);
  row.append(label, track);
  return row;
}

function render({ model, el }) {
  el.classList.add("cnnw-gallery");
  const draw = () => {
    const items = model.get("items") || [];
    el.replaceChildren();
    if (items.length === 0) {
      const empty = document.createElement("div");
      empty.className = "cnnw-gallery-empty";
      empty.textContent = model.get("empty_text") || "no results";
      el.appendChild(empty);
      return;
    }
    items.forEach((item, rank) => {
      const card = document.createElement("div");
      card.className = "cnnw-gallery-item";
      card.dataset.path = item.path;
      card.dataset.rank = String(rank + 1);
      card.title = `${item.path}\nclick for more like this`;
      const img = document.createElement("img");
      img.src = item.thumb;
      img.alt = `result ${rank + 1}: ${item.name}`;
      const name = document.createElement("div");
      name.className = "cnnw-gallery-name";
      name.textContent = `${rank + 1}. ${item.name}`;
      const score = document.createElement("div");
      score.className = "cnnw-gallery-score";
      score.textContent = `score ${item.score.toFixed(3)}`;
      card.append(img, name, score);
      for (const [key, value] of Object.entries(item.scores || {})) card.appendChild(bar(key, value));
      const tags = document.createElement("div");
      tags.className = "cnnw-gallery-tags";
      tags.textContent = (item.tags || []).join(" · ");
      card.appendChild(tags);
      card.tabIndex = 0; // Tab reaches each result, Enter or Space asks for more like it
      card.setAttribute("role", "button");
      card.setAttribute("aria-label", `${rank + 1}. ${item.name}, score ${item.score.toFixed(3)}: more like this`);
      const more = () => {
        model.set("clicked", { path: item.path, n: (model.get("clicked")?.n || 0) + 1 });
        model.save_changes();
      };
      card.addEventListener("click", more);
      card.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") {
          ev.preventDefault();
          more();
        }
      });
      el.appendChild(card);
    });
  };
  model.on("change:items", draw);
  draw();
  return () => model.off("change:items", draw);
}

export default { render };
