// Progressive enhancements; every page works without this file.
// 1. Drag-and-drop a photo anywhere on a [data-dropzone] form: put it in the file input and submit.
// 2. Close the mobile filters drawer when its "Show results" button submits the search.
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
  }
  const drawer = document.getElementById("filters-drawer");
  document.getElementById("search-form")?.addEventListener("submit", () => {
    if (drawer) drawer.checked = false;
  });
});
