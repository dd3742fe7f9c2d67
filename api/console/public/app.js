// Fleetbrain operator console: a hash router over plain ES modules. Every value from the API is
// rendered as text (dom.js), model output is labelled as such, and nothing runs inline (CSP).
import { ApiError, api, streamEvents, token } from './api.js';
import { errorBox, h, json, replace, svg, table, when } from './dom.js';

const main = document.getElementById('main');
let me = null;
/** Aborts the current page's live work (event streams) when the route changes. */
let pageAbort = new AbortController();

const routes = [
  [/^#\/signin$/, signIn],
  [/^#\/approvals$/, approvals],
  [/^#\/approvals\/([^/]+)\/([^/]+)$/, approvalDetail],
  [/^#\/rollouts(?:\?.*)?$/, rollouts],
  [/^#\/rollouts\/([^/]+)$/, rolloutDetail],
  [/^#\/fleet$/, fleet],
  [/^#\/devices\/(.+)$/, device],
  [/^#\/profiles$/, profiles],
  [/^#\/audit$/, audit],
];

async function render() {
  pageAbort.abort();
  pageAbort = new AbortController();
  // Back from the OIDC provider: the API put a fresh token in the fragment. Keep it for this tab and
  // take it out of the address bar and history.
  if (location.hash.startsWith('#signed-in=')) {
    token.set(decodeURIComponent(location.hash.slice('#signed-in='.length)));
    me = null;
    history.replaceState(null, '', '/console/#/approvals');
  }
  const hash = location.hash || '#/approvals';
  if (!token.get() && hash !== '#/signin') {
    location.hash = '#/signin';
    return;
  }
  if (token.get() && !me) {
    try {
      me = await api('GET', '/me');
    } catch {
      token.clear();
      location.hash = '#/signin';
      return;
    }
  }
  showIdentity();
  for (const [re, page] of routes) {
    const m = re.exec(hash);
    if (!m) continue;
    replace(main, h('p', { class: 'muted' }, 'Loading…'));
    try {
      await page(...m.slice(1).map(decodeURIComponent));
    } catch (err) {
      replace(main, h('h1', {}, 'Something went wrong'), errorBox(err));
    }
    return;
  }
  replace(main, h('h1', {}, 'Not found'), h('p', {}, 'No such page.'));
}

function showIdentity() {
  const who = document.getElementById('who');
  const out = document.getElementById('signout');
  if (me) {
    replace(who, `${me.name} (${me.roles.join(', ')})`);
    out.hidden = false;
  } else {
    replace(who);
    out.hidden = true;
  }
}

document.getElementById('signout').addEventListener('click', () => {
  token.clear();
  me = null;
  location.hash = '#/signin';
});
window.addEventListener('hashchange', render);
render();

const hasRole = (r) => me?.roles.includes(r) || me?.roles.includes('admin');
const page = (title, ...children) => replace(main, h('h1', {}, title), ...children);
const link = (href, text) => h('a', { href }, text);
const enc = encodeURIComponent;

// ---- sign-in -------------------------------------------------------------------------------------

async function signIn() {
  const input = h('input', {
    type: 'password',
    name: 'token',
    autocomplete: 'off',
    placeholder: 'fbt_…',
    required: true,
  });
  const msg = h('div');
  const form = h(
    'form',
    { id: 'signin-form' },
    h('label', {}, 'Bearer token', input),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Sign in')),
    msg,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    token.set(input.value.trim());
    try {
      me = await api('GET', '/me');
      location.hash = '#/approvals';
    } catch (err) {
      token.clear();
      me = null;
      replace(
        msg,
        errorBox(
          err instanceof ApiError && err.status === 401 ? 'The token is unknown, revoked or expired.' : err,
        ),
      );
    }
  });
  me = null;
  showIdentity();
  // Sign-in with the organisation's OIDC provider, when the API has one configured.
  let oidc = null;
  try {
    const info = await api('GET', '/auth/oidc');
    if (info.enabled)
      oidc = h(
        'section',
        { id: 'oidc' },
        h(
          'a',
          { class: 'button primary', id: 'oidc-signin', href: '/auth/oidc/login' },
          'Sign in with your organisation',
        ),
        h('p', { class: 'muted' }, `Through ${info.issuer}.`),
      );
  } catch {
    oidc = null;
  }
  page(
    'Sign in',
    oidc,
    h(
      'section',
      {},
      h(
        'p',
        { class: 'muted' },
        'Use a Fleetbrain API token (fleetbrain tokens issue). It is kept for this tab only.',
      ),
      form,
    ),
  );
}

// ---- approvals -----------------------------------------------------------------------------------

function approvalRows(items) {
  return items.map((a) => [
    link(`#/approvals/${enc(a.workflowId)}/${enc(a.gate)}`, a.title),
    `${a.subject.kind} ${a.subject.id}`,
    a.proposer.name,
    `${a.approvals} / ${a.requiredApprovals}`,
    h('span', { class: 'badge' }, a.status),
    when(a.expiresAt),
  ]);
}

async function approvals() {
  const cols = ['Proposal', 'Subject', 'Proposed by', 'Approvals', 'Status', 'Expires'];
  const inbox = hasRole('approver') ? (await api('GET', '/approvals/inbox')).items : null;
  const recent = (await api('GET', '/approvals?limit=50')).items;
  page(
    'Approvals',
    h(
      'section',
      { id: 'inbox' },
      h('h2', {}, 'Waiting for my decision'),
      inbox === null
        ? h('p', { class: 'muted' }, 'You do not hold the approver role.')
        : inbox.length === 0
          ? h('p', { class: 'muted' }, 'Nothing waits for you.')
          : table(cols, approvalRows(inbox)),
    ),
    h('section', {}, h('h2', {}, 'Recent requests'), table(cols, approvalRows(recent))),
  );
}

async function approvalDetail(workflowId, gate) {
  const a = await api('GET', `/approvals/${enc(workflowId)}/${enc(gate)}`);
  const parts = [];
  parts.push(
    h(
      'section',
      { id: 'four-eyes' },
      h('h2', {}, 'Approval'),
      h('p', {}, `${a.title} — proposed by ${a.proposer.name}. `, h('span', { class: 'badge' }, a.status)),
      h(
        'ul',
        {},
        h(
          'li',
          {},
          `Needs ${a.requiredApprovals} approval(s) from people other than the proposer; has ${a.approvals}.`,
        ),
        h(
          'li',
          {},
          'A vote binds to the plan hash shown; if the plan changes, the vote is refused and must be cast again.',
        ),
        h('li', {}, 'One rejection ends the request.'),
        h(
          'li',
          {},
          `Plan hash: `,
          h('code', {}, a.planHash),
          ` (revision ${a.planRevision}); expires ${when(a.expiresAt)}.`,
        ),
      ),
    ),
  );
  // What would change comes first: the deterministic diff and the devices, from the subject's own API.
  if (
    a.subject.kind === 'change_request' ||
    a.subject.kind === 'change-request' ||
    a.subject.id.startsWith('cr-')
  ) {
    parts.push(...(await changeRequestSections(a.subject.id)));
  } else if (a.subject.kind === 'rollout') {
    parts.push(h('section', { id: 'diff' }, h('h2', {}, 'Rollout plan'), await rolloutWaves(a.subject.id)));
  } else {
    parts.push(h('section', { id: 'diff' }, h('h2', {}, 'Subject'), `${a.subject.kind} ${a.subject.id}`));
  }
  parts.push(
    h(
      'section',
      {},
      h('h2', {}, 'Votes'),
      a.votes.length === 0
        ? h('p', { class: 'muted' }, 'No votes yet.')
        : table(
            ['Approver', 'Decision', 'Comment', 'At', 'Void'],
            a.votes.map((v) => [
              v.approver.name,
              v.decision,
              v.comment ?? '',
              when(v.at),
              v.voided ? 'void' : '',
            ]),
          ),
    ),
  );
  parts.push(decisionForm(a));
  page(`Approval ${a.subject.id}`, ...parts);
}

function decisionForm(a) {
  if (a.status !== 'pending')
    return h('section', {}, h('p', { class: 'muted' }, `This request is ${a.status}.`));
  if (!hasRole('approver'))
    return h('section', {}, h('p', { class: 'muted' }, 'Deciding needs the approver role.'));
  if (a.proposer.id === me.id)
    return h(
      'section',
      {},
      h('p', { class: 'warn' }, 'You proposed this: someone else must approve it (four eyes).'),
    );
  const comment = h('textarea', { name: 'comment', maxlength: '2000', placeholder: 'Comment (optional)' });
  const msg = h('div', { id: 'decision-result' });
  const decide = (decision) => async () => {
    try {
      const body = { planHash: a.planHash, approvalId: crypto.randomUUID() };
      if (comment.value.trim()) body.comment = comment.value.trim();
      const r = await api('POST', `/approvals/${enc(a.workflowId)}/${enc(a.gate)}/${decision}`, body);
      replace(
        msg,
        h(
          'p',
          { class: 'ok', role: 'status' },
          `Recorded: ${decision}. Status ${r.status}, ${r.approvals} / ${r.requiredApprovals} approvals.`,
        ),
      );
    } catch (err) {
      replace(msg, errorBox(err));
    }
  };
  return h(
    'section',
    { id: 'decide' },
    h('h2', {}, 'Decide'),
    comment,
    h(
      'div',
      { class: 'actions' },
      h(
        'button',
        { type: 'button', class: 'primary', id: 'approve', onclick: decide('approve') },
        'Approve this plan',
      ),
      h('button', { type: 'button', class: 'danger', id: 'reject', onclick: decide('reject') }, 'Reject'),
    ),
    msg,
  );
}

async function changeRequestSections(id) {
  let cr;
  try {
    cr = await api('GET', `/change-requests/${enc(id)}`);
  } catch (err) {
    return [h('section', { id: 'diff' }, h('h2', {}, 'Change'), errorBox(err))];
  }
  const out = [];
  out.push(
    h(
      'section',
      { id: 'diff' },
      h('h2', {}, 'What would change (deterministic diff)'),
      h(
        'p',
        {},
        `${cr.devices.count} device(s). Sample: `,
        cr.devices.sample.map((d, i) => [i ? ', ' : '', link(`#/devices/${enc(d)}`, d)]),
      ),
      table(
        ['Operation', 'Parameter', 'New value', 'Devices'],
        cr.diff.map((d) => [
          d.op,
          h('code', {}, d.path),
          d.value === undefined ? '' : String(d.value),
          d.device,
        ]),
      ),
      cr.devices.excluded.length
        ? [
            h('h2', {}, 'Excluded devices'),
            table(
              ['Firmware', 'Devices', 'Why'],
              cr.devices.excluded.map((e) => [
                `${e.oui} ${e.productClass} ${e.softwareVersion}`,
                String(e.devices),
                e.reasons.join('; '),
              ]),
            ),
          ]
        : null,
    ),
  );
  out.push(
    h(
      'section',
      { id: 'checks' },
      h('h2', {}, 'Validation and policy'),
      h(
        'p',
        { class: cr.validation.ok ? 'ok' : 'bad' },
        cr.validation.ok ? 'Validation passed.' : 'Validation failed.',
      ),
      cr.validation.errors.length
        ? table(
            ['Stage', 'Code', 'Message', 'Path'],
            cr.validation.errors.map((e) => [e.stage, e.code, e.message, e.path ?? '']),
          )
        : null,
      cr.policy
        ? [
            h(
              'p',
              { class: cr.policy.allow ? 'ok' : 'bad' },
              `Policy: ${cr.policy.allow ? 'allowed' : 'denied'}; risk class ${cr.policy.riskClass}; ${cr.policy.requiredApprovals} approval(s) required.`,
            ),
            cr.policy.deny.length
              ? table(
                  ['Code', 'Message'],
                  cr.policy.deny.map((d) => [d.code, d.message]),
                )
              : null,
            cr.policy.riskFactors.length
              ? table(
                  ['Source', 'Class', 'Detail'],
                  cr.policy.riskFactors.map((f) => [f.source, f.class, f.detail]),
                )
              : null,
          ]
        : h('p', { class: 'muted' }, 'No policy decision recorded.'),
      cr.profileConflicts.length
        ? [
            h('h2', {}, 'Profile conflicts'),
            table(
              ['Parameter', 'Owners', 'Devices'],
              cr.profileConflicts.map((c) => [c.path, c.owners.join(', '), String(c.devices)]),
            ),
          ]
        : null,
    ),
  );
  const model = cr.rationale.origin === 'model';
  out.push(
    h(
      'section',
      { id: 'rationale', class: model ? 'model-output' : '' },
      h('h2', {}, 'Rationale'),
      h(
        'p',
        { class: 'label' },
        model
          ? `Model output — ${cr.rationale.label}. Not verified; the diff and checks above are what counts.`
          : `Operator's words — ${cr.rationale.label}`,
      ),
      h('pre', {}, cr.rationale.text),
    ),
  );
  return out;
}

// ---- rollouts ------------------------------------------------------------------------------------

const OUTCOMES = ['success', 'degraded', 'reverted', 'transferFailure', 'brick', 'unknown', 'pending'];

const pct = (x) => `${(x * 100).toFixed(1)} %`;

/**
 * The gate's view of each stratum, drawn: the treated brick rate (dot) with its anytime-valid band
 * (bar), the concurrent control group's rate (blue tick), the abort boundary (θ over the control,
 * dotted) and θ itself (red dashed line). The table after it is the text alternative, same numbers.
 */
function brickChart(p) {
  const gate = p.lastGate;
  if (!gate) return h('p', { class: 'muted' }, 'No gate has been evaluated yet.');
  const strata = gate.perStratum;
  const theta = gate.theta;
  const conf = strata[0]?.band.confidence ?? 1 - gate.familyWiseFalseAbortRate;
  const hasControl = (s) => s.controlRate !== undefined && (s.controlObserved ?? 0) > 0;
  // Scale to what matters: θ, the rates and the bands, and the boundaries while they are informative.
  const seen = [theta ?? 0, 0.01];
  for (const s of strata) {
    seen.push(s.rate, Math.min(s.band.upper, Math.max(0.1, 4 * (theta ?? 0))));
    if (hasControl(s)) seen.push(s.controlRate);
    if (s.abortBoundary !== undefined && s.abortBoundary < 1) seen.push(s.abortBoundary);
  }
  const xmax = Math.min(1, Math.max(...seen) * 1.15);
  const W = 720;
  const L = 170;
  const R = 20;
  const T = 24;
  const rowH = 30;
  const H = T + rowH * strata.length + 30;
  const x = (v) => L + (Math.min(Math.max(v, 0), xmax) / xmax) * (W - L - R);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * xmax);
  const summary = strata
    .map(
      (s) =>
        `${s.stratum}: ${pct(s.rate)} (${pct(s.band.lower)}–${pct(s.band.upper)})` +
        (hasControl(s) ? `, control ${pct(s.controlRate)}` : ', no control group yet'),
    )
    .join('; ');
  const chart = svg(
    'svg',
    {
      id: 'brick-chart',
      class: 'chart',
      role: 'img',
      viewBox: `0 0 ${W} ${H}`,
      width: W,
      height: H,
      'aria-labelledby': 'brick-chart-title brick-chart-desc',
    },
    svg('title', { id: 'brick-chart-title' }, 'Brick rate per stratum against θ and the control group'),
    svg(
      'desc',
      { id: 'brick-chart-desc' },
      `θ ${theta === undefined ? 'not recorded' : pct(theta)}. ${summary}. The table below has the same figures.`,
    ),
    // Axis and grid.
    ticks.map((t) => [
      svg('line', { class: 'grid', x1: x(t), x2: x(t), y1: T - 6, y2: H - 24 }),
      svg('text', { class: 'tick', x: x(t), y: H - 8, 'text-anchor': 'middle' }, pct(t)),
    ]),
    strata.map((s, i) => {
      const y = T + i * rowH + rowH / 2;
      return svg(
        'g',
        { class: 'stratum', 'data-stratum': s.stratum },
        svg('text', { class: 'label', x: L - 8, y: y + 4, 'text-anchor': 'end' }, s.stratum),
        svg('rect', {
          class: 'band',
          x: x(s.band.lower),
          y: y - 6,
          width: Math.max(1, x(s.band.upper) - x(s.band.lower)),
          height: 12,
        }),
        s.abortBoundary !== undefined && s.abortBoundary < 1
          ? svg('line', {
              class: 'boundary',
              x1: x(s.abortBoundary),
              x2: x(s.abortBoundary),
              y1: y - 11,
              y2: y + 11,
            })
          : null,
        hasControl(s)
          ? svg('line', {
              class: 'control',
              x1: x(s.controlRate),
              x2: x(s.controlRate),
              y1: y - 11,
              y2: y + 11,
            })
          : null,
        svg('circle', {
          class: s.decision === 'abort' ? 'rate abort' : 'rate',
          cx: x(s.rate),
          cy: y,
          r: 4.5,
        }),
      );
    }),
    theta === undefined
      ? null
      : [
          svg('line', { class: 'theta', x1: x(theta), x2: x(theta), y1: T - 10, y2: H - 24 }),
          svg('text', { class: 'theta-label', x: x(theta) + 4, y: T - 12 }, `θ ${pct(theta)}`),
        ],
  );
  const key = (cls, text) => h('li', {}, h('span', { class: `key ${cls}`, 'aria-hidden': 'true' }), text);
  const legend = h(
    'ul',
    { id: 'chart-legend', class: 'legend' },
    key('rate', 'brick rate of the upgraded devices'),
    key('band', `its ${Math.round(conf * 100)} % band (anytime-valid, as the gate uses)`),
    key('control', 'control group: not upgraded, same stratum, silent through the same window'),
    key('theta', 'θ: the brick rate the image may add'),
    key('boundary', 'abort boundary: θ on top of the control group'),
  );
  const alt = table(
    [
      'Stratum',
      'Bricks / concluded',
      'Brick rate',
      `${Math.round(conf * 100)} % band`,
      'Control group',
      'θ',
      'Abort above',
      'Gate',
    ],
    strata.map((s) => [
      s.stratum,
      `${s.bricks} / ${s.concluded}`,
      pct(s.rate),
      `${pct(s.band.lower)} – ${pct(s.band.upper)}`,
      hasControl(s) ? `${pct(s.controlRate)} of ${s.controlObserved}` : 'none yet',
      theta === undefined ? '—' : pct(theta),
      s.abortBoundary === undefined
        ? '—'
        : s.abortBoundary >= 1
          ? 'no abort without a control group'
          : pct(s.abortBoundary),
      h('span', { class: s.decision === 'abort' ? 'bad' : 'badge' }, s.decision),
    ]),
    { id: 'brick-table' },
  );
  alt.prepend(h('caption', {}, 'The chart’s figures (text alternative)'));
  return h('figure', { id: 'brick-figure' }, chart, legend, alt);
}

async function rolloutWaves(id) {
  try {
    return wavesTable(await api('GET', `/rollouts/${enc(id)}`));
  } catch (err) {
    return errorBox(err);
  }
}

function wavesTable(p) {
  const rows = [];
  for (const w of p.waves) {
    const strata = Object.entries(w.perStratum);
    if (strata.length === 0)
      rows.push([
        `Wave ${w.wave + 1}`,
        w.state,
        `${w.dispatched} / ${w.devices}`,
        '—',
        ...OUTCOMES.map(() => ''),
      ]);
    for (const [s, c] of strata)
      rows.push([
        `Wave ${w.wave + 1}`,
        w.state,
        `${w.dispatched} / ${w.devices}`,
        s,
        ...OUTCOMES.map((o) => String(c[o])),
      ]);
  }
  return table(['Wave', 'State', 'Dispatched', 'Stratum', ...OUTCOMES], rows, { id: 'waves' });
}

const ROLLOUT_STATES = [
  'preparing',
  'awaiting-approval',
  'running',
  'paused',
  'aborting',
  'aborted',
  'completed',
  'rejected',
  'failed',
  'unknown',
];
const stateClass = (s) =>
  ['aborted', 'aborting', 'failed', 'rejected'].includes(s)
    ? 'badge bad'
    : s === 'paused' || s === 'awaiting-approval'
      ? 'badge warn'
      : 'badge';

/** The rollouts list: newest first, filtered by state, a page at a time; states refresh live. */
async function rollouts() {
  const params = new URLSearchParams(location.hash.split('?')[1] ?? '');
  const state = params.get('state') ?? '';
  const cursors = [null];
  const select = h(
    'select',
    { name: 'state', id: 'state-filter', 'aria-label': 'State' },
    h('option', { value: '' }, 'any state'),
    ROLLOUT_STATES.map((s) => h('option', { value: s, selected: s === state }, s)),
  );
  const list = h('div', { id: 'rollout-list', 'aria-live': 'polite' });
  const pager = h('div', { class: 'actions' });
  const live = h('span', { class: 'muted', id: 'list-live' }, '');
  let at = 0;
  const load = async () => {
    const q = new URLSearchParams({ limit: '20' });
    if (select.value) q.set('state', select.value);
    if (cursors[at]) q.set('cursor', cursors[at]);
    const pageData = await api('GET', `/rollouts?${q}`);
    cursors[at + 1] = pageData.nextCursor;
    replace(
      list,
      pageData.items.length === 0
        ? h('p', { class: 'muted' }, select.value ? `No rollouts ${select.value}.` : 'No rollouts yet.')
        : table(
            ['Rollout', 'State', 'Wave', 'Devices', 'Halted strata', 'Started', 'Closed'],
            pageData.items.map((r) => [
              link(`#/rollouts/${enc(r.id)}`, r.id),
              h('span', { class: stateClass(r.state), 'data-state': r.state }, r.state),
              r.currentWave === null ? '—' : `${r.currentWave + 1} of ${r.waves}`,
              r.devices ? `${r.devices.dispatched} / ${r.devices.planned}` : '—',
              r.haltedStrata.join(', ') || '—',
              when(r.startedAt),
              when(r.closedAt),
            ]),
            { id: 'rollouts' },
          ),
    );
    replace(
      pager,
      at > 0 ? h('button', { type: 'button', id: 'prev-page', onclick: () => go(at - 1) }, 'Previous') : null,
      pageData.nextCursor
        ? h('button', { type: 'button', id: 'next-page', onclick: () => go(at + 1) }, 'Next')
        : null,
    );
  };
  const go = async (i) => {
    at = i;
    try {
      await load();
    } catch (err) {
      replace(list, errorBox(err));
    }
  };
  select.addEventListener('change', () => {
    location.hash = select.value ? `#/rollouts?state=${enc(select.value)}` : '#/rollouts';
  });
  const input = h('input', { name: 'rollout-id', placeholder: 'rollout id' });
  const open = h('form', { class: 'actions' }, input, h('button', { type: 'submit' }, 'Open'));
  open.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (input.value.trim()) location.hash = `#/rollouts/${enc(input.value.trim())}`;
  });
  await load();
  page(
    'Rollouts',
    h('section', {}, h('label', {}, 'State ', select), ' ', live, list, pager),
    h('section', {}, h('h2', {}, 'Open by id'), open),
  );
  // Live: the states of the page shown are refreshed every few seconds until the page is left.
  const signal = pageAbort.signal;
  replace(live, '● live');
  const tick = async () => {
    if (signal.aborted) return;
    try {
      await load();
    } catch {
      replace(live, 'live updates stopped');
      return;
    }
    setTimeout(tick, 3000);
  };
  setTimeout(tick, 3000);
}

async function rolloutDetail(id) {
  const p = await api('GET', `/rollouts/${enc(id)}`);
  const status = h('span', { class: 'badge', id: 'rollout-status' }, p.status);
  const body = h('div');
  const live = h('span', { class: 'muted', id: 'live' }, '');
  const msg = h('div', { id: 'control-result' });
  const control = (action) => async () => {
    try {
      const r = await api('POST', `/rollouts/${enc(id)}/control`, {
        action,
        requestId: crypto.randomUUID(),
        reason: `console: ${action}`,
      });
      replace(
        msg,
        h(
          'p',
          { class: r.applied ? 'ok' : 'muted', role: 'status' },
          `${action}: ${r.applied ? 'applied' : 'not applied'}; status ${r.status}`,
        ),
      );
    } catch (err) {
      replace(msg, errorBox(err));
    }
  };
  const draw = (q) => {
    replace(status, q.status);
    replace(
      body,
      h('section', {}, h('h2', {}, 'Waves and outcomes per stratum'), wavesTable(q)),
      h(
        'section',
        { id: 'gate' },
        h('h2', {}, 'Brick rate per stratum'),
        brickChart(q),
        q.lastGate ? h('p', {}, `Last gate: ${q.lastGate.decision}. `, q.lastGate.reasons.join('; ')) : null,
        q.haltedStrata.length
          ? h('p', { class: 'bad' }, `Halted strata: ${q.haltedStrata.join(', ')}`)
          : null,
        q.pauseReasons.length ? h('p', { class: 'warn' }, `Paused: ${q.pauseReasons.join('; ')}`) : null,
      ),
      q.rollback
        ? h(
            'section',
            { id: 'rollback' },
            h('h2', {}, 'Rollback'),
            table(
              ['Rollback', 'Activate', 'Re-download', 'Untouched', 'Pending', 'Field action'],
              [
                [
                  q.rollback.rollback,
                  q.rollback.activate,
                  q.rollback.redownload,
                  q.rollback.untouched,
                  q.rollback.pending,
                  q.rollback.fieldAction.join(', '),
                ].map(String),
              ],
            ),
          )
        : null,
    );
  };
  draw(p);
  const controls = hasRole('operator')
    ? h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', id: 'pause', onclick: control('pause') }, 'Pause'),
        h('button', { type: 'button', id: 'resume', onclick: control('resume') }, 'Resume'),
        h('button', { type: 'button', class: 'danger', id: 'abort', onclick: control('abort') }, 'Abort'),
      )
    : h('p', { class: 'muted' }, 'Controls need the operator role.');
  page(`Rollout ${id}`, h('section', {}, h('p', {}, 'Status: ', status, ' ', live), controls, msg), body);
  const signal = pageAbort.signal;
  replace(live, '● live');
  streamEvents(`/rollouts/${enc(id)}/events`, draw, signal)
    .then(() => replace(live, 'ended'))
    .catch(() => signal.aborted || replace(live, 'live updates stopped'));
}

// ---- fleet and devices ---------------------------------------------------------------------------

function rowsTable(result) {
  const keys = [...new Set(result.rows.flatMap((r) => Object.keys(r.key)))];
  return [
    table(
      [...keys, 'value'],
      result.rows.map((r) => [...keys.map((k) => r.key[k] ?? '—'), r.value === null ? '—' : String(r.value)]),
      { id: 'answer-rows' },
    ),
    result.truncated ? h('p', { class: 'muted' }, 'More rows matched; the first ones are shown.') : null,
  ];
}

async function fleet() {
  const out = h('div', { id: 'fleet-out' });
  const question = h('input', { name: 'question', placeholder: 'e.g. how many HG8245 devices per region?' });
  const ask = h(
    'form',
    { id: 'ask-form', class: 'actions' },
    question,
    h('button', { type: 'submit', class: 'primary' }, 'Ask'),
  );
  ask.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replace(out, h('p', { class: 'muted' }, 'Asking…'));
    try {
      const a = await api('POST', '/fleet/ask', {
        question: question.value,
        timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC',
      });
      if (a.kind === 'answer') {
        replace(
          out,
          h(
            'div',
            { class: 'row' },
            h(
              'section',
              { id: 'dsl' },
              h('h2', {}, 'Query (DSL)'),
              h(
                'p',
                { class: 'label warn' },
                `Translated by the model (${a.model}); the rows were computed by code from this query.`,
              ),
              json(a.query),
              h('p', {}, a.description),
            ),
            h('section', { id: 'answer' }, h('h2', {}, 'Result'), rowsTable(a.result)),
          ),
        );
      } else if (a.kind === 'clarify')
        replace(out, h('section', {}, h('p', {}, `Please clarify: ${a.question}`)));
      else if (a.kind === 'change_request') replace(out, h('section', {}, h('p', {}, a.message)));
      else replace(out, h('section', {}, errorBox(`The question could not be translated: ${a.error}`)));
    } catch (err) {
      replace(out, errorBox(err));
    }
  });
  const dsl = h('textarea', {
    name: 'dsl',
    placeholder: '{"where": {"all": true}, "measure": "count", "groupBy": ["productClass"]}',
  });
  const query = h(
    'form',
    { id: 'query-form' },
    dsl,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Run query')),
  );
  query.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const a = await api('POST', '/fleet/query', { query: JSON.parse(dsl.value) });
      replace(
        out,
        h(
          'div',
          { class: 'row' },
          h('section', { id: 'dsl' }, h('h2', {}, 'Query (DSL)'), json(a.query), h('p', {}, a.description)),
          h('section', { id: 'answer' }, h('h2', {}, 'Result'), rowsTable(a.result)),
        ),
      );
    } catch (err) {
      replace(out, errorBox(err));
    }
  });
  const selector = h('textarea', {
    name: 'selector',
    placeholder: '{"field": "productClass", "op": "eq", "value": "HG8245"}',
  });
  const search = h(
    'form',
    { id: 'select-form' },
    selector,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Search devices')),
  );
  search.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const sel = JSON.parse(selector.value || '{"all": true}');
      const r = await api('GET', `/fleet/devices?limit=50&selector=${enc(JSON.stringify(sel))}`);
      replace(
        out,
        h(
          'section',
          { id: 'devices' },
          h('h2', {}, 'Devices'),
          devicesTable(r.items),
          r.next ? h('p', { class: 'muted' }, 'More devices match; refine the selector.') : null,
        ),
      );
    } catch (err) {
      replace(out, errorBox(err));
    }
  });
  page(
    'Fleet',
    h('section', {}, h('h2', {}, 'Ask a question'), ask),
    h(
      'div',
      { class: 'row' },
      h('section', {}, h('h2', {}, 'Query DSL'), query),
      h('section', {}, h('h2', {}, 'Selector search'), search),
    ),
    out,
  );
  const first = await api('GET', '/fleet/devices?limit=20');
  replace(out, h('section', { id: 'devices' }, h('h2', {}, 'Devices'), devicesTable(first.items)));
}

