"""The labeling app: people answer the feedback store's items in a browser (Flask, served by waitress).

One item at a time, highest priority first, held for its labeler for 5 minutes so that people labeling at once
see different items: a prompt with two responses side by side, K responses to rank, one
response to rate 1-7, or two control clips (GIFs drawn from the stored segments) side by side. Answers: left,
right, tie, skip (keys 1 / 2 / t / s, or the arrow keys), an optional comment, undo of the last answer (u). The
page shows how many items remain and the labeler's own rate.

Safety, by construction:
- every labeler has a token (`rlhf-tf label-server --add_labeler=NAME`); only its SHA-256 is stored; nothing but
  the login page is served without one. The token travels once in the login link, whose page signs in with a
  button (a link from another site signs no one in), and then lives in an HttpOnly, SameSite=Strict cookie;
- every form carries a CSRF token (an HMAC of the labeler's token hash under the server's secret), checked on every
  POST; SameSite=Strict cookies are the second line;
- every text a model or person wrote is rendered by Jinja2 with autoescaping on, never marked safe, and the pages
  send a Content-Security-Policy that forbids inline scripts from anywhere but this app's own script file;
- an answer is accepted only for an item the app showed that labeler: each page carries a ticket (an HMAC of the
  labeler, the item and the time it was shown), so no one answers an item held for someone else, and the answer
  time is the server's own (at most a day);
- bad requests get a 4xx with a plain message (no debugger, no stack trace); requests over 64 KB a 413; two
  labelers answering the same item at once: the store takes one and the other is sent to the next item with a
  message saying so (messages are chosen by code, never text from the link);
- text shown to people has bidirectional-override characters replaced by a visible mark, so model text cannot
  reorder what people read;
- the store file is readable by its owner only; the signing secret lives in the store, so open pages keep working
  across a server restart;
- the server binds to 127.0.0.1 unless told otherwise.

The pages are Jinja2 templates in `templates/` beside this module and the script and style sheet are in `static/`
(Flask's own folders); this module holds the routes.
"""

import hashlib
import hmac
import io
import os
import secrets
import threading
import time

import flask
import markupsafe
import numpy as np
import waitress
from werkzeug import exceptions

from rlhf_tf.envs import render
from rlhf_tf.feedback import presentation
from rlhf_tf.feedback import store as store_lib

