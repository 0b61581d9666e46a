// ion's dashboard: the DOM, ion's JSON API, nothing else. Whatever comes from the API goes into the page as text
// (textContent, never innerHTML): reasons, replies and addresses come from relays and publishers.

const TOKEN_KEY = 'ion.api.token';
const REFRESH_MS = 5000;
const SVG = 'http://www.w3.org/2000/svg';

const $ = (id) => document.getElementById(id);
const selected = new Set();
let shownDead = [];
let deadCount = null;
let filters = {};
let timer = 0;

// ---- the API and its token ----------------------------------------------------------------------------------------

let tokenPrompt = null;

/** Calls ion's API with the token the tab keeps, asking for it when ion answers 401, and again while it refuses it. */
async function api(path, options = {}) {
  for (;;) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = new Headers(options.headers);
    if (token) headers.set('Authorization', `Bearer ${token}`);
    const response = await fetch(path, { ...options, headers });
    if (response.status === 401) {
      const detail = await problem(response);
      // Another call may have been given a new token meanwhile: try that before asking.
      if (sessionStorage.getItem(TOKEN_KEY) === token) await askForToken(token !== null, detail);
      continue;
    }
    if (!response.ok) throw new ApiError(response.status, await problem(response));
    return response.status === 204 ? null : response.json();
  }
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function problem(response) {
  try {
    const body = await response.json();
    return body.detail || body.title || `${response.status} ${response.statusText}`;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

/** One prompt at a time, however many calls are waiting for it. */
function askForToken(refused, detail) {
  tokenPrompt ??= new Promise((resolve) => {
    const dialog = $('token-dialog');
    $('token-message').textContent = refused
      ? 'ion did not accept that token. Enter the token again.'
      : 'This ion asks for its API token.';
    $('token-detail').textContent = detail;
    $('token-input').value = '';
    $('token-form').onsubmit = (event) => {
      event.preventDefault();
      const value = $('token-input').value.trim();
      if (!value) return;
      sessionStorage.setItem(TOKEN_KEY, value);
      dialog.close();
      tokenPrompt = null;
      resolve();
    };
    dialog.showModal();
  });
  return tokenPrompt;
}

// Without a token nothing on the page works: Escape does not close the prompt.
$('token-dialog').addEventListener('cancel', (event) => event.preventDefault());

// ---- formatting ---------------------------------------------------------------------------------------------------

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const minuteFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name in node && !name.startsWith('aria')) node[name] = value;
    else node.setAttribute(name, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function time(iso, format = timeFormat) {
  const date = new Date(iso);
  return el('time', { dateTime: date.toISOString(), title: dateTimeFormat.format(date) }, format.format(date));
}

function stateBadge(state) {
  return el('span', { className: `badge badge-${state}` }, state);
}

function count(value) {
  return value === null || value === undefined ? '–' : value.toLocaleString();
}

/** "00:00:01.2345678" (a .NET TimeSpan in JSON) in milliseconds. */
function milliseconds(span) {
  const match = /^(?:(\d+)\.)?(\d+):(\d+):(\d+(?:\.\d+)?)$/.exec(span ?? '');
  if (!match) return null;
  const [, days = '0', hours, minutes, seconds] = match;
  return ((Number(days) * 24 + Number(hours)) * 60 + Number(minutes)) * 60000 + Number(seconds) * 1000;
}

function recipientList(recipients) {
  const list = el('ul', { className: 'recipients' });
  for (const r of recipients) {
    list.append(el('li', { className: `recipient-${r.state}`, title: r.reply ?? '' }, r.address, ' ', stateBadge(r.state)));
  }
  return list;
}

/** Re-renders a table body, keeping focus on the control that had it (matched by data-key) when it is still there. */
function renderRows(tbody, rows) {
  const focused = tbody.contains(document.activeElement) ? document.activeElement.dataset.key : undefined;
  tbody.replaceChildren(...rows);
  if (focused) tbody.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
}

function showProblem(message) {
  const node = $('problem');
  node.textContent = message ?? '';
  node.hidden = !message;
}

// ---- counts, chart, relay, recent deliveries ----------------------------------------------------------------------

async function refresh() {
  clearTimeout(timer);
  try {
    const [activity, health, webhooks] = await Promise.all([api('/v1/activity?recent=15'), api('/healthz'), api('/v1/webhooks')]);
    showWebhooks(webhooks.webhooks);
    showCounts(activity);
    drawChart(activity.throughput, activity.at);
    showRecent(activity.recent);
    showRelay($('relay'), 'Relay', health.relay);
    // Only an ion with a fallback relay (Ion:Smtp:Fallback) says anything about one.
    $('fallback').hidden = !health.fallback;
    if (health.fallback) showRelay($('fallback'), 'Fallback relay', health.fallback);
    $('updated').textContent = `Updated ${timeFormat.format(new Date(activity.at))}`;
    showProblem(null);
    // New dead letters, or some left: the table follows (keeping what is selected and focused).
    if (deadCount !== null && activity.dead_letters !== deadCount) await loadDeadLetters();
    deadCount = activity.dead_letters;
  } catch (error) {
    showProblem(`Could not reach ion: ${error.message}`);
  } finally {
    timer = setTimeout(refresh, REFRESH_MS);
  }
}

/** The webhooks' outboxes: hidden when there is none; a receiver not taking events shows as waiting and dead. */
function showWebhooks(webhooks) {
  $('webhooks-section').hidden = webhooks.length === 0;
  renderRows($('webhooks').tBodies[0], webhooks.map((w) => el('tr', { dataset: { webhook: w.name } },
    el('td', { title: w.url }, w.name, ' ', el('span', { className: 'hint' }, w.url)),
    el('td', { className: 'num' }, count(w.pending)),
    el('td', {}, w.oldest_pending_at ? time(w.oldest_pending_at, dateTimeFormat) : ''),
    el('td', { className: 'num' }, count(w.dead)),
    el('td', { className: 'reason' }, w.last_dead_at ? time(w.last_dead_at, dateTimeFormat) : '', w.last_error ? ` ${w.last_error}` : ''))));
}

function showCounts(activity) {
  $('count-queued').textContent = count(activity.queued);
  $('count-in-flight').textContent = count(activity.in_flight);
  $('count-dead').textContent = count(activity.dead_letters);
  const sent = $('count-sent');
  sent.textContent = count(activity.sent_last_hour);
  sent.title = activity.sent_last_hour === null ? 'this store keeps no delivery history to count from' : '';
}

/** One relay's state in its badge: the primary's (#relay), or the fallback's (#fallback). */
function showRelay(node, name, relay) {
  // A live region: rewritten only when something changed, so a screen reader hears changes, not every refresh.
  const signature = JSON.stringify(relay);
  if (node.dataset.signature === signature) return;
  node.dataset.signature = signature;
  node.dataset.state = relay.state;
  const rate = relay.rate_per_second === null ? null : `${Number(relay.rate_per_second.toPrecision(3))}/s`;
  const parts = [];
  if (relay.state === 'up') {
    parts.push(`${name} up`);
    if (rate) parts.push(` · at most ${rate}`);
  } else if (relay.state === 'down') {
    parts.push(`${name} down`);
    if (relay.since) parts.push(' since ', time(relay.since));
    parts.push(`: ${relay.error ?? 'no answer'}`);
  } else {
    parts.push(`${name} throttled: sending at ${rate ?? 'a lower rate'}`);
    if (relay.since) parts.push(' since ', time(relay.since));
  }
  node.replaceChildren(...parts);
}

function niceCeiling(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((step) => step * power).find((nice) => nice >= value);
}

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function drawChart(series, at) {
  const chart = $('chart');
  if (series === null) {
    chart.replaceChildren(el('p', { className: 'note', id: 'no-history' },
      'This store (AWS: SQS and DynamoDB) keeps no per-minute history that ion could read without scanning the whole ',
      'delivery log, so there is no chart here. The queues\u2019 own numbers are in CloudWatch.'));
    return;
  }
  const [width, height, left, right, top, bottom] = [1000, 190, 34, 6, 8, 22];
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const sent = series.reduce((sum, m) => sum + m.sent, 0);
  const failed = series.reduce((sum, m) => sum + m.failed, 0);
  const max = niceCeiling(Math.max(1, ...series.map((m) => m.sent + m.failed)));
  const y = (value) => top + plotHeight - (value / max) * plotHeight;
  const slot = plotWidth / series.length;

  const title = svg('title', { id: 'chart-title' });
  title.textContent = `Last hour: ${sent} sent, ${failed} failed`;
  const grid = svg('g', { class: 'grid' });
  for (const value of [0, max / 2, max]) {
    grid.append(svg('line', { x1: left, x2: width - right, y1: y(value), y2: y(value) }));
    const label = svg('text', { x: left - 4, y: y(value) + 4, 'text-anchor': 'end' });
    label.textContent = Number.isInteger(value) ? value : value.toFixed(1);
    grid.append(label);
  }
  const bars = svg('g');
  series.forEach((minute, i) => {
    const x = left + i * slot + 0.5;
    const w = Math.max(1, slot - 1.5);
    const group = svg('g');
    const tip = svg('title');
    tip.textContent = `${minuteFormat.format(new Date(minute.minute))}: ${minute.sent} sent, ${minute.failed} failed`;
    group.append(tip);
    // A transparent column per minute, so a minute with nothing sent still has its tooltip.
    group.append(svg('rect', { x, y: top, width: w, height: plotHeight, class: 'slot' }));
    if (minute.sent > 0) {
      group.append(svg('rect', { x, y: y(minute.sent), width: w, height: y(0) - y(minute.sent), class: 'sent' }));
    }
    if (minute.failed > 0) {
      const base = y(minute.sent);
      group.append(svg('rect', { x, y: y(minute.sent + minute.failed), width: w, height: base - y(minute.sent + minute.failed), class: 'failed' }));
    }
    bars.append(group);
  });
  const axis = svg('g', { class: 'axis' });
  for (const [i, anchor] of [[0, 'start'], [30, 'middle'], [series.length - 1, 'end']]) {
    const label = svg('text', { x: i === series.length - 1 ? width - right : left + i * slot, y: height - 6, 'text-anchor': anchor });
    label.textContent = i === series.length - 1 ? 'now' : minuteFormat.format(new Date(series[i].minute));
    axis.append(label);
  }
  const drawing = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-labelledby': 'chart-title', class: 'throughput' },
    title, grid, bars, axis);
  const legend = el('p', { className: 'legend' },
    el('span', { className: 'key key-sent' }), ` sent ${sent}`, '  ',
    el('span', { className: 'key key-failed' }), ` failed ${failed} `,
    el('span', { className: 'hint' }, '(failed: attempts that did not reach every recipient, and messages given up without one)'));
  chart.replaceChildren(drawing, legend);
  chart.dataset.at = at;
}

function showRecent(recent) {
  const none = $('recent-none');
  const table = $('recent');
  if (recent === null) {
    none.textContent = 'This store (AWS) cannot list recent deliveries without scanning the delivery log. Open a message by its id below.';
    none.hidden = false;
    table.hidden = true;
    return;
  }
  table.hidden = recent.length === 0;
  none.hidden = recent.length > 0;
  none.textContent = 'Nothing delivered or dead-lettered yet.';
  renderRows(table.tBodies[0], recent.map((m) => el('tr', { dataset: { id: m.id } },
    el('td', {}, time(m.finished_at)),
    el('td', {}, messageButton(m.id, 'recent')),
    el('td', {}, stateBadge(m.state)),
    el('td', {}, recipientList(m.recipients)),
    el('td', { className: 'num' }, String(m.attempts)),
    el('td', { className: 'reason' }, m.reason ?? ''))));
}

function messageButton(id, where) {
  return el('button', {
    type: 'button', className: 'link', dataset: { key: `${where}-open:${id}` },
    onclick: () => openMessage(id),
  }, id);
}

// ---- dead letters -------------------------------------------------------------------------------------------------

function readFilters() {
  const form = $('filters');
  const query = {};
  const failureClass = form.elements.failure_class.value;
  const domain = form.elements.domain.value.trim();
  if (failureClass) query.failure_class = failureClass;
  if (domain) query.domain = domain;
  for (const name of ['since', 'before']) {
    // datetime-local is the browser's local time, without a zone: Date reads it so, and ion gets UTC.
    const value = form.elements[name].value;
    if (value) query[name] = new Date(value).toISOString();
  }
  return query;
}

async function loadDeadLetters() {
  const query = new URLSearchParams({ limit: '100', ...filters });
  let letters;
  try {
    letters = await api(`/v1/dead-letters?${query}`);
  } catch (error) {
    $('dead-summary').textContent = `Could not list dead letters: ${error.message}`;
    return;
  }
  shownDead = letters;
  for (const id of [...selected]) {
    if (!letters.some((d) => d.id === id)) selected.delete(id);
  }
  const filtered = Object.keys(filters).length > 0;
  $('dead-summary').textContent = letters.length === 0
    ? (filtered ? 'No dead letters match these filters.' : 'No dead letters.')
    : `${letters.length} shown${letters.length === 100 ? ' (the oldest 100: narrow the filters to see others)' : ''}${filtered ? ', filtered' : ''}.`;
  $('dead').hidden = letters.length === 0;
  renderRows($('dead').tBodies[0], letters.map((d) => el('tr', { dataset: { id: d.id } },
    el('td', {}, el('input', {
      type: 'checkbox', checked: selected.has(d.id), 'aria-label': `Select ${d.id}`, dataset: { key: `dead-select:${d.id}` },
      onchange: (event) => {
        if (event.target.checked) selected.add(d.id);
        else selected.delete(d.id);
        showSelection();
      },
    })),
    el('td', {}, messageButton(d.id, 'dead')),
    el('td', {}, time(d.dead_at, dateTimeFormat)),
    el('td', {}, el('span', { className: `class class-${d.failure_class}` }, d.failure_class)),
    el('td', { className: 'reason' }, d.reason),
    el('td', {}, recipientList(d.recipients)),
    el('td', { className: 'num' }, String(d.attempts)),
    el('td', {}, el('button', {
      type: 'button', 'aria-label': `Redrive ${d.id}`, dataset: { key: `dead-redrive:${d.id}` },
      onclick: () => redrive([d.id], d.id),
    }, 'Redrive')))));
  showSelection();
}

function showSelection() {
  const all = $('select-all');
  const chosen = shownDead.filter((d) => selected.has(d.id)).length;
  all.checked = shownDead.length > 0 && chosen === shownDead.length;
  all.indeterminate = chosen > 0 && chosen < shownDead.length;
  $('redrive-selected').textContent = chosen > 0 ? `Redrive selected (${chosen})` : 'Redrive selected';
  $('redrive-shown').textContent = shownDead.length > 0 ? `Redrive all shown (${shownDead.length})` : 'Redrive all shown';
}

async function redrive(ids, what) {
  const status = $('dead-status');
  if (ids.length === 0) {
    status.textContent = 'Nothing to redrive: select dead letters first (Space on a row\u2019s checkbox).';
    return;
  }
  status.textContent = `Redriving ${what}…`;
  try {
    const result = await api('/v1/dead-letters/redrive', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ ids }),
    });
    for (const id of ids) selected.delete(id);
    const moved = result.ids.length > 0 ? `: ${result.ids.join(', ')}` : '';
    status.textContent = `Redriven ${result.count} of ${ids.length}${moved}. Queued again; recent deliveries shows how they end.`;
  } catch (error) {
    status.textContent = `Redrive failed: ${error.message}`;
  }
  // The button pressed may be gone with its row: keep the keyboard where the result is read.
  if (!document.activeElement || document.activeElement === document.body || !document.activeElement.isConnected) status.focus();
  await loadDeadLetters();
  if (!document.activeElement || document.activeElement === document.body) status.focus();
  await refresh();
}

