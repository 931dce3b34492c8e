// The ALAE studio page: talks to studio/api/ of the server that served it (see serving/README.md).
// Plain JavaScript, no dependencies. The page keeps the latent codes of its two images (w, or w+
// from a projection file); every change asks the server for the image it implies and shows it, or
// shows the server's error.
"use strict";

(() => {
  // Relative to the page (served at / and /studio), so that the page also works behind a proxy
  // that serves the server under a path prefix (JupyterHub's /user/NAME/proxy/8501/, ...).
  const API = "studio/api/";
  const $ = (id) => document.getElementById(id);

  const state = {
    info: null,
    // {w, label, ref, sampled}: `ref` names a projection on the server, whose refined noise images
    // the server then uses (null for other images); `sampled`: a seeded sample (ψ draws it again)
    first: null,   // the image being edited
    second: null,  // the image to mix with and interpolate to
    tickets: {first: 0, second: 0},  // the newest request for each image wins
    shown: {first: 0, second: 0},    // the ticket of the image each slot shows
    // The projection file each image came from, to pick another of its images: {file} (an upload,
    // sent again) or {server} (its position in info.projections), with a label.
    sources: {first: null, second: null},
  };
  // For tests and benchmarks: edit timings (ms, request to decoded image) and the tasks in flight.
  const studio = {timings: [], pending: 0, rendered: {subject: null, edits: null}};
  window.studio = studio;

  // "Working…" and a progress cursor while any request is under way, once it has been for a moment
  // (an edit answers in tens of ms: no flicker for those).
  const BUSY_AFTER_MS = 300;
  let busyTimer = null;

  function working(delta) {
    studio.pending += delta;
    const busy = studio.pending > 0;
    if (busy && busyTimer === null && $("busy").hidden) {
      busyTimer = setTimeout(() => {
        busyTimer = null;
        if (studio.pending > 0) setBusy(true);
      }, BUSY_AFTER_MS);
    } else if (!busy) {
      clearTimeout(busyTimer);
      busyTimer = null;
      setBusy(false);
    }
  }

  function setBusy(busy) {
    $("busy").hidden = !busy;
    document.body.classList.toggle("busy", busy);
    drawOutdated();
  }

  // --- talking to the server -------------------------------------------------------------------

  // How long a request may go unanswered (a stalled tunnel or proxy would hang the page's part for
  // good, and every later slider move behind it); uploads may take minutes over a slow link.
  const TIMEOUT_SECONDS = {json: 60, upload: 600};
  const UNREACHABLE = "cannot reach the server";

  // `name`: how an error names the request (default: its endpoint).
  async function call(endpoint, body, {raw = false, name = endpoint.split("?")[0]} = {}) {
    const options = body === undefined ? {} : raw
      ? {method: "POST", body}
      : {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)};
    const seconds = raw ? TIMEOUT_SECONDS.upload : TIMEOUT_SECONDS.json;
    options.signal = AbortSignal.timeout(seconds * 1000);
    // The version this page was loaded with, and which load of it: once the server serves another,
    // it answers 409 (reload the page) rather than mixing this page's codes and sliders with the
    // new networks.
    if (state.info) {
      options.headers = {...options.headers, "X-Model-Version": String(state.info.version),
                         "X-Model-Load": String(state.info.load)};
    }
    let response;
    let data = null;
    try {
      response = await fetch(API + endpoint, options);
      data = await response.json().catch(() => null);
    } catch (error) {
      if (error.name === "TimeoutError") {
        throw new Error(`${name}: no answer from the server within ${seconds} s (a stalled connection?); try again`);
      }
      throw new Error(`${name}: ${UNREACHABLE} (${error.message})`);
    }
    clearUnreachable();  // it answered: lines saying it could not be reached are out of date
    if (!response.ok) {
      const reason = data && typeof data.error === "string" ? data.error : response.statusText;
      throw new Error(`${name}: ${reason} (HTTP ${response.status})`);
    }
    if (data === null) throw new Error(`${name}: the server's answer is not JSON`);
    return data;
  }

  // The error box lists each part of the page whose latest attempt failed ("image", "edit",
  // "second" image, "pair"), in page order; that part's next success, or a new image, takes its
  // line away. Dismiss hides the box until the next failure; the failures stand.
  const errors = new Map();
  let dismissed = false;
  const PARTS = ["image", "edit", "second", "pair"];
  const PART_NAMES = {second: "second image"};  // the others' lines start with their endpoint's name

  function drawErrors() {
    const box = $("error");
    $("error-text").textContent = PARTS.filter((part) => errors.has(part))
      .map((part) => (PART_NAMES[part] ? `${PART_NAMES[part]}, ` : "") + errors.get(part)).join("\n");
    box.hidden = errors.size === 0 || dismissed;
    // The box sticks to the top of the window: a control focused by Tab is scrolled into view below it.
    document.documentElement.style.scrollPaddingTop = box.hidden ? "" : `${box.offsetHeight + 16}px`;
    drawOutdated();
  }

  function showError(message, source) {
    errors.set(source, message);
    dismissed = false;
    drawErrors();
  }

  function dismissErrors() {
    dismissed = true;
    drawErrors();
  }

  // What a part shows is out of date while its latest attempt failed, or while its request has
  // taken long enough for "Working…" to show: its images are greyed out as stale, and its download
  // link and timing are hidden (they would save or time an image the controls no longer ask for).
  const OUTPUTS = {edit: {images: ["edited-image"], hidden: ["download-link", "timing"]},
                   pair: {images: ["mix-image", "strip"], hidden: ["download-mix-link"]}};
  const inFlight = new Set();  // the parts with a request under way

  function drawOutdated() {
    const slow = !$("busy").hidden;
    for (const [part, {images, hidden}] of Object.entries(OUTPUTS)) {
      const outdated = errors.has(part) || (slow && inFlight.has(part));
      for (const id of images) $(id).classList.toggle("stale", outdated);
      for (const id of hidden) $(id).classList.toggle("outdated", outdated);
    }
  }

  function clearUnreachable() {
    for (const [part, message] of errors) {
      if (message.includes(UNREACHABLE)) errors.delete(part);
    }
    drawErrors();
  }

  function clearError(source) {
    if (source === undefined) errors.clear();
    else errors.delete(source);
    drawErrors();
  }

  // Run an action; any failure is shown in the error box (the page stays as it was).
  async function guarded(action, source) {
    working(1);
    try {
      await action();
      clearError(source);
    } catch (error) {
      showError(error.message, source);
    } finally {
      working(-1);
    }
  }

  // An action that runs once at a time: calls while it runs collapse into one more run, so a
  // dragged slider asks for its latest value, not for every value it passed.
  function coalesced(action, source) {
    let running = false;
    let again = false;
    return async () => {
      if (running) {
        again = true;
        return;
      }
      running = true;
      inFlight.add(source);
      working(1);
      try {
        do {
          again = false;
          await guarded(action, source);
        } while (again);
      } finally {
        running = false;
        inFlight.delete(source);
        working(-1);
        drawOutdated();
      }
    };
  }

  async function show(img, url) {
    img.src = url;
    try {
      await img.decode();
    } catch (error) {
      throw new Error("the browser could not decode the image the server sent");
    }
  }

  // --- the images ------------------------------------------------------------------------------

  // `source`: the projection file the image comes from (its other images can be picked), or null;
  // `sampled`: the image is a seeded sample.
  async function setImage(slot, request, label, source = null, sampled = false) {
    const ticket = ++state.tickets[slot];
    const data = await request();
    if (ticket !== state.tickets[slot]) return;  // a newer choice came first
    state.shown[slot] = ticket;
    clearError();  // a new image: every part of the page is drawn again
    const note = data.note ? `${label}: ${data.note}` : label;
    state[slot] = {w: data.w, label: note, title: label, ref: data.ref || null, sampled};
    keepControls();  // which image is open, for the note after a reload
    const projected = data.count !== undefined;
    state.sources[slot] = projected ? source : null;
    const suffix = slot === "first" ? "" : "-b";
    if (!(projected && source && source.server !== undefined)) $(`server-projection${suffix}`).value = "";
    $(`pick-row${suffix}`).hidden = !projected || data.count < 2;
    if (projected) {
      $(`pick${suffix}`).max = String(data.count);
      $(`pick-count${suffix}`).textContent = String(data.count);
    }
    if (slot === "first") {
      await show($("input-image"), data.input);
      await show($("reconstruction-image"), data.reconstruction);
      const caption = Array.isArray(data.w[0]) ? "Projection G(w+)" : "Projection G(w)";
      $("reconstruction-caption").textContent = projected ? caption : "Reconstruction G(E(x))";
      $("note").textContent = note;
      renderEdit();
    } else {
      await show($("b-image"), data.input);
      $("note-b").textContent = note;
    }
    renderPair();
  }

  function sample(slot, seedInput) {
    if (seedInput.value.trim() === "") {  // also what a number box holds for text that is no number
      return guarded(async () => { throw new Error("sample: enter a seed, a whole number from 0"); }, partOf(slot));
    }
    const seed = Number(seedInput.value);
    const truncates = state.info.truncation_psi !== null;
    const psi = Number($("psi").value);
    const label = `Sample of seed ${seed}` + (truncates ? `, truncation psi ${psi.toFixed(2)}` : "");
    const body = truncates ? {seed, truncation_psi: psi} : {seed};
    return guarded(() => setImage(slot, () => call("sample", body), label, null, true), partOf(slot));
  }

  // Image `index` (from 0) of a source: an uploaded file (an image, or a projection.npz of python -m
  // alae_tf.project) or a projection file the server was started with.
  function openImage(slot, source, index = 0) {
    const suffix = slot === "first" ? "" : "-b";
    $(`pick${suffix}`).value = String(index + 1);
    const request = source.file
      ? () => uploadFile(source.file, index)
      : () => call("projection", {file: source.server, index});
    return guarded(() => setImage(slot, request, source.label, source), partOf(slot));
  }

  // A file above the server's limit is refused here: sent, the server's 413 comes before the body
  // is read, and a proxy that is still sending it passes on a reset connection instead.
  function uploadFile(file, index) {
    const name = `upload of ${file.name}`;
    const limit = state.info.max_upload_bytes;
    if (file.size > limit) {
      const mb = (bytes) => `${(bytes / 2 ** 20).toPrecision(3)} MB`;
      throw new Error(`${name}: the file is ${mb(file.size)}, above the server's limit of ${mb(limit)} ` +
                      "(python -m serving.http --max-body-mb sets it)");
    }
    return call(`upload?index=${index}`, file, {raw: true, name});
  }

  function partOf(slot) {
    return slot === "first" ? "image" : "second";
  }

  // The chosen file, and the input emptied: an input still holding a file fires no change when a
  // person picks that same file again (to go back to it after a sample or a drawing).
  function takeFile(input) {
    const file = input.files[0];
    input.value = "";
    return file;
  }

  function upload(slot, file) {
    return file ? openImage(slot, {file, label: `Upload ${file.name}`}) : Promise.resolve();
  }

  function openOnServer(slot, select) {
    if (select.value === "") return Promise.resolve();
    const server = Number(select.value);
    return openImage(slot, {server, label: `Projection ${state.info.projections[server].name}`});
  }

  function pick(slot, input) {
    const source = state.sources[slot];
    const number = Number(input.value);
    if (!source || input.value.trim() === "" || !Number.isInteger(number)) return Promise.resolve();
    // Numbered from 1 as the page shows them; a number beyond them opens the nearest image.
    return openImage(slot, source, Math.min(Math.max(number, 1), Number(input.max)) - 1);
  }

  // --- editing ---------------------------------------------------------------------------------

  // A slider has integer positions -SLIDER_STEPS..SLIDER_STEPS (0 is exactly no edit); its strength
  // is position / SLIDER_STEPS of the direction's max_strength, rounded to 4 decimals.
  const SLIDER_STEPS = 20;

  function strengthOf(slider) {
    return Math.round(Number(slider.value) * Number(slider.dataset.maxStrength) / SLIDER_STEPS * 1e4) / 1e4;
  }

  function currentEdits() {
    return [...document.querySelectorAll("#sliders input[type=range]")]
      .map((slider) => ({direction: slider.dataset.direction, strength: strengthOf(slider)}))
      .filter((edit) => edit.strength !== 0);
  }

  const renderEdit = coalesced(async () => {
    if (!state.first || !state.info.can_edit) return;
    const subject = state.first;
    const edits = currentEdits();
    const started = performance.now();
    const body = {w: subject.w, edits, layers: $("layers").value || "all"};
    if (subject.ref) body.noise_of = subject.ref;
    const data = await call("edit", body);
    await show($("edited-image"), data.image);
    const elapsed = performance.now() - started;
    studio.timings.push(elapsed);
    studio.rendered = {subject: subject.label, edits: JSON.stringify(edits)};
    $("download").href = data.image;
    $("download").parentElement.hidden = false;  // shown once there is an image to save
    $("timing").textContent = `edit shown ${elapsed.toFixed(0)} ms after the request`;
  }, "edit");

  // The slider's strength in its data, its output and what a screen reader reads (not the position).
  function showStrength(slider) {
    slider.dataset.strength = String(strengthOf(slider));
    slider.nextElementSibling.textContent = strengthOf(slider).toFixed(2);
    slider.setAttribute("aria-valuetext", slider.nextElementSibling.textContent);
  }

  function addSliders(directions) {
    const box = $("sliders");
    if (directions.length === 0) {
      box.textContent = "This export carries no directions: fit some with python -m alae_tf.edit directions (its " +
        "--official takes the official FFHQ model's), then export again.";
      box.className = "note empty";
      return;
    }
    for (const direction of directions) {
      const row = document.createElement("div");
      row.className = "slider";
      const name = document.createElement("label");
      name.textContent = direction.name;
      const slider = document.createElement("input");
      slider.type = "range";
      slider.min = String(-SLIDER_STEPS);
      slider.max = String(SLIDER_STEPS);
      slider.step = "1";
      slider.value = "0";
      slider.dataset.direction = direction.name;
      slider.dataset.maxStrength = String(direction.max_strength);
      slider.dataset.strength = "0";
      slider.id = `direction-${direction.name}`;
      slider.setAttribute("aria-label", `strength along ${direction.name}`);
      slider.setAttribute("aria-valuetext", "0.00");  // a screen reader reads the strength, not the position
      name.htmlFor = slider.id;
      const value = document.createElement("output");
      value.textContent = "0.00";
      slider.addEventListener("input", () => {
        showStrength(slider);
        renderEdit();
      });
      row.append(name, slider, value);
      box.append(row);
    }
  }

  // --- mixing and interpolation ------------------------------------------------------------------

  const renderPair = coalesced(async () => {
    if (!state.first || !state.second) return;
    const first = state.first.w;
    const second = state.second.w;
    if (!$("mix-figure").hidden) {
      const mix = {destination_w: first, source_w: second, layers: $("mix-layers").value};
      if (state.first.ref) mix.destination_noise_of = state.first.ref;
      const data = await call("mix", mix);
      await show($("mix-image"), data.image);
      $("download-mix").href = data.image;
      $("download-mix").parentElement.hidden = false;
    }
    const body = {w_a: first, w_b: second};  // an empty steps field: the server's default
    if (state.first.ref) body.noise_of_a = state.first.ref;
    if (state.second.ref) body.noise_of_b = state.second.ref;
    if ($("steps").value.trim() !== "") body.steps = Number($("steps").value);
    const data = await call("interpolate", body);
    const strip = $("strip");
    const size = stripSize(data.images.length);
    const images = await Promise.all(data.images.map(async (url, index) => {
      const img = document.createElement("img");
      img.alt = `interpolation step ${index + 1} of ${data.images.length}`;
      Object.assign(img.style, size);
      await show(img, url);
      return img;
    }));
    strip.replaceChildren(...images);
  }, "pair");

  // --- drawing ---------------------------------------------------------------------------------

  function setUpDrawing() {
    const canvas = $("canvas");
    const context = canvas.getContext("2d");
    let drawn = false;  // an empty canvas would be encoded as a black image, saying nothing
    const clear = () => {
      context.fillStyle = "#000";
      context.fillRect(0, 0, canvas.width, canvas.height);
      drawn = false;
    };
    clear();
    let last = null;
    const point = (event) => {
      const box = canvas.getBoundingClientRect();
      return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
    };
    canvas.addEventListener("pointerdown", (event) => {
      canvas.setPointerCapture(event.pointerId);
      last = point(event);
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!last) return;
      const next = point(event);
      context.strokeStyle = "#fff";
      context.lineWidth = canvas.width / 12;
      context.lineCap = context.lineJoin = "round";
      context.beginPath();
      context.moveTo(...last);
      context.lineTo(...next);
      context.stroke();
      last = next;
      drawn = true;
    });
    const stop = () => { last = null; };
    canvas.addEventListener("pointerup", stop);
    canvas.addEventListener("pointercancel", stop);
    $("clear-drawing").addEventListener("click", clear);
    $("use-drawing").addEventListener("click", () => guarded(async () => {
      if (!drawn) throw new Error("the canvas is empty: draw a digit on it first (white on black)");
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
      if (!blob) throw new Error("the browser could not turn the drawing into a PNG");
      await setImage("first", () => call("upload", blob, {raw: true}), "Drawing");
    }, "image"));
    $("drawing").hidden = false;
  }

  // --- the page --------------------------------------------------------------------------------

  function imageSize() {
    const width = state.info.image_shape[1];
    return width * Math.max(1, Math.floor(192 / width));
  }

  // A thumbnail's width: the model's width times a whole factor up to 72 px, and at most an eighth
  // of the strip (rows of up to 8), in CSS so that it follows the strip's width as it changes (with
  // a scrollbar that came after it was drawn, or a resized window). Computed once, 8 of 128 px
  // wrapped one onto a second row, and so did 8 of 47 px once the page's scrollbar appeared.
  const STRIP_GAP = 4;  // px, as #strip's gap in studio.css

  function stripSize(count) {
    const width = state.info.image_shape[1];
    const perRow = Math.min(count, 8);
    return {width: `${width * Math.max(1, Math.floor(72 / width))}px`,
            maxWidth: `calc((100% - ${STRIP_GAP * (perRow - 1)}px) / ${perRow})`};
  }

  function fillSelect(select, names, chosen) {
    for (const name of names) {
      const option = document.createElement("option");
      option.value = option.textContent = name;
      select.append(option);
    }
    select.value = names.includes(chosen) ? chosen : names[0];
  }

  // The model's info, asked for again until the server answers (the page can do nothing without it).
  async function loadInfo() {
    for (let wait = 2; ; wait = Math.min(2 * wait, 30)) {
      try {
        return await call("info");
      } catch (error) {
        showError(`${error.message}; asking again in ${wait} s`, "image");
        await new Promise((resolve) => setTimeout(resolve, wait * 1000));
      }
    }
  }

  // The controls' values outlive a reload (the page asks for one once the server serves a new
  // version), kept per model in this tab's sessionStorage; an uploaded, drawn or projected image
  // does not: the page samples the kept seeds, and says which image it could not keep.
  const KEPT = ["seed", "psi", "layers", "seed-b", "steps", "mix-layers"];

  function storageKey() {
    return `alae-studio ${state.info.model_name}`;
  }

  function keepControls() {
    const values = Object.fromEntries(KEPT.map((id) => [id, $(id).value]));
    const sliders = Object.fromEntries([...document.querySelectorAll("#sliders input[type=range]")]
      .map((slider) => [slider.dataset.direction, slider.value]));
    const opened = Object.fromEntries(["first", "second"].map((slot) => [slot, state[slot] && !state[slot].sampled
      ? state[slot].title : null]));
    try {
      sessionStorage.setItem(storageKey(), JSON.stringify({values, sliders, opened}));
    } catch (error) {
      // storage off or full: the controls start from their defaults after a reload
    }
  }

  // Returns the titles of the images that were open and are not kept ({first, second}).
  function restoreControls() {
    let kept = null;
    try {
      kept = JSON.parse(sessionStorage.getItem(storageKey()));
    } catch (error) {
      return {};
    }
    if (!kept || typeof kept !== "object") return {};
    for (const id of KEPT) {
      const value = kept.values && kept.values[id];
      const control = $(id);
      if (typeof value !== "string") continue;
      if (control.tagName === "SELECT" && ![...control.options].some((option) => option.value === value)) continue;
      control.value = value;  // a range clamps a value outside it, a number box shows what was typed
    }
    $("psi-value").textContent = Number($("psi").value).toFixed(2);
    for (const slider of document.querySelectorAll("#sliders input[type=range]")) {
      const position = kept.sliders && kept.sliders[slider.dataset.direction];
      if (typeof position !== "string") continue;
      slider.value = position;
      showStrength(slider);
    }
    return kept.opened && typeof kept.opened === "object" ? kept.opened : {};
  }

  async function start() {
    const info = await loadInfo();
    clearError("image");
    state.info = info;
    const [height, width, channels] = info.image_shape;
    $("model-line").textContent = `${info.model_name} version ${info.version} (${info.backbone}): ` +
      `${width}x${height}x${channels} images, latent ${info.latent_dim}, ${info.num_styles} style input(s), ` +
      `${info.directions.length} direction(s). Reconstructions use the encoder alone` +
      (info.opens_projections ? "; upload a projection.npz (python -m alae_tf.project) for refined codes" +
        (info.projections.length ? ", or choose one on the server." : ".") : ".") +
      (info.aligns_uploads ? ` ${info.aligns_uploads}` : "");
    document.title = `ALAE studio: ${info.model_name}`;
    for (const id of ["input-image", "reconstruction-image", "edited-image", "b-image", "mix-image"]) {
      $(id).style.width = `${imageSize()}px`;
      $(id).style.height = `${imageSize() * height / width}px`;
    }
    if (info.truncation_psi === null) {  // a model with nothing to truncate (a baseline): no slider
      $("psi").closest("label").hidden = true;
    } else {
      $("psi").min = String(info.truncation_psi.min);
      $("psi").max = String(info.truncation_psi.max);
      $("psi").value = String(info.truncation_psi.default);
      $("psi-value").textContent = Number($("psi").value).toFixed(2);
    }
    $("steps").min = String(info.interpolation_steps.min);
    $("steps").max = String(info.interpolation_steps.max);
    $("steps").value = String(info.interpolation_steps.default);
    const ranges = Object.keys(info.layer_ranges);
    if (info.num_styles > 1 && info.can_edit) {  // one style input: every range is "all"
      fillSelect($("layers"), ranges, "all");
      $("layers-row").hidden = info.directions.length === 0;
      // (all of the second's styles would be the second image's own reconstruction)
      fillSelect($("mix-layers"), ranges.filter((name) => name !== "all"), "coarse");
      $("mix-figure").hidden = false;
      $("pair-heading").textContent = "3. Mix and interpolate with a second image";
    } else {
      fillSelect($("layers"), ["all"], "all");
    }
    // Without directions the edited image would be the reconstruction again.
    if (!info.can_edit || info.directions.length === 0) $("edited-image").closest("figure").hidden = true;
    addSliders(info.directions);
    $("reset").hidden = info.directions.length === 0;
    if (info.can_draw) setUpDrawing();
    for (const suffix of ["", "-b"]) {
      if (info.projections.length === 0) continue;
      const select = $(`server-projection${suffix}`);
      select.append(new Option("choose a file", ""));
      info.projections.forEach((file, position) => select.append(new Option(`${file.name} (${file.count})`, String(position))));
      $(`server-projection-row${suffix}`).hidden = false;
    }
    const lost = restoreControls();
    document.querySelector("main").hidden = false;  // hidden until it can be used

    $("psi").addEventListener("input", () => { $("psi-value").textContent = Number($("psi").value).toFixed(2); });
    // ψ draws the samples again; an uploaded, drawn or projected image stays, and so does one being
    // chosen (an upload under way: its answer would be dropped for the newer sample)
    $("psi").addEventListener("change", () => {
      for (const [slot, seed] of [["first", "seed"], ["second", "seed-b"]]) {
        const chosen = state[slot] && state.shown[slot] === state.tickets[slot];
        if (chosen && state[slot].sampled) sample(slot, $(seed));
      }
    });
    document.querySelector("main").addEventListener("change", keepControls);
    $("sample").addEventListener("click", () => sample("first", $("seed")));
    $("random-sample").addEventListener("click", () => {
      $("seed").value = String(Math.floor(Math.random() * 100000));
      keepControls();
      sample("first", $("seed"));
    });
    $("upload").addEventListener("change", (event) => upload("first", takeFile(event.target)));
    $("pick").addEventListener("change", () => pick("first", $("pick")));
    $("server-projection").addEventListener("change", () => openOnServer("first", $("server-projection")));
    $("layers").addEventListener("change", () => renderEdit());
    $("reset").addEventListener("click", () => {
      for (const slider of document.querySelectorAll("#sliders input[type=range]")) {
        slider.value = "0";
        showStrength(slider);
      }
      keepControls();
      renderEdit();
    });
    $("sample-b").addEventListener("click", () => sample("second", $("seed-b")));
    // Enter in a seed box draws that sample, as its button does
    for (const [slot, id] of [["first", "seed"], ["second", "seed-b"]]) {
      $(id).addEventListener("keydown", (event) => { if (event.key === "Enter") sample(slot, $(id)); });
    }
    $("upload-b").addEventListener("change", (event) => upload("second", takeFile(event.target)));
    $("pick-b").addEventListener("change", () => pick("second", $("pick-b")));
    $("server-projection-b").addEventListener("change", () => openOnServer("second", $("server-projection-b")));
    $("mix-layers").addEventListener("change", () => renderPair());
    $("steps").addEventListener("change", () => renderPair());

    await sample("first", $("seed"));
    await sample("second", $("seed-b"));
    for (const [slot, note] of [["first", "note"], ["second", "note-b"]]) {
      if (typeof lost[slot] !== "string") continue;
      $(note).textContent += ` (before the reload: ${lost[slot]}, which the page does not keep; open it again)`;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("dismiss-errors").addEventListener("click", dismissErrors);
    guarded(start, "image");
  });
})();
