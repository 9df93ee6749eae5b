// Prefork operator dashboard. Plain ES2020, no dependencies, no build step.
// Served as /ui/app.js under a strict CSP: no inline code or styles, no eval; styles only via classes or
// element.style (CSSOM). The API token (when the server has one) lives in sessionStorage only.
'use strict';

(() => {
  const TOKEN_KEY = 'prefork.token';
  const PAGE_SIZE = 50;
  const CHART_WINDOW_MS = 10 * 60 * 1000;
  const STALL_MS = 20000;           // no bytes (not even a keep-alive) for this long: reconnect
  const DISCONNECT_GRACE_MS = 2500; // a quick reconnect does not flash "disconnected"
  const MAX_POINTS = 700;
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------------------------
  // state
  // ------------------------------------------------------------------------------------
  const S = {
    token: sessionStorage.getItem(TOKEN_KEY) || null,
    started: false,
    session: 0,           // bumped on (re)connect after a token change; stale loops stop
    skew: 0,              // server clock minus client clock (ms), estimated from /stats
    version: '',
    stats: null,
    paused: false,
    draining: false,
    connected: false,
    everConnected: false,
    failedOnce: false,
    disconnected: true,
    lastEventId: null,
    lastByteAt: 0,
    streamCtrl: null,
    points: [],           // chart points {t, queued, running, done, failed}
    workers: new Map(),   // slot -> worker record
    workerRows: new Map(),// slot -> {tr, cells}
    target: 0,
  };

  const J = {               // jobs table
    filter: '',
    cursors: [null],        // cursor stack: cursors[i] fetches page i
    page: 0,
    next: null,
    stale: false,           // page 0 changed live: its next_cursor must be refreshed before "Older"
    rows: new Map(),        // id -> {tr, rec, cells}
    seq: 0,
    loading: false,
    inflight: new Map(),    // id -> dirty (an event arrived while its record was being fetched)
    insertQueue: new Set(),
    overflow: false,
    flushTimer: 0,
    lastRelist: 0,
    rejected: new Set(),    // ids found to be older than page 0: do not fetch them again
    error: '',
  };

  const D = {               // job detail panel
    id: null,
    rec: null,
    seq: 0,
    refreshTimer: 0,
    pollTimer: 0,
    busy: false,
    lastJSON: '',
  };

  // ------------------------------------------------------------------------------------
  // small helpers
  // ------------------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') e.className = v;
        else if (k === 'text') e.textContent = v;
        else if (k === 'testid') e.dataset.testid = v;
        else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG_NS, tag);
    if (attrs) for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    return e;
  }

  const nf = new Intl.NumberFormat();
  const nf1 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
  const fmtInt = (n) => (n === null || n === undefined || Number.isNaN(n) ? '–' : nf.format(n));
  const fmtRate = (n) => (n === null || n === undefined || Number.isNaN(n) ? '–' : nf1.format(n));
  const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  const hmFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hour12: false });
  const dateTimeFmt = new Intl.DateTimeFormat(undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
  });

  const serverNow = () => Date.now() + S.skew;
  const parseTs = (s) => { const t = Date.parse(s); return Number.isNaN(t) ? null : t; };

  function fmtAbs(ts) {
    const t = parseTs(ts);
    if (t === null) return '';
    const d = new Date(t - S.skew);
    const ms = String(new Date(t).getUTCMilliseconds()).padStart(3, '0');
    return `${dateTimeFmt.format(d)}.${ms}  (${ts})`;
  }

  function fmtRel(ts) {
    const t = parseTs(ts);
    if (t === null) return '—';
    const diff = Math.round((serverNow() - t) / 1000);
    const a = Math.abs(diff);
    let s;
    if (a < 3) return diff >= 0 ? 'just now' : 'now';
    if (a < 60) s = `${a}s`;
    else if (a < 3600) s = `${Math.floor(a / 60)}m ${a % 60 < 10 ? '0' : ''}${a % 60}s`;
    else if (a < 86400) s = `${Math.floor(a / 3600)}h ${Math.floor((a % 3600) / 60)}m`;
    else s = `${Math.floor(a / 86400)}d ${Math.floor((a % 86400) / 3600)}h`;
    return diff >= 0 ? `${s} ago` : `in ${s}`;
  }

  function fmtDuration(ms) {
    if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
    if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
    if (ms < 60000) return `${nf1.format(ms / 1000)} s`;
    const m = Math.floor(ms / 60000);
    const s = Math.round((ms % 60000) / 1000);
    return m < 60 ? `${m}m ${s}s` : `${Math.floor(m / 60)}h ${m % 60}m`;
  }

  function fmtBytes(n) {
    if (n < 1024) return `${n} bytes`;
    if (n < 1024 * 1024) return `${nf1.format(n / 1024)} KiB (${nf.format(n)} bytes)`;
    return `${nf1.format(n / 1048576)} MiB (${nf.format(n)} bytes)`;
  }

  function base64Size(b64) {
    const s = String(b64).replace(/\s+/g, '');
    if (!s) return 0;
    const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
    return Math.floor((s.length * 3) / 4) - pad;
  }

  // A time element that the 1 s ticker keeps current ("3m ago"); the absolute time is its tooltip.
  function timeCell(node, ts) {
    if (ts) {
      node.dataset.ts = ts;
      node.textContent = fmtRel(ts);
      node.title = fmtAbs(ts);
    } else {
      delete node.dataset.ts;
      node.textContent = '—';
      node.removeAttribute('title');
    }
    return node;
  }

  function badge(text, cls, testid) {
    return el('span', { class: `badge s-${cls || text}`, testid, text });
  }

  function setBadge(node, value) {
    node.className = `badge s-${value || 'none'}`;
    node.textContent = value || '';
  }

  function toast(message, isError) {
    const t = el('div', { class: `toast${isError ? ' is-error' : ''}`, role: isError ? 'alert' : 'status', text: message });
    $('toasts').append(t);
    setTimeout(() => t.remove(), isError ? 7000 : 3500);
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const jobPath = (id) => `/jobs/${encodeURIComponent(id)}`;

  function prettyText(s) {
    const t = String(s);
    const trimmed = t.trim();
    if ((trimmed.startsWith('{') && trimmed.endsWith('}')) || (trimmed.startsWith('[') && trimmed.endsWith(']'))) {
      try { return JSON.stringify(JSON.parse(trimmed), null, 2); } catch (_) { /* not JSON */ }
    }
    return t;
  }

  // ------------------------------------------------------------------------------------
  // API
  // ------------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(method, path, opts = {}) {
    const headers = { Accept: 'application/json' };
    const token = opts.token !== undefined ? opts.token : S.token;
    if (token) headers.Authorization = `Bearer ${token}`;
    let res;
    try {
      res = await fetch(path, { method, headers, cache: 'no-store', credentials: 'same-origin', signal: opts.signal });
    } catch (e) {
      if (e && e.name === 'AbortError') throw e;
      throw new ApiError(0, 'cannot reach the server');
    }
    let body = null;
    const text = await res.text().catch(() => '');
    if (text) { try { body = JSON.parse(text); } catch (_) { body = null; } }
    if (res.status === 401) {
      if (!opts.probe) unauthorized();
      throw new ApiError(401, (body && body.error) || 'unauthorized');
    }
    if (!res.ok) throw new ApiError(res.status, (body && body.error) || `HTTP ${res.status} ${res.statusText}`.trim());
    return body;
  }

  // ------------------------------------------------------------------------------------
  // auth: probe GET /workers; on 401 ask for a token (kept in sessionStorage only)
  // ------------------------------------------------------------------------------------
  async function boot() {
    bindStatic();
    let delay = 1000;
    for (;;) {
      try {
        const w = await api('GET', '/workers', { probe: true });
        start(w);
        return;
      } catch (e) {
        if (e.status === 401) {
          const had = !!S.token;
          S.token = null;
          sessionStorage.removeItem(TOKEN_KEY);
          showTokenForm(had ? 'The saved token was rejected; enter the current one.' : '');
          return;
        }
        S.failedOnce = true;
        setLiveNote(`${e.message}; retrying…`);
        renderPill();
        await sleep(delay);
        delay = Math.min(delay * 2, 10000);
      }
    }
  }

  function showTokenForm(message) {
    if (D.id) closeDetail();
    $('app').hidden = true;
    $('detail-overlay').hidden = true;
    $('job-detail').hidden = true;
    $('token-screen').hidden = false;
    $('token-error').textContent = message || '';
    $('pause-button').disabled = true;
    const input = $('token-input');
    input.value = '';
    input.focus();
  }

  async function submitToken(ev) {
    ev.preventDefault();
    const input = $('token-input');
    const token = input.value.trim();
    if (!token) { $('token-error').textContent = 'Enter a token.'; return; }
    const btn = ev.target.querySelector('button[type=submit]');
    btn.disabled = true;
    $('token-error').textContent = '';
    try {
      const w = await api('GET', '/workers', { probe: true, token });
      S.token = token;
      sessionStorage.setItem(TOKEN_KEY, token);
      input.value = '';
      start(w);
    } catch (e) {
      $('token-error').textContent = e.status === 401 ? 'That token was rejected.' : e.message;
    } finally {
      btn.disabled = false;
    }
  }

  function unauthorized() {
    if ($('token-screen').hidden === false) return;
    S.session++;
    stopStream();
    S.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    showTokenForm('The server rejected the token (it may have been changed). Enter the current one.');
  }

  // ------------------------------------------------------------------------------------
  // start / resync
  // ------------------------------------------------------------------------------------
  function start(workersBody) {
    $('token-screen').hidden = true;
    $('app').hidden = false;
    $('pause-button').disabled = false;
    S.session++;
    renderWorkers(workersBody);
    if (!S.started) {
      S.started = true;
      setInterval(tick, 1000);
      initCharts();
    }
    loadHealth();
    loadStats();
    loadJobs();
    startStream();
  }

  async function loadHealth() {
    try {
      const h = await api('GET', '/healthz');
      S.version = h.version || '';
      $('version').textContent = S.version ? `v${S.version}` : '';
      if (!S.stats) { S.paused = !!h.paused; S.draining = !!h.draining; renderPill(); }
    } catch (_) { /* shown by the stream state */ }
  }

  async function loadWorkers() {
    try { renderWorkers(await api('GET', '/workers')); } catch (_) { /* stream state shows it */ }
  }

  // GET /workers after worker events (counters, current job, exact times): coalesced, at most 2/s, and
  // again when events arrived while a request was in flight (its snapshot may predate them).
  let workersTimer = 0;
  let workersLast = 0;
  let workersInFlight = false;
  let workersDirty = false;
  function scheduleWorkers() {
    if (workersInFlight) { workersDirty = true; return; }
    if (workersTimer) return;
    const wait = Math.max(150, 500 - (Date.now() - workersLast));
    workersTimer = setTimeout(async () => {
      workersTimer = 0;
      workersInFlight = true;
      workersDirty = false;
      workersLast = Date.now();
      await loadWorkers();
      workersInFlight = false;
      if (workersDirty) { workersDirty = false; scheduleWorkers(); }
    }, wait);
  }

  function resync() {
    loadHealth();
    loadWorkers();
    loadStats();
    if (J.page === 0) loadJobs({ soft: true });
    if (D.id) refreshDetail();
  }

  // ------------------------------------------------------------------------------------
  // event stream: fetch() + ReadableStream, SSE parsed here, reconnect with backoff
  // ------------------------------------------------------------------------------------
  let streamSession = -1;
  function startStream() {
    stopStream();
    streamSession = S.session;
    streamLoop(S.session);
  }

  function stopStream() {
    streamSession = -1;
    if (S.streamCtrl) { S.streamCtrl.abort(); S.streamCtrl = null; }
  }

  async function streamLoop(session) {
    let backoff = 500;
    let first = true;
    while (streamSession === session) {
      const ctrl = new AbortController();
      S.streamCtrl = ctrl;
      let watchdog = 0;
      try {
        const headers = { Accept: 'text/event-stream' };
        if (S.token) headers.Authorization = `Bearer ${S.token}`;
        if (S.lastEventId !== null) headers['Last-Event-ID'] = S.lastEventId;
        const res = await fetch('/events', { headers, cache: 'no-store', credentials: 'same-origin', signal: ctrl.signal });
        if (res.status === 401) { unauthorized(); return; }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        S.lastByteAt = Date.now();
        watchdog = setInterval(() => { if (Date.now() - S.lastByteAt > STALL_MS) ctrl.abort(); }, 2000);
        setConnected(true);
        if (!first) resync();
        first = false;
        backoff = 500;
        await readEvents(res.body, session);
      } catch (_) {
        // network error, abort or server drop: fall through to the reconnect
      } finally {
        if (watchdog) clearInterval(watchdog);
      }
      if (streamSession !== session) return;
      first = false;
      S.failedOnce = true;
      setConnected(false);
      const wait = backoff * (0.75 + Math.random() * 0.5);
      setLiveNote(`reconnecting in ${Math.max(1, Math.round(wait / 1000))} s…`);
      await sleep(wait);
      backoff = Math.min(backoff * 2, 15000);
    }
  }

  async function readEvents(body, session) {
    const reader = body.getReader();
    const decoder = new TextDecoder('utf-8');
    let buf = '';
    let data = [];
    let name = '';
    let id = null;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        if (streamSession !== session) return;
        S.lastByteAt = Date.now();
        buf += decoder.decode(value, { stream: true });
        let start = 0;
        for (;;) {
          let i = start;
          const n = buf.length;
          while (i < n && buf.charCodeAt(i) !== 10 && buf.charCodeAt(i) !== 13) i++;
          if (i >= n) break;
          if (buf.charCodeAt(i) === 13 && i + 1 >= n) break; // CR at the end: maybe CRLF split over chunks
          const line = buf.slice(start, i);
          start = i + (buf.charCodeAt(i) === 13 && buf.charCodeAt(i + 1) === 10 ? 2 : 1);
          if (line === '') {
            if (id !== null) { S.lastEventId = id; id = null; }
            if (data.length) dispatch(name || 'message', data.join('\n'));
            data = [];
            name = '';
            continue;
          }
          if (line.charCodeAt(0) === 58) continue; // ':' comment / keep-alive
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          let val = colon < 0 ? '' : line.slice(colon + 1);
          if (val.charCodeAt(0) === 32) val = val.slice(1);
          if (field === 'data') data.push(val);
          else if (field === 'event') name = val;
          else if (field === 'id') { if (!val.includes('\0')) id = val; }
        }
        buf = buf.slice(start);
      }
    } finally {
      try { reader.cancel(); } catch (_) { /* already closed */ }
    }
  }

  function dispatch(name, raw) {
    let data;
    try { data = JSON.parse(raw); } catch (_) { return; }
    try {
      if (name === 'stats') onStats(data);
      else if (name === 'job') onJobEvent(data);
      else if (name === 'worker') onWorkerEvent(data);
    } catch (e) {
      console.warn('prefork dashboard: cannot apply event', name, e);
    }
  }

  let disconnectTimer = 0;
  function setConnected(on) {
    S.connected = on;
    if (on) {
      S.everConnected = true;
      clearTimeout(disconnectTimer);
      disconnectTimer = 0;
      S.disconnected = false;
      setLiveNote('live');
    } else if (!disconnectTimer && !S.disconnected) {
      disconnectTimer = setTimeout(() => { disconnectTimer = 0; if (!S.connected) { S.disconnected = true; renderPill(); } }, DISCONNECT_GRACE_MS);
    }
    renderPill();
  }

  function setLiveNote(text) { $('live-note').textContent = text; }

  // ------------------------------------------------------------------------------------
  // header, tiles, pause
  // ------------------------------------------------------------------------------------
  function renderPill() {
    const pill = $('status-pill');
    let status;
    if (S.disconnected && !S.everConnected && !S.failedOnce) status = 'connecting';
    else if (S.disconnected) status = 'disconnected';
    else if (S.draining) status = 'draining';
    else if (S.paused) status = 'paused';
    else status = 'running';
    pill.dataset.status = status;
    pill.className = `pill pill-${status}`;
    pill.textContent = status;
    const btn = $('pause-button');
    btn.textContent = S.paused ? 'Resume' : 'Pause';
    btn.classList.toggle('btn-primary', S.paused);
    btn.title = S.paused ? 'Resume handing jobs to workers' : 'Stop handing new jobs to workers (running jobs finish)';
    document.title = status === 'running' ? 'Prefork' : `Prefork · ${status}`;
  }

  async function togglePause() {
    const btn = $('pause-button');
    btn.disabled = true;
    const want = S.paused ? 'resume' : 'pause';
    try {
      const r = await api('POST', `/${want}`);
      S.paused = !!(r && r.paused);
      renderPill();
      toast(S.paused ? 'Paused: no new jobs are handed to workers.' : 'Resumed.');
    } catch (e) {
      if (e.status !== 401) toast(`Could not ${want}: ${e.message}`, true);
    } finally {
      btn.disabled = false;
    }
  }

  function onStats(s, noPoint) {
    S.stats = s;
    S.paused = !!s.paused;
    S.draining = !!s.draining;
    renderPill();
    renderTiles();
    if (!noPoint) {
      addPoint({ t: Date.now(), queued: s.queued, running: s.running, done: s.done_per_s, failed: s.failed_per_s });
      if (!document.hidden) drawCharts();
    }
  }

  function setText(id, text) { const n = $(id); if (n.textContent !== text) n.textContent = text; }

  function renderTiles() {
    const s = S.stats;
    if (!s) return;
    setText('tile-queued', fmtInt(s.queued));
    setText('tile-queued-sub', S.paused ? 'paused: not dispatching' : `${fmtInt(s.accepted_total)} accepted`);
    setText('tile-running', fmtInt(s.running));
    setText('tile-running-sub', `on ${fmtInt(s.workers_target)} worker slots`);
    setText('tile-done', fmtRate(s.done_per_s));
    setText('tile-done-sub', `${fmtInt(s.done_total)} done in total`);
    setText('tile-failed', fmtRate(s.failed_per_s));
    $('tile-failed').classList.toggle('is-bad', s.failed_per_s > 0);
    setText('tile-failed-sub', `${fmtInt(s.failed_total)} failed · ${fmtInt(s.canceled_total)} canceled`);
    setText('tile-workers', `${fmtInt(s.workers_live)} / ${fmtInt(s.workers_target)}`);
    $('tile-workers').classList.toggle('is-warn', s.workers_live < s.workers_target);
    renderWorkerSummary();
  }

  function renderWorkerSummary() {
    const counts = {};
    for (const w of S.workers.values()) counts[w.state] = (counts[w.state] || 0) + 1;
    const parts = ['busy', 'idle', 'starting', 'restarting', 'stopping', 'retired']
      .filter((k) => counts[k]).map((k) => `${counts[k]} ${k}`);
    const text = parts.join(' · ') || 'no workers';
    setText('tile-workers-sub', `live / target · ${text}`);
    setText('workers-note', `target ${fmtInt(S.target)} · ${text}`);
  }

  // ------------------------------------------------------------------------------------
  // charts (SVG, drawn here)
  // ------------------------------------------------------------------------------------
  const charts = [];

  function initCharts() {
    charts.push({
      el: $('chart-queue'),
      min: 4,
      series: [
        { key: 'queued', label: 'queued', cls: 'ch-queued', area: 'ch-queued-area' },
        { key: 'running', label: 'running', cls: 'ch-running' },
      ],
    });
    charts.push({
      el: $('chart-throughput'),
      min: 2,
      rate: true,
      series: [
        { key: 'done', label: 'done/s', cls: 'ch-done', area: 'ch-done-area' },
        { key: 'failed', label: 'failed/s', cls: 'ch-failed' },
      ],
    });
    for (const c of charts) {
      c.tip = el('div', { class: 'ch-tip', hidden: true });
      c.el.append(c.tip);
      c.el.addEventListener('mousemove', (e) => { c.hoverX = e.clientX - c.el.getBoundingClientRect().left; drawHover(c); });
      c.el.addEventListener('mouseleave', () => { c.hoverX = null; drawHover(c); });
    }
    if ('ResizeObserver' in window) {
      let raf = 0;
      const ro = new ResizeObserver(() => { cancelAnimationFrame(raf); raf = requestAnimationFrame(drawCharts); });
      for (const c of charts) ro.observe(c.el);
    }
    window.addEventListener('resize', drawCharts);
  }

  async function loadStats() {
    try {
      const r = await api('GET', '/stats');
      const hist = Array.isArray(r.history) ? r.history : [];
      const last = hist.length ? parseTs(hist[hist.length - 1].at) : null;
      if (last !== null) {
        const skew = last - Date.now();
        S.skew = Math.abs(skew) > 1500 ? skew : 0;
      }
      const pts = [];
      for (const h of hist) {
        const t = parseTs(h.at);
        if (t === null) continue;
        pts.push({ t: t - S.skew, queued: h.queued, running: h.running, done: h.done_per_s, failed: h.failed_per_s });
      }
      const lastT = pts.length ? pts[pts.length - 1].t : -Infinity;
      const live = S.points.filter((p) => p.t > lastT + 500);
      S.points = pts.concat(live).slice(-MAX_POINTS);
      if (r.now && !S.stats) onStats(r.now, true);
      drawCharts();
    } catch (_) { /* the live stats events fill the charts anyway */ }
  }

  function addPoint(p) {
    S.points.push(p);
    const cutoff = Date.now() - CHART_WINDOW_MS - 5000;
    let drop = 0;
    while (drop < S.points.length && S.points[drop].t < cutoff) drop++;
    if (drop || S.points.length > MAX_POINTS) S.points = S.points.slice(Math.max(drop, S.points.length - MAX_POINTS));
  }

  // A y axis of 4-5 gridlines at round steps: {max, step}.
  function niceScale(v, min, integer) {
    const m = Math.max(v, min);
    const raw = m / 4;
    const p = 10 ** Math.floor(Math.log10(raw));
    let step = 10 * p;
    for (const k of [1, 2, 2.5, 5, 10]) { if (k * p >= raw) { step = k * p; break; } }
    if (integer) step = Math.max(1, Math.round(step));
    return { max: step * Math.max(1, Math.ceil(m / step)), step };
  }

  function drawCharts() { for (const c of charts) drawChart(c); }

  function chartGeometry(c) {
    const w = c.el.clientWidth - 12;
    const h = c.el.clientHeight - 10;
    return { w, h, left: 40, right: 10, top: 8, bottom: 20 };
  }

  function drawChart(c) {
    const g = chartGeometry(c);
    if (g.w < 50 || g.h < 40) return;
    const now = Date.now();
    const pts = S.points;
    const first = pts.length ? pts[0].t : now;
    const t0 = Math.max(now - CHART_WINDOW_MS, Math.min(first, now - 60000));
    const t1 = now;
    let maxV = 0;
    for (const p of pts) {
      if (p.t < t0) continue;
      for (const s of c.series) { const v = +p[s.key] || 0; if (v > maxV) maxV = v; }
    }
    const scale = niceScale(maxV, c.min, !c.rate);
    const yMax = scale.max;
    const pw = g.w - g.left - g.right;
    const ph = g.h - g.top - g.bottom;
    const x = (t) => g.left + ((t - t0) / (t1 - t0)) * pw;
    const y = (v) => g.top + ph - (Math.min(v, yMax) / yMax) * ph;
    Object.assign(c, { t0, t1, x, y, g, yMax });

    const root = svg('svg', { width: g.w, height: g.h, viewBox: `0 0 ${g.w} ${g.h}`, role: 'img' });
    // y grid + labels
    for (let i = 0; i * scale.step <= yMax + 1e-9; i++) {
      const v = i * scale.step;
      const yy = Math.round(y(v)) + 0.5;
      root.append(svg('line', { class: 'ch-grid', x1: g.left, x2: g.w - g.right, y1: yy, y2: yy }));
      const lab = svg('text', { class: 'ch-axis', x: g.left - 6, y: yy + 3.5, 'text-anchor': 'end' });
      lab.textContent = Number.isInteger(v) ? fmtInt(v) : fmtRate(v);
      root.append(lab);
    }
    // x labels at round times
    const span = (t1 - t0) / 1000;
    const step = [10, 15, 30, 60, 120, 300, 600].find((s) => span / s <= 6) || 600;
    for (let t = Math.ceil(t0 / 1000 / step) * step * 1000; t <= t1; t += step * 1000) {
      const xx = x(t);
      if (xx < g.left + 12 || xx > g.w - g.right - 14) continue;
      const lab = svg('text', { class: 'ch-axis', x: xx, y: g.h - 4, 'text-anchor': 'middle' });
      lab.textContent = (step < 60 ? timeFmt : hmFmt).format(new Date(t));
      root.append(lab);
    }
    // series (areas first, then lines); gaps over 3.5 s break the line
    const visible = pts.filter((p) => p.t >= t0 - 1000);
    if (!visible.length) {
      const msg = svg('text', { class: 'ch-empty', x: g.left + pw / 2, y: g.top + ph / 2, 'text-anchor': 'middle' });
      msg.textContent = 'waiting for data…';
      root.append(msg);
    }
    const segments = [];
    let seg = [];
    for (const p of visible) {
      if (seg.length && p.t - seg[seg.length - 1].t > 3500) { segments.push(seg); seg = []; }
      seg.push(p);
    }
    if (seg.length) segments.push(seg);
    const base = y(0);
    for (const s of c.series) {
      if (!s.area) continue;
      let d = '';
      for (const sg of segments) {
        if (sg.length < 2) continue;
        d += `M${x(sg[0].t).toFixed(1)},${base}`;
        for (const p of sg) d += `L${x(p.t).toFixed(1)},${y(+p[s.key] || 0).toFixed(1)}`;
        d += `L${x(sg[sg.length - 1].t).toFixed(1)},${base}Z`;
      }
      if (d) root.append(svg('path', { class: `ch-area ${s.area}`, d }));
    }
    for (const s of c.series) {
      let d = '';
      for (const sg of segments) {
        sg.forEach((p, i) => { d += `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(+p[s.key] || 0).toFixed(1)}`; });
      }
      if (d) root.append(svg('path', { class: `ch-line ${s.cls}`, d }));
    }
    c.hoverLayer = svg('g', {});
    root.append(c.hoverLayer);
    const old = c.el.querySelector('svg');
    if (old) old.replaceWith(root); else c.el.prepend(root);
    drawHover(c);
  }

  function drawHover(c) {
    if (!c.hoverLayer) return;
    c.hoverLayer.replaceChildren();
    const pts = S.points;
    if (c.hoverX === null || c.hoverX === undefined || !pts.length) { c.tip.hidden = true; return; }
    const hx = c.hoverX - 4; // svg sits inside the chart padding
    if (hx < c.g.left || hx > c.g.w - c.g.right) { c.tip.hidden = true; return; }
    const t = c.t0 + ((hx - c.g.left) / (c.g.w - c.g.left - c.g.right)) * (c.t1 - c.t0);
    let lo = 0;
    let hi = pts.length - 1;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (pts[mid].t < t) lo = mid + 1; else hi = mid; }
    if (lo > 0 && Math.abs(pts[lo - 1].t - t) < Math.abs(pts[lo].t - t)) lo--;
    const p = pts[lo];
    if (p.t < c.t0 || Math.abs(p.t - t) > 5000) { c.tip.hidden = true; return; }
    const xx = Math.round(c.x(p.t)) + 0.5;
    c.hoverLayer.append(svg('line', { class: 'ch-cursor', x1: xx, x2: xx, y1: c.g.top, y2: c.g.h - c.g.bottom }));
    for (const s of c.series) c.hoverLayer.append(svg('circle', { class: `ch-dot ${s.cls}`, cx: xx, cy: c.y(+p[s.key] || 0), r: 3.5 }));
    c.tip.replaceChildren(
      el('div', { class: 'muted', text: timeFmt.format(new Date(p.t)) }),
      ...c.series.map((s) => el('div', null, `${s.label} `, el('b', { text: c.rate ? fmtRate(p[s.key]) : fmtInt(p[s.key]) }))),
    );
    c.tip.hidden = false;
    const tipW = c.tip.offsetWidth;
    const left = xx + 14 + tipW > c.el.clientWidth ? xx - tipW - 10 : xx + 14;
    c.tip.style.left = `${Math.max(0, left)}px`;
  }

  // ------------------------------------------------------------------------------------
  // workers
  // ------------------------------------------------------------------------------------
  function renderWorkers(body) {
    if (!body || !Array.isArray(body.workers)) return;
    S.target = body.target;
    const seen = new Set();
    for (const w of body.workers) {
      seen.add(w.slot);
      S.workers.set(w.slot, { ...w });
      upsertWorkerRow(w.slot, false);
    }
    for (const slot of [...S.workers.keys()]) {
      if (!seen.has(slot)) {
        S.workers.delete(slot);
        const r = S.workerRows.get(slot);
        if (r) r.tr.remove();
        S.workerRows.delete(slot);
      }
    }
    const tbody = $('workers-body');
    const empty = tbody.querySelector('.empty-row');
    if (!S.workers.size && !empty) tbody.append(el('tr', { class: 'empty-row' }, el('td', { class: 'empty', colspan: 8, text: 'No workers' })));
    else if (S.workers.size && empty) empty.remove();
    renderWorkerSummary();
  }

  function upsertWorkerRow(slot, flash) {
    const w = S.workers.get(slot);
    let r = S.workerRows.get(slot);
    if (!r) {
      const cells = {
        slot: el('td', { class: 'num', testid: 'worker-slot' }),
        pid: el('td', { class: 'num', testid: 'worker-pid' }),
        state: el('td', null),
        job: el('td', { testid: 'worker-job' }),
        jobsRun: el('td', { class: 'num', testid: 'worker-jobs-run' }),
        restarts: el('td', { class: 'num', testid: 'worker-restarts' }),
        cause: el('td', { testid: 'worker-cause' }),
        started: el('td', { class: 'cell-time', testid: 'worker-started' }),
      };
      cells.stateBadge = badge('', 'none', 'worker-state');
      cells.state.append(cells.stateBadge);
      const tr = el('tr', { testid: 'worker-row', 'data-slot': slot }, ...Object.values(cells).filter((c) => c.tagName === 'TD'));
      r = { tr, cells, jobId: undefined };
      S.workerRows.set(slot, r);
      // keep rows ordered by slot
      const tbody = $('workers-body');
      const after = [...S.workerRows.entries()].filter(([s]) => s > slot).sort((a, b) => a[0] - b[0])[0];
      if (after && after[1].tr.parentNode === tbody) tbody.insertBefore(tr, after[1].tr); else tbody.append(tr);
    }
    const c = r.cells;
    r.tr.dataset.state = w.state || '';
    c.slot.textContent = String(w.slot);
    c.pid.textContent = w.pid === null || w.pid === undefined ? '—' : String(w.pid);
    setBadge(c.stateBadge, w.state);
    if (r.jobId !== w.job || r.busy !== (w.state === 'busy')) {
      r.jobId = w.job;
      r.busy = w.state === 'busy';
      c.job.replaceChildren(w.job
        ? el('button', { type: 'button', class: 'link', testid: 'worker-job-link', title: `Open job ${w.job}`, text: w.job, onclick: () => openDetail(w.job) })
        : el('span', { class: 'muted', text: w.state === 'busy' ? '…' : '—' }));
    }
    c.jobsRun.textContent = fmtInt(w.jobs_run);
    c.restarts.textContent = fmtInt(w.restarts);
    c.cause.textContent = w.last_restart_cause || '—';
    c.cause.classList.toggle('muted', !w.last_restart_cause);
    if (c.started.dataset.ts !== (w.started_at || undefined)) timeCell(c.started, w.started_at);
    if (flash) flashRow(r.tr);
  }

  function onWorkerEvent(d) {
    if (typeof d.slot !== 'number') return;
    let w = S.workers.get(d.slot);
    if (!w) {
      w = { slot: d.slot, pid: null, state: null, job: null, jobs_run: 0, restarts: 0, recycles: 0, last_restart_cause: null, started_at: null };
      S.workers.set(d.slot, w);
    }
    if (w.pid !== d.pid && d.pid) w.started_at = new Date(serverNow()).toISOString();
    w.pid = d.pid === undefined ? w.pid : d.pid;
    w.state = d.state || w.state;
    if (d.cause) w.last_restart_cause = d.cause;
    if (w.state !== 'busy') w.job = null;
    upsertWorkerRow(d.slot, true);
    renderWorkerSummary();
    scheduleWorkers(); // counters, current job and exact times come from GET /workers
  }

  // ------------------------------------------------------------------------------------
  // jobs table
  // ------------------------------------------------------------------------------------
  async function loadJobs(opts = {}) {
    const seq = ++J.seq;
    J.loading = true;
    if (!opts.soft) renderJobsFoot();
    const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (J.filter) q.set('state', J.filter);
    const cursor = J.cursors[J.page];
    if (cursor) q.set('cursor', cursor);
    try {
      const body = await api('GET', `/jobs?${q}`);
      if (seq !== J.seq) return false;
      J.next = body.next_cursor || null;
      J.stale = false;
      J.error = '';
      if (J.page === 0) J.lastRelist = Date.now();
      renderJobList(Array.isArray(body.jobs) ? body.jobs : [], !!opts.soft);
      return true;
    } catch (e) {
      if (seq !== J.seq) return false;
      J.error = e.status === 401 ? '' : `Could not load jobs: ${e.message}`;
      if (!opts.soft && e.status !== 401) toast(J.error, true);
      return false;
    } finally {
      if (seq === J.seq) { J.loading = false; renderJobsFoot(); renderPager(); }
    }
  }

  function renderJobList(list, soft) {
    const prev = J.rows;
    J.rows = new Map();
    const tbody = $('jobs-body');
    const frag = document.createDocumentFragment();
    for (const rec of list.slice(0, PAGE_SIZE)) {
      const row = makeJobRow(rec);
      if (soft && !prev.has(rec.id)) row.tr.classList.add('is-fresh');
      J.rows.set(rec.id, row);
      frag.append(row.tr);
    }
    tbody.replaceChildren(frag);
    if (!J.rows.size) tbody.append(emptyJobsRow());
  }

  function emptyJobsRow() {
    const what = J.filter ? `No ${J.filter} jobs` : 'No jobs yet';
    return el('tr', { class: 'empty-row' }, el('td', { class: 'empty', colspan: 6, text: J.page ? 'No older jobs' : what }));
  }

  function makeJobRow(rec) {
    const cells = {
      id: el('td', { class: 'cell-id', testid: 'job-id' }),
      state: el('td', null),
      attempts: el('td', { class: 'num', testid: 'job-attempts' }),
      priority: el('td', { class: 'num', testid: 'job-priority' }),
      error: el('td', { class: 'cell-error', testid: 'job-error' }),
      updated: el('td', { class: 'cell-time', testid: 'job-updated' }),
    };
    cells.stateBadge = badge('', 'none', 'job-state');
    cells.state.append(cells.stateBadge);
    const tr = el('tr', { class: 'clickable', testid: 'job-row', tabindex: 0 },
      cells.id, cells.state, cells.attempts, cells.priority, cells.error, cells.updated);
    tr.dataset.id = rec.id;
    tr.addEventListener('click', () => openDetail(rec.id));
    tr.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); openDetail(rec.id); } });
    const row = { tr, cells, rec: { ...rec } };
    renderJobRow(row);
    return row;
  }

  function renderJobRow(row) {
    const { rec, cells, tr } = row;
    cells.id.textContent = rec.id;
    cells.id.title = rec.id;
    setBadge(cells.stateBadge, rec.state);
    tr.dataset.state = rec.state;
    const max = typeof rec.max_retries === 'number' ? rec.max_retries + 1 : null;
    cells.attempts.textContent = max === null ? fmtInt(rec.attempts) : `${fmtInt(rec.attempts)} / ${fmtInt(max)}`;
    cells.attempts.title = max === null ? '' : `${rec.attempts} attempt(s) of at most ${max} (max_retries ${rec.max_retries})`;
    cells.priority.textContent = rec.priority === undefined || rec.priority === null ? '—' : fmtInt(rec.priority);
    cells.error.textContent = rec.last_error || '';
    cells.error.title = rec.last_error || '';
    timeCell(cells.updated, rec.updated_at);
    const stale = !!J.filter && rec.state !== J.filter;
    tr.classList.toggle('is-stale', stale);
    tr.title = stale ? `Now ${rec.state}: leaves the ${J.filter} list on the next refresh` : '';
    tr.classList.toggle('is-selected', D.id === rec.id);
  }

  // Restarts the row highlight without forcing a layout: alternate between two identical animations.
  function flashRow(tr) {
    const odd = tr.classList.contains('is-flash');
    tr.classList.remove('is-fresh', odd ? 'is-flash' : 'is-flash2');
    tr.classList.add(odd ? 'is-flash2' : 'is-flash');
  }

  function updateRowFromRecord(rec) {
    const row = J.rows.get(rec.id);
    if (!row) return;
    row.rec = { ...rec };
    renderJobRow(row);
  }

  function onJobEvent(d) {
    if (!d || typeof d.id !== 'string') return;
    const row = J.rows.get(d.id);
    if (row) {
      const r = row.rec;
      if (d.state) r.state = d.state;
      if (typeof d.attempt === 'number' && d.state !== 'queued') r.attempts = d.attempt;
      if (d.error) r.last_error = d.error;
      if (d.state === 'running') r.progress = null;
      r.updated_at = new Date(serverNow()).toISOString();
      renderJobRow(row);
      flashRow(row.tr);
    } else if (J.inflight.has(d.id)) {
      J.inflight.set(d.id, true);
    } else if (J.page === 0 && (!J.filter || d.state === J.filter) && !J.rejected.has(d.id)) {
      queueInsert(d.id);
    }
    if (D.id === d.id) scheduleDetailRefresh(150);
  }

  // New jobs on page 0: fetch each record (a handful at a time); under a flood, relist page 0 at most 1/s.
  function queueInsert(id) {
    if (J.insertQueue.size >= 20) J.overflow = true;
    else J.insertQueue.add(id);
    if (!J.flushTimer) J.flushTimer = setTimeout(flushInserts, 200);
  }

  async function flushInserts() {
    J.flushTimer = 0;
    const ids = [...J.insertQueue];
    J.insertQueue.clear();
    if (J.page !== 0) { J.overflow = false; return; }
    if (J.overflow) {
      const wait = 1000 - (Date.now() - J.lastRelist);
      if (wait > 0) { for (const id of ids) J.insertQueue.add(id); J.flushTimer = setTimeout(flushInserts, wait); return; }
      J.overflow = false;
      J.lastRelist = Date.now();
      await loadJobs({ soft: true });
      return;
    }
    const filter = J.filter;
    const seq = J.seq;
    await Promise.all(ids.map(async (id) => {
      J.inflight.set(id, false);
      let rec = null;
      try { rec = await api('GET', jobPath(id)); } catch (_) { /* gone or unreachable: skip */ }
      const dirty = J.inflight.get(id);
      J.inflight.delete(id);
      if (!rec || J.page !== 0 || J.filter !== filter || seq !== J.seq) return;
      if (J.rows.has(id)) { updateRowFromRecord(rec); return; }
      if (filter && rec.state !== filter) { if (dirty) queueInsert(id); return; }
      insertRecord(rec);
      if (dirty) refreshRow(id);
    }));
  }

  function insertRecord(rec) {
    const t = parseTs(rec.created_at);
    const rows = [...J.rows.values()];
    let before = null;
    for (const r of rows) {
      const rt = parseTs(r.rec.created_at);
      if (t === null || rt === null || rt <= t) { before = r; break; }
    }
    const full = rows.length >= PAGE_SIZE || !!J.next;
    if (!before && full) { rememberRejected(rec.id); return; } // older than the whole page
    const row = makeJobRow(rec);
    row.tr.classList.add('is-fresh');
    const tbody = $('jobs-body');
    const empty = tbody.querySelector('.empty-row');
    if (empty) empty.remove();
    if (before) tbody.insertBefore(row.tr, before.tr); else tbody.append(row.tr);
    // rebuild the map in display order, then trim to one page
    const order = new Map();
    for (const tr of tbody.children) {
      const id = tr.dataset.id;
      if (id === rec.id) order.set(id, row);
      else if (J.rows.has(id)) order.set(id, J.rows.get(id));
    }
    J.rows = order;
    while (J.rows.size > PAGE_SIZE) {
      const lastId = [...J.rows.keys()].pop();
      J.rows.get(lastId).tr.remove();
      J.rows.delete(lastId);
      J.stale = true;
    }
    renderPager();
  }

  function rememberRejected(id) {
    J.rejected.add(id);
    if (J.rejected.size > 1000) J.rejected.delete(J.rejected.values().next().value);
  }

  async function refreshRow(id) {
    J.inflight.set(id, false);
    try {
      const rec = await api('GET', jobPath(id));
      updateRowFromRecord(rec);
    } catch (_) { /* keep what the events said */ }
    const dirty = J.inflight.get(id);
    J.inflight.delete(id);
    if (dirty) setTimeout(() => refreshRow(id), 300);
  }

  function renderPager() {
    $('jobs-newer').disabled = J.page === 0 || J.loading;
    $('jobs-older').disabled = !(J.next || J.stale) || J.loading;
    $('jobs-page').textContent = `Page ${J.page + 1}`;
    for (const t of document.querySelectorAll('#job-tabs .tab')) {
      const on = t.dataset.state === J.filter;
      t.classList.toggle('is-active', on);
      t.setAttribute('aria-pressed', on ? 'true' : 'false');
    }
  }

  function renderJobsFoot() {
    let text;
    if (J.loading) text = 'Loading…';
    else if (J.error) text = J.error;
    else if (J.page === 0) text = `Newest first, ${PAGE_SIZE} per page. Rows update live; new ${J.filter || ''} jobs appear at the top.`.replace('  ', ' ');
    else text = `Newest first, ${PAGE_SIZE} per page. Rows on this page update live.`;
    setText('jobs-foot', text);
  }

  async function goOlder() {
    if (J.loading) return;
    if (J.page === 0 && J.stale) {
      const ok = await loadJobs({ soft: true });
      if (!ok) return;
    }
    if (!J.next) { renderPager(); return; }
    J.cursors = J.cursors.slice(0, J.page + 1);
    J.cursors.push(J.next);
    J.page++;
    await loadJobs();
    $('jobs-table').scrollIntoView({ block: 'nearest' });
  }

  async function goNewer() {
    if (J.loading || J.page === 0) return;
    J.page--;
    J.cursors = J.cursors.slice(0, J.page + 1);
    await loadJobs();
  }

  function setFilter(state) {
    J.filter = state;
    J.page = 0;
    J.cursors = [null];
    J.next = null;
    J.stale = false;
    J.insertQueue.clear();
    J.rejected.clear();
    renderPager();
    loadJobs();
  }

  // ------------------------------------------------------------------------------------
  // job detail panel
  // ------------------------------------------------------------------------------------
  function openDetail(id) {
    if (D.id !== id) {
      D.id = id;
      D.rec = null;
      D.lastJSON = '';
      $('detail-id').textContent = id;
      setBadge($('detail-state'), '');
      $('cancel-button').hidden = true;
      $('retry-button').hidden = true;
      hideDetailMessage();
      $('detail-body').replaceChildren(el('p', { class: 'muted', text: 'Loading…' }));
    }
    $('job-detail').hidden = false;
    $('detail-overlay').hidden = false;
    for (const row of J.rows.values()) row.tr.classList.toggle('is-selected', row.rec.id === id);
    refreshDetail();
    $('detail-close').focus({ preventScroll: true });
  }

  function closeDetail() {
    D.id = null;
    D.rec = null;
    clearTimeout(D.refreshTimer);
    clearTimeout(D.pollTimer);
    $('job-detail').hidden = true;
    $('detail-overlay').hidden = true;
    for (const row of J.rows.values()) row.tr.classList.remove('is-selected');
  }

  function scheduleDetailRefresh(ms) {
    clearTimeout(D.refreshTimer);
    D.refreshTimer = setTimeout(refreshDetail, ms);
  }

  async function refreshDetail() {
    const id = D.id;
    if (!id) return;
    const seq = ++D.seq;
    clearTimeout(D.pollTimer);
    try {
      const rec = await api('GET', jobPath(id));
      if (seq !== D.seq || D.id !== id) return;
      renderDetail(rec);
      updateRowFromRecord(rec);
    } catch (e) {
      if (seq !== D.seq || D.id !== id) return;
      if (!D.rec) {
        $('detail-body').replaceChildren(el('div', { class: 'error-box', testid: 'job-detail-load-error', text: e.status === 404 ? `No job ${id} (it may have been removed by retention).` : `Could not load the job: ${e.message}` }));
      }
    }
    if (D.id === id && D.rec && (D.rec.state === 'running' || D.rec.state === 'queued' || (D.rec.callback && D.rec.callback.state === 'pending'))) {
      D.pollTimer = setTimeout(refreshDetail, D.rec.state === 'running' ? 1500 : 3000);
    }
  }

  function section(title, testid, ...content) {
    return el('section', { testid }, el('h3', { text: title }), ...content);
  }

  function kv(pairs) {
    const dl = el('dl', { class: 'kv' });
    for (const [k, v, testid] of pairs) dl.append(el('dt', { text: k }), el('dd', { testid }, v));
    return dl;
  }

  function textOrBinary(rec, key, testid, what) {
    if (rec[`${key}_base64`] !== undefined && rec[`${key}_base64`] !== null && (rec[key] === undefined || rec[key] === null)) {
      const n = base64Size(rec[`${key}_base64`]);
      return el('p', { class: 'note', testid, 'data-binary': 'true', text: `Binary ${what}: ${fmtBytes(n)} (not shown; the API returns it as ${key}_base64).` });
    }
    const v = rec[key];
    if (v === null || v === undefined) return el('p', { class: 'note', testid, text: `No ${what}.` });
    if (v === '') return el('p', { class: 'note', testid, text: `Empty ${what}.` });
    return el('pre', { class: 'block', testid, text: typeof v === 'string' ? prettyText(v) : JSON.stringify(v, null, 2) });
  }

  function renderDetail(rec) {
    const json = JSON.stringify(rec);
    D.rec = rec;
    const body = $('detail-body');
    $('detail-id').textContent = rec.id;
    setBadge($('detail-state'), rec.state);
    const cancellable = rec.state === 'queued' || rec.state === 'running';
    const retryable = rec.state === 'failed' || rec.state === 'canceled';
    $('cancel-button').hidden = !cancellable;
    $('retry-button').hidden = !retryable;
    $('cancel-button').disabled = D.busy;
    $('retry-button').disabled = D.busy;
    if (json === D.lastJSON) return; // nothing changed: keep scroll and open <details>
    D.lastJSON = json;

    const scroll = body.scrollTop;
    const open = new Set([...body.querySelectorAll('details[open]')].map((d) => d.dataset.key));
    const parts = [];

    if (rec.state === 'running') {
      const pct = rec.progress && typeof rec.progress.percent === 'number' ? Math.max(0, Math.min(100, rec.progress.percent)) : null;
      const bar = el('div', { class: `progress-bar${pct === null ? ' is-indeterminate' : ''}` });
      if (pct !== null) bar.style.width = `${pct}%`;
      const wrap = el('div', { class: 'progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': pct === null ? null : pct },
        el('div', { class: 'progress-track' }, bar),
        el('span', { class: 'progress-pct', text: pct === null ? '' : `${nf1.format(pct)}%` }));
      const note = rec.progress && rec.progress.note ? el('div', { class: 'muted small', text: rec.progress.note }) : el('div', { class: 'muted small', text: pct === null ? 'Running; the job reports no progress.' : '' });
      parts.push(section('Progress', 'job-detail-progress', wrap, note));
    }

    if (rec.last_error) parts.push(section('Last error', null, el('div', { class: 'error-box', testid: 'job-detail-error', text: rec.last_error })));

    const max = typeof rec.max_retries === 'number' ? rec.max_retries + 1 : null;
    const ts = (v) => (v ? timeCell(el('span'), v) : el('span', { class: 'muted', text: '—' }));
    const absRel = (v) => (v ? el('span', null, ts(v), el('span', { class: 'muted small', text: `  ·  ${fmtAbs(v).split('  (')[0]}` })) : el('span', { class: 'muted', text: '—' }));
    const pairs = [
      ['State', badge(rec.state, rec.state, 'job-detail-state-value')],
      ['Attempts', `${fmtInt(rec.attempts)}${max === null ? '' : ` of at most ${fmtInt(max)}`}  (max_retries ${rec.max_retries ?? '—'})`, 'job-detail-attempts'],
      ['Priority', rec.priority === null || rec.priority === undefined ? '—' : fmtInt(rec.priority)],
      ['Timeout', rec.timeout_ms === null || rec.timeout_ms === undefined ? 'server default' : `${fmtInt(rec.timeout_ms)} ms`],
      ['Created', absRel(rec.created_at)],
      ['Updated', absRel(rec.updated_at)],
    ];
    if (rec.next_attempt_at) pairs.push(['Next attempt', absRel(rec.next_attempt_at)]);
    parts.push(section('Summary', 'job-detail-summary', kv(pairs)));

    // attempt history
    const hist = Array.isArray(rec.history) ? rec.history : [];
    if (hist.length) {
      const tbody = el('tbody');
      for (const h of hist) {
        const st = parseTs(h.started_at);
        const fin = parseTs(h.finished_at);
        const dur = st === null ? null : (fin === null ? serverNow() : fin) - st;
        const errCell = el('td');
        if (h.error) errCell.append(el('div', { class: 'err', text: h.error }));
        if (h.stderr) {
          const det = el('details', null, el('summary', { text: 'stderr' }), el('pre', { class: 'block', text: h.stderr }));
          det.dataset.key = `stderr-${h.attempt}`;
          if (open.has(det.dataset.key)) det.open = true;
          errCell.append(det);
        }
        if (!h.error && !h.stderr) errCell.append(el('span', { class: 'muted', text: '—' }));
        const started = h.started_at ? el('span', { title: fmtAbs(h.started_at), text: timeFmt.format(new Date(st - S.skew)) }) : '—';
        tbody.append(el('tr', { testid: 'history-row', 'data-attempt': h.attempt },
          el('td', { class: 'num nowrap', text: String(h.attempt) }),
          el('td', { class: 'nowrap' }, started),
          el('td', { class: 'num nowrap', text: fin === null && h.outcome === null ? `${fmtDuration(dur)}…` : fmtDuration(dur) }),
          el('td', { class: 'num nowrap', text: h.worker_pid === null || h.worker_pid === undefined ? '—' : String(h.worker_pid) }),
          el('td', { class: 'nowrap' }, h.outcome ? badge(h.outcome, h.outcome, 'history-outcome') : badge('running', 'running', 'history-outcome')),
          errCell));
      }
      const table = el('table', { class: 'grid history', testid: 'job-detail-history' },
        el('thead', null, el('tr', null,
          el('th', { class: 'num', text: '#' }), el('th', { text: 'Started' }), el('th', { class: 'num', text: 'Duration' }),
          el('th', { class: 'num', text: 'Worker' }), el('th', { text: 'Outcome' }), el('th', { text: 'Error' }))),
        tbody);
      parts.push(section('Attempts', null, el('div', { class: 'table-box' }, table)));
    } else {
      parts.push(section('Attempts', null, el('p', { class: 'note', testid: 'job-detail-history', text: 'Not attempted yet.' })));
    }

    const resultParts = [textOrBinary(rec, 'result', 'job-detail-result', 'result')];
    if (rec.result_truncated) resultParts.push(el('p', { class: 'note', text: 'The result was truncated by the server.' }));
    parts.push(section('Result', null, ...resultParts));
    parts.push(section('Payload', null, textOrBinary(rec, 'payload', 'job-detail-payload', 'payload')));

    if (rec.callback) {
      const cb = rec.callback;
      parts.push(section('Callback', 'job-detail-callback', kv([
        ['URL', el('span', { class: 'mono', text: cb.url || '—' })],
        ['State', cb.state ? badge(cb.state, cb.state, 'callback-state') : '—'],
        ['Attempts', fmtInt(cb.attempts)],
        ['Last error', cb.last_error ? el('span', { class: 'cell-error', text: cb.last_error }) : el('span', { class: 'muted', text: '—' })],
      ])));
    } else {
      parts.push(section('Callback', 'job-detail-callback', el('p', { class: 'note', text: 'No callback.' })));
    }

    const raw = el('details', { class: 'raw' }, el('summary', { text: 'Raw record (JSON)' }), el('pre', { class: 'block', text: JSON.stringify(rec, null, 2) }));
    raw.dataset.key = 'raw';
    if (open.has('raw')) raw.open = true;
    parts.push(raw);

    body.replaceChildren(...parts);
    body.scrollTop = scroll;
  }

  function showDetailMessage(text, ok) {
    const m = $('detail-message');
    m.textContent = text;
    m.className = `detail-message ${ok ? 'is-ok' : 'is-error'}`;
    m.dataset.outcome = ok ? 'ok' : 'error';
    m.hidden = false;
  }

  function hideDetailMessage() {
    const m = $('detail-message');
    m.hidden = true;
    m.textContent = '';
    delete m.dataset.outcome;
  }

  async function detailAction(kind) {
    const id = D.id;
    if (!id || D.busy) return;
    D.busy = true;
    $('cancel-button').disabled = true;
    $('retry-button').disabled = true;
    hideDetailMessage();
    try {
      const rec = kind === 'cancel' ? await api('DELETE', jobPath(id)) : await api('POST', `${jobPath(id)}/retry`);
      if (D.id !== id) return;
      if (rec && D.rec && !('payload' in rec) && !('payload_base64' in rec)) {
        if ('payload' in D.rec) rec.payload = D.rec.payload;
        if ('payload_base64' in D.rec) rec.payload_base64 = D.rec.payload_base64;
      }
      showDetailMessage(kind === 'cancel' ? `Canceled ${id}.` : `${id} is queued again.`, true);
      if (rec && rec.id) { renderDetail(rec); updateRowFromRecord(rec); }
      scheduleDetailRefresh(400);
    } catch (e) {
      if (D.id !== id || e.status === 401) return;
      showDetailMessage(`${kind === 'cancel' ? 'Cancel' : 'Retry'} failed: ${e.message}`, false);
      scheduleDetailRefresh(50);
    } finally {
      D.busy = false;
      $('cancel-button').disabled = false;
      $('retry-button').disabled = false;
    }
  }

  // ------------------------------------------------------------------------------------
  // wiring
  // ------------------------------------------------------------------------------------
  function tick() {
    // a filtered first page sheds rows that left its state (dimmed meanwhile) every 15 s
    if (J.page === 0 && J.filter && !J.loading && Date.now() - J.lastRelist > 15000 &&
        [...J.rows.values()].some((r) => r.rec.state !== J.filter)) {
      J.lastRelist = Date.now();
      loadJobs({ soft: true });
    }
    for (const n of document.querySelectorAll('[data-ts]')) {
      const text = fmtRel(n.dataset.ts);
      if (n.textContent !== text) n.textContent = text;
    }
  }

  function bindStatic() {
    $('token-form').addEventListener('submit', submitToken);
    $('pause-button').addEventListener('click', togglePause);
    $('jobs-older').addEventListener('click', goOlder);
    $('jobs-newer').addEventListener('click', goNewer);
    $('job-tabs').addEventListener('click', (e) => {
      const t = e.target.closest('.tab');
      if (t && t.dataset.state !== J.filter) setFilter(t.dataset.state);
    });
    $('detail-close').addEventListener('click', closeDetail);
    $('detail-overlay').addEventListener('click', closeDetail);
    $('cancel-button').addEventListener('click', () => detailAction('cancel'));
    $('retry-button').addEventListener('click', () => detailAction('retry'));
    document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && D.id) closeDetail(); });
    document.addEventListener('visibilitychange', () => { if (!document.hidden) drawCharts(); });
    renderPager();
    renderPill();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
