/* Smelter dashboard: renders the catalogue's panels with vega-embed (SVG) plus a table view of each
 * panel's rows. Filters live in the URL; data comes only from the fixed-query JSON API. */

'use strict';

const state = { catalogue: null, page: null, views: new Map(), version: null, answers: {} };
// For the browser tests and anyone poking at the page: each panel's rows and Vega view.
window.__dashboard = { panels: {}, loads: 0 };

const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
};

async function getJson(url) {
  const res = await fetch(url, { headers: { accept: 'application/json' } });
  const body = await res.json();
  if (!res.ok) throw new Error(body && body.error ? body.error.message : `HTTP ${res.status}`);
  return body;
}

/** Formats a value for the table view: the field's d3-style format for numbers. */
function formatValue(field, v) {
  if (v === null || v === undefined) return '–';
  if (field.type !== 'quantitative' || typeof v !== 'number') return String(v);
  const f = field.format || ',.2f';
  if (f.endsWith('%')) {
    const digits = Number((/\.(\d+)%/.exec(f) || [0, 0])[1]);
    return (
      (v * 100).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) +
      '%'
    );
  }
  if (f === ',d') return Math.round(v).toLocaleString('en-US');
  const digits = Number((/\.(\d+)f/.exec(f) || [0, 2])[1]);
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function tableView(panel, rows) {
  const problems = rows.some((r) => r._problem);
  const head = el('tr');
  if (problems) head.append(el('th', { text: 'Status' }));
  for (const f of panel.fields) head.append(el('th', { text: f.title, scope: 'col' }));
  const body = el('tbody');
  for (const r of rows) {
    const tr = el('tr', r._problem ? { class: 'problem' } : {});
    if (problems) tr.append(el('td', { text: r._problem ? `⚠ ${r._problem}` : 'ok' }));
    for (const f of panel.fields) {
      const v = r[f.name];
      tr.append(
        el('td', {
          class: f.type === 'quantitative' ? 'num' : undefined,
          text: formatValue(f, v),
          title: v == null ? '' : String(v),
        }),
      );
    }
    body.append(tr);
  }
  return el(
    'div',
    { class: 'table-wrap' },
    el('table', { 'data-panel': panel.id }, el('thead', {}, head), body),
  );
}

function filterQuery(panel) {
  const here = new URLSearchParams(location.search);
  const q = new URLSearchParams();
  for (const p of panel.params) if (here.get(p)) q.set(p, here.get(p));
  return q.toString();
}

async function renderPanel(panel, section) {
  const qs = filterQuery(panel);
  let answer;
  try {
    answer = await getJson(`/api/charts/${panel.id}${qs ? `?${qs}` : ''}`);
  } catch (e) {
    answer = { id: panel.id, rows: [], error: e.message };
  }
  state.answers[panel.id] = answer;
  const old = state.views.get(panel.id);
  if (old) {
    old.finalize();
    state.views.delete(panel.id);
  }
  const body = section.querySelector('.body');
  body.replaceChildren();
  const badge = section.querySelector('.badge');
  const problems = answer.rows.filter((r) => r._problem);
  section.classList.toggle('has-problem', problems.length > 0 || Boolean(answer.error));
  if (problems.length) {
    badge.hidden = false;
    badge.className = 'badge';
    badge.textContent = `⚠ ${problems[0]._problem} (${problems.length})`;
  } else if (panel.page === 'overview' && !answer.error && answer.rows.length) {
    badge.hidden = false;
    badge.className = 'badge ok';
    badge.textContent = '✓ ok';
  } else badge.hidden = true;
  const record = { rows: answer.rows, view: null, empty: answer.empty || null, error: answer.error || null };
  window.__dashboard.panels[panel.id] = record;
  if (answer.error) {
    body.append(
      el('p', { class: 'error', role: 'alert', text: `Could not load this panel: ${answer.error}` }),
    );
    return;
  }
  if (!answer.rows.length) {
    body.append(el('p', { class: 'empty', text: answer.empty || panel.empty }));
    return;
  }
  if (panel.spec) {
    const chart = el('div', { class: 'chart', 'data-panel': panel.id });
    body.append(chart);
    const spec = {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      ...panel.spec,
      data: { name: 'table' },
      datasets: { table: answer.rows },
      // Width follows the panel (measured once per render); heights in steps grow with the data.
      // (with 'pad', axes and legend come on top of the width: leave them room)
      width: Math.max(240, chart.clientWidth - (typeof panel.spec.height === 'number' ? 8 : 170)),
      autosize: { type: typeof panel.spec.height === 'number' ? 'fit-x' : 'pad', contains: 'padding' },
      config: { view: { stroke: null }, axis: { labelFontSize: 11 }, legend: { labelFontSize: 11 } },
    };
    const result = await vegaEmbed(chart, spec, { renderer: 'svg', actions: false });
    state.views.set(panel.id, result.view);
    record.view = result.view;
    body.append(
      el(
        'details',
        {},
        el('summary', { text: `Table view (${answer.rows.length} rows)` }),
        tableView(panel, answer.rows),
      ),
    );
  } else body.append(tableView(panel, answer.rows));
}