$('filters').addEventListener('submit', (event) => {
  event.preventDefault();
  filters = readFilters();
  loadDeadLetters();
});
$('filters').addEventListener('reset', () => {
  // The form clears its fields after this event.
  setTimeout(() => {
    filters = {};
    loadDeadLetters();
  });
});
$('select-all').addEventListener('change', (event) => {
  for (const d of shownDead) {
    if (event.target.checked) selected.add(d.id);
    else selected.delete(d.id);
  }
  loadDeadLetters();
});
$('redrive-selected').addEventListener('click', () => {
  const ids = shownDead.filter((d) => selected.has(d.id)).map((d) => d.id);
  redrive(ids, `${ids.length} selected`);
});
$('redrive-shown').addEventListener('click', () => redrive(shownDead.map((d) => d.id), `all ${shownDead.length} shown`));
$('refresh').addEventListener('click', () => Promise.all([refresh(), loadDeadLetters(), loadSuppressions()]));

// ---- the suppression list ----------------------------------------------------------------------------------------

const SUPPRESSIONS_SHOWN = 50;
let suppressionQuery = '';

/** The list's first entries (of a domain), or the one entry of an address: the query holds an @ or not. */
async function loadSuppressions() {
  const summary = $('suppressions-summary');
  const shown = $('suppressions');
  const query = suppressionQuery;
  let entries;
  let more = false;
  try {
    if (query.includes('@')) {
      try {
        entries = [await api(`/v1/suppressions/${encodeURIComponent(query)}`)];
      } catch (error) {
        if (error.status !== 404) throw error;
        entries = [];
      }
    } else {
      const params = new URLSearchParams({ limit: String(SUPPRESSIONS_SHOWN) });
      if (query) params.set('domain', query);
      const page = await api(`/v1/suppressions?${params}`);
      entries = page.suppressions;
      more = page.next !== null;
    }
  } catch (error) {
    summary.textContent = `Could not read the suppression list: ${error.message}`;
    shown.hidden = true;
    return;
  }
  summary.textContent = entries.length === 0
    ? (query.includes('@') ? `${query} is not suppressed: ion sends to it.` : query ? `No suppressed address in ${query}.` : 'No suppressed addresses.')
    : `${entries.length} shown${more ? ` (the first ${SUPPRESSIONS_SHOWN} by address: look up an address or a domain to see others)` : ''}${query ? `, for ${query}` : ''}.`;
  shown.hidden = entries.length === 0;
  renderRows(shown.tBodies[0], entries.map((s) => el('tr', { dataset: { address: s.address } },
    el('td', {}, s.address),
    el('td', {}, el('span', { className: `badge badge-suppressed reason-${s.reason}` }, s.reason)),
    el('td', {}, time(s.at, dateTimeFormat)),
    el('td', {}, s.expires_at ? time(s.expires_at, dateTimeFormat) : 'until removed'),
    el('td', { className: 'reason' }, s.detail),
    el('td', {}, s.message_id ? messageButton(s.message_id, 'suppression') : ''),
    el('td', {}, el('button', {
      type: 'button', 'aria-label': `Remove ${s.address}`, dataset: { key: `suppression-remove:${s.address}` },
      onclick: () => removeSuppression(s.address),
    }, 'Remove')))));
}

