// Small progressive enhancements; every page works without this file.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const input = document.getElementById(button.dataset.copy);
  if (!input) return;
  navigator.clipboard.writeText(input.value).then(() => { button.textContent = "Copied"; });
});

// htmx 2 does not swap 4xx answers. Our fragment views answer a refused action or a form with
// errors with its fragment and a 4xx status (422, 403, 402 over budget...): swap those, but never a full error page.
document.addEventListener("htmx:beforeSwap", (event) => {
  const status = event.detail.xhr.status;
  if ([400, 402, 403, 409, 422].includes(status) && !/<html[\s>]/i.test(event.detail.serverResponse || "")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

// Provider key form: show only the credential fields the chosen provider takes (its key shapes,
// from the <option>'s data-fields). Without this script every field shows and the server checks.
function syncKeyFields(form) {
  const select = form.querySelector("[data-key-provider]");
  if (!select || !select.selectedOptions.length) return;
  const fields = (select.selectedOptions[0].dataset.fields || "").split(" ");
  form.querySelectorAll("[data-key-field]").forEach((box) => {
    const used = box.dataset.keyField.split(" ").some((name) => fields.includes(name));
    box.hidden = !used;
    box.querySelectorAll("input").forEach((input) => { input.disabled = !used; });
  });
}
document.addEventListener("change", (event) => {
  const form = event.target.closest("[data-key-form]");
  if (form && event.target.matches("[data-key-provider]")) syncKeyFields(form);
});
function syncAllKeyForms(root) {
  (root || document).querySelectorAll("[data-key-form]").forEach(syncKeyFields);
}
document.addEventListener("DOMContentLoaded", () => syncAllKeyForms());
document.addEventListener("htmx:afterSettle", (event) => syncAllKeyForms(event.target));

// Playground: preview the chosen input image before it is uploaded (the server checks it).
document.addEventListener("change", (event) => {
  const input = event.target.closest("input[type=file][data-image-preview]");
  if (!input) return;
  const preview = input.closest(".image-field")?.querySelector(".image-preview");
  if (!preview) return;
  if (preview.src) URL.revokeObjectURL(preview.src);
  const file = input.files && input.files[0];
  if (file && file.type.startsWith("image/")) {
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
  } else {
    preview.removeAttribute("src");
    preview.hidden = true;
  }
});

// Plain (non-htmx) forms that ask first: <form data-confirm="Really?">. Inline handlers are not
// allowed by the Content-Security-Policy.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

// The playground re-renders the model's options when a select changes (not when an image is
// picked). A plain event instead of an htmx trigger filter: filters need eval, which the
// Content-Security-Policy forbids.
document.addEventListener("change", (event) => {
  if (!event.target.matches(".model-options select")) return;
  event.target.closest(".model-options").dispatchEvent(new Event("options-change"));
});
