// Results as a person wants them: bars, heat maps, timestamps, highlighted entities; a task this page does not
// know (a plugin's) by its declared view ("text" or "table") of its results' own summaries; JSON for anything else.
// Each view takes (results, context) where context = {names, options, task, summaries} and returns a DOM element.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "style") node.style.cssText = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function cosine(a, b) {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na && nb ? dot / Math.sqrt(na * nb) : 0;
}

function fixed(x, digits = 3) {
  return typeof x === "number" ? x.toFixed(digits) : String(x);
}

function short(text, width = 40) {
  text = String(text);
  return text.length <= width ? text : text.slice(0, width - 1) + "…";
}

// One horizontal bar per (label, score); scores in 0..1 are shown as percentages.
export function bars(items, caption) {
  const list = el("ul", { class: "bars", "aria-label": caption });
  for (const { label, score, note } of items) {
    const share = Math.max(0, Math.min(1, Number(score) || 0));
    list.append(el("li", { class: "bar-row" },
      el("span", { class: "bar-label" }, label),
      el("span", { class: "bar-track", role: "img", "aria-label": `${label}: ${fixed(score)}` },
        el("span", { class: "bar-fill", style: `width: ${(share * 100).toFixed(1)}%` })),
      el("span", { class: "bar-score" }, fixed(score)),
      note ? el("span", { class: "bar-note" }, note) : null));
  }
  return list;
}

// A matrix as a table whose cells are coloured by value (low: pale, high: deep blue), values written in.
export function heatMap(rowNames, colNames, matrix, caption, range = null) {
  const values = matrix.flat();
  const low = range ? range[0] : Math.min(...values);
  const high = range ? range[1] : Math.max(...values);
  const table = el("table", { class: "heat-map" }, el("caption", {}, caption));
  const wrap = el("div", { class: "heat-wrap" }, table);  // a matrix wider than the screen scrolls in here
  table.append(el("thead", {}, el("tr", {}, el("th", { scope: "col" }, ""),
    colNames.map((name) => el("th", { scope: "col", title: name }, short(name, 18))))));
  const body = el("tbody");
  matrix.forEach((row, i) => {
    body.append(el("tr", {}, el("th", { scope: "row", title: rowNames[i] }, short(rowNames[i], 28)),
      row.map((value, j) => {
        const t = high > low ? (value - low) / (high - low) : 1;
        const style = `background: hsl(215, 80%, ${(95 - 55 * t).toFixed(1)}%); color: ${t > 0.55 ? "#fff" : "#111"}`;
        return el("td", { style, title: `${rowNames[i]} / ${colNames[j]}: ${fixed(value, 4)}` }, fixed(value));
      })));
  });
  table.append(body);
  return wrap;
}

function perInput(results, context, render) {
  return el("div", { class: "per-input" }, results.map((result, i) =>
    el("figure", { class: "result" }, el("figcaption", {}, context.names[i] || `input ${i + 1}`), render(result, i))));
}

function embeddingView(results, context) {
  const dim = results[0] ? results[0].embedding.length : 0;
  const box = el("div", { class: "embedding" },
    el("p", { class: "summary" }, `${results.length} embedding${results.length === 1 ? "" : "s"} of dimension ${dim}.`));
  if (results.length < 2) {
    box.append(el("p", { class: "hint" }, "Give two or more texts to see how similar they are."),
      el("code", {}, "[" + results[0].embedding.slice(0, 6).map((v) => fixed(v, 4)).join(", ") + ", …]"));
    return box;
  }
  const vectors = results.map((r) => r.embedding);
  const matrix = vectors.map((a) => vectors.map((b) => cosine(a, b)));
  box.append(heatMap(context.names, context.names, matrix, "Cosine similarity between the inputs", [-1, 1]));
  box.append(mostSimilar(context.names, matrix));
  return box;
}

function mostSimilar(names, matrix) {
  const pairs = [];
  for (let i = 0; i < matrix.length; i++) {
    for (let j = i + 1; j < matrix.length; j++) pairs.push({ label: `${short(names[i], 30)} ~ ${short(names[j], 30)}`, score: matrix[i][j] });
  }
  pairs.sort((a, b) => b.score - a.score);
  return el("div", { class: "pairs" }, el("h3", {}, "Most similar pairs"), bars(pairs.slice(0, 10), "Most similar pairs"));
}

function classificationView(results, context) {
  return perInput(results, context, (result) => el("div", {},
    bars(result.labels.map((l) => ({ label: l.label, score: l.score }))
      , "Labels and scores"),
    result.warning ? el("p", { class: "warning" }, result.warning) : null));
}

function fillMaskView(results, context) {
  return perInput(results, context, (result) => bars(result.candidates.map((c) =>
    ({ label: c.token_str, score: c.score, note: c.sequence })), "Candidates for the mask"));
}