async function removeSuppression(address) {
  const status = $('suppressions-status');
  status.textContent = `Removing ${address}…`;
  try {
    await api(`/v1/suppressions/${encodeURIComponent(address)}`, { method: 'DELETE' });
    status.textContent = `Removed ${address}: ion sends to it again.`;
  } catch (error) {
    status.textContent = error.status === 404 ? `${address} was no longer on the list.` : `Could not remove ${address}: ${error.message}`;
  }
  await loadSuppressions();
  // The button pressed is gone with its row: keep the keyboard where the result is read.
  if (!document.activeElement || document.activeElement === document.body) status.focus();
}

$('suppression-find').addEventListener('submit', (event) => {
  event.preventDefault();
  suppressionQuery = $('suppression-query').value.trim();
  $('suppressions-status').textContent = '';
  loadSuppressions();
});

// ---- one message --------------------------------------------------------------------------------------------------

let openId = null;

async function openMessage(id) {
  const dialog = $('message');
  const body = $('message-body');
  openId = id;
  $('message-title').textContent = `Message ${id}`;
  $('message-redrive').hidden = true;
  $('message-cancel').hidden = true;
  body.replaceChildren(el('p', {}, 'Loading…'));
  if (!dialog.open) dialog.showModal();
  let record;
  try {
    record = await api(`/v1/messages/${encodeURIComponent(id)}`);
  } catch (error) {
    body.replaceChildren(el('p', { className: 'problem' }, error.status === 404
      ? `ion has no message ${id} (or no longer: the log forgets finished messages after its retention).`
      : `Could not load ${id}: ${error.message}`));
    return;
  }
  const facts = el('dl', { className: 'facts' },
    el('dt', {}, 'State'), el('dd', {}, stateBadge(record.state)),
    el('dt', {}, 'First queued'), el('dd', {}, time(record.created_at, dateTimeFormat)),
    el('dt', {}, 'Last change'), el('dd', {}, time(record.updated_at, dateTimeFormat)),
    el('dt', {}, 'Attempts counted'), el('dd', {}, String(record.attempts_used)));
  if (record.send_at) facts.append(el('dt', {}, 'Send at'), el('dd', {}, time(record.send_at, dateTimeFormat)));
  if (record.last_reason) facts.append(el('dt', {}, 'Reason'), el('dd', { className: 'reason' }, record.last_reason));
  if (record.failure_class) facts.append(el('dt', {}, 'Failure class'), el('dd', {}, record.failure_class));

  const recipients = table('Recipients', ['Address', 'Outcome', 'Code', 'Reply'], record.recipients.map((r) => [
    r.address, stateBadge(r.state), r.smtp_code === null ? '' : String(r.smtp_code), r.reply ?? '']));
  const attempts = record.attempts.length === 0
    ? el('p', { className: 'note' }, 'No attempt yet.')
    : table('Attempts', ['Time', 'Outcome', 'Relay', 'Code', 'Reply', 'Duration'], record.attempts.map((a) => {
      const ms = milliseconds(a.duration);
      const reply = el('div', {}, a.reply);
      if (a.recipients) {
        reply.append(el('ul', { className: 'recipients' }, ...a.recipients.map((r) =>
          el('li', {}, `${r.address}: ${r.smtp_code ?? ''} ${r.reply ?? r.state}`))));
      }
      // Which relay took it (primary, fallback); attempts from before ion had a fallback do not say.
      return [time(a.at, dateTimeFormat), el('span', { className: `outcome outcome-${a.outcome}` }, a.outcome), a.relay ?? '',
        a.smtp_code === null ? '' : String(a.smtp_code), reply, ms === null ? '' : `${Math.round(ms)} ms`];
    }));
  body.replaceChildren(facts, el('h3', {}, 'Recipients'), recipients, el('h3', {}, 'Attempts'), attempts);
  $('message-redrive').hidden = record.state !== 'dead';
  $('message-cancel').hidden = record.state !== 'scheduled';
}

