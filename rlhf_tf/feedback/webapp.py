"""The labeling app: people answer the feedback store's items in a browser (Flask, served by waitress).

One item at a time, highest priority first, held for its labeler for 5 minutes so that people labeling at once
see different items: a prompt with two responses side by side, K responses to rank, one
response to rate 1-7, or two control clips (GIFs drawn from the stored segments) side by side. Answers: left,
right, tie, skip (keys 1 / 2 / t / s, or the arrow keys), an optional comment, undo of the last answer (u). The
page shows how many items remain and the labeler's own rate.

Safety, by construction:
- every labeler has a token (`rlhf-tf label-server --add_labeler=NAME`); only its SHA-256 is stored; nothing but
  the login page is served without one. The token travels once in the login link and then lives in an HttpOnly,
  SameSite=Strict cookie;
- every form carries a CSRF token (an HMAC of the labeler's token hash under the server's secret), checked on every
  POST; SameSite=Strict cookies are the second line;
- every text a model or person wrote is rendered by Jinja2 with autoescaping on, never marked safe, and the pages
  send a Content-Security-Policy that forbids inline scripts from anywhere but this app's own script file;
- bad requests get a 4xx with a plain message (no debugger, no stack trace); two labelers answering the same item
  at once: the store takes one and the other is told (409);
- the server binds to 127.0.0.1 unless told otherwise.
"""

import hashlib
import hmac
import io
import os
import secrets
import threading
import time

import flask
import jinja2
import numpy as np
import waitress
from werkzeug import exceptions

from rlhf_tf.envs import render
from rlhf_tf.feedback import store as store_lib

COOKIE = "rlhf_tf_labeler"

_BASE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }} - rlhf-tf labeling</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/app.css"></head>
<body><header><b>rlhf-tf labeling</b>{% if labeler %} &middot; {{ labeler }}{% endif %}
{% if stats %} &middot; <span id="remaining">{{ stats.remaining }}</span> items left
&middot; you: {{ stats.answered }} answered, {{ stats.rate }} per minute (last hour){% endif %}
{% if is_admin %} &middot; <a href="/admin">admin</a>{% endif %}</header>
{% if message %}<p class="message" id="message">{{ message }}</p>{% endif %}
<main>{% block main %}{% endblock %}</main>
<script src="/static/app.js"></script></body></html>"""

_ITEM = """{% extends "base.html" %}{% block main %}
{% if item is none %}<p id="empty">Nothing to label right now. This page checks again in 10 seconds.</p>
<meta http-equiv="refresh" content="10">
{% else %}
<form method="post" action="/answer" id="answer-form" data-kind="{{ item.kind }}">
<input type="hidden" name="csrf" value="{{ csrf }}">
<input type="hidden" name="item_id" value="{{ item.id }}">
<input type="hidden" name="shown_at" value="{{ shown_at }}">
{% if item.prompt %}<section class="prompt"><h3>Prompt</h3><pre id="prompt">{{ item.prompt }}</pre></section>{% endif %}
{% if item.kind in ("comparison", "segment_comparison") %}
<div class="pair">
{% for candidate in item.candidates %}
<section class="candidate" id="candidate-{{ loop.index0 }}">
<h3>{% if loop.index0 == 0 %}Left (1 / &larr;){% else %}Right (2 / &rarr;){% endif %}</h3>
{% if item.kind == "segment_comparison" %}<img class="clip" alt="clip {{ loop.index }}"
  src="/clip/{{ item.id }}/{{ loop.index0 }}">{% else %}<pre class="response">{{ candidate }}</pre>{% endif %}
</section>{% endfor %}
</div>
<div class="buttons">
<button type="submit" name="choice" value="left">Left is better (1)</button>
<button type="submit" name="choice" value="tie">Equally good (t)</button>
<button type="submit" name="choice" value="right">Right is better (2)</button>
<button type="submit" name="choice" value="skip">Skip (s)</button>
</div>
{% elif item.kind == "ranking" %}
<p>Give each response its rank (1 = best), then Submit (Enter).</p>
{% for candidate in item.candidates %}
<section class="candidate"><label>Rank <input class="rank" name="rank-{{ loop.index0 }}" type="number" min="1"
  max="{{ item.candidates|length }}" value="{{ loop.index }}"></label><pre class="response">{{ candidate }}</pre>
