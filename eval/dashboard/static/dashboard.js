// channelmarket live dashboard: one WebSocket to the server's shared simulation; every panel is drawn
// with D3 (bundled in /static/vendor, never fetched from a CDN) from the frames the server sends:
// the public market summary, energy and money by kind, and the sampled channel states.
"use strict";

const KIND_COLORS = { solar: "#ff9f1c", wind: "#3a86ff", storage: "#9d4edd", consumer: "#38b000" };
const EXTRA_COLORS = ["#ff006e", "#00bbf9", "#d4a373", "#e9ff70"];
const EDGE_COLORS = { high: "#ffffff", active: "#38b000", new: "#ffd60a", idle: "#6c757d" };
const EDGE_LABELS = { high: "> 70% utilized", active: "paid this step", new: "new", idle: "idle" };
const HIGH_UTILIZATION = 0.7;

const ui = {
  status: document.getElementById("status"),
  execute: document.getElementById("btn-execute"),
  pause: document.getElementById("btn-pause"),
  replay: document.getElementById("btn-replay"),
  scenario: document.getElementById("sel-scenario"),
  population: document.getElementById("sel-population"),
  steps: document.getElementById("inp-steps"),
  speed: document.getElementById("sel-speed"),
  recording: document.getElementById("sel-recording"),
  shocks: Array.from(document.querySelectorAll(".shock-btn")),
  pricePanel: document.getElementById("price-panel"),
  topoPanel: document.getElementById("topology-panel"),
};

const app = { ws: null, status: "idle", source: null, summaries: [], frame: null, tradesTotal: 0,
              options: null, episode: null };

// ---- helpers -------------------------------------------------------------------------------------------
function kindColor(names) {
  let extra = 0;
  return names.map((n) => KIND_COLORS[n] || EXTRA_COLORS[extra++ % EXTRA_COLORS.length]);
}
function hhmm(hour) {
  const m = Math.round(hour * 60) % (24 * 60);
  return String(Math.floor(m / 60)).padStart(2, "0") + ":" + String(m % 60).padStart(2, "0");
}
function fmt(x, d = 1) { return Number(x).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d }); }
function toast(text, error = false) {
  const el = document.createElement("div");
  el.className = "toast" + (error ? " error" : "");
  el.textContent = text;
  document.getElementById("toasts").appendChild(el);
  setTimeout(() => el.remove(), error ? 6000 : 3500);
}
function send(msg) {
  if (app.ws && app.ws.readyState === WebSocket.OPEN) app.ws.send(JSON.stringify(msg));
  else toast("not connected to the server", true);
}
function size(svg) {
  const r = svg.node().getBoundingClientRect();
  return [Math.max(r.width, 50), Math.max(r.height, 50)];
}

// ---- statistics bar (values flash when they change) -----------------------------------------------------
function setStat(id, text) {
  const el = document.getElementById(id);
  if (el.textContent === text) return;
  el.textContent = text;
  el.classList.remove("flash");
  void el.offsetWidth;               // restart the transition
  el.classList.add("flash");
  setTimeout(() => el.classList.remove("flash"), 250);
}
function drawStats() {
  const f = app.frame;
  if (!f) {
    ["stat-agents", "stat-channels", "stat-trades", "stat-supply-demand", "stat-price", "stat-time"]
      .forEach((id) => { document.getElementById(id).textContent = "—"; });
    document.getElementById("stat-trades").dataset.total = "0";
    setStat("stat-shock", "NONE");
    document.getElementById("stat-shock").classList.remove("on");
    return;
  }
  const s = f.summary;
  setStat("stat-agents", f.n_agents.toLocaleString("en-US"));
  setStat("stat-channels", s.active_channels.toLocaleString("en-US"));
  setStat("stat-trades", `${app.tradesTotal.toLocaleString("en-US")} (+${s.trades})`);
  document.getElementById("stat-trades").dataset.total = String(app.tradesTotal);
  const d = Math.max(s.supply, s.demand) >= 1000 ? 0 : 1;
  setStat("stat-supply-demand", `${fmt(s.supply, d)} / ${fmt(s.demand, d)}`);
  setStat("stat-price", fmt(s.clearing_price, 2));
  setStat("stat-time", hhmm(s.hour));
  const shocked = s.shock !== "NONE" && s.shock_remaining > 0;
  setStat("stat-shock", shocked ? `${s.shock} (${s.shock_remaining})` : "NONE");
  document.getElementById("stat-shock").classList.toggle("on", shocked);
  ui.pricePanel.classList.toggle("shocked", shocked);
  ui.pricePanel.dataset.shock = shocked ? s.shock : "NONE";
}

