"""The trust boundary: one helper per rule for everything that comes from outside (see docs/SECURITY.md).

- `paths`  — data is never a path: files are found by ids the app made, inside its data folder.
- `urls`   — outside URLs are inert: a browser loads only the app's own media or KIE's media hosts.
- `fetch`  — the one server-side fetch: http(s), public addresses only, bounded size and time.
- `text`   — text from data is drawn as text, never markdown or HTML.
- `limits` — input is bounded before it is parsed (sizes, JSON depth, image pixels).
"""
