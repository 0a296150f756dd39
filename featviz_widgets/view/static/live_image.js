// LiveImage front end (anywidget ES module; no build step).
// Draws each frame on a canvas (no <img> swap flicker), acknowledges every frame (each new
// "seq", even when its bytes equal the last frame's and so were not resent) so the kernel keeps
// at most two in flight, reports whether this view is on screen and, every few seconds, that it
// is still alive (a closed tab stops saying so), and turns a "download" message from the kernel
// into a PNG file download.

const ALIVE_EVERY_MS = 5000;

function render({ model, el }) {
  const viewId = Math.random().toString(36).slice(2);
  el.classList.add("featviz-live");
  el.setAttribute("data-lm-suppress-shortcuts", "true");
  const canvas = document.createElement("canvas");
  canvas.className = "featviz-canvas";
  canvas.dataset.frames = "0";
  el.appendChild(canvas);
  const ctx = canvas.getContext("2d");

  function fit() {
    const size = model.get("display_size");
    canvas.style.width = size > 0 ? `${size}px` : "";
    canvas.classList.toggle("pixelated", model.get("pixelated"));
  }

  let busy = false;
  let pending = false;
  async function draw() {
    if (busy) { pending = true; return; }  // the latest frame wins
    busy = true;
    try {
      do {
        pending = false;
        const seq = model.get("seq");
        const data = model.get("frame");
        try {
          if (data && data.byteLength > 0) {
            const bitmap = await createImageBitmap(new Blob([data], { type: model.get("mime") }));
            if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
              canvas.width = bitmap.width;
              canvas.height = bitmap.height;
            }
            ctx.drawImage(bitmap, 0, 0);
            bitmap.close();
            canvas.dataset.frames = String(Number(canvas.dataset.frames) + 1);
            canvas.dataset.seq = String(seq);
          }
        } catch (err) {
          console.warn("featviz: could not draw frame", err);
        }
        // Answered whether drawn or not: an unanswered frame would read as a closed tab.
        if (seq > 0) model.send({ type: "ack", seq: seq });
      } while (pending);
    } finally {
      busy = false;
    }
  }

  let onScreen = false;
  function visibility(visible) {
    onScreen = visible;
    model.send({ type: "visibility", view: viewId, visible: visible });
  }
  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) visibility(entry.isIntersecting);
  });
  observer.observe(el);
  const alive = setInterval(() => {
    model.send({ type: "alive", view: viewId, visible: onScreen });
  }, ALIVE_EVERY_MS);

  function onMessage(msg, buffers) {
    if (msg && msg.type === "copy") {
      navigator.clipboard.writeText(msg.text).then(
        () => { el.dataset.copied = String(Number(el.dataset.copied || 0) + 1); },
        (err) => console.warn("featviz: clipboard refused", err),
      );
      return;
    }
    if (msg && msg.type === "download" && buffers && buffers.length) {
      const url = URL.createObjectURL(new Blob([buffers[0]], { type: "image/png" }));
      const a = document.createElement("a");
      a.href = url;
      a.download = msg.filename || "featviz.png";
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    }
  }

  // Clicks report the position in frame pixels (the gallery maps them to a tile).
  function onClick(event) {
    if (!canvas.width) return;
    const rect = canvas.getBoundingClientRect();
    const x = Math.floor(((event.clientX - rect.left) * canvas.width) / rect.width);
    const y = Math.floor(((event.clientY - rect.top) * canvas.height) / rect.height);
    model.send({ type: "click", x: x, y: y });
  }
  canvas.addEventListener("click", onClick);

  model.on("change:seq", draw);  // every frame bumps seq; its bytes may equal the last one's
  model.on("change:display_size", fit);
  model.on("change:pixelated", fit);
  model.on("msg:custom", onMessage);
  fit();
  draw();
  return () => {
    observer.disconnect();
    clearInterval(alive);
    canvas.removeEventListener("click", onClick);
    visibility(false);
    model.send({ type: "closed", view: viewId });
    model.off("change:seq", draw);
    model.off("change:display_size", fit);
    model.off("change:pixelated", fit);
    model.off("msg:custom", onMessage);
  };
}

export default { render };
