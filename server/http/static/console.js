// The Ottla console: a hash-routed page over the JSON API under /api/ and nothing else.
// Every text from the broker goes into the page as textContent (never as HTML), so a topic
// name, key or value cannot inject markup. Mutations carry the X-CSRF-Token header.
"use strict";

const POLL_MS = 2000;
const CHART_POINTS = 90;   // samples kept per chart: three minutes at POLL_MS
const TAIL_MS = 1000;

// --- the API -------------------------------------------------------------------------------

let csrfToken = null;

async function api(method, path, body) {
  const headers = {};
  if (method !== "GET") {
    if (csrfToken === null) csrfToken = (await api("GET", "/api/csrf")).token;
    headers["X-CSRF-Token"] = csrfToken;
    headers["Content-Type"] = "application/json";
  }
  const answer = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const value = await answer.json().catch(() => ({ error: `${answer.status} ${answer.statusText}` }));
  if (answer.status === 401 && !path.startsWith("/api/login")) { showLogin(); throw new Error("log in first"); }
  if (!answer.ok) throw new Error(value.error || `${answer.status} ${answer.statusText}`);
  return value;
}
const get = path => api("GET", path);
const post = (path, body) => api("POST", path, body);
const enc = encodeURIComponent;

// --- DOM helpers ---------------------------------------------------------------------------

function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "text") element.textContent = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function table(columns, rows, options = {}) {
  const head = h("tr", {}, columns.map(c => h("th", { class: c.num ? "num" : null }, c.title)));
  const body = h("tbody");
  for (const row of rows) {
    const cells = columns.map(c => {
      const value = c.value(row);
      return h("td", { class: c.num ? "num" : null }, value instanceof Node ? value : value === null || value === undefined ? "–" : String(value));
    });
    const tr = h("tr", { class: options.onclick ? "clickable" : null, "data-row": options.key ? options.key(row) : null }, cells);
    if (options.onclick) tr.addEventListener("click", () => options.onclick(row, tr));
    body.append(tr);
  }
  if (!rows.length) body.append(h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, options.empty || "none")));
  return h("table", { "data-test": options.test }, h("thead", {}, head), body);
}

function field(label, input) { return h("label", {}, label, input); }

function notify(message, error = false) {
  const notice = document.getElementById("notice");
  notice.textContent = message;
  notice.className = error ? "error" : "";
  notice.hidden = false;
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => { notice.hidden = true; }, error ? 8000 : 4000);
}

// Runs an action from a form; a refusal from the API is shown, not thrown.
async function attempt(action, done) {
  try {
    const result = await action();
    if (done) notify(typeof done === "function" ? done(result) : done);
    return result;
  } catch (error) {
    notify(error.message, true);
    return undefined;
  }
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}
const when = ms => ms === null || ms === undefined || ms < 0 ? "–" : new Date(ms).toISOString().replace("T", " ").replace("Z", "");
const state = name => h("span", { class: `state ${name}` }, name);

// --- charts (inline SVG) ----------------------------------------------------------------------

const COLOURS = ["#2f6fdb", "#e0743c", "#1e8e5a", "#9b51e0", "#c0392b", "#17a2b8", "#8a5a00", "#5d6d7e"];

