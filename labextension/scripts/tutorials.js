// Bundle the tutorial notebooks (../notebooks/*.ipynb) into src/tutorials.json, so the launcher's tutorial
// cards can copy them into the user's folder without a kernel or a server extension.
const fs = require('fs');
const path = require('path');

const dir = path.resolve(__dirname, '..', '..', 'notebooks');
const out = path.resolve(__dirname, '..', 'src', 'tutorials.json');
const tutorials = [];
for (const name of fs.readdirSync(dir).sort()) {
  if (!name.endsWith('.ipynb')) continue;
  const nb = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8'));
  let title = name.replace(/^\d+_/, '').replace(/\.ipynb$/, '').replace(/_/g, ' ');
  for (const cell of nb.cells || []) {
    if (cell.cell_type !== 'markdown') continue;
    const src = Array.isArray(cell.source) ? cell.source.join('') : cell.source;
    const m = /^#\s+(.+)$/m.exec(src);
    if (m) {
      title = m[1].trim();
      break;
    }
  }
  for (const cell of nb.cells || []) {
    if (cell.cell_type === 'code') {
      cell.outputs = [];
      cell.execution_count = null;
    }
  }
  tutorials.push({ name, title, notebook: nb });
}
fs.writeFileSync(out, JSON.stringify(tutorials));
console.log(`tutorials.json: ${tutorials.length} notebooks`);
