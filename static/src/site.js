// Progressive enhancements; every page works without this file.
// 1. Drag-and-drop (or paste) a photo onto the page with a [data-dropzone] form: put it in the
//    file input and submit.
// 2. Close the mobile filters drawer when its "Show results" button submits the search.
// 3. The filters drawer behaves as a dialog on small screens: "Filters" and "✕" work from the
//    keyboard (Enter/Space), focus moves into the drawer and stays there (Tab wraps), Escape
//    closes it and focus goes back to "Filters".
// 4. While a search is in flight the results say so (aria-busy, dimmed by CSS); a failed or
//    offline search shows a message instead of leaving old results up silently.
// 5. History: a burst of typing is one entry (its first keystroke after a pause of 1 s or more
//    pushes, the next ones replace it: the X-Search-Typing header asks the server to answer
//    HX-Replace-Url); a submit always pushes. Back puts the typed query and ticked boxes back.
// 7. Product page gallery: a photo shows large in place of the main one.
// 8. "/" focuses the search box.
// 6. Price boxes search when a price is complete (Enter or leaving the box), not at every
//    digit: their input events are kept from the form's search-as-you-type.
document.addEventListener("DOMContentLoaded", () => {
  for (const zone of document.querySelectorAll("[data-dropzone]")) {
    const input = zone.querySelector('input[type="file"]');
    const on = (names, fn) => names.forEach((n) => zone.addEventListener(n, fn));
    on(["dragenter", "dragover"], (e) => { e.preventDefault(); zone.dataset.dragging = ""; });
    on(["dragleave", "drop"], () => { delete zone.dataset.dragging; });
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      if (!input || !e.dataTransfer.files.length) return;
      input.files = e.dataTransfer.files;
      zone.requestSubmit();
    });
    // Picking a file searches at once, as dropping one does; one upload at a time.
    input?.addEventListener("change", () => { if (input.files.length) zone.requestSubmit(); });
    zone.addEventListener("submit", () => {
      const button = zone.querySelector('button[type="submit"]');
      if (button) { button.disabled = true; button.textContent = "Searching…"; }
      zone.setAttribute("aria-busy", "true");
    });
  }
  // A photo pasted from the clipboard (Ctrl+V / long-press Paste) searches like a dropped one.
  document.addEventListener("paste", (e) => {
    const zone = document.querySelector("[data-dropzone]");
    const input = zone?.querySelector('input[type="file"]');
    const files = [...(e.clipboardData?.files || [])].filter((f) => f.type.startsWith("image/"));
    if (!input || !files.length) return;
    e.preventDefault();
    const picked = new DataTransfer();
    picked.items.add(files[0]);
    input.files = picked.files;
    zone.requestSubmit();
  });
  // A photo dropped anywhere else on the page goes to the photo form (or is ignored), instead of
  // the browser leaving the site to show the file.
  const dropzone = document.querySelector("[data-dropzone]");
  document.addEventListener("dragover", (e) => e.preventDefault());
  document.addEventListener("drop", (e) => {
    if (e.defaultPrevented) return;
    e.preventDefault();
    const input = dropzone?.querySelector('input[type="file"]');
    if (!input || !e.dataTransfer?.files.length) return;
    input.files = e.dataTransfer.files;
    dropzone.requestSubmit();
  });
  const drawer = document.getElementById("filters-drawer");
  document.getElementById("search-form")?.addEventListener("submit", (e) => {
    if (drawer && e.submitter?.matches("[data-drawer-submit]")) drawer.checked = false;
  });
  if (drawer) setUpDrawer(drawer);
  setUpGallery();
  // "/" puts the cursor in the search box from anywhere on the page (as on GitHub or YouTube).
  document.addEventListener("keydown", (e) => {
    if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target.closest?.("input, textarea, select, [contenteditable]")) return;
    const box = document.getElementById("q") || document.getElementById("header-q");
    if (!box) return;
    e.preventDefault();
    box.focus();
    box.select();
  });
  setUpPriceBoxes();
  setUpSearchFeedback();
});

