"""The DPO loss (Rafailov et al. 2023) and its IPO and hinge variants, as a pure function.

For a prompt x with chosen y_w and rejected y_l, with log pi(y|x) summed over the response's tokens (and its end
token) and the frozen reference pi_ref (the starting SFT policy):

    h = [log pi(y_w|x) - log pi_ref(y_w|x)] - [log pi(y_l|x) - log pi_ref(y_l|x)]
    sigmoid (DPO):  L = -(1 - eps) log sigma(beta h) - eps log sigma(-beta h)   (eps: `label_smoothing`, cDPO)
    ipo (Azar et al. 2023):  L = (h - 1 / (2 beta))^2
    hinge (SLiC, Zhao et al. 2023):  L = max(0, 1 - beta h)

The implicit reward of a response is r(x, y) = beta [log pi(y|x) - log pi_ref(y|x)]. At the start pi = pi_ref, so
h = 0, the DPO loss is log 2 and every implicit reward is 0.
"""

import tensorflow as tf

LOSSES = ("sigmoid", "ipo", "hinge")


def dpo_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta, loss="sigmoid", smoothing=0.0):
    """Per-pair loss [batch] and the implicit rewards (chosen, rejected) [batch] (see the module docstring)."""
    chosen = policy_chosen - reference_chosen
    rejected = policy_rejected - reference_rejected
    h = chosen - rejected
    if loss == "sigmoid":
        losses = -(1.0 - smoothing) * tf.math.log_sigmoid(beta * h) - smoothing * tf.math.log_sigmoid(-beta * h)
    elif loss == "ipo":
        losses = tf.square(h - 1.0 / (2.0 * beta))
    else:
        losses = tf.nn.relu(1.0 - beta * h)
    return losses, beta * chosen, beta * rejected