// ---- price chart ------------------------------------------------------------------------------------------
const price = d3.select("#price-chart");
function drawPrices() {
  const [w, h] = size(price);
  const m = { l: 44, r: 10, t: 8, b: 22 };
  const data = app.summaries;
  price.selectAll("*").remove();
  const x = d3.scaleLinear().range([m.l, w - m.r]).domain(data.length ? d3.extent(data, (d) => d.t) : [0, 1]);
  if (x.domain()[0] === x.domain()[1]) x.domain([x.domain()[0], x.domain()[0] + 1]);
  const lo = d3.min(data, (d) => Math.min(d.clearing_price, d.ref_price));
  const hi = d3.max(data, (d) => Math.max(d.clearing_price, d.ref_price));
  const y = d3.scaleLinear().range([h - m.b, m.t]).domain(data.length ? [lo, hi] : [0, 100]).nice();
  const step = data.length > 1 ? (x(data[1].t) - x(data[0].t)) : 8;
  price.append("g").selectAll("rect").data(data.filter((d) => d.shock !== "NONE")).join("rect")
    .attr("class", "shock-band").attr("x", (d) => x(d.t) - step / 2).attr("width", Math.max(step, 2))
    .attr("y", m.t).attr("height", h - m.b - m.t);
  price.append("g").attr("class", "axis").attr("transform", `translate(0,${h - m.b})`).call(d3.axisBottom(x).ticks(8));
  price.append("g").attr("class", "axis").attr("transform", `translate(${m.l},0)`).call(d3.axisLeft(y).ticks(5));
  const line = (key) => d3.line().x((d) => x(d.t)).y((d) => y(d[key]));
  price.append("path").datum(data).attr("class", "line-ref").attr("d", line("ref_price"));
  price.append("path").datum(data).attr("class", "line-clearing").attr("d", line("clearing_price"));
  const last = data[data.length - 1];
  if (last) {
    price.append("text").attr("x", w - m.r).attr("y", m.t + 10).attr("text-anchor", "end").attr("fill", "#58a6ff")
      .attr("font-size", 11).text(`clearing ${fmt(last.clearing_price, 2)}  ref ${fmt(last.ref_price, 2)} €/MWh`);
  }
}
function flashPrice() {
  ui.pricePanel.classList.remove("flash-orange");
  void ui.pricePanel.offsetWidth;
  ui.pricePanel.classList.add("flash-orange");
  setTimeout(() => ui.pricePanel.classList.remove("flash-orange"), 1200);
}

