// The project console: live import progress and export lists that refresh while a job runs.
"use strict";

function pollImport(box) {
  const url = box.dataset.statusUrl;
  const set = (id, value) => { document.getElementById(id).textContent = value; };
  async function tick() {
    let state;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) throw new Error(`status ${response.status}`);
      state = await response.json();
    } catch (error) {
      set("import-state", `cannot read progress (${error.message}); retrying`);
      setTimeout(tick, 2000);
      return;
    }
    const badge = document.getElementById("import-state");
    badge.textContent = state.status;
    badge.className = `status status-${state.status}`;
    box.dataset.status = state.status;
    set("rows-read", state.rows_read);
    set("created", state.created);
    set("duplicates", state.duplicates);
    set("existing", state.existing);
    const error = document.getElementById("import-error");
    error.textContent = state.error;
    error.hidden = !state.error;
    document.getElementById("import-done").hidden = state.status !== "succeeded";
    if (!state.finished) setTimeout(tick, 500);
  }
  if (!["succeeded", "failed", "cancelled"].includes(box.dataset.status)) tick();
}

document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("import-status");
  if (box) pollImport(box);
  const exports = document.querySelector("[data-refresh-while-running]");
  if (exports) setTimeout(() => window.location.reload(), Number(exports.dataset.refreshWhileRunning));
});