function renderFilters(page) {
  const form = document.getElementById('filters');
  form.replaceChildren();
  if (!page.filters.length) return;
  const here = new URLSearchParams(location.search);
  for (const f of page.filters) {
    const label =
      { from: 'From', to: 'To', region: 'Region', station: 'Station', isp: 'ISP' }[f.name] || f.name;
    const input = f.choice
      ? el('select', { name: f.name, id: `filter-${f.name}` }, el('option', { value: '', text: 'All' }))
      : el('input', { type: 'date', name: f.name, id: `filter-${f.name}`, value: here.get(f.name) || '' });
    form.append(el('label', { for: `filter-${f.name}` }, label, input));
  }
  form.append(el('button', { type: 'button', id: 'filter-reset', text: 'Reset' }));
  form.addEventListener('change', () => applyFilters());
  document.getElementById('filter-reset').addEventListener('click', () => {
    for (const i of form.querySelectorAll('input, select')) i.value = '';
    applyFilters();
  });
  getJson(`/api/filters/${page.id}`)
    .then((options) => {
      for (const [name, values] of Object.entries(options)) {
        const sel = document.getElementById(`filter-${name}`);
        if (!sel) continue;
        for (const v of values) sel.append(el('option', { value: v, text: v }));
        sel.value = here.get(name) || '';
      }
    })
    .catch(() => undefined);
}

function applyFilters() {
  const q = new URLSearchParams();
  for (const i of document.getElementById('filters').querySelectorAll('input, select'))
    if (i.value) q.set(i.name, i.value);
  const qs = q.toString();
  history.replaceState(null, '', `${location.pathname}${qs ? `?${qs}` : ''}`);
  loadPanels();
}

async function loadPanels() {
  document.body.dataset.state = 'loading';
  const sections = [...document.querySelectorAll('section.panel')];
  await Promise.all(
    sections.map((s) =>
      renderPanel(
        state.catalogue.panels.find((p) => p.id === s.dataset.panel),
        s,
      ),
    ),
  );
  window.__dashboard.loads++;
  document.getElementById('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
  document.body.dataset.state = 'ready';
}

async function pollForNewData() {
  try {
    if (state.page.refresh === 'timer') return void (await loadPanels());
    const { version } = await getJson(`/api/version/${state.page.id}`);
    if (state.version !== null && version !== state.version) await loadPanels();
    state.version = version;
  } catch {
    /* the next poll tries again */
  }
}

async function main() {
  state.catalogue = await getJson('/api/catalogue');
  const path = location.pathname.replace(/\/$/, '') || '/';
  const page = state.catalogue.pages.find((p) => p.path === path) || state.catalogue.pages[0];
  state.page = page;
  document.title = `${page.title} · Smelter`;
  document.getElementById('title').textContent = page.title;
  document.getElementById('description').textContent = page.description;
  const nav = document.getElementById('nav');
  for (const p of state.catalogue.pages)
    nav.append(
      el('a', { href: p.path, 'aria-current': p.id === page.id ? 'page' : undefined, text: p.title }),
    );
  renderFilters(page);
  const grid = document.getElementById('panels');
  for (const panel of state.catalogue.panels.filter((p) => p.page === page.id))
    grid.append(
      el(
        'section',
        { class: `panel${panel.spec ? '' : ' table-only'}`, 'data-panel': panel.id },
        el('h2', {}, panel.title, el('span', { class: 'badge', hidden: '' })),
        el('p', { class: 'desc', text: panel.description }),
        el('div', { class: 'body' }),
      ),
    );
  await loadPanels();
  if (page.refresh === 'versions') state.version = (await getJson(`/api/version/${page.id}`)).version;
  setInterval(pollForNewData, page.refresh === 'timer' ? 10000 : 5000);
}

main().catch((e) => {
  document.getElementById('title').textContent = 'The dashboard could not start';
  document.getElementById('description').textContent = e.message;
  document.body.dataset.state = 'error';
});
