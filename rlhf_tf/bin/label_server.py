"""`rlhf-tf label-server`: the labeling app over a feedback store, for people to answer what training runs ask.

    rlhf-tf label-server --store=runs/feedback.sqlite --add_labeler=ann            # prints ann's login link
    rlhf-tf label-server --store=runs/feedback.sqlite --add_labeler=lead --admin   # an admin (sees /admin)
    rlhf-tf label-server --store=runs/feedback.sqlite [--host=127.0.0.1 --port=8080]

    rlhf-tf label-server --store=... --host=0.0.0.0 --behind_proxy  # a team's network, TLS at the proxy
    rlhf-tf label-server --store=... --rotate=ann [--token_days=7]    # a new link for ann; the old one stops
    rlhf-tf label-server --store=... --revoke=ann                     # ann's next request is refused

Tokens are shown once and stored hashed. The server binds to 127.0.0.1 unless --host says otherwise, and refuses
another interface unless a TLS-terminating proxy is in front (--behind_proxy: Secure cookies, the proxy's
forwarded scheme and address trusted) or --trusted_network says the network is yours alone. Pages and safety:
`rlhf_tf.feedback.labeling_app`.
"""

from absl import flags

from rlhf_tf.bin import runner

_STORE = flags.DEFINE_string("store", None, "The feedback store (SQLite file; created if missing).")
_HOST = flags.DEFINE_string("host", "127.0.0.1", "Interface to listen on (127.0.0.1: this machine only).")
_PORT = flags.DEFINE_integer("port", 8080, "Port to listen on.")
_THREADS = flags.DEFINE_integer("threads", 8, "Server threads (requests answered at once).")
_ADD_LABELER = flags.DEFINE_string("add_labeler", None, "Create a labeler of this name, print their login link, exit.")
_ADMIN = flags.DEFINE_bool("admin", False, "With --add_labeler: the labeler may see the admin page.")
_GUIDELINES = flags.DEFINE_string(
    "guidelines", None, "A markdown file of labeling guidelines, shown above every item (also editable on /admin)."
)
_REVOKE = flags.DEFINE_string("revoke", None, "Revoke this labeler's token (their next request is refused), exit.")
_ROTATE = flags.DEFINE_string(
    "rotate", None, "Give this labeler a new token (the old one stops), print the link, exit."
)
_TOKEN_DAYS = flags.DEFINE_float(
    "token_days", None, "With --add_labeler/--rotate: the token expires after this many days."
)
_BEHIND_PROXY = flags.DEFINE_bool(
    "behind_proxy", False, "A TLS-terminating proxy is in front: Secure cookies, trust its X-Forwarded-* (one hop)."
)
_TRUSTED_NETWORK = flags.DEFINE_bool(
    "trusted_network", False, "Serve plain HTTP on a non-loopback --host anyway (a network that is yours alone)."
)
flags.mark_flag_as_required("store")


def main(argv):
    del argv
    from rlhf_tf.feedback import labeling_app
    from rlhf_tf.feedback import store as store_lib

    if _GUIDELINES.value:
        try:
            with open(_GUIDELINES.value, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as error:
            raise store_lib.UserInputError(
                f"Cannot read the guidelines ({error}). Received: {_GUIDELINES.value}"
            ) from None
        with store_lib.FeedbackStore(_STORE.value) as store:
            store.set_guidelines(text)
        print(f"Guidelines set from {_GUIDELINES.value}.")
    if _ADD_LABELER.value or _ROTATE.value or _REVOKE.value:
        with store_lib.FeedbackStore(_STORE.value) as store:
            if _REVOKE.value:
                store.revoke_labeler(_REVOKE.value)
                print(f"Revoked {_REVOKE.value!r}: their next request is refused (their labels stay).")
                return
            if _ROTATE.value:
                name, token = _ROTATE.value, store.rotate_token(_ROTATE.value, days=_TOKEN_DAYS.value)
                print(f"New token for {name!r} (shown once; the old one no longer works): {token}")
            else:
                name = _ADD_LABELER.value
                token = store.add_labeler(name, admin=_ADMIN.value, days=_TOKEN_DAYS.value)
                print(f"Added {'admin' if _ADMIN.value else 'labeler'} {name!r}. Their token (shown once): {token}")
        lifetime = f" (expires in {_TOKEN_DAYS.value:g} days)" if _TOKEN_DAYS.value else ""
        print(f"Login link{lifetime}: http://{_HOST.value}:{_PORT.value}/login?token={token}")
        return
    labeling_app.check_exposure(_HOST.value, _BEHIND_PROXY.value, _TRUSTED_NETWORK.value)
    print(f"Serving {_STORE.value} on http://{_HOST.value}:{_PORT.value}/ (Ctrl-C stops).")
    labeling_app.serve(
        _STORE.value,
        host=_HOST.value,
        port=_PORT.value,
        threads=_THREADS.value,
        behind_proxy=_BEHIND_PROXY.value,
        trusted_network=_TRUSTED_NETWORK.value,
    )


def run(argv=None):
    runner.run_binary(main, argv)


if __name__ == "__main__":
    run()
