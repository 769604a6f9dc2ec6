import fs from 'node:fs';
import path from 'node:path';

/** The folder holding Smelter's package.json, whether running from sources (tsx) or from dist/. */
export const packageRoot: string = (() => {
  let dir = __dirname;
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        if ((JSON.parse(fs.readFileSync(pj, 'utf8')) as { name?: string }).name === 'smelter') return dir;
      } catch {
        /* keep walking */
      }
    }
    const up = path.dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
})();
