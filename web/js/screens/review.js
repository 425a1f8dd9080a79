// The reviewer console: the queue, one version (its findings, the manifest's diff against the
// released version with new scopes highlighted, its history), claim, approve or reject with a
// reason, release to a percentage, roll back, suspend or lift a suspension; users' reports; and,
// for admins, the audit log of an app.

import { h, mount, field, busy, toast } from '../dom.js';
import { get, post, put, del, seg } from '../api.js';
import { t, dateTime } from '../i18n.js';
import { state } from '../store.js';
import { statusTag, findingsList } from './developer.js';
import { scopeName } from './sheets.js';

export function reviewScreen(app, version) {
  return app && version ? versionPage(app, version) : queuePage();
}

function queuePage() {
  const queue = h('div', { 'aria-live': 'polite' }, h('p', { class: 'loading' }, t('common.loading')));
  const reports = h('div', {});
  const audit = h('div', {});
  (async () => {
    try {
      const list = await get('/api/v1/review/queue');
      mount(queue, list.length ? h('ul', { class: 'plain queue' }, list.map((v) => h('li', {},
        h('a', { href: `#/review/${encodeURIComponent(v.app)}/${encodeURIComponent(v.version)}`, class: 'queue-item' },
          h('strong', {}, `${v.app} ${v.version}`), ' ', statusTag(v.status),
          v.reviewer ? h('span', { class: 'muted small' }, ` · ${t('review.claimed_by', { who: v.reviewer })}`) : null,
          h('span', { class: 'muted small' }, ` · ${dateTime(v.created_at_ms)}`),
          v.notes ? h('p', { class: 'small' }, v.notes) : null))))
        : h('p', { class: 'muted' }, t('review.empty')));
    } catch (err) { mount(queue, h('p', { class: 'error' }, err.message)); }
    try {
      const list = await get('/api/v1/review/reports');
      mount(reports, list.length ? h('ul', { class: 'plain' }, list.map((r) => h('li', { class: 'report' },
        h('strong', {}, r.report.app), ': ', r.report.reason, h('span', { class: 'muted small' }, ` · ${dateTime(r.report.created_at_ms)}`),
        h('div', { class: 'row' }, h('button', { class: 'danger small', onclick: () => suspend(r.report.app) }, t('review.suspend'))))))
        : h('p', { class: 'muted' }, t('review.no_reports')));
    } catch (err) { mount(reports, h('p', { class: 'error' }, err.message)); }
  })();

  const subject = h('input', { name: 'subject', autocapitalize: 'none' });
  const auditForm = h('form', { class: 'row', onsubmit: async (e) => {
    e.preventDefault();
    try {
      const list = await get(`/api/v1/admin/audit?subject=${encodeURIComponent(subject.value.trim())}`);
      mount(audit, auditTable(list));
    } catch (err) { mount(audit, h('p', { class: 'error' }, err.message)); }
  } }, field(t('review.audit_subject'), subject), h('button', { type: 'submit' }, t('review.show')));

  return {
    el: h('div', { class: 'page' },
      h('header', { class: 'pane-head' }, h('h1', {}, t('review.title'))),
      h('section', { class: 'card-section', 'aria-label': t('review.queue') }, h('h2', {}, t('review.queue')), queue),
      h('section', { class: 'card-section', 'aria-label': t('review.reports') }, h('h2', {}, t('review.reports')), reports),
      state.me.role === 'admin' ? h('section', { class: 'card-section', 'aria-label': t('review.audit') }, h('h2', {}, t('review.audit')), auditForm, audit) : null),
  };
}

function auditTable(list) {
  return list.length ? h('table', { class: 'table' },
    h('thead', {}, h('tr', {}, [t('review.when'), t('review.actor'), t('review.action'), t('review.detail')].map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, list.map((a) => h('tr', {}, h('td', {}, dateTime(a.created_at_ms)), h('td', {}, a.actor), h('td', {}, a.action), h('td', {}, a.detail)))))
    : h('p', { class: 'muted' }, t('review.no_audit'));
}

async function suspend(app) {
  const reason = prompt(t('review.suspend_reason'));
  if (!reason) return;
  try {
    await put(`/api/v1/apps/${seg(app)}/suspension`, { reason });
    toast(t('review.suspended', { app }));
  } catch (err) { toast(err.message, 'error'); }
}

/** The scopes a manifest declares (`[[scopes]]` tables' `name`). */
function scopesOf(manifest) {
  const out = [];
  let inScope = false;
  for (const line of (manifest || '').split('\n')) {
    const l = line.trim();
    if (l.startsWith('[')) inScope = l === '[[scopes]]';
    const m = /^name\s*=\s*"([^"]*)"/.exec(l);
    if (inScope && m) out.push(m[1]);
  }
  return out;
}

/** A line diff (longest common subsequence): [{op: ' ' | '+' | '-', line}]. */
function diff(a, b) {
  const x = a.split('\n');
  const y = b.split('\n');
  const n = x.length;
  const m = y.length;
  const L = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const out = [];
  let i = 0; let j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) { out.push({ op: ' ', line: x[i] }); i++; j++; } else if (L[i + 1][j] >= L[i][j + 1]) { out.push({ op: '-', line: x[i++] }); } else { out.push({ op: '+', line: y[j++] }); }
  }
  while (i < n) out.push({ op: '-', line: x[i++] });
  while (j < m) out.push({ op: '+', line: y[j++] });
  return out;
}

