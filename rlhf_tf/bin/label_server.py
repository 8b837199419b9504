"""`rlhf-tf label-server`: the labeling app over a feedback store, for people to answer what training runs ask.

    rlhf-tf label-server --store=runs/feedback.sqlite --add_labeler=ann            # prints ann's login link
    rlhf-tf label-server --store=runs/feedback.sqlite --add_labeler=lead --admin   # an admin (sees /admin)
    rlhf-tf label-server --store=runs/feedback.sqlite [--host=127.0.0.1 --port=8080]

Tokens are shown once and stored hashed. The server binds to 127.0.0.1 unless --host says otherwise (serve
other machines only behind TLS). Pages and safety: `rlhf_tf.feedback.labeling_app`.
"""

from absl import flags

from rlhf_tf.bin import runner

_STORE = flags.DEFINE_string("store", None, "The feedback store (SQLite file; created if missing).")
_HOST = flags.DEFINE_string("host", "127.0.0.1", "Interface to listen on (127.0.0.1: this machine only).")
_PORT = flags.DEFINE_integer("port", 8080, "Port to listen on.")
_THREADS = flags.DEFINE_integer("threads", 8, "Server threads (requests answered at once).")
_ADD_LABELER = flags.DEFINE_string("add_labeler", None, "Create a labeler of this name, print their login link, exit.")
_ADMIN = flags.DEFINE_bool("admin", False, "With --add_labeler: the labeler may see the admin page.")
flags.mark_flag_as_required("store")


def main(argv):
    del argv
    from rlhf_tf.feedback import labeling_app
    from rlhf_tf.feedback import store as store_lib

    if _ADD_LABELER.value:
        with store_lib.FeedbackStore(_STORE.value) as store:
            token = store.add_labeler(_ADD_LABELER.value, admin=_ADMIN.value)
        role = "admin" if _ADMIN.value else "labeler"
        print(f"Added {role} {_ADD_LABELER.value!r}. Their token (shown once): {token}")
        print(f"Login link: http://{_HOST.value}:{_PORT.value}/login?token={token}")
        return
    print(f"Serving {_STORE.value} on http://{_HOST.value}:{_PORT.value}/ (Ctrl-C stops).")
    labeling_app.serve(_STORE.value, host=_HOST.value, port=_PORT.value, threads=_THREADS.value)


def run(argv=None):
    runner.run_binary(main, argv)


if __name__ == "__main__":
    run()
