// dataferry dashboard: live updates over the REST API (no library, nothing fetched
// from elsewhere). Pages work without this script; it only keeps them current.
// Formatting mirrors dataferry/api/web/format.py.
"use strict";
(function () {
  const meta = (name) => { const m = document.querySelector(`meta[name="${name}"]`); return m ? m.content : ""; };
  const CSRF = meta("csrf-token");
  const POLL_MS = Math.max(1000, parseInt(meta("poll-ms"), 10) || 2000);
  const FINAL = new Set(["succeeded", "failed", "cancelled"]);
  const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

  function humanBytes(n) {
    if (n === null || n === undefined) return "?";
    let v = Number(n);
    for (const u of UNITS) {
      if (Math.abs(v) < 1024 || u === UNITS[UNITS.length - 1]) return u === "B" ? `${Math.trunc(v)} B` : `${v.toFixed(1)} ${u}`;
      v /= 1024;
    }
    return "?";
  }
  function humanDuration(seconds) {
    if (seconds === null || seconds === undefined || seconds < 0 || !isFinite(seconds)) return "–";
    const s = Math.round(seconds);
    const pad = (x) => String(x).padStart(2, "0");
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }

  // Rate from successive samples of the same job (smoothed); the average since
  // creation until two samples exist.
  const samples = new Map();
  function progressOf(doc) {
    const total = doc.bytes_total, done = doc.bytes_done || 0;
    let percent;
    if (doc.state === "succeeded") percent = 100;
    else if (total) percent = Math.min(100, (100 * done) / total);
    else percent = doc.task_percent || 0;
    const amount = total !== null && total !== undefined ? `${humanBytes(done)} of ${humanBytes(total)}` : "";
    let rate = "", eta = "";
    if (doc.state === "running" && done > 0) {
      const now = Date.now() / 1000;
      const prev = samples.get(doc.job_id);
      let perSecond = null;
      if (prev && now > prev.t && done >= prev.bytes) {
        const instant = (done - prev.bytes) / (now - prev.t);
        perSecond = prev.rate === null ? instant : 0.5 * prev.rate + 0.5 * instant;
      } else {
        const elapsed = now - Date.parse(doc.created) / 1000;
        if (elapsed > 0) perSecond = done / elapsed;
      }
      samples.set(doc.job_id, { t: now, bytes: done, rate: perSecond });
      if (perSecond !== null) {
        rate = `${humanBytes(perSecond)}/s`;
        if (total && perSecond > 0) eta = humanDuration((total - done) / perSecond);
      }
    }
    return { percent: (Math.round(percent * 10) / 10).toFixed(1), amount, rate, eta };
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const c of children || []) node.append(c);
    return node;
  }
  function badge(state) { return el("span", { class: `state state-${state}`, "data-field": "state", text: state }); }
  function progressNode(doc) {
    const p = progressOf(doc);
    const bar = el("progress", { max: "100", value: p.percent, "aria-label": `job ${doc.job_id} progress` });
    bar.textContent = `${p.percent} %`;
    return el("div", { class: "progress", "data-field": "progress" }, [
      bar,
      el("span", { class: "pct", "data-field": "percent", text: `${p.percent} %` }),
      el("span", { class: "detail" }, [
        el("span", { "data-field": "amount", text: p.amount }),
        el("span", { "data-field": "rate", text: p.rate }),
        el("span", { "data-field": "eta", text: p.eta ? `ETA ${p.eta}` : "" }),
      ]),
    ]);
  }
  function setProgress(container, doc) {
    const old = container.querySelector('[data-field="progress"]');
    if (old) old.replaceWith(progressNode(doc));
  }
  function jobRow(doc) {
    const link = el("a", { href: `/jobs/${doc.job_id}`, text: `#${doc.job_id}` });
    const age = humanDuration((Date.now() - Date.parse(doc.created)) / 1000);
    return el("tr", { "data-job": String(doc.job_id) }, [
      el("td", {}, [link]),
      el("td", { text: doc.kind }),
      el("td", {}, [badge(doc.state)]),
      el("td", { "data-field": "task", text: doc.task }),
      el("td", {}, [progressNode(doc)]),
      el("td", { "data-field": "attempts", text: String(doc.attempts) }),
      el("td", { "data-field": "age", text: age }),
    ]);
  }

  async function getJSON(url) {
    const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json", "X-CSRF-Token": CSRF } });
    if (r.status === 401) { window.location.reload(); throw new Error("logged out"); }
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    return r.json();
  }

  // Polls while the page is visible, never more than once a second, one request at a time.
  function every(fn) {
    let timer = null, busy = false;
    const tick = async () => {
      timer = null;
      if (!document.hidden && !busy) {
        busy = true;
        try { if ((await fn()) === false) return; } catch (e) { /* try again next tick */ }
        finally { busy = false; }
      }
      timer = setTimeout(tick, POLL_MS);
    };
    document.addEventListener("visibilitychange", () => { if (!document.hidden && timer === null && !busy) tick(); });
    timer = setTimeout(tick, POLL_MS);
  }

  function liveStatus(text) {
    const s = document.querySelector("[data-live-status]");
    if (s) s.textContent = text;
  }

  function liveJobs(table) {
    const url = table.dataset.liveJobs;
    const tbody = table.tBodies[0];
    every(async () => {
      const page = await getJSON(url);
      const rows = page.jobs.map(jobRow);
      if (rows.length === 0) {
        const empty = el("tr", { class: "empty" }, [el("td", { colspan: "7", text: "No jobs." })]);
        tbody.replaceChildren(empty);
      } else {
        tbody.replaceChildren(...rows);
      }
      const total = document.querySelector('[data-field="total"]');
      if (total) total.textContent = String(page.total);
      liveStatus(`Updated ${new Date().toLocaleTimeString()}`);
    });
  }

  function liveJob(box) {
    const id = box.dataset.liveJob;
    const shown = box.dataset.state;
    if (FINAL.has(shown)) return;
    every(async () => {
      const doc = await getJSON(`/api/v1/jobs/${id}/detail`);
      if (doc.state !== shown) {
        // a new state: the server renders the files, attempts and buttons that go with it
        window.location.reload();
        return false;
      }
      setProgress(box, doc);
      const set = (field, text) => { const n = box.querySelector(`[data-field="${field}"]`); if (n) n.textContent = text; };
      set("task", doc.task);
      set("files", `${doc.files_done} of ${doc.files_total === null ? "?" : doc.files_total}`);
      set("attempts", `${doc.attempts} of ${doc.max_attempts}`);
      set("updated", doc.updated);
      set("error", doc.error);
      const errorBox = box.querySelector('[data-field="error-box"]');
      if (errorBox) errorBox.hidden = !doc.error;
      return true;
    });
  }

  function liveDataset(box) {
    const uid = box.dataset.liveDataset;
    const shown = box.dataset.state;
    if (shown === "complete" || shown === "failed_permanent") return;
    every(async () => {
      const doc = await getJSON(`/api/v1/synced-datasets/${encodeURIComponent(uid)}`);
      if (doc.state !== shown) { window.location.reload(); return false; }
      return true;
    });
  }

  // Ingest: upload with progress (XMLHttpRequest reports upload progress; fetch does
  // not), then follow the job's tasks.
  function ingestPage(root) {
    const tasks = root.dataset.tasks.split("|");
    const input = root.querySelector("#bundle");
    const drop = root.querySelector("[data-drop]");
    const status = root.querySelector("[data-upload-status]");
    const bar = root.querySelector("[data-upload-bar]");
    const pct = root.querySelector("[data-upload-percent]");
    const detail = root.querySelector("[data-upload-detail]");
    const jobLine = root.querySelector("[data-upload-job]");
    const error = root.querySelector("[data-upload-error]");
    const mark = (upTo, how) => {
      root.querySelectorAll("[data-task]").forEach((li, i) => {
        let st = i < upTo ? "done" : i === upTo ? how : "todo";
        li.className = `step step-${st}`;
        li.querySelector("[data-task-status]").textContent = ` (${st})`;
      });
    };
    const showError = (text) => { error.textContent = text; error.hidden = !text; };
    function follow(jobId) {
      every(async () => {
        const doc = await getJSON(`/api/v1/jobs/${jobId}/detail`);
        const at = Math.max(0, tasks.indexOf(doc.task));
        if (doc.state === "succeeded") mark(tasks.length, "done");
        else if (doc.state === "failed" || doc.state === "cancelled") mark(at, "failed");
        else mark(at, "current");
        jobLine.querySelector("[data-field=state]").replaceWith(badge(doc.state));
        showError(doc.error);
        return !FINAL.has(doc.state);
      });
    }
    function send(file) {
      if (!file) return;
      status.hidden = false;
      showError("");
      mark(0, "current");
      jobLine.textContent = `Uploading ${file.name} (${humanBytes(file.size)})…`;
      const xhr = new XMLHttpRequest();
      const started = Date.now();
      xhr.open("POST", "/ingest/upload");
      xhr.setRequestHeader("X-CSRF-Token", CSRF);
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.upload.onprogress = (e) => {
        if (!e.lengthComputable) return;
        const p = (100 * e.loaded) / e.total;
        bar.value = p;
        pct.textContent = `${p.toFixed(1)} %`;
        const secs = (Date.now() - started) / 1000;
        detail.textContent = `${humanBytes(e.loaded)} of ${humanBytes(e.total)}` +
          (secs > 0 ? `  ${humanBytes(e.loaded / secs)}/s` : "");
      };
      xhr.onload = () => {
        let doc = {};
        try { doc = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
        if (!doc.job_id) { showError(doc.detail || `upload refused (HTTP ${xhr.status})`); mark(0, "failed"); return; }
        bar.value = 100;
        pct.textContent = "100.0 %";
        jobLine.replaceChildren("Ingest job ", el("a", { href: `/jobs/${doc.job_id}`, text: `#${doc.job_id}` }), " ", badge("queued"));
        follow(doc.job_id);
      };
      xhr.onerror = () => { showError("the upload failed: the connection was lost"); mark(0, "failed"); };
      xhr.send(file);
    }
    input.addEventListener("change", () => send(input.files[0]));
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      if (e.dataTransfer && e.dataTransfer.files.length) send(e.dataTransfer.files[0]);
    });
  }

  function confirmForms() {
    for (const form of document.querySelectorAll("form[data-confirm]")) {
      form.addEventListener("submit", (e) => { if (!window.confirm(form.dataset.confirm)) e.preventDefault(); });
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const table = document.querySelector("table[data-live-jobs]");
    if (table) liveJobs(table);
    const job = document.querySelector("[data-live-job]");
    if (job) liveJob(job);
    const dataset = document.querySelector("[data-live-dataset]");
    if (dataset) liveDataset(dataset);
    const ingest = document.querySelector("[data-ingest]");
    if (ingest) ingestPage(ingest);
    confirmForms();
    window.dataferry = { humanBytes, humanDuration, getJSON, el, every, CSRF, POLL_MS };
  });
})();
