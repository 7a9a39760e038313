// The page: pick a model (with a task filter), give the input its task takes and its options, see the results.
// Everything it shows comes from the server's own description: GET /v1/tasks, /v1/models, /v1/models/{id}.

import { api, ApiError } from "./api.js";
import { canRecord, startRecording, toWav } from "./audio.js";
import { el, renderResults } from "./views.js";

const AUDIO_SUFFIXES = [".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"];  // what the hub reads (hub/inputs.py)
const $ = (id) => document.getElementById(id);
const state = { tasks: [], models: [], model: null, files: [], stopRecording: null, recordings: 0 };

// -- the API key dialog --------------------------------------------------------------------------
let asking = null;  // calls refused at the same time share one prompt

function askKey(message) {
  if (!asking) asking = promptForKey(message).finally(() => { asking = null; });
  return asking;
}

function promptForKey(message) {
  const dialog = $("key-dialog");
  $("key-message").textContent = message + " The key is kept in this browser tab only.";
  $("key-input").value = "";
  return new Promise((resolve) => {
    const done = (key) => {
      $("key-form").onsubmit = null;
      $("key-cancel").onclick = null;
      dialog.close();
      resolve(key);
    };
    $("key-form").onsubmit = (event) => { event.preventDefault(); done($("key-input").value.trim() || null); };
    $("key-cancel").onclick = () => done(null);
    dialog.showModal();
    $("key-input").focus();
  });
}

const call = (path, options = {}) => api(path, options, askKey);

// -- messages ------------------------------------------------------------------------------------
// An error replaces whatever result was on screen: it must not read as the answer to what failed.
function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  clearResults();
}

function clearResults() {
  $("results").replaceChildren(el("p", { class: "hint" }, "Results appear here."));
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function setStatus(id, text) {
  $(id).textContent = text;
}

function sentence(text) {
  text = String(text).trim();
  return /[.!?)]$/.test(text) ? text : text + ".";
}

// -- picking a model -----------------------------------------------------------------------------
// What /v1/models says of each model: loaded, or where its weights are. The page opens on the best one.
const AVAILABILITY = {
  loaded: { rank: 0, note: "loaded" },
  local: { rank: 1, note: "weights here" },
  download: { rank: 2, note: "downloads on first run" },
  unknown: { rank: 3, note: "" },
  missing: { rank: 4, note: "no weights here" },
};

function availability(model) {
  return AVAILABILITY[model.availability] || AVAILABILITY.unknown;
}

function modelLabel(model) {
  const note = availability(model).note;
  return `${model.id} — ${model.task}${note ? ` (${note})` : ""}`;
}

// The first of the models that is loaded, else whose weights are here, else the first that may load.
function bestModel(models) {
  return models.reduce((best, m) => (!best || availability(m).rank < availability(best).rank ? m : best), null);
}

async function loadCatalogue() {
  const [tasks, models] = await Promise.all([call("/v1/tasks"), call("/v1/models")]);
  state.tasks = tasks;
  state.models = models.data;
  const counts = {};
  state.models.forEach((m) => { counts[m.task] = (counts[m.task] || 0) + 1; });
  for (const task of tasks) {
    if (!counts[task.name]) continue;
    $("task-filter").append(el("option", { value: task.name }, `${task.name} (${counts[task.name]})`));
  }
  const ready = state.models.filter((m) => availability(m).rank <= 1).length;
  setStatus("status", `${state.models.length} model${state.models.length === 1 ? "" : "s"} available, ` +
    `${ready} of them loaded or with their weights here.`);
  fillModels();
}

function fillModels() {
  const task = $("task-filter").value;
  const select = $("model-select");
  const models = state.models.filter((m) => !task || m.task === task);
  select.replaceChildren(...models.map((m) =>
    el("option", { value: m.id, "data-availability": m.availability || "unknown" }, modelLabel(m))));
  select.disabled = models.length === 0;
  if (!models.length) return;
  select.value = bestModel(models).id;
  pickModel(select.value);
}

function taskRow(name) {
  return state.tasks.find((t) => t.name === name) || { name, inputs: "text", result: null };
}