function devicesTable(items) {
  return table(
    ['Device', 'Manufacturer', 'Product class', 'Firmware', 'Region', 'OLT', 'Last contact'],
    items.map((d) => [
      link(`#/devices/${enc(d.id)}`, d.id),
      d.manufacturer ?? '—',
      d.productClass ?? '—',
      d.softwareVersion ?? '—',
      d.region ?? '—',
      d.olt ?? '—',
      when(d.lastContactAt),
    ]),
  );
}

async function device(id) {
  const d = await api('GET', `/fleet/devices/${enc(id)}`);
  let cfg = null;
  try {
    cfg = await api('GET', `/devices/${enc(id)}/effective-config`);
  } catch {
    cfg = null;
  }
  const t = d.topology;
  page(
    `Device ${d.id}`,
    h(
      'section',
      { id: 'inventory' },
      h('h2', {}, 'Inventory'),
      table(
        ['Field', 'Value'],
        [
          ['Manufacturer', d.manufacturer ?? '—'],
          ['OUI', d.oui],
          ['Serial', d.serialNumber],
          ['Product class', d.productClass ?? '—'],
          ['Model', d.modelName ?? '—'],
          ['Hardware', d.hardwareVersion ?? '—'],
          ['Firmware', d.softwareVersion ?? '—'],
          ['Protocol', d.protocol],
          ['Data model', d.dataModelRoot],
          ['Last inform', when(d.lastContactAt)],
          ['Inform interval', d.periodicInformIntervalS === null ? '—' : `${d.periodicInformIntervalS} s`],
          ['Tags', d.tags.join(', ')],
        ],
      ),
    ),
    h(
      'section',
      { id: 'topology' },
      h('h2', {}, 'Topology'),
      table(
        ['Region', 'Site', 'OLT', 'PON port', 'BNG', 'Tier', 'Time zone'],
        [[t.region, t.site, t.olt, t.ponPort, t.bng, t.serviceTier, t.timeZone].map((v) => v ?? '—')],
      ),
    ),
    h(
      'section',
      { id: 'profiles' },
      h('h2', {}, 'Owning profiles'),
      cfg
        ? table(
            ['Profile', 'Matched devices'],
            cfg.profiles.map((p) => [p.id, String(p.matchedDevices)]),
          )
        : h('p', { class: 'muted' }, 'Unavailable.'),
    ),
    h(
      'section',
      { id: 'parameters' },
      h('h2', {}, 'Parameters'),
      table(
        ['Path', 'Type', 'Value', 'Updated'],
        d.parameters.map((p) => [h('code', {}, p.path), p.type, p.value, when(p.updatedAt)]),
      ),
    ),
    h(
      'section',
      { id: 'events' },
      h('h2', {}, 'Recent events'),
      table(
        ['At', 'Kind', 'Payload'],
        d.recentEvents.map((e) => [when(e.at), e.kind, json(e.payload)]),
      ),
    ),
  );
}

