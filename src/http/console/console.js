// hookauth admin console. Plain ES2020, no dependencies; served under a strict CSP
// (no inline script/style). Every value from the API is treated as hostile: it only ever
// reaches the DOM through textContent / createTextNode / setAttribute on safe attributes.
(() => {
  'use strict';

  const STORAGE_KEY = 'hookauth.console';
  const DEFAULT_TENANT = 'default';
  const HISTORY = 60; // chart samples kept
  const REFRESH_EVERY = 5; // hooks + failures reloaded every Nth poll
  const FAILURE_LIMIT = 50;
  const ERROR_DISPLAY_CHARS = 200;
  const REPLAY_RELOAD_MS = 1200;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const DASH = '–';

  const state = {
    session: null, // {kind: 'operator'|'admin', token, tenant}
    tenants: [],
    tenant: null, // selected tenant name
    generation: 0, // bumped on tenant switch / sign-out; stale answers are dropped
    controller: null, // AbortController of the current generation
    timer: null,
    pollCount: 0,
    interval: pollInterval(),
    hooks: null, // last GET {T}/hooks answer (array) or null while loading
    monitor: null, // last GET {T}/monitor answer
    samples: [], // [{lag, latency}]
    taken: 0, // samples taken since the tenant was selected (keeps growing past HISTORY)
    replayed: new Map(), // failure id -> attempts when replayed (per tenant)
    messageSource: null,
  };

  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- utilities

  function pollInterval() {
    const raw = new URLSearchParams(window.location.search).get('interval');
    const n = raw === null || raw.trim() === '' ? NaN : Number(raw);
    if (!Number.isFinite(n)) return 2000;
    return Math.min(60000, Math.max(200, Math.round(n)));
  }

  function el(tag, opts = {}, children = []) {
    const node = document.createElement(tag);
    if (opts.className) node.className = opts.className;
    if (opts.text !== undefined && opts.text !== null) node.textContent = String(opts.text);
    if (opts.title !== undefined && opts.title !== null) node.setAttribute('title', String(opts.title));
    if (opts.attrs) for (const [k, v] of Object.entries(opts.attrs)) node.setAttribute(k, String(v));
    for (const child of children) node.appendChild(child);
    return node;
  }

  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
  const str = (v) => (v === undefined || v === null ? '' : String(v));
  const fmtNum = (v) => (isNum(v) ? String(Math.round(v * 100) / 100) : DASH);
  const fmtInt = (v) => (isNum(v) ? String(Math.round(v)) : DASH);
  const list = (v) => (Array.isArray(v) ? v.map(str) : []);

  function fmtTime(ms) {
    if (!isNum(ms)) return DASH;
    const d = new Date(ms);
    return Number.isNaN(d.getTime()) ? DASH : d.toISOString();
  }

  function truncate(text, max) {
    return text.length > max ? text.slice(0, max) + '…' : text;
  }

  function isDefault(name) {
    return name === '' || name === DEFAULT_TENANT;
  }

  /** Management prefix {T} of a tenant. */
  function tenantPrefix(name) {
    return isDefault(name) ? '/api/v1' : '/t/' + encodeURIComponent(name) + '/api/v1';
  }

  function authPrefix(name) {
    return isDefault(name) ? '/api/v1/auth' : '/t/' + encodeURIComponent(name) + '/api/v1/auth';
  }

  // ---------------------------------------------------------------- messages

  function showMessage(text, kind = 'error', source = null) {
    const box = $('message');
    box.textContent = str(text);
    box.className = kind;
    state.messageSource = source;
  }

  function clearMessage(source = null) {
    if (source !== null && state.messageSource !== source) return;
    const box = $('message');
    box.textContent = '';
    box.className = '';
    state.messageSource = null;
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, message, code = null, silent = false) {
      super(message);
      this.status = status;
      this.code = code;
      this.silent = silent; // already handled (sign-out, abort): do not show
    }
  }

  function errorDetail(data, status) {
    const detail = data && typeof data === 'object' ? data.detail : undefined;
    if (typeof detail === 'string' && detail) return detail;
    if (Array.isArray(detail) && detail.length) {
      return detail
        .map((d) => {
          if (!d || typeof d !== 'object') return str(d);
          const loc = Array.isArray(d.loc) ? d.loc.map(str).join('.') : '';
          return (loc ? loc + ': ' : '') + str(d.msg);
        })
        .join('; ');
    }
    return 'Request failed (HTTP ' + status + ')';
  }

  async function readJson(res) {
    const text = await res.text();
    if (!text) return null;
    try {
      return JSON.parse(text);
    } catch (_) {
      return null;
    }
  }

  /**
   * One API call. opts: {token, json, signal, signingIn}. A 401 on a signed-in call signs
   * out. Resolves to {status, data}; rejects with ApiError.
   */
  async function api(method, path, opts = {}) {
    const headers = { Accept: 'application/json' };
    const token = opts.token !== undefined ? opts.token : state.session && state.session.token;
    if (token) headers.Authorization = 'Bearer ' + token;
    const init = { method, headers, credentials: 'omit', cache: 'no-store', redirect: 'error' };
    if (opts.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.json);
    }
    if (opts.signal) init.signal = opts.signal;
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      if (e && e.name === 'AbortError') throw new ApiError(0, 'aborted', null, true);
      throw new ApiError(0, 'Network error: the server could not be reached.');
    }
    const data = await readJson(res);
    if (res.status === 401 && !opts.signingIn) {
      signOut('Your session is no longer valid; please sign in again.');
      throw new ApiError(401, 'unauthorized', 'unauthorized', true);
    }
    if (!res.ok) {
      throw new ApiError(res.status, errorDetail(data, res.status), data && data.code);
    }
    return { status: res.status, data };
  }

  /** True when an answer for (gen, tenant) is still wanted. */
  function current(gen, tenant) {
    return state.session !== null && gen === state.generation && tenant === state.tenant;
  }

  // ---------------------------------------------------------------- session

  function saveSession(session) {
    state.session = session;
    try {
      sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
    } catch (_) {
      /* storage unavailable: the session lives in memory only */
    }
  }

  function loadSession() {
    try {
      const s = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || 'null');
      if (s && typeof s.token === 'string' && s.token && (s.kind === 'operator' || s.kind === 'admin')) {
        return { kind: s.kind, token: s.token, tenant: s.kind === 'admin' ? str(s.tenant) || DEFAULT_TENANT : null };
      }
    } catch (_) {
      /* ignore a corrupt entry */
    }
    return null;
  }

  function resetTenantState() {
    state.generation += 1;
    if (state.controller) state.controller.abort();
    state.controller = new AbortController();
    clearTimeout(state.timer);
    state.timer = null;
    state.pollCount = 0;
    state.hooks = null;
    state.monitor = null;
    state.samples = [];
    state.taken = 0;
    state.replayed = new Map();
  }

  function signOut(reason) {
    resetTenantState();
    state.session = null;
    state.tenant = null;
    state.tenants = [];
    try {
      sessionStorage.removeItem(STORAGE_KEY);
    } catch (_) {
      /* nothing to clear */
    }
    $('console').hidden = true;
    $('signin').hidden = false;
    $('tenant-list').replaceChildren();
    $('hooks-table').tBodies[0].replaceChildren();
    $('failures-table').tBodies[0].replaceChildren();
    $('whoami').textContent = '';
    $('operator-token').value = '';
    $('admin-password').value = '';
    resetMfaStep();
    if (reason) showMessage(reason, 'error', 'session');
    else clearMessage();
  }

  async function signInOperator(event) {
    event.preventDefault();
    const token = $('operator-token').value.trim();
    if (!token) return showMessage('Enter the operator token.');
    if (!/^[\x21-\x7e]+$/.test(token)) return showMessage('The token contains characters a bearer token cannot have.');
    const button = $('signin-operator');
    button.disabled = true;
    try {
      const { data } = await api('GET', '/api/v1/tenants', { token, signingIn: true });
      saveSession({ kind: 'operator', token, tenant: null });
      $('operator-token').value = '';
      clearMessage();
      enterConsole(tenantIds(data));
    } catch (e) {
      const denied = e.status === 401 || e.status === 403;
      showMessage(denied ? 'Operator token rejected (' + e.message + ').' : e.message);
    } finally {
      button.disabled = false;
    }
  }

  /** The mfa_token of a password step waiting for its code (kept in memory only). */
  let pendingMfa = null;

  function resetMfaStep() {
    pendingMfa = null;
    $('admin-mfa').hidden = true;
    $('admin-mfa-code').value = '';
  }

  async function signInAdmin(event) {
    event.preventDefault();
    const tenant = $('tenant-name').value.trim().toLowerCase();
    const email = $('admin-email').value.trim();
    const password = $('admin-password').value;
    const code = $('admin-mfa-code').value.trim();
    if (!pendingMfa && (!email || !password)) return showMessage('Enter the email and password.');
    if (pendingMfa && !code) return showMessage('Enter the code from your authenticator app.');
    const button = $('signin-admin');
    button.disabled = true;
    try {
      // The second step of an account with two-factor sign-in: the code for the token pair.
      const res = pendingMfa
        ? await api('POST', authPrefix(pendingMfa.tenant) + '/mfa/verify', {
            token: null,
            json: { mfa_token: pendingMfa.token, code },
            signingIn: true,
          })
        : await api('POST', authPrefix(tenant) + '/login', {
            token: null,
            json: { email, password },
            signingIn: true,
          });
      if (res.status === 202) {
        const mfaToken = res.data && typeof res.data.mfa_token === 'string' ? res.data.mfa_token : '';
        if (!mfaToken) return showMessage('The server asked for a code without an mfa_token.');
        pendingMfa = { token: mfaToken, tenant };
        $('admin-password').value = '';
        $('admin-mfa').hidden = false;
        $('admin-mfa-code').focus();
        showMessage('Password accepted. Enter the code from your authenticator app.', 'ok');
        return;
      }
      const signedInTenant = pendingMfa ? pendingMfa.tenant : tenant;
      resetMfaStep();
      const token = res.data && typeof res.data.access_token === 'string' ? res.data.access_token : '';
      if (!token) {
        showMessage('The server answered without an access token.');
        return;
      }
      const name = isDefault(signedInTenant) ? DEFAULT_TENANT : signedInTenant;
      saveSession({ kind: 'admin', token, tenant: name });
      $('admin-password').value = '';
      clearMessage();
      enterConsole([name]);
    } catch (e) {
      showMessage(e.message);
    } finally {
      button.disabled = false;
    }
  }

  /** The operator's tenant list: "default" first, then every id, without duplicates. */
  function tenantIds(data) {
    const names = [DEFAULT_TENANT];
    if (Array.isArray(data)) {
      for (const t of data) {
        const id = t && typeof t === 'object' ? str(t.id) : '';
        if (id && !names.includes(id)) names.push(id);
      }
    }
    return names;
  }

  function enterConsole(tenants) {
    const s = state.session;
    $('whoami').textContent = s.kind === 'operator' ? 'operator' : 'admin of ' + s.tenant;
    $('signin').hidden = true;
    $('console').hidden = false;
    state.tenants = tenants;
    renderTenants();
    selectTenant(tenants[0]);
  }

  /** Resuming a stored session: re-check it before showing anything. */
  async function resume(session) {
    state.session = session;
    if (session.kind === 'admin') return enterConsole([session.tenant]);
    try {
      const { data } = await api('GET', '/api/v1/tenants');
      enterConsole(tenantIds(data));
    } catch (e) {
      if (!e.silent) signOut(e.status === 403 ? 'Operator token rejected.' : e.message);
    }
  }

  // ---------------------------------------------------------------- tenants

  function renderTenants() {
    const ul = $('tenant-list');
    ul.replaceChildren(
      ...state.tenants.map((name) => {
        const button = el('button', { text: name, attrs: { type: 'button' } });
        const li = el('li', { attrs: { 'data-tenant': name } }, [button]);
        if (name === state.tenant) {
          li.classList.add('selected');
          button.setAttribute('aria-current', 'true');
        }
        return li;
      }),
    );
  }

  function onTenantClick(event) {
    const li = event.target.closest('li[data-tenant]');
    if (!li || !$('tenant-list').contains(li)) return;
    const name = li.getAttribute('data-tenant');
    if (state.tenants.includes(name) && name !== state.tenant) selectTenant(name);
  }

  function selectTenant(name) {
    resetTenantState();
    state.tenant = name;
    $('current-tenant').textContent = name;
    clearMessage('poll');
    for (const li of $('tenant-list').children) {
      const on = li.getAttribute('data-tenant') === name;
      li.classList.toggle('selected', on);
      const b = li.firstElementChild;
      if (on) b.setAttribute('aria-current', 'true');
      else b.removeAttribute('aria-current');
    }
    renderOutbox();
    renderHooks();
    renderFailures(null);
    renderChart();
    poll();
  }

  // ---------------------------------------------------------------- polling

  async function poll() {
    const gen = state.generation;
    const tenant = state.tenant;
    if (!current(gen, tenant)) return;
    state.timer = null;
    const tasks = [loadMonitor(gen, tenant)];
    if (state.pollCount % REFRESH_EVERY === 0) tasks.push(loadHooks(gen, tenant), loadFailures(gen, tenant));
    state.pollCount += 1;
    await Promise.allSettled(tasks);
    // Only one poll chain per generation: the next poll starts after this one finished.
    if (current(gen, tenant)) state.timer = setTimeout(poll, state.interval);
  }

  function pollError(e, gen, tenant) {
    if (e.silent || !current(gen, tenant)) return;
    showMessage(e.message, 'error', 'poll');
  }

  async function loadMonitor(gen, tenant) {
    try {
      const { data } = await api('GET', tenantPrefix(tenant) + '/monitor', { signal: state.controller.signal });
      if (!current(gen, tenant)) return;
      state.monitor = data && typeof data === 'object' ? data : null;
      addSample(state.monitor);
      renderOutbox();
      renderHooks();
      renderChart();
      clearMessage('poll');
    } catch (e) {
      pollError(e, gen, tenant);
    }
  }

  async function loadHooks(gen, tenant) {
    try {
      const { data } = await api('GET', tenantPrefix(tenant) + '/hooks', { signal: state.controller.signal });
      if (!current(gen, tenant)) return;
      state.hooks = Array.isArray(data) ? data : [];
      renderHooks();
    } catch (e) {
      pollError(e, gen, tenant);
    }
  }

  async function loadFailures(gen, tenant) {
    try {
      const path = tenantPrefix(tenant) + '/hook-failures?limit=' + FAILURE_LIMIT;
      const { data } = await api('GET', path, { signal: state.controller.signal });
      if (!current(gen, tenant)) return;
      renderFailures(Array.isArray(data) ? data : []);
    } catch (e) {
      pollError(e, gen, tenant);
    }
  }

  function refreshNow() {
    const gen = state.generation;
    const tenant = state.tenant;
    if (!current(gen, tenant)) return;
    loadHooks(gen, tenant);
    loadFailures(gen, tenant);
  }

  // ---------------------------------------------------------------- outbox + chart

  function renderOutbox() {
    const outbox = state.monitor && state.monitor.outbox;
    const pending = outbox ? outbox.pending : undefined;
    const lag = outbox ? outbox.oldest_pending_seconds : undefined;
    $('outbox-pending').textContent = fmtInt(pending);
    $('outbox-lag').textContent = isNum(lag) ? lag.toFixed(1) : DASH;
  }

  function addSample(monitor) {
    const outbox = monitor && monitor.outbox;
    const lag = outbox && isNum(outbox.oldest_pending_seconds) ? outbox.oldest_pending_seconds : 0;
    let latency = 0;
    for (const h of monitorHooks(monitor)) if (isNum(h.p50_ms) && h.p50_ms > latency) latency = h.p50_ms;
    state.samples.push({ lag, latency });
    state.taken += 1;
    if (state.samples.length > HISTORY) state.samples.splice(0, state.samples.length - HISTORY);
  }

  function renderChart() {
    const box = $('chart');
    const W = 900;
    const H = 210;
    const pad = { l: 56, r: 64, t: 28, b: 16 };
    const iw = W - pad.l - pad.r;
    const ih = H - pad.t - pad.b;
    const root = svg('svg', {
      class: 'chart',
      viewBox: `0 0 ${W} ${H}`,
      role: 'img',
      'aria-label': 'Outbox lag and hook latency, last ' + HISTORY + ' polls',
    });
    for (let i = 0; i <= 4; i += 1) {
      const y = pad.t + (ih * i) / 4;
      root.appendChild(svg('line', { class: 'grid', x1: pad.l, x2: pad.l + iw, y1: y, y2: y }));
    }
    const series = [
      { key: 'lag', cls: 'series-lag', label: 'outbox lag', unit: 's', digits: 1, x: pad.l - 6, anchor: 'end' },
      { key: 'latency', cls: 'series-latency', label: 'hook latency p50', unit: 'ms', digits: 2, x: pad.l + iw + 6, anchor: 'start' },
    ];
    const n = state.samples.length;
    const step = iw / (HISTORY - 1);
    const x0 = pad.l + iw - step * (n - 1); // newest sample on the right edge
    series.forEach((s, idx) => {
      const values = state.samples.map((p) => p[s.key]);
      const max = values.reduce((m, v) => Math.max(m, v), 0);
      const scale = max > 0 ? max : 1;
      const points = values
        .map((v, i) => `${(x0 + i * step).toFixed(1)},${(pad.t + ih - (v / scale) * ih).toFixed(1)}`)
        .join(' ');
      root.appendChild(svg('polyline', { class: s.cls, points, fill: 'none' }));
      if (n > 0) {
        const [cx, cy] = points.split(' ')[n - 1].split(',');
        root.appendChild(svg('circle', { class: s.cls + ' dot', cx, cy, r: 2.5 }));
      }
      const maxText = Number(max.toFixed(s.digits)) + ' ' + s.unit;
      root.appendChild(svg('text', { class: 'axis ' + s.cls + '-text', x: s.x, y: pad.t + 4, 'text-anchor': s.anchor }, maxText));
      root.appendChild(svg('text', { class: 'axis', x: s.x, y: pad.t + ih, 'text-anchor': s.anchor }, '0'));
      const lx = pad.l + idx * 230;
      root.appendChild(svg('rect', { class: 'swatch ' + s.cls + '-swatch', x: lx, y: 8, width: 12, height: 4 }));
      root.appendChild(svg('text', { class: 'legend', x: lx + 16, y: 14 }, s.label + ' (' + s.unit + ', max ' + maxText + ')'));
    });
    box.replaceChildren(root);
    const last = state.samples[n - 1];
    // data-samples only ever grows while a tenant stays selected (tests wait for it to
    // increase); data-points is how many samples the chart currently holds (at most HISTORY).
    box.setAttribute('data-samples', String(state.taken));
    box.setAttribute('data-points', String(n));
    box.setAttribute('data-last-lag', last ? String(last.lag) : '');
    box.setAttribute('data-last-latency', last ? String(last.latency) : '');
  }

  // ---------------------------------------------------------------- hooks table

  function monitorHooks(monitor) {
    return monitor && Array.isArray(monitor.hooks) ? monitor.hooks.filter((h) => h && typeof h === 'object') : [];
  }

  function fmtLimits(limits) {
    if (!limits || typeof limits !== 'object') return DASH;
    const has = (k) => limits[k] !== undefined && limits[k] !== null;
    const parts = [];
    if (has('fuel')) parts.push('fuel ' + str(limits.fuel));
    if (has('memory_mib')) parts.push(str(limits.memory_mib) + ' MiB');
    if (has('timeout_ms')) parts.push(str(limits.timeout_ms) + ' ms');
    return parts.length ? parts.join(' · ') : DASH;
  }

  function recentCell(stats) {
    const td = el('td', { className: 'col-recent' });
    const recent = stats && Array.isArray(stats.recent) ? stats.recent.filter((r) => r && typeof r === 'object') : [];
    if (!recent.length) {
      td.textContent = DASH;
      return td;
    }
    const sorted = recent
      .map((r, i) => ({ r, i }))
      .sort((a, b) => (isNum(a.r.at) && isNum(b.r.at) ? a.r.at - b.r.at : 0) || a.i - b.i)
      .map((x) => x.r);
    const ok = sorted.filter((r) => r.outcome === 'ok').length;
    const strip = el('span', {
      className: 'outcomes',
      attrs: { role: 'img', 'aria-label': `${ok} ok, ${sorted.length - ok} failed of last ${sorted.length}` },
    });
    for (const r of sorted) {
      const title = `${str(r.event)} ${str(r.outcome)} ${fmtNum(r.duration_ms)} ms`;
      strip.appendChild(el('span', { className: 'outcome ' + (r.outcome === 'ok' ? 'ok' : 'fail'), title }));
    }
    td.appendChild(strip);
    return td;
  }

  function hookRow(hook, stats) {
    const name = str(hook.name);
    const tr = el('tr', { attrs: { 'data-hook': name } });
    if (hook.enabled === false) {
      tr.classList.add('disabled');
      tr.setAttribute('title', 'disabled');
    }
    const sha = typeof hook.sha256 === 'string' && hook.sha256 ? hook.sha256 : '';
    tr.append(
      el('td', { className: 'col-name mono', text: name }),
      el('td', { className: 'col-source', text: str(hook.source) || DASH }),
      el('td', { className: 'col-events', text: list(hook.events).join(', ') || DASH }),
      sha ? el('td', { className: 'col-sha mono', text: sha.slice(0, 12), title: sha }) : el('td', { className: 'col-sha', text: DASH }),
      el('td', { className: 'col-limits', text: fmtLimits(hook.limits) }),
      el('td', { className: 'col-invocations num', text: stats ? fmtInt(stats.invocations) : DASH }),
      el('td', { className: 'col-failures num', text: stats ? fmtInt(stats.failures) : DASH }),
      el('td', { className: 'col-p50 num', text: stats ? fmtNum(stats.p50_ms) : DASH }),
      el('td', { className: 'col-p95 num', text: stats ? fmtNum(stats.p95_ms) : DASH }),
      recentCell(stats),
    );
    if (stats && isNum(stats.failures) && stats.failures > 0) tr.querySelector('.col-failures').classList.add('bad');
    return tr;
  }

  function placeholderRow(text, cols) {
    return el('tr', { className: 'empty' }, [el('td', { text, attrs: { colspan: cols } })]);
  }

  function renderHooks() {
    const tbody = $('hooks-table').tBodies[0];
    if (state.hooks === null) return tbody.replaceChildren(placeholderRow('Loading…', 10));
    const hooks = state.hooks.filter((h) => h && typeof h === 'object');
    if (!hooks.length) return tbody.replaceChildren(placeholderRow('No hooks deployed', 10));
    const stats = new Map(monitorHooks(state.monitor).map((h) => [str(h.name), h]));
    tbody.replaceChildren(...hooks.map((h) => hookRow(h, stats.get(str(h.name)))));
  }

  // ---------------------------------------------------------------- failures table

  function failureRow(f) {
    const id = str(f.id);
    const attempts = isNum(f.attempts) ? f.attempts : null;
    const tr = el('tr', { attrs: { 'data-failure-id': id, 'data-attempts': JSON.stringify(attempts) } });
    const error = str(f.last_error);
    const button = el('button', { className: 'replay', text: 'Replay', attrs: { type: 'button' } });
    tr.append(
      el('td', { className: 'col-time mono', text: fmtTime(f.created_at), title: id }),
      el('td', { className: 'col-kind', text: str(f.kind) || DASH, title: f.status ? 'status: ' + str(f.status) : null }),
      el('td', { className: 'col-failed-hooks', text: list(f.failed_hooks).join(', ') || DASH }),
      el('td', { className: 'col-attempts num', text: fmtInt(f.attempts) }),
      el('td', { className: 'col-error', text: error ? truncate(error, ERROR_DISPLAY_CHARS) : DASH, title: error || null }),
      el('td', { className: 'col-action' }, [button]),
    );
    // A replay stays marked until the event shows a new attempt.
    if (state.replayed.has(id) && state.replayed.get(id) === attempts) markReplayed(tr);
    return tr;
  }

  function markReplayed(tr) {
    tr.classList.add('replayed');
    const button = tr.querySelector('button.replay');
    if (button) button.disabled = true;
  }

  /** The row now shown for a failure id (the table may have been re-rendered meanwhile). */
  function failureRowById(id) {
    for (const tr of $('failures-table').tBodies[0].rows) {
      if (tr.getAttribute('data-failure-id') === id) return tr;
    }
    return null;
  }

  function renderFailures(failures) {
    const tbody = $('failures-table').tBodies[0];
    if (failures === null) return tbody.replaceChildren(placeholderRow('Loading…', 6));
    const rows = failures.filter((f) => f && typeof f === 'object');
    if (!rows.length) return tbody.replaceChildren(placeholderRow('No failures', 6));
    tbody.replaceChildren(...rows.map(failureRow));
  }

  async function onFailureClick(event) {
    const button = event.target.closest('button.replay');
    if (!button || button.disabled) return;
    const tr = button.closest('tr[data-failure-id]');
    if (!tr) return;
    const id = tr.getAttribute('data-failure-id');
    const attempts = JSON.parse(tr.getAttribute('data-attempts') || 'null');
    const gen = state.generation;
    const tenant = state.tenant;
    if (!current(gen, tenant)) return;
    button.disabled = true;
    try {
      const path = tenantPrefix(tenant) + '/hook-failures/' + encodeURIComponent(id) + '/replay';
      const { data } = await api('POST', path, { signal: state.controller.signal });
      if (!current(gen, tenant)) return;
      const detail = data && typeof data.detail === 'string' ? data.detail : 'Event queued for redelivery.';
      showMessage(detail, 'ok', 'replay');
      state.replayed.set(id, attempts);
      markReplayed(tr);
      const shown = failureRowById(id);
      if (shown && shown !== tr) markReplayed(shown);
      setTimeout(() => {
        if (current(gen, tenant)) loadFailures(gen, tenant);
      }, REPLAY_RELOAD_MS);
    } catch (e) {
      if (e.silent || !current(gen, tenant)) return;
      button.disabled = false;
      const shown = failureRowById(id);
      if (shown) shown.querySelector('button.replay').disabled = false;
      showMessage(e.message, 'error', 'replay');
    }
  }

  // ---------------------------------------------------------------- start

  function init() {
    $('operator-form').addEventListener('submit', signInOperator);
    $('admin-form').addEventListener('submit', signInAdmin);
    $('signout').addEventListener('click', () => signOut(null));
    $('tenant-list').addEventListener('click', onTenantClick);
    $('failures-table').addEventListener('click', onFailureClick);
    $('refresh').addEventListener('click', refreshNow);
    renderChart();
    const session = loadSession();
    if (session) resume(session);
    else $('signin').hidden = false;
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