</section>{% endfor %}
<div class="buttons"><button type="submit" name="choice" value="ranking">Submit ranking</button>
<button type="submit" name="choice" value="skip">Skip (s)</button></div>
{% else %}
<section class="candidate"><pre class="response">{{ item.candidates[0] }}</pre></section>
<div class="buttons">{% for score in range(1, 8) %}<button type="submit" name="choice" value="score-{{ score }}">
{{ score }}</button>{% endfor %}<button type="submit" name="choice" value="skip">Skip (s)</button></div>
<p>1 = very bad ... 7 = excellent (number keys)</p>
{% endif %}
<label class="comment">Comment (optional) <input name="comment" id="comment" maxlength="2000"></label>
</form>
{% endif %}
<form method="post" action="/undo" id="undo-form"><input type="hidden" name="csrf" value="{{ csrf }}">
<button type="submit">Undo my last answer (u)</button></form>
{% endblock %}"""

_ADMIN = """{% extends "base.html" %}{% block main %}
<h2>Progress</h2>
<p id="totals">Items: {{ totals["items"] }} &middot; labels: {{ totals["labels"] }} &middot; waiting for labels:
{{ totals["pending"] }}</p>
<table id="labelers"><tr><th>labeler</th><th>labels</th><th>skips</th><th>last hour</th>
<th>median seconds per answer</th><th>agreement with others</th><th>agreement with gold</th></tr>
{% for row in rows %}<tr><td>{{ row.name }}</td><td>{{ row.labels }}</td><td>{{ row.skips }}</td>
<td>{{ row.last_hour }}</td><td>{{ row.median_seconds }}</td><td>{{ row.agreement }}</td><td>{{ row.gold }}</td></tr>
{% endfor %}</table>
<p>Agreement with others: share of this labeler's strict answers (not tie, not skip) that match another labeler's
strict answer to the same item. Agreement with gold: share of strict answers matching the item's
<code>metadata.gold_preferred</code>, where its producer (a task with a gold scorer) recorded one.</p>
{% endblock %}"""

_LOGIN = """{% extends "base.html" %}{% block main %}
<p>This labeling server needs your access token. Open the link your administrator gave you
(<code>/login?token=...</code>).</p>{% endblock %}"""

_SCRIPT = """(function () {
  var form = document.getElementById("answer-form");
  function submit(value) {
    if (!form) { return; }
    var button = form.querySelector('button[value="' + value + '"]');
    if (button) { button.click(); }
  }
  document.addEventListener("keydown", function (event) {
    if (event.target && (event.target.tagName === "INPUT" || event.target.tagName === "TEXTAREA")) {
      if (event.key === "Enter" && form && form.dataset.kind === "ranking") { submit("ranking"); }
      return;
    }
    var kind = form ? form.dataset.kind : "";
    var key = event.key;
    if (key === "u") { document.querySelector("#undo-form button").click(); return; }
    if (key === "s") { submit("skip"); return; }
    if (kind === "comparison" || kind === "segment_comparison") {
      if (key === "1" || key === "ArrowLeft") { submit("left"); }
      else if (key === "2" || key === "ArrowRight") { submit("right"); }
      else if (key === "t" || key === "=") { submit("tie"); }
    } else if (kind === "rating" && key >= "1" && key <= "7") {
      submit("score-" + key);
    } else if (kind === "ranking" && key === "Enter") {
      submit("ranking");
    }
  });
})();
"""

_STYLE = """body { font-family: system-ui, sans-serif; margin: 1em 2em; }
header { padding-bottom: .5em; border-bottom: 1px solid #ccc; margin-bottom: 1em; }
.pair { display: flex; gap: 1em; } .candidate { flex: 1; border: 1px solid #ddd; padding: .5em; }
pre { white-space: pre-wrap; word-break: break-word; } .message { background: #fff3c4; padding: .5em; }
.buttons { margin: 1em 0; } .buttons button { margin-right: .5em; padding: .4em 1em; }
img.clip { width: 100%; max-width: 480px; image-rendering: pixelated; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .2em .6em; }
"""

_CHOICES = {"left": {"preferred": 0}, "right": {"preferred": 1}, "tie": {"tie": True}, "skip": {"skip": True}}


class _Stores(threading.local):
    """One store connection per server thread (a sqlite3 connection must not run two transactions at once)."""

    def __init__(self, path):
        self.path = path
        self.store = None

    def get(self):
        if self.store is None:
            self.store = store_lib.FeedbackStore(self.path)
        return self.store


def create_app(store_path, secret=None):
    """The Flask app over the feedback store at `store_path`.

    Args:
      secret: bytes keying the CSRF tokens (random per server start by default: a restart only means reloading
        the page).
    """

    store_lib.FeedbackStore(store_path).close()  # creates the schema, refuses newer ones, before serving
    app = flask.Flask(__name__)
    app.jinja_loader = jinja2.DictLoader(
        {"base.html": _BASE, "item.html": _ITEM, "admin.html": _ADMIN, "login.html": _LOGIN}
    )
    app.jinja_env.autoescape = True  # DictLoader names end in .html, but say it outright
    secret = secret or secrets.token_bytes(32)
    stores = _Stores(os.fspath(store_path))

    def csrf_for(token):
        return hmac.new(secret, token.encode("utf-8"), hashlib.sha256).hexdigest()

    def current():
        token = flask.request.cookies.get(COOKIE, "")
        found = stores.get().labeler_for_token(token)
        if found is None:
            return None
        return {"name": found[0], "admin": found[1], "token": token}

    def require_labeler():
        labeler = current()
        if labeler is None:
            flask.abort(401, "An access token is required: open your login link (/login?token=...).")
        return labeler

    def check_csrf(labeler):
        sent = flask.request.form.get("csrf", "")
        if not hmac.compare_digest(sent, csrf_for(labeler["token"])):
            flask.abort(403, "The form's security token is missing or stale: reload the page and answer again.")

    def stats(name):
        store = stores.get()
        answered = store.labels(labeler=name)
        hour_ago = time.time() - 3600
        recent = [label for label in answered if label.created_at >= hour_ago]
        return {
            "remaining": store.pending_count(name),
            "answered": len(answered),
            "rate": f"{len(recent) / 60:.1f}",
        }

    @app.after_request
    def headers(response):
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(exceptions.HTTPException)
    def http_error(error):
        return flask.Response(f"{error.code} {error.name}: {error.description}\n", error.code, mimetype="text/plain")

    @app.errorhandler(Exception)
    def unexpected(error):
        app.logger.exception("Unexpected error")
        return flask.Response("500: the server failed on this request; it is logged.\n", 500, mimetype="text/plain")

    @app.get("/static/app.js")
    def script():
        return flask.Response(_SCRIPT, mimetype="application/javascript")

    @app.get("/static/app.css")
    def style():
        return flask.Response(_STYLE, mimetype="text/css")

    @app.get("/login")
    def login():
        token = flask.request.args.get("token", "")
        if stores.get().labeler_for_token(token) is None:
            return flask.render_template("login.html", title="Sign in", labeler=None), 401
        response = flask.redirect("/")
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", max_age=30 * 24 * 3600)
        return response

    @app.get("/")
    def index():
        labeler = current()
        if labeler is None:
            return flask.render_template("login.html", title="Sign in", labeler=None), 401
        store = stores.get()
        item = store.lease_next(labeler["name"])
        return flask.render_template(
            "item.html",
            title="Label",
            labeler=labeler["name"],
            is_admin=labeler["admin"],
            item=item,
            csrf=csrf_for(labeler["token"]),
            shown_at=f"{time.time():.3f}",
            stats=stats(labeler["name"]),
            message=flask.request.args.get("message", "")[:200],
        )

    def parse_choice(item):
        value = flask.request.form.get("choice", "")
        if value in _CHOICES and (value == "skip" or item.kind in ("comparison", "segment_comparison")):
            return _CHOICES[value]
        if value.startswith("score-") and item.kind == "rating":
            try:
                return {"score": int(value[len("score-") :])}
            except ValueError:
                pass
        if value == "ranking" and item.kind == "ranking":
            try:
                ranks = [int(flask.request.form[f"rank-{i}"]) for i in range(len(item.candidates))]
            except (KeyError, ValueError):
                flask.abort(400, "Every response needs a rank (a whole number).")
            if sorted(ranks) != list(range(1, len(ranks) + 1)):
                flask.abort(400, f"Ranks must be 1 to {len(ranks)}, each used once. Received: {ranks}")
            return {"ranking": [int(i) for i in np.argsort(ranks, kind="stable")]}
        flask.abort(400, f"Not an answer for a {item.kind} item: {value[:40]!r}")

    @app.post("/answer")
    def answer():
        labeler = require_labeler()
        check_csrf(labeler)
        store = stores.get()
        try:
            item_id = int(flask.request.form.get("item_id", ""))
            item = store.item(item_id)
        except (ValueError, store_lib.UserInputError):
            flask.abort(400, "Unknown item.")
        choice = parse_choice(item)
        if "score" in choice and not 1 <= choice["score"] <= 7:
            flask.abort(400, "A rating is 1 to 7.")
        try:
            seconds = max(0.0, time.time() - float(flask.request.form.get("shown_at", "")))
        except ValueError:
            seconds = None
        comment = flask.request.form.get("comment", "")[:2000]
        try:
            store.add_label(item_id, labeler["name"], choice, comment=comment, seconds=seconds)
        except store_lib.ItemAlreadyLabeled:
            return flask.redirect("/?message=" + "Another labeler answered that item first; here is the next one.")
        except store_lib.AlreadyAnswered:
            return flask.redirect("/?message=" + "You had already answered that item.")
        except store_lib.UserInputError as error:
            flask.abort(400, str(error))
        return flask.redirect("/")

    @app.post("/undo")
    def undo():
        labeler = require_labeler()
        check_csrf(labeler)
        removed = stores.get().undo_last(labeler["name"])
        message = "Your last answer was undone." if removed else "Nothing to undo."
        return flask.redirect("/?message=" + message)

    @app.get("/clip/<int:item_id>/<int:side>")
    def clip(item_id, side):
        require_labeler()
        try:
            item = stores.get().item(item_id)
        except store_lib.UserInputError:
            flask.abort(404, "Unknown item.")
        if item.kind != "segment_comparison" or side not in (0, 1):
            flask.abort(404, "No clip there.")

        attachment = stores.get().attachment(item_id, side)
        if attachment is None:
            flask.abort(404, "This item carries no clip data.")
        segment = store_lib.decode_arrays(attachment)
        animation = render.segment_animation(
            item.metadata.get("env", ""),
            segment["observations"],
            fixed_horizon=item.metadata.get("fixed_horizon", True),
        )
        return flask.send_file(io.BytesIO(animation), mimetype="image/gif")

    @app.get("/admin")
    def admin():
        labeler = require_labeler()
        if not labeler["admin"]:
            flask.abort(403, "The admin page needs an admin token.")
        store = stores.get()
        return flask.render_template(
            "admin.html",
            title="Admin",
            labeler=labeler["name"],
            is_admin=True,
            rows=admin_rows(store),
            totals={**store.counts(), "pending": store.pending_count()},
        )

    return app


def _strict(choice):
    if "preferred" in choice:
        return choice["preferred"]
    return None


def admin_rows(store):
    """Per labeler: counts, recent answers, median answer time, agreement with other labelers and with gold."""
    labels = store.labels()
    by_item = {}
    for label in labels:
        by_item.setdefault(label.item_id, []).append(label)
    # One joined query for the answered items' metadata (gold verdicts), not one per label.
    gold_of = {item.id: item.metadata.get("gold_preferred") for item, _ in store.labeled()}
    rows = []
    hour_ago = time.time() - 3600
    names = sorted({label.labeler for label in labels} | {name for name, _ in store.labelers()})
    for name in names:
        own = [label for label in labels if label.labeler == name]
        agree = total = gold_agree = gold_total = 0
        for label in own:
            mine = _strict(label.choice)
            if mine is None:
                continue
            others = [_strict(other.choice) for other in by_item[label.item_id] if other.labeler != name]
            others = [other for other in others if other is not None]
            if others:
                total += len(others)
                agree += sum(other == mine for other in others)
            gold = gold_of.get(label.item_id)
            if gold in (0, 1):
                gold_total += 1
                gold_agree += int(gold == mine)
        seconds = [label.seconds for label in own if label.seconds is not None]
        rows.append(
            {
                "name": name,
                "labels": sum(1 for label in own if "skip" not in label.choice),
                "skips": sum(1 for label in own if "skip" in label.choice),
                "last_hour": sum(1 for label in own if label.created_at >= hour_ago),
                "median_seconds": f"{np.median(seconds):.1f}" if seconds else "-",
                "agreement": f"{agree / total:.2f} ({total})" if total else "-",
                "gold": f"{gold_agree / gold_total:.2f} ({gold_total})" if gold_total else "-",
            }
        )
    return rows


def serve(store_path, host="127.0.0.1", port=8080, threads=8):
    """Serves the app with waitress (a production WSGI server) until interrupted."""

    waitress.serve(create_app(store_path), host=host, port=port, threads=threads, ident="rlhf-tf")