// ---- resource monitor ---------------------------------------------------------------------------------
const res = d3.select("#resources");
function drawResources() {
  res.selectAll("*").remove();
  const f = app.frame;
  if (!f) return;
  const [w, h] = size(res);
  const k = f.kinds;
  const colors = kindColor(k.names);
  let rows;
  if (f.agents) {    // a small market: one bar per agent
    document.getElementById("resource-caption").textContent = "energy (MWh) and money (k€) per agent";
    rows = f.agents.kind.map((kd, i) => ({ name: `${k.names[kd]} ${i}`, color: colors[kd],
      energy: f.agents.energy[i], demand: f.agents.demand[i], money: f.agents.money[i] / 1e3 }));
  } else {
    document.getElementById("resource-caption").textContent = "energy (MWh) and money (k€) by kind";
    rows = k.names.map((n, i) => ({ name: n, color: colors[i], count: k.count[i],
      energy: k.generation[i] + k.stored[i], demand: k.demand[i], money: k.money[i] / 1e3 }))
      .filter((r) => r.count > 0);
  }
  const half = w / 2;
  const panel = (x0, title, bars) => {
    const m = { l: 40, r: 8, t: 14, b: f.agents ? 8 : 20 };
    const x = d3.scaleBand().domain(rows.map((r) => r.name)).range([x0 + m.l, x0 + half - m.r]).padding(0.2);
    const vals = bars.flatMap((b) => rows.map((r) => b.sign * r[b.key]));
    const y = d3.scaleLinear().domain([Math.min(0, d3.min(vals)), Math.max(1e-9, d3.max(vals))]).nice()
      .range([h - m.b, m.t]);
    const g = res.append("g");
    g.append("text").attr("class", "bar-label").attr("x", x0 + m.l).attr("y", 10).text(title);
    g.append("g").attr("class", "axis").attr("transform", `translate(${x0 + m.l},0)`).call(d3.axisLeft(y).ticks(4));
    if (!f.agents) g.append("g").attr("class", "axis").attr("transform", `translate(0,${h - m.b})`).call(d3.axisBottom(x));
    const bw = x.bandwidth() / bars.length;
    bars.forEach((b, j) => {
      g.append("g").selectAll("rect").data(rows).join("rect")
        .attr("x", (r) => x(r.name) + j * bw).attr("width", Math.max(bw - 1, 1))
        .attr("y", (r) => y(Math.max(0, b.sign * r[b.key]))).attr("height", (r) => Math.abs(y(b.sign * r[b.key]) - y(0)))
        .attr("fill", (r) => r.color).attr("opacity", b.opacity)
        .append("title").text((r) => `${r.name}: ${b.key} ${fmt(r[b.key], 2)}`);
    });
  };
  panel(0, "energy: held/generated (solid), demand (faint)", [{ key: "energy", sign: 1, opacity: 1 },
    { key: "demand", sign: f.agents ? -1 : 1, opacity: 0.45 }]);
  panel(half, "money (k€): wallet + channel balances", [{ key: "money", sign: 1, opacity: 0.9 }]);
}

