// Job pages (training, evaluation, jury): while a job is pending or running, the page re-reads
// itself in the background and swaps in the parts marked data-live (progress, run tables, the
// worker notice), so the forms keep what the person is typing and the tab never reloads or waits.
// A region with data-live="MS" asks for another look after MS milliseconds; the page stops asking
// once no region does (every job finished). Ticked checkboxes in a region stay ticked.
"use strict";

function liveDelay(root) {
  const delays = [...root.querySelectorAll("[data-live]")].map((region) => Number(region.dataset.live)).filter(Boolean);
  return delays.length ? Math.min(...delays) : 0;
}

function keepTicked(region, fresh) {
  for (const box of region.querySelectorAll("input[type=checkbox]:checked")) {
    const twin = [...fresh.querySelectorAll("input[type=checkbox]")].find(
      (other) => other.name === box.name && other.value === box.value,
    );
    if (twin) twin.checked = true;
  }
}

async function refreshRegions() {
  let page;
  try {
    const response = await fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (!response.ok) throw new Error(`status ${response.status}`);
    page = new DOMParser().parseFromString(await response.text(), "text/html");
  } catch (error) {
    document.body.dataset.liveError = error.message;  // tried again below; the last view stays
    setTimeout(refreshRegions, 5000);
    return;
  }
  delete document.body.dataset.liveError;
  for (const region of document.querySelectorAll("[data-live]")) {
    const fresh = page.getElementById(region.id);
    if (!fresh) continue;
    keepTicked(region, fresh);
    region.replaceWith(document.importNode(fresh, true));
  }
  const delay = liveDelay(document);
  if (delay) setTimeout(refreshRegions, delay);
}

document.addEventListener("DOMContentLoaded", () => {
  const delay = liveDelay(document);
  if (delay) setTimeout(refreshRegions, delay);
});