// A scheduled message is cancelled with DELETE; the answer (or why not) shows in the dialog, which then shows the
// message as it is now.
async function cancelMessage(id) {
  let note;
  try {
    await api(`/v1/messages/${encodeURIComponent(id)}`, { method: 'DELETE' });
    note = el('p', { className: 'status', role: 'status' }, `Cancelled ${id}: it will not be sent.`);
  } catch (error) {
    note = el('p', { className: 'problem', role: 'alert' }, `Could not cancel ${id}: ${error.message}`);
  }
  await openMessage(id);
  $('message-body').prepend(note);
}

function table(label, headers, rows) {
  return el('table', { 'aria-label': label },
    el('thead', {}, el('tr', {}, ...headers.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, ...rows.map((cells) => el('tr', {}, ...cells.map((c) => el('td', {}, c))))));
}

$('message-close').addEventListener('click', () => $('message').close());
$('message-cancel').addEventListener('click', () => cancelMessage(openId));
$('message-redrive').addEventListener('click', async () => {
  const id = openId;
  $('message').close();
  await redrive([id], id);
});
$('find').addEventListener('submit', (event) => {
  event.preventDefault();
  const id = $('find-id').value.trim();
  if (id) openMessage(id);
});

refresh();
loadDeadLetters();
loadSuppressions();
