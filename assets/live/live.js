// reclaimd live lanes: reads /live/events (Server-Sent Events, see src/live/encode.rs) and
// draws, per instance, one lane per worker thread and the sampled requests below them.
// State for tests and the curious: window.reclaimdLive.snapshot().
'use strict';
(() => {
  const COLOR = {
    compute: ['#2f9e44', '#4cbf62', '#1f7a33'],
    db: '#d9463e',
    queue: '#e9b32a',
    sched: '#8b63d6',
    refused: '#8a8f98',
    idle: '#eef1f4',
    grid: '#d8dde3',
    text: '#5b6472',
  };
  const PHASE = ['queue', 'compute', 'db', 'sched'];
  const GROUPS = ['sync', 'async'];
  const GROUP_TITLE = { sync: 'sync pool', async: 'async runtime' };
  const LANE_H = 24;
  const LANE_GAP = 3;
  const GROUP_H = 18;
  const AXIS_H = 20;
  const REQ_H = 200;
  const MAX_ROWS = 100;
  const KEEP_MS = 12000;
  // Drawn this far behind the newest frame, so the right edge is complete.
  const DELAY_MS = 160;

  const live = {
    connected: false,
    error: null,
    frames: 0,
    bytes: 0,
    lost: 0,
    leftOut: 0,
    windowMs: 10000,
    instances: [],
    snapshot,
  };
  window.reclaimdLive = live;

  const byId = new Map();
  let offset = null; // server ms − performance.now()
  let paused = null; // server ms frozen at pause
  const recentBytes = []; // [performance.now(), bytes]

  const $ = (sel, el = document) => el.querySelector(sel);

  function serverNow() {
    if (offset === null) return 0;
    return paused ?? performance.now() + offset - DELAY_MS;
  }

  // ---- instances

  function laneLabel(group, index, lanes, threads, last) {
    if (index === lanes - 1 && last > 1) return `${group}-${index}…${threads - 1}`;
    return `${group}-${index}`;
  }

  function onHello(m) {
    let inst = byId.get(m.h);
    if (!inst) {
      const el = $('#instance-tpl').content.firstElementChild.cloneNode(true);
      inst = {
        h: m.h,
        el,
        canvas: $('.canvas', el),
        lanes: { sync: [], async: [] },
        reqs: new Map(),
        rows: [],
        seconds: [],
        sampled: 0,
        refusedSampled: 0,
        last: null,
      };
      byId.set(m.h, inst);
      live.instances.push(inst);
      const main = $('#instances');
      if (m.primary) main.prepend(el);
      else main.append(el);
      $('.flip-button', el).addEventListener('click', () => flip(inst));
      $('.token', el).addEventListener('keydown', (e) => {
        if (e.key === 'Enter') flip(inst);
      });
      inst.canvas.addEventListener('mousemove', (e) => hover(inst, e));
      inst.canvas.addEventListener('mouseleave', () => { inst.canvas.title = ''; });
    }
    inst.name = m.name || (m.primary ? 'this daemon' : `instance ${m.h}`);
    inst.primary = m.primary;
    inst.token = m.token;
    inst.tick = m.tick / 1000;
    GROUPS.forEach((g, gi) => {
      const n = m.lanes[gi];
      inst.lanes[g] = Array.from({ length: n }, (_, i) => ({
        group: g,
        index: i,
        threads: i === n - 1 ? m.last[gi] : 1,
        label: laneLabel(g, i, n, m.threads[gi], m.last[gi]),
        entries: [],
        computeUs: 0,
        dbUs: 0,
        segments: 0,
      }));
    });
    $('.name', inst.el).textContent = inst.name;
    setMode(inst, m.mode);
    buildLabels(inst);
    const button = $('.flip-button', inst.el);
    const input = $('.token', inst.el);
    const note = $('.flip-note', inst.el);
    if (!inst.primary) {
      button.disabled = true;
      input.disabled = true;
      note.textContent = 'flip this instance on its own page';
    } else if (!inst.token) {
      button.disabled = true;
      input.disabled = true;
      note.textContent = 'Flipping is disabled: no admin.token is configured (PUT /admin/mode answers 403). Set admin.token, or edit mode in the config file.';
    } else {
      button.disabled = false;
      input.disabled = false;
      note.textContent = '';
    }
  }

  function setMode(inst, mode) {
    if (inst.mode === mode) return;
    inst.mode = mode;
    inst.modeChangedAt = performance.now();
    inst.el.dataset.mode = mode;
    $('.mode-badge', inst.el).textContent = mode;
    $('.flip-button', inst.el).textContent = `flip to ${mode === 'sync' ? 'async' : 'sync'}`;
    for (const el of inst.el.querySelectorAll('.lane-label')) {
      el.classList.toggle('inactive', el.dataset.group !== mode);
    }
  }

  function buildLabels(inst) {
    const labels = $('.labels', inst.el);
    labels.textContent = '';
    const row = (text, h, cls) => {
      const d = document.createElement('div');
      d.className = cls;
      d.style.height = `${h}px`;
      d.textContent = text;
      labels.append(d);
      return d;
    };
    for (const g of GROUPS) {
      row(GROUP_TITLE[g], GROUP_H, 'lane-label group-label');
      for (const lane of inst.lanes[g]) {
        const d = row(lane.label, LANE_H, 'lane-label lane');
        d.style.marginBottom = `${LANE_GAP}px`;
        d.dataset.group = g;
        d.dataset.index = lane.index;
        d.classList.toggle('inactive', g !== inst.mode);
      }
    }
    row('', AXIS_H, 'lane-label');
    row('requests', REQ_H, 'lane-label group-label');
  }

  function height(inst) {
    let h = 0;
    for (const g of GROUPS) h += GROUP_H + inst.lanes[g].length * (LANE_H + LANE_GAP);
    return h + AXIS_H + REQ_H;
  }

  // ---- messages

  function onFrame(m) {
    const inst = byId.get(m.h);
    if (!inst) return;
    live.frames += 1;
    live.leftOut += m.rdrop;
    const t = m.t / 1000;
    const off = t - performance.now();
    if (offset === null || off > offset) offset = off;
    inst.last = { t, seq: m.seq, queue: m.q, inflight: m.f, gap: m.gap, rdrop: m.rdrop };
    setMode(inst, m.mode);
    for (const [gi, i, a] of m.lanes) {
      const lane = inst.lanes[GROUPS[gi]][i];
      if (!lane) continue;
      for (let k = 0; k + 4 < a.length; k += 5) {
        const e = { t0: t + a[k] / 1000, c: a[k + 1] / 1000, d: a[k + 2] / 1000, id: a[k + 3], n: a[k + 4] };
        lane.entries.push(e);
        lane.computeUs += a[k + 1];
        lane.dbUs += a[k + 2];
        lane.segments += e.n;
      }
    }
    const r = m.req;
    for (let k = 0; k + 5 < r.length; k += 6) {
      request(inst, r[k], r[k + 1], r[k + 2], t + r[k + 3] / 1000, t + r[k + 4] / 1000, r[k + 5]);
    }
    if (m.s) {
      inst.seconds.push(m.s);
      if (inst.seconds.length > 3) inst.seconds.shift();
      headline(inst);
    }
    prune(inst, t - KEEP_MS);
  }

  function request(inst, id, mode, from, t0, t1, to) {
    if (from === 9) {
      const q = { id, mode: GROUPS[mode], arrival: t0, segs: [], open: { p: 0, since: t0 }, end: null, row: -1 };
      inst.reqs.set(id, q);
      inst.sampled += 1;
      place(inst, q);
      return;
    }
    const q = inst.reqs.get(id);
    if (!q) return;
    q.segs.push({ p: from, t0, t1 });
    if (to === 9) {
      q.end = t1;
      q.open = null;
      q.refused = q.segs.every((s) => s.p === 0);
      if (q.refused) inst.refusedSampled += 1;
      if (q.row >= 0) inst.rows[q.row] = t1;
    } else {
      q.open = { p: to, since: t1 };
    }
  }

  // Packs bars into rows: a request takes the first row free since before it arrived.
  function place(inst, q) {
    for (let r = 0; r < inst.rows.length; r += 1) {
      if (inst.rows[r] < q.arrival - 1) {
        inst.rows[r] = Infinity;
        q.row = r;
        return;
      }
    }
    if (inst.rows.length < MAX_ROWS) {
      inst.rows.push(Infinity);
      q.row = inst.rows.length - 1;
    }
  }

  function prune(inst, before) {
    for (const g of GROUPS) {
      for (const lane of inst.lanes[g]) {
        let k = 0;
        while (k < lane.entries.length && lane.entries[k].t0 + lane.entries[k].c + lane.entries[k].d < before) k += 1;
        if (k > 0) lane.entries.splice(0, k);
      }
    }
    for (const [id, q] of inst.reqs) {
      if (q.end !== null && q.end < before) inst.reqs.delete(id);
      else if (q.end === null && q.arrival < before - 60000) inst.reqs.delete(id);
    }
  }

  // ---- headline

  const pct = (x) => (x === null || !Number.isFinite(x) ? '–' : `${(100 * x).toFixed(x < 0.1 ? 1 : 0)}%`);
  function ms(us) {
    if (us === undefined || us === null) return '–';
    if (us >= 1e6) return `${(us / 1e6).toFixed(2)} s`;
    if (us >= 1e4) return `${(us / 1e3).toFixed(0)} ms`;
    return `${(us / 1e3).toFixed(1)} ms`;
  }
  const rate = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));

  function aggregate(inst, mode) {
    const a = { served: 0, refused: 0, compute: 0, reclaimed: 0, busy: 0, blocked: 0, dt: 0 };
    let last = null;
    for (const s of inst.seconds) {
      const m = s[mode];
      for (const k of ['served', 'refused', 'compute', 'reclaimed', 'busy', 'blocked']) a[k] += m[k];
      a.dt += s.dt;
      last = m;
    }
    const secs = a.dt / 1e6 || 1;
    const threadTime = a.dt * (last ? last.threads : 1) || 1;
    return {
      served: a.served / secs,
      refused: a.refused / secs,
      reclaimed: a.compute > 0 ? Math.min(1, a.reclaimed / a.compute) : null,
      busy: a.busy / threadTime,
      blocked: a.blocked / threadTime,
      p50: last && last.p50,
      p99: last && last.p99,
      queue: last ? last.queue : 0,
      inflight: last ? last.inflight : 0,
    };
  }

  function headline(inst) {
    const stats = {};
    for (const g of GROUPS) stats[g] = aggregate(inst, g);
    inst.stats = stats;
    const cur = stats[inst.mode];
    const set = (cls, text) => { $(`.headline .${cls}`, inst.el).textContent = text; };
    set('reclaimed', pct(cur.reclaimed));
    set('blocked', pct(cur.blocked));
    set('tput', rate(cur.served));
    set('p99', ms(cur.p99));
    set('queue', String(cur.queue));
    set('refused', rate(cur.refused));
    const body = $('table.modes tbody', inst.el);
    body.textContent = '';
    for (const g of GROUPS) {
      const s = stats[g];
      const tr = document.createElement('tr');
      if (g === inst.mode) tr.className = 'active';
      for (const v of [g, rate(s.served), rate(s.refused), ms(s.p50), ms(s.p99), pct(s.reclaimed),
        pct(s.busy), pct(s.blocked), s.queue, s.inflight]) {
        const td = document.createElement('td');
        td.textContent = v;
        tr.append(td);
      }
      body.append(tr);
    }
  }

  // ---- drawing

  function computeColor(id) {
    return COLOR.compute[id % 3];
  }

  function draw(inst) {
    const cv = inst.canvas;
    const dpr = window.devicePixelRatio || 1;
    const W = cv.clientWidth;
    const H = height(inst);
    if (cv.width !== Math.round(W * dpr) || cv.height !== Math.round(H * dpr)) {
      cv.width = Math.round(W * dpr);
      cv.height = Math.round(H * dpr);
      cv.style.height = `${H}px`;
    }
    const ctx = cv.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    const now = serverNow();
    const w = live.windowMs;
    const start = now - w;
    const X = (t) => ((t - start) / w) * W;
    const scale = W / w;
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    let y = 0;
    for (const g of GROUPS) {
      y += GROUP_H;
      for (const lane of inst.lanes[g]) {
        ctx.fillStyle = COLOR.idle;
        ctx.fillRect(0, y, W, LANE_H);
        for (const e of lane.entries) {
          if (e.t0 + e.c + e.d < start || e.t0 > now) continue;
          const x = X(e.t0);
          const wc = e.c * scale;
          const wd = e.d * scale;
          if (wc > 0) {
            ctx.fillStyle = computeColor(e.id);
            ctx.fillRect(x, y, wc, LANE_H);
          }
          if (wd > 0) {
            ctx.fillStyle = COLOR.db;
            ctx.fillRect(x + wc, y, wd, LANE_H);
          }
          if (wc + wd >= 40 && e.n === 1) {
            ctx.fillStyle = '#fff';
            ctx.fillText(`#${e.id}`, Math.max(x, 0) + 3, y + LANE_H / 2);
          }
        }
        y += LANE_H + LANE_GAP;
      }
    }
    // Time axis.
    const step = w <= 1000 ? 100 : w <= 3000 ? 500 : 1000;
    ctx.fillStyle = COLOR.text;
    ctx.strokeStyle = COLOR.grid;
    ctx.beginPath();
    ctx.moveTo(0, y + 0.5);
    ctx.lineTo(W, y + 0.5);
    for (let k = 0; k <= w / step; k += 1) {
      const x = Math.round(W - k * step * scale) + 0.5;
      ctx.moveTo(x, y);
      ctx.lineTo(x, y + 5);
      const label = k === 0 ? 'now' : `-${((k * step) / 1000).toFixed(step < 1000 ? 1 : 0)} s`;
      const tw = ctx.measureText(label).width;
      ctx.fillText(label, Math.min(Math.max(x - tw / 2, 0), W - tw), y + 12);
    }
    ctx.stroke();
    y += AXIS_H;
    // Requests, one bar each, packed into rows.
    let rows = 0;
    const visible = [];
    for (const q of inst.reqs.values()) {
      if (q.row < 0 || (q.end !== null && q.end < start) || q.arrival > now) continue;
      visible.push(q);
      rows = Math.max(rows, q.row + 1);
    }
    const rh = Math.max(2, Math.min(12, REQ_H / Math.max(rows, 1)));
    const bar = Math.max(1, rh - (rh > 4 ? 2 : 0));
    for (const q of visible) {
      const top = y + q.row * rh;
      if (top + bar > y + REQ_H) continue;
      if (q.refused) {
        ctx.fillStyle = COLOR.refused;
        ctx.fillRect(X(q.arrival), top, Math.max(2, (q.end - q.arrival) * scale), bar);
        continue;
      }
      for (const s of q.segs) {
        ctx.fillStyle = PHASE[s.p] === 'compute' ? COLOR.compute[0] : COLOR[PHASE[s.p]];
        ctx.fillRect(X(s.t0), top, Math.max(0.5, (s.t1 - s.t0) * scale), bar);
      }
      if (q.open) {
        ctx.fillStyle = PHASE[q.open.p] === 'compute' ? COLOR.compute[0] : COLOR[PHASE[q.open.p]];
        ctx.fillRect(X(q.open.since), top, Math.max(0.5, (now - q.open.since) * scale), bar);
      }
    }
  }

  function hover(inst, e) {
    const rect = inst.canvas.getBoundingClientRect();
    const x = e.clientX - rect.left;
    const y = e.clientY - rect.top;
    const now = serverNow();
    const t = now - live.windowMs + (x / rect.width) * live.windowMs;
    let top = 0;
    for (const g of GROUPS) {
      top += GROUP_H;
      for (const lane of inst.lanes[g]) {
        if (y >= top && y < top + LANE_H) {
          const hit = lane.entries.find((en) => t >= en.t0 && t <= en.t0 + en.c + en.d);
          inst.canvas.title = hit
            ? `${lane.label}: request #${hit.id}${hit.n > 1 ? ` and ${hit.n - 1} more` : ''} — ` +
              `${hit.c.toFixed(2)} ms computing, ${hit.d.toFixed(2)} ms blocked in DB calls`
            : `${lane.label}: idle`;
          return;
        }
        top += LANE_H + LANE_GAP;
      }
    }
    inst.canvas.title = '';
  }

  function frame() {
    for (const inst of live.instances) draw(inst);
    const now = performance.now();
    while (recentBytes.length && recentBytes[0][0] < now - 5000) recentBytes.shift();
    const bytes = recentBytes.reduce((a, b) => a + b[1], 0);
    const span = recentBytes.length ? Math.max(1000, now - recentBytes[0][0]) : 5000;
    const parts = [`stream: ${(bytes / span).toFixed(1)} kB/s`, `${live.frames} frames`];
    if (live.lost) parts.push(`${live.lost} lost (slow connection)`);
    if (live.leftOut) parts.push(`${live.leftOut} request events left out (stream budget)`);
    const inst = live.instances[0];
    if (inst && inst.last) {
      parts.push(`requests sampled: at most 1 per ${(inst.last.gap / 1000).toFixed(0)} ms`);
    }
    $('#stream').textContent = parts.join(' · ');
    requestAnimationFrame(frame);
  }

  // ---- flipping

  async function flip(inst) {
    const note = $('.flip-note', inst.el);
    const token = $('.token', inst.el).value.trim();
    const to = inst.mode === 'sync' ? 'async' : 'sync';
    note.classList.remove('bad');
    if (!token) {
      note.textContent = 'type the admin token first';
      note.classList.add('bad');
      return;
    }
    note.textContent = `flipping to ${to}…`;
    try {
      const r = await fetch('/admin/mode', {
        method: 'PUT',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ mode: to }),
      });
      const body = await r.json().catch(() => ({}));
      if (r.ok) {
        note.textContent = `new requests now run ${body.mode} (was ${body.previous}); in-flight ones finish in theirs`;
      } else {
        note.classList.add('bad');
        note.textContent = r.status === 401 ? 'wrong token (401)'
          : r.status === 403 ? 'flipping is disabled: no admin.token configured (403)'
            : `refused: HTTP ${r.status} ${body.error ? body.error.message : ''}`;
      }
    } catch (err) {
      note.classList.add('bad');
      note.textContent = `cannot reach the daemon: ${err}`;
    }
  }

  // ---- the stream

  function status(text, ok) {
    const el = $('#status');
    el.textContent = text;
    el.className = `status ${ok ? 'ok' : 'bad'}`;
  }

  function reset() {
    byId.clear();
    live.instances = [];
    $('#instances').textContent = '';
    offset = null;
  }

  function handle(m) {
    if (m.type === 'frame') onFrame(m);
    else if (m.type === 'hello') onHello(m);
    else if (m.type === 'lost') live.lost = m.frames;
  }

  async function connect() {
    let resp;
    try {
      resp = await fetch('/live/events', { cache: 'no-store' });
    } catch (err) {
      return retry(`cannot reach the daemon (${err.message}); retrying`, 2000);
    }
    if (resp.status === 503) {
      return retry('the daemon already serves its maximum of live viewers (live.max_viewers); retrying', 5000);
    }
    if (!resp.ok) return retry(`stream refused: HTTP ${resp.status}; retrying`, 5000);
    reset();
    live.connected = true;
    live.error = null;
    status('live', true);
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        live.bytes += value.length;
        recentBytes.push([performance.now(), value.length]);
        buf += decoder.decode(value, { stream: true });
        let cut = buf.indexOf('\n\n');
        while (cut >= 0) {
          for (const line of buf.slice(0, cut).split('\n')) {
            if (line.startsWith('data: ')) handle(JSON.parse(line.slice(6)));
          }
          buf = buf.slice(cut + 2);
          cut = buf.indexOf('\n\n');
        }
      }
    } catch (err) {
      live.error = String(err);
    }
    live.connected = false;
    return retry('stream ended (daemon stopped?); reconnecting', 2000);
  }

  function retry(text, after) {
    live.connected = false;
    live.error = text;
    status(text, false);
    setTimeout(connect, after);
  }

  function snapshot() {
    return {
      connected: live.connected,
      error: live.error,
      frames: live.frames,
      lost: live.lost,
      bytes: live.bytes,
      windowMs: live.windowMs,
      instances: live.instances.map((i) => ({
        h: i.h,
        name: i.name,
        primary: i.primary,
        mode: i.mode,
        token: i.token,
        lanes: GROUPS.flatMap((g) => i.lanes[g].map((l) => ({
          group: l.group, index: l.index, threads: l.threads, label: l.label,
          computeUs: l.computeUs, dbUs: l.dbUs, segments: l.segments,
        }))),
        requestsInView: i.reqs.size,
        sampled: i.sampled,
        stats: i.stats || null,
        last: i.last,
      })),
    };
  }

  $('#window').addEventListener('change', (e) => { live.windowMs = Number(e.target.value); });
  $('#pause').addEventListener('change', (e) => {
    paused = e.target.checked ? serverNow() : null;
  });
  connect();
  requestAnimationFrame(frame);
})();