async function pickModel(id) {
  clearError();
  clearResults();
  $("run-button").disabled = true;
  try {
    const info = await call(`/v1/models/${encodeURIComponent(id)}`);
    if ($("model-select").value !== id) return;  // another model was picked meanwhile
    state.model = info;
    describeModel(info);
    showInputs(info.inputs || taskRow(info.task).inputs);
    showOptions(info.options || []);
    $("run-button").disabled = false;
  } catch (err) {
    showError(err.message);
  }
}

function describeModel(info) {
  const spec = info.spec || {};
  const task = taskRow(info.task);
  const parts = [`${info.task} (${info.modality || task.modality || "?"}), served by ${info.owned_by}`];
  if (spec.description) parts.push(spec.description);
  if (task.description) parts.push("Task: " + task.description);
  if (info.availability === "missing") {
    parts.push("Its weights are not on this machine and the server cannot download them now, so running it fails " +
      "until they are fetched");
  } else if (info.availability === "download") {
    parts.push("Its weights are downloaded on its first run");
  }
  $("model-about").textContent = parts.map(sentence).join(" ");
}

// -- inputs ----------------------------------------------------------------------------------------
function showInputs(kind) {
  state.files = [];
  renderFiles();
  const media = kind !== "text";  // images, audio, or a kind of input a plugin's task reads from files
  const image = kind === "image" || kind === "image+text";
  $("text-block").hidden = media;
  $("file-block").hidden = !media;
  $("record-block").hidden = !(kind === "audio" && canRecord());
  $("file-input").accept = kind === "audio" ? "audio/*" : image ? "image/*" : "";
  $("file-label").textContent = kind === "audio" ? "Audio files" : image ? "Images" : `Files (${kind})`;
}

async function addFiles(fileList) {
  for (const file of fileList) {
    try {
      const lower = file.name.toLowerCase();
      const needsWav = state.model.inputs === "audio" && !AUDIO_SUFFIXES.some((s) => lower.endsWith(s));
      const blob = needsWav ? await toWav(file) : file;
      state.files.push({ name: needsWav ? file.name + ".wav" : file.name, uri: await dataUri(blob), type: blob.type });
    } catch (err) {
      showError(`${file.name} cannot be read here (${err.message}).`);
    }
  }
  renderFiles();
}