// ---- profiles and audit --------------------------------------------------------------------------

async function profiles() {
  const list = await api('GET', '/profiles');
  const conflicts = await api('GET', '/profiles/conflicts?sample=3');
  page(
    'Profiles',
    h(
      'section',
      {},
      table(
        ['Profile', 'Priority', 'Owner', 'Parameters', 'Version'],
        list.map((p) => [
          p.name,
          String(p.priority),
          p.owner,
          p.parameters.map((x) => `${x.path} = ${x.value}`).join('\n'),
          String(p.version),
        ]),
      ),
    ),
    h(
      'section',
      { id: 'conflicts' },
      h('h2', {}, 'Conflicts'),
      h(
        'p',
        {},
        `${conflicts.conflictingPairs} conflicting (device, parameter) pairs, ${conflicts.unresolvedPairs} unresolved, over ${conflicts.devices} devices.`,
      ),
      json(conflicts.groups),
    ),
  );
}

async function audit() {
  const head = await api('GET', '/audit/head');
  const after = Math.max(0, head.seq - 200);
  const items = (await api('GET', `/audit?afterSeq=${after}&limit=200`)).items.reverse();
  const status = h('div', { id: 'chain-status' });
  if (hasRole('admin')) {
    try {
      const v = await api('POST', '/audit/verify', {});
      replace(
        status,
        v.ok
          ? h('p', { class: 'ok' }, `Chain verified: ${v.entries} entries, head #${v.head?.seq ?? 0}.`)
          : h(
              'p',
              { class: 'bad' },
              `Chain broken at #${v.firstBreak.seq}: ${v.firstBreak.kind} — ${v.firstBreak.message}`,
            ),
      );
    } catch (err) {
      replace(status, errorBox(err));
    }
  } else
    replace(
      status,
      h(
        'p',
        { class: 'muted' },
        `Head #${head.seq} ${head.hash}. Verifying the whole chain needs the admin role.`,
      ),
    );
  page(
    'Audit log',
    h('section', {}, status),
    h(
      'section',
      {},
      table(
        ['#', 'At', 'Actor', 'Action', 'Subject', 'Data'],
        items.map((e) => [
          String(e.seq),
          when(e.at),
          `${e.actor.kind} ${e.actor.id}`,
          e.action,
          `${e.subject.kind} ${e.subject.id}`,
          json(e.data),
        ]),
        { id: 'audit-table' },
      ),
    ),
  );
}
