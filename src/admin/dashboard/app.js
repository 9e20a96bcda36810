// The Turnpike dashboard: preact + htm as plain ES modules (served by the admin listener, no build step). It reads
// GET /api/dashboard/stream with fetch() so the admin token goes in the Authorization header, and renders the
// summary the gateway pushes once a second (with workers, summed over them by the primary).
import { h, render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import htm from 'htm';

const html = htm.bind(h);
const TOKEN_KEY = 'turnpike-admin-token';

const authHeaders = (token) => (token ? { authorization: `Bearer ${token}` } : {});

/** Reads `event: summary` messages from the stream until it ends or `signal` aborts. */
async function readStream(token, signal, onSummary) {
  const res = await fetch('/api/dashboard/stream', { headers: authHeaders(token), signal, cache: 'no-store' });
  if (res.status === 401) throw Object.assign(new Error('the token was refused'), { unauthorized: true });
  if (!res.ok || res.body === null) {
    const problem = await res.json().catch(() => ({}));
    throw new Error(`the stream answered ${res.status}${problem.detail ? `: ${problem.detail}` : ''}`);
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const message = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      const data = [];
      for (const line of message.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (event === 'summary' && data.length > 0) onSummary(JSON.parse(data.join('\n')));
    }
  }
}

const pct = (x) => (x === null || x === undefined ? '–' : `${(x * 100).toFixed(1)}%`);
const ms = (x) => (x === null || x === undefined ? '–' : x < 10 ? `${x.toFixed(2)} ms` : `${Math.round(x)} ms`);
const num = (x) => new Intl.NumberFormat('en').format(x);
const bytes = (n) =>
  n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`;

function Spark({ series }) {
  const max = Math.max(1, ...series);
  const w = 120;
  const hgt = 24;
  const points = series.map(
    (v, i) => `${((i / (series.length - 1)) * w).toFixed(1)},${(hgt - (v / max) * (hgt - 2) - 1).toFixed(1)}`,
  );
  return html`<svg class="spark" width=${w} height=${hgt} viewBox="0 0 ${w} ${hgt}" aria-hidden="true">
    <polyline points=${points.join(' ')} />
  </svg>`;
}

function Routes({ routes, windowSeconds }) {
  return html`<section class="wide" id="routes">
    <h2>Routes · last ${windowSeconds / 60} minutes</h2>
    ${
      routes.length === 0
        ? html`<p class="muted">No requests yet.</p>`
        : html`<table>
            <thead>
              <tr>
                <th>Route</th>
                <th class="num">req/s (10 s)</th>
                <th class="num">Requests</th>
                <th class="num">Errors (5xx)</th>
                <th class="num">p50</th>
                <th class="num">p99</th>
                <th>Last 60 s</th>
              </tr>
            </thead>
            <tbody>
              ${routes.map(
                (r) =>
                  html`<tr key=${r.route} data-route=${r.route}>
                    <td>${r.route}</td>
                    <td class="num rps">${r.rps.toFixed(1)}</td>
                    <td class="num requests">${num(r.requests)}</td>
                    <td class="num errors">${pct(r.errorRate)}</td>
                    <td class="num p50">${ms(r.p50Ms)}</td>
                    <td class="num p99">${ms(r.p99Ms)}</td>
                    <td><${Spark} series=${r.series} /></td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }
  </section>`;
}

function health(t) {
  if (t.drained) return html`<span class="badge off">drained</span>`;
  if (!t.healthy) return html`<span class="badge bad">unhealthy</span>`;
  if (t.ejected) return html`<span class="badge warn">ejected</span>`;
  return html`<span class="badge ok">healthy</span>`;
}

const breakerBadge = (state) =>
  state === null
    ? html`<span class="badge off">no breaker</span>`
    : html`<span class="badge ${state === 'closed' ? 'ok' : state === 'open' ? 'bad' : 'warn'}"
        >breaker ${state}</span
      >`;

function Upstreams({ upstreams, token, onError }) {
  const [busy, setBusy] = useState('');
  const act = async (upstream, target, action) => {
    setBusy(`${upstream}|${target}`);
    onError('');
    try {
      const res = await fetch(
        `/api/upstreams/${encodeURIComponent(upstream)}/targets/${encodeURIComponent(target)}/${action}`,
        { method: 'POST', headers: authHeaders(token) },
      );
      if (!res.ok) onError(`${action} ${target}: ${(await res.json()).detail ?? res.status}`);
    } catch (err) {
      onError(`${action} ${target}: ${err.message}`);
    } finally {
      setBusy('');
    }
  };
  return html`<section class="wide" id="upstreams">
    <h2>Upstreams</h2>
    ${upstreams.map(
      (u) =>
        html`<div key=${u.name} data-upstream=${u.name}>
          <h3>
            ${u.name} <span class="muted">${u.balance} · ${u.usable} in rotation</span> ${breakerBadge(u.breaker)}
          </h3>
          <table>
            <thead>
              <tr>
                <th>Target</th>
                <th>Health</th>
                <th class="num">In flight</th>
                <th class="num">Weight</th>
                <th>Source</th>
                <th></th>
              </tr>
            </thead>
            <tbody>
              ${u.targets.map(
                (t) =>
                  html`<tr key=${t.target} data-target=${t.target}>
                    <td>${t.target}${t.backup ? html` <span class="muted">backup</span>` : ''}</td>
                    <td class="health">${health(t)}</td>
                    <td class="num inflight">${t.inFlight}</td>
                    <td class="num">${t.weight}</td>
                    <td class="source muted">${t.source ?? 'config'}</td>
                    <td>
                      <button
                        class=${t.drained ? 'undrain' : 'drain'}
                        disabled=${busy === `${u.name}|${t.target}`}
                        onClick=${() => act(u.name, t.target, t.drained ? 'undrain' : 'drain')}
                      >
                        ${t.drained ? 'Undrain' : 'Drain'}
                      </button>
                    </td>
                  </tr>`,
              )}
            </tbody>
          </table>
        </div>`,
    )}
  </section>`;
}

function Decisions({ title, rows, id }) {
  return html`<div id=${id}>
    <h3>${title}</h3>
    ${
      rows.length === 0
        ? html`<p class="muted">No decisions.</p>`
        : html`<table>
            <thead>
              <tr>
                <th></th>
                <th class="num">Allowed</th>
                <th class="num">Limited</th>
              </tr>
            </thead>
            <tbody>
              ${rows.map(
                (d) =>
                  html`<tr key=${d.key} data-key=${d.key}>
                    <td>${d.key}</td>
                    <td class="num allowed">${num(d.allowed)}</td>
                    <td class="num limited">${num(d.limited)}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }
  </div>`;
}

function Cache({ cache }) {
  return html`<section id="cache">
    <h2>Cache</h2>
    <div class="big hit-ratio">${pct(cache.hitRatio)}</div>
    <p class="muted">hit ratio · ${num(cache.hits)} hits, ${num(cache.misses)} misses</p>
  </section>`;
}

function Reloads({ reloads }) {
  return html`<section id="reloads">
    <h2>Reloads</h2>
    ${
      reloads.length === 0
        ? html`<p class="muted">No reloads since start.</p>`
        : html`<table>
            <tbody>
              ${reloads.map(
                (r) =>
                  html`<tr key=${r.time}>
                    <td>${new Date(r.time).toLocaleTimeString()}</td>
                    <td>
                      ${r.ok ? html`<span class="badge ok">applied</span>` : html`<span class="badge bad">refused</span>`}
                    </td>
                    <td>v${r.version}</td>
                    <td class="muted">${r.error ?? ''}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }
  </section>`;
}

function L4({ l4 }) {
  return html`<section id="l4">
    <h2>L4 sessions · last 5 minutes</h2>
    ${
      l4.length === 0
        ? html`<p class="muted">No TCP or UDP sessions.</p>`
        : html`<table>
            <thead>
              <tr>
                <th>Listener</th>
                <th class="num">Open</th>
                <th class="num">Closed</th>
                <th class="num">Errors</th>
                <th class="num">In</th>
                <th class="num">Out</th>
              </tr>
            </thead>
            <tbody>
              ${l4.map(
                (s) =>
                  html`<tr key=${s.listener} data-listener=${s.listener}>
                    <td>${s.listener} <span class="muted">${s.protocol}</span></td>
                    <td class="num open">${s.open}</td>
                    <td class="num closed">${num(s.closed)}</td>
                    <td class="num errors">${num(s.errors)}</td>
                    <td class="num">${bytes(s.bytesIn)}</td>
                    <td class="num">${bytes(s.bytesOut)}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }
  </section>`;
}

function Login({ error, onLogin }) {
  const [value, setValue] = useState('');
  const submit = (e) => {
    e.preventDefault();
    onLogin(value.trim());
  };
  return html`<form class="login" onSubmit=${submit}>
    <h2>Turnpike admin</h2>
    <label for="token">Admin token</label>
    <input
      id="token"
      type="password"
      autocomplete="current-password"
      value=${value}
      onInput=${(e) => setValue(e.currentTarget.value)}
    />
    ${error ? html`<p class="error">${error}</p>` : ''}
    <button class="primary" type="submit">Log in</button>
    <p class="muted">
      One of <code>admin.auth.tokens</code>; leave empty when the admin listener has no tokens (loopback only).
    </p>
  </form>`;
}

/** With workers the numbers are summed over them; a worker that did not answer in time is left out of a tick. */
function Workers({ workers }) {
  return workers.answered === workers.asked
    ? html`<span class="muted" id="workers">${workers.asked} workers</span>`
    : html`<span class="error" id="workers">${workers.answered} of ${workers.asked} workers answered</span>`;
}

function App() {
  const [token, setToken] = useState(() => sessionStorage.getItem(TOKEN_KEY));
  const [summary, setSummary] = useState(null);
  const [live, setLive] = useState(false);
  const [error, setError] = useState('');
  /** A drain or undrain that failed (kept until the next one). */
  const [actionError, setActionError] = useState('');

  useEffect(() => {
    if (token === null) return undefined;
    const abort = new AbortController();
    let retry;
    const connect = () => {
      readStream(token, abort.signal, (s) => {
        setSummary(s);
        setLive(true);
        setError('');
      })
        .then(() => {
          setLive(false);
          if (!abort.signal.aborted) retry = setTimeout(connect, 2000);
        })
        .catch((err) => {
          setLive(false);
          if (abort.signal.aborted) return;
          if (err.unauthorized) {
            sessionStorage.removeItem(TOKEN_KEY);
            setError(err.message);
            setToken(null);
          } else {
            setError(`${err.message}; retrying`);
            retry = setTimeout(connect, 2000);
          }
        });
    };
    connect();
    return () => {
      clearTimeout(retry);
      abort.abort();
    };
  }, [token]);

  if (token === null)
    return html`<${Login}
      error=${error}
      onLogin=${(t) => {
        sessionStorage.setItem(TOKEN_KEY, t);
        setError('');
        setToken(t);
      }}
    />`;
  const logout = () => {
    sessionStorage.removeItem(TOKEN_KEY);
    setSummary(null);
    setToken(null);
  };
  return html`<header>
      <h1>Turnpike</h1>
      <span id="status"><span class="live ${live ? 'on' : ''}"></span> ${live ? 'live' : 'connecting…'}</span>
      ${summary ? html`<span class="muted" id="version">config v${summary.version}</span>` : ''}
      ${summary?.workers ? html`<${Workers} workers=${summary.workers} />` : ''}
      <span class="spacer"></span>
      <button onClick=${logout}>Log out</button>
    </header>
    <main>
      ${error ? html`<p class="error" id="error">${error}</p>` : ''}
      ${actionError ? html`<p class="error" id="action-error">${actionError}</p>` : ''}
      ${
        summary === null
          ? html`<p class="muted">Waiting for the first numbers…</p>`
          : html`<div class="grid">
              <${Routes} routes=${summary.routes} windowSeconds=${summary.windowSeconds} />
              <${Upstreams} upstreams=${summary.upstreams} token=${token} onError=${setActionError} />
              <section id="rate-limits">
                <h2>Rate limits · last 5 minutes</h2>
                <${Decisions} id="limits-by-route" title="By route" rows=${summary.rateLimits.byRoute} />
                <${Decisions} id="limits-by-consumer" title="By consumer" rows=${summary.rateLimits.byConsumer} />
              </section>
              <${Cache} cache=${summary.cache} />
              <${Reloads} reloads=${summary.reloads} />
              <${L4} l4=${summary.l4} />
            </div>`
      }
    </main>`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
