// Refuse a file over the limit before sending it; the server checks again while it streams.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-max-bytes]");
  if (!form) return;
  const input = form.querySelector("input[type=file]");
  const limit = Number(form.dataset.maxBytes);
  const file = input && input.files && input.files[0];
  if (file && limit && file.size > limit) {
    event.preventDefault();
    const hint = form.querySelector(".upload-hint");
    if (hint) {
      hint.textContent = `“${file.name}” is larger than the upload limit of ${Math.floor(limit / 1048576)} MB. Nothing was sent.`;
      hint.classList.add("flash-error");
    }
  }
});
