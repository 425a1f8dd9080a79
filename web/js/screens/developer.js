// The developer console: my apps (those registered or opened in this browser), registering an
// app (its client secret shown once), and one app's page: upload a version (manifest and
// component), every version with its status, findings and rejection reason, per-version
// metrics, and the invocation log (outcome, duration, fuel, capability calls, log lines).

import { h, mount, field, busy, toast, dialog } from '../dom.js';
import { get, post, seg } from '../api.js';
import { t, dateTime } from '../i18n.js';
import { state } from '../store.js';

function known() {
  try { return JSON.parse(localStorage.getItem(`mh.apps.${state.me.username}`)) || []; } catch { return []; }
}

function remember(app) {
  const list = known().filter((a) => a !== app);
  list.unshift(app);
  localStorage.setItem(`mh.apps.${state.me.username}`, JSON.stringify(list.slice(0, 50)));
}

export function statusTag(status) {
  return h('span', { class: `status status-${status}` }, t(`status.${status}`));
}

export function findingsList(findings) {
  return h('ul', { class: 'findings' }, (findings || []).map((f) => h('li', { class: `finding ${f.result}` },
    h('span', { class: 'finding-check' }, f.check), ' ',
    h('span', { class: `tag ${f.result === 'changed' ? 'warn' : 'ok'}` }, t(`finding.${f.result}`)), ' ', f.message)));
}

export function developerScreen(app) {
  return app ? appPage(app) : appsPage();
}

function appsPage() {
  const id = h('input', { name: 'id', autocapitalize: 'none', placeholder: 'my-app', pattern: '[a-z0-9]+(-[a-z0-9]+)*' });
  const name = h('input', { name: 'name', placeholder: 'My App' });
  const register = h('button', { type: 'submit', class: 'primary' }, t('dev.register'));
  const openId = h('input', { name: 'open', autocapitalize: 'none', 'aria-label': t('dev.open_by_id') });
  const form = h('form', { onsubmit: (e) => {
    e.preventDefault();
    busy(register, async () => {
      try {
        const c = await post('/api/v1/apps', { id: id.value.trim(), name: name.value.trim() });
        remember(c.id);
        await dialog(t('dev.secret_title'), (close) => h('div', { class: 'sheet-body' },
          h('h2', {}, t('dev.secret_title')),
          h('p', {}, t('dev.secret_once')),
          h('dl', { class: 'facts' }, h('dt', {}, 'client_id'), h('dd', {}, h('code', {}, c.client_id)),
            h('dt', {}, 'client_secret'), h('dd', {}, h('code', { 'data-testid': 'client-secret' }, c.client_secret))),
          h('div', { class: 'row end' }, h('button', { class: 'primary', onclick: () => close() }, t('dev.secret_saved')))));
        location.hash = `#/dev/${encodeURIComponent(c.id)}`;
      } catch (err) { toast(err.message, 'error'); }
    });
  } }, field(t('dev.app_id'), id, t('dev.app_id_hint')), field(t('dev.app_name'), name), register);
  const apps = known();
  return {
    el: h('div', { class: 'page' },
      h('header', { class: 'pane-head' }, h('h1', {}, t('dev.title'))),
      h('section', { class: 'card-section', 'aria-label': t('dev.my_apps') }, h('h2', {}, t('dev.my_apps')),
        apps.length ? h('ul', { class: 'plain' }, apps.map((a) => h('li', {}, h('a', { href: `#/dev/${encodeURIComponent(a)}` }, a))))
          : h('p', { class: 'muted' }, t('dev.no_apps')),
        h('form', { class: 'row', onsubmit: (e) => { e.preventDefault(); if (openId.value.trim()) { remember(openId.value.trim()); location.hash = `#/dev/${encodeURIComponent(openId.value.trim())}`; } } },
          openId, h('button', { type: 'submit' }, t('dev.open')))),
      h('section', { class: 'card-section', 'aria-label': t('dev.register') }, h('h2', {}, t('dev.register')), form)),
  };
}

function readFile(file, asDataUrl) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result);
    r.onerror = () => reject(r.error);
    if (asDataUrl) r.readAsDataURL(file); else r.readAsText(file);
  });
}

