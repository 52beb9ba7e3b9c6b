"""A small custom component: one play / pause / seek control and a shared playhead for the compared videos.

The videos are the app's own players (st.video of archived files) inside a keyed container; the component only
finds them there and keeps them together (within 0.1 s). No data from runs reaches its HTML or JavaScript.
"""

from __future__ import annotations

import streamlit.components.v2 as components

CONTAINER_KEY = "history_compare_players"
TOLERANCE_S = 0.1

_JS = """
export default function(component) {
  const { parentElement, data } = component;
  const TOLERANCE = Number(data.tolerance) || 0.1;
  const root = document.querySelector('.st-key-' + data.container);
  if (!root) { return; }
  const bar = document.createElement('div');
  bar.className = 'kling-sync';
  bar.innerHTML = '<button type="button" data-act="play">▶︎ Play all</button>' +
    '<input type="range" min="0" max="1000" value="0" aria-label="Shared playhead">' +
    '<label><input type="checkbox" data-act="loop"> Loop</label><span class="t">0.0 s</span>';
  parentElement.appendChild(bar);
  const button = bar.querySelector('button'), seek = bar.querySelector('input[type=range]');
  const loop = bar.querySelector('input[type=checkbox]'), label = bar.querySelector('.t');
  const videos = () => Array.from(root.querySelectorAll('video'));
  const longest = () => Math.max(0.001, ...videos().map(v => v.duration || 0));
  const setAll = (t) => videos().forEach(v => { v.currentTime = Math.min(t, (v.duration || t)); });
  let playing = false;
  button.onclick = () => {
    playing = !playing;
    videos().forEach(v => { v.muted = true; playing ? v.play() : v.pause(); });
    button.textContent = playing ? '⏸ Pause all' : '▶︎ Play all';
  };
  seek.oninput = () => setAll(seek.value / 1000 * longest());
  loop.onchange = () => videos().forEach(v => { v.loop = loop.checked; });
  const tick = () => {
    const all = videos();
    if (all.length) {
      const lead = all[0];
      all.slice(1).forEach(v => {
        if (!v.ended && Math.abs(v.currentTime - lead.currentTime) > TOLERANCE) { v.currentTime = lead.currentTime; }
      });
      seek.value = Math.round(lead.currentTime / longest() * 1000);
      label.textContent = lead.currentTime.toFixed(1) + ' s';
      window.__klingSync = all.map(v => v.currentTime);
    }
    component.__raf = requestAnimationFrame(tick);
  };
  tick();
  return () => cancelAnimationFrame(component.__raf);
}
"""

_CSS = """
.kling-sync { display: flex; gap: .75rem; align-items: center; padding: .25rem 0; }
.kling-sync input[type=range] { flex: 1; }
"""

_component = components.component("kling_synced_compare", js=_JS, css=_CSS, isolate_styles=False)


def synced_controls() -> None:
    """Draw the shared control bar for the players inside st.container(key=CONTAINER_KEY)."""
    _component(data={"container": CONTAINER_KEY, "tolerance": TOLERANCE_S}, key="history_synced_controls")
