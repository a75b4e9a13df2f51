// Rampart live dashboard. Polls the read-only admin API and renders it.
// Every value from the API is inserted as text (textContent, createTextNode):
// route, upstream and target names come from config and are not trusted.
'use strict';

(function () {
  const POLL_MS = 2000;          // how often the admin API is read
  const WINDOW_MS = 10000;       // rates, 5xx share and quantiles cover this
  const SPARK_MS = 5 * 60 * 1000; // the sparkline covers this

  const api = (path) => new URL('../api/v1/' + path, document.baseURI).toString();
  const $ = (id) => document.getElementById(id);

  // el builds an element; attrs sets properties (className, title, colSpan…),
  // children are nodes or strings (always inserted as text).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    if (attrs) for (const k of Object.keys(attrs)) e[k] = attrs[k];
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return e;
  }
  function replace(node, ...children) {
    node.replaceChildren(...children.filter((c) => c !== null && c !== undefined)
      .map((c) => (typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c)));
  }

  // serverNow is the admin API's clock at the last poll (ms): ages and
  // countdowns are measured against it, not the browser's clock.
  let serverNow = Date.now();

  // samples are successive /api/v1/stats answers: {t: ms, routes: Map(name -> route)}.
  let samples = [];

  async function getJSON(path) {
    const resp = await fetch(api(path), { cache: 'no-store', credentials: 'same-origin' });
    if (resp.status === 404 && path === 'config/status') return {};
    if (!resp.ok) throw new Error(path + ': HTTP ' + resp.status);
    return resp.json();
  }

  // ---- formatting ----
  function fmtInt(n) { return Number(n || 0).toLocaleString('en-US'); }
  function fmtRate(r) {
    if (!isFinite(r)) return '—';
    if (r === 0) return '0';
    if (r < 10) return r.toFixed(2);
    if (r < 100) return r.toFixed(1);
    return Math.round(r).toLocaleString('en-US');
  }
  function fmtPct(f) {
    if (!isFinite(f)) return '—';
    if (f === 0) return '0%';
    if (f < 0.001) return '<0.1%';
    return (f * 100).toFixed(f < 0.1 ? 1 : 0) + '%';
  }
  function fmtSeconds(s) {
    if (s === null || !isFinite(s)) return '—';
    if (s === Infinity) return '> 30 s';
    const ms = s * 1000;
    if (ms < 1) return ms.toFixed(2) + ' ms';
    if (ms < 10) return ms.toFixed(1) + ' ms';
    if (ms < 1000) return Math.round(ms) + ' ms';
    return s.toFixed(2) + ' s';
  }
  function fmtMs(ms) { return fmtSeconds(ms / 1000); }
  function fmtTime(iso) {
    const d = new Date(iso);
    return isNaN(d) ? '' : d.toLocaleTimeString('en-GB', { hour12: false });
  }
  function fmtAgo(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return '';
    const s = Math.round((serverNow - d.getTime()) / 1000);
    if (s < 60) return Math.max(s, 0) + ' s ago';
    if (s < 3600) return Math.round(s / 60) + ' min ago';
    return Math.round(s / 3600) + ' h ago';
  }
  function fmtLeft(s) { return s < 120 ? s + ' s' : Math.round(s / 60) + ' min'; }
  function shortVersion(v) { return v ? String(v).slice(0, 12) : '—'; }

  // quantile estimates the q-quantile from cumulative bucket counts, as
  // Prometheus' histogram_quantile does: linear within the bucket.
  function quantile(q, le, counts, total) {
    if (!total) return null;
    const rank = q * total;
    for (let i = 0; i < le.length; i++) {
      if (counts[i] >= rank) {
        const lo = i === 0 ? 0 : le[i - 1];
        const below = i === 0 ? 0 : counts[i - 1];
        const inBucket = counts[i] - below;
        return inBucket > 0 ? lo + (le[i] - lo) * (rank - below) / inBucket : le[i];
      }
    }
    return Infinity; // in the +Inf bucket
  }

  // diff returns what happened to route r between sample a (older) and now.
  function diff(now, old) {
    if (!old) return null;
    const d = {
      total: now.total - old.total,
      errors: now.errors - old.errors,
      count: now.duration.count - old.duration.count,
      counts: now.duration.counts.map((c, i) => c - (old.duration.counts[i] || 0)),
    };
    return d.total < 0 || d.count < 0 ? null : d; // a counter reset: no window
  }

  // ---- rendering ----
  function renderConfig(stats, status) {
    const version = (status.active && status.active.version) || stats.version;
    replace($('version'), shortVersion(version));
    $('version').title = version || '';
    const meta = [];
    if (status.active && status.active.source) meta.push('from ' + status.active.source);
    if (status.active && status.active.applied_at) meta.push('applied ' + fmtAgo(status.active.applied_at));
    if (status.active && status.active.from_cache) meta.push('(cached copy)');
    replace($('version-meta'), meta.join(' · '));
    const cand = stats.candidate || (status.candidate ? { version: status.candidate.version, percent: status.candidate.percent } : null);
    if (cand) {
      replace($('candidate'), el('span', { className: 'pill info', title: cand.version },
        'candidate ' + shortVersion(cand.version) + ' · ' + cand.percent + '%'));
    } else {
      replace($('candidate'), el('span', { className: 'muted' }, 'no staged candidate'));
    }
  }

  function renderReloads(stats, status) {
    const rl = status.reloads || stats.reloads || {};
    replace($('reloads-ok'), fmtInt(rl.ok));
    replace($('reloads-error'), fmtInt(rl.error));
    $('reloads-error').className = rl.error > 0 ? 'err-high' : '';
    const last = status.last_reload;
    if (!last) { replace($('last-reload'), 'no reload yet'); return; }
    const good = last.result === 'ok';
    const parts = [el('span', { className: 'pill ' + (good ? 'good' : 'bad') }, last.result || '?'), ' ',
      (last.source || '') + ' ' + fmtAgo(last.time)];
    if (good && last.version) parts.push(' → ' + shortVersion(last.version));
    const box = el('div', null, ...parts);
    if (!good && last.errors && last.errors.length) {
      box.appendChild(el('div', { className: 'small' }, last.errors[0].text || last.errors[0].message || ''));
      if (last.errors.length > 1) box.appendChild(el('div', { className: 'small' }, '+' + (last.errors.length - 1) + ' more'));
    }
    replace($('last-reload'), box);
  }

  function renderListeners(stats) {
    const rows = (stats.listeners || []).map((l) =>
      el('tr', null, el('td', null, l.name), el('td', { className: 'num' }, fmtInt(l.active_connections))));
    if (!rows.length) rows.push(el('tr', null, el('td', { className: 'muted' }, 'no listeners')));
    replace($('listeners'), ...rows);
  }

  function renderRoutes(stats, nowT) {
    // The window's start is the oldest sample no older than WINDOW_MS.
    let base = null;
    for (const s of samples) {
      if (s.t < nowT && nowT - s.t <= WINDOW_MS + POLL_MS / 2) { base = s; break; }
    }
    const secs = base ? (nowT - base.t) / 1000 : 0;
    let totalRate = 0, winTotal = 0, winErrors = 0;
    const rows = [];
    for (const r of stats.routes) {
      const d = base ? diff(r, base.routes.get(r.route)) : null;
      const windowed = d && d.total > 0;
      const rate = d && secs > 0 ? d.total / secs : 0;
      totalRate += rate;
      if (d) { winTotal += d.total; winErrors += d.errors; }
      const errShare = windowed ? d.errors / d.total : (r.total ? r.errors / r.total : NaN);
      const le = r.duration.le;
      const p50 = windowed ? quantile(0.5, le, d.counts, d.count) : quantile(0.5, le, r.duration.counts, r.duration.count);
      const p99 = windowed ? quantile(0.99, le, d.counts, d.count) : quantile(0.99, le, r.duration.counts, r.duration.count);
      const cls = (extra) => 'num' + (windowed ? '' : ' since') + (extra ? ' ' + extra : '');
      const codes = el('td', { className: 'codes' });
      for (const code of Object.keys(r.requests).sort()) {
        codes.appendChild(el('span', { className: 'c' + code.charAt(0) }, code + ': ' + fmtInt(r.requests[code])));
      }
      rows.push(el('tr', null,
        el('td', { className: 'name' }, r.route === '' ? el('span', { className: 'muted' }, '(no route matched)') : r.route),
        el('td', { className: 'num' }, fmtInt(r.total)),
        el('td', { className: 'num' }, base ? fmtRate(rate) : '—'),
        el('td', { className: cls(errShare > 0.01 ? 'err-high' : '') }, fmtPct(errShare)),
        el('td', { className: cls() }, fmtSeconds(p50)),
        el('td', { className: cls() }, fmtSeconds(p99)),
        codes));
    }
    if (!rows.length) rows.push(el('tr', null, el('td', { colSpan: 7, className: 'muted' }, 'no routes')));
    replace($('routes'), ...rows);
    return base ? { rate: totalRate, errShare: winTotal ? winErrors / winTotal : NaN } : null;
  }

  function targetState(t) {
    if (t.ejected) {
      const until = t.ejected_until ? new Date(t.ejected_until) : null;
      let text = 'ejected';
      if (until && !isNaN(until)) {
        const left = Math.max(0, Math.round((until.getTime() - serverNow) / 1000));
        text += ' until ' + fmtTime(t.ejected_until) + ' (' + fmtLeft(left) + ')';
      }
      return el('span', { className: 'pill bad' }, text);
    }
    return t.healthy ? el('span', { className: 'pill good' }, 'healthy') : el('span', { className: 'pill bad' }, 'unhealthy');
  }

  function renderUpstreams(ups) {
    const rows = [];
    for (const u of ups.upstreams || []) {
      const open = u.circuit === 'open' || u.circuit === 'half_open';
      const circuit = el('td', null, el('span', { className: 'pill ' + (open ? 'warn' : 'good') }, 'circuit ' + (u.circuit || '?')));
      if (u.panic_mode) circuit.append(' ', el('span', { className: 'pill warn', title: 'Too few healthy targets: traffic goes to all of them' }, 'panic mode'));
      const head = el('td', { className: 'name' }, u.name);
      const sub = [u.balancer, u.failover ? 'failover → ' + u.failover : ''].filter(Boolean).join(' · ');
      if (sub) head.append(el('div', { className: 'muted small' }, sub));
      const targets = u.targets && u.targets.length ? u.targets : [null];
      targets.forEach((t, i) => {
        const tr = el('tr', { className: i === 0 ? 'group-start' : '' });
        tr.append(i === 0 ? head : el('td'), i === 0 ? circuit : el('td'));
        if (!t) {
          tr.append(el('td', { colSpan: 5, className: 'muted' }, 'no targets'));
        } else {
          tr.append(
            el('td', { className: 'addr' }, t.address, t.zone ? el('span', { className: 'muted' }, ' zone ' + t.zone) : null),
            el('td', null, targetState(t)),
            el('td', { className: 'num' }, fmtInt(t.active_requests)),
            el('td', { className: 'num' }, t.latency_ewma_ms > 0 ? fmtMs(t.latency_ewma_ms) : '—'),
            el('td', { className: 'num' }, fmtInt(t.weight)));
        }
        rows.push(tr);
      });
    }
    if (!rows.length) rows.push(el('tr', null, el('td', { colSpan: 7, className: 'muted' }, 'no upstreams')));
    replace($('upstreams'), ...rows);
  }

  // points are [t, requests/s] for the sparkline.
  let points = [];
  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const k of Object.keys(attrs)) e.setAttribute(k, attrs[k]);
    return e;
  }
  function renderSpark(nowT) {
    const W = 300, H = 60;
    const box = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', role: 'img' });
    const max = Math.max(1, ...points.map((p) => p[1]));
    const x = (t) => W - ((nowT - t) / SPARK_MS) * W;
    const y = (v) => H - 2 - (v / max) * (H - 6);
    box.append(svg('line', { class: 'base', x1: 0, y1: H - 1, x2: W, y2: H - 1 }));
    if (points.length > 1) {
      const line = points.map((p) => x(p[0]).toFixed(1) + ',' + y(p[1]).toFixed(1)).join(' ');
      const first = x(points[0][0]).toFixed(1), last = x(points[points.length - 1][0]).toFixed(1);
      box.append(svg('polygon', { class: 'area', points: first + ',' + H + ' ' + line + ' ' + last + ',' + H }));
      box.append(svg('polyline', { class: 'line', points: line }));
    }
    const peak = points.length ? Math.max(...points.map((p) => p[1])) : 0;
    const title = svg('title', {});
    title.textContent = 'peak ' + fmtRate(peak) + ' req/s';
    box.append(title);
    replace($('spark'), box);
    replace($('spark-range'), 'last 5 minutes · peak ' + fmtRate(peak) + ' req/s');
  }

  // ---- polling ----
  async function poll() {
    const [st, up, cs] = await Promise.allSettled([getJSON('stats'), getJSON('upstreams'), getJSON('config/status')]);
    const problems = [st, up, cs].filter((r) => r.status === 'rejected').map((r) => String(r.reason && r.reason.message || r.reason));
    if (st.status === 'fulfilled') {
      const stats = st.value;
      const nowT = new Date(stats.time).getTime() || Date.now();
      serverNow = nowT;
      const status = cs.status === 'fulfilled' ? cs.value || {} : {};
      renderConfig(stats, status);
      renderReloads(stats, status);
      renderListeners(stats);
      const win = renderRoutes(stats, nowT);
      // Sparkline points are rates between consecutive polls.
      const prev = samples[samples.length - 1];
      if (prev && nowT > prev.t) {
        let n = 0;
        for (const r of stats.routes) {
          const d = diff(r, prev.routes.get(r.route));
          if (d) n += d.total;
        }
        points.push([nowT, n / ((nowT - prev.t) / 1000)]);
      }
      points = points.filter((p) => nowT - p[0] <= SPARK_MS);
      samples.push({ t: nowT, routes: new Map(stats.routes.map((r) => [r.route, r])) });
      samples = samples.filter((s) => nowT - s.t <= Math.max(WINDOW_MS, POLL_MS) * 2);
      renderSpark(nowT);
      replace($('rps-now'), win ? fmtRate(win.rate) : '—');
      replace($('err-now'), win && isFinite(win.errShare) ? fmtPct(win.errShare) + ' 5xx' : '');
      $('err-now').className = 'small ' + (win && win.errShare > 0.01 ? 'err-high' : 'muted');
      replace($('updated'), 'updated ' + fmtTime(stats.time));
    }
    if (up.status === 'fulfilled') renderUpstreams(up.value);
    $('live').className = problems.length ? 'live stale' : 'live';
    replace($('live'), problems.length ? 'stale' : 'live');
    $('problem').hidden = !problems.length;
    replace($('problem'), problems.length ? 'Cannot read the admin API: ' + problems.join('; ') : '');
  }

  async function loop() {
    try { await poll(); } catch (e) {
      $('problem').hidden = false;
      replace($('problem'), 'Dashboard error: ' + String(e && e.message || e));
    }
    setTimeout(loop, POLL_MS);
  }
  loop();
})();
