// The page of one recording: seek and play from the timeline, and send decisions.
(function () {
  const root = document.getElementById("recording");
  if (!root) return;
  const player = document.getElementById("player");
  const playhead = document.getElementById("playhead");
  const stack = root.querySelector(".stack");
  const axis = parseFloat(root.dataset.axis);
  const saved = document.getElementById("saved");
  const segmentScope = document.getElementById("scope-segment");
  let selected = null;

  function playFrom(seconds) {
    player.currentTime = seconds;
    player.play().catch(function () { /* the user can press play */ });
  }

  // A stretch: select it for a decision and play it from its start.
  document.querySelectorAll(".band").forEach(function (band) {
    band.addEventListener("click", function (event) {
      event.stopPropagation();
      document.querySelectorAll(".band.selected").forEach(function (b) { b.classList.remove("selected"); });
      band.classList.add("selected");
      selected = { start_s: parseFloat(band.dataset.start), end_s: parseFloat(band.dataset.end) };
      document.getElementById("selected").textContent = band.title;
      segmentScope.disabled = false;
      segmentScope.checked = true;
      playFrom(selected.start_s);
    });
  });

  // Anywhere else on the time axis: play from that moment.
  root.querySelectorAll(".timeline, .seekable").forEach(function (lane) {
    lane.addEventListener("click", function (event) {
      const box = lane.getBoundingClientRect();
      playFrom(axis * (event.clientX - box.left) / box.width);
    });
  });

  player.addEventListener("timeupdate", function () {
    const lane = root.querySelector(".timeline");
    const left = lane.offsetLeft + lane.offsetWidth * Math.min(1, player.currentTime / axis);
    playhead.style.left = left + "px";
  });

  const reviewer = document.getElementById("reviewer");
  reviewer.value = localStorage.getItem("langsort-reviewer") || "";
  reviewer.addEventListener("change", function () { localStorage.setItem("langsort-reviewer", reviewer.value); });

  // as drawing.clock: 7.5 -> 0:07.5, 60 -> 1:00, 4000 -> 1:06:40
  function clock(seconds) {
    const tenths = Math.round(seconds * 10), whole = Math.floor(tenths / 10), tenth = tenths % 10;
    const h = Math.floor(whole / 3600), m = Math.floor(whole % 3600 / 60), s = String(whole % 60).padStart(2, "0");
    if (h) return h + ":" + String(m).padStart(2, "0") + ":" + s;
    return m + ":" + s + (tenth ? "." + tenth : "");
  }

  function cell(text) { const td = document.createElement("td"); td.textContent = text; return td; }

  document.querySelectorAll(".choice").forEach(function (button) {
    button.addEventListener("click", async function () {
      const body = { path: root.dataset.path, language: button.dataset.language,
                     reviewer: reviewer.value || null, note: document.getElementById("note").value || null };
      const stretch = segmentScope.checked && selected;
      if (stretch) Object.assign(body, selected);
      saved.className = "";
      saved.textContent = "saving…";
      try {
        const response = await fetch("/api/reviews", {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
        const answer = await response.json();
        if (!response.ok) throw new Error(answer.detail || response.statusText);
        saved.textContent = "Saved: " + answer.language + (stretch ? " for the selected stretch" : " for the whole recording");
        const row = document.createElement("tr");
        [answer.reviewed_at, answer.language, stretch ? clock(answer.start_s) + "–" + clock(answer.end_s) : "whole recording",
         answer.reviewer || "", answer.note || ""].forEach(function (t) { row.appendChild(cell(t)); });
        document.getElementById("history").prepend(row);
      } catch (error) {
        saved.className = "failed";
        saved.textContent = "Not saved: " + error.message;
      }
    });
  });
})();