function setUpDrawer(toggle) {
  const side = toggle.parentElement.querySelector(".drawer-side");
  const opener = asButton(document.querySelector("[data-drawer-open]"));
  const wide = window.matchMedia("(min-width: 64rem)"); // lg: the drawer is a sidebar
  const modal = () => toggle.checked && !wide.matches;
  const focusables = () =>
    [...side.querySelectorAll("a[href], button, input, select, [tabindex='0']")].filter(
      (el) => !el.disabled && el.type !== "hidden" && el.getClientRects().length,
    );
  const sync = () => {
    opener?.setAttribute("aria-expanded", String(toggle.checked));
    side.querySelectorAll("[data-drawer-close]").forEach((b) => { b.hidden = false; });
    if (!modal()) return;
    // The drawer becomes visible (and focusable) with its CSS transition: focus once it is.
    const focusIn = (tries) => {
      (side.querySelector("#filters-heading") || focusables()[0])?.focus();
      if (!side.contains(document.activeElement) && tries) setTimeout(() => focusIn(tries - 1), 50);
    };
    requestAnimationFrame(() => focusIn(10));
  };
  const close = () => {
    toggle.checked = false;
    sync();
    opener?.focus();
  };
  opener?.setAttribute("aria-expanded", "false");
  opener?.addEventListener("click", () => {
    toggle.checked = !toggle.checked;
    sync();
  });
  toggle.addEventListener("change", sync);
  document.addEventListener("click", (e) => {
    if (e.target.closest?.("[data-drawer-close]")) close();
  });
  document.addEventListener("keydown", (e) => {
    if (!modal()) return;
    if (e.key === "Escape") {
      e.preventDefault();
      close();
    } else if (e.key === "Tab") {
      const items = focusables();
      if (!items.length) return;
      const first = items[0], last = items[items.length - 1];
      const inside = side.contains(document.activeElement);
      if (!inside || (e.shiftKey && document.activeElement === first) || (!e.shiftKey && document.activeElement === last)) {
        e.preventDefault();
        (e.shiftKey ? last : first).focus();
      }
    }
  });
}

function setUpSearchFeedback() {
  const form = document.getElementById("search-form");
  const error = document.getElementById("search-error");
  if (!form) return;
  const results = () => document.getElementById("results");
  const say = (text) => {
    if (!error) return;
    error.textContent = text;
    error.hidden = !text;
  };
  form.addEventListener("htmx:beforeRequest", () => results()?.setAttribute("aria-busy", "true"));
  // A burst of typing starts with a keystroke after a pause of 1 s or more; its first search
  // pushes a history entry, the rest of the burst's searches replace it.
  let lastKey = 0;
  let newBurst = true;
  form.addEventListener("input", () => {
    const now = Date.now();
    if (now - lastKey >= 1000) newBurst = true;
    lastKey = now;
  });
  form.addEventListener("htmx:configRequest", (e) => {
    const typing = e.detail.triggeringEvent?.type === "input" && !newBurst;
    if (e.detail.triggeringEvent?.type === "input") newBurst = false;
    e.detail.headers["X-Search-Typing"] = typing ? "1" : "0";
    // Shareable URLs without empty or default parameters (?q=teapot, not &min_price=&max_price=).
    for (const [name, value] of [...e.detail.parameters.entries()]) {
      if (value === "" || (name === "sort" && value === "relevance")) e.detail.parameters.delete(name);
    }
  });
  // htmx snapshots the page's HTML for Back just before the new URL is pushed, when the box
  // already holds the new words: write the old URL's values into the snapshot, so Back shows
  // the query (and ticks) that its results are for.
  document.body.addEventListener("htmx:beforeHistorySave", () => {
    const params = new URLSearchParams(location.search);
    for (const input of form.querySelectorAll("input[name]")) {
      if (input.type === "checkbox") input.toggleAttribute("checked", params.getAll(input.name).includes(input.value));
      else if (input.type !== "file") input.setAttribute("value", params.get(input.name) ?? "");
    }
  });
  form.addEventListener("htmx:afterRequest", (e) => {
    results()?.removeAttribute("aria-busy");
    if (e.detail.successful) say("");
  });
  form.addEventListener("htmx:sendError", () =>
    say("You seem to be offline. The results below are from your previous search."),
  );
  form.addEventListener("htmx:responseError", () =>
    say("Search did not answer. The results below are from your previous search; please try again."),
  );
}

// A <label for=…> that toggles a CSS-only control, replaced by a <button> with the same look and
// content: a label cannot take keyboard focus or be announced as a button.
function asButton(label) {
  if (!label) return null;
  const button = document.createElement("button");
  button.type = "button";
  button.className = label.className;
  button.innerHTML = label.innerHTML;
  for (const { name, value } of label.attributes) {
    if (name.startsWith("data-") || name.startsWith("aria-")) button.setAttribute(name, value);
  }
  button.setAttribute("aria-controls", "facets");
  label.replaceWith(button);
  return button;
}

function setUpPriceBoxes() {
  const form = document.getElementById("search-form");
  if (!form) return;
  const isPrice = (el) => el.matches?.('input[type="number"]');
  // Capture phase on the form: the event never reaches htmx's listener on the form.
  form.addEventListener("input", (e) => { if (isPrice(e.target)) e.stopPropagation(); }, true);
  form.addEventListener("change", (e) => { if (isPrice(e.target)) form.requestSubmit(); });
}

// Product page: a gallery photo shows large in place of the main one.
function setUpGallery() {
  const main = document.getElementById("main-photo");
  const gallery = document.querySelector("[data-gallery]");
  if (!main || !gallery) return;
  gallery.addEventListener("click", (e) => {
    const link = e.target.closest("[data-gallery-src]");
    if (!link) return;
    e.preventDefault();
    main.src = link.dataset.gallerySrc;
    gallery.querySelectorAll("[data-gallery-src]").forEach((a) => a.removeAttribute("aria-current"));
    link.setAttribute("aria-current", "true");
  });
}