function appPage(app) {
  remember(app);
  const versions = h('div', { 'aria-live': 'polite' }, h('p', { class: 'loading' }, t('common.loading')));
  const stats = h('div', {});
  const log = h('div', {});

  const manifestFile = h('input', { type: 'file', accept: '.toml,text/plain', name: 'manifest' });
  const manifest = h('textarea', { rows: 8, class: 'mono', name: 'manifest-text', spellcheck: 'false' });
  const wasm = h('input', { type: 'file', accept: '.wasm,application/wasm', name: 'component' });
  const notes = h('input', { name: 'notes' });
  const upload = h('button', { type: 'submit', class: 'primary' }, t('dev.upload'));
  const result = h('div', { 'aria-live': 'polite' });
  manifestFile.addEventListener('change', async () => {
    if (manifestFile.files[0]) manifest.value = await readFile(manifestFile.files[0], false);
  });
  const form = h('form', { onsubmit: (e) => {
    e.preventDefault();
    busy(upload, async () => {
      mount(result, h('p', { class: 'loading', role: 'status' }, t('dev.checking')));
      try {
        if (!wasm.files[0]) throw new Error(t('dev.need_wasm'));
        const url = await readFile(wasm.files[0], true);
        const component = String(url).split(',')[1] || '';
        const v = await post(`/api/v1/apps/${seg(app)}/versions`, { manifest: manifest.value, component, notes: notes.value });
        mount(result, h('div', { class: 'notice ok', role: 'status' },
          h('p', {}, t('dev.uploaded', { version: v.version }), ' ', statusTag(v.status)), findingsList(v.findings)));
        loadVersions();
      } catch (err) { mount(result, h('p', { class: 'error', role: 'alert' }, err.message)); }
    });
  } }, field(t('dev.manifest_file'), manifestFile), field(t('dev.manifest'), manifest), field(t('dev.component'), wasm),
  field(t('dev.notes'), notes), upload, result);

  async function loadVersions() {
    try {
      const v = await get(`/api/v1/apps/${seg(app)}/versions`);
      const rel = v.release || {};
      mount(versions,
        h('p', {}, t('dev.release', { stable: rel.stable || '—' }),
          rel.candidate ? ` · ${t('dev.candidate', { version: rel.candidate, percent: rel.percent })}` : '',
          v.suspended ? h('span', { class: 'tag danger' }, t('dev.suspended', { reason: v.suspended })) : null),
        v.versions.length ? h('ul', { class: 'plain versions' }, v.versions.map((x) => h('li', { class: 'version' },
          h('div', { class: 'row between' }, h('strong', {}, `v${x.version}`), statusTag(x.status)),
          h('p', { class: 'muted small' }, dateTime(x.created_at_ms), ' · ', `${Math.round(x.wasm_bytes / 1024)} KiB`, ' · ', h('code', {}, x.wasm_sha256.slice(0, 12))),
          x.reason ? h('p', { class: 'reason' }, t('dev.reason'), ': ', x.reason) : null,
          x.notes ? h('p', { class: 'small' }, t('dev.notes'), ': ', x.notes) : null,
          h('details', {}, h('summary', {}, t('dev.findings')), findingsList(x.findings)),
          ['submitted', 'in_review'].includes(x.status) ? h('button', { class: 'small', onclick: async () => {
            try { await post(`/api/v1/apps/${seg(app)}/versions/${seg(x.version)}/withdraw`); loadVersions(); } catch (err) { toast(err.message, 'error'); }
          } }, t('dev.withdraw')) : null)))
          : h('p', { class: 'muted' }, t('dev.no_versions')));
    } catch (err) { mount(versions, h('p', { class: 'error' }, err.message)); }
  }

  async function loadStats() {
    try {
      const s = await get(`/api/v1/apps/${seg(app)}/stats`);
      mount(stats, s.length ? h('table', { class: 'table' },
        h('thead', {}, h('tr', {}, [t('dev.version'), t('dev.invocations'), t('dev.errors'), 'p50', 'p99'].map((x) => h('th', { scope: 'col' }, x)))),
        h('tbody', {}, s.map((r) => h('tr', {}, h('td', {}, r.version), h('td', { class: 'num' }, r.invocations),
          h('td', { class: 'num' }, `${r.errors} (${(r.error_rate * 100).toFixed(1)}%)`),
          h('td', { class: 'num' }, `${(r.p50_us / 1000).toFixed(1)} ms`), h('td', { class: 'num' }, `${(r.p99_us / 1000).toFixed(1)} ms`)))))
        : h('p', { class: 'muted' }, t('dev.no_stats')));
    } catch (err) { mount(stats, h('p', { class: 'error' }, err.message)); }
  }

  async function loadLog() {
    try {
      const list = await get(`/api/v1/apps/${seg(app)}/invocations?limit=50`);
      mount(log, list.length ? h('ul', { class: 'plain invocations' }, list.map((r) => h('li', { class: `invocation ${r.outcome}` },
        h('div', { class: 'row between' }, h('span', {}, h('strong', {}, r.event_kind), ` · v${r.version}`),
          h('span', { class: `tag ${r.outcome === 'ok' ? 'ok' : 'danger'}` }, r.outcome)),
        h('p', { class: 'muted small' }, dateTime(r.created_at_ms), ' · ', `${(r.duration_us / 1000).toFixed(1)} ms`,
          ' · ', t('dev.fuel', { n: r.fuel.toLocaleString() }), r.queued_us ? ` · ${t('dev.queued', { ms: (r.queued_us / 1000).toFixed(1) })}` : ''),
        r.error_message ? h('p', { class: 'error small' }, `${r.error_kind || ''}: ${r.error_message}`) : null,
        h('details', {}, h('summary', {}, t('dev.calls_logs')),
          h('pre', { class: 'mono small' }, JSON.stringify({ calls: r.calls, logs: r.logs }, null, 2))))))
        : h('p', { class: 'muted' }, t('dev.no_log')));
    } catch (err) { mount(log, h('p', { class: 'error' }, err.message)); }
  }

  loadVersions(); loadStats(); loadLog();
  return {
    el: h('div', { class: 'page' },
      h('header', { class: 'pane-head' }, h('a', { href: '#/dev', class: 'back', 'aria-label': t('common.back') }, '‹'), h('h1', {}, app)),
      h('section', { class: 'card-section', 'aria-label': t('dev.upload') }, h('h2', {}, t('dev.upload')), form),
      h('section', { class: 'card-section', 'aria-label': t('dev.versions') }, h('h2', {}, t('dev.versions')), versions),
      h('section', { class: 'card-section', 'aria-label': t('dev.metrics') }, h('h2', {}, t('dev.metrics')), stats),
      h('section', { class: 'card-section', 'aria-label': t('dev.log') }, h('h2', {}, t('dev.log'),
        h('button', { class: 'small ghost', onclick: loadLog }, t('common.refresh'))), log)),
  };
}
