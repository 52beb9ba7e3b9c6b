"""`@` autocomplete for the page's own text areas: typing `@` offers the library's element names.

A small custom component (v2, inline JS) that draws nothing of its own in the page flow. It finds the text areas
whose widget keys it is given (`.st-key-<key> textarea`) and, while the caret follows `@` and a partial name, shows
a list of matching names under the field: arrows move, Enter or Tab pick, Esc closes, a click picks. A pick writes
`@name ` at the caret through the text area's own input event and commits the widget (as leaving the field does), so
the value flows into the same widget and session-state key as typing: validation, preview, drafts, reload and links
see nothing new. Names reach the JavaScript as JSON data and are drawn with textContent, never as HTML.
AppTest runs no JavaScript: there the text areas are the plain widgets they always were.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit.components.v2 as components

MAX_SUGGESTIONS = 8

_JS = """
export default function(component) {
  const { data } = component;
  const names = Array.isArray(data.names) ? data.names.map(String) : [];
  const keys = new Set(Array.isArray(data.keys) ? data.keys.map(String) : []);
  const limit = Number(data.limit) || 8;
  const prev = window.__klingMention;
  if (prev) { prev.remove(); }
  let list = null, items = [], active = 0, field = null, token = null;

  const ownerKey = (el) => {
    const box = el && el.closest && el.closest('[class*="st-key-"]');
    if (!box || el.tagName !== 'TEXTAREA') { return null; }
    for (const c of box.classList) { if (c.startsWith('st-key-') && keys.has(c.slice(7))) { return c.slice(7); } }
    return null;
  };
  const tokenAt = (el) => {
    const upto = el.value.slice(0, el.selectionStart);
    const m = /(^|[^A-Za-z0-9_@-])@([A-Za-z0-9_-]*)$/.exec(upto);
    return m ? { start: upto.length - m[2].length - 1, end: el.selectionStart, text: m[2] } : null;
  };
  const matches = (text) => {
    const t = text.toLowerCase();
    const starts = names.filter(n => n.toLowerCase().startsWith(t))
      .sort((a, b) => a.length - b.length || a.localeCompare(b));  // the closest completion first
    const inside = names.filter(n => !n.toLowerCase().startsWith(t) && n.toLowerCase().includes(t));
    return starts.concat(inside).slice(0, limit);
  };
  const close = () => { if (list) { list.remove(); } list = null; items = []; field = null; token = null; };
  const mark = () => items.forEach((li, i) => {
    li.setAttribute('aria-selected', i === active ? 'true' : 'false');
    li.style.background = i === active ? '#e8eefc' : 'white';
  });
  const draw = (el, found) => {
    if (!list) {
      list = document.createElement('ul');
      list.className = 'kling-mention';
      list.setAttribute('role', 'listbox');
      list.setAttribute('aria-label', 'Elements');
      document.body.appendChild(list);
    }
    list.replaceChildren();
    items = found.map((name, i) => {
      const li = document.createElement('li');
      li.setAttribute('role', 'option');
      li.textContent = '@' + name;
      li.addEventListener('mousedown', (e) => { e.preventDefault(); active = i; pick(); });
      list.appendChild(li);
      return li;
    });
    const r = el.getBoundingClientRect();
    list.style.left = r.left + 'px';
    list.style.top = (r.bottom + 2) + 'px';
    list.style.minWidth = Math.min(r.width, 260) + 'px';
    mark();
  };
  const refresh = (el) => {
    const t = tokenAt(el);
    const found = t ? matches(t.text) : [];
    if (!found.length) { close(); return; }
    if (field !== el || !token || token.text !== t.text) { active = 0; }
    field = el; token = t;
    draw(el, found);
  };
  const pick = () => {
    if (!field || !token || !items.length) { return; }
    const el = field, name = items[active].textContent.slice(1);
    const after = el.value.slice(token.end);
    const insert = '@' + name + (after.startsWith(' ') ? '' : ' ');
    const value = el.value.slice(0, token.start) + insert + after;
    const caret = token.start + insert.length;
    close();
    const setter = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set;
    setter.call(el, value);
    el.dispatchEvent(new Event('input', { bubbles: true }));
    el.setSelectionRange(caret, caret);
    // commit the widget as Ctrl+Enter does, so the form (and its preview) holds the pick at once
    el.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', code: 'Enter', ctrlKey: true, bubbles: true }));
  };
  const onInput = (e) => { if (ownerKey(e.target)) { refresh(e.target); } };
  const onKey = (e) => {
    if (!list || e.target !== field) { return; }
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      active = (active + (e.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length; mark();
    } else if ((e.key === 'Enter' || e.key === 'Tab') && !e.ctrlKey && !e.metaKey && !e.shiftKey) {
      pick();
    } else if (e.key === 'Escape') {
      close();
    } else { return; }
    e.preventDefault(); e.stopPropagation();
  };
  const onBlur = (e) => { if (e.target === field) { close(); } };
  const onScroll = () => { if (list) { close(); } };  // the list is placed once, under where the field was
  document.addEventListener('input', onInput, true);
  document.addEventListener('scroll', onScroll, true);
  document.addEventListener('keydown', onKey, true);
  document.addEventListener('focusout', onBlur, true);
  const me = { remove: () => {
    document.removeEventListener('input', onInput, true);
    document.removeEventListener('keydown', onKey, true);
    document.removeEventListener('focusout', onBlur, true);
    document.removeEventListener('scroll', onScroll, true);
    close();
    if (window.__klingMention === me) { delete window.__klingMention; }
  } };
  window.__klingMention = me;
  return () => { if (window.__klingMention === me) { me.remove(); } };
}
"""

_CSS = """
.kling-mention { position: fixed; z-index: 100000; margin: 0; padding: 2px 0; list-style: none; background: white;
  border: 1px solid #bbb; border-radius: 6px; box-shadow: 0 4px 12px rgba(0,0,0,.15); font-size: 0.9rem;
  max-height: 16rem; overflow-y: auto; color: #222; }
.kling-mention li { padding: 3px 10px; cursor: pointer; white-space: nowrap; }
"""

_component = components.component("kling_mention", js=_JS, css=_CSS, isolate_styles=False)


def mention_autocomplete(widget_keys: Sequence[str], names: Sequence[str], *, key: str) -> None:
    """Offer `names` as @-suggestions in the text areas drawn with these widget keys (as data, never HTML)."""
    if not names or not widget_keys:
        return
    _component(data={"keys": list(widget_keys), "names": list(names), "limit": MAX_SUGGESTIONS}, key=key)