// ---- channel topology (force-directed) ------------------------------------------------------------------
const topo = d3.select("#topology");
const topoLayer = { links: topo.append("g"), nodes: topo.append("g") };
const graph = { key: null, nodes: [], byId: new Map(), sim: null };
function edgeState(ch, i) {
  if (ch.utilization[i] > HIGH_UTILIZATION) return "high";
  if (ch.flow[i] !== 0) return "active";
  if (ch.new[i]) return "new";
  return "idle";
}
function drawTopology() {
  const f = app.frame;
  if (!f) {
    topoLayer.links.selectAll("*").remove();
    topoLayer.nodes.selectAll("*").remove();
    if (graph.sim) graph.sim.stop();
    graph.key = null;
    document.getElementById("topology-caption").textContent = "";
    return;
  }
  const [w, h] = size(topo);
  graph.size = [w, h];
  const colors = kindColor(f.kinds.names);
  const key = `${f.scenario}|${f.episode}|${f.n_agents}`;
  if (key !== graph.key) {     // a new episode: a new layout
    graph.key = key;
    graph.nodes = []; graph.byId = new Map();
    if (graph.sim) graph.sim.stop();
    graph.sim = d3.forceSimulation([])
      .force("link", d3.forceLink([]).strength(0.2))
      .force("collide", d3.forceCollide((n) => n.r + 1))
      .force("x", d3.forceX(w / 2).strength(0.03)).force("y", d3.forceY(h / 2).strength(0.045))
      .on("tick", tick);
    drawLegend(f, colors);
  }
  syncNodes(f, colors, w, h);
  const ch = f.channels;
  const capMax = d3.max(ch.capacity) || 1;
  const links = [];
  for (let i = 0; i < ch.u.length; i++) {
    const s = graph.byId.get(ch.u[i]), t = graph.byId.get(ch.v[i]);
    if (s && t) links.push({ slot: ch.slot[i], source: s, target: t, state: edgeState(ch, i),
                             width: 0.4 + 2.6 * ch.capacity[i] / capMax });
  }
  const order = { idle: 0, new: 1, active: 2, high: 3 };
  links.sort((a, b) => order[a.state] - order[b.state]);
  const old = graph.sim.force("link").links();
  const changed = old.length !== links.length || links.some((l, i) => old[i] === undefined);
  graph.sim.force("link").links(links);
  topoLayer.links.selectAll("line").data(links, (l) => l.slot).join("line")
    .attr("stroke", (l) => EDGE_COLORS[l.state]).attr("stroke-width", (l) => l.width)
    .attr("stroke-opacity", (l) => (l.state === "idle" ? 0.45 : 0.9)).attr("class", (l) => "edge " + l.state)
    .order();                      // busy channels drawn over idle ones
  graph.sim.alpha(changed ? 0.3 : 0.08).restart();
  document.getElementById("topology-caption").textContent =
    `${f.nodes.id.length} agents, ${links.length} of ${ch.total.toLocaleString("en-US")} channels` +
    (ch.sampled ? " (sample)" : "");
  tick();
}
// the sampled agents of this frame; agents already shown keep their place (large markets swap
// agents that lost their channels for neighbours, see envs/frames.refresh_sample)
function syncNodes(f, colors, w, h) {
  const ids = f.nodes.id;
  if (ids.length === graph.nodes.length && ids.every((id, i) => graph.nodes[i].id === id)) return;
  const capMax = d3.max(f.nodes.capacity) || 1;
  const small = ids.length > 150 ? 0.6 : 1;
  const old = graph.byId;
  const near = new Map();          // a new agent starts beside a shown neighbour
  f.channels.u.forEach((a, i) => { const b = f.channels.v[i];
    if (old.has(a) && !old.has(b)) near.set(b, old.get(a)); else if (old.has(b) && !old.has(a)) near.set(a, old.get(b)); });
  graph.nodes = ids.map((id, i) => {
    const n = old.get(id);
    if (n) return n;
    const at = near.get(id);
    return { id, kind: f.nodes.kind[i], r: small * (3 + 9 * Math.sqrt(f.nodes.capacity[i] / capMax)),
             x: at ? at.x + (Math.random() - 0.5) * 20 : w / 2 + (Math.random() - 0.5) * w * 0.6,
             y: at ? at.y + (Math.random() - 0.5) * 20 : h / 2 + (Math.random() - 0.5) * h * 0.6 };
  });
  graph.byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const room = (w * h) / Math.max(graph.nodes.length, 1);     // panel area per agent: few agents spread wide
  graph.sim.nodes(graph.nodes)
    .force("charge", d3.forceManyBody().strength(-Math.min(300, Math.max(18, 0.02 * room))).distanceMax(Math.max(w, h) / 2));
  graph.sim.force("link").distance(Math.min(110, Math.max(26, 0.6 * Math.sqrt(room))));
  topoLayer.nodes.selectAll("circle").data(graph.nodes, (n) => n.id).join((enter) => enter.append("circle")
      .attr("stroke", "#0d1117").attr("stroke-width", 0.8)
      .call(d3.drag().on("start", (e, n) => { if (!e.active) graph.sim.alphaTarget(0.2).restart(); n.fx = n.x; n.fy = n.y; })
        .on("drag", (e, n) => { n.fx = e.x; n.fy = e.y; })
        .on("end", (e, n) => { if (!e.active) graph.sim.alphaTarget(0); n.fx = null; n.fy = null; }))
      .call((c) => c.append("title").text((n) => `${f.kinds.names[n.kind]} agent ${n.id}`)))
    .attr("r", (n) => n.r).attr("fill", (n) => colors[n.kind]).attr("class", (n) => "node kind-" + f.kinds.names[n.kind]);
}
function tick() {
  const [w, h] = graph.size || [0, 0];
  if (w) graph.nodes.forEach((n) => {       // keep every node inside the panel
    n.x = Math.max(n.r, Math.min(w - n.r, n.x)); n.y = Math.max(n.r, Math.min(h - n.r, n.y));
  });
  topoLayer.links.selectAll("line").attr("x1", (l) => l.source.x).attr("y1", (l) => l.source.y)
    .attr("x2", (l) => l.target.x).attr("y2", (l) => l.target.y);
  topoLayer.nodes.selectAll("circle").attr("cx", (n) => n.x).attr("cy", (n) => n.y);
}
function drawLegend(f, colors) {
  const present = new Set(f.nodes.kind);
  const items = f.kinds.names.map((n, i) => [n, colors[i], i]).filter((x) => present.has(x[2]))
    .map(([n, c]) => `<span><i style="background:${c}"></i>${n}</span>`);
  Object.entries(EDGE_COLORS).forEach(([s, c]) => items.push(`<span><i class="edge" style="background:${c}"></i>${EDGE_LABELS[s]}</span>`));
  document.getElementById("topology-legend").innerHTML = items.join("");
}

