// Remove build outputs: lib/, the TypeScript build info and the built extension in the Python package.
const fs = require('fs');
const path = require('path');
for (const p of ['lib', 'tsconfig.tsbuildinfo', path.join('..', 'cnnwidgets', 'labextension')]) {
  fs.rmSync(path.resolve(__dirname, '..', p), { recursive: true, force: true });
}