function entitiesView(results, context) {
  return perInput(results, context, (result, i) => {
    const text = context.names[i] || "";
    const marked = el("p", { class: "entities" });
    let at = 0;
    const spans = result.entities.filter((e) => Number.isInteger(e.start) && Number.isInteger(e.end))
      .sort((a, b) => a.start - b.start);
    for (const entity of spans) {
      if (entity.start < at) continue;
      marked.append(text.slice(at, entity.start),
        el("mark", { class: "entity", "data-label": entity.label, title: `${entity.label} (${fixed(entity.score)})` },
          text.slice(entity.start, entity.end), el("span", { class: "entity-label" }, entity.label)));
      at = entity.end;
    }
    marked.append(text.slice(at));
    const list = el("ul", { class: "entity-list" }, result.entities.map((e) =>
      el("li", {}, el("strong", {}, e.word), ` ${e.label} (${fixed(e.score)})`)));
    return el("div", {}, spans.length ? marked : null, result.entities.length ? list : el("p", {}, "No entities found."));
  });
}

function generationView(results, context) {
  return perInput(results, context, (result) =>
    el("p", { class: "generation" }, el("span", { class: "prompt" }, result.prompt || ""), el("strong", {}, result.text)));
}

function clock(seconds) {
  const m = Math.floor(seconds / 60);
  return `${m}:${(seconds - 60 * m).toFixed(2).padStart(5, "0")}`;
}

function transcriptionView(results, context) {
  return perInput(results, context, (result) => {
    const box = el("div", {}, el("p", { class: "transcript" }, result.text || "(nothing heard)"));
    if (result.chunks && result.chunks.length) {
      box.append(el("table", { class: "chunks" }, el("caption", {}, "Timestamps"),
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Start"), el("th", { scope: "col" }, "End"),
          el("th", { scope: "col" }, "Text"))),
        el("tbody", {}, result.chunks.map((c) =>
          el("tr", {}, el("td", {}, clock(c.start)), el("td", {}, clock(c.end)), el("td", {}, c.text))))));
    }
    return box;
  });
}

// Synthesised speech: a player per input (the WAV travels as base64), with its duration and rate.
function speechView(results, context) {
  return perInput(results, context, (result) => el("div", { class: "speech" },
    el("audio", { src: `data:audio/wav;base64,${result.audio}`, controls: true, "aria-label": `speech: ${result.text}` }),
    el("p", { class: "summary" }, `${fixed(result.duration_s, 2)} s at ${result.sampling_rate} Hz`)));
}

function similarityView(results, context) {
  const texts = (context.options.texts || []).map(String);
  const matrix = results.map((r) => r.matrix[0] || []);
  const cols = texts.length === (matrix[0] || []).length ? texts : (matrix[0] || []).map((_, j) => `text ${j + 1}`);
  return el("div", { class: "similarity" },
    heatMap(context.names, cols, matrix, "Image–text similarity"),
    perInput(results, context, (result) => bars((result.top_k[0] || []).map((l) => ({ label: l.label, score: l.score })),
      "Best matching texts")));
}

// A plugin task's declared views, as ``hub run`` prints them (hub/views.py): "text", a block per input with its
// summary (any lines); "table", a row per input with its summary.
function summaryTextView(results, context) {
  return perInput(results, context, (result, i) => el("pre", { class: "summary-text" }, context.summaries[i]));
}

function summaryTableView(results, context) {
  return el("table", { class: "summary-table" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Input"), el("th", { scope: "col" }, "Result"))),
    el("tbody", {}, results.map((result, i) => el("tr", {},
      el("th", { scope: "row" }, context.names[i] || `input ${i + 1}`), el("td", {}, context.summaries[i])))));
}

const DECLARED_VIEWS = { text: summaryTextView, table: summaryTableView };

function declaredView(results, context) {
  const summaries = context.summaries;
  if (!context.task || !Array.isArray(summaries) || summaries.length !== results.length) return null;
  return DECLARED_VIEWS[context.task.view] || summaryTableView;
}

export function jsonView(results) {
  return el("pre", { class: "json", tabindex: "0", "aria-label": "Results as JSON" }, JSON.stringify(results, null, 2));
}

const VIEWS = {
  Embedding: embeddingView,
  Classification: classificationView,
  FillMask: fillMaskView,
  TokenClassification: entitiesView,
  Generation: generationView,
  Transcription: transcriptionView,
  Similarity: similarityView,
  "hub.tasks.results_audio:Speech": speechView,
};

// The view for a task's results (by its result class, else the task's declared view of the summaries the server
// sent), with the JSON behind it; JSON alone when there is neither.
export function renderResults(results, context) {
  const view = VIEWS[context.task && context.task.result] || declaredView(results, context);
  const box = el("div", { class: "result-view", "data-result": view ? context.task.result : "json" });
  if (view && !VIEWS[context.task.result]) box.dataset.view = context.task.view || "table";
  if (!view) {
    box.append(el("p", { class: "hint" }, "This page has no special view for this task; here is its JSON."), jsonView(results));
    return box;
  }
  try {
    box.append(view(results, context));
  } catch (err) {
    box.append(el("p", { class: "warning" }, `These results could not be drawn (${err.message}); here is their JSON.`));
  }
  box.append(el("details", { class: "raw" }, el("summary", {}, "JSON"), jsonView(results)));
  return box;
}