// ---- controls ---------------------------------------------------------------------------------------------
function fill(select, values, chosen, empty) {
  select.innerHTML = "";
  if (empty !== undefined) select.append(new Option(empty, ""));
  values.forEach((v) => select.append(new Option(v, v, false, v === chosen)));
}
function setControls() {
  const running = app.status === "running" || app.status === "starting";
  const live = running && app.source === "live";
  const shocked = app.frame && app.frame.summary.shock !== "NONE" && app.frame.summary.shock_remaining > 0;
  ui.shocks.forEach((b) => { b.disabled = !live || shocked; });
  ui.pause.disabled = app.status === "idle";
  ui.replay.disabled = !ui.recording.value;
}
ui.execute.addEventListener("click", () => {
  const steps = Number(ui.steps.value);
  send({ type: "execute", scenario: ui.scenario.value, population: ui.population.value,
         steps: Number.isInteger(steps) ? steps : ui.steps.value, interval: Number(ui.speed.value) });
});
ui.pause.addEventListener("click", () => send({ type: "pause" }));
ui.shocks.forEach((b) => b.addEventListener("click", () => send({ type: "shock", kind: b.dataset.shock })));
ui.speed.addEventListener("change", () => { if (app.status === "running") send({ type: "speed", interval: Number(ui.speed.value) }); });
ui.recording.addEventListener("change", setControls);
ui.replay.addEventListener("click", () => send({ type: "replay", recording: ui.recording.value, interval: Number(ui.speed.value) }));
document.getElementById("btn-maximize").addEventListener("click", () => {
  ui.topoPanel.classList.toggle("maximized");
  graph.key = null;               // re-centre the layout in the new size
  drawTopology();
});

// ---- messages ----------------------------------------------------------------------------------------------
function resetView() {
  app.summaries = []; app.frame = null; app.tradesTotal = 0; app.episode = null;
  drawAll();
}
function drawAll() { drawStats(); drawPrices(); drawResources(); drawTopology(); setControls(); }
const handlers = {
  options(m) {
    app.options = m;
    fill(ui.scenario, m.scenarios, ui.scenario.value || m.scenario);
    fill(ui.population, m.populations, ui.population.value || m.population);
    const rec = ui.recording.value;
    fill(ui.recording, m.recordings, rec, "(none)");
    setControls();
  },
  status(m) {
    app.status = m.status; app.source = m.source;
    ui.status.dataset.status = m.status;
    const what = m.source === "replay" ? `replay ${m.recording}` :
      m.scenario ? `${m.scenario} · ${m.population} · ${m.steps} steps` : "";
    ui.status.textContent = `${m.status}${what ? " — " + what : ""}`;
    if (m.interval) ui.speed.value = String(m.interval);
    setControls();
  },
  history(m) { app.summaries = m.summaries.slice(); drawPrices(); },
  reset() { resetView(); },
  frame(m) {
    const f = m.frame;
    if (app.episode !== null && f.episode !== app.episode) app.summaries = [];
    const n = app.summaries.length;
    if (n && app.summaries[n - 1].t === f.summary.t) app.summaries[n - 1] = f.summary;
    else app.summaries.push(f.summary);
    app.episode = f.episode; app.frame = f; app.tradesTotal = m.trades_total;
    drawAll();
  },
  shock(m) {
    flashPrice();
    toast(`${m.kind} applied at step ${m.t} for ${m.duration} steps`);
  },
  error(m) { toast(m.message, true); console.warn("dashboard:", m.message); },
};
function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  app.ws = ws;
  ws.onmessage = (ev) => {
    let m;
    try { m = JSON.parse(ev.data); } catch (e) { return; }
    const h = handlers[m.type];
    if (h) h(m);
  };
  ws.onopen = () => { ui.status.dataset.status = "connected"; ui.status.textContent = "connected"; };
  ws.onclose = () => {
    ui.status.dataset.status = "disconnected"; ui.status.textContent = "disconnected — retrying";
    setTimeout(connect, 1000);
  };
}
window.addEventListener("resize", () => { drawPrices(); drawResources(); });
window.channelmarketDashboard = app;     // for tests and the curious
drawAll();
connect();
