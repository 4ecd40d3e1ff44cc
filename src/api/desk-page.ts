// The desk's page: plain HTML, one small script and one stylesheet, no build step and no
// library. The script polls GET /reviews every 2 seconds and sends decisions to the
// /reviews routes with the session's CSRF token; every outcome is read out in words.

export const DESK_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{{csrf}}">
<title>Operators' desk · money-transfer</title>
<link rel="stylesheet" href="/desk/desk.css">
<script src="/desk/desk.js" defer></script>
</head>
<body>
<header>
  <p>Signed in as <strong id="subject">{{subject}}</strong> (roles: <span id="roles">{{roles}}</span>)
  <button type="button" id="sign-out">Sign out</button></p>
</header>
<main>
  <h1>Transfers waiting for review</h1>
  <p id="outcome" role="status" aria-live="polite"></p>
  <p id="updated" class="quiet">Loading…</p>
  <div id="reviews"></div>
  <nav aria-label="Pages"><button type="button" id="previous">Previous page</button>
  <span id="page-label"></span> <button type="button" id="next">Next page</button></nav>
</main>
</body>
</html>
`;

export const DESK_STYLE = `body { font: 16px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 70rem; padding: 1rem; color: #1a1a1a; }
.quiet { color: #555; }
article { border: 1px solid #888; border-radius: 6px; padding: 0.75rem 1rem; margin: 1rem 0; }
article h2 { font-size: 1.1rem; margin: 0 0 0.5rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; margin: 0 0 0.75rem; }
dt { font-weight: 600; }
dd { margin: 0; }
form { display: inline-flex; flex-wrap: wrap; gap: 0.4rem; align-items: center; margin: 0.25rem 1rem 0.25rem 0; }
button { font: inherit; padding: 0.3rem 0.8rem; }
button:focus-visible, input:focus-visible, select:focus-visible { outline: 3px solid #0050b3; outline-offset: 2px; }
#outcome { font-weight: 600; min-height: 1.5em; }
`;

export const DESK_SCRIPT = `'use strict';
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const roles = new Set(document.getElementById('roles').textContent.split(' '));
const PAGE_SIZE = 10;
// The server pages the list: tokens[n] fetches page n, so Previous goes back the way Next came.
let tokens = [''];
let page = 0;
let shown = '';
let loading = false;

function text(tag, value, attributes) {
  const node = document.createElement(tag);
  if (value !== undefined) node.textContent = value;
  for (const [k, v] of Object.entries(attributes || {})) node.setAttribute(k, v);
  return node;
}

function waited(since) {
  if (!since) return 'unknown';
  const minutes = Math.max(0, Math.round((Date.now() - Date.parse(since)) / 60000));
  return minutes < 60 ? minutes + ' min' : Math.floor(minutes / 60) + ' h ' + (minutes % 60) + ' min';
}

async function decide(id, action, body, label) {
  const outcome = document.getElementById('outcome');
  outcome.textContent = label + ' ' + id + '…';
  // One key per click: sent again after a 503 or a lost connection, the decision is the one
  // the first may have made, never a second.
  const key = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
  let response;
  for (let tries = 1; ; tries++) {
    response = await fetch('/reviews/' + encodeURIComponent(id) + '/' + action, {
      method: 'POST',
      headers: Object.assign({ 'x-csrf-token': csrf, 'idempotency-key': key }, body ? { 'content-type': 'application/json' } : {}),
      body: body ? JSON.stringify(body) : undefined,
    }).catch(() => undefined);
    if ((response && response.status !== 503) || tries === 3) break;
    outcome.textContent = label + ' ' + id + ': no answer yet; sending it again…';
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
  const answer = response ? await response.json().catch(() => ({})) : {};
  if (!response || response.status === 503) {
    // Unknown, not refused: the decision may have been taken.
    outcome.textContent = label + ' ' + id + ': no answer; it may have been carried out. The list shows where the transfer is.';
  } else if (response.status === 202) {
    outcome.textContent = label + ' ' + id + ': accepted, and still being carried out.';
  } else if (response.ok) {
    const next = answer.stage === 'needs-review' ? 'it waits for review again' : 'it is now ' + answer.stage;
    outcome.textContent = label + ' ' + id + ': done; ' + next + '.';
  } else {
    outcome.textContent = label + ' ' + id + ' was refused: ' + (answer.detail || answer.title || response.status);
  }
  await load(true);
}

function actionForm(id, label, action, field) {
  const form = text('form');
  if (field) {
    const inputId = action + '-' + id;
    form.append(text('label', field.label, { for: inputId }));
    const input = field.options ? text('select', undefined, { id: inputId, name: field.name }) : text('input', undefined, { id: inputId, name: field.name, required: '', maxlength: '500' });
    for (const option of field.options || []) input.append(text('option', option, { value: option }));
    form.append(input);
  }
  form.append(text('button', label, { type: 'submit' }));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = field ? form.elements[field.name].value.trim() : undefined;
    void decide(id, action, field ? { [field.name]: value } : undefined, label);
  });
  return form;
}

function render(reviews) {
  const container = document.getElementById('reviews');
  container.replaceChildren();
  if (reviews.length === 0) container.append(text('p', 'No transfer is waiting for review.'));
  for (const { id, status, note, payment } of reviews) {
    const article = text('article', undefined, { 'aria-labelledby': 'title-' + id });
    article.append(text('h2', id, { id: 'title-' + id }));
    if (!status) {
      article.append(text('p', note));
      container.append(article);
      continue;
    }
    const review = status.review || {};
    const details = text('dl');
    const rows = [];
    if (payment) {
      rows.push(['Payment', payment.amount + ' from ' + payment.sourceAccount + ' to ' + payment.targetAccount + ' (ref ' + payment.referenceId + ')']);
    }
    rows.push(
      ['Owed', String(status.owed) + ' to ' + (payment ? payment.sourceAccount : 'the source')],
      ['Reason', review.reason],
      ['Waiting for', waited(review.since)],
      ['Reminders sent', String(review.reminders || 0)],
    );
    if (status.notices && status.notices.failed) rows.push(['Notices failed', String(status.notices.failed)]);
    if (review.proposal) rows.push(['Proposal', review.proposal.operator + ' proposes to resolve it manually: ' + review.proposal.note]);
    if (review.rejected) rows.push(['Last rejected', review.rejected.rejectedBy + ': ' + review.rejected.note]);
    for (const [term, value] of rows) details.append(text('dt', term), text('dd', value || ''));
    article.append(details);
    if (roles.has('reviewer')) {
      article.append(actionForm(id, 'Retry the refund', 'retry'));
      if ((review.accounts || []).length > 0) {
        article.append(actionForm(id, 'Refund to this account', 'refund-to', { name: 'account', label: 'Account', options: review.accounts }));
      }
      if (!review.proposal) {
        article.append(actionForm(id, 'Propose a manual resolution', 'propose', { name: 'note', label: 'What was done' }));
      }
    }
    if (roles.has('approver') && review.proposal) {
      article.append(actionForm(id, 'Approve the resolution', 'approve'));
      article.append(actionForm(id, 'Reject the resolution', 'reject', { name: 'note', label: 'Why' }));
    }
    container.append(article);
  }
}

/** Fetches the list and redraws it when it changed, or when forced after a decision, even with the focus in a form. */
async function load(force) {
  // A poll that would overlap a slow one waits for the next tick; a forced one goes anyway.
  if (loading && !force) return;
  loading = true;
  try {
    await loadPage(force);
  } finally {
    loading = false;
  }
}

async function loadPage(force) {
  const token = tokens[page];
  const response = await fetch('/reviews?pageSize=' + PAGE_SIZE + (token ? '&pageToken=' + encodeURIComponent(token) : ''));
  if (response.status === 401) {
    location.assign('/desk/login');
    return;
  }
  const answer = await response.json();
  if (!response.ok) {
    document.getElementById('updated').textContent = 'Cannot load the list: ' + (answer.detail || response.status);
    return;
  }
  const visible = answer.reviews;
  if (visible.length === 0 && page > 0) {
    // The list shrank under this page: back to the first.
    tokens = [''];
    page = 0;
    return loadPage(true);
  }
  tokens[page + 1] = answer.nextPageToken || '';
  document.getElementById('updated').textContent = answer.total + ' waiting; updated ' + new Date().toLocaleTimeString();
  document.getElementById('page-label').textContent = 'Page ' + (page + 1) + ' of ' + Math.max(1, Math.ceil(answer.total / PAGE_SIZE));
  document.getElementById('previous').disabled = page === 0;
  document.getElementById('next').disabled = !answer.nextPageToken;
  // Redraw only when something changed, so that a note being typed is not lost.
  const snapshot = JSON.stringify(visible);
  if (force || (snapshot !== shown && !document.activeElement.closest('form'))) {
    shown = snapshot;
    render(visible);
  }
}

document.getElementById('previous').addEventListener('click', () => { page--; void load(true); });
document.getElementById('next').addEventListener('click', () => { page++; void load(true); });
document.getElementById('sign-out').addEventListener('click', async () => {
  await fetch('/desk/logout', { method: 'POST', headers: { 'x-csrf-token': csrf } });
  location.assign('/desk/login');
});
void load();
setInterval(() => void load(), 2000);
`;