function versionPage(app, version) {
  const body = h('div', { 'aria-live': 'polite' }, h('p', { class: 'loading' }, t('common.loading')));
  const base = `/api/v1/review/${seg(app)}/${seg(version)}`;

  async function load() {
    let view;
    try { view = await get(base); } catch (err) { mount(body, h('p', { class: 'error' }, err.message)); return; }
    const v = view.version;
    const rel = view.release || {};
    let old = '';
    if (rel.stable && rel.stable !== version) {
      try { old = (await get(`/api/v1/review/${seg(app)}/${seg(rel.stable)}`)).version.manifest; } catch { old = ''; }
    }
    const oldScopes = scopesOf(old);
    const newScopes = scopesOf(v.manifest).filter((s) => !oldScopes.includes(s));
    const reason = h('textarea', { rows: 2, name: 'reason' });
    const percent = h('input', { type: 'number', min: 1, max: 100, value: rel.candidate === version ? rel.percent : 100, name: 'percent' });
    const act = (label, cls, f) => {
      const b = h('button', { class: cls, type: 'button' }, label);
      b.addEventListener('click', () => busy(b, async () => {
        try { await f(); toast(t('review.done')); await load(); } catch (err) { toast(err.message, 'error'); }
      }));
      return b;
    };
    const mine = v.reviewer && v.reviewer === state.me.username;
    mount(body,
      h('p', {}, statusTag(v.status),
        v.reviewer ? h('span', { class: 'muted' }, ` ${t('review.claimed_by', { who: v.reviewer })}`) : null,
        h('span', { class: 'muted small' }, ` · ${t('dev.release', { stable: rel.stable || '—' })}`,
          rel.candidate ? ` · ${t('dev.candidate', { version: rel.candidate, percent: rel.percent })}` : '')),
      v.notes ? h('p', {}, h('strong', {}, t('dev.notes')), ': ', v.notes) : null,
      v.reason ? h('p', { class: 'reason' }, t('dev.reason'), ': ', v.reason) : null,
      h('section', { 'aria-label': t('dev.findings') }, h('h2', {}, t('dev.findings')), findingsList(v.findings)),
      h('section', { 'aria-label': t('review.scopes') }, h('h2', {}, t('review.scopes')),
        h('ul', { class: 'plain chips' }, scopesOf(v.manifest).map((s) => h('li', { class: `chip ${newScopes.includes(s) ? 'new-scope' : ''}` },
          scopeName(s), newScopes.includes(s) ? h('span', { class: 'tag warn' }, t('review.new_scope')) : null)))),
      h('section', { 'aria-label': t('review.manifest') }, h('h2', {}, old ? t('review.diff', { stable: rel.stable }) : t('review.manifest')),
        h('pre', { class: 'diff mono' }, (old ? diff(old, v.manifest) : v.manifest.split('\n').map((line) => ({ op: ' ', line })))
          .map((d) => h('span', { class: `diff-line ${d.op === '+' ? 'add' : d.op === '-' ? 'del' : ''}` }, `${d.op} ${d.line}\n`)))),
      h('section', { class: 'actions', 'aria-label': t('review.decide') }, h('h2', {}, t('review.decide')),
        ['submitted', 'in_review'].includes(v.status) ? h('div', { class: 'row wrap' },
          v.status === 'submitted' || !mine ? act(t('review.claim'), '', () => post(`${base}/claim`)) : null,
          act(t('review.approve'), 'primary', () => post(base, { decision: 'approve' })),
          act(t('review.reject'), 'danger', () => {
            if (!reason.value.trim()) throw new Error(t('review.need_reason'));
            return post(base, { decision: 'reject', reason: reason.value.trim() });
          })) : null,
        ['submitted', 'in_review'].includes(v.status) ? field(t('review.reason'), reason) : null,
        v.status === 'approved' ? h('div', { class: 'row wrap' }, field(t('review.percent'), percent),
          act(t('review.release'), 'primary', () => put(`/api/v1/apps/${seg(app)}/release`, { version, percent: Number(percent.value) }))) : null,
        h('div', { class: 'row wrap' },
          act(t('review.rollback'), '', () => post(`/api/v1/apps/${seg(app)}/rollback`)),
          act(t('review.suspend'), 'danger', async () => {
            const r = prompt(t('review.suspend_reason'));
            if (r) await put(`/api/v1/apps/${seg(app)}/suspension`, { reason: r });
          }),
          act(t('review.unsuspend'), '', () => del(`/api/v1/apps/${seg(app)}/suspension`)))),
      h('section', { 'aria-label': t('review.history') }, h('h2', {}, t('review.history')), auditTable(view.history || [])));
  }
  load();
  return {
    el: h('div', { class: 'page' },
      h('header', { class: 'pane-head' }, h('a', { href: '#/review', class: 'back', 'aria-label': t('common.back') }, '‹'), h('h1', {}, `${app} ${version}`)),
      body),
  };
}