// A line chart of `series` ({name: [[time, value], ...]}) over the last CHART_POINTS samples.
function lineChart(title, series, format = compact) {
  const width = 600, height = 160, left = 56, bottom = 18;
  const names = Object.keys(series);
  const points = names.flatMap(name => series[name]);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const add = (tag, attributes, text) => {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
  };
  if (points.length) {
    const t0 = Math.min(...points.map(p => p[0])), t1 = Math.max(...points.map(p => p[0]), t0 + 1);
    const top = Math.max(...points.map(p => p[1]), 1) * 1.1;
    const x = t => left + (t - t0) / (t1 - t0) * (width - left - 4);
    const y = v => (height - bottom) - v / top * (height - bottom - 6);
    for (const fraction of [0, .5, 1]) {
      add("line", { x1: left, x2: width, y1: y(top * fraction), y2: y(top * fraction), stroke: "#e3e6ec" });
      add("text", { x: left - 4, y: y(top * fraction) + 4, "text-anchor": "end", "font-size": 10, fill: "#6b7385" }, format(top * fraction));
    }
    add("text", { x: width - 2, y: height - 4, "text-anchor": "end", "font-size": 10, fill: "#6b7385" }, `${Math.round(t1 - t0)} s`);
    names.forEach((name, index) => {
      if (!series[name].length) return;
      const colour = COLOURS[index % COLOURS.length];
      add("polyline", { fill: "none", stroke: colour, "stroke-width": 1.6, points: series[name].map(p => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ") });
      const [t, v] = series[name][series[name].length - 1];
      add("circle", { cx: x(t), cy: y(v), r: 2.5, fill: colour });
    });
  } else {
    add("text", { x: width / 2, y: height / 2, "text-anchor": "middle", fill: "#6b7385" }, "collecting samples…");
  }
  const legend = h("div", { class: "legend" }, names.map((name, index) => h("span", {}, h("i", { style: `background:${COLOURS[index % COLOURS.length]}` }), name)));
  const peak = Math.max(0, ...points.map(p => p[1]));
  return h("div", { class: "chart", "data-test": "chart", "data-title": title, "data-peak": peak }, h("h3", {}, title), svg, legend);
}

function compact(value) {
  if (value >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
  return value >= 10 ? value.toFixed(0) : value.toFixed(1);
}

function keep(list, item) { list.push(item); if (list.length > CHART_POINTS) list.shift(); }

// --- routing -----------------------------------------------------------------------------------

let timers = [];
function every(ms, fn) { timers.push(setInterval(fn, ms)); }

const routes = [
  [/^#?\/?$/, overview, "overview"],
  [/^#\/topics$/, topics, "topics"],
  [/^#\/topics\/([^/]+)$/, topic, "topics"],
  [/^#\/groups$/, groups, "groups"],
  [/^#\/groups\/([^/]+)$/, group, "groups"],
  [/^#\/transactions$/, transactions, "transactions"],
  [/^#\/security$/, security, "security"],
  [/^#\/clients$/, clients, "clients"],
  [/^#\/clients\/([^/]+)$/, clientInstance, "clients"],
  [/^#\/broker$/, broker, "broker"],
  [/^#\/logs$/, logs, "logs"],
];

async function route() {
  timers.forEach(clearInterval);
  timers = [];
  const hash = location.hash || "#/";
  const page = document.getElementById("page");
  for (const [pattern, render, nav] of routes) {
    const match = hash.match(pattern);
    if (!match) continue;
    document.querySelectorAll("header nav a").forEach(a => a.classList.toggle("active", a.dataset.nav === nav));
    try {
      const content = await render(...match.slice(1).map(decodeURIComponent));
      page.replaceChildren(content);
    } catch (error) {
      page.replaceChildren(h("h1", {}, "Not available"), h("p", { class: "error" }, error.message));
    }
    return;
  }
  page.replaceChildren(h("h1", {}, "No such page"));
}

// --- overview: the cluster and live charts -------------------------------------------------------

const samples = { last: null, throughput: { "bytes in/s": [], "bytes out/s": [] }, messages: { "messages in/s": [] }, requests: {}, latency: {} };

function sample(stats) {
  const last = samples.last;
  samples.last = stats;
  if (!last) return;
  const dt = stats.time - last.time;
  if (dt <= 0) return;
  const t = stats.time;
  keep(samples.throughput["bytes in/s"], [t, (stats.bytes_in - last.bytes_in) / dt]);
  keep(samples.throughput["bytes out/s"], [t, (stats.bytes_out - last.bytes_out) / dt]);
  keep(samples.messages["messages in/s"], [t, (stats.messages_in - last.messages_in) / dt]);
  for (const [name, now] of Object.entries(stats.apis)) {
    const before = last.apis[name] || { requests: 0, seconds: 0 };
    const count = now.requests - before.requests;
    keep(samples.requests[name] = samples.requests[name] || [], [t, count / dt]);
    keep(samples.latency[name] = samples.latency[name] || [], [t, count ? (now.seconds - before.seconds) / count * 1000 : 0]);
  }
}

// The APIs with the most requests lately: the ones worth a line on a chart.
function busiest(series, count = 5) {
  const total = name => series[name].reduce((sum, point) => sum + point[1], 0);
  return Object.fromEntries(Object.keys(series).sort((a, b) => total(b) - total(a)).slice(0, count).map(name => [name, series[name]]));
}

async function overview() {
  const [cluster, topicList, groupList] = await Promise.all([get("/api/cluster"), get("/api/topics"), get("/api/groups")]);
  const charts = h("div", { class: "charts", id: "charts" });
  const draw = () => {
    const busy = busiest(samples.requests);
    charts.replaceChildren(
      lineChart("Throughput (bytes/s)", samples.throughput, v => bytes(Math.round(v))),
      lineChart("Messages in (/s)", samples.messages),
      lineChart("Requests per API (/s)", busy),
      lineChart("Mean request latency (ms)", Object.fromEntries(Object.keys(busy).map(name => [name, samples.latency[name]])), v => v.toFixed(2)),
    );
  };
  const refresh = async () => { sample(await get("/api/stats")); draw(); };
  await refresh();
  every(POLL_MS, () => refresh().catch(() => {}));
  const card = (label, value) => h("div", { class: "card" }, h("div", { class: "value" }, value), h("div", { class: "label" }, label));
  return h("div", {},
    h("h1", {}, "Overview"),
    h("div", { class: "cards" },
      card("bootstrap servers", cluster.bootstrap_servers),
      card("node", cluster.node_id),
      card("topics", topicList.topics.filter(t => !t.internal).length),
      card("groups", groupList.groups.length),
      card("connections", cluster.connections),
      card("uptime", `${Math.round(cluster.uptime_seconds)} s`),
    ),
    h("h2", {}, "Live"), charts,
    h("p", { class: "muted" }, `Cluster ${cluster.cluster_id}` + ("data_dir" in cluster ? `; data in ${cluster.data_dir || "memory"}.` : ".")),
  );
}

// --- topics --------------------------------------------------------------------------------------

async function topics() {
  const list = (await get("/api/topics")).topics;
  const name = h("input", { name: "name", required: true, placeholder: "orders" });
  const partitions = h("input", { name: "partitions", type: "number", min: 1, value: 1 });
  const configs = h("input", { name: "configs", placeholder: "cleanup.policy=compact, retention.ms=…" });
  const create = h("form", { "data-test": "create-topic" }, field("name", name), field("partitions", partitions), field("configs", configs), h("button", {}, "Create topic"));
  create.addEventListener("submit", async event => {
    event.preventDefault();
    const created = await attempt(() => post("/api/topics", { name: name.value, partitions: Number(partitions.value), configs: parsePairs(configs.value) }), `Created ${name.value}`);
    if (created) location.hash = `#/topics/${enc(created.name)}`;
  });
  const showInternal = h("input", { type: "checkbox" });
  const holder = h("div");
  const render = () => holder.replaceChildren(table([
    { title: "Topic", value: t => h("a", { href: `#/topics/${enc(t.name)}` }, t.name) },
    { title: "Partitions", num: true, value: t => t.partitions },
    { title: "Messages", num: true, value: t => t.messages_estimate },
    { title: "Size", num: true, value: t => bytes(t.size) },
  ], list.filter(t => showInternal.checked || !t.internal), { test: "topics", key: t => t.name, empty: "no topics yet" }));
  showInternal.addEventListener("change", render);
  render();
  return h("div", {}, h("h1", {}, "Topics"), create, h("label", { class: "bar" }, h("span", {}, showInternal, " show internal topics")), holder);
}

// "a=1, b=2" as {a: "1", b: "2"}.
function parsePairs(text) {
  const pairs = {};
  for (const part of text.split(/[,\n]/)) {
    const at = part.indexOf("=");
    if (at > 0) pairs[part.slice(0, at).trim()] = part.slice(at + 1).trim();
  }
  return pairs;
}

async function topic(name) {
  const info = await get(`/api/topics/${enc(name)}`);
  const path = `/api/topics/${enc(name)}`;
  const reload = () => route();
  const partitions = table([
    { title: "Partition", num: true, value: p => p.partition },
    { title: "Leader", num: true, value: p => p.leader },
    { title: "Replicas", value: p => p.replicas.join(",") },
    { title: "ISR", value: p => p.isr.join(",") },
    { title: "Start offset", num: true, value: p => p.log_start_offset },
    { title: "End offset", num: true, value: p => p.log_end_offset },
    { title: "High watermark", num: true, value: p => p.high_watermark },
    { title: "Size", num: true, value: p => bytes(p.size) },
    { title: "Segments", num: true, value: p => p.segments },
  ], info.partitions, { test: "partitions" });

  const count = h("input", { type: "number", min: info.partitions.length + 1, value: info.partitions.length + 1 });
  const grow = h("form", {}, field("new partition count", count), h("button", { class: "secondary" }, "Add partitions"));
  grow.addEventListener("submit", async e => { e.preventDefault(); if (await attempt(() => post(`${path}/partitions`, { count: Number(count.value) }), "Partitions added")) reload(); });

  const cutPartition = h("select", {}, h("option", { value: "all" }, "all partitions"), info.partitions.map(p => h("option", { value: p.partition }, `partition ${p.partition}`)));
  const cutOffset = h("input", { type: "number", value: -1, title: "-1: everything up to the high watermark" });
  const cut = h("form", {}, field("delete records of", cutPartition), field("before offset (-1: all)", cutOffset), h("button", { class: "secondary" }, "Delete records"));
  cut.addEventListener("submit", async e => {
    e.preventDefault();
    const chosen = cutPartition.value === "all" ? info.partitions.map(p => p.partition) : [Number(cutPartition.value)];
    const offsets = Object.fromEntries(chosen.map(p => [p, Number(cutOffset.value)]));
    if (!confirm(`Delete records of ${name} before offset ${cutOffset.value}?`)) return;
    if (await attempt(() => post(`${path}/delete-records`, { offsets }), "Records deleted")) reload();
  });

  const remove = h("button", { class: "danger", onclick: async () => {
    if (!confirm(`Delete topic ${name} and all its data?`)) return;
    if (await attempt(() => api("DELETE", path), `Deleted ${name}`)) location.hash = "#/topics";
  } }, "Delete topic");

  const configs = configTable(info.configs, "topic-configs");
  const setText = h("input", { placeholder: "retention.ms=3600000, cleanup.policy=compact" });
  const unset = h("input", { placeholder: "keys to reset to default, comma separated" });
  const alter = h("form", { "data-test": "alter-configs" }, field("set", setText), field("delete", unset), h("button", { class: "secondary" }, "Alter configs"));
  alter.addEventListener("submit", async e => {
    e.preventDefault();
    const body = { set: parsePairs(setText.value), delete: unset.value.split(",").map(s => s.trim()).filter(Boolean) };
    if (await attempt(() => post(`${path}/configs`, body), "Configs changed")) reload();
  });

  return h("div", {},
    h("h1", {}, "Topic ", h("span", { class: "mono", "data-test": "topic-name" }, name)),
    h("p", { class: "muted" }, `topic id ${info.topic_id}`),
    h("h2", {}, "Partitions"), partitions, h("div", { class: "bar" }, grow, cut, remove),
    h("h2", {}, "Messages"), messageBrowser(name, info.partitions.length),
    h("h2", {}, "Produce a message"), produceForm(name, info.partitions.length),
    h("h2", {}, "Configs"), alter, configs,
  );
}

function configTable(configs, test) {
  const filter = h("input", { placeholder: "filter keys", type: "search" });
  const holder = h("div");
  const render = () => holder.replaceChildren(table([
    { title: "Key", value: c => h("span", { class: "mono" }, c.name) },
    { title: "Value", value: c => c.sensitive ? "(sensitive)" : c.value },
    { title: "Source", value: c => c.source },
    { title: "", value: c => c.read_only ? "read-only" : "" },
  ], configs.filter(c => c.name.includes(filter.value.trim())), { test }));
  filter.addEventListener("input", render);
  render();
  return h("div", {}, filter, holder);
}

// --- the message browser ---------------------------------------------------------------------------

const decoder = new TextDecoder("utf-8", { fatal: false });
const fromBase64 = text => text === null ? null : Uint8Array.from(atob(text), c => c.charCodeAt(0));

// Bytes as the reader chose: text, pretty JSON (text when not JSON), or hex.
function show(data, view) {
  if (data === null) return h("span", { class: "muted" }, "null");
  if (view === "hex") return h("pre", {}, Array.from(data, b => b.toString(16).padStart(2, "0")).join(" ").replace(/((?:\S+ ){16})/g, "$1\n"));
  const text = decoder.decode(data);
  if (view === "json") {
    try { return h("pre", { "data-test": "json" }, JSON.stringify(JSON.parse(text), null, 2)); } catch (_) { /* not JSON: shown as text */ }
  }
  return h("pre", {}, text);
}

function preview(data) {
  if (data === null) return "null";
  return clip(decoder.decode(data.slice(0, 120)));
}

function clip(text) { return text.length > 80 ? `${text.slice(0, 80)}…` : text; }

// A key or value decoded with its schema from the registry (console.schema.registry.url), or why not.
function schemaView(decoded) {
  const what = h("div", { class: "muted" }, [`schema ${decoded.id}`, decoded.type, decoded.message].filter(Boolean).join(" · "));
  if (decoded.error) return h("div", {}, what, h("div", { "data-test": "schema-error" }, `Not decoded: ${decoded.error}`));
  return h("div", {}, what, h("pre", { "data-test": "schema-value" }, JSON.stringify(decoded.value, null, 2)), decoded.note ? h("div", { class: "muted" }, decoded.note) : null);
}

// The list's preview of a key or value: its decoded form when the registry's schema read it.
function previewOf(data, decoded) {
  return decoded && !decoded.error ? clip(JSON.stringify(decoded.value)) : preview(data);
}

function messageBrowser(name, partitionCount) {
  const mode = h("select", { name: "mode" }, h("option", { value: "newest" }, "newest"), h("option", { value: "offset" }, "from offset"), h("option", { value: "timestamp" }, "from time"));
  const partition = h("select", { name: "partition" }, h("option", { value: "" }, "all"), Array.from({ length: partitionCount }, (_, i) => h("option", { value: i }, i)));
  const position = h("input", { name: "position", placeholder: "offset, or 2024-01-31T12:00", size: 18 });
  const limit = h("input", { name: "limit", type: "number", min: 1, max: 500, value: 50, size: 5 });
  const key = h("input", { name: "key", placeholder: "exact key", size: 12 });
  const contains = h("input", { name: "contains", placeholder: "substring", size: 14 });
  const view = h("select", { name: "view" }, h("option", { value: "json" }, "JSON"), h("option", { value: "text" }, "text"), h("option", { value: "hex" }, "hex"));
  const tail = h("input", { type: "checkbox", name: "tail" });
  const list = h("div", { "data-test": "messages" });
  const detail = h("div");
  const status = h("p", { class: "muted", "data-test": "message-status" });
  let shown = [];
  let selected = null;

  const query = () => {
    const q = new URLSearchParams({ encoding: "base64", limit: limit.value || 50 });
    if (partition.value !== "") q.set("partition", partition.value);
    if (key.value) q.set("key", key.value);
    if (contains.value) q.set("contains", contains.value);
    if (mode.value === "newest" || tail.checked) q.set("newest", limit.value || 50);
    else if (mode.value === "offset") q.set("offset", position.value || 0);
    else q.set("timestamp", Date.parse(position.value) || 0);
    return q;
  };

  const render = () => {
    list.replaceChildren(table([
      { title: "Partition", num: true, value: m => m.partition },
      { title: "Offset", num: true, value: m => m.offset },
      { title: "Timestamp", value: m => when(m.timestamp) },
      { title: "Key", value: m => h("span", { class: "mono" }, previewOf(m.keyBytes, m.key_schema)) },
      { title: "Value", value: m => h("span", { class: "mono" }, previewOf(m.valueBytes, m.value_schema)) },
      { title: "Headers", num: true, value: m => m.headers.length },
    ], shown, { test: "message-list", key: m => `${m.partition}-${m.offset}`, empty: "no messages here", onclick: m => { selected = m; openMessage(); } }));
  };

  const openMessage = () => {
    if (!selected) { detail.replaceChildren(); return; }
    const m = selected;
    detail.replaceChildren(h("div", { class: "detail", "data-test": "message-detail" },
      h("dl", {},
        h("dt", {}, "partition"), h("dd", {}, m.partition),
        h("dt", {}, "offset"), h("dd", { "data-test": "offset" }, m.offset),
        h("dt", {}, "timestamp"), h("dd", {}, `${when(m.timestamp)} (${m.timestamp})`),
        h("dt", {}, "key"), h("dd", { "data-test": "key" }, show(m.keyBytes, view.value)),
        m.key_schema ? [h("dt", {}, "key, decoded"), h("dd", { "data-test": "key-schema" }, schemaView(m.key_schema))] : null,
        h("dt", {}, "value"), h("dd", { "data-test": "value" }, show(m.valueBytes, view.value)),
        m.value_schema ? [h("dt", {}, "value, decoded"), h("dd", { "data-test": "value-schema" }, schemaView(m.value_schema))] : null,
        h("dt", {}, "headers"), h("dd", { "data-test": "headers" }, m.headers.length ? table([
          { title: "Name", value: x => x.key },
          { title: "Value", value: x => show(x.bytes, view.value === "json" ? "text" : view.value) },
        ], m.headers) : h("span", { class: "muted" }, "none")),
      ),
      m.truncated ? h("p", { class: "muted" }, "Shown cut to the first 64 KiB.") : null,
    ));
  };

  const load = async () => {
    const answer = await attempt(() => get(`/api/topics/${enc(name)}/messages?${query()}`));
    if (!answer) return;
    shown = answer.messages.map(m => ({ ...m, keyBytes: fromBase64(m.key), valueBytes: fromBase64(m.value), headers: m.headers.map(x => ({ key: x.key, bytes: fromBase64(x.value) })) }));
    if (!(mode.value === "newest" || tail.checked)) shown.sort((a, b) => a.offset - b.offset);
    // `complete: false`: the newest-N search spent the request's read budget before every
    // partition had its N or reached its start, so older matches may exist unseen.
    status.replaceChildren(
      answer.scanned_to === undefined ? `${shown.length} messages` : `${shown.length} messages; read up to offset ${answer.scanned_to}`,
      answer.complete === false ? h("span", { class: "incomplete", "data-test": "search-incomplete" },
        "; the search stopped at its read budget: older messages were not searched (pick a partition, or read from an offset)") : "",
    );
    render();
  };

  const form = h("form", { "data-test": "browse" },
    field("show", mode), field("partition", partition), field("offset / time", position), field("limit", limit),
    field("key is", key), field("contains", contains), field("view as", view),
    h("label", {}, "live tail", tail), h("button", {}, "Load"));
  form.addEventListener("submit", e => { e.preventDefault(); load(); });
  view.addEventListener("change", openMessage);
  tail.addEventListener("change", () => { if (tail.checked) load(); });
  every(TAIL_MS, () => { if (tail.checked && document.contains(list)) load(); });
  load();
  return h("div", {}, form, status, list, detail);
}

function produceForm(name, partitionCount) {
  const key = h("input", { name: "key", placeholder: "key (optional)" });
  const value = h("textarea", { name: "value", placeholder: '{"hello": "world"}' });
  const headers = h("input", { name: "headers", placeholder: "source=console, trace=1" });
  const partition = h("select", { name: "partition" }, h("option", { value: "-1" }, "by key"), Array.from({ length: partitionCount }, (_, i) => h("option", { value: i }, i)));
  const form = h("form", { "data-test": "produce" }, field("key", key), field("value", value), field("headers", headers), field("partition", partition), h("button", {}, "Produce"));
  form.addEventListener("submit", async e => {
    e.preventDefault();
    const body = { key: key.value || null, value: value.value, headers: parsePairs(headers.value), partition: Number(partition.value), encoding: "text" };
    await attempt(() => post(`/api/topics/${enc(name)}/messages`, body), r => `Produced to partition ${r.partition} at offset ${r.offset}`);
  });
  return form;
}

// --- groups ------------------------------------------------------------------------------------------

async function groups() {
  const list = (await get("/api/groups")).groups;
  return h("div", {}, h("h1", {}, "Consumer groups"), table([
    { title: "Group", value: g => h("a", { href: `#/groups/${enc(g.group_id)}` }, g.group_id) },
    { title: "Type", value: g => g.type },
    { title: "State", value: g => state(g.state) },
    { title: "Protocol", value: g => g.protocol_type },
    { title: "Members", num: true, value: g => g.members },
  ], list, { test: "groups", key: g => g.group_id, empty: "no groups yet" }));
}

const lagHistory = {};  // group id -> {"topic-partition": [[time, lag], ...]}, sampled while its page is open

async function group(id) {
  const holder = h("div");
  const chart = h("div");
  const history = lagHistory[id] = lagHistory[id] || {};
  const refresh = async () => {
    const info = await get(`/api/groups/${enc(id)}`);
    const t = Date.now() / 1000;
    for (const o of info.offsets) if (o.lag !== null) keep(history[`${o.topic}-${o.partition}`] = history[`${o.topic}-${o.partition}`] || [], [t, o.lag]);
    holder.replaceChildren(groupDetail(info));
    chart.replaceChildren(lineChart("Lag per partition (messages)", busiest(history, 8)));
    return info;
  };
  const info = await refresh();
  every(POLL_MS, () => refresh().catch(() => {}));
  return h("div", {},
    h("h1", {}, "Group ", h("span", { class: "mono" }, id)),
    holder, h("h2", {}, "Lag over time"), h("div", { class: "charts" }, chart),
    info.type === "share" ? null : h("div", {}, h("h2", {}, "Reset offsets"), resetForm(id, info)),
  );
}

function groupDetail(info) {
  const totalLag = info.offsets.reduce((sum, o) => sum + (o.lag || 0), 0);
  return h("div", {},
    h("p", {}, state(info.state), ` ${info.type} group`, info.protocol ? `, assignor ${info.protocol}` : "",
      `, ${info.type === "classic" ? "generation" : "epoch"} ${info.generation_id}, total lag `, h("b", { "data-test": "total-lag" }, totalLag)),
    h("h2", {}, "Members"),
    table([
      { title: "Member", value: m => h("span", { class: "mono" }, m.member_id) },
      { title: "Client", value: m => m.client_id },
      { title: "Host", value: m => m.client_host },
      { title: "Assignment", value: m => Object.entries(m.assignment || {}).map(([t, ps]) => `${t}: ${ps.join(",")}`).join("; ") },
    ], info.members, { test: "members", empty: "no members: the group is inactive" }),
    h("h2", {}, "Committed offsets and lag"),
    table([
      { title: "Topic", value: o => h("a", { href: `#/topics/${enc(o.topic)}` }, o.topic) },
      { title: "Partition", num: true, value: o => o.partition },
      { title: "Committed", num: true, value: o => o.committed_offset },
      { title: "Log end", num: true, value: o => o.log_end_offset },
      { title: "Lag", num: true, value: o => o.lag },
      { title: "Member", value: o => o.member_id },
    ], info.offsets, { test: "offsets", key: o => `${o.topic}-${o.partition}`, empty: "no committed offsets" }),
  );
}

function resetForm(id, info) {
  const topics = [...new Set(info.offsets.map(o => o.topic))];
  const topic = h("input", { name: "topic", value: topics[0] || "", list: "reset-topics", required: true });
  const options = h("datalist", { id: "reset-topics" }, topics.map(t => h("option", { value: t })));
  const to = h("select", { name: "to" }, ["earliest", "latest", "timestamp", "offset", "shift"].map(v => h("option", { value: v }, v)));
  const value = h("input", { name: "value", placeholder: "offset, ms, or shift", size: 14 });
  const result = h("div", { "data-test": "reset-result" });
  const run = async dryRun => {
    const body = { topic: topic.value, to: to.value, dry_run: dryRun };
    if (!["earliest", "latest"].includes(to.value)) body.value = to.value === "timestamp" && isNaN(Number(value.value)) ? Date.parse(value.value) : Number(value.value);
    const answer = await attempt(() => post(`/api/groups/${enc(id)}/reset-offsets`, body), dryRun ? null : "Offsets reset");
    if (!answer) return;
    result.replaceChildren(h("div", { class: "preview" },
      h("b", {}, dryRun ? "Dry run: nothing changed yet" : "Applied"),
      table([
        { title: "Topic", value: o => o.topic },
        { title: "Partition", num: true, value: o => o.partition },
        { title: "Current", num: true, value: o => o.previous_offset },
        { title: "New", num: true, value: o => o.new_offset },
      ], answer.offsets, { test: dryRun ? "reset-preview" : "reset-applied" }),
      dryRun ? h("button", { "data-test": "reset-apply", onclick: () => run(false) }, "Apply") : null,
    ));
  };
  const form = h("form", { "data-test": "reset" }, field("topic", topic), options, field("to", to), field("value", value), h("button", { class: "secondary" }, "Preview (dry run)"));
  form.addEventListener("submit", e => { e.preventDefault(); run(true); });
  return h("div", {}, h("p", { class: "muted" }, "As kafka-consumer-groups --reset-offsets: only while the group has no members."), form, result);
}

// --- transactions and producers ----------------------------------------------------------------------

async function transactions() {
  const [txns, producers] = await Promise.all([get("/api/transactions"), get("/api/producers")]);
  return h("div", {},
    h("h1", {}, "Transactions"),
    table([
      { title: "Transactional id", value: t => t.transactional_id },
      { title: "Producer id", num: true, value: t => t.producer_id },
      { title: "Epoch", num: true, value: t => t.producer_epoch },
      { title: "State", value: t => state(t.state) },
      { title: "Timeout", num: true, value: t => `${t.timeout_ms} ms` },
      { title: "Started", value: t => when(t.start_ms) },
      { title: "Partitions", value: t => t.partitions.join(", ") },
    ], txns.transactions, { test: "transactions", empty: "no transactional producers" }),
    h("h2", {}, "Producers per partition"),
    table([
      { title: "Topic", value: p => p.topic },
      { title: "Partition", num: true, value: p => p.partition },
      { title: "Producer id", num: true, value: p => p.producer_id },
      { title: "Epoch", num: true, value: p => p.producer_epoch },
      { title: "Last sequence", num: true, value: p => p.last_sequence },
      { title: "Last write", value: p => when(p.last_timestamp) },
      { title: "Open transaction from", num: true, value: p => p.current_txn_start_offset < 0 ? "–" : p.current_txn_start_offset },
    ], producers.producers, { test: "producers", empty: "no idempotent or transactional producers" }),
  );
}

// --- security: ACLs and SCRAM users -------------------------------------------------------------------------

async function security() {
  const [acls, users] = await Promise.all([get("/api/acls").catch(e => ({ error: e.message })), get("/api/users").catch(e => ({ error: e.message }))]);
  const refused = answer => h("p", { class: "muted" }, answer.error);
  return h("div", {},
    h("h1", {}, "Security"),
    h("h2", {}, "ACLs"),
    acls.error ? refused(acls) : !acls.enabled ? h("p", { class: "muted" }, "No authorizer is configured (authorizer.class.name): every client may do everything.") :
      table([
        { title: "Principal", value: a => a.principal },
        { title: "Host", value: a => a.host },
        { title: "Permission", value: a => a.permission },
        { title: "Operation", value: a => a.operation },
        { title: "Resource", value: a => a.resource_type },
        { title: "Name", value: a => h("span", { class: "mono" }, a.resource_name) },
        { title: "Pattern", value: a => a.pattern_type },
      ], acls.acls, { test: "acls", empty: "no ACLs: only super users may act" }),
    h("h2", {}, "SCRAM users"),
    users.error ? refused(users) : table([
      { title: "User", value: u => u.user },
      { title: "Mechanisms", value: u => u.mechanisms.map(m => `${m.mechanism} (${m.iterations} iterations)`).join(", ") },
    ], users.users, { test: "users", empty: "no SCRAM users" }),
  );
}

// --- client telemetry (KIP-714) ------------------------------------------------------------------------------

async function clients() {
  const info = await get("/api/client-metrics");
  const name = h("input", { name: "name", required: true, placeholder: "all-producers" });
  const metrics = h("input", { name: "metrics", placeholder: "org.apache.kafka.producer., or *", size: 30 });
  const interval = h("input", { name: "interval", type: "number", min: 100, max: 3600000, placeholder: "300000" });
  const match = h("input", { name: "match", placeholder: "client_id=orders-.*", size: 24 });
  const form = h("form", { "data-test": "subscription" }, field("subscription", name), field("metrics (prefixes)", metrics), field("interval.ms", interval), field("match", match), h("button", { class: "secondary" }, "Set subscription"));
  form.addEventListener("submit", async e => {
    e.preventDefault();
    const set = {};
    if (metrics.value) set.metrics = metrics.value;
    if (interval.value) set["interval.ms"] = interval.value;
    if (match.value) set.match = match.value;
    if (await attempt(() => post(`/api/client-metrics/subscriptions/${enc(name.value)}`, { set }), `Subscription ${name.value} set`)) route();
  });
  const remove = s => attempt(() => post(`/api/client-metrics/subscriptions/${enc(s.name)}`, { delete: Object.keys(s.configs) }), `Subscription ${s.name} removed`).then(done => done && route());
  return h("div", {},
    h("h1", {}, "Client telemetry"),
    h("p", { class: "muted" }, "KIP-714: clients that support it (the Java client, librdkafka) push the metrics a subscription asks for, as kafka-client-metrics --alter sets it."),
    form,
    table([
      { title: "Subscription", value: s => s.name },
      { title: "Metrics", value: s => s.configs.metrics || "–" },
      { title: "Interval", num: true, value: s => s.configs["interval.ms"] ? `${s.configs["interval.ms"]} ms` : "default" },
      { title: "Match", value: s => s.configs.match || "every client" },
      { title: "", value: s => h("button", { class: "danger", onclick: () => remove(s) }, "Remove") },
    ], info.subscriptions, { test: "subscriptions", empty: "no subscriptions: clients push nothing" }),
    h("h2", {}, "Client instances"),
    table([
      { title: "Client id", value: c => h("a", { href: `#/clients/${c.client_instance_id}` }, c.client_id || "(none)") },
      { title: "Instance", value: c => h("span", { class: "mono" }, c.client_instance_id) },
      { title: "Address", value: c => c.client_address },
      { title: "Interval", num: true, value: c => `${c.push_interval_ms} ms` },
      { title: "Pushes", num: true, value: c => c.pushes },
      { title: "Last push", value: c => when(c.last_push_ms) },
      { title: "Metrics", num: true, value: c => c.series },
      { title: "Last error", value: c => c.last_error },
    ], info.instances, { test: "client-instances", empty: "no client has asked for a subscription yet" }),
  );
}

async function clientInstance(id) {
  const holder = h("div");
  const refresh = async () => {
    const info = await get(`/api/client-metrics/instances/${enc(id)}`);
    holder.replaceChildren(table([
      { title: "Metric", value: m => h("span", { class: "mono" }, m.name) },
      { title: "Attributes", value: m => Object.entries(m.attributes).map(([k, v]) => `${k}=${v}`).join(", ") },
      { title: "Kind", value: m => m.kind },
      { title: "Value", num: true, value: m => Number.isInteger(m.value) ? m.value : m.value.toFixed(3) },
    ], info.metrics, { test: "client-metrics", empty: "nothing pushed yet" }));
    return info;
  };
  const info = await refresh();
  every(POLL_MS, () => refresh().catch(() => {}));
  return h("div", {}, h("h1", {}, "Client ", h("span", { class: "mono" }, info.client_id || id)), h("p", { class: "muted" }, `instance ${id}`), holder);
}

// --- broker configs and logs -----------------------------------------------------------------------------

async function broker() {
  const configs = (await get("/api/broker/configs")).configs;
  const setText = h("input", { placeholder: "log.retention.ms=86400000", size: 40 });
  const unset = h("input", { placeholder: "keys back to their static value", size: 30 });
  const form = h("form", { "data-test": "alter-broker" }, field("set", setText), field("delete", unset), h("button", { class: "secondary" }, "Change dynamically"));
  form.addEventListener("submit", async e => {
    e.preventDefault();
    const body = { set: parsePairs(setText.value), delete: unset.value.split(",").map(s => s.trim()).filter(Boolean) };
    if (await attempt(() => post("/api/broker/configs", body), "Broker configs changed")) route();
  });
  const dynamic = configs.filter(c => c.source.startsWith("DYNAMIC"));
  return h("div", {},
    h("h1", {}, "Broker"),
    h("p", { class: "muted" }, "Dynamic changes apply at once, as kafka-configs --entity-type brokers --alter makes them."),
    form,
    h("h2", {}, "Dynamic changes"),
    table([{ title: "Key", value: c => c.name }, { title: "Value", value: c => c.sensitive ? "(sensitive)" : c.value }, { title: "Source", value: c => c.source }], dynamic, { empty: "none: every key has its static or default value" }),
    h("h2", {}, "All configs"), configTable(configs, "broker-configs"),
  );
}

async function logs() {
  const box = h("div", { "data-test": "logs" });
  let since = 0;
  const refresh = async () => {
    const lines = (await get(`/api/logs?since=${since}&limit=500`)).lines;
    for (const line of lines) {
      since = line.seq;
      box.prepend(h("div", { class: `logline ${line.level.toUpperCase()}` }, `${new Date(line.time * 1000).toISOString()} ${line.level.toUpperCase().padEnd(8)} ${line.logger} ${line.message}`));
    }
    while (box.childElementCount > 1000) box.lastChild.remove();
  };
  await refresh();
  every(POLL_MS, () => refresh().catch(() => {}));
  return h("div", {}, h("h1", {}, "Broker log"), h("p", { class: "muted" }, "Newest first, as the broker logs them."), box);
}

// --- login (only when the broker has an authorizer or SASL listeners) -------------------------------------

function showLogin() {
  timers.forEach(clearInterval);
  timers = [];
  const username = h("input", { name: "username", autocomplete: "username", required: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const form = h("form", { "data-test": "login" }, field("user", username), field("password", password), h("button", {}, "Log in"));
  form.addEventListener("submit", async e => {
    e.preventDefault();
    const session = await attempt(() => post("/api/login", { username: username.value, password: password.value }));
    if (session) { await showPrincipal(); route(); }
  });
  document.getElementById("page").replaceChildren(h("div", { class: "login" },
    h("h1", {}, "Log in"),
    h("p", { class: "muted" }, "This broker authorizes its clients: log in as a SASL user (PLAIN or SCRAM). The console can do only what that user's ACLs allow."),
    form));
}

async function showPrincipal() {
  const session = await get("/api/session");
  const line = document.getElementById("cluster-line");
  line.replaceChildren();
  if (session.login_required && session.principal) {
    line.append(`${session.principal} · `, h("a", { href: "#", onclick: async e => { e.preventDefault(); await post("/api/logout"); showLogin(); } }, "log out"), " · ");
  }
  if (session.principal) {
    const cluster = await get("/api/cluster");
    line.append(`${cluster.bootstrap_servers} · node ${cluster.node_id}`);
  }
  return session;
}

// --- start ------------------------------------------------------------------------------------------------

async function start() {
  window.addEventListener("hashchange", route);
  const session = await showPrincipal();
  if (session.principal) await route();
  else showLogin();
}
start();