function dataUri(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

function renderFiles() {
  $("file-list").replaceChildren(...state.files.map((file, i) => el("li", {},
    file.type.startsWith("image/") ? el("img", { src: file.uri, alt: file.name, class: "thumb" })
      : file.type.startsWith("audio/") ? el("audio", { src: file.uri, controls: true, "aria-label": file.name })
        : null,
    el("span", {}, file.name),
    removeButton(file.name, i))));
}

function removeButton(name, index) {
  const button = el("button", { type: "button", class: "remove", "aria-label": `Remove ${name}` }, "×");
  button.onclick = () => { state.files.splice(index, 1); renderFiles(); };
  return button;
}

async function toggleRecording() {
  const button = $("record-button");
  try {
    if (!state.stopRecording) {
      state.stopRecording = await startRecording();
      button.textContent = "Stop recording";
      button.setAttribute("aria-pressed", "true");
      setStatus("record-status", "Recording…");
      return;
    }
    const wav = await state.stopRecording();
    state.stopRecording = null;
    state.recordings += 1;
    state.files.push({ name: `recording ${state.recordings}.wav`, uri: await dataUri(wav), type: "audio/wav" });
    renderFiles();
    setStatus("record-status", "");
  } catch (err) {
    state.stopRecording = null;
    showError(`The microphone cannot be used (${err.message}). Upload an audio file instead.`);
  }
  button.textContent = "Record from the microphone";
  button.setAttribute("aria-pressed", "false");
}

function collectInputs() {
  if (!$("text-block").hidden) {
    const lines = $("text-input").value.split("\n").map((s) => s.trim()).filter(Boolean);
    return { inputs: lines, names: lines };
  }
  return { inputs: state.files.map((f) => f.uri), names: state.files.map((f) => f.name) };
}

// -- options -------------------------------------------------------------------------------------
function showOptions(options) {
  const fields = options.map(optionField);
  $("option-fields").replaceChildren(...fields);
  $("options").hidden = fields.length === 0;
}

// A form field for one declared option: its type decides the control; its help is the description.
function optionField(option) {
  const id = `opt-${option.name}`;
  const help = [option.help, option.default !== null && option.default !== undefined ? `Default: ${JSON.stringify(option.default)}` : ""]
    .filter(Boolean).map(sentence).join(" ");
  let control;
  if (option.type === "boolean") {
    control = el("select", { id }, el("option", { value: "" }, "(default)"), el("option", { value: "true" }, "yes"),
      el("option", { value: "false" }, "no"));
  } else if (option.choices && option.choices.length) {
    control = el("select", { id }, el("option", { value: "" }, "(default)"), option.choices.map((c) => el("option", { value: c }, c)));
  } else if (option.type === "list of strings") {
    control = el("textarea", { id, rows: 3, placeholder: "one per line" });
  } else if (option.type === "integer" || option.type === "number") {
    const low = option.minimum === null || option.minimum === undefined ? null : option.minimum;
    control = el("input", { id, type: "number", step: option.type === "integer" ? 1 : "any",
      min: option.exclusive_minimum ? null : low, max: option.maximum, placeholder: option.default ?? "" });
  } else {
    control = el("input", { id, type: "text", placeholder: option.default ?? "" });
  }
  control.dataset.option = option.name;
  control.dataset.type = option.type;
  control.setAttribute("aria-describedby", `${id}-help`);
  return el("div", { class: option.type === "list of strings" ? "option wide" : "option" },
    el("label", { for: id }, option.name.replaceAll("_", " ")), control, el("small", { id: `${id}-help` }, help));
}

// The options the person set, typed as declared; what cannot be typed is sent as written for the server to name.
function collectOptions() {
  const out = {};
  for (const control of $("option-fields").querySelectorAll("[data-option]")) {
    const raw = control.value.trim();
    if (!raw) continue;
    const type = control.dataset.type;
    let value = raw;
    if (type === "list of strings") value = raw.split("\n").map((s) => s.trim()).filter(Boolean);
    else if (type === "boolean") value = raw === "true";
    else if (type === "integer" && /^[-+]?\d+$/.test(raw)) value = parseInt(raw, 10);
    else if (type === "number" && Number.isFinite(Number(raw))) value = Number(raw);
    out[control.dataset.option] = value;
  }
  return out;
}

// -- running -------------------------------------------------------------------------------------
async function run(event) {
  event.preventDefault();
  clearError();
  const model = state.model;
  const { inputs, names } = collectInputs();
  if (!inputs.length) {
    showError(model.inputs === "text" ? "Type at least one text (one per line)." : "Add at least one file first.");
    return;
  }
  const options = collectOptions();
  $("run-button").disabled = true;
  setStatus("run-status", "Running…");
  const started = performance.now();
  try {
    const answer = await call(`/v1/run/${encodeURIComponent(model.id)}`, { method: "POST", json: { inputs, options } });
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    setStatus("run-status", `Done in ${seconds} s.`);
    $("results").replaceChildren(renderResults(answer.results,
      { names, options, task: taskRow(answer.task), summaries: answer.summaries || null }));
  } catch (err) {
    setStatus("run-status", "");
    showError(err instanceof ApiError ? err.message : `Unexpected problem: ${err.message}`);
  } finally {
    $("run-button").disabled = false;
  }
}

function wireDropZone() {
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    addFiles(event.dataTransfer.files);
  });
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); $("file-input").click(); }
  });
}

function start() {
  $("task-filter").addEventListener("change", fillModels);
  $("model-select").addEventListener("change", (event) => pickModel(event.target.value));
  $("file-input").addEventListener("change", async (event) => { await addFiles(event.target.files); event.target.value = ""; });
  $("record-button").addEventListener("click", toggleRecording);
  $("run-form").addEventListener("submit", run);
  wireDropZone();
  loadCatalogue().catch((err) => {
    setStatus("status", "The models could not be listed.");
    showError(err.message);
  });
}

start();
