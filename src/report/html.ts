/** HTML building blocks of the report: one file, inline CSS and SVG, nothing fetched at view time. */

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * A plot: heading, one paragraph on how to read it, the SVG rendered at build time, and the name
 * of its Vega-Lite spec file when one is written beside the page.
 */
export function figure(id: string, heading: string, howToRead: string, svg: string, specFile?: string): string {
  const file = specFile ? `\n<p class="spec">Vega-Lite spec with its data: <code>${escapeHtml(specFile)}</code></p>` : '';
  return `<figure id="${id}">
<figcaption><h2>${escapeHtml(heading)}</h2><p>${escapeHtml(howToRead)}</p></figcaption>
${svg}${file}
</figure>`;
}

/** Said under the header when the plots' specs are written beside the page: how to re-plot them. */
export function specsNote(pattern: string): string {
  return `<p class="specs">Each plot's Vega-Lite spec, its data included, is in a file beside this page (<code>${escapeHtml(pattern)}</code>, named under each plot).`
    + ' To re-plot one in Python: <code>alt.Chart.from_dict(json.load(open(FILE)))</code> with Altair, or open it in the Vega editor.</p>';
}

/** Said instead of a plot that the data cannot give. */
export function note(id: string, heading: string, text: string): string {
  return `<section class="note" id="${id}"><h2>${escapeHtml(heading)}</h2><p>${escapeHtml(text)}</p></section>`;
}

/** A table whose first `labels` columns name the row (left-aligned); the rest are figures. */
export function table(
  id: string, heading: string, howToRead: string, headers: readonly string[], rows: readonly (readonly string[])[], labels = 1,
): string {
  const cell = (tag: string, text: string, i: number) => `<${tag}${i < labels ? ' class="label"' : ''}>${escapeHtml(text)}</${tag}>`;
  const head = headers.map((h, i) => cell('th', h, i)).join('');
  const body = rows.map((r) => `<tr>${r.map((c, i) => cell('td', c, i)).join('')}</tr>`).join('\n');
  return `<section id="${id}-section"><h2>${escapeHtml(heading)}</h2><p>${escapeHtml(howToRead)}</p>
<div class="scroll"><table id="${id}"><thead><tr>${head}</tr></thead>
<tbody>
${body}
</tbody></table></div></section>`;
}

const STYLE = `
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 0; background: #f6f6f4; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 1.6em; margin: 0 0 8px; }
h2 { font-size: 1.2em; margin: 0 0 4px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0 0; font-size: 0.92em; }
dl.meta dt { color: #666; }
dl.meta dd { margin: 0; font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
figure, section { margin: 32px 0 0; }
figcaption p, section > p { margin: 0 0 8px; color: #444; max-width: 75ch; }
figure svg { max-width: 100%; height: auto; display: block; }
p.spec, p.specs { font-size: 0.85em; color: #555; }
code { font-family: ui-monospace, monospace; font-size: 0.95em; overflow-wrap: anywhere; }
.note p { background: #fff8e1; border-left: 4px solid #f0b400; padding: 8px 12px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85em; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: right; white-space: nowrap; }
.label, #failed td:last-child { text-align: left; white-space: normal; }
thead th { border-bottom: 2px solid #999; vertical-align: bottom; }
`;

/** The whole page. */
export function page(title: string, meta: readonly [string, string][], sections: readonly string[], intro = ''): string {
  const dl = meta.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<header><h1>${escapeHtml(title)}</h1><dl class="meta">${dl}</dl>${intro}</header>
${sections.join('\n')}
</main>
</body>
</html>
`;
}