COOKIE = "rlhf_tf_labeler"
COOKIE_SECONDS = 30 * 24 * 3600
LOGIN_NONCE = "rlhf_tf_login"
MAX_REQUEST_BYTES = 64 * 1024
MAX_ANSWER_SECONDS = 24 * 3600.0
MESSAGES = {
    "taken": "Another labeler answered that item first; here is the next one.",
    "again": "You had already answered that item.",
    "undone": "Your last answer was undone.",
    "nothing": "Nothing to undo.",
}
# Explicit directional formatting (LRE, RLE, PDF, LRO, RLO; LRI, RLI, FSI, PDI): shown as marks, never obeyed.
_BIDI_CONTROLS = {code: f"[U+{code:04X}]" for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def visible(text):
    """`text` with bidirectional-override characters replaced by visible marks ("[U+202E]")."""
    return str(text).translate(_BIDI_CONTROLS)


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


class _Labelers:
    """Who is asking: the labeler behind the request's cookie, and the CSRF token of their forms."""

    def __init__(self, stores, secret):
        self.stores = stores
        self.secret = secret

    def csrf_for(self, token):
        return hmac.new(self.secret, token.encode("utf-8"), hashlib.sha256).hexdigest()

    def ticket_for(self, token, item_id, shown_at):
        """The signature of "this item was shown to this labeler at this time" that an answer must carry."""
        message = f"ticket:{token}:{item_id}:{shown_at}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def current(self):
        token = flask.request.cookies.get(COOKIE, "")
        found = self.stores.get().labeler_for_token(token)
        if found is None:
            return None
        return {"name": found[0], "admin": found[1], "expires_at": found[2], "token": token}

    def require(self):
        labeler = self.current()
        if labeler is None:
            flask.abort(401, "An access token is required: open your login link (/login?token=...).")
        return labeler

    def check_csrf(self, labeler):
        sent = flask.request.form.get("csrf", "")
        if not hmac.compare_digest(sent, self.csrf_for(labeler["token"])):
            flask.abort(403, "The form's security token is missing or stale: reload the page and answer again.")

    def stats(self, name):
        store = self.stores.get()
        answered = store.labels(labeler=name)
        hour_ago = time.time() - 3600
        recent = [label for label in answered if label.created_at >= hour_ago]
        return {
            "remaining": store.pending_count(name),
            "answered": len(answered),
            "rate": f"{len(recent) / 60:.1f}",
        }


def create_app(store_path, secret=None):
    """The Flask app over the feedback store at `store_path`.

    Args:
      secret: bytes keying the CSRF tokens and answer tickets (default: the store's own, `server_secret`, so a
        restart keeps open pages working).
    """
    with store_lib.FeedbackStore(store_path) as store:  # creates the schema, refuses newer ones, before serving
        secret = secret or store.server_secret()
    app = flask.Flask(__name__)  # templates/ and static/ beside this module
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.jinja_env.autoescape = True  # the templates end in .html, but say it outright
    app.jinja_env.filters["visible"] = visible
    stores = _Stores(os.fspath(store_path))
    labelers = _Labelers(stores, secret)
    _add_safety(app)
    _add_labeling_pages(app, stores, labelers)
    _add_clips_and_admin(app, stores, labelers)
    return app


def _add_safety(app):
    """Security headers on every response; plain-text errors, never a stack trace."""

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


def _secure():
    """Whether cookies get the Secure flag: behind a TLS proxy (`create_served_app`) or on an https request."""
    return bool(flask.current_app.config.get("RLHF_TF_SECURE_COOKIE")) or flask.request.is_secure


def _parse_choice(item):
    """The store choice a submitted form gives for `item` (a 400 for anything else)."""
    value = flask.request.form.get("choice", "")
    if value in _CHOICES and (value == "skip" or item.kind in store_lib.PAIR_KINDS):
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


def _add_labeling_pages(app, stores, labelers):
    """Login, the item page, answering and undoing."""

    @app.get("/login")
    def login_page():
        # A link signs no one in: it shows a button that posts the token back with a nonce also set as a
        # SameSite=Strict cookie, which a form on another site cannot send (no login CSRF).
        token = flask.request.args.get("token", "")
        found = stores.get().labeler_for_token(token)
        if found is None:
            return flask.render_template("login.html", title="Sign in", labeler=None), 401
        nonce = secrets.token_urlsafe(16)
        page = flask.render_template(
            "login.html", title="Sign in", labeler=None, name=found[0], token=token, nonce=nonce
        )
        response = flask.make_response(page)
        response.set_cookie(LOGIN_NONCE, nonce, httponly=True, samesite="Strict", max_age=600, secure=_secure())
        return response

    @app.post("/login")
    def login():
        token = flask.request.form.get("token", "")
        nonce = flask.request.cookies.get(LOGIN_NONCE, "")
        if not nonce or not hmac.compare_digest(nonce, flask.request.form.get("nonce", "")):
            flask.abort(403, "Sign in from your login link (open it again), not from another site's form.")
        found = stores.get().labeler_for_token(token)
        if found is None:
            return flask.render_template("login.html", title="Sign in", labeler=None), 401
        response = flask.redirect("/")
        # The cookie lives no longer than the token (the server checks expiry and revocation on every request).
        lifetime = COOKIE_SECONDS if found[2] is None else max(0, min(COOKIE_SECONDS, int(found[2] - time.time())))
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", max_age=lifetime, secure=_secure())
        response.delete_cookie(LOGIN_NONCE, httponly=True, samesite="Strict")
        return response

    @app.post("/logout")
    def logout():
        labeler = labelers.require()
        labelers.check_csrf(labeler)
        response = flask.redirect("/")
        response.delete_cookie(COOKIE, httponly=True, samesite="Strict")
        return response

    @app.get("/")
    def index():
        labeler = labelers.current()
        if labeler is None:
            return flask.render_template("login.html", title="Sign in", labeler=None), 401
        store = stores.get()
        item = store.lease_next(labeler["name"])
        shown_at = f"{time.time():.3f}"
        marked = None
        if item is not None and item.kind == "comparison" and presentation.worth_marking(*item.candidates):
            marked = presentation.differences(*item.candidates)
        return flask.render_template(
            "item.html",
            title="Label",
            labeler=labeler["name"],
            is_admin=labeler["admin"],
            item=item,
            csrf=labelers.csrf_for(labeler["token"]),
            shown_at=shown_at,
            ticket=labelers.ticket_for(labeler["token"], item.id, shown_at) if item is not None else "",
            stats=labelers.stats(labeler["name"]),
            message=MESSAGES.get(flask.request.args.get("message", ""), ""),
            turns=presentation.turns(item.prompt) if item is not None and item.prompt else [],
            marked=marked,
            guidelines=markupsafe.Markup(presentation.guidelines_html(store.guidelines())),
        )

    @app.post("/answer")
    def answer():
        labeler = labelers.require()
        labelers.check_csrf(labeler)
        store = stores.get()
        try:
            item_id = int(flask.request.form.get("item_id", ""))
            if not 0 < item_id < 2**63:  # SQLite's integer range
                raise ValueError(item_id)
            item = store.item(item_id)
        except (ValueError, store_lib.UserInputError):
            flask.abort(400, "Unknown item.")
        shown_at = flask.request.form.get("shown_at", "")
        ticket = labelers.ticket_for(labeler["token"], item_id, shown_at)
        if not hmac.compare_digest(flask.request.form.get("ticket", ""), ticket):
            flask.abort(409, "That item was not shown to you on this page: reload the page to get your next item.")
        choice = _parse_choice(item)
        if "score" in choice and not 1 <= choice["score"] <= 7:
            flask.abort(400, "A rating is 1 to 7.")
        seconds = min(MAX_ANSWER_SECONDS, max(0.0, time.time() - float(shown_at)))  # the server's own clock
        comment = flask.request.form.get("comment", "")[:2000]
        try:
            store.add_label(item_id, labeler["name"], choice, comment=comment, seconds=seconds)
        except store_lib.ItemAlreadyLabeled:
            return flask.redirect("/?message=taken")
        except store_lib.AlreadyAnswered:
            return flask.redirect("/?message=again")
        except store_lib.UserInputError as error:
            flask.abort(400, str(error))
        return flask.redirect("/")

    @app.post("/undo")
    def undo():
        labeler = labelers.require()
        labelers.check_csrf(labeler)
        removed = stores.get().undo_last(labeler["name"])
        return flask.redirect("/?message=" + ("undone" if removed else "nothing"))


def _add_clips_and_admin(app, stores, labelers):
    """Control clips (GIFs of the observations an item carries) and the admin page (progress, agreement, and
    labelers' tokens: revoke, rotate)."""

    @app.get("/clip/<int:item_id>/<int:side>")
    def clip(item_id, side):
        labelers.require()
        store = stores.get()
        try:
            item = store.item(item_id)
        except store_lib.UserInputError:
            flask.abort(404, "Unknown item.")
        if item.kind != "segment_comparison" or side not in (0, 1):
            flask.abort(404, "No clip there.")
        attachment = store.attachment(item_id, side)
        if attachment is None:
            flask.abort(404, "This item carries no clip data.")
        animation = render.segment_animation(
            item.metadata.get("env", ""),
            store_lib.decode_arrays(attachment)["observations"],
            fixed_horizon=item.metadata.get("fixed_horizon", True),
        )
        return flask.send_file(io.BytesIO(animation), mimetype="image/gif")

    def require_admin():
        labeler = labelers.require()
        if not labeler["admin"]:
            flask.abort(403, "The admin page needs an admin token.")
        return labeler

    def admin_page(labeler, new_link=None):
        store = stores.get()
        return flask.render_template(
            "admin.html",
            title="Admin",
            labeler=labeler["name"],
            is_admin=True,
            rows=admin_rows(store),
            totals={**store.counts(), "pending": store.pending_count()},
            people=store.labeler_status(),
            guidelines_text=store.guidelines(),
            csrf=labelers.csrf_for(labeler["token"]),
            new_link=new_link,
            now=time.time(),
        )

    @app.get("/admin")
    def admin():
        return admin_page(require_admin())

    @app.post("/admin/guidelines")
    def set_guidelines():
        labeler = require_admin()
        labelers.check_csrf(labeler)
        try:
            stores.get().set_guidelines(flask.request.form.get("guidelines", ""))
        except store_lib.UserInputError as error:
            flask.abort(400, str(error))
        return flask.redirect("/admin")

    @app.post("/admin/revoke")
    def revoke():
        labeler = require_admin()
        labelers.check_csrf(labeler)
        name = flask.request.form.get("name", "")
        if name == labeler["name"]:
            flask.abort(400, "Revoke your own token from the command line (rlhf-tf label-server --revoke=NAME).")
        try:
            stores.get().revoke_labeler(name)
        except store_lib.UserInputError as error:
            flask.abort(400, str(error))
        return flask.redirect("/admin")

    @app.post("/admin/rotate")
    def rotate():
        labeler = require_admin()
        labelers.check_csrf(labeler)
        name = flask.request.form.get("name", "")
        try:
            token = stores.get().rotate_token(name)
        except store_lib.UserInputError as error:
            flask.abort(400, str(error))
        # The new link is shown once, on this response; the old token no longer works.
        return admin_page(labeler, new_link=(name, flask.request.host_url + "login?token=" + token))


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


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_exposure(host, behind_proxy=False, trusted_network=False):
    """Refuses to serve on a non-loopback interface unless TLS is in front (`behind_proxy`) or the network is
    declared trusted (`trusted_network`): tokens and labels would otherwise cross the network in the clear."""
    if host in LOOPBACK or behind_proxy or trusted_network:
        return
    raise store_lib.UserInputError(
        f"Serving on {host} would send login tokens and answers over the network in plain HTTP. Put a TLS-terminating "
        "proxy in front and pass --behind_proxy (cookies become Secure; the proxy's X-Forwarded-Proto and "
        "X-Forwarded-For are trusted), or pass --trusted_network if the network is yours alone (README: 'People in "
        f"the loop'). Received: host={host}"
    )


def create_served_app(store_path, behind_proxy=False, secret=None):
    """`create_app`, for serving behind a TLS-terminating proxy when `behind_proxy`: the proxy's forwarded scheme
    and client address are trusted (one hop, werkzeug's ProxyFix) and the login cookie is Secure."""
    app = create_app(store_path, secret=secret)
    if behind_proxy:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["RLHF_TF_SECURE_COOKIE"] = True
    return app


def serve(store_path, host="127.0.0.1", port=8080, threads=8, behind_proxy=False, trusted_network=False):
    """Serves the app with waitress (a production WSGI server) until interrupted (`check_exposure` first)."""
    check_exposure(host, behind_proxy, trusted_network)
    app = create_served_app(store_path, behind_proxy)
    waitress.serve(app, host=host, port=port, threads=threads, ident="rlhf-tf")
